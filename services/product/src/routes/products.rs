//! `/products` and `/products/{id}`: create and change (admin), list and
//! view (anyone; a signed-in caller's views and searches become behaviour
//! events).

use super::{OptionalUser, path_id};
use crate::catalogue;
use crate::domain::{
    ListQuery, NewProduct, PriceCents, Product, ProductChange, ProductName, Stock,
};
use crate::error::ProductError;
use crate::repository::products;
use crate::state::{AppState, now_ms};
use actix_web::{HttpRequest, HttpResponse, web};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use shopmesh_shared::events::{
    Category, ProductCreated, ProductId, ProductSearched, ProductUpdated, ProductViewed,
};
use shopmesh_shared::http::{JsonBody, RequireAdmin};
use shopmesh_shared::outbox;

/// A product as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductBody {
    pub id: ProductId,
    pub name: String,
    pub category: Category,
    pub price_cents: i64,
    pub stock: i64,
    pub rating_count: i64,
    /// 0.0 while `rating_count` is 0.
    pub rating_mean: f64,
}

impl From<&Product> for ProductBody {
    fn from(product: &Product) -> Self {
        Self {
            id: product.id,
            name: product.name.clone(),
            category: product.category.clone(),
            price_cents: product.price_cents,
            stock: product.stock,
            rating_count: product.rating_count,
            rating_mean: product.rating_mean(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CreateProduct {
    name: String,
    category: String,
    price_cents: i64,
    stock: i64,
}

impl CreateProduct {
    /// Every check a new product passes before the database is touched;
    /// public so that the fuzz harness runs exactly these.
    pub fn validate(self) -> Result<NewProduct, ProductError> {
        Ok(NewProduct {
            name: ProductName::parse(&self.name).map_err(|e| ProductError::invalid("name", e))?,
            category: Category::parse(&self.category)
                .map_err(|e| ProductError::invalid("category", e))?,
            price_cents: PriceCents::parse(self.price_cents)
                .map_err(|e| ProductError::invalid("price_cents", e))?,
            stock: Stock::parse(self.stock).map_err(|e| ProductError::invalid("stock", e))?,
        })
    }
}

/// `POST /products` (admin): 201 with the product; `product.created` leaves
/// through the outbox with the row.
#[tracing::instrument(
    name = "create product",
    skip_all,
    fields(product_id = tracing::field::Empty)
)]
pub async fn create(
    _admin: RequireAdmin,
    state: web::Data<AppState>,
    body: JsonBody<CreateProduct>,
) -> Result<HttpResponse, ProductError> {
    let new = body.into_inner().validate()?;
    let id = ProductId::new_v7();
    tracing::Span::current().record("product_id", tracing::field::display(id));
    let mut tx = state
        .writes
        .begin(&state.pool)
        .await
        .context("begin create product")?;
    let product = products::insert(&mut tx, id, &new, now_ms())
        .await
        .context("insert product")?;
    let event = AppState::event(
        None,
        ProductCreated {
            product_id: product.id,
            name: product.name.clone(),
            category: product.category.clone(),
            price_cents: product.price_cents,
            stock: product.stock,
        },
    );
    let outbound = state.publisher.prepare(&event).context("encode event")?;
    outbox::enqueue(&mut tx, &outbound)
        .await
        .context("enqueue product.created")?;
    tx.commit().await.context("commit create product")?;
    // A new product may belong on any listing page.
    state.listings.forget_all();
    state.outbox_wake.notify_one();
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/products/{id}")))
        .json(ProductBody::from(&product)))
}

#[derive(Debug, Deserialize)]
pub struct PatchProduct {
    price_cents: Option<i64>,
    stock: Option<i64>,
}

impl PatchProduct {
    /// Every check a change passes before the database is touched; public so
    /// that the fuzz harness runs exactly these.
    pub fn validate(self) -> Result<ProductChange, ProductError> {
        let price_cents = self
            .price_cents
            .map(PriceCents::parse)
            .transpose()
            .map_err(|e| ProductError::invalid("price_cents", e))?;
        let stock = self
            .stock
            .map(Stock::parse)
            .transpose()
            .map_err(|e| ProductError::invalid("stock", e))?;
        ProductChange::new(price_cents, stock).ok_or(ProductError::NothingToChange)
    }
}

/// `PATCH /products/{id}` (admin): new price, stock or both; 200 with the
/// product, 404 when there is none; `product.updated` through the outbox.
#[tracing::instrument(name = "update product", skip_all, fields(product_id = %path))]
pub async fn update(
    _admin: RequireAdmin,
    path: web::Path<String>,
    state: web::Data<AppState>,
    body: JsonBody<PatchProduct>,
) -> Result<HttpResponse, ProductError> {
    let id = path_id(&path)?;
    let change = body.into_inner().validate()?;
    let mut tx = state
        .writes
        .begin(&state.pool)
        .await
        .context("begin update product")?;
    let product = products::update(&mut tx, id, change, now_ms())
        .await
        .context("update product")?
        .ok_or(ProductError::NotFound(id))?;
    let event = AppState::event(
        None,
        ProductUpdated {
            product_id: product.id,
            price_cents: product.price_cents,
            stock: product.stock,
        },
    );
    let outbound = state.publisher.prepare(&event).context("encode event")?;
    outbox::enqueue(&mut tx, &outbound)
        .await
        .context("enqueue product.updated")?;
    tx.commit().await.context("commit update product")?;
    state.outbox_wake.notify_one();
    catalogue::changed(&state, [&id]).await;
    Ok(HttpResponse::Ok().json(ProductBody::from(&product)))
}

#[derive(Debug, Serialize)]
struct ProductPage {
    items: Vec<ProductBody>,
    page: u32,
    per_page: u32,
    total: i64,
}

/// The listing's parameters from the raw query string, decoded and checked.
pub fn list_query(query_string: &str) -> Result<ListQuery, ProductError> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(query_string)
        .map_err(|e| ProductError::MalformedQuery(e.to_string()))?
        .into_inner();
    ListQuery::parse(&pairs).map_err(|(field, e)| ProductError::invalid(field, e))
}

/// `GET /products?category=&q=&page=&per_page=`: one page, ordered by name
/// then id. A signed-in caller's text search is a `product.searched` event.
#[tracing::instrument(name = "list products", skip_all)]
pub async fn list(
    req: HttpRequest,
    viewer: OptionalUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ProductError> {
    let query = list_query(req.query_string())?;
    let (items, total) = catalogue::page(&state, &query).await?;
    if let (OptionalUser(Some(user)), Some(text)) = (viewer, &query.q) {
        state.behaviour.emit(AppState::event(
            Some(user),
            ProductSearched {
                query: text.as_str().to_owned(),
                category: query.category.clone(),
                result_count: u32::try_from(total).unwrap_or(u32::MAX),
            },
        ));
    }
    Ok(HttpResponse::Ok().json(ProductPage {
        items: items.iter().map(ProductBody::from).collect(),
        page: query.page.get(),
        per_page: query.per_page.get(),
        total,
    }))
}

/// `GET /products/{id}`: the hot path (one primary-key read, or none while
/// the product cache holds it). A signed-in
/// caller's view is a `product.viewed` event, queued without waiting.
#[tracing::instrument(name = "get product", skip_all, fields(product_id = %path))]
pub async fn get(
    viewer: OptionalUser,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ProductError> {
    let id = path_id(&path)?;
    let product = catalogue::product(&state, id)
        .await?
        .ok_or(ProductError::NotFound(id))?;
    if let OptionalUser(Some(user)) = viewer {
        state.behaviour.emit(AppState::event(
            Some(user),
            ProductViewed {
                product_id: product.id,
                category: product.category.clone(),
            },
        ));
    }
    Ok(HttpResponse::Ok().json(ProductBody::from(&product)))
}
