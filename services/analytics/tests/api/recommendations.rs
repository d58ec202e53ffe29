//! The recommender through the whole running path: events published to a
//! real nats-server, applied by the partition actors, answered over REST and
//! NATS. One new interaction changes the next answer.

use crate::helpers::*;
use shopmesh_analytics::recommend::Source;
use shopmesh_analytics::routes::recommendations::{SimilarProducts, UserRecommendations};
use shopmesh_analytics::rpc::{RECOMMENDATIONS, RecommendationsReply, RecommendationsRequest};
use shopmesh_analytics::run_system;
use shopmesh_shared::events::*;
use shopmesh_shared::testkit::TestBackbone;

/// A small shop: two tastes (books, games), three products each.
struct Shop {
    books: Vec<ProductId>,
    games: Vec<ProductId>,
}

fn created(product: ProductId, name: &str, category: &str, stock: i64) -> Event {
    Event::new(
        EventMeta::new("product", None),
        ProductCreated {
            product_id: product,
            name: name.into(),
            category: Category::parse(category).unwrap(),
            price_cents: 1_000,
            stock,
        },
    )
}

fn viewed(user: UserId, product: ProductId, category: &str) -> Event {
    Event::new(
        EventMeta::new("product", Some(user)),
        ProductViewed {
            product_id: product,
            category: Category::parse(category).unwrap(),
        },
    )
}

fn bought(user: UserId, product: ProductId, category: &str) -> Event {
    Event::new(
        EventMeta::new("order", Some(user)),
        OrderPlaced {
            order_id: OrderId::new_v7(),
            lines: vec![OrderLine {
                product_id: product,
                category: Category::parse(category).unwrap(),
                quantity: 1,
                unit_price_cents: 1_000,
            }],
            total_cents: 1_000,
        },
    )
}

impl Shop {
    fn new() -> Self {
        Self {
            books: (0..3).map(|_| ProductId::new_v7()).collect(),
            games: (0..3).map(|_| ProductId::new_v7()).collect(),
        }
    }

    /// The catalogue, then planted tastes: readers view every book, gamers
    /// every game.
    fn history(&self) -> Vec<Event> {
        let mut events = Vec::new();
        for (i, &book) in self.books.iter().enumerate() {
            events.push(created(book, &format!("book {i}"), "books", 10));
        }
        for (i, &game) in self.games.iter().enumerate() {
            events.push(created(game, &format!("game {i}"), "games", 10));
        }
        for _ in 0..6 {
            let reader = UserId::new_v7();
            events.extend(self.books.iter().map(|&b| viewed(reader, b, "books")));
            let gamer = UserId::new_v7();
            events.extend(self.games.iter().map(|&g| viewed(gamer, g, "games")));
        }
        events
    }
}

async fn recommendations(app: &TestApp, user: UserId) -> UserRecommendations {
    app.get_json(&format!("/recommendations/{user}?k=4")).await
}

fn ids(answer: &UserRecommendations) -> Vec<ProductId> {
    answer.items.iter().map(|i| i.product_id).collect()
}

#[test]
fn one_new_interaction_changes_the_next_answer() {
    run_system(|| async {
        let backbone = TestBackbone::start().await;
        let app = spawn_app(&backbone, &[]).await;
        let shop = Shop::new();
        publish_all(&backbone, &shop.history()).await;
        wait_caught_up(&[&app]).await;

        // Cold start: a user with no history gets trending products.
        let newcomer = UserId::new_v7();
        let cold = recommendations(&app, newcomer).await;
        assert_eq!(cold.items.len(), 4);
        assert!(cold.items.iter().all(|i| i.source == Source::Trending));
        assert!(cold.items[0].reason.starts_with("trending in "), "{cold:?}");

        // One view of a book: the other books come first, named by it.
        publish_all(&backbone, &[viewed(newcomer, shop.books[0], "books")]).await;
        wait_caught_up(&[&app]).await;
        let after_book = recommendations(&app, newcomer).await;
        let top: Vec<ProductId> = ids(&after_book)[..2].to_vec();
        assert!(
            top.contains(&shop.books[1]) && top.contains(&shop.books[2]),
            "{after_book:?}"
        );
        assert_eq!(after_book.items[0].source, Source::Similar);
        assert_eq!(after_book.items[0].reason, "viewed book 0");
        assert_eq!(after_book.items[0].because, Some(shop.books[0]));
        assert!(
            !ids(&after_book).contains(&shop.books[0]),
            "the seed itself"
        );

        // One view of a game: games now lead (newest history weighs most).
        publish_all(&backbone, &[viewed(newcomer, shop.games[0], "games")]).await;
        wait_caught_up(&[&app]).await;
        let after_game = recommendations(&app, newcomer).await;
        assert_ne!(ids(&after_game), ids(&after_book));
        assert!(
            shop.games[1..].contains(&ids(&after_game)[0]),
            "{after_game:?}"
        );

        // A purchase never comes back; an out-of-stock product never shows.
        publish_all(
            &backbone,
            &[
                bought(newcomer, shop.games[1], "games"),
                Event::new(
                    EventMeta::new("product", None),
                    ProductUpdated {
                        product_id: shop.games[2],
                        price_cents: 1_000,
                        stock: 0,
                    },
                ),
            ],
        )
        .await;
        wait_caught_up(&[&app]).await;
        let after_purchase = recommendations(&app, newcomer).await;
        assert!(
            !ids(&after_purchase).contains(&shop.games[1]),
            "{after_purchase:?}"
        );
        assert!(
            !ids(&after_purchase).contains(&shop.games[2]),
            "{after_purchase:?}"
        );
        assert!(!after_purchase.items.is_empty());

        // Similar products, and an unknown product id has none of its own.
        let similar: SimilarProducts = app
            .get_json(&format!("/products/{}/similar?k=2", shop.books[1]))
            .await;
        let similar_ids: Vec<ProductId> = similar.items.iter().map(|i| i.product_id).collect();
        assert_eq!(similar_ids.len(), 2);
        assert!(similar_ids.contains(&shop.books[0]) && similar_ids.contains(&shop.books[2]));

        // The same answer over NATS request-reply.
        let request = RecommendationsRequest {
            user_id: newcomer,
            k: 4,
        };
        let replies: Vec<RecommendationsReply> = shopmesh_analytics::rpc::scatter(
            &backbone.client,
            RECOMMENDATIONS,
            &request,
            std::time::Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(replies.len(), 1);
        let over_nats: Vec<ProductId> = replies[0].answer.iter().map(|i| i.product_id).collect();
        assert_eq!(over_nats, ids(&after_purchase));

        app.stop().await;
    });
}

#[test]
fn recommendation_parameters_are_checked() {
    run_system(|| async {
        let backbone = TestBackbone::start().await;
        let app = spawn_app(&backbone, &[]).await;
        for (path, field) in [
            ("/recommendations/not-a-uuid".to_owned(), "user_id"),
            (format!("/recommendations/{}?k=0", UserId::new_v7()), "k"),
            ("/products/42/similar".to_owned(), "id"),
            (
                format!("/products/{}/similar?k=101", ProductId::new_v7()),
                "k",
            ),
        ] {
            let response = app.get(&path).await;
            assert_eq!(response.status(), 400, "{path}");
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["field"], field, "{path}");
        }
        // Nothing known yet: an empty list, not an error.
        let empty: UserRecommendations = app
            .get_json(&format!("/recommendations/{}", UserId::new_v7()))
            .await;
        assert!(empty.items.is_empty());
        // Over NATS, a bad k is the caller's error.
        let reply = backbone
            .client
            .request(
                RECOMMENDATIONS,
                serde_json::to_vec(&serde_json::json!({"user_id": UserId::new_v7(), "k": 0}))
                    .unwrap()
                    .into(),
            )
            .await
            .unwrap();
        let headers = reply.headers.expect("an error reply carries headers");
        assert_eq!(
            headers
                .get(async_nats::service::NATS_SERVICE_ERROR_CODE)
                .map(|v| v.as_str()),
            Some("400")
        );
        app.stop().await;
    });
}
