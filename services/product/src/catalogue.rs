//! Catalogue reads through the caches (see `cache`): one product, several,
//! a page of a listing. What is not cached, or has expired, is read from the
//! database and kept.

use crate::cache::Listing;
use crate::domain::{ListQuery, Product};
use crate::repository::products;
use crate::state::AppState;
use anyhow::Context;
use prometheus::IntCounter;
use shopmesh_shared::events::ProductId;
use shopmesh_shared::metrics::metrics;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Counts a cache's answer: `found` or not. The four counters are looked up
/// once: a listing page counts twenty product reads.
fn counted<T>(cache: Cache, found: Option<T>) -> Option<T> {
    static COUNTERS: OnceLock<[[IntCounter; 2]; 2]> = OnceLock::new();
    let counters = COUNTERS.get_or_init(|| {
        let of = |cache| {
            ["hit", "miss"]
                .map(|result| metrics().cache_lookups.with_label_values(&[cache, result]))
        };
        [of("product"), of("listing")]
    });
    counters[cache as usize][usize::from(found.is_none())].inc();
    found
}

#[derive(Clone, Copy)]
enum Cache {
    Product = 0,
    Listing = 1,
}

/// One product, `None` when there is no such product. A miss shares the
/// read of anyone missing the same product at the same time.
pub async fn product(state: &AppState, id: ProductId) -> anyhow::Result<Option<Product>> {
    if let Some(product) = counted(Cache::Product, state.products.get(&id)) {
        return Ok(Some(product));
    }
    // Only the read stores what it found: those who shared it need not.
    let (pool, cache) = (state.pool.clone(), state.products.clone());
    let product = state
        .product_reads
        .read(&state.products, &id, move |ticket| async move {
            let product = products::get(&pool, id).await.context("read product")?;
            if let Some(product) = &product {
                cache.store(ticket, [(product.id, product.clone())]);
            }
            Ok(product)
        })
        .await?;
    Ok(product)
}

/// After a change to `ids` has committed: forgets them, then reads them
/// again and keeps the fresh rows, so that the reads that follow find them
/// instead of all going to the database (a reservation changes the most
/// viewed products several times a second). A later change that overtakes
/// this read turns it away through the tickets, as it would any read. A
/// failed re-read leaves the products forgotten: they are read on demand.
pub async fn changed<'a>(state: &AppState, ids: impl IntoIterator<Item = &'a ProductId>) {
    let ids: Vec<ProductId> = ids.into_iter().copied().collect();
    state.products.forget(&ids);
    if !state.products.is_enabled() {
        return;
    }
    let ticket = state.products.ticket();
    match products::get_many(&state.pool, &ids).await {
        Ok(fresh) => state
            .products
            .store(ticket, fresh.into_iter().map(|p| (p.id, p))),
        Err(error) => {
            tracing::debug!(%error, "cannot re-read changed products; they are read on demand")
        }
    }
}

/// The products among `ids` that exist, in the order of `ids`.
pub async fn several(state: &AppState, ids: &[ProductId]) -> anyhow::Result<Vec<Product>> {
    let mut found: HashMap<ProductId, Product> = HashMap::with_capacity(ids.len());
    let mut to_read = Vec::new();
    for &id in ids {
        match counted(Cache::Product, state.products.get(&id)) {
            Some(product) => {
                found.insert(id, product);
            }
            None => to_read.push(id),
        }
    }
    if !to_read.is_empty() {
        let ticket = state.products.ticket();
        let read = products::get_many(&state.pool, &to_read)
            .await
            .context("read products")?;
        state
            .products
            .store(ticket, read.iter().map(|p| (p.id, p.clone())));
        found.extend(read.into_iter().map(|p| (p.id, p)));
    }
    Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
}

/// One page of the products matching `query`, and how many match in all.
pub async fn page(state: &AppState, query: &ListQuery) -> anyhow::Result<(Vec<Product>, i64)> {
    if let Some(listing) = counted(Cache::Listing, state.listings.get(query)) {
        // Products are never deleted: every listed id is still there.
        return Ok((several(state, &listing.ids).await?, listing.total));
    }
    let listing_ticket = state.listings.ticket();
    let products_ticket = state.products.ticket();
    let (items, total) = products::list(&state.pool, query)
        .await
        .context("list products")?;
    let listing = Listing {
        ids: items.iter().map(|p| p.id).collect(),
        total,
    };
    state
        .listings
        .store(listing_ticket, [(query.clone(), listing)]);
    state
        .products
        .store(products_ticket, items.iter().map(|p| (p.id, p.clone())));
    Ok((items, total))
}
