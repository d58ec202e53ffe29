//! The order service's Postgres out of reach: a TCP proxy between them is
//! cut, first right after a checkout's `COMMIT` reached Postgres (its answer
//! lost), then at a random point of concurrent checkouts. Requests that
//! need the database get a 503 problem, `/readyz` says not ready, no order
//! exists without its lines, its `order.placed` outbox row and its stock
//! reservation (nor a reservation without its order), and once the proxy
//! relays again everything works without restarting the service.

use crate::pg_proxy::{PgProxy, upstream_of};
use crate::processes::{DomainServices, ready, status};
use crate::shop::{Shop, http_client};
use crate::stream::{StreamFacts, read_stream};
use crate::tables::{self, Ledger, outbox_backlog};
use shopmesh_shared::events::OrderId;
use shopmesh_shared::testkit::{TestBackbone, TestDatabase, eventually};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const STOCK: i64 = 500;

/// Asserts a 503 `application/problem+json` answer.
async fn assert_unavailable(response: reqwest::Response, what: &str) {
    assert_eq!(response.status(), 503, "{what}");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/problem+json"),
        "{what}: {content_type}"
    );
    let body: serde_json::Value = response.json().await.expect("a JSON problem body");
    assert_eq!(body["status"], 503, "{what}: {body}");
    assert_eq!(body["type"], "/problems/unavailable", "{what}: {body}");
}

#[derive(Default)]
struct Tally {
    placed: AtomicU64,
    unavailable: AtomicU64,
    unexpected: Mutex<Vec<String>>,
}

/// One shopper adding to the cart and checking out until `stop`.
async fn buy_until(
    shop: Shop,
    token: String,
    product: String,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    while !stop.load(Ordering::SeqCst) {
        let added = shop
            .add_to_cart(&token, &product, 1)
            .await
            .status()
            .as_u16();
        if !matches!(added, 201 | 503) {
            tally
                .unexpected
                .lock()
                .unwrap()
                .push(format!("cart add: {added}"));
        }
        match shop.checkout(&token).await.status().as_u16() {
            201 => tally.placed.fetch_add(1, Ordering::SeqCst),
            503 => tally.unavailable.fetch_add(1, Ordering::SeqCst),
            // The cart is empty when the addition before was refused.
            409 => 0,
            status => {
                tally
                    .unexpected
                    .lock()
                    .unwrap()
                    .push(format!("checkout: {status}"));
                0
            }
        };
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_postgres_gives_503s_and_no_partial_order_and_heals_in_place() {
    let Some(admin_url) = std::env::var("TEST_POSTGRES_URL")
        .ok()
        .filter(|v| !v.is_empty())
    else {
        eprintln!("skipped: set TEST_POSTGRES_URL=postgres://... to run the Postgres outage test");
        return;
    };
    let backbone = TestBackbone::start().await;
    let database = TestDatabase::postgres(&admin_url).await;
    let proxy = PgProxy::start(upstream_of(&database.url)).await;
    let http = http_client();
    let services = DomainServices::start(
        &http,
        &backbone.server.url(),
        &[],
        Some(&proxy.url(&database.url)),
    )
    .await;
    let shop = Shop::new(&http, &services);
    // Read back directly, not through the proxy.
    let order_db = tables::open(&database.url).await;
    let product_db = tables::open(&services.sqlite_url("product")).await;

    let hose = shop.product("Hose", STOCK).await;
    let shears = shop.product("Shears", STOCK).await;
    let mut tokens = Vec::new();
    for i in 0..4 {
        let token = shop.shopper(&format!("pg{i}@example.com")).await;
        assert_eq!(shop.add_to_cart(&token, &hose, 1).await.status(), 201);
        assert_eq!(shop.checkout(&token).await.status(), 201);
        tokens.push(token);
    }

    // 1. A checkout whose COMMIT reaches Postgres but whose answer is lost.
    let (ambiguous, waiting) = (&tokens[0], &tokens[1]);
    assert_eq!(shop.add_to_cart(ambiguous, &shears, 2).await.status(), 201);
    assert_eq!(shop.add_to_cart(waiting, &shears, 1).await.status(), 201);
    proxy.cut_after_next_commit();
    assert_unavailable(shop.checkout(ambiguous).await, "checkout cut at its commit").await;
    assert!(
        proxy.commit_swallowed(),
        "the checkout's commit went through the proxy"
    );
    assert!(proxy.is_cut());

    // 2. While cut: 503 problems for what needs the database, not ready,
    // but alive.
    let order = services.order.url.clone();
    assert_unavailable(shop.checkout(waiting).await, "checkout").await;
    assert_unavailable(
        shop.get(&format!("{order}/cart"), waiting).await,
        "GET /cart",
    )
    .await;
    assert_unavailable(
        shop.get(&format!("{order}/orders"), waiting).await,
        "GET /orders",
    )
    .await;
    assert_unavailable(shop.add_to_cart(waiting, &hose, 1).await, "cart add").await;
    let readiness = http.get(format!("{order}/readyz")).send().await.unwrap();
    assert_eq!(readiness.status(), 503);
    let readiness: serde_json::Value = readiness.json().await.unwrap();
    assert_ne!(readiness["checks"]["database"], "ok", "{readiness}");
    assert_eq!(readiness["checks"]["nats"], "ok", "{readiness}");
    assert_eq!(status(&http, &format!("{order}/healthz")).await, Some(200));

    // 3. Restored: the same process serves again.
    proxy.restore();
    eventually(
        Duration::from_secs(30),
        "the order service ready again without a restart",
        async || ready(&http, &order).await,
    )
    .await;
    let placed = shop.checkout(waiting).await;
    assert_eq!(placed.status(), 201, "the cart kept through the outage");
    // The commit whose answer was lost did commit: the order is there.
    let listed: serde_json::Value = shop
        .get(&format!("{order}/orders"), ambiguous)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 2, "{listed}");

    // 4. Cut at a random point of concurrent checkouts, then restored.
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let buyers: Vec<_> = tokens
        .iter()
        .enumerate()
        .map(|(i, token)| {
            let product = if i % 2 == 0 { &hose } else { &shears };
            tokio::spawn(buy_until(
                shop.clone(),
                token.clone(),
                product.clone(),
                stop.clone(),
                tally.clone(),
            ))
        })
        .collect();
    eventually(Duration::from_secs(60), "checkouts flowing", async || {
        tally.placed.load(Ordering::SeqCst) >= 8
    })
    .await;
    proxy.cut();
    eventually(Duration::from_secs(30), "not ready while cut", async || {
        !ready(&http, &order).await
    })
    .await;
    eventually(
        Duration::from_secs(30),
        "checkouts refused with 503 while cut",
        async || tally.unavailable.load(Ordering::SeqCst) > 0,
    )
    .await;
    proxy.restore();
    let placed_at_restore = tally.placed.load(Ordering::SeqCst);
    eventually(
        Duration::from_secs(60),
        "checkouts flowing again",
        async || tally.placed.load(Ordering::SeqCst) >= placed_at_restore + 8,
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    for buyer in buyers {
        buyer.await.unwrap();
    }
    let unexpected = tally.unexpected.lock().unwrap().clone();
    assert!(unexpected.is_empty(), "unexpected answers: {unexpected:?}");

    // 5. No partial order: every order with its lines, its outbox row and
    // its reservation, no reservation without its order, stock moved by
    // exactly what was ordered.
    eventually(
        Duration::from_secs(60),
        "orders, outbox rows, reservations and stock agree",
        async || {
            let ledger = Ledger::read(&order_db, &product_db).await;
            ledger.consistent()
                && ledger.stock.iter().all(|(product, stock)| {
                    *stock == STOCK - ledger.ordered.get(product).copied().unwrap_or(0)
                })
        },
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "the order outbox relayed",
        async || outbox_backlog(&order_db).await == 0,
    )
    .await;
    let ledger = Ledger::read(&order_db, &product_db).await;
    let facts = StreamFacts::of(&read_stream(&backbone.js).await);
    assert!(facts.duplicate_ids.is_empty(), "{:?}", facts.duplicate_ids);
    for id in &ledger.orders {
        let id = OrderId::parse(id).unwrap();
        assert_eq!(facts.placed.get(&id), Some(&1), "order.placed of {id}");
    }
    assert_eq!(facts.placed.len(), ledger.orders.len());
    eprintln!(
        "Postgres outage: {} orders recorded (one whose commit answer was lost), {} checkouts \
         answered 503 during the random cut, all consistent",
        ledger.orders.len(),
        tally.unavailable.load(Ordering::SeqCst)
    );
}
