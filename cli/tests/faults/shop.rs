//! A shopper's and an admin's requests against the three domain services,
//! and the figures a test reads back from them (`/metrics`).

use super::processes::{ADMIN_TOKEN, DomainServices};
use std::time::Duration;

/// Where the services answer, and one HTTP client for all of them.
#[derive(Clone)]
pub struct Shop {
    pub http: reqwest::Client,
    pub user: String,
    pub product: String,
    pub order: String,
}

pub const PASSWORD: &str = "correct horse battery";

/// An HTTP client whose requests cannot hang a test: a request that gets no
/// answer fails after 30 s.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client")
}

impl Shop {
    pub fn new(http: &reqwest::Client, services: &DomainServices) -> Self {
        Self {
            http: http.clone(),
            user: services.user.url.clone(),
            product: services.product.url.clone(),
            order: services.order.url.clone(),
        }
    }

    pub async fn register(&self, email: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/users", self.user))
            .json(&serde_json::json!({ "email": email, "name": "Fault Shopper", "password": PASSWORD }))
            .send()
            .await
            .expect("the user service answers")
    }

    /// A session token, or the status of the refusal.
    pub async fn login(&self, email: &str) -> Result<String, u16> {
        let response = self
            .http
            .post(format!("{}/sessions", self.user))
            .json(&serde_json::json!({ "email": email, "password": PASSWORD }))
            .send()
            .await
            .expect("the user service answers");
        if response.status() != 200 {
            return Err(response.status().as_u16());
        }
        let body: serde_json::Value = response.json().await.expect("session body");
        Ok(body["token"].as_str().expect("token").to_owned())
    }

    /// Registers and logs in; the token.
    pub async fn shopper(&self, email: &str) -> String {
        assert_eq!(self.register(email).await.status(), 201, "register {email}");
        self.login(email).await.expect("login")
    }

    pub async fn create_product(&self, name: &str, stock: i64) -> reqwest::Response {
        self.http
            .post(format!("{}/products", self.product))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({ "name": name, "category": "garden", "price_cents": 12_50, "stock": stock }))
            .send()
            .await
            .expect("the product service answers")
    }

    /// Creates a product; its id.
    pub async fn product(&self, name: &str, stock: i64) -> String {
        let response = self.create_product(name, stock).await;
        assert_eq!(response.status(), 201, "create {name}");
        let body: serde_json::Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().to_owned()
    }

    /// A signed-in view (a `product.viewed` behaviour event when it is 200).
    pub async fn view(&self, token: &str, product_id: &str) -> u16 {
        self.http
            .get(format!("{}/products/{product_id}", self.product))
            .bearer_auth(token)
            .send()
            .await
            .expect("the product service answers")
            .status()
            .as_u16()
    }

    pub async fn add_to_cart(
        &self,
        token: &str,
        product_id: &str,
        quantity: i64,
    ) -> reqwest::Response {
        self.http
            .post(format!("{}/cart/items", self.order))
            .bearer_auth(token)
            .json(&serde_json::json!({ "product_id": product_id, "quantity": quantity }))
            .send()
            .await
            .expect("the order service answers")
    }

    pub async fn checkout(&self, token: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/orders", self.order))
            .bearer_auth(token)
            .send()
            .await
            .expect("the order service answers")
    }

    pub async fn get(&self, url: &str, token: &str) -> reqwest::Response {
        self.http
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("the service answers")
    }
}

/// The sum of every sample of metric `name` (all label sets) that the
/// service at `url` reports, 0 when it has none yet.
pub async fn metric_sum(http: &reqwest::Client, url: &str, name: &str) -> f64 {
    let text = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .expect("the service answers /metrics")
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
