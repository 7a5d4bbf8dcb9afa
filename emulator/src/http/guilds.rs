//! `GET /guilds/{g}` and `GET /guilds/{g}/roles`.

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use crate::error::DiscordError;
use crate::shared::lock;
use crate::world::World;

use super::auth::Bot;
use super::AppState;

pub(crate) async fn guild(
    _: Bot,
    State(s): State<AppState>,
    Path(g): Path<String>,
) -> Result<Json<Value>, DiscordError> {
    let world = lock(&s.world);
    let guild = world.guild(&g)?;
    Ok(Json(json!({
        "id": guild.id.to_string(),
        "name": guild.name,
        "owner_id": guild.owner_id.to_string(),
        "icon": null,
        "roles": World::roles_json(guild),
        "approximate_member_count": guild.members.len(),
    })))
}

pub(crate) async fn roles(
    _: Bot,
    State(s): State<AppState>,
    Path(g): Path<String>,
) -> Result<Json<Value>, DiscordError> {
    let world = lock(&s.world);
    Ok(Json(World::roles_json(world.guild(&g)?)))
}
