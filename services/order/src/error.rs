//! The order service's errors, mapped to HTTP problems in one place.

use actix_web::ResponseError;
use actix_web::http::StatusCode;
use shopmesh_shared::events::ProductId;
use shopmesh_shared::http::Problem;
use shopmesh_shared::rpc::{RpcError, ShortLine};

#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("invalid {field}: {detail}")]
    Invalid { field: &'static str, detail: String },
    #[error("product {0} does not exist")]
    UnknownProduct(ProductId),
    #[error("product {0} is not in the cart")]
    NotInCart(ProductId),
    #[error("order not found")]
    OrderNotFound,
    #[error("the cart is empty")]
    EmptyCart,
    #[error("not enough stock")]
    OutOfStock(Vec<ShortLine>),
    #[error("products no longer exist")]
    ProductsGone(Vec<ProductId>),
    #[error("the order is already cancelled")]
    AlreadyCancelled,
    #[error("the product service is unavailable: {0}")]
    ProductServiceUnavailable(#[source] RpcError),
    #[error("the database is unavailable: {0:#}")]
    DatabaseUnavailable(anyhow::Error),
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

impl From<sqlx::Error> for OrderError {
    fn from(error: sqlx::Error) -> Self {
        anyhow::Error::new(error).context("database").into()
    }
}

/// An error from the storage layer (which adds context with `anyhow`) or
/// anywhere else: a database out of reach is a 503 that heals by itself,
/// anything else unexpected.
impl From<anyhow::Error> for OrderError {
    fn from(error: anyhow::Error) -> Self {
        if shopmesh_shared::db_outage::caused_by_outage(&error) {
            OrderError::DatabaseUnavailable(error)
        } else {
            OrderError::Unexpected(error)
        }
    }
}

impl From<RpcError> for OrderError {
    fn from(error: RpcError) -> Self {
        if error.is_unavailable() {
            OrderError::ProductServiceUnavailable(error)
        } else {
            OrderError::Unexpected(anyhow::Error::new(error).context("product service"))
        }
    }
}

impl OrderError {
    pub fn invalid(field: &'static str, detail: impl Into<String>) -> Self {
        OrderError::Invalid {
            field,
            detail: detail.into(),
        }
    }

    fn problem(&self) -> Problem {
        match self {
            OrderError::Invalid { field, detail } => Problem::invalid_field(*field, detail.clone()),
            OrderError::UnknownProduct(id) => {
                Problem::not_found(format!("product {id} does not exist")).with_field("product_id")
            }
            OrderError::NotInCart(id) => {
                Problem::not_found(format!("product {id} is not in the cart"))
                    .with_field("product_id")
            }
            OrderError::OrderNotFound => Problem::not_found("no such order"),
            OrderError::EmptyCart => Problem::new(
                StatusCode::CONFLICT,
                "/problems/empty-cart",
                "Empty cart",
                "add items to the cart before checking out",
            ),
            OrderError::OutOfStock(short) => Problem::new(
                StatusCode::CONFLICT,
                "/problems/out-of-stock",
                "Not enough stock",
                "some products do not have enough stock; nothing was reserved",
            )
            .with_extra("short", serde_json::to_value(short).unwrap_or_default()),
            OrderError::ProductsGone(missing) => Problem::new(
                StatusCode::CONFLICT,
                "/problems/unknown-products",
                "Products no longer exist",
                "some products in the cart no longer exist; remove them and try again",
            )
            .with_extra("missing", serde_json::to_value(missing).unwrap_or_default()),
            OrderError::AlreadyCancelled => Problem::conflict("the order is already cancelled"),
            OrderError::ProductServiceUnavailable(_) => Problem::unavailable(
                "the product service cannot be reached; nothing was changed, try again later",
            ),
            // A checkout whose commit was cut off may have been placed after
            // all: the detail says where to look rather than "nothing changed".
            OrderError::DatabaseUnavailable(_) => Problem::unavailable(
                "the order database cannot be reached; try again later \
                 (a checkout cut off at this point shows in GET /orders if it was placed)",
            ),
            OrderError::Unexpected(_) => Problem::internal(),
        }
    }
}

impl ResponseError for OrderError {
    fn status_code(&self) -> StatusCode {
        self.problem().status_code()
    }

    fn error_response(&self) -> actix_web::HttpResponse {
        if self.status_code().is_server_error() {
            tracing::error!(error = ?self, "request failed");
        }
        self.problem().error_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_out_of_reach_is_503_and_a_refused_query_500() {
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let outage = OrderError::from(sqlx::Error::Io(reset));
        assert!(matches!(outage, OrderError::DatabaseUnavailable(_)));
        assert_eq!(outage.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        let wrapped =
            OrderError::from(anyhow::Error::new(sqlx::Error::PoolTimedOut).context("list"));
        assert_eq!(wrapped.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        let refused = OrderError::from(sqlx::Error::RowNotFound);
        assert_eq!(refused.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
