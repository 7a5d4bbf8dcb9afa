//! Guild member routes: get, list, add (join with a user's token), patch, role add/remove, kick.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use crate::error::DiscordError;
use crate::shared::lock;
use crate::world::{parse_id, Joined, MemberPatch, WriteContext};

use super::auth::Bot;
use super::{audit_reason, AppState};

const MAX_PAGE: u32 = 1000;

fn user_id(raw: &str) -> Result<u64, DiscordError> {
    parse_id(raw).ok_or(DiscordError::UnknownMember)
}

fn context(s: &AppState, headers: &HeaderMap) -> WriteContext {
    WriteContext {
        reason: audit_reason(headers),
        now: s.clock.now(),
    }
}

pub(crate) async fn get_member(
    _: Bot,
    State(s): State<AppState>,
    Path((g, u)): Path<(String, String)>,
) -> Result<Json<Value>, DiscordError> {
    let world = lock(&s.world);
    let user = user_id(&u)?;
    let member = world.guild(&g)?.member(user)?;
    Ok(Json(world.member_json(user, member)))
}

pub(crate) async fn list_members(
    _: Bot,
    State(s): State<AppState>,
    Path(g): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, DiscordError> {
    let (limit, after) = page_params(query.as_deref().unwrap_or_default())?;
    let world = lock(&s.world);
    let guild = world.guild(&g)?;
    if !guild.members_intent {
        return Err(DiscordError::MissingAccess);
    }
    let page: Vec<Value> = guild
        .members
        .range(after.saturating_add(1)..)
        .take(limit as usize)
        .map(|(user, member)| world.member_json(*user, member))
        .collect();
    Ok(Json(Value::Array(page)))
}

/// `limit` 1..=1000 (default 1), `after` a user id (default 0).
fn page_params(query: &str) -> Result<(u32, u64), DiscordError> {
    let mut limit = 1;
    let mut after = 0;
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|l| (1..=MAX_PAGE).contains(l))
                    .ok_or_else(|| {
                        DiscordError::form("limit", "int value should be between 1 and 1000.")
                    })?;
            }
            "after" => {
                after = value
                    .parse()
                    .map_err(|_| DiscordError::form("after", "Value is not snowflake."))?;
            }
            _ => {}
        }
    }
    Ok((limit, after))
}

#[derive(Deserialize)]
struct AddMemberBody {
    access_token: String,
    #[serde(default)]
    nick: Option<String>,
    #[serde(default)]
    roles: Option<Vec<String>>,
}

pub(crate) async fn add_member(
    _: Bot,
    State(s): State<AppState>,
    Path((g, u)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, DiscordError> {
    let body: AddMemberBody = serde_json::from_slice(&body)
        .map_err(|e| DiscordError::form("access_token", e.to_string()))?;
    lock(&s.world).guild(&g)?;
    let user = user_id(&u)?;
    let owner = lock(&s.oauth).access_owner(&body.access_token, s.clock.now());
    if !owner.is_some_and(|o| o.user == user && o.has_scope("guilds.join")) {
        return Err(DiscordError::InvalidOAuthToken);
    }
    let ctx = context(&s, &headers);
    match lock(&s.world).join(&g, user, body.nick, body.roles, ctx)? {
        Joined::Added(member) => Ok((StatusCode::CREATED, Json(member)).into_response()),
        Joined::AlreadyMember => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

pub(crate) async fn patch_member(
    _: Bot,
    State(s): State<AppState>,
    Path((g, u)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, DiscordError> {
    let patch = parse_patch(&body)?;
    let user = user_id(&u)?;
    let ctx = context(&s, &headers);
    let member = lock(&s.world).patch_member(&g, user, patch, ctx)?;
    Ok(Json(member))
}

/// By hand rather than serde, because an absent `nick` and `"nick": null` mean different things.
fn parse_patch(body: &[u8]) -> Result<MemberPatch, DiscordError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| DiscordError::form("_body", e.to_string()))?;
    let object = value
        .as_object()
        .ok_or_else(|| DiscordError::form("_body", "Expected an object."))?;
    let nick = match object.get("nick") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(n)) => Some(Some(n.clone())),
        Some(_) => {
            return Err(DiscordError::form(
                "nick",
                "Could not interpret value as string.",
            ))
        }
    };
    let roles = match object.get("roles") {
        None => None,
        Some(Value::Array(items)) => {
            let ids = items.iter().map(|i| i.as_str().map(str::to_owned));
            let ids = ids.collect::<Option<Vec<String>>>();
            Some(ids.ok_or_else(|| DiscordError::form("roles", "Value is not snowflake."))?)
        }
        Some(_) => return Err(DiscordError::form("roles", "Expected an array.")),
    };
    Ok(MemberPatch { nick, roles })
}

pub(crate) async fn add_role(
    _: Bot,
    State(s): State<AppState>,
    Path((g, u, r)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, DiscordError> {
    set_role(s, g, u, r, headers, true)
}

pub(crate) async fn remove_role(
    _: Bot,
    State(s): State<AppState>,
    Path((g, u, r)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, DiscordError> {
    set_role(s, g, u, r, headers, false)
}

fn set_role(
    s: AppState,
    g: String,
    u: String,
    r: String,
    headers: HeaderMap,
    add: bool,
) -> Result<StatusCode, DiscordError> {
    let user = user_id(&u)?;
    let ctx = context(&s, &headers);
    lock(&s.world).set_member_role(&g, user, &r, add, ctx)?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn kick(
    _: Bot,
    State(s): State<AppState>,
    Path((g, u)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, DiscordError> {
    let user = user_id(&u)?;
    let ctx = context(&s, &headers);
    lock(&s.world).kick(&g, user, ctx)?;
    Ok(StatusCode::NO_CONTENT)
}
