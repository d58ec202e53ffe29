//! Problem bodies for requests no route takes, so that every 4xx of every
//! service carries one: an unknown path (404, set by `http_server` for every
//! app) and a known path with the wrong method (405, per resource).

use super::Problem;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError, Route, web};

/// The app-wide default service: 404 problem naming the path.
pub async fn no_route(req: HttpRequest) -> HttpResponse {
    Problem::not_found(format!("no resource at {}", req.path())).error_response()
}

/// A resource's default service: 405 problem with the `Allow` header, e.g.
/// `web::resource("/users").route(..).default_service(method_not_allowed("POST"))`.
pub fn method_not_allowed(allowed: &'static str) -> Route {
    web::to(move |req: HttpRequest| async move {
        let problem = Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "/problems/method-not-allowed",
            "Method not allowed",
            format!("{} accepts {allowed} only", req.path()),
        );
        let mut response = problem.error_response();
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static(allowed));
        response
    })
}
