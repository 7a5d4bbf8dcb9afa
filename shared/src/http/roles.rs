//! `/clients/{client}/roles`: the mirrored guild roles and their group mapping.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::domain::plan::{plan, Current, Desired};
use crate::domain::Role;
use crate::service::roles::{self as svc, RolesSyncReport};

use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiJson, ApiPath};
use super::validate;

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleView {
    #[serde(flatten)]
    pub role: Role,
    /// Whether the bot can grant and remove this role.
    pub assignable: bool,
    /// Why not, when it can't.
    pub blocked_by: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleMappingInput {
    /// Site groups whose members get this role; empty to stop managing it.
    pub groups: Vec<String>,
}

fn role_views(roles: &[Role], guild_id: &str, bot_top: Option<i64>) -> Vec<RoleView> {
    roles
        .iter()
        .map(|r| {
            // Ask the planner, so the API says exactly what the tasks will do.
            let probe = [Role {
                groups: BTreeSet::from(["probe".to_owned()]),
                ..r.clone()
            }];
            let p = plan(
                &Desired {
                    roles: BTreeSet::from([r.id.clone()]),
                    nickname: None,
                },
                &Current::default(),
                &crate::domain::GuildView {
                    guild_id,
                    roles: &probe,
                    bot_top_position: bot_top,
                    owner_id: None,
                },
            );
            RoleView {
                role: r.clone(),
                assignable: p.issues.is_empty(),
                blocked_by: p.issues.first().map(|i| i.code().to_owned()),
            }
        })
        .collect()
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
