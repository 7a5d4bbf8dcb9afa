//! `/_emulator/*`: unauthenticated control endpoints for demos and manual testing.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::consent::Consent;
use crate::fault::Fault;
use crate::ratelimit::RateLimits;
use crate::requests::RecordedRequest;
use crate::shared::lock;
use crate::views::StateView;

use super::AppState;

fn found(applied: bool) -> StatusCode {
    if applied {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

pub(crate) async fn state(State(s): State<AppState>) -> Json<StateView> {
    Json(s.state_view())
}

pub(crate) async fn requests(State(s): State<AppState>) -> Json<Vec<RecordedRequest>> {
    Json(lock(&s.requests).clone())
}

pub(crate) async fn clear_requests(State(s): State<AppState>) -> StatusCode {
    lock(&s.requests).clear();
    StatusCode::NO_CONTENT
}

pub(crate) async fn set_consent(
    State(s): State<AppState>,
    Json(consent): Json<Consent>,
) -> StatusCode {
    lock(&s.settings).consent = consent;
    StatusCode::NO_CONTENT
}

/// Also resets the current windows, so the new limits apply from a clean slate.
pub(crate) async fn set_rate_limits(
    State(s): State<AppState>,
    Json(limits): Json<RateLimits>,
) -> StatusCode {
    lock(&s.settings).rate_limits = limits;
    lock(&s.limiter).reset();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
pub(crate) struct Latency {
    millis: u64,
}

pub(crate) async fn set_latency(
    State(s): State<AppState>,
    Json(latency): Json<Latency>,
) -> StatusCode {
    lock(&s.settings).latency = Duration::from_millis(latency.millis);
    StatusCode::NO_CONTENT
}

pub(crate) async fn add_fault(State(s): State<AppState>, Json(fault): Json<Fault>) -> StatusCode {
    lock(&s.faults).push(fault);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
pub(crate) struct RolesBody {
    roles: Vec<String>,
}

pub(crate) async fn set_member_roles(
    State(s): State<AppState>,
    Path((g, u)): Path<(String, String)>,
    Json(body): Json<RolesBody>,
) -> StatusCode {
    found(s.set_member_roles(&g, &u, body.roles))
}

pub(crate) async fn remove_member(
    State(s): State<AppState>,
    Path((g, u)): Path<(String, String)>,
) -> StatusCode {
    found(s.remove_member(&g, &u))
}

#[derive(Deserialize)]
pub(crate) struct Intent {
    enabled: bool,
}

pub(crate) async fn set_members_intent(
    State(s): State<AppState>,
    Path(g): Path<String>,
    Json(intent): Json<Intent>,
) -> StatusCode {
    found(s.set_members_intent(&g, intent.enabled))
}

#[derive(Deserialize)]
pub(crate) struct Advance {
    secs: i64,
}

pub(crate) async fn advance_clock(
    State(s): State<AppState>,
    Json(advance): Json<Advance>,
) -> Json<Value> {
    s.clock.advance(advance.secs);
    Json(json!({ "now": s.clock.now() }))
}
