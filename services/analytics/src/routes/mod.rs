//! HTTP routes of the analytics service, one file per group, and the query
//! parameter parsing they share.

pub mod funnel;
pub mod products;
pub mod recommendations;
pub mod stats;
pub mod trending;
pub mod users;

use crate::error::AnalyticsError;
use actix_web::{HttpRequest, web};
use std::collections::HashMap;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/users/{id}/profile", web::get().to(users::profile))
        .route("/products/{id}/stats", web::get().to(products::stats))
        .route(
            "/products/{id}/neighbours",
            web::get().to(products::neighbours),
        )
        .route(
            "/products/{id}/similar",
            web::get().to(recommendations::similar),
        )
        .route(
            "/recommendations/{user_id}",
            web::get().to(recommendations::for_user),
        )
        .route("/trending", web::get().to(trending::trending))
        .route("/funnel", web::get().to(funnel::funnel))
        .route("/stats", web::get().to(stats::stats));
}

/// The query string as a map; an unreadable one is a 400 naming `query`.
pub(crate) fn query_params(req: &HttpRequest) -> Result<HashMap<String, String>, AnalyticsError> {
    parse_query(req.query_string())
}

/// [`query_params`] from the raw text; public so that the fuzz harness
/// decodes query strings exactly as the routes do.
pub fn parse_query(query_string: &str) -> Result<HashMap<String, String>, AnalyticsError> {
    web::Query::<HashMap<String, String>>::from_query(query_string)
        .map(web::Query::into_inner)
        .map_err(|e| AnalyticsError::invalid("query", e.to_string()))
}

/// `k`: 1 to 100, default 10.
pub fn parse_k(params: &HashMap<String, String>) -> Result<usize, AnalyticsError> {
    match params.get("k") {
        None => Ok(10),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|k| (1..=100).contains(k))
            .ok_or_else(|| AnalyticsError::invalid("k", "k must be a whole number from 1 to 100")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::checked_k;
    use proptest::prelude::*;

    proptest! {
        /// `?k=` and the RPC's `k` accept the same numbers: 1 to 100.
        #[test]
        fn k_is_a_whole_number_from_1_to_100(text in prop_oneof![
            (0usize..=102).prop_map(|k| k.to_string()),
            "[ +-]?[0-9]{1,22}",
            any::<String>(),
        ]) {
            let params = HashMap::from([("k".to_owned(), text.clone())]);
            let expected = text.parse::<usize>().ok().filter(|k| (1..=100).contains(k));
            prop_assert_eq!(parse_k(&params).ok(), expected);
            if let Ok(k) = text.parse::<usize>() {
                prop_assert_eq!(checked_k(k).ok(), expected);
            }
        }

    }

    #[test]
    fn k_defaults_to_10() {
        assert_eq!(parse_k(&HashMap::new()).unwrap(), 10);
    }
}
