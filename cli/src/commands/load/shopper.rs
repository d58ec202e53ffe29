//! One simulated shopper: signs up (register, log in), then browses, searches,
//! views, rates, fills and empties a cart, checks out and now and then
//! cancels, against the real services over HTTP. It keeps just enough state
//! (cart, recent views, its orders) to make only requests a person could
//! make, so any error it meets is the services', not the script's.

use super::stats::{Action, Outcome, Stats};
use super::tastes::{Catalogue, Tastes, unit};
use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde::Deserialize;
use serde_json::json;
use shopmesh_product::seed::SplitMix64;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What every shopper shares.
pub struct Context {
    pub http: reqwest::Client,
    pub user_url: String,
    pub product_url: String,
    pub order_url: String,
    pub catalogue: Catalogue,
    pub stats: Stats,
    pub think_time: Duration,
}

pub const PASSWORD: &str = "load-shopper-passw0rd";

/// Recent views a shopper rates or buys from.
const RECENT: usize = 8;
/// Orders a shopper remembers (and may cancel).
const ORDERS: usize = 3;
/// Cart lines at which a shopper goes to the checkout.
const FULL_CART: usize = 4;

pub struct Shopper {
    rng: SplitMix64,
    tastes: Tastes,
    auth: HeaderValue,
    cart: Vec<usize>,
    recent: VecDeque<usize>,
    orders: Vec<String>,
    /// Cart lines a failed checkout said are out of stock: removed first.
    to_remove: Vec<usize>,
}

/// An HTTP exchange: status and body, or why there was none.
async fn call(request: reqwest::RequestBuilder) -> Result<(StatusCode, Bytes), String> {
    let transport = |e: reqwest::Error| {
        if e.is_timeout() {
            "timeout".to_owned()
        } else if e.is_connect() {
            "connect".to_owned()
        } else {
            // The innermost cause says what happened ("connection closed
            // before message completed"); the outer ones only repeat the URL.
            let mut cause: &dyn std::error::Error = &e;
            while let Some(source) = cause.source() {
                cause = source;
            }
            format!("transport: {cause}")
        }
    };
    let response = request.send().await.map_err(transport)?;
    let status = response.status();
    let body = response.bytes().await.map_err(transport)?;
    Ok((status, body))
}

#[derive(Deserialize)]
struct Problem {
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// The error kind of an unexpected answer: status and problem type.
fn unexpected(status: StatusCode, body: &[u8]) -> Outcome {
    let kind = serde_json::from_slice::<Problem>(body)
        .ok()
        .and_then(|p| p.kind)
        .filter(|k| k != "about:blank");
    Outcome::Error(match kind {
        Some(kind) => format!("http {} {kind}", status.as_u16()),
        None => format!("http {}", status.as_u16()),
    })
}

/// Percent-encodes a query value (names are plain words, but be safe).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Runs one request, records it under `action` and returns its answer when
/// its status is `expected` (the caller then reads the body).
async fn exchange(
    stats: &Stats,
    action: Action,
    request: reqwest::RequestBuilder,
    expected: StatusCode,
) -> Result<Bytes, Option<(StatusCode, Bytes)>> {
    let started = Instant::now();
    let result = call(request).await;
    let latency = started.elapsed();
    match result {
        Ok((status, body)) if status == expected => {
            stats.record(action, latency, Outcome::Ok);
            Ok(body)
        }
        Ok((status, body)) => {
            let outcome = if action == Action::Checkout && is_out_of_stock(status, &body) {
                Outcome::OutOfStock
            } else {
                unexpected(status, &body)
            };
            stats.record(action, latency, outcome);
            Err(Some((status, body)))
        }
        Err(kind) => {
            stats.record(action, latency, Outcome::Error(kind));
            Err(None)
        }
    }
}

fn is_out_of_stock(status: StatusCode, body: &[u8]) -> bool {
    status == StatusCode::CONFLICT
        && serde_json::from_slice::<Problem>(body)
            .ok()
            .and_then(|p| p.kind)
            .is_some_and(|k| k == "/problems/out-of-stock")
}

#[derive(Deserialize)]
struct Session {
    token: String,
}

#[derive(Deserialize)]
struct Viewed {
    stock: i64,
}

#[derive(Deserialize)]
struct Placed {
    id: String,
}

#[derive(Deserialize)]
struct OutOfStock {
    short: Vec<Short>,
}

#[derive(Deserialize)]
struct Short {
    product_id: String,
    available: i64,
}

impl Shopper {
    /// Registers shopper `index` of this run and logs in; `None` (with the
    /// error counted) when either fails.
    pub async fn sign_up(ctx: &Context, index: u32, seed: u64, run_tag: &str) -> Option<Self> {
        let mut rng = SplitMix64::new(seed ^ u64::from(index).wrapping_mul(0xA24B_AED4_963E_E407));
        rng.next_u64();
        let tastes = Tastes::draw(&mut rng, &ctx.catalogue);
        let email = format!("load-{run_tag}-{index}@load.shopmesh.test");
        let register = ctx.http.post(format!("{}/users", ctx.user_url)).json(
            &json!({ "email": email, "name": format!("Shopper {index}"), "password": PASSWORD }),
        );
        exchange(&ctx.stats, Action::Register, register, StatusCode::CREATED)
            .await
            .ok()?;
        let login = ctx
            .http
            .post(format!("{}/sessions", ctx.user_url))
            .json(&json!({ "email": email, "password": PASSWORD }));
        let body = exchange(&ctx.stats, Action::Login, login, StatusCode::OK)
            .await
            .ok()?;
        let session: Session = serde_json::from_slice(&body).ok()?;
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", session.token)).ok()?;
        auth.set_sensitive(true);
        Some(Self {
            rng,
            tastes,
            auth,
            cart: Vec::new(),
            recent: VecDeque::with_capacity(RECENT),
            orders: Vec::new(),
            to_remove: Vec::new(),
        })
    }

    /// The `Authorization` header of this shopper's session (`shopmesh
    /// bench` signs shoppers up here, then places its own orders).
    pub fn authorization(&self) -> &HeaderValue {
        &self.auth
    }

    /// Acts until the pacer says the run is over.
    pub async fn run(mut self, ctx: Arc<Context>, pacer: Arc<super::pacer::Pacer>) {
        loop {
            // Exponential pauses: people are irregular; capped so one unlucky
            // draw does not idle a shopper for the whole run.
            let factor = (-(1.0 - unit(&mut self.rng)).ln()).min(10.0);
            if !pacer.acquire_after(ctx.think_time.mul_f64(factor)).await {
                break;
            }
            let action = self.choose(&ctx.catalogue);
            self.act(action, &ctx).await;
        }
    }

    /// The next action: a weighted draw, limited to what makes sense now.
    fn choose(&mut self, catalogue: &Catalogue) -> Action {
        if !self.to_remove.is_empty() {
            return Action::CartRemove;
        }
        if self.cart.len() >= FULL_CART {
            return Action::Checkout;
        }
        // A shop's funnel: mostly looking, some searching, few carts, fewer
        // orders (about a dozen views per cart line, two or three lines per
        // order, one order in six cancelled). Writes cost the services
        // several times a read, so this mix also sets the rate they sustain.
        let action = match self.rng.below(1000) {
            0..=719 => Action::View,
            720..=819 => Action::List,
            820..=899 => Action::Search,
            900..=914 => Action::Rate,
            915..=964 => Action::CartAdd,
            965..=974 => Action::CartRemove,
            975..=994 => Action::Checkout,
            _ => Action::Cancel,
        };
        let possible = match action {
            Action::Rate => !self.recent.is_empty(),
            Action::CartAdd => self.cart_candidate(catalogue).is_some(),
            Action::CartRemove | Action::Checkout => !self.cart.is_empty(),
            Action::Cancel => !self.orders.is_empty(),
            _ => true,
        };
        if possible { action } else { Action::View }
    }

    /// A recently viewed, in-stock product not yet in the cart, favourites first.
    fn cart_candidate(&self, catalogue: &Catalogue) -> Option<usize> {
        let fits = |p: &&usize| !self.cart.contains(p) && catalogue.in_stock(**p);
        self.recent
            .iter()
            .rev()
            .filter(fits)
            .find(|p| self.tastes.likes(catalogue.products[**p].category))
            .or_else(|| self.recent.iter().rev().find(fits))
            .copied()
    }

    async fn act(&mut self, action: Action, ctx: &Context) {
        let catalogue = &ctx.catalogue;
        let stats = &ctx.stats;
        let http = &ctx.http;
        match action {
            Action::View => {
                let product = self.tastes.product(&mut self.rng, catalogue);
                let request = http
                    .get(format!(
                        "{}/products/{}",
                        ctx.product_url, catalogue.products[product].id
                    ))
                    .header(AUTHORIZATION, self.auth.clone());
                if let Ok(body) = exchange(stats, action, request, StatusCode::OK).await {
                    if let Ok(viewed) = serde_json::from_slice::<Viewed>(&body) {
                        catalogue.products[product]
                            .stock
                            .store(viewed.stock, std::sync::atomic::Ordering::Relaxed);
                    }
                    if self.recent.len() == RECENT {
                        self.recent.pop_front();
                    }
                    self.recent.push_back(product);
                }
            }
            Action::List => {
                let category = self.tastes.category(&mut self.rng, catalogue);
                let page = 1 + self.rng.below(2);
                let request = http
                    .get(format!(
                        "{}/products?category={}&page={page}&per_page=20",
                        ctx.product_url,
                        encode(&catalogue.categories[category])
                    ))
                    .header(AUTHORIZATION, self.auth.clone());
                let _ = exchange(stats, action, request, StatusCode::OK).await;
            }
            Action::Search => {
                let product = &catalogue.products[self.tastes.product(&mut self.rng, catalogue)];
                let word = match product.words.len() {
                    0 => "a",
                    n => &product.words[self.rng.below(n as u64) as usize],
                };
                // Half the searches stay in the product's category.
                let category = if self.rng.below(2) == 0 {
                    format!(
                        "&category={}",
                        encode(&catalogue.categories[product.category])
                    )
                } else {
                    String::new()
                };
                let request = http
                    .get(format!(
                        "{}/products?q={}{category}",
                        ctx.product_url,
                        encode(word)
                    ))
                    .header(AUTHORIZATION, self.auth.clone());
                let _ = exchange(stats, action, request, StatusCode::OK).await;
            }
            Action::Rate => {
                let product = self.recent[self.rng.below(self.recent.len() as u64) as usize];
                let stars = self
                    .tastes
                    .stars(&mut self.rng, catalogue.products[product].category);
                let request = http
                    .post(format!(
                        "{}/products/{}/ratings",
                        ctx.product_url, catalogue.products[product].id
                    ))
                    .header(AUTHORIZATION, self.auth.clone())
                    .json(&json!({ "stars": stars }));
                let _ = exchange(stats, action, request, StatusCode::CREATED).await;
            }
            Action::CartAdd => {
                let Some(product) = self.cart_candidate(catalogue) else {
                    return;
                };
                let quantity = 1 + i64::from(self.rng.below(4) == 0);
                let request = http
                    .post(format!("{}/cart/items", ctx.order_url))
                    .header(AUTHORIZATION, self.auth.clone())
                    .json(&json!({ "product_id": catalogue.products[product].id, "quantity": quantity }));
                if exchange(stats, action, request, StatusCode::CREATED)
                    .await
                    .is_ok()
                {
                    self.cart.push(product);
                }
            }
            Action::CartRemove => {
                let product = match self.to_remove.pop() {
                    Some(product) => product,
                    None => self.cart[self.rng.below(self.cart.len() as u64) as usize],
                };
                let request = http
                    .delete(format!(
                        "{}/cart/items/{}",
                        ctx.order_url, catalogue.products[product].id
                    ))
                    .header(AUTHORIZATION, self.auth.clone());
                match exchange(stats, action, request, StatusCode::NO_CONTENT).await {
                    // A 404 also means it is not in the cart (any more).
                    Ok(_) | Err(Some(_)) => self.cart.retain(|p| *p != product),
                    Err(None) => {}
                }
            }
            Action::Checkout => {
                let request = http
                    .post(format!("{}/orders", ctx.order_url))
                    .header(AUTHORIZATION, self.auth.clone());
                match exchange(stats, action, request, StatusCode::CREATED).await {
                    Ok(body) => {
                        self.cart.clear();
                        if let Ok(placed) = serde_json::from_slice::<Placed>(&body) {
                            if self.orders.len() == ORDERS {
                                self.orders.remove(0);
                            }
                            self.orders.push(placed.id);
                        }
                    }
                    Err(Some((status, body))) if is_out_of_stock(status, &body) => {
                        // What the shopper learns: these are gone; take them out.
                        if let Ok(refusal) = serde_json::from_slice::<OutOfStock>(&body) {
                            for short in refusal.short {
                                if let Some(&product) = catalogue.index.get(&short.product_id) {
                                    catalogue.products[product].stock.store(
                                        short.available,
                                        std::sync::atomic::Ordering::Relaxed,
                                    );
                                    if self.cart.contains(&product) {
                                        self.to_remove.push(product);
                                    }
                                }
                            }
                        }
                        if self.to_remove.is_empty() {
                            // Nothing named that we hold: start over with an empty cart.
                            self.to_remove.extend(self.cart.iter().copied());
                        }
                    }
                    Err(Some((StatusCode::CONFLICT, _))) => self.cart.clear(),
                    Err(_) => {}
                }
            }
            Action::Cancel => {
                let Some(order) = self.orders.pop() else {
                    return;
                };
                let request = http
                    .post(format!("{}/orders/{order}/cancel", ctx.order_url))
                    .header(AUTHORIZATION, self.auth.clone());
                let _ = exchange(stats, action, request, StatusCode::OK).await;
            }
            Action::Register | Action::Login => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode("garden"), "garden");
        assert_eq!(encode("a b&c=d"), "a%20b%26c%3Dd");
        assert_eq!(encode("café"), "caf%C3%A9");
    }

    #[test]
    fn only_an_out_of_stock_problem_is_an_expected_refusal() {
        let body = br#"{"type":"/problems/out-of-stock","status":409,"short":[]}"#;
        assert!(is_out_of_stock(StatusCode::CONFLICT, body));
        assert!(!is_out_of_stock(
            StatusCode::CONFLICT,
            br#"{"type":"/problems/empty-cart"}"#
        ));
        assert_eq!(
            unexpected(StatusCode::CONFLICT, br#"{"type":"/problems/empty-cart"}"#),
            Outcome::Error("http 409 /problems/empty-cart".into())
        );
        assert_eq!(
            unexpected(StatusCode::BAD_GATEWAY, b""),
            Outcome::Error("http 502".into())
        );
    }
}
