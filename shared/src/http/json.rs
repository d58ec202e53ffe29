//! `JsonBody<T>`: a JSON request body, limited in size, whose errors are
//! problem bodies naming the field (`lines[0].quantity`), never a bare 400.

use super::Problem;
use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest};
use futures::StreamExt;
use futures::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

/// Bodies larger than this get 413 unless the app sets a [`JsonLimit`].
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// The largest JSON body an app accepts; put it in `app_data`.
#[derive(Debug, Clone, Copy)]
pub struct JsonLimit(pub usize);

/// A deserialized JSON body.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T> JsonBody<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

fn too_large(limit: usize) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "/problems/payload-too-large",
        "Request body too large",
        format!("the body must be at most {limit} bytes"),
    )
}

/// Parses `body` as `T`, naming the field at fault on error.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let message = inner.to_string();
        // Only a data error (wrong type, missing field, bad value) belongs to a
        // field; broken syntax or a truncated body belongs to the whole body.
        let is_data = inner.classify() == serde_json::error::Category::Data;
        // "missing field `email`" sits at the parent's path; name the field itself.
        let field = match message.split('`').nth(1) {
            Some(missing) if message.starts_with("missing field") => {
                if path == "." {
                    missing.to_owned()
                } else {
                    format!("{path}.{missing}")
                }
            }
            _ if path == "." || !is_data => String::new(),
            _ => path,
        };
        let detail = strip_position(&message);
        if field.is_empty() {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "/problems/malformed-json",
                "Malformed JSON body",
                detail,
            )
        } else {
            Problem::invalid_field(field, detail)
        }
    })?;
    deserializer.end().map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "/problems/malformed-json",
            "Malformed JSON body",
            strip_position(&e.to_string()),
        )
    })?;
    Ok(value)
}

/// serde_json appends " at line 1 column 17": noise for an API client.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = Problem;
    type Future = LocalBoxFuture<'static, Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<JsonLimit>()
            .map_or(DEFAULT_BODY_LIMIT, |l| l.0);
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                let essence = v.split(';').next().unwrap_or("").trim();
                essence.eq_ignore_ascii_case("application/json") || essence.ends_with("+json")
            });
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if declared.is_some_and(|n| n > limit) {
                return Err(too_large(limit));
            }
            if !is_json {
                return Err(Problem::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "/problems/unsupported-media-type",
                    "Unsupported media type",
                    "the body must be JSON (Content-Type: application/json)",
                ));
            }
            let mut body = Vec::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| {
                    Problem::new(
                        StatusCode::BAD_REQUEST,
                        "/problems/body-read",
                        "Cannot read the body",
                        e.to_string(),
                    )
                })?;
                if body.len() + chunk.len() > limit {
                    return Err(too_large(limit));
                }
                body.extend_from_slice(&chunk);
            }
            parse_json(&body).map(JsonBody)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Line {
        product_id: String,
        quantity: u32,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Order {
        email: String,
        lines: Vec<Line>,
    }

    #[test]
    fn a_missing_field_is_named() {
        let problem = parse_json::<Order>(br#"{"lines": []}"#).unwrap_err();
        assert_eq!(problem.field.as_deref(), Some("email"));
        assert_eq!(problem.status, 400);
    }

    #[test]
    fn a_wrong_type_deep_inside_is_named_by_path() {
        let body = br#"{"email": "a@b.c", "lines": [{"product_id": "x", "quantity": -1}]}"#;
        let problem = parse_json::<Order>(body).unwrap_err();
        assert_eq!(problem.field.as_deref(), Some("lines[0].quantity"));
        assert!(
            !problem.detail.contains("line 1 column"),
            "{}",
            problem.detail
        );
    }

    #[test]
    fn a_nested_missing_field_has_its_full_path() {
        let body = br#"{"email": "a@b.c", "lines": [{"product_id": "x"}]}"#;
        let problem = parse_json::<Order>(body).unwrap_err();
        assert_eq!(problem.field.as_deref(), Some("lines[0].quantity"));
    }

    #[test]
    fn broken_json_is_malformed_without_a_field() {
        let problem = parse_json::<Order>(b"{\"email\": ").unwrap_err();
        assert_eq!(problem.kind, "/problems/malformed-json");
        assert!(problem.field.is_none());
        let trailing = parse_json::<Order>(br#"{"email":"a","lines":[]} x"#).unwrap_err();
        assert_eq!(trailing.kind, "/problems/malformed-json");
    }
}
