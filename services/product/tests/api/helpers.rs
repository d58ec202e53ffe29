//! Starting the real service against a real nats-server and a fresh
//! database, and talking to it the way clients do: HTTP and NATS.

use actix_web::dev::ServerHandle;
use async_nats::HeaderMap;
use serde_json::{Value, json};
use shopmesh_product::settings::Settings;
use shopmesh_product::startup::Application;
use shopmesh_shared::auth::{TokenKey, now_seconds};
use shopmesh_shared::events::{Event, EventType, OrderId, ProductId, UserId};
use shopmesh_shared::nats::headers::decode_message;
use shopmesh_shared::rpc::{
    self, LookupRequest, LookupResponse, PRODUCT_LOOKUP, PRODUCT_RELEASE, PRODUCT_RESERVE,
    ReleaseRequest, ReleaseResponse, ReserveLine, ReserveRequest, ReserveResponse, RpcError,
};
use shopmesh_shared::settings::{Env, Secret};
use shopmesh_shared::testkit::{DatabaseKind, TestBackbone, TestDatabase, eventually};
use std::time::Duration;
use tokio::task::JoinHandle;

pub const AUTH_KEY: &str = "product-tests-auth-key-0123456789abcdef";
pub const ADMIN_TOKEN: &str = "product-tests-admin-token";
/// Long enough for a loaded CI machine, short enough to fail a test quickly.
pub const WAIT: Duration = Duration::from_secs(15);

pub struct TestApp {
    pub address: String,
    pub kind: DatabaseKind,
    pub http: reqwest::Client,
    pub backbone: TestBackbone,
    pub handle: ServerHandle,
    pub run: Option<JoinHandle<anyhow::Result<()>>>,
    token_key: TokenKey,
    // Last: the database outlives the service that uses it.
    _database: TestDatabase,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Sent at once; the server winds down in the background.
        drop(self.handle.stop(false));
    }
}

/// The settings a test service runs with.
pub fn test_env(backbone: &TestBackbone, database: &TestDatabase) -> Vec<(String, String)> {
    [
        ("SHOPMESH_HTTP_PORT", "0".to_owned()),
        ("SHOPMESH_HTTP_WORKERS", "2".to_owned()),
        ("SHOPMESH_SHUTDOWN_GRACE", "5s".to_owned()),
        ("NATS_URL", backbone.server.url()),
        ("DATABASE_URL", database.url.clone()),
        ("SHOPMESH_AUTH_KEY", AUTH_KEY.to_owned()),
        ("SHOPMESH_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
        ("SHOPMESH_OUTBOX_POLL", "100ms".to_owned()),
        // Far longer than any test: a read that the product cache answers
        // with a row older than a change this instance made fails the test.
        ("SHOPMESH_PRODUCT_CACHE_TTL", "1h".to_owned()),
        ("SHOPMESH_PUBLISH_BACKOFF", "20ms".to_owned()),
        ("SHOPMESH_PUBLISH_ACK_TIMEOUT", "2s".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

pub async fn spawn_app(database: TestDatabase) -> TestApp {
    let backbone = TestBackbone::start().await;
    let env = Env::from_pairs(test_env(&backbone, &database));
    let settings = Settings::from_env(&env).expect("test settings are valid");
    let app = Application::build(settings)
        .await
        .expect("the service starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let handle = app.server_handle();
    let run = tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        kind: database.kind,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        backbone,
        handle,
        run: Some(run),
        token_key: TokenKey::new(Secret::new(AUTH_KEY)).unwrap(),
        _database: database,
    }
}

/// An event as stored in the events stream.
#[derive(Debug)]
pub struct StoredEvent {
    pub subject: String,
    pub headers: HeaderMap,
    pub event: Event,
}

impl StoredEvent {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.as_str())
    }
}

/// Reserves `lines` for `order_id` over NATS; panics when the call fails.
pub async fn reserve(app: &TestApp, order_id: OrderId, lines: Vec<ReserveLine>) -> ReserveResponse {
    app.call(PRODUCT_RESERVE, &ReserveRequest { order_id, lines })
        .await
        .unwrap_or_else(|e| panic!("reserve on {:?}: {e}", app.kind))
}

/// Releases `order_id` over NATS: whether there was stock to give back.
pub async fn release(app: &TestApp, order_id: OrderId) -> bool {
    let response: ReleaseResponse = app
        .call(PRODUCT_RELEASE, &ReleaseRequest { order_id })
        .await
        .unwrap_or_else(|e| panic!("release on {:?}: {e}", app.kind));
    response.released
}

/// The product's stock as the lookup RPC answers it.
pub async fn stock(app: &TestApp, product_id: ProductId) -> i64 {
    let response: LookupResponse = app
        .call(
            PRODUCT_LOOKUP,
            &LookupRequest {
                product_ids: vec![product_id],
            },
        )
        .await
        .unwrap();
    response.products[0].stock
}

/// A valid create body with a unique name built from `name`.
pub fn product_body(name: &str, category: &str, price_cents: i64, stock: i64) -> Value {
    json!({ "name": name, "category": category, "price_cents": price_cents, "stock": stock })
}

impl TestApp {
    /// The service's database, for changes made behind its back (as
    /// another replica's would be).
    pub fn database_url(&self) -> &str {
        &self._database.url
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A valid session token for `user`, as the user service would issue.
    pub fn user_token(&self, user: UserId) -> String {
        self.token_key.issue(user, now_seconds(), 3600)
    }

    pub async fn post_product_with(&self, token: Option<&str>, body: &Value) -> reqwest::Response {
        let mut request = self.http.post(self.url("/products")).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    pub async fn post_product(&self, body: &Value) -> reqwest::Response {
        self.post_product_with(Some(ADMIN_TOKEN), body).await
    }

    /// Creates a product and returns its body; panics unless 201.
    pub async fn create_product(
        &self,
        name: &str,
        category: &str,
        price_cents: i64,
        stock: i64,
    ) -> Value {
        let response = self
            .post_product(&product_body(name, category, price_cents, stock))
            .await;
        assert_eq!(response.status(), 201, "create {name} on {:?}", self.kind);
        response.json().await.unwrap()
    }

    pub async fn create_product_id(&self, name: &str, stock: i64) -> ProductId {
        let body = self.create_product(name, "books", 1_999, stock).await;
        ProductId::parse(body["id"].as_str().unwrap()).unwrap()
    }

    pub async fn patch_product_with(
        &self,
        token: Option<&str>,
        id: &str,
        body: &Value,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .patch(self.url(&format!("/products/{id}")))
            .json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    pub async fn get_product(&self, id: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.http.get(self.url(&format!("/products/{id}")));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    /// `GET /products` with these query parameters (encoded here).
    pub async fn list_products(
        &self,
        params: &[(&str, &str)],
        token: Option<&str>,
    ) -> reqwest::Response {
        let url = reqwest::Url::parse_with_params(&self.url("/products"), params).unwrap();
        let mut request = self.http.get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    pub async fn rate(&self, id: &str, token: Option<&str>, body: &Value) -> reqwest::Response {
        let mut request = self
            .http
            .post(self.url(&format!("/products/{id}/ratings")))
            .json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    /// A request-reply call to the service over NATS.
    pub async fn call<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        subject: &'static str,
        request: &Req,
    ) -> Result<Resp, RpcError> {
        rpc::call(&self.backbone.client, subject, request, WAIT).await
    }

    /// Every event in the events streams, oldest first.
    pub async fn events(&self) -> Vec<StoredEvent> {
        let mut events = Vec::new();
        for message in self.backbone.stored_events().await {
            let event = decode_message(Some(&message.headers), &message.payload)
                .expect("stored events decode");
            events.push(StoredEvent {
                subject: message.subject.to_string(),
                headers: message.headers,
                event,
            });
        }
        events
    }

    /// The stream's events of `event_type`.
    pub async fn events_of(&self, event_type: EventType) -> Vec<StoredEvent> {
        self.events()
            .await
            .into_iter()
            .filter(|e| e.event.event_type() == event_type)
            .collect()
    }

    /// Waits until the stream holds at least `count` events of `event_type`
    /// and returns them all.
    pub async fn wait_for_events(&self, event_type: EventType, count: usize) -> Vec<StoredEvent> {
        let what = format!("{count} {event_type} event(s) on {:?}", self.kind);
        eventually(WAIT, &what, async || {
            self.events_of(event_type).await.len() >= count
        })
        .await;
        self.events_of(event_type).await
    }

    /// The `total` of an unfiltered listing: how many products exist.
    pub async fn product_count(&self) -> i64 {
        let response = self.list_products(&[], None).await;
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.unwrap()["total"]
            .as_i64()
            .unwrap()
    }
}

/// Checks a 4xx problem body and returns it.
pub async fn assert_problem(
    response: reqwest::Response,
    status: u16,
    field: Option<&str>,
) -> Value {
    assert_eq!(response.status(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(
        content_type.starts_with("application/problem+json"),
        "content type {content_type}"
    );
    let body: Value = response.json().await.expect("a JSON problem body");
    assert_eq!(body["status"], status, "{body}");
    assert!(body["type"].is_string(), "{body}");
    assert!(body["title"].is_string(), "{body}");
    assert!(body["detail"].is_string(), "{body}");
    match field {
        Some(field) => assert_eq!(body["field"], field, "{body}"),
        None => assert!(body.get("field").is_none(), "{body}"),
    }
    body
}

/// A W3C traceparent: `00-<32 hex>-<16 hex>-<2 hex>`.
pub fn assert_traceparent(value: Option<&str>) {
    let value = value.expect("a traceparent header");
    let parts: Vec<&str> = value.split('-').collect();
    assert_eq!(parts.len(), 4, "{value}");
    assert_eq!(
        (
            parts[0].len(),
            parts[1].len(),
            parts[2].len(),
            parts[3].len()
        ),
        (2, 32, 16, 2),
        "{value}"
    );
}
