//! `spawn_app`: the order service on a free port, a fresh database and its
//! own nats-server.

use shopmesh_order::settings::Settings;
use shopmesh_order::startup::Application;
use shopmesh_shared::auth::{TokenKey, now_seconds};
use shopmesh_shared::events::UserId;
use shopmesh_shared::settings::{Env, Secret};
use shopmesh_shared::testkit::{TestBackbone, TestDatabase};

pub const AUTH_KEY: &str = "order-tests-key-0123456789abcdef0123";

pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
    pub backbone: TestBackbone,
    pub handle: actix_web::dev::ServerHandle,
    pub stopped: tokio::task::JoinHandle<anyhow::Result<()>>,
    _database: TestDatabase,
}

pub async fn spawn_app(database: TestDatabase) -> TestApp {
    let backbone = TestBackbone::start().await;
    let env = Env::from_pairs([
        ("SHOPMESH_HTTP_PORT", "0".to_owned()),
        ("SHOPMESH_HTTP_WORKERS", "1".to_owned()),
        ("NATS_URL", backbone.server.url()),
        ("DATABASE_URL", database.url.clone()),
        ("SHOPMESH_AUTH_KEY", AUTH_KEY.to_owned()),
        ("SHOPMESH_RPC_TIMEOUT", "500ms".to_owned()),
    ]);
    let settings = Settings::from_env(&env).expect("test settings");
    let app = Application::build(settings)
        .await
        .expect("order service starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let handle = app.server_handle();
    let stopped = tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        http: reqwest::Client::new(),
        backbone,
        handle,
        stopped,
        _database: database,
    }
}

/// A valid session token for a new user.
pub fn token() -> String {
    let key = TokenKey::new(Secret::new(AUTH_KEY)).unwrap();
    key.issue(UserId::new_v7(), now_seconds(), 3600)
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.http.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    pub async fn post_json(
        &self,
        path: &str,
        token: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }
}

/// The problem body of a response, checking its content type.
pub async fn problem(response: reqwest::Response) -> serde_json::Value {
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert_eq!(content_type, "application/problem+json");
    response.json().await.unwrap()
}
