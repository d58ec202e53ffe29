//! One SERVER span per HTTP request, continuing the caller's W3C trace, and
//! the request's count and duration in the metrics (by route pattern).

use crate::metrics::metrics;
use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TraceContextExt;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct RequestHeaders<'a>(&'a actix_web::http::header::HeaderMap);

impl Extractor for RequestHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Middleware: wrap an app with `actix_web::middleware::from_fn(trace_requests)`.
/// The span is named `METHOD route` (the route pattern, not the raw path, so
/// ids do not explode span names) and records the response status.
pub async fn trace_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&RequestHeaders(req.headers()))
    });
    let method = req.method().to_string();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let span = tracing::info_span!(
        "HTTP request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = %route,
        url.path = %req.path(),
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
    let started = std::time::Instant::now();
    let response = next.call(req).instrument(span.clone()).await;
    let status = match &response {
        Ok(response) => response.status(),
        Err(error) => error.as_response_error().status_code(),
    };
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    let metrics = metrics();
    metrics
        .http_requests
        .with_label_values(&[method.as_str(), route.as_str(), status.as_str()])
        .inc();
    metrics
        .http_duration
        .with_label_values(&[method.as_str(), route.as_str()])
        .observe(started.elapsed().as_secs_f64());
    response
}
