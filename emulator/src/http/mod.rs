//! The emulator's HTTP surface: Discord's `/api/v10` and `/oauth2/authorize`, plus `/_emulator`
//! controls and a dashboard at `/`.

mod applications;
mod auth;
mod control;
mod dashboard;
mod guilds;
mod html;
mod members;
mod middleware;
mod oauth_authorize;
mod oauth_token;
mod users;

use std::sync::Arc;

use axum::http::HeaderMap;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post, put};
use axum::Router;
use percent_encoding::percent_decode_str;

use crate::error::DiscordError;
use crate::shared::Shared;

pub(crate) type AppState = Arc<Shared>;

pub(crate) const API_PREFIX: &str = "/api/v10";

pub(crate) fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/users/@me", get(users::current_user))
        .route("/guilds/{guild}", get(guilds::guild))
        .route("/guilds/{guild}/roles", get(guilds::roles))
        .route("/guilds/{guild}/members", get(members::list_members))
        .route(
            "/guilds/{guild}/members/{user}",
            get(members::get_member)
                .put(members::add_member)
                .patch(members::patch_member)
                .delete(members::kick),
        )
        .route(
            "/guilds/{guild}/members/{user}/roles/{role}",
            put(members::add_role).delete(members::remove_role),
        )
        .route(
            "/applications/{app}/role-connections/metadata",
            get(applications::get_metadata).put(applications::put_metadata),
        )
        .route(
            "/users/@me/applications/{app}/role-connection",
            get(applications::get_role_connection).put(applications::put_role_connection),
        )
        .route("/oauth2/token", post(oauth_token::token))
        .route("/oauth2/token/revoke", post(oauth_token::revoke))
        .fallback(|| async { DiscordError::NotFound })
        .layer(from_fn_with_state(state.clone(), middleware::rate_limit));

    let discord = Router::new()
        .nest(API_PREFIX, api)
        .route(
            "/oauth2/authorize",
            get(oauth_authorize::show).post(oauth_authorize::decide),
        )
        .layer(from_fn_with_state(state.clone(), middleware::record));

    let control = Router::new()
        .route("/state", get(control::state))
        .route(
            "/requests",
            get(control::requests).delete(control::clear_requests),
        )
        .route("/consent", put(control::set_consent))
        .route("/rate-limits", put(control::set_rate_limits))
        .route("/latency", put(control::set_latency))
        .route("/faults", post(control::add_fault))
        .route("/clock/advance", post(control::advance_clock))
        .route("/events-url", put(control::set_events_url))
        .route("/events", get(control::deliveries))
        .route("/events/ping", post(control::send_ping))
        .route("/users/{user}/deauthorize", post(control::deauthorize))
        .route(
            "/guilds/{guild}/members-intent",
            put(control::set_members_intent),
        )
        .route(
            "/guilds/{guild}/members/{user}/roles",
            put(control::set_member_roles),
        )
        .route(
            "/guilds/{guild}/roles/{role}/linked-requirements",
            put(control::set_linked_requirements).get(control::linked_requirements),
        )
        .route(
            "/guilds/{guild}/roles/{role}/claim",
            post(control::claim_linked_role),
        )
        .route(
            "/users/{user}/role-connection",
            get(control::role_connection),
        )
        .route(
            "/guilds/{guild}/members/{user}",
            axum::routing::delete(control::remove_member),
        );

    discord
        .nest("/_emulator", control)
        .route("/", get(dashboard::dashboard))
        .with_state(state)
}

/// `X-Audit-Log-Reason` is URL-encoded on the wire; the audit log shows it decoded.
pub(crate) fn audit_reason(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get("x-audit-log-reason")?.to_str().ok()?;
    Some(percent_decode_str(raw).decode_utf8_lossy().into_owned())
}
