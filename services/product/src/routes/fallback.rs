//! Problem bodies for requests no route takes: every 4xx carries one.

use crate::error::ProductError;
use actix_web::{HttpRequest, HttpResponse};

pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ProductError> {
    Err(ProductError::NoRoute {
        method: req.method().to_string(),
        path: req.path().to_owned(),
    })
}

pub async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ProductError> {
    Err(ProductError::MethodNotAllowed {
        method: req.method().to_string(),
        path: req.path().to_owned(),
    })
}
