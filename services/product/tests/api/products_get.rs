//! `GET /products/{id}` and the `product.viewed` behaviour event.

use crate::helpers::{assert_problem, assert_traceparent, spawn_app};
use serde_json::Value;
use shopmesh_shared::auth::{TokenKey, now_seconds};
use shopmesh_shared::events::{EventPayload, EventType, ProductId, UserId};
use shopmesh_shared::settings::Secret;
use shopmesh_shared::subjects::{PartitionCount, event_subject, partition_for};
use shopmesh_shared::testkit::test_databases;

#[tokio::test]
async fn only_signed_in_views_emit_product_viewed() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let created = app.create_product("Atlas", "books", 3_500, 4).await;
        let id = created["id"].as_str().unwrap().to_owned();

        // Anonymous views first: had they emitted anything, it would be in
        // the stream before the signed-in view's event.
        for _ in 0..3 {
            let response = app.get_product(&id, None).await;
            assert_eq!(response.status(), 200);
            assert_eq!(response.json::<Value>().await.unwrap(), created);
        }
        let user = UserId::new_v7();
        let response = app.get_product(&id, Some(&app.user_token(user))).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.json::<Value>().await.unwrap(), created);

        let views = app.wait_for_events(EventType::ProductViewed, 1).await;
        assert_eq!(views.len(), 1, "{:?}", app.kind);
        let view = &views[0];
        assert_eq!(view.event.meta.user_id, Some(user));
        assert_eq!(view.event.meta.producer, "product");
        let EventPayload::ProductViewed(viewed) = &view.event.payload else {
            panic!("{:?}", view.event.payload);
        };
        assert_eq!(viewed.product_id, ProductId::parse(&id).unwrap());
        assert_eq!(viewed.category.as_str(), "books");
        let partition = partition_for(Some(&user), PartitionCount::default());
        assert_eq!(
            view.subject,
            event_subject(EventType::ProductViewed, partition)
        );
        assert_eq!(
            view.header("Nats-Msg-Id"),
            Some(view.event.meta.event_id.to_string().as_str())
        );
        assert_traceparent(view.header("traceparent"));
    }
}

#[tokio::test]
async fn unknown_ids_are_404_and_malformed_ids_400() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let response = app
            .get_product(&ProductId::new_v7().to_string(), None)
            .await;
        assert_problem(response, 404, None).await;
        for bad in ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g"] {
            let response = app.get_product(bad, None).await;
            assert_problem(response, 400, Some("id")).await;
        }
    }
}

#[tokio::test]
async fn a_present_but_invalid_token_is_401_even_where_anonymous_is_fine() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let created = app.create_product("Atlas", "books", 3_500, 4).await;
        let id = created["id"].as_str().unwrap().to_owned();
        let user = UserId::new_v7();
        let other_key = TokenKey::new(Secret::new("another-key-another-key-another-key!")).unwrap();
        let expired = TokenKey::new(Secret::new(crate::helpers::AUTH_KEY))
            .unwrap()
            .issue(user, now_seconds() - 7_200, 3_600);
        for token in [
            "garbage".to_owned(),
            other_key.issue(user, now_seconds(), 3_600),
            expired,
        ] {
            let response = app.get_product(&id, Some(&token)).await;
            assert_problem(response, 401, None).await;
        }
        let not_bearer = app
            .http
            .get(app.url(&format!("/products/{id}")))
            .header("Authorization", "Token abc")
            .send()
            .await
            .unwrap();
        assert_problem(not_bearer, 401, None).await;

        // None of these counted as a view.
        let sentinel = app.get_product(&id, Some(&app.user_token(user))).await;
        assert_eq!(sentinel.status(), 200);
        assert_eq!(
            app.wait_for_events(EventType::ProductViewed, 1).await.len(),
            1
        );
    }
}
