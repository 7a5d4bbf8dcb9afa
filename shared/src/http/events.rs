//! `POST /discord/events`: Discord's Webhook Events, the application's "Events Endpoint URL".
//!
//! Discord signs every request with the application's Ed25519 key (`X-Signature-Ed25519` over
//! `X-Signature-Timestamp` + the raw body) and sends badly signed ones on purpose: an endpoint
//! that accepts them is removed. So nothing is read from the body but `application_id` before
//! the signature holds, and every failure to verify is the same 401.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use ed25519_dalek::{Signature, VerifyingKey};
use serde::Deserialize;

use crate::app::AppState;
use crate::clock::Timestamp;
use crate::domain::Client;
use crate::service::events::{self as svc, Event};

use super::error::{ApiError, ApiResult};

/// Largest event body read. Discord's events are a few hundred bytes; the router-wide cap is
/// for the admin API's imports, far more than an unauthenticated endpoint should buffer.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;

/// How far the signed timestamp may be from our clock, either way: a captured request cannot be
/// replayed later than this (Discord's own libraries use the same window).
pub const MAX_SKEW_SECS: i64 = 5 * 60;

const SIGNATURE: &str = "x-signature-ed25519";
const TIMESTAMP: &str = "x-signature-timestamp";

/// An Ed25519 public key from its 64 hex digits; `None` unless it is a valid curve point.
pub fn verifying_key(hex_key: &str) -> Option<VerifyingKey> {
    let bytes: [u8; 32] = hex::decode(hex_key).ok()?.try_into().ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

/// The only field read before the signature is checked: whose key verifies it.
#[derive(Deserialize)]
struct Addressed {
    application_id: String,
}

/// A verified request's body.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: u8,
    event: Option<EventBody>,
}

#[derive(Deserialize)]
struct EventBody {
    #[serde(rename = "type")]
    kind: String,
    /// Kept loose: each event type has its own shape, and one we do not handle must still get
    /// its 204 (Discord disables an endpoint that keeps failing).
    #[serde(default)]
    data: serde_json::Value,
}

const PING: u8 = 0;
const EVENT: u8 = 1;

/// Verifies the request, answers a PING, hands an event to the service. Always 204 once
/// verified: the work on Discord is the guild writer's, so the answer never waits for it
/// (Discord wants one within 3 seconds).
pub async fn discord_events(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let clients = verified_clients(&app, &headers, &body).await?;
    let envelope: Envelope = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("event body: {e}")))?;
    match envelope.kind {
        PING => return Ok(StatusCode::NO_CONTENT),
        EVENT => {}
        other => {
            tracing::debug!(kind = other, "Discord webhook of an unknown type ignored");
            return Ok(StatusCode::NO_CONTENT);
        }
    }
    let Some(event) = envelope.event else {
        return Err(ApiError::invalid("event", "missing in an event (type 1)"));
    };
    let user = || {
        event.data["user"]["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ApiError::invalid("event.data.user.id", "missing"))
    };
    let event = match event.kind.as_str() {
        "APPLICATION_DEAUTHORIZED" => Event::Deauthorized {
            discord_user_id: user()?,
        },
        "APPLICATION_AUTHORIZED" => Event::Authorized {
            discord_user_id: user()?,
        },
        other => {
            tracing::debug!(
                event = other,
                "Discord event of a type we do not handle ignored"
            );
            return Ok(StatusCode::NO_CONTENT);
        }
    };
    svc::handle(&app, &clients, &body, event).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The clients of the application the request names, if its signature verifies with their
/// public key and its timestamp is recent. Every failure is the same 401 (what failed is
/// logged at debug): a prober learns nothing about which applications exist.
async fn verified_clients(
    app: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<Client>, ApiError> {
    let refuse = |why: &'static str| {
        tracing::debug!(why, "Discord event refused");
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid-signature",
            "Invalid request signature",
            "X-Signature-Ed25519 and X-Signature-Timestamp must sign the body with the \
             application's public key, within 5 minutes",
        )
    };
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(signature), Some(timestamp)) = (header(SIGNATURE), header(TIMESTAMP)) else {
        return Err(refuse("missing signature headers"));
    };
    let signature = hex::decode(signature)
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .map(|b| Signature::from_bytes(&b))
        .ok_or_else(|| refuse("malformed signature"))?;
    let signed_at: Timestamp = timestamp
        .parse()
        .map_err(|_| refuse("malformed timestamp"))?;
    if (app.clock.now() - signed_at).abs() > MAX_SKEW_SECS {
        return Err(refuse("timestamp outside the window"));
    }
    let addressed: Addressed =
        serde_json::from_slice(body).map_err(|_| refuse("no application_id"))?;
    let clients: Vec<Client> = app
        .store
        .list_clients()
        .await?
        .into_iter()
        .filter(|c| c.client_id == addressed.application_id)
        .collect();
    let mut message = Vec::with_capacity(timestamp.len() + body.len());
    message.extend_from_slice(timestamp.as_bytes());
    message.extend_from_slice(body);
    // Several clients of one application (one per guild) carry the same key in practice; any
    // of them verifying is enough.
    let verified = clients
        .iter()
        .filter_map(|c| c.public_key.as_deref().and_then(verifying_key))
        .any(|key| key.verify_strict(&message, &signature).is_ok());
    if !verified {
        return Err(refuse("no client's key verifies the signature"));
    }
    Ok(clients)
}
