//! `/clients/{client}/roles`: the mirrored guild roles and their group mapping.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::app::AppState;
pub use crate::service::roles::RoleView;
use crate::service::roles::{self as svc, role_views, RolesSyncReport};

use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiJson, ApiPath};
use super::validate;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleMappingInput {
    /// Site groups whose members get this role; empty to stop managing it.
    pub groups: Vec<String>,
}

#[utoipa::path(post, path = "/clients/{client}/roles/sync", tag = "roles",
    params(("client" = String, Path)),
    responses((status = 200, body = RolesSyncReport), (status = 404, body = Problem), (status = 502, body = Problem)))]
pub async fn sync_roles(
    State(app): State<AppState>,
    ApiPath(client): ApiPath<String>,
) -> ApiResult<Json<RolesSyncReport>> {
    Ok(Json(svc::sync_roles(&app, &client, "admin").await?))
}

#[utoipa::path(get, path = "/clients/{client}/roles", tag = "roles",
    params(("client" = String, Path)), responses((status = 200, body = [RoleView]), (status = 404, body = Problem)))]
pub async fn list_roles(
    State(app): State<AppState>,
    ApiPath(client): ApiPath<String>,
) -> ApiResult<Json<Vec<RoleView>>> {
    let c = app
        .store
        .get_client(&client)
        .await?
        .ok_or_else(|| ApiError::not_found("client"))?;
    let roles = app.store.list_roles(&client).await?;
    Ok(Json(role_views(
        &roles,
        &c.guild_id,
        c.guild.bot_top_position,
    )))
}

#[utoipa::path(put, path = "/clients/{client}/roles/{role_id}", tag = "roles", request_body = RoleMappingInput,
    params(("client" = String, Path), ("role_id" = String, Path)),
    responses((status = 200, body = RoleView), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn map_role(
    State(app): State<AppState>,
    ApiPath((client, role_id)): ApiPath<(String, String)>,
    ApiJson(input): ApiJson<RoleMappingInput>,
) -> ApiResult<Json<RoleView>> {
    validate::snowflake("role_id", &role_id)?;
    validate::groups("groups", &input.groups)?;
    let role = svc::map_role(
        &app,
        &client,
        &role_id,
        input.groups.into_iter().collect(),
        "admin",
    )
    .await?;
    let c = app
        .store
        .get_client(&client)
        .await?
        .ok_or_else(|| ApiError::not_found("client"))?;
    let view = role_views(&[role], &c.guild_id, c.guild.bot_top_position);
    view.into_iter()
        .next()
        .map(Json)
        .ok_or_else(|| ApiError::not_found("role"))
}
