//! `/healthz` and `/readyz`.

use crate::helpers::spawn_app;
use serde_json::Value;
use shopmesh_shared::testkit::test_databases;

#[tokio::test]
async fn healthz_and_readyz_answer_200() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let health = app.client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(health.status(), 200);
        assert_eq!(health.json::<Value>().await.unwrap()["status"], "ok");

        let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 200);
        let body: Value = ready.json().await.unwrap();
        assert_eq!(body["status"], "ready", "{body}");
        assert_eq!(body["checks"]["database"], "ok");
        assert_eq!(body["checks"]["nats"], "ok");
    }
}
