//! `/orders`: checkout, history and cancellation.

use super::AppState;
use crate::domain::{Order, OrderLine, OrderStatus};
use crate::error::OrderError;
use crate::releaser::queue_release;
use crate::storage::{cart, orders};
use actix_web::{HttpResponse, web};
use shopmesh_shared::events::{Event, EventMeta, OrderCancelled, OrderId, OrderPlaced, Timestamp};
use shopmesh_shared::http::AuthenticatedUser;
use shopmesh_shared::outbox;
use shopmesh_shared::rpc::{ReserveLine, ReserveResponse};
use std::time::Duration;

fn parse_order_id(path: web::Path<String>) -> Result<OrderId, OrderError> {
    OrderId::parse(&path.into_inner()).map_err(|e| OrderError::invalid("id", e.to_string()))
}

/// `POST /orders`: reserve the cart's stock through the product service, then
/// write the order, empty the cart and enqueue `order.placed` in one
/// transaction. -> 201 with the order.
#[tracing::instrument(name = "checkout", skip(state), fields(order_id))]
pub async fn checkout(
    state: web::Data<AppState>,
    user: AuthenticatedUser,
) -> Result<HttpResponse, OrderError> {
    let items = {
        let mut conn = state.pool.acquire().await?;
        cart::lines(&mut conn, user.0).await?
    };
    if items.is_empty() {
        return Err(OrderError::EmptyCart);
    }
    let order_id = OrderId::new_v7();
    tracing::Span::current().record("order_id", tracing::field::display(order_id));
    let request = items
        .iter()
        .map(|item| ReserveLine {
            product_id: item.product_id,
            quantity: item.quantity,
        })
        .collect();
    let reserved = match state.catalog.reserve(order_id, request).await {
        Ok(ReserveResponse::Reserved { lines }) => lines,
        Ok(ReserveResponse::Short { short }) => return Err(OrderError::OutOfStock(short)),
        Ok(ReserveResponse::Unknown { missing }) => return Err(OrderError::ProductsGone(missing)),
        // Order ids are new per checkout, so only a broken product service
        // (or a clash of ids) answers this.
        Ok(ReserveResponse::Released) => {
            return Err(OrderError::Unexpected(anyhow::anyhow!(
                "the product service says order {order_id} was released already"
            )));
        }
        Err(error) => {
            // The reservation may have been made with only its answer lost.
            release_later(&state, order_id);
            return Err(error.into());
        }
    };
    let lines: Vec<OrderLine> = reserved
        .into_iter()
        .map(|line| OrderLine {
            product_id: line.product_id,
            name: line.name,
            category: line.category,
            quantity: line.quantity,
            unit_price_cents: line.unit_price_cents,
        })
        .collect();
    let order = Order {
        id: order_id,
        user_id: user.0,
        status: OrderStatus::Placed,
        total_cents: lines
            .iter()
            .map(|l| l.unit_price_cents * i64::from(l.quantity))
            .sum(),
        lines,
        created_at_ms: Timestamp::now().as_millis(),
        cancelled_at_ms: None,
    };
    if let Err(error) = record_placed(&state, &order).await {
        release_unless_recorded(&state, order_id);
        return Err(error);
    }
    Ok(HttpResponse::Created().json(&order))
}

/// The order, the emptied cart and `order.placed`: all or nothing.
async fn record_placed(state: &AppState, order: &Order) -> Result<(), OrderError> {
    let event = Event::new(
        EventMeta::new(crate::SERVICE, Some(order.user_id)),
        OrderPlaced {
            order_id: order.id,
            lines: order.event_lines(),
            total_cents: order.total_cents,
        },
    );
    let outbound = state
        .publisher
        .prepare(&event)
        .map_err(|e| OrderError::Unexpected(e.into()))?;
    let mut tx = state.writes.begin(&state.pool).await?;
    orders::insert(&mut tx, order).await?;
    cart::clear(&mut tx, order.user_id).await?;
    outbox::enqueue(&mut tx, &outbound).await?;
    tx.commit().await?;
    state.outbox_wake.notify_one();
    Ok(())
}

/// Hands a reservation to the releaser in the background (recorded in the
/// database: stock held for an order that does not exist is lost stock).
fn release_later(state: &AppState, order_id: OrderId) {
    let (pool, writes) = (state.pool.clone(), state.writes.clone());
    let wake = state.release_wake.clone();
    tokio::spawn(async move { queue_release(&pool, &writes, &wake, order_id).await });
}

/// After writing a reserved order failed: releases its reservation unless
/// the order was recorded after all. A commit whose answer was lost (the
/// connection broke on the way back) may have committed, and releasing then
/// would leave a placed order without its stock; so the order's row decides,
/// read once the database answers again (an aborted transaction is gone by
/// then, a committed one visible).
fn release_unless_recorded(state: &AppState, order_id: OrderId) {
    let (pool, writes) = (state.pool.clone(), state.writes.clone());
    let wake = state.release_wake.clone();
    tokio::spawn(async move {
        let mut delay = Duration::from_millis(100);
        loop {
            match orders::exists(&pool, order_id).await {
                Ok(true) => {
                    tracing::warn!(%order_id, "the order was recorded although its write reported a failure; its reservation stays");
                    return;
                }
                Ok(false) => break,
                Err(error) => {
                    tracing::warn!(%order_id, %error, "cannot tell yet whether the order was recorded");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        queue_release(&pool, &writes, &wake, order_id).await;
    });
}

/// `GET /orders` -> the user's orders, newest first.
#[tracing::instrument(name = "list orders", skip(state))]
pub async fn list(
    state: web::Data<AppState>,
    user: AuthenticatedUser,
) -> Result<HttpResponse, OrderError> {
    let orders = orders::list(&state.pool, user.0).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": orders })))
}

/// `GET /orders/{id}` -> the order; 404 when it is someone else's.
#[tracing::instrument(name = "show order", skip(state))]
pub async fn show(
    state: web::Data<AppState>,
    user: AuthenticatedUser,
    path: web::Path<String>,
) -> Result<HttpResponse, OrderError> {
    let id = parse_order_id(path)?;
    let order = orders::find(&state.pool, user.0, id)
        .await?
        .ok_or(OrderError::OrderNotFound)?;
    Ok(HttpResponse::Ok().json(order))
}

/// `POST /orders/{id}/cancel`: release the stock, then mark the order
/// cancelled and enqueue `order.cancelled`. Releasing first is safe to repeat
/// (it is idempotent), so a failure between the two steps heals on retry.
#[tracing::instrument(name = "cancel order", skip(state))]
pub async fn cancel(
    state: web::Data<AppState>,
    user: AuthenticatedUser,
    path: web::Path<String>,
) -> Result<HttpResponse, OrderError> {
    let id = parse_order_id(path)?;
    let mut order = orders::find(&state.pool, user.0, id)
        .await?
        .ok_or(OrderError::OrderNotFound)?;
    if order.status == OrderStatus::Cancelled {
        return Err(OrderError::AlreadyCancelled);
    }
    state.catalog.release(id).await?;
    let now = Timestamp::now().as_millis();
    let event = Event::new(
        EventMeta::new(crate::SERVICE, Some(user.0)),
        OrderCancelled {
            order_id: id,
            lines: order.event_lines(),
        },
    );
    let outbound = state
        .publisher
        .prepare(&event)
        .map_err(|e| OrderError::Unexpected(e.into()))?;
    let mut tx = state.writes.begin(&state.pool).await?;
    if !orders::mark_cancelled(&mut tx, id, now).await? {
        return Err(OrderError::AlreadyCancelled);
    }
    outbox::enqueue(&mut tx, &outbound).await?;
    tx.commit().await?;
    state.outbox_wake.notify_one();
    order.status = OrderStatus::Cancelled;
    order.cancelled_at_ms = Some(now);
    Ok(HttpResponse::Ok().json(order))
}
