//! `/_emulator/*`: unauthenticated control endpoints for demos and manual testing.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::claims::may_claim;
use crate::consent::Consent;
use crate::error::DiscordError;
use crate::events::EventDelivery;
use crate::fault::Fault;
use crate::linked::LinkedRequirement;
use crate::ratelimit::RateLimits;
use crate::requests::RecordedRequest;
use crate::shared::lock;
use crate::views::StateView;
use crate::world::parse_id;

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
    Json(body): Json<Vec<LinkedRequirement>>,
) -> StatusCode {
    found(s.set_linked_requirements(&g, &r, body))
}

/// `GET /_emulator/guilds/{g}/roles/{r}/linked-requirements`: `{"requirements": […],
/// "may_claim": [user ids]}`, the members who meet them now; 404 for an unknown role.
pub(crate) async fn linked_requirements(
    State(s): State<AppState>,
    Path((g, r)): Path<(String, String)>,
) -> Result<Json<Value>, DiscordError> {
    let (records, connections) = (lock(&s.role_connection_metadata).clone(), s.connections());
    let world = lock(&s.world);
    let guild = world.guild(&g)?;
    let role = parse_id(&r)
        .filter(|r| *r != guild.id)
        .and_then(|r| guild.roles.get(&r))
        .ok_or(DiscordError::UnknownRole)?;
    let may_claim: Vec<String> = if role.is_linked() {
        may_claim(
            guild,
            role,
            &records,
            &connections,
            s.clock.now(),
            usize::MAX,
        )
        .iter()
        .map(u64::to_string)
        .collect()
    } else {
        Vec::new()
    };
    Ok(Json(
        json!({"requirements": role.linked_requirements, "may_claim": may_claim}),
    ))
}

#[derive(Deserialize)]
pub(crate) struct Claim {
    user_id: String,
}

/// `POST /_emulator/guilds/{g}/roles/{r}/claim` `{"user_id"}` (JSON, or the dashboard's form):
/// the member claims the linked role (server menu → Linked Roles). Answers the member as
/// `GET …/members/{u}` does; refused with Discord's error shape: 404 10004/10011/10007 for an
/// unknown guild, role or member, 400 50035 for a role without requirements, 403 50013 when
/// their role connection does not meet them.
pub(crate) async fn claim_linked_role(
    State(s): State<AppState>,
    Path((g, r)): Path<(String, String)>,
    Query(then): Query<Then>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let claim: Result<Claim, String> = if form {
        serde_urlencoded::from_bytes(&body).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice(&body).map_err(|e| e.to_string())
    };
    let claim = match claim {
        Ok(claim) => claim,
        Err(e) => return DiscordError::form("user_id", e).into_response(),
    };
    if let Err(refused) = s.claim_linked_role(&g, &r, &claim.user_id) {
        return DiscordError::from(refused).into_response();
    }
    if then.then.is_some() {
        return Redirect::to("/").into_response();
    }
    let world = lock(&s.world);
    let member = parse_id(&claim.user_id).and_then(|user| {
        let member = world.guild(&g).ok()?.members.get(&user)?;
        Some(world.member_json(user, member))
    });
    match member {
        Some(member) => Json(member).into_response(),
        None => DiscordError::UnknownMember.into_response(),
    }
}

/// `GET /_emulator/users/{u}/role-connection`: the role connection the user holds with the
/// application (404 when none was written).
pub(crate) async fn role_connection(
    State(s): State<AppState>,
    Path(user): Path<String>,
) -> Response {
    let held = parse_id(&user).and_then(|u| lock(&s.role_connections).get(&u).cloned());
    match held {
        Some(connection) => Json(connection).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
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
