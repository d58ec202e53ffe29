//! The NATS request-reply endpoints: lookup, reserve, release, and the
//! service's presence in NATS service discovery.

use crate::helpers::{
    ADMIN_TOKEN, TestApp, WAIT, assert_traceparent, release, reserve, spawn_app, stock,
};
use futures::future::join_all;
use serde_json::{Value, json};
use shopmesh_shared::events::{EventPayload, EventType, OrderId, ProductId};
use shopmesh_shared::rpc::{
    LookupRequest, LookupResponse, PRODUCT_LOOKUP, PRODUCT_RELEASE, PRODUCT_RESERVE,
    ReleaseResponse, ReserveLine, ReserveRequest, ReserveResponse, RpcError,
};
use shopmesh_shared::testkit::test_databases;

fn line(product_id: ProductId, quantity: u32) -> ReserveLine {
    ReserveLine {
        product_id,
        quantity,
    }
}

/// The `(product, stock)` of every product.updated in the stream, in order.
async fn stock_updates(app: &TestApp) -> Vec<(ProductId, i64)> {
    app.events_of(EventType::ProductUpdated)
        .await
        .iter()
        .map(|stored| match &stored.event.payload {
            EventPayload::ProductUpdated(updated) => (updated.product_id, updated.stock),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn lookup_answers_known_products_and_lists_missing_ones() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let lamp = app.create_product("Lamp", "home", 2_999, 3).await;
        let book = app.create_product("Book", "books", 1_250, 0).await;
        let lamp_id = ProductId::parse(lamp["id"].as_str().unwrap()).unwrap();
        let book_id = ProductId::parse(book["id"].as_str().unwrap()).unwrap();
        let ghost = ProductId::new_v7();

        let response: LookupResponse = app
            .call(
                PRODUCT_LOOKUP,
                &LookupRequest {
                    product_ids: vec![book_id, ghost, lamp_id, book_id],
                },
            )
            .await
            .unwrap();
        assert_eq!(response.missing, vec![ghost]);
        let found: Vec<_> = response
            .products
            .iter()
            .map(|p| {
                (
                    p.product_id,
                    p.name.as_str(),
                    p.category.as_str(),
                    p.price_cents,
                    p.stock,
                )
            })
            .collect();
        assert_eq!(
            found,
            vec![
                (book_id, "Book", "books", 1_250, 0),
                (lamp_id, "Lamp", "home", 2_999, 3)
            ],
            "{:?}",
            app.kind
        );

        let empty: LookupResponse = app
            .call(
                PRODUCT_LOOKUP,
                &LookupRequest {
                    product_ids: vec![],
                },
            )
            .await
            .unwrap();
        assert!(empty.products.is_empty() && empty.missing.is_empty());
    }
}

#[tokio::test]
async fn a_reservation_takes_stock_once_per_order_and_publishes_product_updated() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let lamp = app.create_product("Lamp", "home", 2_999, 5).await;
        let lamp_id = ProductId::parse(lamp["id"].as_str().unwrap()).unwrap();
        let book_id = app.create_product_id("Book", 3).await;
        let order = OrderId::new_v7();

        // The same product twice in one request is one line of 3.
        let first = reserve(
            &app,
            order,
            vec![line(lamp_id, 2), line(book_id, 1), line(lamp_id, 1)],
        )
        .await;
        let ReserveResponse::Reserved { lines } = &first else {
            panic!("{first:?} on {:?}", app.kind);
        };
        let mut reserved: Vec<_> = lines
            .iter()
            .map(|l| {
                (
                    l.product_id,
                    l.quantity,
                    l.unit_price_cents,
                    l.name.as_str(),
                    l.category.as_str(),
                )
            })
            .collect();
        reserved.sort();
        let mut expected = vec![
            (lamp_id, 3, 2_999, "Lamp", "home"),
            (book_id, 1, 1_999, "Book", "books"),
        ];
        expected.sort();
        assert_eq!(reserved, expected);
        assert_eq!(stock(&app, lamp_id).await, 2);
        assert_eq!(stock(&app, book_id).await, 2);

        let events = app.wait_for_events(EventType::ProductUpdated, 2).await;
        for stored in &events {
            assert_eq!(stored.subject, "shopmesh.events.product.updated.0");
            assert_traceparent(stored.header("traceparent"));
            assert!(stored.header("Nats-Msg-Id").is_some());
        }
        let mut updates = stock_updates(&app).await;
        updates.sort();
        let mut expected = vec![(lamp_id, 2), (book_id, 2)];
        expected.sort();
        assert_eq!(updates, expected);

        // The same order again: the stored lines, no stock taken, no event.
        let again = reserve(&app, order, vec![line(lamp_id, 3), line(book_id, 1)]).await;
        assert_eq!(again, first, "{:?}", app.kind);
        assert_eq!(stock(&app, lamp_id).await, 2);
        assert_eq!(stock(&app, book_id).await, 2);
        // A later admin change is in the stream after anything the repeat
        // could have written.
        let patch = app
            .patch_product_with(
                Some(ADMIN_TOKEN),
                &lamp_id.to_string(),
                &json!({ "price_cents": 3_100 }),
            )
            .await;
        assert_eq!(patch.status(), 200);
        app.wait_for_events(EventType::ProductUpdated, 3).await;
        assert_eq!(stock_updates(&app).await.len(), 3, "{:?}", app.kind);
    }
}

#[tokio::test]
async fn short_or_unknown_lines_reserve_nothing() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let lamp_id = app.create_product_id("Lamp", 5).await;
        let book_id = app.create_product_id("Book", 1).await;
        let ghost = ProductId::new_v7();

        let short = reserve(
            &app,
            OrderId::new_v7(),
            vec![line(lamp_id, 5), line(book_id, 2)],
        )
        .await;
        let ReserveResponse::Short { short } = short else {
            panic!("{short:?} on {:?}", app.kind);
        };
        assert_eq!(short.len(), 1);
        assert_eq!(
            (short[0].product_id, short[0].requested, short[0].available),
            (book_id, 2, 1)
        );

        let unknown = reserve(
            &app,
            OrderId::new_v7(),
            vec![line(lamp_id, 1), line(ghost, 1)],
        )
        .await;
        assert_eq!(
            unknown,
            ReserveResponse::Unknown {
                missing: vec![ghost]
            }
        );

        // All or nothing: the line that fitted was not taken either.
        assert_eq!(stock(&app, lamp_id).await, 5, "{:?}", app.kind);
        assert_eq!(stock(&app, book_id).await, 1);
        // Only the two creates reached the stream.
        let sentinel = app.create_product_id("Sentinel", 1).await;
        app.wait_for_events(EventType::ProductCreated, 3).await;
        assert!(stock_updates(&app).await.is_empty(), "{:?}", app.kind);
        assert_eq!(stock(&app, sentinel).await, 1);
    }
}

#[tokio::test]
async fn release_gives_stock_back_once() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let lamp_id = app.create_product_id("Lamp", 5).await;
        let book_id = app.create_product_id("Book", 2).await;
        let order = OrderId::new_v7();
        let reserved = reserve(&app, order, vec![line(lamp_id, 4), line(book_id, 2)]).await;
        assert!(
            matches!(reserved, ReserveResponse::Reserved { .. }),
            "{reserved:?}"
        );
        assert_eq!(stock(&app, lamp_id).await, 1);
        assert_eq!(stock(&app, book_id).await, 0);

        assert!(release(&app, order).await, "{:?}", app.kind);
        assert_eq!(stock(&app, lamp_id).await, 5);
        assert_eq!(stock(&app, book_id).await, 2);
        let events = app.wait_for_events(EventType::ProductUpdated, 4).await;
        assert_eq!(events.len(), 4);
        let mut released = stock_updates(&app).await.split_off(2);
        released.sort();
        let mut expected = vec![(lamp_id, 5), (book_id, 2)];
        expected.sort();
        assert_eq!(released, expected);

        // Idempotent: nothing left to release, stock unchanged.
        assert!(!release(&app, order).await);
        assert!(!release(&app, OrderId::new_v7()).await);
        assert_eq!(stock(&app, lamp_id).await, 5);
        assert_eq!(stock(&app, book_id).await, 2);

        // A released order stays released: a reservation for it arriving
        // late (its checkout given up meanwhile) takes nothing.
        let again = reserve(&app, order, vec![line(book_id, 2)]).await;
        assert_eq!(again, ReserveResponse::Released, "{:?}", app.kind);
        assert_eq!(stock(&app, book_id).await, 2);
    }
}

/// The order service releases a checkout whose reservation went unanswered;
/// the reservation itself may still be on its way (the product service was
/// slow, which is why the answer was late). Arriving after the release, it
/// must take no stock, or the stock of an order that does not exist stays
/// reserved for ever.
#[tokio::test]
async fn a_reservation_arriving_after_its_release_takes_no_stock() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let lamp_id = app.create_product_id("Lamp", 5).await;
        let order = OrderId::new_v7();
        assert!(!release(&app, order).await, "nothing reserved yet");
        let late = reserve(&app, order, vec![line(lamp_id, 3)]).await;
        assert_eq!(late, ReserveResponse::Released, "{:?}", app.kind);
        assert_eq!(stock(&app, lamp_id).await, 5);
        // Other orders are not affected.
        let other = reserve(&app, OrderId::new_v7(), vec![line(lamp_id, 3)]).await;
        assert!(
            matches!(other, ReserveResponse::Reserved { .. }),
            "{other:?}"
        );
        assert_eq!(stock(&app, lamp_id).await, 2);
    }
}

/// A release racing a reservation of the same order, over and over: each
/// pair ends with the stock either reserved and then given back, or never
/// taken; never taken and kept.
#[tokio::test]
async fn a_release_racing_its_reservation_never_leaves_stock_taken() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let lamp_id = app.create_product_id("Lamp", 100).await;
        for _ in 0..20 {
            let order = OrderId::new_v7();
            let (reserved, _) = futures::join!(
                reserve(&app, order, vec![line(lamp_id, 1)]),
                release(&app, order)
            );
            assert!(
                matches!(
                    reserved,
                    ReserveResponse::Reserved { .. } | ReserveResponse::Released
                ),
                "{reserved:?} on {:?}",
                app.kind
            );
            assert_eq!(stock(&app, lamp_id).await, 100, "{:?}", app.kind);
        }
    }
}

#[tokio::test]
async fn concurrent_reservations_of_the_last_item_reserve_it_once() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let last = app.create_product_id("Last one", 1).await;
        let attempts = (0..10).map(|_| reserve(&app, OrderId::new_v7(), vec![line(last, 1)]));
        let outcomes = join_all(attempts).await;
        let reserved = outcomes
            .iter()
            .filter(|o| matches!(o, ReserveResponse::Reserved { .. }))
            .count();
        assert_eq!(reserved, 1, "{outcomes:?} on {:?}", app.kind);
        for outcome in &outcomes {
            match outcome {
                ReserveResponse::Reserved { lines } => assert_eq!(lines[0].quantity, 1),
                ReserveResponse::Short { short } => {
                    assert_eq!((short[0].product_id, short[0].available), (last, 0))
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(stock(&app, last).await, 0, "{:?}", app.kind);
        let fetched: Value = app
            .get_product(&last.to_string(), None)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(fetched["stock"], 0);
    }
}

#[tokio::test]
async fn concurrent_repeats_of_one_order_reserve_it_once() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        // Plenty of stock: the repeats race to record the reservation. Just
        // enough stock: the repeats that lose find none left, yet the order
        // is reserved and they must say so.
        for (stock_before, stock_after) in [(10, 8), (2, 0)] {
            let product = app.create_product_id("Popular", stock_before).await;
            let order = OrderId::new_v7();
            let repeats = (0..6).map(|_| reserve(&app, order, vec![line(product, 2)]));
            let outcomes = join_all(repeats).await;
            for outcome in &outcomes {
                assert_eq!(outcome, &outcomes[0], "{:?}", app.kind);
            }
            assert!(matches!(outcomes[0], ReserveResponse::Reserved { .. }));
            assert_eq!(stock(&app, product).await, stock_after, "{:?}", app.kind);
        }
    }
}

#[tokio::test]
async fn malformed_requests_get_a_service_error_and_the_service_keeps_answering() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let product = app.create_product_id("Lamp", 3).await;

        // Not JSON at all, straight on the wire: the error is in the headers.
        let reply = app
            .backbone
            .client
            .request(PRODUCT_RESERVE, "not json".into())
            .await
            .unwrap();
        let headers = reply.headers.expect("service error headers");
        assert_eq!(
            headers
                .get(async_nats::service::NATS_SERVICE_ERROR_CODE)
                .map(|v| v.as_str()),
            Some("400")
        );
        assert!(
            headers
                .get(async_nats::service::NATS_SERVICE_ERROR)
                .is_some()
        );

        let wrong_shape: Result<ReserveResponse, RpcError> = app
            .call(PRODUCT_RESERVE, &json!({ "order_id": "x", "lines": [] }))
            .await;
        let zero = reserve_err(&app, vec![line(product, 0)]).await;
        let empty = reserve_err(&app, vec![]).await;
        let lookup: Result<LookupResponse, RpcError> =
            app.call(PRODUCT_LOOKUP, &json!({ "ids": [] })).await;
        let release: Result<ReleaseResponse, RpcError> =
            app.call(PRODUCT_RELEASE, &json!([1, 2, 3])).await;
        for error in [
            wrong_shape.unwrap_err(),
            zero,
            empty,
            lookup.unwrap_err(),
            release.unwrap_err(),
        ] {
            match error {
                RpcError::Service { code, .. } => assert_eq!(code, "400"),
                other => panic!("{other} on {:?}", app.kind),
            }
        }

        // Still serving, and nothing was taken.
        assert_eq!(stock(&app, product).await, 3);
        let ok = reserve(&app, OrderId::new_v7(), vec![line(product, 1)]).await;
        assert!(matches!(ok, ReserveResponse::Reserved { .. }), "{ok:?}");
        assert_eq!(stock(&app, product).await, 2);
    }
}

async fn reserve_err(app: &TestApp, lines: Vec<ReserveLine>) -> RpcError {
    let result: Result<ReserveResponse, RpcError> = app
        .call(
            PRODUCT_RESERVE,
            &ReserveRequest {
                order_id: OrderId::new_v7(),
                lines,
            },
        )
        .await;
    result.expect_err("a service error")
}

#[tokio::test]
async fn the_service_shows_up_in_nats_service_discovery() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let client = &app.backbone.client;

        let ping = tokio::time::timeout(WAIT, client.request("$SRV.PING.product", "".into()))
            .await
            .unwrap()
            .unwrap();
        let ping: Value = serde_json::from_slice(&ping.payload).unwrap();
        assert_eq!(ping["name"], "product");
        assert_eq!(ping["type"], "io.nats.micro.v1.ping_response");
        assert_eq!(ping["version"], env!("CARGO_PKG_VERSION"));

        let info = tokio::time::timeout(WAIT, client.request("$SRV.INFO.product", "".into()))
            .await
            .unwrap()
            .unwrap();
        let info: Value = serde_json::from_slice(&info.payload).unwrap();
        let mut subjects: Vec<&str> = info["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["subject"].as_str().unwrap())
            .collect();
        subjects.sort();
        assert_eq!(subjects, [PRODUCT_LOOKUP, PRODUCT_RELEASE, PRODUCT_RESERVE]);
        assert!(!info["description"].as_str().unwrap().is_empty());
    }
}
