//! `shopmesh load` run as a user runs it, against the three services with a
//! real NATS and SQLite: what its summary counts must be exactly what the
//! services saw (read back from the events stream), and bad flags must stop
//! it with a message naming the flag.

mod mesh;

use mesh::Mesh;
use serde_json::Value;
use shopmesh_shared::events::{EventPayload, ProductId, UserId};
use shopmesh_shared::testkit::DatabaseKind;
use std::collections::{HashMap, HashSet};
use std::process::Output;
use std::time::Duration;

const SHOPPERS: u64 = 8;

async fn shopmesh(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_shopmesh"))
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("SHOPMESH_USER_URL")
        .env_remove("SHOPMESH_PRODUCT_URL")
        .env_remove("SHOPMESH_ORDER_URL")
        .output()
        .await
        .expect("run shopmesh")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The `ok` count of an action kind in the summary.
fn ok(summary: &Value, action: &str) -> u64 {
    summary["actions"][action]["ok"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shoppers_browse_and_buy_and_the_services_saw_what_the_summary_counts() {
    let mesh = Mesh::start(DatabaseKind::Sqlite).await;
    // The seeded catalogue's first products: every category, some stock
    // short or sold out, as `shopmesh seed` makes it.
    let products = shopmesh_product::seed::catalogue(36, 42);
    let mut initial_stock = HashMap::new();
    let mut category_of = HashMap::new();
    for product in &products {
        let category = product.category.to_string();
        let id = mesh
            .product(&product.name, &category, product.price_cents, product.stock)
            .await;
        initial_stock.insert(id.clone(), product.stock);
        category_of.insert(id, category);
    }

    let users = SHOPPERS.to_string();
    let output = shopmesh(&[
        "load",
        "--users",
        &users,
        // About 3000 actions: enough that even the rarest kind (cancel, one
        // action in two hundred) happens with near certainty.
        "--rate",
        "400",
        "--duration",
        "8s",
        "--think-time",
        "5ms",
        "--seed",
        "7",
        "--json",
        "--user-url",
        &mesh.user,
        "--product-url",
        &mesh.product,
        "--order-url",
        &format!("{}/", mesh.order),
    ])
    .await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let summary: Value = serde_json::from_str(&text(&output.stdout))
        .unwrap_or_else(|e| panic!("{e}: {}", text(&output.stdout)));
    let context = format!("{summary:#}\nstderr: {}", text(&output.stderr));

    // Every shopper signed up; every kind of action happened and succeeded
    // at least once; nothing failed that should not have.
    assert_eq!(summary["shoppers"], SHOPPERS, "{context}");
    assert_eq!(summary["signed_up"], SHOPPERS, "{context}");
    assert_eq!(summary["catalogue_products"], 36, "{context}");
    for action in [
        "register",
        "login",
        "list",
        "search",
        "view",
        "rate",
        "cart_add",
        "cart_remove",
        "checkout",
        "cancel",
    ] {
        assert!(
            ok(&summary, action) > 0,
            "no successful {action}: {context}"
        );
    }
    assert_eq!(ok(&summary, "register"), SHOPPERS, "{context}");
    assert_eq!(ok(&summary, "login"), SHOPPERS, "{context}");
    assert_eq!(summary["unexpected_errors"], 0, "{context}");
    assert_eq!(summary["errors"], serde_json::json!({}), "{context}");
    // Only a checkout may be refused for stock.
    let out_of_stock = summary["actions"]["checkout"]["out_of_stock"]
        .as_u64()
        .unwrap();
    assert_eq!(summary["out_of_stock"], out_of_stock, "{context}");

    // The totals add up.
    let actions = summary["actions"].as_object().unwrap();
    let total: u64 = actions.values().map(|a| a["count"].as_u64().unwrap()).sum();
    assert_eq!(summary["total_actions"], total, "{context}");
    assert_eq!(summary["run_actions"], total - 2 * SHOPPERS, "{context}");
    for (action, figures) in actions {
        let parts = ["ok", "out_of_stock", "errors"]
            .iter()
            .map(|k| figures[k].as_u64().unwrap())
            .sum::<u64>();
        assert_eq!(figures["count"], parts, "{action}: {context}");
    }

    // What the services saw: each successful action left exactly one event
    // (searches always carry text; plain listings leave none).
    let expected: Vec<(&str, u64)> = vec![
        ("user.registered", ok(&summary, "register")),
        ("user.logged_in", ok(&summary, "login")),
        ("product.created", 36),
        ("product.viewed", ok(&summary, "view")),
        ("product.searched", ok(&summary, "search")),
        ("product.rated", ok(&summary, "rate")),
        ("cart.item_added", ok(&summary, "cart_add")),
        ("cart.item_removed", ok(&summary, "cart_remove")),
        ("order.placed", ok(&summary, "checkout")),
        ("order.cancelled", ok(&summary, "cancel")),
    ];
    // Every service publishes in the background (outbox relays, behaviour
    // buffers): read the stream until it holds what the summary says, or
    // until a generous deadline, then compare.
    let expected: HashMap<&str, u64> = expected.into_iter().collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (events, by_type, expected) = loop {
        let events = mesh.events().await;
        let mut by_type: HashMap<&str, u64> = HashMap::new();
        for (event_type, ..) in &events {
            *by_type.entry(event_type.as_str()).or_default() += 1;
        }
        // A reservation and a release change stock: one `product.updated`
        // per order line, when placed and when cancelled.
        let stock_changes: usize = events
            .iter()
            .map(|(.., e)| match &e.payload {
                EventPayload::OrderPlaced(p) => p.lines.len(),
                EventPayload::OrderCancelled(p) => p.lines.len(),
                _ => 0,
            })
            .sum();
        let mut expected = expected.clone();
        expected.insert("product.updated", stock_changes as u64);
        let by_type: HashMap<String, u64> = by_type
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        let expected: HashMap<String, u64> = expected
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        if by_type == expected || tokio::time::Instant::now() >= deadline {
            break (events, by_type, expected);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        by_type, expected,
        "events by type (left) and successful actions (right)"
    );

    // Orders belong to the shoppers who signed up, and stock moved by exactly
    // what was ordered and not cancelled.
    let registered: HashSet<UserId> = events
        .iter()
        .filter_map(|(.., e)| match &e.payload {
            EventPayload::UserRegistered(_) => e.meta.user_id,
            _ => None,
        })
        .collect();
    assert_eq!(registered.len() as u64, SHOPPERS);
    let mut sold: HashMap<ProductId, i64> = HashMap::new();
    for (.., event) in &events {
        let (lines, sign) = match &event.payload {
            EventPayload::OrderPlaced(p) => (&p.lines, 1),
            EventPayload::OrderCancelled(p) => (&p.lines, -1),
            _ => continue,
        };
        assert!(registered.contains(&event.meta.user_id.unwrap()));
        for line in lines {
            *sold.entry(line.product_id).or_default() += sign * i64::from(line.quantity);
        }
    }
    for (id, stock) in &initial_stock {
        let sold = sold
            .get(&ProductId::parse(id).unwrap())
            .copied()
            .unwrap_or(0);
        assert_eq!(mesh.stock(id).await, stock - sold, "product {id}");
    }

    // Tastes: each shopper's views fall mostly in one or two categories.
    let mut views: HashMap<UserId, HashMap<String, u64>> = HashMap::new();
    for (.., event) in &events {
        if let EventPayload::ProductViewed(p) = &event.payload {
            *views
                .entry(event.meta.user_id.unwrap())
                .or_default()
                .entry(p.category.to_string())
                .or_default() += 1;
        }
    }
    for (user, categories) in &views {
        let mut counts: Vec<u64> = categories.values().copied().collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let all: u64 = counts.iter().sum();
        let top_two: u64 = counts.iter().take(2).sum();
        assert!(
            all >= 20 && top_two * 100 >= all * 75,
            "{user}: {categories:?}"
        );
    }
}

#[tokio::test]
async fn a_bad_flag_value_stops_with_the_flag_and_what_it_expects() {
    for (flag, value, expects) in [
        ("--duration", "5x", "a duration like 500ms, 30s or 5m"),
        ("--duration", "0s", "longer than zero"),
        ("--rate", "0", "positive number"),
        ("--users", "0", "--users"),
        ("--think-time", "soon", "a duration like"),
    ] {
        let output = shopmesh(&["load", flag, value]).await;
        assert!(!output.status.success(), "{flag} {value}");
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(flag) && stderr.contains(expects),
            "{flag} {value}: {stderr}"
        );
        assert!(output.stdout.is_empty(), "{flag} {value}");
    }
}

#[tokio::test]
async fn an_unreachable_service_is_named() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let output = shopmesh(&["load", "--duration", "1s", "--user-url", &url]).await;
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot reach the user service at {url}")),
        "{stderr}"
    );
}
