//! `GET /products` and the `product.searched` behaviour event.

use crate::helpers::{TestApp, assert_problem, spawn_app};
use serde_json::Value;
use shopmesh_shared::events::{EventPayload, EventType, UserId};
use shopmesh_shared::testkit::test_databases;

async fn page(app: &TestApp, params: &[(&str, &str)]) -> Value {
    let response = app.list_products(params, None).await;
    assert_eq!(response.status(), 200, "{params:?} on {:?}", app.kind);
    response.json().await.unwrap()
}

fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn pages_are_ordered_by_name_then_id_and_count_the_total() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        // Created out of order; two share a name, so the id breaks the tie.
        for name in ["item d", "item b", "item e", "item a", "item c", "item b"] {
            app.create_product(name, "books", 1_000, 1).await;
        }
        let first = page(&app, &[("per_page", "2")]).await;
        assert_eq!(first["page"], 1);
        assert_eq!(first["per_page"], 2);
        assert_eq!(first["total"], 6);
        assert_eq!(names(&first), ["item a", "item b"]);
        let second = page(&app, &[("per_page", "2"), ("page", "2")]).await;
        assert_eq!(names(&second), ["item b", "item c"]);
        assert_eq!(second["total"], 6);
        let third = page(&app, &[("per_page", "2"), ("page", "3")]).await;
        assert_eq!(names(&third), ["item d", "item e"]);
        let beyond = page(&app, &[("per_page", "2"), ("page", "4")]).await;
        assert_eq!(names(&beyond), Vec::<String>::new());
        assert_eq!(beyond["total"], 6);

        // The twins come in id order, and each appears exactly once.
        let first_b = &first["items"][1]["id"];
        let second_b = &second["items"][0]["id"];
        assert_ne!(first_b, second_b);
        assert!(first_b.as_str().unwrap() < second_b.as_str().unwrap());

        // Defaults: page 1 of 20.
        let all = page(&app, &[]).await;
        assert_eq!(
            (all["page"].as_i64(), all["per_page"].as_i64()),
            (Some(1), Some(20))
        );
        assert_eq!(all["items"].as_array().unwrap().len(), 6);
        let item = &all["items"][0];
        for field in [
            "id",
            "name",
            "category",
            "price_cents",
            "stock",
            "rating_count",
            "rating_mean",
        ] {
            assert!(item.get(field).is_some(), "{field} in {item}");
        }
    }
}

#[tokio::test]
async fn category_and_text_filters_combine() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        for (name, category) in [
            ("Blue Lamp", "home"),
            ("blue mug", "home"),
            ("Red LAMP", "home"),
            ("Lamp Oil", "garden"),
            ("50% Off Poster", "home"),
            ("500 Off Poster", "home"),
            ("snake_case mug", "home"),
            ("snakeXcase mug", "home"),
        ] {
            app.create_product(name, category, 500, 5).await;
        }
        let garden = page(&app, &[("category", "garden")]).await;
        assert_eq!(names(&garden), ["Lamp Oil"]);
        assert_eq!(garden["total"], 1);

        let lamps = page(&app, &[("q", "lAmP")]).await;
        assert_eq!(names(&lamps), ["Blue Lamp", "Lamp Oil", "Red LAMP"]);
        assert_eq!(lamps["total"], 3);

        let home_lamps = page(&app, &[("q", "lamp"), ("category", "home")]).await;
        assert_eq!(names(&home_lamps), ["Blue Lamp", "Red LAMP"]);

        // `%` and `_` in the text are literal, not wildcards.
        let percent = page(&app, &[("q", "50%")]).await;
        assert_eq!(names(&percent), ["50% Off Poster"]);
        let underscore = page(&app, &[("q", "e_c")]).await;
        assert_eq!(names(&underscore), ["snake_case mug"]);

        let none = page(&app, &[("q", "zebra")]).await;
        assert_eq!((none["total"].as_i64(), names(&none).len()), (Some(0), 0));
        let unknown_category = page(&app, &[("category", "toys")]).await;
        assert_eq!(unknown_category["total"], 0);
        // A blank search filters nothing.
        assert_eq!(page(&app, &[("q", "  ")]).await["total"], 8);
    }
}

#[tokio::test]
async fn invalid_parameters_are_400_naming_them() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let long = "q".repeat(201);
        for (params, field) in [
            (vec![("page", "0")], "page"),
            (vec![("page", "-1")], "page"),
            (vec![("page", "one")], "page"),
            (vec![("page", "99999999999")], "page"),
            (vec![("per_page", "0")], "per_page"),
            (vec![("per_page", "101")], "per_page"),
            (vec![("per_page", "2.5")], "per_page"),
            (vec![("category", "Home")], "category"),
            (vec![("category", "no spaces")], "category"),
            (vec![("q", long.as_str())], "q"),
            (vec![("page", "1"), ("page", "2")], "page"),
        ] {
            let response = app.list_products(&params, None).await;
            assert_problem(response, 400, Some(field)).await;
        }
        let limits = page(&app, &[("per_page", "100"), ("page", "4294967295")]).await;
        assert_eq!(limits["total"], 0);
    }
}

#[tokio::test]
async fn only_signed_in_text_searches_emit_product_searched() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        app.create_product("Blue Lamp", "home", 500, 5).await;
        app.create_product("Red Lamp", "home", 500, 5).await;
        app.create_product("Lamp Oil", "garden", 500, 5).await;
        let user = UserId::new_v7();
        let token = app.user_token(user);

        // Neither of these is a search event: anonymous, or no text.
        assert_eq!(
            app.list_products(&[("q", "lamp")], None).await.status(),
            200
        );
        assert_eq!(
            app.list_products(&[("category", "home")], Some(&token))
                .await
                .status(),
            200
        );
        let response = app
            .list_products(&[("q", " LAMP "), ("category", "home")], Some(&token))
            .await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.json::<Value>().await.unwrap()["total"], 2);

        let searches = app.wait_for_events(EventType::ProductSearched, 1).await;
        assert_eq!(searches.len(), 1, "{:?}", app.kind);
        assert_eq!(searches[0].event.meta.user_id, Some(user));
        let EventPayload::ProductSearched(searched) = &searches[0].event.payload else {
            panic!("{:?}", searches[0].event.payload);
        };
        assert_eq!(searched.query, "LAMP");
        assert_eq!(searched.category.as_ref().map(|c| c.as_str()), Some("home"));
        assert_eq!(searched.result_count, 2);

        // A broken token is refused, not treated as anonymous.
        let response = app.list_products(&[("q", "lamp")], Some("broken")).await;
        assert_problem(response, 401, None).await;
    }
}
