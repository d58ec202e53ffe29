//! `GET /recommendations/{user}` and `POST /orders` at fixed offered rates,
//! open loop: request `i` is due at `start + i / rate` and is sent then
//! whatever the earlier ones are doing, and its latency runs from that due
//! time, not from when it could be sent. So a stall shows in the figures as
//! the wait it caused, instead of hiding behind fewer requests
//! (coordinated omission). Both rates run at the same time.
//!
//! Orders need shoppers with a session and a filled cart: the `shopmesh load`
//! shoppers sign up; each order takes a free shopper (its wait counts), posts
//! the checkout, refills that shopper's cart with one unit and frees it. The
//! ordered products are restocked first, so that no checkout meets an empty
//! shelf and every refusal is an error.

use super::platform::Urls;
use super::samples::{Percentiles, Samples};
use crate::commands::load::shopper::{Context, Shopper};
use crate::commands::load::stats::Stats;
use crate::commands::load::tastes::Catalogue;
use anyhow::{Context as _, bail};
use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde::Serialize;
use serde_json::json;
use shopmesh_shared::events::UserId;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, mpsc};
use tokio::time::Instant;

/// Products the orders spread over.
const ORDERED_PRODUCTS: usize = 20;
/// Stock each ordered product gets first (the product service's maximum).
const RESTOCK: i64 = 1_000_000;

#[derive(Debug, Clone, Serialize)]
pub struct EndpointFigures {
    /// Offered requests per second.
    pub rate: f64,
    pub requests: usize,
    pub errors: usize,
    #[serde(flatten)]
    pub latency: Percentiles,
    /// Errors by kind (status and problem type, or transport failure).
    pub error_kinds: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HttpFigures {
    pub duration_s: f64,
    pub shoppers: usize,
    pub recommendations: EndpointFigures,
    pub orders: EndpointFigures,
}

pub struct HttpPlan {
    pub recommend_rate: f64,
    pub order_rate: f64,
    pub duration: Duration,
    pub shoppers: u32,
}

/// How one request ended: its latency from its due time, and an error kind.
type Outcome = (Duration, Result<(), String>);

fn figures(rate: f64, outcomes: Vec<Outcome>) -> EndpointFigures {
    let mut samples = Samples::default();
    let mut error_kinds = BTreeMap::new();
    for (latency, result) in &outcomes {
        samples.push(*latency);
        if let Err(kind) = result {
            *error_kinds.entry(kind.clone()).or_default() += 1;
        }
    }
    EndpointFigures {
        rate,
        requests: samples.len(),
        errors: error_kinds.values().sum(),
        latency: samples.percentiles(),
        error_kinds,
    }
}

/// The kind of a failed exchange: `http <status>` (with the problem type
/// when there is one) or the transport failure.
async fn check(
    response: Result<reqwest::Response, reqwest::Error>,
    expected: StatusCode,
) -> Result<(), String> {
    let response = response.map_err(|e| {
        if e.is_timeout() {
            "timeout".to_owned()
        } else if e.is_connect() {
            "connect".to_owned()
        } else {
            "transport".to_owned()
        }
    })?;
    let status = response.status();
    if status == expected {
        // Read the body: the answer is complete only then.
        return response
            .bytes()
            .await
            .map(drop)
            .map_err(|_| "transport".to_owned());
    }
    let problem: Option<serde_json::Value> = response.json().await.ok();
    Err(match problem.as_ref().and_then(|p| p["type"].as_str()) {
        Some(kind) => format!("http {} {kind}", status.as_u16()),
        None => format!("http {}", status.as_u16()),
    })
}

/// Calls `request(i, due)` at `start + i / rate` for `duration`, each in its
/// own task; the outcomes once all have finished.
async fn open_loop<F, Fut>(rate: f64, duration: Duration, request: F) -> Vec<Outcome>
where
    F: Fn(usize, Instant) -> Fut,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let count = (duration.as_secs_f64() * rate).round().max(1.0) as usize;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        let due = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due).await;
        let call = request(i, due);
        tasks.push(tokio::spawn(async move {
            let result = call.await;
            (due.elapsed(), result)
        }));
    }
    let mut outcomes = Vec::with_capacity(count);
    for task in tasks {
        outcomes.push(
            task.await
                .unwrap_or_else(|e| (Duration::ZERO, Err(format!("task: {e}")))),
        );
    }
    outcomes
}

/// A shopper who can check out: a session and a cart with one line.
struct Buyer {
    authorization: HeaderValue,
}

pub struct HttpLoad<'a> {
    pub http: &'a reqwest::Client,
    pub urls: &'a Urls,
    pub admin_token: &'a str,
    /// Users with a history, whose recommendations are asked for.
    pub users: &'a [UserId],
}

impl HttpLoad<'_> {
    pub async fn run(&self, plan: &HttpPlan, catalogue: Catalogue) -> anyhow::Result<HttpFigures> {
        let products = self.restock(&catalogue).await?;
        let buyers = self.sign_up(plan.shoppers, catalogue).await?;
        let shoppers = buyers.len();
        for buyer in &buyers {
            refill(
                self.http,
                &self.urls.order,
                &buyer.authorization,
                &products[0],
            )
            .await
            .map_err(|kind| anyhow::anyhow!("filling a cart: {kind}"))?;
        }
        let (free, ready) = mpsc::unbounded_channel();
        for buyer in buyers {
            let _ = free.send(buyer);
        }
        let ready = Arc::new(Mutex::new(ready));
        let products = Arc::new(products);

        let recommendations = open_loop(plan.recommend_rate, plan.duration, |i, _| {
            let user = self.users[i.wrapping_mul(7919) % self.users.len()];
            let request = self.http.get(format!(
                "{}/recommendations/{user}?k=10",
                self.urls.analytics
            ));
            async move { check(request.send().await, StatusCode::OK).await }
        });
        let orders = open_loop(plan.order_rate, plan.duration, |i, _| {
            let (http, order_url) = (self.http.clone(), self.urls.order.clone());
            let (free, ready, products) = (free.clone(), ready.clone(), products.clone());
            async move {
                let buyer = ready
                    .lock()
                    .await
                    .recv()
                    .await
                    .ok_or_else(|| "no shopper left".to_owned())?;
                let placed = http
                    .post(format!("{order_url}/orders"))
                    .header(AUTHORIZATION, buyer.authorization.clone())
                    .send()
                    .await;
                let result = check(placed, StatusCode::CREATED).await;
                // The next order of this shopper needs a cart again; a
                // failed refill shows as that order's error.
                let product = &products[i % products.len()];
                let _ = refill(&http, &order_url, &buyer.authorization, product).await;
                let _ = free.send(buyer);
                result
            }
        });
        let (recommendations, orders) = tokio::join!(recommendations, orders);
        Ok(HttpFigures {
            duration_s: plan.duration.as_secs_f64(),
            shoppers,
            recommendations: figures(plan.recommend_rate, recommendations),
            orders: figures(plan.order_rate, orders),
        })
    }

    /// Gives the first products (up to [`ORDERED_PRODUCTS`]) the most stock
    /// allowed; their ids.
    async fn restock(&self, catalogue: &Catalogue) -> anyhow::Result<Vec<String>> {
        let mut products = Vec::new();
        for product in catalogue.products.iter().take(ORDERED_PRODUCTS) {
            let url = format!("{}/products/{}", self.urls.product, product.id);
            self.http
                .patch(&url)
                .bearer_auth(self.admin_token)
                .json(&json!({ "stock": RESTOCK }))
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .with_context(|| format!("restocking: PATCH {url}"))?;
            products.push(product.id.clone());
        }
        if products.is_empty() {
            bail!("the catalogue is empty");
        }
        Ok(products)
    }

    /// Registers and logs in `count` shoppers (as `shopmesh load` does).
    async fn sign_up(&self, count: u32, catalogue: Catalogue) -> anyhow::Result<Vec<Buyer>> {
        let ctx = Arc::new(Context {
            http: self.http.clone(),
            user_url: self.urls.user.clone(),
            product_url: self.urls.product.clone(),
            order_url: self.urls.order.clone(),
            catalogue,
            stats: Stats::default(),
            think_time: Duration::ZERO,
        });
        // Emails must be new on every run against the same databases.
        let tag = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let buyers: Vec<Buyer> = futures::stream::iter(0..count)
            .map(|index| {
                let (ctx, tag) = (ctx.clone(), tag.clone());
                async move { Shopper::sign_up(&ctx, index, 42, &tag).await }
            })
            // Password hashing is costly on purpose: a few at once.
            .buffer_unordered(4)
            .filter_map(|shopper| async move {
                shopper.map(|s| Buyer {
                    authorization: s.authorization().clone(),
                })
            })
            .collect()
            .await;
        if buyers.is_empty() {
            bail!(
                "no shopper could sign up at {}: {:?}",
                self.urls.user,
                ctx.stats.snapshot().errors
            );
        }
        Ok(buyers)
    }
}

/// Puts one unit of `product` in the cart of the shopper `authorization` names.
async fn refill(
    http: &reqwest::Client,
    order_url: &str,
    authorization: &HeaderValue,
    product: &str,
) -> Result<(), String> {
    let response = http
        .post(format!("{order_url}/cart/items"))
        .header(AUTHORIZATION, authorization.clone())
        .json(&json!({ "product_id": product, "quantity": 1 }))
        .send()
        .await;
    check(response, StatusCode::CREATED).await
}
