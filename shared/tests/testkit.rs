//! The harness itself: servers and databases must be real and isolated.

use shopmesh_shared::events::UserId;
use shopmesh_shared::nats::ServerVersion;
use shopmesh_shared::testkit::{
    DatabaseKind, NatsServer, TestBackbone, find_nats_server, nats_server_version, test_databases,
    viewed_by,
};
use sqlx::Row;
use sqlx::any::AnyPoolOptions;

#[test]
fn the_found_nats_server_is_at_least_2_10() {
    let bin = find_nats_server().expect("scripts/test.sh provides one");
    assert!(nats_server_version(&bin).unwrap() >= ServerVersion::minimum());
}

#[test]
fn each_server_gets_its_own_port() {
    let a = NatsServer::start();
    let b = NatsServer::start();
    assert_ne!(a.port(), b.port());
}

#[tokio::test]
async fn a_restarted_server_keeps_its_jetstream_data() {
    let mut backbone = TestBackbone::start().await;
    backbone
        .publisher()
        .publish(&viewed_by(UserId::new_v7()))
        .await
        .unwrap();
    backbone.server.restart();
    let stream = backbone.settings.streams.partition_stream(
        shopmesh_shared::subjects::Partition::new(0, Default::default()).unwrap(),
    );
    // The client reconnects by itself; the streams and the message survived.
    shopmesh_shared::testkit::eventually(
        std::time::Duration::from_secs(20),
        "stream readable after restart",
        async || backbone.js.get_stream(&stream).await.is_ok(),
    )
    .await;
    assert_eq!(backbone.event_count().await, 1);
}

#[tokio::test]
async fn every_test_database_is_fresh_and_writable() {
    let databases = test_databases().await;
    let postgres_wanted = std::env::var("TEST_POSTGRES_URL").is_ok_and(|v| !v.is_empty());
    assert_eq!(
        databases.iter().any(|d| d.kind == DatabaseKind::Postgres),
        postgres_wanted
    );
    for database in &databases {
        let pool = AnyPoolOptions::new()
            .max_connections(2)
            .connect(&database.url)
            .await
            .unwrap_or_else(|e| panic!("{:?} {}: {e}", database.kind, database.url));
        // A fresh database has no tables of ours, so this cannot collide.
        sqlx::query("CREATE TABLE probe (id BIGINT PRIMARY KEY, note TEXT NOT NULL)")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO probe (id, note) VALUES ($1, $2)")
            .bind(1_i64)
            .bind("fresh")
            .execute(&pool)
            .await
            .unwrap();
        let row = sqlx::query("SELECT note FROM probe WHERE id = $1")
            .bind(1_i64)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(row.get::<String, _>(0), "fresh");
        pool.close().await;
    }
}
