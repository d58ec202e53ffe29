//! The HTTP routes of the user service and the problem answers for requests
//! no route takes (unknown path 404, wrong method 405), so that every 4xx has
//! a JSON problem body.

mod sessions;
mod users;

pub use sessions::{SessionIssuer, SessionResponse};
pub use users::UserResponse;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use shopmesh_shared::http::Problem;

/// Registers `/users`, `/users/me` and `/sessions`, and the fallbacks.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/users")
            .route(web::post().to(users::register))
            .default_service(web::to(only_post)),
    )
    .service(
        web::resource("/users/me")
            .route(web::get().to(users::me))
            .default_service(web::to(only_get)),
    )
    .service(
        web::resource("/sessions")
            .route(web::post().to(sessions::login))
            .default_service(web::to(only_post)),
    )
    .default_service(web::to(not_found));
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    Problem::not_found(format!("no resource at {}", req.path())).error_response()
}

fn method_not_allowed(req: &HttpRequest, allowed: &'static str) -> HttpResponse {
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
}

async fn only_post(req: HttpRequest) -> HttpResponse {
    method_not_allowed(&req, "POST")
}

async fn only_get(req: HttpRequest) -> HttpResponse {
    method_not_allowed(&req, "GET")
}
