use crate::helpers::spawn_app;
use shopmesh_shared::testkit::TestDatabase;

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app(TestDatabase::sqlite()).await;
    let health = app.get("/healthz", None).await;
    assert_eq!(health.status(), 200);
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["nats"], "ok");
}

#[tokio::test]
async fn readiness_fails_when_nats_is_gone_and_shutdown_returns() {
    let mut app = spawn_app(TestDatabase::sqlite()).await;
    app.backbone.server.kill();
    shopmesh_shared::testkit::eventually(
        std::time::Duration::from_secs(10),
        "readyz reports NATS down",
        async || app.get("/readyz", None).await.status() == 503,
    )
    .await;
    app.handle.stop(true).await;
    tokio::time::timeout(std::time::Duration::from_secs(20), app.stopped)
        .await
        .expect("run_until_stopped returns after stop")
        .unwrap()
        .unwrap();
}
