//! The nats-server killed (SIGKILL) and started again on the same port and
//! JetStream store while the domain services take orders and other actions:
//! every business event committed before, during or after the outage is in
//! the stream exactly once (the outbox keeps it and retries; the stream's
//! duplicate window drops a re-send), every behaviour event lost meanwhile
//! is counted in `shopmesh_behaviour_events_dropped_total`, and the services
//! recover without a restart.

use crate::processes::{DomainServices, ready};
use crate::shop::{Shop, http_client, metric_sum};
use crate::stream::{StreamFacts, read_stream};
use crate::tables::{self, Ledger, outbox_backlog};
use shopmesh_shared::events::{OrderId, ProductId, UserId};
use shopmesh_shared::testkit::{TestBackbone, eventually};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const DROPPED: &str = "shopmesh_behaviour_events_dropped_total";
const STOCK: i64 = 1_000;

/// What the shoppers' requests got back.
#[derive(Default)]
struct Tally {
    /// Signed-in views answered 200: `product.viewed` emitted.
    views: AtomicU64,
    /// Cart additions answered 201: `cart.item_added` emitted.
    cart_adds: AtomicU64,
    /// Orders answered 201.
    orders: Mutex<Vec<String>>,
    /// 503 problems (NATS down: the product service is unreachable).
    unavailable: AtomicU64,
    unexpected: Mutex<Vec<String>>,
}

impl Tally {
    fn placed(&self) -> usize {
        self.orders.lock().unwrap().len()
    }

    fn unexpected(&self, what: String) {
        self.unexpected.lock().unwrap().push(what);
    }
}

/// One shopper viewing, adding to the cart and checking out until `stop`.
async fn shop_until(
    shop: Shop,
    token: String,
    products: Vec<String>,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    for product in products.iter().cycle() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match shop.view(&token, product).await {
            200 => tally.views.fetch_add(1, Ordering::SeqCst),
            status => {
                tally.unexpected(format!("view: {status}"));
                0
            }
        };
        match shop.add_to_cart(&token, product, 1).await.status().as_u16() {
            201 => tally.cart_adds.fetch_add(1, Ordering::SeqCst),
            503 => tally.unavailable.fetch_add(1, Ordering::SeqCst),
            status => {
                tally.unexpected(format!("cart add: {status}"));
                0
            }
        };
        let response = shop.checkout(&token).await;
        match response.status().as_u16() {
            201 => {
                let order: serde_json::Value = response.json().await.unwrap();
                let id = order["id"].as_str().unwrap().to_owned();
                tally.orders.lock().unwrap().push(id);
            }
            503 => {
                tally.unavailable.fetch_add(1, Ordering::SeqCst);
            }
            // The cart is empty when the addition before was refused.
            409 => {}
            status => tally.unexpected(format!("checkout: {status}")),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_restart_loses_no_business_event_and_counts_the_behaviour_events_it_loses() {
    let mut backbone = TestBackbone::start().await;
    let http = http_client();
    // A short publish budget (two attempts of 500 ms) so that behaviour
    // events emitted during the outage are given up, and counted, within
    // it; the outbox relay retries its rows whatever the budget.
    let services = DomainServices::start(
        &http,
        &backbone.server.url(),
        &[
            ("SHOPMESH_PUBLISH_ATTEMPTS", "2"),
            ("SHOPMESH_PUBLISH_ACK_TIMEOUT", "500ms"),
            ("SHOPMESH_RPC_TIMEOUT", "1s"),
        ],
        None,
    )
    .await;
    let shop = Shop::new(&http, &services);
    let mut products = Vec::new();
    for i in 0..4 {
        products.push(shop.product(&format!("Trowel {i}"), STOCK).await);
    }
    let mut logins = 0u64;
    let mut tokens = Vec::new();
    for i in 0..3 {
        tokens.push(shop.shopper(&format!("before{i}@example.com")).await);
        logins += 1;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let shoppers: Vec<_> = tokens
        .iter()
        .enumerate()
        .map(|(i, token)| {
            let mut mine = products.clone();
            mine.rotate_left(i);
            tokio::spawn(shop_until(
                shop.clone(),
                token.clone(),
                mine,
                stop.clone(),
                tally.clone(),
            ))
        })
        .collect();
    eventually(
        Duration::from_secs(60),
        "orders placed before the outage",
        async || tally.placed() >= 5,
    )
    .await;

    // The outage.
    backbone.server.kill();
    let placed_before_outage = tally.placed();
    for service in services.all() {
        eventually(
            Duration::from_secs(30),
            &format!("{} reports not ready without NATS", service.name),
            async || !ready(&http, &service.url).await,
        )
        .await;
    }
    // Business writes that need no other service still commit, their
    // events waiting in the outbox.
    for i in 0..3 {
        let email = format!("during{i}@example.com");
        assert_eq!(
            shop.register(&email).await.status(),
            201,
            "register without NATS"
        );
        shop.login(&email).await.expect("login without NATS");
        logins += 1;
    }
    for i in 0..2 {
        shop.product(&format!("Rake {i} (added during the outage)"), STOCK)
            .await;
    }
    eventually(
        Duration::from_secs(30),
        "behaviour events given up during the outage are counted",
        async || metric_sum(&http, &services.product.url, DROPPED).await > 0.0,
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "requests that need the product service get 503 during the outage",
        async || tally.unavailable.load(Ordering::SeqCst) > 0,
    )
    .await;

    backbone.server.restart();
    for service in services.all() {
        eventually(
            Duration::from_secs(60),
            &format!("{} ready again without a restart", service.name),
            async || ready(&http, &service.url).await,
        )
        .await;
    }
    let placed_at_restart = tally.placed();
    eventually(
        Duration::from_secs(60),
        "checkouts flow again",
        async || tally.placed() >= placed_at_restart + 3,
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    for shopper in shoppers {
        shopper.await.unwrap();
    }
    let unexpected = tally.unexpected.lock().unwrap().clone();
    assert!(unexpected.is_empty(), "unexpected answers: {unexpected:?}");

    // Business events: every committed row's event in the stream, once.
    let user_db = tables::open(&services.sqlite_url("user")).await;
    let product_db = tables::open(&services.sqlite_url("product")).await;
    let order_db = tables::open(&services.sqlite_url("order")).await;
    eventually(
        Duration::from_secs(60),
        "every outbox row published",
        async || {
            outbox_backlog(&user_db).await == 0
                && outbox_backlog(&product_db).await == 0
                && outbox_backlog(&order_db).await == 0
        },
    )
    .await;
    let messages = read_stream(&backbone.js).await;
    let facts = StreamFacts::of(&messages);
    assert!(
        facts.duplicate_ids.is_empty(),
        "events stored twice: {:?}",
        facts.duplicate_ids
    );
    let orders = tables::texts(&order_db, "SELECT id FROM orders").await;
    for id in &orders {
        let id = OrderId::parse(id).unwrap();
        assert_eq!(facts.placed.get(&id), Some(&1), "order.placed of {id}");
    }
    assert_eq!(
        facts.placed.len(),
        orders.len(),
        "no order.placed without its order"
    );
    for id in tally.orders.lock().unwrap().iter() {
        assert!(
            orders.contains(id),
            "order {id} answered 201 but not recorded"
        );
    }
    let users = tables::texts(&user_db, "SELECT id FROM users").await;
    assert_eq!(users.len(), 6);
    for id in &users {
        assert!(
            facts.registered.contains(&UserId::parse(id).unwrap()),
            "user.registered of {id}"
        );
    }
    let catalogue = tables::texts(&product_db, "SELECT id FROM products").await;
    assert_eq!(catalogue.len(), 6);
    for id in &catalogue {
        assert!(
            facts.created.contains(&ProductId::parse(id).unwrap()),
            "product.created of {id}"
        );
    }

    // Stock: reservations whose order was given up during the outage are
    // released once the product service is reachable again.
    eventually(
        Duration::from_secs(60),
        "orders, reservations and stock agree",
        async || {
            let ledger = Ledger::read(&order_db, &product_db).await;
            ledger.consistent()
                && ledger.stock.iter().all(|(product, stock)| {
                    *stock == STOCK - ledger.ordered.get(product).copied().unwrap_or(0)
                })
        },
    )
    .await;

    // Behaviour events: published directly, so those emitted while NATS was
    // down may be lost, but never silently.
    let mut report = Vec::new();
    for (service, event_type, emitted) in [
        (
            &services.product,
            "product.viewed",
            tally.views.load(Ordering::SeqCst),
        ),
        (
            &services.order,
            "cart.item_added",
            tally.cart_adds.load(Ordering::SeqCst),
        ),
        (&services.user, "user.logged_in", logins),
    ] {
        let stored = facts.count(event_type);
        let counted = metric_sum(&http, &service.url, DROPPED).await as u64;
        assert!(
            stored <= emitted,
            "{event_type}: {stored} stored, {emitted} emitted"
        );
        let lost = emitted - stored;
        assert!(
            lost <= counted,
            "{event_type}: {lost} lost but only {counted} counted as dropped"
        );
        report.push(format!(
            "{event_type}: {emitted} emitted, {stored} stored, {lost} lost, {counted} counted dropped"
        ));
    }
    assert!(
        metric_sum(&http, &services.product.url, DROPPED).await > 0.0,
        "the outage dropped no view: the accounting was not exercised"
    );
    eprintln!(
        "NATS restart: {} orders ({} before the outage, {} after it), {} events in the stream, \
         none twice; behaviour events: {}",
        orders.len(),
        placed_before_outage,
        tally.placed() - placed_at_restart,
        facts.total,
        report.join("; ")
    );
}
