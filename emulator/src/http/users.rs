//! `GET /users/@me`.

use axum::extract::State;
use axum::Json;
use serde_json::Value;

use crate::error::DiscordError;
use crate::shared::lock;

use super::auth::Caller;
use super::AppState;

pub(crate) async fn current_user(
    State(s): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, DiscordError> {
    let world = lock(&s.world);
    match caller {
        Caller::Bot => Ok(Json(world.user_json(world.bot_id))),
        Caller::User(owner) => {
            if !owner.has_scope("identify") {
                return Err(DiscordError::Unauthorized);
            }
            let mut user = world.user_json(owner.user);
            if owner.has_scope("email") {
                let email = world
                    .users
                    .get(&owner.user)
                    .and_then(|u| u.email.clone())
                    .unwrap_or_else(|| format!("user{}@users.emulator.invalid", owner.user));
                user["email"] = email.into();
                user["verified"] = true.into();
            }
            Ok(Json(user))
        }
    }
}
