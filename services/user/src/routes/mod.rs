//! The HTTP routes of the user service with a 405 problem for a wrong method
//! (unknown paths get the shared 404 problem).

mod sessions;
mod users;

pub use sessions::{Login, LoginRequest, SessionIssuer, SessionResponse};
pub use users::{RegisterRequest, Registration, UserResponse};

use actix_web::web;
use shopmesh_shared::http::method_not_allowed;

/// Registers `/users`, `/users/me` and `/sessions`, and the fallbacks.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/users")
            .route(web::post().to(users::register))
            .default_service(method_not_allowed("POST")),
    )
    .service(
        web::resource("/users/me")
            .route(web::get().to(users::me))
            .default_service(method_not_allowed("GET")),
    )
    .service(
        web::resource("/sessions")
            .route(web::post().to(sessions::login))
            .default_service(method_not_allowed("POST")),
    );
}
