//! `POST /products/{id}/ratings` and the `product.rated` behaviour event.

use crate::helpers::{assert_problem, spawn_app};
use serde_json::{Value, json};
use shopmesh_shared::events::{EventPayload, EventType, ProductId, UserId};
use shopmesh_shared::testkit::test_databases;

#[tokio::test]
async fn ratings_update_the_mean_and_a_second_rating_replaces_the_first() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let created = app.create_product("Atlas", "books", 3_500, 4).await;
        let id = created["id"].as_str().unwrap().to_owned();
        let alice = UserId::new_v7();
        let bob = UserId::new_v7();

        let steps = [
            (alice, 4, 1, 4.0),
            (bob, 5, 2, 4.5),
            // Alice changes her mind: still two ratings, (2 + 5) / 2.
            (alice, 2, 2, 3.5),
        ];
        for (user, stars, count, mean) in steps {
            let response = app
                .rate(&id, Some(&app.user_token(user)), &json!({ "stars": stars }))
                .await;
            assert_eq!(response.status(), 201, "{:?}", app.kind);
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["product_id"], id.as_str());
            assert_eq!(body["stars"], stars);
            assert_eq!(body["rating_count"], count);
            assert_eq!(body["rating_mean"], mean, "{body} on {:?}", app.kind);
        }
        let fetched: Value = app.get_product(&id, None).await.json().await.unwrap();
        assert_eq!(fetched["rating_count"], 2);
        assert_eq!(fetched["rating_mean"], 3.5);

        let rated = app.wait_for_events(EventType::ProductRated, 3).await;
        let seen: Vec<(Option<UserId>, u8)> = rated
            .iter()
            .map(|stored| {
                let EventPayload::ProductRated(payload) = &stored.event.payload else {
                    panic!("{:?}", stored.event.payload);
                };
                assert_eq!(payload.product_id, ProductId::parse(&id).unwrap());
                assert_eq!(payload.category.as_str(), "books");
                (stored.event.meta.user_id, payload.stars)
            })
            .collect();
        assert_eq!(seen.len(), 3);
        for expected in [(Some(alice), 4), (Some(bob), 5), (Some(alice), 2)] {
            assert!(seen.contains(&expected), "{expected:?} in {seen:?}");
        }
    }
}

#[tokio::test]
async fn refused_ratings_change_nothing() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let created = app.create_product("Atlas", "books", 3_500, 4).await;
        let id = created["id"].as_str().unwrap().to_owned();
        let token = app.user_token(UserId::new_v7());

        for body in [
            json!({ "stars": 0 }),
            json!({ "stars": 6 }),
            json!({ "stars": -1 }),
            json!({ "stars": 4.5 }),
            json!({ "stars": "five" }),
            json!({}),
        ] {
            let response = app.rate(&id, Some(&token), &body).await;
            assert_problem(response, 400, Some("stars")).await;
        }
        let valid = json!({ "stars": 5 });
        assert_problem(app.rate(&id, None, &valid).await, 401, None).await;
        assert_problem(app.rate(&id, Some("forged"), &valid).await, 401, None).await;
        let unknown = ProductId::new_v7().to_string();
        assert_problem(app.rate(&unknown, Some(&token), &valid).await, 404, None).await;
        assert_problem(
            app.rate("nope", Some(&token), &valid).await,
            400,
            Some("id"),
        )
        .await;

        let fetched: Value = app.get_product(&id, None).await.json().await.unwrap();
        assert_eq!(fetched, created, "{:?}", app.kind);

        // The next valid rating is the first one counted and emitted.
        let response = app.rate(&id, Some(&token), &valid).await;
        assert_eq!(response.status(), 201);
        assert_eq!(response.json::<Value>().await.unwrap()["rating_count"], 1);
        assert_eq!(
            app.wait_for_events(EventType::ProductRated, 1).await.len(),
            1
        );
    }
}

#[tokio::test]
async fn concurrent_ratings_are_all_counted() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let created = app.create_product("Atlas", "books", 3_500, 4).await;
        let id = created["id"].as_str().unwrap().to_owned();
        // Ten shoppers at once: 1,2,3,4,5,1,2,3,4,5 stars, a mean of 3.
        let tokens: Vec<String> = (0..10).map(|_| app.user_token(UserId::new_v7())).collect();
        let ratings = tokens.iter().enumerate().map(|(i, token)| {
            let body = json!({ "stars": i % 5 + 1 });
            let id = id.clone();
            let app = &app;
            async move { app.rate(&id, Some(token), &body).await.status() }
        });
        let statuses = futures::future::join_all(ratings).await;
        assert!(
            statuses.iter().all(|s| *s == 201),
            "{statuses:?} on {:?}",
            app.kind
        );
        let fetched: Value = app.get_product(&id, None).await.json().await.unwrap();
        assert_eq!(fetched["rating_count"], 10, "{:?}", app.kind);
        assert_eq!(fetched["rating_mean"], 3.0, "{:?}", app.kind);
    }
}
