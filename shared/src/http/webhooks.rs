//! `/clients/{client}/webhook-deliveries`: the website webhooks' outbox, for operators (a site
//! token may not read it: see `auth::site_may`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::domain::WebhookDelivery;
use crate::store::StoreError;

use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiPath, ApiQuery};
use super::runs::ListQuery;
use super::users::page_args;

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDeliveryPage {
    /// Newest first.
    pub items: Vec<WebhookDelivery>,
    pub next_cursor: Option<String>,
}

async fn client_exists(app: &AppState, client: &str) -> ApiResult<()> {
    app.store
        .get_client(client)
        .await?
        .ok_or_else(|| ApiError::not_found("client"))?;
    Ok(())
}

#[utoipa::path(get, path = "/clients/{client}/webhook-deliveries", tag = "webhooks",
    params(("client" = String, Path), ListQuery),
    responses((status = 200, body = WebhookDeliveryPage), (status = 404, body = Problem)))]
pub async fn list_deliveries(
    State(app): State<AppState>,
    ApiPath(client): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<WebhookDeliveryPage>> {
    client_exists(&app, &client).await?;
    let (cursor, limit) = page_args(q.cursor.as_deref(), q.limit)?;
    let page = app
        .store
        .list_deliveries(&client, cursor.as_ref(), limit)
        .await?;
    Ok(Json(WebhookDeliveryPage {
        items: page.items,
        next_cursor: page.next.map(|c| c.as_str().to_owned()),
    }))
}

#[utoipa::path(post, path = "/clients/{client}/webhook-deliveries/{id}/retry", tag = "webhooks",
    params(("client" = String, Path), ("id" = String, Path)),
    responses((status = 202, body = WebhookDelivery), (status = 404, body = Problem)))]
pub async fn retry_delivery(
    State(app): State<AppState>,
    ApiPath((client, id)): ApiPath<(String, String)>,
) -> ApiResult<(StatusCode, Json<WebhookDelivery>)> {
    client_exists(&app, &client).await?;
    match app
        .store
        .retry_delivery(&client, &id, app.clock.now())
        .await
    {
        Ok(d) => Ok((StatusCode::ACCEPTED, Json(d))),
        Err(StoreError::NotFound) => Err(ApiError::not_found("webhook delivery")),
        Err(e) => Err(e.into()),
    }
}
