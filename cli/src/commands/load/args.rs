//! The `shopmesh load` flags and their parsers: every value is checked here,
//! so a bad flag stops the command before any request with a message naming
//! the flag and what it expects.

use shopmesh_shared::settings::parse_duration;
use std::time::Duration;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Simulated shoppers; each registers and logs in, then browses and buys.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub users: u32,
    /// Target actions per second across all shoppers (a shared pacer, not one
    /// action per shopper per tick).
    #[arg(long, default_value_t = 500.0, value_parser = rate)]
    pub rate: f64,
    /// How long the paced run lasts, after every shopper has signed up
    /// (e.g. 500ms, 30s, 5m).
    #[arg(long, default_value = "30s", value_parser = positive_duration)]
    pub duration: Duration,
    /// Mean pause of a shopper between two actions (exponentially distributed; 0 for none).
    #[arg(long, default_value = "10ms", value_parser = duration)]
    pub think_time: Duration,
    /// The same seed gives every shopper the same tastes and choices.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The user service.
    #[arg(
        long,
        env = "SHOPMESH_USER_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub user_url: String,
    /// The product service.
    #[arg(
        long,
        env = "SHOPMESH_PRODUCT_URL",
        default_value = "http://127.0.0.1:8082"
    )]
    pub product_url: String,
    /// The order service.
    #[arg(
        long,
        env = "SHOPMESH_ORDER_URL",
        default_value = "http://127.0.0.1:8083"
    )]
    pub order_url: String,
    /// How many shoppers sign up at once (registration and login hash passwords).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub signup_concurrency: u32,
    /// Print the final summary as one JSON object.
    #[arg(long)]
    pub json: bool,
}

fn duration(text: &str) -> Result<Duration, String> {
    parse_duration(text).ok_or_else(|| {
        format!(
            "expected a duration like 500ms, 30s or 5m (a whole number and a unit), got {text:?}"
        )
    })
}

fn positive_duration(text: &str) -> Result<Duration, String> {
    match duration(text)? {
        d if d.is_zero() => Err("the duration must be longer than zero".into()),
        d => Ok(d),
    }
}

fn rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 && r <= 10_000_000.0 => Ok(r),
        _ => Err(format!(
            "expected actions per second as a positive number (e.g. 500 or 0.5), got {text:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_rates_are_checked() {
        assert_eq!(positive_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(positive_duration("5m"), Ok(Duration::from_secs(300)));
        assert!(positive_duration("0s").is_err());
        assert!(positive_duration("5x").unwrap_err().contains("30s"));
        assert_eq!(duration("0"), Ok(Duration::ZERO));
        assert_eq!(rate("6000"), Ok(6000.0));
        for bad in ["0", "-1", "fast", "NaN", "inf"] {
            assert!(rate(bad).is_err(), "{bad}");
        }
    }
}
