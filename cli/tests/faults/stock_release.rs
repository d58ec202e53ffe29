//! A checkout whose stock reservation went unanswered: the product service
//! may have reserved the stock with only its answer lost, so the order
//! service records the order as a pending release and gives the stock back
//! once the product service answers, however long that takes and even if the
//! order service is killed meanwhile.

use crate::processes::DomainServices;
use crate::shop::{Shop, http_client, metric_sum};
use crate::tables::{self, Ledger};
use shopmesh_shared::events::{OrderId, ProductId};
use shopmesh_shared::rpc::{self, PRODUCT_RESERVE, ReserveLine, ReserveRequest, ReserveResponse};
use shopmesh_shared::testkit::{TestBackbone, eventually};
use std::time::Duration;

const STOCK: i64 = 10;
const PENDING: &str = "shopmesh_pending_releases";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_whose_answer_was_lost_is_given_back_after_a_restart() {
    let backbone = TestBackbone::start().await;
    let http = http_client();
    let mut services = DomainServices::start(
        &http,
        &backbone.server.url(),
        &[("SHOPMESH_RPC_TIMEOUT", "300ms")],
        None,
    )
    .await;
    let shop = Shop::new(&http, &services);
    let product = shop.product("Dibber", STOCK).await;
    let token = shop.shopper("lost-answer@example.com").await;
    assert_eq!(shop.add_to_cart(&token, &product, 2).await.status(), 201);

    // The product service away: the reservation goes unanswered.
    services.product.kill_9();
    let response = shop.checkout(&token).await;
    assert_eq!(
        response.status(),
        503,
        "checkout without the product service"
    );
    let order_db = tables::open(&services.sqlite_url("order")).await;
    let product_db = tables::open(&services.sqlite_url("product")).await;
    let pending = async || tables::texts(&order_db, "SELECT order_id FROM pending_releases").await;
    eventually(
        Duration::from_secs(10),
        "the failed checkout's order recorded as a pending release",
        async || pending().await.len() == 1,
    )
    .await;
    let order_id = OrderId::parse(&pending().await[0]).unwrap();
    eventually(
        Duration::from_secs(10),
        "the order service reports one pending release",
        async || metric_sum(&http, &services.order.url, PENDING).await == 1.0,
    )
    .await;

    // The order service dies before the product service is back, so the
    // release can only come from what it recorded.
    services.order.kill_9();
    services.product.restart();
    services.product.wait_ready(&http).await;
    // What the lost answer hid: the product service did reserve the stock
    // (the very request the order service sent, arriving late).
    let reserved: ReserveResponse = rpc::call(
        &backbone.client,
        PRODUCT_RESERVE,
        &ReserveRequest {
            order_id,
            lines: vec![ReserveLine {
                product_id: ProductId::parse(&product).unwrap(),
                quantity: 2,
            }],
        },
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert!(
        matches!(reserved, ReserveResponse::Reserved { .. }),
        "{reserved:?}"
    );
    let ledger = Ledger::read(&order_db, &product_db).await;
    assert_eq!(ledger.stock[&product], STOCK - 2);
    assert!(ledger.reserved_orders.contains(&order_id.to_string()));

    services.order.restart();
    services.order.wait_ready(&http).await;
    eventually(
        Duration::from_secs(30),
        "the reservation released and the pending row forgotten",
        async || {
            let ledger = Ledger::read(&order_db, &product_db).await;
            ledger.reserved_orders.is_empty()
                && ledger.stock[&product] == STOCK
                && pending().await.is_empty()
        },
    )
    .await;
    eventually(
        Duration::from_secs(10),
        "the order service reports no pending release",
        async || metric_sum(&http, &services.order.url, PENDING).await == 0.0,
    )
    .await;
    let ledger = Ledger::read(&order_db, &product_db).await;
    assert!(ledger.orders.is_empty(), "no order was recorded");
    assert!(ledger.consistent());
}
