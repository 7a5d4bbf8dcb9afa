//! Who is calling: the application's bot, or a user through an OAuth2 access token.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::error::DiscordError;
use crate::oauth::TokenOwner;
use crate::shared::lock;

use super::AppState;

/// The request carries `Authorization: Bot <the application's bot token>`.
pub(crate) struct Bot;

/// `/users/@me` answers both kinds of caller.
pub(crate) enum Caller {
    Bot,
    User(TokenOwner),
}

fn authorization(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

fn is_bot(parts: &Parts, state: &AppState) -> bool {
    authorization(parts)
        .and_then(|h| h.strip_prefix("Bot "))
        .is_some_and(|token| token == state.scenario.application.bot_token)
}

impl FromRequestParts<AppState> for Bot {
    type Rejection = DiscordError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if is_bot(parts, state) {
            Ok(Bot)
        } else {
            Err(DiscordError::Unauthorized)
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = DiscordError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if is_bot(parts, state) {
            return Ok(Caller::Bot);
        }
        let token = authorization(parts)
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or(DiscordError::Unauthorized)?;
        lock(&state.oauth)
            .access_owner(token, state.clock.now())
            .map(Caller::User)
            .ok_or(DiscordError::Unauthorized)
    }
}
