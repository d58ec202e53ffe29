//! The HTTP conventions every service shares: RFC 9457 problem bodies, a JSON
//! body extractor that names the offending field and enforces a size limit,
//! bearer-token authentication, and health endpoints.

mod auth;
mod fallback;
mod health;
mod json;
mod problem;
mod trace;

pub use auth::{AdminToken, AuthenticatedUser, RequireAdmin};
pub use fallback::{method_not_allowed, no_route};
pub use health::{ReadinessCheck, healthz, readiness_response};
pub use json::{DEFAULT_BODY_LIMIT, JsonBody, JsonLimit, parse_json};
pub use problem::Problem;
pub use trace::trace_requests;
