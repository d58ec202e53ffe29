//! `shopmesh seed` against a running product service.

mod mesh;

use mesh::{ADMIN_TOKEN, Mesh};
use shopmesh_shared::testkit::DatabaseKind;
use std::collections::HashSet;
use std::process::Command;

fn seed(product_url: &str, count: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_shopmesh"))
        .args([
            "seed",
            "--product-url",
            product_url,
            "--count",
            count,
            "--seed",
            "7",
        ])
        .env("SHOPMESH_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[tokio::test]
async fn seeding_fills_the_catalogue_once_and_deterministically() {
    let mesh = Mesh::start(DatabaseKind::Sqlite).await;
    let first = seed(&mesh.product, "30");
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).contains("30 products created"));
    let again = seed(&mesh.product, "30");
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("0 products created"));

    let listing = mesh
        .get_json(&format!("{}/products?per_page=100", mesh.product), None)
        .await;
    assert_eq!(listing["total"], 30);
    let items = listing["items"].as_array().unwrap();
    let categories: HashSet<_> = items
        .iter()
        .map(|p| p["category"].as_str().unwrap())
        .collect();
    assert!(categories.len() >= 5, "{categories:?}");
    let names: HashSet<_> = items
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    let expected: HashSet<_> = shopmesh_product::seed::catalogue(30, 7)
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, expected, "the same seed gives the same catalogue");
}

#[test]
fn seeding_without_the_admin_token_names_it() {
    let output = Command::new(env!("CARGO_BIN_EXE_shopmesh"))
        .args(["seed", "--product-url", "http://127.0.0.1:1"])
        .env_remove("SHOPMESH_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("SHOPMESH_ADMIN_TOKEN"));
}
