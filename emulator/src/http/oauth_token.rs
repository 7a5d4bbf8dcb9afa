//! `POST /api/v10/oauth2/token` and `/oauth2/token/revoke`: form-encoded only, client
//! authenticated by HTTP Basic or by `client_id` + `client_secret` fields.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::HeaderMap;
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use percent_encoding::percent_decode_str;
use serde_json::{json, Value};

use crate::error::OAuthError;
use crate::oauth::IssuedTokens;
use crate::scenario::ScenarioApplication;
use crate::shared::lock;

use super::AppState;

type Form = HashMap<String, String>;

pub(crate) async fn token(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<IssuedTokens>, OAuthError> {
    let form = authenticated_form(&s.scenario.application, &headers, &body)?;
    let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let required = |name: &str| {
        field(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("Missing \"{name}\" in request.")))
    };
    let now = s.clock.now();
    let mut oauth = lock(&s.oauth);
    let issued = match field("grant_type") {
        Some("authorization_code") => oauth.exchange_code(
            required("code")?,
            field("redirect_uri"),
            field("code_verifier"),
            now,
        )?,
        Some("refresh_token") => oauth.refresh(required("refresh_token")?, now)?,
        _ => return Err(OAuthError::unsupported_grant_type()),
    };
    Ok(Json(issued))
}

pub(crate) async fn revoke(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, OAuthError> {
    let form = authenticated_form(&s.scenario.application, &headers, &body)?;
    let token = form
        .get("token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("Missing \"token\" in request."))?;
    lock(&s.oauth).revoke(token);
    Ok(Json(json!({})))
}

/// Parses the form and checks the client credentials; Basic wins when both are present.
fn authenticated_form(
    app: &ScenarioApplication,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Form, OAuthError> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request(
            "Content-Type must be application/x-www-form-urlencoded.",
        ));
    }
    let form: Form = serde_urlencoded::from_bytes(body)
        .map_err(|e| OAuthError::invalid_request(e.to_string()))?;
    let credentials = match basic_credentials(headers) {
        Some(pair) => Some(pair),
        None => form
            .get("client_id")
            .cloned()
            .zip(form.get("client_secret").cloned()),
    };
    match credentials {
        Some((id, secret)) if id == app.id && secret == app.client_secret => Ok(form),
        _ => Err(OAuthError::invalid_client()),
    }
}

/// RFC 6749 §2.3.1: both halves are form-encoded before being joined and base64-encoded.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let decode = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    Some((decode(id), decode(secret)))
}
