//! `GET`/`PUT /applications/{app}/role-connections/metadata`: the application's Linked Roles
//! metadata records, validated like Discord does (at most 5, key charset and length, known types).

use axum::extract::{Path, State};
use axum::Json;
use serde_json::Value;

use crate::error::DiscordError;
use crate::shared::lock;

use super::auth::{Bot, Caller};
use super::AppState;

/// Discord keeps at most this many records per application.
const MAX_RECORDS: usize = 5;

pub(crate) async fn get_metadata(
    _: Bot,
    State(s): State<AppState>,
    Path(app): Path<String>,
) -> Result<Json<Value>, DiscordError> {
    own_application(&s, &app)?;
    Ok(Json(Value::Array(
        lock(&s.role_connection_metadata).clone(),
    )))
}

/// Replaces the whole set, as Discord does; answers what it now holds.
pub(crate) async fn put_metadata(
    _: Bot,
    State(s): State<AppState>,
    Path(app): Path<String>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, DiscordError> {
    own_application(&s, &app)?;
    let records = validate(&body)?;
    *lock(&s.role_connection_metadata) = records.clone();
    // A record's type decides how requirements compare: claims are checked again.
    s.reevaluate_claims();
    Ok(Json(Value::Array(records)))
}

/// A bot token only manages its own application's records.
fn own_application(s: &AppState, app: &str) -> Result<(), DiscordError> {
    if app == s.scenario.application.id {
        Ok(())
    } else {
        Err(DiscordError::MissingAccess)
    }
}

fn validate(body: &Value) -> Result<Vec<Value>, DiscordError> {
    let list = body
        .as_array()
        .ok_or_else(|| DiscordError::form("_root", "must be an array"))?;
    if list.len() > MAX_RECORDS {
        return Err(DiscordError::form(
            "_root",
            format!("must have at most {MAX_RECORDS} items"),
        ));
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, record) in list.iter().enumerate() {
        let field = |name: &str| format!("{i}.{name}");
        let text = |name: &str, max: usize| -> Result<String, DiscordError> {
            let v = record
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| DiscordError::form(&field(name), "required string"))?;
            let n = v.chars().count();
            if n == 0 || n > max {
                return Err(DiscordError::form(
                    &field(name),
                    format!("must be 1-{max} characters"),
                ));
            }
            Ok(v.to_owned())
        };
        let key = text("key", 50)?;
        if !key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(DiscordError::form(&field("key"), "must match [a-z0-9_]"));
        }
        let name = text("name", 100)?;
        let description = text("description", 200)?;
        let kind = record
            .get("type")
            .and_then(Value::as_u64)
            .filter(|t| (1..=8).contains(t))
            .ok_or_else(|| DiscordError::form(&field("type"), "must be 1-8"))?;
        out.push(serde_json::json!({
            "type": kind,
            "key": key,
            "name": name,
            "description": description,
        }));
    }
    Ok(out)
}

/// The role connection a user wrote for this application, with their Bearer token.
pub(crate) async fn get_role_connection(
    caller: Caller,
    State(s): State<AppState>,
    Path(app): Path<String>,
) -> Result<Json<Value>, DiscordError> {
    let user = role_connection_user(&s, caller, &app)?;
    let held = lock(&s.role_connections).get(&user).cloned();
    Ok(Json(held.unwrap_or_else(
        || serde_json::json!({"platform_name": null, "platform_username": null, "metadata": {}}),
    )))
}

/// Replaces the user's role connection; metadata keys must be registered records, values
/// strings, as Discord requires. Linked roles the user claimed are checked against it.
pub(crate) async fn put_role_connection(
    caller: Caller,
    State(s): State<AppState>,
    Path(app): Path<String>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, DiscordError> {
    let user = role_connection_user(&s, caller, &app)?;
    let text = |name: &str, max: usize| -> Result<Value, DiscordError> {
        match body.get(name) {
            None | Some(Value::Null) => Ok(Value::Null),
            Some(Value::String(v)) if v.chars().count() <= max => Ok(Value::String(v.clone())),
            Some(_) => Err(DiscordError::form(
                name,
                format!("at most {max} characters"),
            )),
        }
    };
    let platform_name = text("platform_name", 50)?;
    let platform_username = text("platform_username", 100)?;
    let registered: Vec<String> = lock(&s.role_connection_metadata)
        .iter()
        .filter_map(|r| r["key"].as_str().map(str::to_owned))
        .collect();
    let metadata = body
        .get("metadata")
        .cloned()
        .unwrap_or_else(|| serde_json::json!({}));
    let entries = metadata
        .as_object()
        .ok_or_else(|| DiscordError::form("metadata", "must be an object"))?;
    for (key, value) in entries {
        if !registered.contains(key) {
            return Err(DiscordError::form(
                &format!("metadata.{key}"),
                "not a registered metadata key",
            ));
        }
        if !value.is_string() {
            return Err(DiscordError::form(
                &format!("metadata.{key}"),
                "must be a string",
            ));
        }
    }
    let connection = serde_json::json!({
        "platform_name": platform_name,
        "platform_username": platform_username,
        "metadata": metadata,
    });
    lock(&s.role_connections).insert(user, connection.clone());
    // Discord re-evaluates the member: a linked role they claimed and no longer qualify for
    // is taken back.
    s.role_connection_changed(user);
    Ok(Json(connection))
}

/// A user token with `role_connections.write`, for this application.
fn role_connection_user(s: &AppState, caller: Caller, app: &str) -> Result<u64, DiscordError> {
    let Caller::User(owner) = caller else {
        return Err(DiscordError::Unauthorized);
    };
    if !owner.has_scope("role_connections.write") {
        return Err(DiscordError::Unauthorized);
    }
    own_application(s, app)?;
    Ok(owner.user)
}
