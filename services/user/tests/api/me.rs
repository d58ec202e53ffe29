//! `GET /users/me` and the bearer token it needs.

use crate::helpers::{AUTH_KEY, assert_problem, spawn_app};
use shopmesh_shared::auth::{TokenKey, now_seconds};
use shopmesh_shared::events::UserId;
use shopmesh_shared::settings::Secret;
use shopmesh_shared::testkit::test_databases;

fn key(secret: &str) -> TokenKey {
    TokenKey::new(Secret::new(secret)).expect("a long enough key")
}

#[tokio::test]
async fn missing_or_malformed_authorization_is_401() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        for header in [
            None,
            Some(""),
            Some("Bearer"),
            Some("Bearer "),
            Some("Basic YW5uOnBhc3N3b3Jk"),
            Some("Bearer not-a-token"),
            Some("Bearer v1.e30.AAAA"),
            Some("Bearer v2.abc.def"),
        ] {
            let response = app.me_with_header(header).await;
            let problem = assert_problem(response, 401, None).await;
            assert_eq!(problem["type"], "/problems/unauthorized", "{header:?}");
        }
    }
}

#[tokio::test]
async fn expired_and_wrongly_signed_tokens_are_401() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let user = app
            .register_user("ann@example.com", "Ann", "password123")
            .await;
        let id = UserId::parse(user["id"].as_str().unwrap()).unwrap();

        let expired = key(AUTH_KEY).issue(id, now_seconds() - 7_200, 3_600);
        let problem = assert_problem(app.me(&expired).await, 401, None).await;
        assert!(
            problem["detail"].as_str().unwrap().contains("expired"),
            "{problem}"
        );

        let other_key = key("another-key-that-is-long-enough-0123456789");
        let forged = other_key.issue(id, now_seconds(), 3_600);
        assert_problem(app.me(&forged).await, 401, None).await;

        // A valid token with one character of its signature changed.
        let session = app.session("ann@example.com", "password123").await;
        let mut tampered = session["token"].as_str().unwrap().to_owned();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        assert_problem(app.me(&tampered).await, 401, None).await;

        // The untouched token still works.
        assert_eq!(
            app.me(session["token"].as_str().unwrap()).await.status(),
            200
        );
    }
}

#[tokio::test]
async fn a_valid_token_for_a_user_that_does_not_exist_is_404() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let ghost = key(AUTH_KEY).issue(UserId::new_v7(), now_seconds(), 3_600);
        let problem = assert_problem(app.me(&ghost).await, 404, None).await;
        assert_eq!(problem["type"], "/problems/not-found");
    }
}

#[tokio::test]
async fn users_me_only_answers_get() {
    for database in test_databases().await {
        let app = spawn_app(database).await;
        let post = app.client.post(app.url("/users/me")).send().await.unwrap();
        assert_eq!(
            post.headers().get("allow").and_then(|v| v.to_str().ok()),
            Some("GET")
        );
        assert_problem(post, 405, None).await;
    }
}
