//! `/healthz` (the process answers) and `/readyz` (its dependencies answer).

use actix_web::HttpResponse;
use futures::future::BoxFuture;
use std::time::Duration;

/// One dependency a service needs to be ready: a name and a check.
pub struct ReadinessCheck {
    pub name: &'static str,
    pub check: Box<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>,
}

impl ReadinessCheck {
    pub fn new<F, Fut>(name: &'static str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
    {
        Self {
            name,
            check: Box::new(move || Box::pin(check())),
        }
    }

    /// The database answers `SELECT 1`.
    pub fn database(pool: sqlx::AnyPool) -> Self {
        Self::new("database", move || {
            let pool = pool.clone();
            async move {
                sqlx::query("SELECT 1")
                    .execute(crate::db_span::traced(&pool))
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        })
    }

    /// The NATS connection is up.
    pub fn nats(client: async_nats::Client) -> Self {
        Self::new("nats", move || {
            let state = client.connection_state();
            async move {
                match state {
                    async_nats::connection::State::Connected => Ok(()),
                    other => Err(format!("connection {other}")),
                }
            }
        })
    }
}

/// `GET /healthz`: 200 while the process serves requests.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 when every check passes within a second, else 503 with
/// each check's result.
pub async fn readiness_response(checks: &[ReadinessCheck]) -> HttpResponse {
    let mut ready = true;
    let mut results = serde_json::Map::new();
    for check in checks {
        let outcome = tokio::time::timeout(Duration::from_secs(1), (check.check)()).await;
        let text = match outcome {
            Ok(Ok(())) => "ok".to_owned(),
            Ok(Err(error)) => error,
            Err(_) => "timed out".to_owned(),
        };
        ready &= text == "ok";
        results.insert(check.name.to_owned(), text.into());
    }
    let body = serde_json::json!({
        "status": if ready { "ready" } else { "unavailable" },
        "checks": results,
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
