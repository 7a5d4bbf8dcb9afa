//! Link sessions (admin API) and the SSO callback Discord redirects members to.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::service::linking::{self, CallbackOutcome, CallbackParams};

use super::error::{ApiResult, Problem};
use super::extract::{ApiJson, ApiQuery};
use super::validate;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkSessionInput {
    pub user_id: String,
    /// Where the member lands afterwards, with `discord=linked` or `discord=error&reason=…`.
    /// Its origin must be one of the client's `return_to_origins`.
    pub return_to: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LinkSessionView {
    /// Send the member here (Discord's consent screen).
    pub url: String,
    pub expires_at: i64,
}

#[utoipa::path(post, path = "/clients/{client}/link-sessions", tag = "link", request_body = LinkSessionInput,
    params(("client" = String, Path)),
    responses((status = 201, body = LinkSessionView), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn create_link_session(
    State(app): State<AppState>,
    Path(client): Path<String>,
    ApiJson(input): ApiJson<LinkSessionInput>,
) -> ApiResult<(StatusCode, Json<LinkSessionView>)> {
    validate::key("user_id", &input.user_id)?;
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
    ApiQuery(params): ApiQuery<CallbackParams>,
) -> Response {
    match linking::complete_link(&app, params).await {
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
