//! `GET`/`PUT /applications/{app}/role-connections/metadata`: the application's Linked Roles
//! metadata records, validated like Discord does (at most 5, key charset and length, known types).

use axum::extract::{Path, State};
use axum::Json;
use serde_json::Value;

use crate::error::DiscordError;
use crate::shared::lock;

use super::auth::Bot;
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
