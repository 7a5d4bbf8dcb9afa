//! `/_emulator/*`: unauthenticated control endpoints for demos and manual testing.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::consent::Consent;
use crate::events::EventDelivery;
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

/// `PUT /_emulator/guilds/{g}/roles/{r}/linked-requirements` `[{"key", "value"}]`.
pub(crate) async fn set_linked_requirements(
    State(s): State<AppState>,
    Path((g, r)): Path<(String, String)>,
    Json(body): Json<Vec<crate::linked::LinkedRequirement>>,
) -> StatusCode {
    found(s.set_linked_requirements(&g, &r, body))
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

#[derive(Deserialize)]
pub(crate) struct EventsUrl {
    url: Option<String>,
}

/// `PUT /_emulator/events-url` `{"url": "https://…/discord/events"}` (`null` stops events).
pub(crate) async fn set_events_url(
    State(s): State<AppState>,
    Json(body): Json<EventsUrl>,
) -> StatusCode {
    lock(&s.settings).events_url = body.url;
    StatusCode::NO_CONTENT
}

/// `POST /_emulator/events/ping`: Discord's PING, as the portal sends when the Events Endpoint
/// URL is saved. Answers with the delivery (409 without an events URL).
pub(crate) async fn send_ping(State(s): State<AppState>) -> Response {
    let body = crate::events::ping_body(&s.scenario.application.id);
    delivered(s.deliver("PING", body, None, None).await)
}

#[derive(Deserialize)]
pub(crate) struct Then {
    /// Set by the dashboard's form: go back to the dashboard instead of answering JSON.
    then: Option<String>,
}

/// `POST /_emulator/users/{user}/deauthorize`: the user removes the application (User Settings
/// → Authorized Apps → Deauthorize): their grants are revoked and a signed
/// APPLICATION_DEAUTHORIZED event goes to the events URL. 404 when they had not authorized it.
pub(crate) async fn deauthorize(
    State(s): State<AppState>,
    Path(user): Path<String>,
    Query(then): Query<Then>,
) -> Response {
    let Some(body) = crate::world::parse_id(&user).and_then(|u| s.deauthorize_user(u)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let delivery = s
        .deliver("APPLICATION_DEAUTHORIZED", body, None, None)
        .await;
    if then.then.is_some() {
        return Redirect::to("/").into_response();
    }
    match delivery {
        Some(d) => Json(d).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

/// `GET /_emulator/events`: every delivery so far.
pub(crate) async fn deliveries(State(s): State<AppState>) -> Json<Vec<EventDelivery>> {
    Json(lock(&s.deliveries).clone())
}

fn delivered(delivery: Option<EventDelivery>) -> Response {
    match delivery {
        Some(d) => Json(d).into_response(),
        None => (StatusCode::CONFLICT, "no events URL set").into_response(),
    }
}
