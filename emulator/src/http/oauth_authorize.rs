//! `GET|POST /oauth2/authorize`: the user-facing consent step of the authorization-code flow.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::header::LOCATION;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Form;
use url::Url;

use crate::consent::Consent;
use crate::oauth::Approval;
use crate::scenario::ScenarioApplication;
use crate::shared::lock;
use crate::world::parse_id;

use super::html::{error_page, escape, page};
use super::AppState;

type Params = HashMap<String, String>;

/// A request that passed client and redirect validation.
struct AuthorizeRequest {
    /// Where to send the browser back to.
    target: Url,
    /// As sent, if sent: the token exchange must repeat it.
    redirect_uri: Option<String>,
    scopes: Vec<String>,
    state: Option<String>,
    code_challenge: Option<String>,
}

/// Parameters the consent form carries through to the POST unchanged.
const PASSED_THROUGH: [&str; 7] = [
    "response_type",
    "client_id",
    "scope",
    "state",
    "redirect_uri",
    "code_challenge",
    "code_challenge_method",
];

pub(crate) async fn show(State(s): State<AppState>, Query(params): Query<Params>) -> Response {
    let request = match validate(&s.scenario.application, &params) {
        Ok(r) => r,
        Err(message) => return error_page(&message),
    };
    match s.settings().consent {
        Consent::Page => consent_page(&s, &params).into_response(),
        Consent::Approve { user_id } => approve(&s, request, &user_id),
        Consent::Deny => deny(request),
    }
}

pub(crate) async fn decide(State(s): State<AppState>, Form(params): Form<Params>) -> Response {
    let request = match validate(&s.scenario.application, &params) {
        Ok(r) => r,
        Err(message) => return error_page(&message),
    };
    if params.get("action").map(String::as_str) != Some("authorize") {
        return deny(request);
    }
    let typed = params
        .get("user_id_text")
        .map(|t| t.trim())
        .filter(|t| !t.is_empty());
    let user = typed
        .or(params.get("user_id").map(String::as_str))
        .unwrap_or_default();
    approve(&s, request, user)
}

fn validate(app: &ScenarioApplication, params: &Params) -> Result<AuthorizeRequest, String> {
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
    if get("client_id") != Some(app.id.as_str()) {
        return Err("Unknown application (invalid client_id).".to_owned());
    }
    if get("response_type") != Some("code") {
        return Err("Unsupported response_type: only \"code\" is supported.".to_owned());
    }
    let redirect_uri = get("redirect_uri").map(str::to_owned);
    let target = match (&redirect_uri, app.redirect_uris.as_slice()) {
        (Some(uri), registered) if registered.is_empty() || registered.contains(uri) => uri.clone(),
        (Some(_), _) => return Err("Invalid OAuth2 redirect_uri.".to_owned()),
        (None, [only]) => only.clone(),
        (None, _) => return Err("Missing redirect_uri.".to_owned()),
    };
    let target = Url::parse(&target).map_err(|_| "Invalid OAuth2 redirect_uri.".to_owned())?;
    let scopes: Vec<String> = get("scope")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if scopes.is_empty() {
        return Err("Missing scope.".to_owned());
    }
    let code_challenge = get("code_challenge").map(str::to_owned);
    if code_challenge.is_some() && get("code_challenge_method") != Some("S256") {
        return Err("Unsupported code_challenge_method: only S256 is supported.".to_owned());
    }
    Ok(AuthorizeRequest {
        target,
        redirect_uri,
        scopes,
        state: get("state").map(str::to_owned),
        code_challenge,
    })
}

fn approve(s: &AppState, request: AuthorizeRequest, user: &str) -> Response {
    let Some(user) = parse_id(user) else {
        return error_page("Pick a user (a numeric user id).");
    };
    let approval = Approval {
        user,
        scopes: request.scopes,
        redirect_uri: request.redirect_uri,
        code_challenge: request.code_challenge,
    };
    let code = lock(&s.oauth).issue_code(approval, s.clock.now());
    redirect(
        request.target,
        &[("code", code.as_str())],
        request.state.as_deref(),
    )
}

fn deny(request: AuthorizeRequest) -> Response {
    let pairs = [
        ("error", "access_denied"),
        (
            "error_description",
            "The resource owner or authorization server denied the request",
        ),
    ];
    redirect(request.target, &pairs, request.state.as_deref())
}

fn redirect(mut target: Url, pairs: &[(&str, &str)], state: Option<&str>) -> Response {
    {
        let mut query = target.query_pairs_mut();
        query.extend_pairs(pairs);
        if let Some(state) = state {
            query.append_pair("state", state);
        }
    }
    (StatusCode::FOUND, [(LOCATION, target.to_string())]).into_response()
}

fn consent_page(s: &AppState, params: &Params) -> axum::response::Html<String> {
    let app_name = escape(&s.scenario.application.bot_user.username);
    let hidden: String = PASSED_THROUGH
        .iter()
        .filter_map(|k| params.get(*k).map(|v| (k, v)))
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{k}\" value=\"{}\">",
                escape(v)
            )
        })
        .collect();
    let options: String = {
        let world = lock(&s.world);
        let mut users: Vec<_> = world.users.values().collect();
        users.sort_by(|a, b| a.id.cmp(&b.id));
        users
            .iter()
            .map(|u| {
                let label = u.global_name.as_deref().unwrap_or(&u.username);
                format!(
                    "<option value=\"{}\">{} (@{})</option>",
                    escape(&u.id),
                    escape(label),
                    escape(&u.username)
                )
            })
            .collect()
    };
    let scopes = escape(params.get("scope").map(String::as_str).unwrap_or_default());
    let body = format!(
        "<h1>{app_name} wants to access your account</h1>\
         <p>Scopes: <code>{scopes}</code></p>\
         <form method=\"post\" action=\"/oauth2/authorize\">{hidden}\
         <p><label>Sign in as <select name=\"user_id\">{options}</select></label></p>\
         <p><label>or user id <input name=\"user_id_text\" placeholder=\"any snowflake\"></label></p>\
         <p><button name=\"action\" value=\"cancel\">Cancel</button> \
         <button name=\"action\" value=\"authorize\">Authorize</button></p></form>"
    );
    page("Discord emulator: authorize", "", &body)
}
