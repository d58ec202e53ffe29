//! `/cart`: what a shopper is about to buy.

use super::AppState;
use crate::domain::Quantity;
use crate::error::OrderError;
use crate::storage::cart;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use shopmesh_shared::events::{CartItemAdded, CartItemRemoved, Event, EventMeta, ProductId};
use shopmesh_shared::http::{AuthenticatedUser, JsonBody};

#[derive(Deserialize)]
pub struct AddItem {
    product_id: String,
    quantity: i64,
}

impl AddItem {
    /// The product and quantity, checked before the catalogue is asked;
    /// public so that the fuzz harness runs exactly these checks.
    pub fn validate(self) -> Result<(ProductId, Quantity), OrderError> {
        let product_id = ProductId::parse(&self.product_id)
            .map_err(|e| OrderError::invalid("product_id", e.to_string()))?;
        let quantity =
            Quantity::parse(self.quantity).map_err(|e| OrderError::invalid("quantity", e))?;
        Ok((product_id, quantity))
    }
}

/// `GET /cart` -> `{items, total_cents}`.
#[tracing::instrument(name = "show cart", skip(state))]
pub async fn show(
    state: web::Data<AppState>,
    user: AuthenticatedUser,
) -> Result<HttpResponse, OrderError> {
    let mut conn = state.pool.acquire().await?;
    let items = cart::lines(&mut conn, user.0).await?;
    let total_cents: i64 = items
        .iter()
        .map(|line| line.unit_price_cents * i64::from(line.quantity))
        .sum();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items, "total_cents": total_cents })))
}

/// `POST /cart/items {product_id, quantity}` -> 201 with the line.
#[tracing::instrument(name = "add to cart", skip(state, body))]
pub async fn add_item(
    state: web::Data<AppState>,
    user: AuthenticatedUser,
    body: JsonBody<AddItem>,
) -> Result<HttpResponse, OrderError> {
    let (product_id, quantity) = body.into_inner().validate()?;
    let product = state
        .catalog
        .product(product_id)
        .await?
        .ok_or(OrderError::UnknownProduct(product_id))?;
    let add = cart::add(&state.pool, user.0, &product, quantity);
    let total = state.writes.in_turn(add).await?.ok_or_else(|| {
        OrderError::invalid(
            "quantity",
            format!("a cart line holds at most {} items", Quantity::MAX),
        )
    })?;
    state.behaviour.emit(Event::new(
        EventMeta::new(crate::SERVICE, Some(user.0)),
        CartItemAdded {
            product_id,
            category: product.category.clone(),
            quantity: quantity.get(),
            unit_price_cents: product.price_cents,
        },
    ));
    Ok(HttpResponse::Created().json(cart::CartLine {
        product_id,
        name: product.name,
        category: product.category,
        quantity: total,
        unit_price_cents: product.price_cents,
    }))
}

/// `DELETE /cart/items/{product_id}` -> 204.
#[tracing::instrument(name = "remove from cart", skip(state))]
pub async fn remove_item(
    state: web::Data<AppState>,
    user: AuthenticatedUser,
    path: web::Path<String>,
) -> Result<HttpResponse, OrderError> {
    let product_id = ProductId::parse(&path.into_inner())
        .map_err(|e| OrderError::invalid("product_id", e.to_string()))?;
    let remove = cart::remove(&state.pool, user.0, product_id);
    let category = state
        .writes
        .in_turn(remove)
        .await?
        .ok_or(OrderError::NotInCart(product_id))?;
    state.behaviour.emit(Event::new(
        EventMeta::new(crate::SERVICE, Some(user.0)),
        CartItemRemoved {
            product_id,
            category,
        },
    ));
    Ok(HttpResponse::NoContent().finish())
}
