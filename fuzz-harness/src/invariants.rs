//! Checks every target shares: what an accepted value must satisfy and what
//! a refusal must look like. They panic, which is how libFuzzer learns of a
//! finding.

use actix_web::ResponseError;
use serde::de::DeserializeOwned;
use shopmesh_shared::events::Category;
use shopmesh_shared::http::{Problem, parse_json};
use shopmesh_shared::rpc::RpcFailure;

/// A NATS request as the fuzz targets take it: the subject on the first
/// line, the payload after it (so one target covers a whole service's
/// endpoints and its seeds stay readable). `None` without a first line.
pub fn subject_and_payload(data: &[u8]) -> Option<(&str, &[u8])> {
    let newline = data.iter().position(|&b| b == b'\n')?;
    let subject = std::str::from_utf8(&data[..newline]).ok()?;
    Some((subject, &data[newline + 1..]))
}

/// A category that got in anywhere must be one `Category::parse` accepts,
/// unchanged: it becomes a metric label and a map key.
pub fn assert_valid_category(category: &Category) {
    assert_eq!(
        Category::parse(category.as_str()).as_ref(),
        Ok(category),
        "a category that does not re-validate got in"
    );
}

/// `body` through the services' JSON extractor (`JsonBody`'s parser): the
/// value, or `None` after checking the refusal is a 400 problem.
pub fn json_body<T: DeserializeOwned>(body: &[u8]) -> Option<T> {
    match parse_json::<T>(body) {
        Ok(value) => Some(value),
        Err(problem) => {
            assert_client_problem(&problem);
            None
        }
    }
}

/// A refused request: 400, with a problem body that serializes.
pub fn assert_client_problem(problem: &Problem) {
    assert_eq!(
        problem.status, 400,
        "a refusal that is not a 400: {problem}"
    );
    assert!(
        problem.field.as_deref() != Some(""),
        "a problem naming an empty field: {problem}"
    );
    serde_json::to_vec(problem).expect("a problem body serializes");
}

/// A refused field: 400, naming one of `fields` (or no field, for refusals
/// that concern the whole request).
pub fn assert_field_problem(problem: &Problem, fields: &[&str]) {
    assert_client_problem(problem);
    if let Some(field) = &problem.field {
        assert!(
            fields.contains(&field.as_str()),
            "refusal names {field:?}, not one of {fields:?}"
        );
    }
}

/// A service error answering a request the client got wrong: a 400.
pub fn assert_bad_request(error: &impl ResponseError) {
    assert_eq!(
        error.status_code().as_u16(),
        400,
        "invalid input answered {}: {error}",
        error.status_code()
    );
}

/// An RPC refusal of malformed or invalid input is the caller's fault (code
/// 400), never an internal error.
pub fn assert_rpc_refusal(outcome: &Result<impl Sized, RpcFailure>) {
    if let Err(failure) = outcome {
        assert!(
            matches!(failure, RpcFailure::Invalid(_)),
            "invalid input became an internal failure: {failure}"
        );
    }
}
