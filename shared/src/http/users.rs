//! `/clients/{client}/users`: the desired state of site users and their link status.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::domain::linked_roles::needs_relink;
use crate::domain::{Client, LastError, LinkStatus, Member, SiteUser, UnlinkPolicy, UnlinkReason};
use crate::service::import::{self, ImportItem, ImportReport};
use crate::service::members;
use crate::store::Cursor;

use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::validate;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserInput {
    pub groups: Vec<String>,
    /// Values for the nickname template, e.g. `{"corp_ticker": "TEST"}`.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LinkView {
    pub discord_user_id: String,
    pub username: String,
    /// `@username` (or `name#1234` for accounts that kept a discriminator).
    pub display: String,
    pub global_name: Option<String>,
    pub nickname: Option<String>,
    pub status: LinkStatus,
    /// Managed roles the member carries as far as we know.
    pub applied_roles: BTreeSet<String>,
    pub linked_at: i64,
}

/// A former Discord account of the user whose clean-up the guild's writer has still to do.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnlinkingView {
    pub discord_user_id: String,
    pub reason: UnlinkReason,
    /// The unlink policy being applied; absent when only our grant is revoked (the account had
    /// left the guild or revoked us).
    pub policy: Option<UnlinkPolicy>,
    /// Managed roles still to remove, as far as we know.
    pub roles: BTreeSet<String>,
    pub since: i64,
    /// Discord refused part of it (role hierarchy, permissions): not retried until `roles/sync`
    /// or a mapping change.
    pub refused: bool,
    pub last_error: Option<LastError>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub user_id: String,
    pub groups: BTreeSet<String>,
    pub attributes: BTreeMap<String, String>,
    pub linked: bool,
    pub link: Option<LinkView>,
    /// Former accounts still being cleaned up (unlink policy, grant revocation).
    pub unlinking: Vec<UnlinkingView>,
    /// The member's Discord roles or nickname still need to be brought in line.
    pub pending: bool,
    /// The client's Linked Roles are on but this member's link did not grant
    /// `role_connections.write` (linked before, or imported): send them through a link session
    /// again.
    pub needs_relink: bool,
    pub last_error: Option<LastError>,
    pub updated_at: i64,
}

impl UserView {
    /// The view of `m`, a member of `client`.
    pub fn new(m: Member, client: &Client) -> Self {
        let needs_relink = m
            .link
            .as_ref()
            .is_some_and(|l| needs_relink(client.linked_roles.as_ref(), l));
        let link = m.link.map(|l| LinkView {
            display: if l.username.contains('#') {
                l.username.clone()
            } else {
                format!("@{}", l.username)
            },
            discord_user_id: l.discord_user_id,
            username: l.username,
            global_name: l.global_name,
            nickname: l.nickname,
            status: l.status,
            applied_roles: l.applied_roles,
            linked_at: l.linked_at,
        });
        UserView {
            user_id: m.user.user_id,
            groups: m.user.groups,
            attributes: m.user.attributes,
            linked: link.is_some(),
            link,
            unlinking: m
                .unlinking
                .into_values()
                .map(|u| UnlinkingView {
                    discord_user_id: u.discord_user_id,
                    reason: u.reason,
                    policy: u.policy,
                    roles: u.roles,
                    since: u.since,
                    refused: u.refused,
                    last_error: u.last_error,
                })
                .collect(),
            pending: m.pending,
            needs_relink,
            last_error: m.last_error,
            updated_at: m.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub cursor: Option<String>,
    /// 1–500, default 100.
    pub limit: Option<usize>,
    /// Only users whose Discord state still needs work.
    #[serde(default)]
    pub pending: bool,
}

pub(super) fn page_args(
    cursor: Option<&str>,
    limit: Option<usize>,
) -> Result<(Option<Cursor>, usize), ApiError> {
    let limit = limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 500"));
    }
    let cursor = cursor
        .map(Cursor::parse)
        .transpose()
        .map_err(|_| ApiError::invalid("cursor", "unknown or malformed cursor"))?;
    Ok((cursor, limit))
}

async fn require_client(app: &AppState, client: &str) -> ApiResult<Client> {
    app.store
        .get_client(client)
        .await?
        .ok_or_else(|| ApiError::not_found("client"))
}

#[utoipa::path(put, path = "/clients/{client}/users/{user_id}", tag = "users", request_body = UserInput,
    params(("client" = String, Path), ("user_id" = String, Path)),
    responses((status = 200, body = UserView), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn put_user(
    State(app): State<AppState>,
    ApiPath((client, user_id)): ApiPath<(String, String)>,
    ApiJson(input): ApiJson<UserInput>,
) -> ApiResult<Json<UserView>> {
    validate::key("user_id", &user_id)?;
    validate::groups("groups", &input.groups)?;
    validate::attributes("attributes", &input.attributes)?;
    let user = SiteUser {
        user_id,
        groups: input.groups.into_iter().collect(),
        attributes: input.attributes,
    };
    let member = members::save_user(&app, &client, user).await?;
    let client = require_client(&app, &client).await?;
    Ok(Json(UserView::new(member, &client)))
}

#[utoipa::path(get, path = "/clients/{client}/users/{user_id}", tag = "users",
    params(("client" = String, Path), ("user_id" = String, Path)),
    responses((status = 200, body = UserView), (status = 404, body = Problem)))]
pub async fn get_user(
    State(app): State<AppState>,
    ApiPath((client, user_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<UserView>> {
    let c = require_client(&app, &client).await?;
    let m = app
        .store
        .get_member(&client, &user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok(Json(UserView::new(m, &c)))
}

#[utoipa::path(get, path = "/clients/{client}/users", tag = "users",
    params(("client" = String, Path), PageQuery),
    responses((status = 200, body = UserPage), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn list_users(
    State(app): State<AppState>,
    ApiPath(client): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<UserPage>> {
    let c = require_client(&app, &client).await?;
    let (cursor, limit) = page_args(q.cursor.as_deref(), q.limit)?;
    let page = if q.pending {
        app.store
            .list_pending(&client, cursor.as_ref(), limit)
            .await?
    } else {
        app.store
            .list_members(&client, cursor.as_ref(), limit)
            .await?
    };
    Ok(Json(UserPage {
        items: page
            .items
            .into_iter()
            .map(|m| UserView::new(m, &c))
            .collect(),
        next_cursor: page.next.map(|c| c.as_str().to_owned()),
    }))
}

#[utoipa::path(delete, path = "/clients/{client}/users/{user_id}/link", tag = "users",
    params(("client" = String, Path), ("user_id" = String, Path)),
    responses((status = 202, body = UserView,
        description = "Unlinked: the account is free at once; the unlink policy and the grant's revocation follow through the guild's writer (`pending`, `unlinking`)"),
        (status = 404, body = Problem)))]
pub async fn unlink(
    State(app): State<AppState>,
    ApiPath((client, user_id)): ApiPath<(String, String)>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    let member = members::unlink(&app, &client, &user_id, "admin").await?;
    let client = require_client(&app, &client).await?;
    Ok((StatusCode::ACCEPTED, Json(UserView::new(member, &client))))
}

/// Most items one import request may carry. A new item costs up to five store round trips on
/// DynamoDB (≈ 40 ms in-region): 250 items stay near 10 s, well inside API Gateway's 29 s with
/// room for slow moments. Larger migrations send several requests (an import is idempotent).
pub const IMPORT_MAX: usize = 250;

#[utoipa::path(post, path = "/clients/{client}/users/import", tag = "users",
    request_body = Vec<ImportItem>,
    params(("client" = String, Path)),
    responses((status = 200, body = ImportReport), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn import_users(
    State(app): State<AppState>,
    ApiPath(client): ApiPath<String>,
    ApiJson(items): ApiJson<Vec<ImportItem>>,
) -> ApiResult<Json<ImportReport>> {
    if items.len() > IMPORT_MAX {
        return Err(ApiError::invalid(
            "body",
            format!("at most {IMPORT_MAX} users per request"),
        ));
    }
    let mut users = BTreeSet::new();
    let mut accounts = BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        validate::key(&format!("[{i}].user_id"), &item.user_id)?;
        validate::snowflake(&format!("[{i}].discord_user_id"), &item.discord_user_id)?;
        // Exactly the rules of `PUT …/users/{user_id}`.
        validate::groups(&format!("[{i}].groups"), &item.groups)?;
        validate::attributes(&format!("[{i}].attributes"), &item.attributes)?;
        if !users.insert(item.user_id.as_str()) {
            return Err(ApiError::invalid(
                format!("[{i}].user_id"),
                "appears twice in this import",
            ));
        }
        if !accounts.insert(item.discord_user_id.as_str()) {
            return Err(ApiError::invalid(
                format!("[{i}].discord_user_id"),
                "appears twice in this import",
            ));
        }
    }
    Ok(Json(import::import_users(&app, &client, items).await?))
}
