//! Link sessions (admin API) and the SSO callback Discord redirects members to.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::discord::client::is_well_formed_state;
use crate::service::linking::{self, CallbackOutcome, CallbackParams};

use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::validate;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkSessionInput {
    pub user_id: String,
    /// Where the member lands afterwards, with `discord=linked` or `discord=error&reason=…`.
    /// Its origin must be one of the client's `return_to_origins`.
    pub return_to: Option<String>,
}

/// Longest `return_to`: it comes back as the callback's `Location` header, and 2,048 bytes is
/// what every browser and proxy handles.
pub const MAX_RETURN_TO_BYTES: usize = 2048;

#[derive(Debug, Serialize, ToSchema)]
pub struct LinkSessionView {
    /// Send the member's browser here: the connector binds the link to that browser (a
    /// short-lived HttpOnly cookie) and forwards it to Discord's consent screen. Valid 10
    /// minutes, single use; a newer session of the same user replaces it.
    pub url: String,
    pub expires_at: i64,
}

#[utoipa::path(post, path = "/clients/{client}/link-sessions", tag = "link", request_body = LinkSessionInput,
    params(("client" = String, Path)),
    responses((status = 201, body = LinkSessionView), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn create_link_session(
    State(app): State<AppState>,
    ApiPath(client): ApiPath<String>,
    ApiJson(input): ApiJson<LinkSessionInput>,
) -> ApiResult<(StatusCode, Json<LinkSessionView>)> {
    validate::key("user_id", &input.user_id)?;
    if input
        .return_to
        .as_ref()
        .is_some_and(|r| r.len() > MAX_RETURN_TO_BYTES)
    {
        return Err(ApiError::invalid(
            "return_to",
            format!("must be at most {MAX_RETURN_TO_BYTES} bytes"),
        ));
    }
    let started =
        linking::start_link_session(&app, &client, &input.user_id, input.return_to.as_deref())
            .await?;
    Ok((
        StatusCode::CREATED,
        Json(LinkSessionView {
            url: started.url,
            expires_at: started.expires_at,
        }),
    ))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `GET /discord/sso/callback?code&state` (or `?error=access_denied&state`).
pub async fn sso_callback(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiQuery(mut params): ApiQuery<CallbackParams>,
) -> Response {
    // A state or start token we cannot have generated is unknown: the store is not asked.
    if !params.state.as_deref().is_some_and(is_well_formed_state) {
        params.state = None;
    }
    if !params
        .start
        .as_deref()
        .is_some_and(linking::is_well_formed_start)
    {
        params.start = None;
    }
    let cookies = headers.get(header::COOKIE).and_then(|v| v.to_str().ok());
    let answer = linking::complete_link(&app, params, cookies).await;
    let mut response = outcome_response(answer.outcome);
    if let Some(cookie) = answer
        .set_cookie
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

fn outcome_response(outcome: CallbackOutcome) -> Response {
    match outcome {
        CallbackOutcome::Redirect(to) => (
            StatusCode::FOUND,
            [
                (header::LOCATION, to),
                (header::CACHE_CONTROL, "no-store".to_owned()),
            ],
        )
            .into_response(),
        CallbackOutcome::Page {
            status,
            title,
            message,
        } => {
            let body = format!(
                "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head>\
                 <body style=\"font-family:sans-serif;max-width:40em;margin:4em auto\"><h1>{t}</h1><p>{m}</p></body></html>",
                t = escape(&title),
                m = escape(&message)
            );
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            (status, [(header::CACHE_CONTROL, "no-store")], Html(body)).into_response()
        }
    }
}
