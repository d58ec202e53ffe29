//! Stock for orders: lookup (through the product cache), all-or-nothing
//! reservation and release, each in one transaction with its
//! `product.updated` events in the outbox. The NATS
//! endpoints in `rpc` are a thin transport over these.

use crate::catalogue;
use crate::repository::reservations;
use crate::state::{AppState, now_ms};
use anyhow::Context;
use shopmesh_shared::events::{OrderId, ProductId, ProductUpdated};
use shopmesh_shared::outbox;
use shopmesh_shared::rpc::{
    LookupRequest, LookupResponse, ProductInfo, ReleaseRequest, ReleaseResponse, ReserveLine,
    ReserveRequest, ReserveResponse, ReservedLine, ShortLine,
};
use std::collections::{BTreeMap, HashSet};

/// Ids per lookup and lines per reservation: far above any real basket, low
/// enough that one request cannot hold a transaction for long.
pub const MAX_ITEMS: usize = 1000;

/// How often a reservation is retried after losing a race on the same order
/// id (the retry then finds the winner's lines).
const RESERVE_ATTEMPTS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The request is well-formed JSON but asks for something meaningless.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The ids a lookup asks for, each once, in the order first asked.
pub fn lookup_ids(request: &LookupRequest) -> Result<Vec<ProductId>, InventoryError> {
    if request.product_ids.len() > MAX_ITEMS {
        return Err(InventoryError::Invalid(format!(
            "at most {MAX_ITEMS} product ids per lookup"
        )));
    }
    let mut seen = HashSet::new();
    Ok(request
        .product_ids
        .iter()
        .copied()
        .filter(|id| seen.insert(*id))
        .collect())
}

pub async fn lookup(
    state: &AppState,
    request: &LookupRequest,
) -> Result<LookupResponse, InventoryError> {
    let ids = lookup_ids(request)?;
    let found = catalogue::several(state, &ids)
        .await
        .context("look up products")?;
    // `several` keeps the order of `ids`, leaving out the unknown ones.
    let known: HashSet<ProductId> = found.iter().map(|p| p.id).collect();
    let missing = ids.into_iter().filter(|id| !known.contains(id)).collect();
    let products = found
        .into_iter()
        .map(|p| ProductInfo {
            product_id: p.id,
            name: p.name,
            category: p.category,
            price_cents: p.price_cents,
            stock: p.stock,
        })
        .collect();
    Ok(LookupResponse { products, missing })
}

/// Lines with the same product merged (quantities summed), in product id
/// order: every multi-product transaction locks rows in that one order, so
/// two of them cannot deadlock.
pub fn merge_lines(lines: &[ReserveLine]) -> Result<BTreeMap<ProductId, u32>, InventoryError> {
    if lines.is_empty() {
        return Err(InventoryError::Invalid("a reservation needs lines".into()));
    }
    if lines.len() > MAX_ITEMS {
        return Err(InventoryError::Invalid(format!(
            "at most {MAX_ITEMS} lines per reservation"
        )));
    }
    let mut merged = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        if line.quantity == 0 {
            return Err(InventoryError::Invalid(format!(
                "lines[{i}].quantity must be at least 1"
            )));
        }
        let total: &mut u32 = merged.entry(line.product_id).or_default();
        *total = total.checked_add(line.quantity).ok_or_else(|| {
            InventoryError::Invalid(format!("quantity of {} is too large", line.product_id))
        })?;
    }
    Ok(merged)
}

/// Reserves every line or none. Idempotent per order id: a repeat answers
/// the stored lines without touching stock. An order released already is
/// refused (`Released`).
pub async fn reserve(
    state: &AppState,
    request: &ReserveRequest,
) -> Result<ReserveResponse, InventoryError> {
    let lines = merge_lines(&request.lines)?;
    let mut attempt = 1;
    loop {
        match try_reserve(state, request.order_id, &lines).await {
            Err(error) if attempt < RESERVE_ATTEMPTS && is_unique_violation(&error) => {
                // A concurrent reservation of the same order committed first;
                // the next attempt answers its lines.
                tracing::debug!(order_id = %request.order_id, "reservation raced; retrying");
                attempt += 1;
            }
            result => return Ok(result?),
        }
    }
}

fn is_unique_violation(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<sqlx::Error>())
        .filter_map(sqlx::Error::as_database_error)
        .any(|db| db.is_unique_violation())
}

async fn try_reserve(
    state: &AppState,
    order: OrderId,
    lines: &BTreeMap<ProductId, u32>,
) -> anyhow::Result<ReserveResponse> {
    let mut tx = state
        .writes
        .begin(&state.pool)
        .await
        .context("begin reservation")?;
    if !reservations::claim(&mut tx, order)
        .await
        .context("claim the order")?
    {
        tx.rollback().await.context("end refused reservation")?;
        return Ok(ReserveResponse::Released);
    }
    let existing = reservations::find(&mut tx, order)
        .await
        .context("read existing reservation")?;
    if !existing.is_empty() {
        tx.rollback().await.context("end read-only reservation")?;
        return Ok(ReserveResponse::Reserved { lines: existing });
    }
    let now = now_ms();
    let mut reserved = Vec::with_capacity(lines.len());
    let mut updates = Vec::with_capacity(lines.len());
    let mut missing = Vec::new();
    let mut short = Vec::new();
    // Every line is tried, so that the answer names every unknown or short
    // product, not only the first.
    for (&product_id, &quantity) in lines {
        match reservations::take(&mut tx, product_id, i64::from(quantity), now)
            .await
            .context("take stock")?
        {
            Some(moved) => {
                updates.push(ProductUpdated {
                    product_id,
                    price_cents: moved.price_cents,
                    stock: moved.stock,
                });
                reserved.push(ReservedLine {
                    product_id,
                    name: moved.name,
                    category: moved.category,
                    quantity,
                    unit_price_cents: moved.price_cents,
                });
            }
            None => match reservations::stock_of(&mut tx, product_id)
                .await
                .context("read stock")?
            {
                None => missing.push(product_id),
                Some(available) => short.push(ShortLine {
                    product_id,
                    requested: quantity,
                    available,
                }),
            },
        }
    }
    if !missing.is_empty() || !short.is_empty() {
        // A concurrent reservation of this same order may have taken the
        // stock first (we waited on its row locks, so it has committed): the
        // order is then reserved, and a repeat must say so, not "short".
        let winner = reservations::find(&mut tx, order)
            .await
            .context("re-read existing reservation")?;
        tx.rollback().await.context("roll back reservation")?;
        if !winner.is_empty() {
            return Ok(ReserveResponse::Reserved { lines: winner });
        }
        return Ok(if missing.is_empty() {
            ReserveResponse::Short { short }
        } else {
            ReserveResponse::Unknown { missing }
        });
    }
    reservations::insert_all(&mut tx, order, &reserved)
        .await
        .context("record reservation")?;
    let outbound = updates
        .into_iter()
        .map(|update| state.publisher.prepare(&AppState::event(None, update)))
        .collect::<Result<Vec<_>, _>>()
        .context("encode event")?;
    outbox::enqueue_all(&mut tx, &outbound)
        .await
        .context("enqueue product.updated")?;
    tx.commit().await.context("commit reservation")?;
    state.outbox_wake.notify_one();
    catalogue::changed(state, lines.keys()).await;
    Ok(ReserveResponse::Reserved { lines: reserved })
}

/// Gives an order's reserved stock back. `released: false` when there was
/// nothing to release (never reserved, or released already). Either way the
/// order stays released: a reservation for it arriving later takes nothing.
pub async fn release(
    state: &AppState,
    request: &ReleaseRequest,
) -> Result<ReleaseResponse, InventoryError> {
    let mut tx = state
        .writes
        .begin(&state.pool)
        .await
        .context("begin release")?;
    let now = now_ms();
    reservations::mark_released(&mut tx, request.order_id, now)
        .await
        .context("mark the order released")?;
    let lines = reservations::remove(&mut tx, request.order_id)
        .await
        .context("remove reservations")?;
    if lines.is_empty() {
        tx.commit().await.context("commit empty release")?;
        return Ok(ReleaseResponse { released: false });
    }
    let given_back: Vec<ProductId> = lines.iter().map(|(id, _)| *id).collect();
    let mut outbound = Vec::with_capacity(lines.len());
    for (product_id, quantity) in lines {
        // Products are never deleted, so a reserved one is always there.
        let Some(moved) = reservations::give_back(&mut tx, product_id, quantity, now)
            .await
            .context("give stock back")?
        else {
            continue;
        };
        let event = AppState::event(
            None,
            ProductUpdated {
                product_id,
                price_cents: moved.price_cents,
                stock: moved.stock,
            },
        );
        outbound.push(state.publisher.prepare(&event).context("encode event")?);
    }
    outbox::enqueue_all(&mut tx, &outbound)
        .await
        .context("enqueue product.updated")?;
    tx.commit().await.context("commit release")?;
    state.outbox_wake.notify_one();
    catalogue::changed(state, &given_back).await;
    Ok(ReleaseResponse { released: true })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(product_id: ProductId, quantity: u32) -> ReserveLine {
        ReserveLine {
            product_id,
            quantity,
        }
    }

    #[test]
    fn duplicate_products_are_summed_and_sorted() {
        let a = ProductId::new_v7();
        let b = ProductId::new_v7();
        let merged = merge_lines(&[line(b, 1), line(a, 2), line(b, 3)]).unwrap();
        assert_eq!(merged.into_iter().collect::<Vec<_>>(), vec![(a, 2), (b, 4)]);
    }

    #[test]
    fn zero_quantity_empty_and_overflow_are_refused() {
        let a = ProductId::new_v7();
        assert!(merge_lines(&[line(a, 0)]).is_err());
        assert!(merge_lines(&[]).is_err());
        assert!(merge_lines(&[line(a, u32::MAX), line(a, 1)]).is_err());
    }
}
