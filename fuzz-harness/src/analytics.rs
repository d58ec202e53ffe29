//! The analytics service's outside input: the query strings of its routes
//! (`k`, and `window`/`category` of `/trending`), and the JSON requests of
//! `shopmesh.rpc.analytics.*`.

use crate::Outcome;
use crate::invariants::{
    assert_bad_request, assert_rpc_refusal, assert_valid_category, subject_and_payload,
};
use futures::executor::block_on;
use shopmesh_analytics::error::AnalyticsError;
use shopmesh_analytics::routes::trending::TrendingQuery;
use shopmesh_analytics::routes::{parse_k, parse_query};
use shopmesh_analytics::rpc::{
    FUNNEL, FunnelRequest, NEIGHBOURS, NeighboursRequest, PRODUCT, PROFILE, ProductRequest,
    ProfileRequest, RECOMMENDATIONS, RecommendationsRequest, SIMILAR, SimilarRequest, TRENDING,
    TrendingRequest, checked_k,
};
use shopmesh_shared::rpc::{RpcFailure, answer_json};

/// A raw query string, as `/trending`, `/recommendations/{id}`,
/// `/products/{id}/similar` and `/products/{id}/neighbours` read it.
/// Accepted when `/trending` accepts it (which implies `k` is fine).
pub fn analytics_query(data: &[u8]) -> Outcome {
    let Ok(query_string) = std::str::from_utf8(data) else {
        return Outcome::Refused;
    };
    let params = match parse_query(query_string) {
        Ok(params) => params,
        Err(error) => {
            assert_bad_request(&error);
            return Outcome::Refused;
        }
    };
    let k = parse_k(&params);
    match &k {
        Ok(k) => assert!((1..=100).contains(k)),
        Err(error) => assert_bad_request(error),
    }
    let trending = TrendingQuery::parse(&params);
    match &trending {
        Ok(query) => {
            assert_eq!(k.as_ref().ok(), Some(&query.k));
            if let Some(category) = &query.category {
                assert_valid_category(category);
            }
        }
        Err(error) => assert_bad_request(error),
    }
    Outcome::of(&trending)
}

/// `shopmesh.rpc.analytics.*` (input: the subject, a newline, the payload),
/// decoded by the shared RPC server, with `k` checked as the endpoints do.
pub fn analytics_rpc(data: &[u8]) -> Outcome {
    let Some((subject, payload)) = subject_and_payload(data) else {
        return Outcome::Refused;
    };
    let refused = |e: AnalyticsError| RpcFailure::Invalid(e.to_string());
    match subject {
        PROFILE => decode(payload, |r: ProfileRequest| Ok(r.user_id)),
        PRODUCT => decode(payload, |r: ProductRequest| Ok(r.product_id)),
        NEIGHBOURS => decode(payload, |r: NeighboursRequest| Ok(r.product_id)),
        FUNNEL => decode(payload, |_: FunnelRequest| Ok(())),
        TRENDING => decode(payload, |r: TrendingRequest| {
            if let Some(category) = &r.category {
                assert_valid_category(category);
            }
            Ok(r.window)
        }),
        RECOMMENDATIONS => decode(payload, |r: RecommendationsRequest| {
            checked_k(r.k).map_err(refused)
        }),
        SIMILAR => decode(payload, |r: SimilarRequest| checked_k(r.k).map_err(refused)),
        _ => Outcome::Refused,
    }
}

/// One endpoint's decoding and checks, through the shared RPC server's
/// `answer_json`.
fn decode<Req, Resp>(data: &[u8], check: impl FnOnce(Req) -> Result<Resp, RpcFailure>) -> Outcome
where
    Req: serde::de::DeserializeOwned,
    Resp: serde::Serialize,
{
    let answer = block_on(answer_json(
        data,
        |request: Req| async move { check(request) },
    ));
    assert_rpc_refusal(&answer);
    Outcome::of(&answer)
}
