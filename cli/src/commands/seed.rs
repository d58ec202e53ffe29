//! `shopmesh seed`: fill the catalogue with a realistic, deterministic set of
//! products through the product service's HTTP API (as an admin would).
//! Running it again adds only what is missing, so it is safe to repeat.

use anyhow::{Context, bail};
use shopmesh_product::seed::catalogue;
use shopmesh_shared::settings::Env;
use std::collections::HashSet;

#[derive(clap::Args)]
pub struct Args {
    /// The product service.
    #[arg(long, default_value = "http://127.0.0.1:8082")]
    product_url: String,
    /// How many products the catalogue should hold.
    #[arg(long, default_value_t = 200)]
    count: usize,
    /// The same seed gives the same catalogue.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

/// Names of every product the catalogue holds, page by page.
async fn existing_names(http: &reqwest::Client, base: &str) -> anyhow::Result<HashSet<String>> {
    let mut names = HashSet::new();
    for page in 1.. {
        let url = format!("{base}/products?page={page}&per_page=100");
        let body: serde_json::Value = http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?
            .error_for_status()?
            .json()
            .await?;
        let items = body["items"].as_array().cloned().unwrap_or_default();
        names.extend(
            items
                .iter()
                .filter_map(|p| p["name"].as_str().map(str::to_owned)),
        );
        if items.len() < 100 {
            break;
        }
    }
    Ok(names)
}

pub async fn run(args: Args, env: &Env) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let created = seed(&http, &args.product_url, env, args.count, args.seed).await?;
    println!(
        "catalogue: {created} products created, {} already there",
        args.count - created
    );
    Ok(())
}

/// Creates the products of the catalogue `(count, seed)` that the product
/// service at `product_url` lacks; returns how many it created.
pub async fn seed(
    http: &reqwest::Client,
    product_url: &str,
    env: &Env,
    count: usize,
    seed: u64,
) -> anyhow::Result<usize> {
    let admin = env
        .secret("SHOPMESH_ADMIN_TOKEN")
        .context("SHOPMESH_ADMIN_TOKEN must hold the product service's admin token")?;
    let base = product_url.trim_end_matches('/');
    let existing = existing_names(http, base).await?;
    let mut created = 0;
    for product in catalogue(count, seed) {
        if existing.contains(&product.name) {
            continue;
        }
        let response = http
            .post(format!("{base}/products"))
            .bearer_auth(admin.expose())
            .json(&product)
            .send()
            .await
            .with_context(|| format!("POST {base}/products"))?;
        if !response.status().is_success() {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            bail!("creating {:?} failed: {status} {body}", product.name);
        }
        created += 1;
    }
    Ok(created)
}
