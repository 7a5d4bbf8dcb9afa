//! Every error becomes RFC 9457 problem+json here, and only here.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::discord::DiscordError;
use crate::service::ServiceError;
use crate::store::StoreError;

/// RFC 9457 problem details.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Stable identifier of the problem kind.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The request field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Discord's JSON error code, when Discord refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discord_code: Option<u64>,
}

#[derive(Debug)]
pub struct ApiError(pub Problem);

impl ApiError {
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Self(Problem {
            kind: format!("urn:discord-connector:problem:{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
            discord_code: None,
        })
    }

    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Self {
        let field = field.into();
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
            "Invalid request field",
            format!("{field}: {}", detail.into()),
        );
        e.0.field = Some(field);
        e
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Bad request",
            detail,
        )
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Missing or wrong admin token",
            "send Authorization: Bearer <admin token>",
        )
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            format!("{what} not found"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.0).unwrap_or_default();
        (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response()
    }
}

/// Router-wide safety net: a 4xx or 5xx that is not problem+json yet (axum's own answers — 405
/// for a wrong method, 413, a rejection of an extractor we do not wrap) becomes one, keeping its
/// status and headers (`Allow` on a 405). The SSO callback's HTML pages are for people in a
/// browser and stay as they are.
pub async fn problem_for_bare_errors(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.starts_with("application/problem+json") || content_type.starts_with("text/html")
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // axum's own error texts are short; anything longer is cut, never buffered whole.
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let title = status.canonical_reason().unwrap_or("Error");
    let slug = title.to_ascii_lowercase().replace([' ', '\''], "-");
    let detail = match (status, text.is_empty()) {
        // axum adds `Allow` after this layer: point at it.
        (StatusCode::METHOD_NOT_ALLOWED, _) => {
            format!("{method} is not allowed here; the Allow header lists the methods that are")
        }
        (_, false) => text,
        (_, true) => title.to_owned(),
    };
    let problem = ApiError::new(status, &slug, title, detail).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/problem+json"),
    );
    Response::from_parts(parts, problem.into_body())
}

fn discord_problem(e: &DiscordError) -> ApiError {
    let (status, title) = match e {
        DiscordError::BotTokenRejected | DiscordError::InvalidClient => (
            StatusCode::BAD_GATEWAY,
            "Discord rejected the client's credentials",
        ),
        DiscordError::MissingPermissions | DiscordError::MissingAccess => (
            StatusCode::BAD_GATEWAY,
            "The bot lacks a permission in the guild",
        ),
        DiscordError::RateLimited { .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Discord rate limit reached",
        ),
        DiscordError::Transport(_) | DiscordError::Server { .. } | DiscordError::Overloaded => {
            (StatusCode::BAD_GATEWAY, "Discord is unreachable")
        }
        DiscordError::ResponseTooLarge { .. } | DiscordError::Decode(_) => (
            StatusCode::BAD_GATEWAY,
            "Discord's answer could not be used",
        ),
        DiscordError::NotConfigured(_) => {
            (StatusCode::CONFLICT, "The client is not fully configured")
        }
        _ => (StatusCode::BAD_GATEWAY, "Discord refused the request"),
    };
    let mut err = ApiError::new(
        status,
        &format!("discord-{}", e.code().replace('_', "-")),
        title,
        e.to_string(),
    );
    err.0.discord_code = e.discord_code();
    err
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound(what) => ApiError::not_found(what),
            ServiceError::Invalid { field, message } => ApiError::invalid(field, message),
            ServiceError::Conflict { code, message } => ApiError::new(
                StatusCode::CONFLICT,
                &code.replace('_', "-"),
                "Conflict",
                message,
            ),
            ServiceError::Busy(message) => {
                ApiError::new(StatusCode::CONFLICT, "busy", "Already running", message)
            }
            e @ ServiceError::BotBusy => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "bot-busy",
                "Bot busy",
                e.to_string(),
            ),
            ServiceError::Discord(d) => discord_problem(&d),
            ServiceError::Store(StoreError::NotFound) => ApiError::not_found("resource"),
            ServiceError::Store(StoreError::InvalidCursor) => {
                ApiError::invalid("cursor", "unknown or malformed cursor")
            }
            ServiceError::Store(e) => {
                tracing::error!(error = %e, "store failure");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "store-unavailable",
                    "Storage failure",
                    "the store failed; retry later",
                )
            }
            ServiceError::Secrets(e) => {
                tracing::error!(error = %e, "secrets failure");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "secrets-unavailable",
                    "Secrets failure",
                    "secrets could not be read or written",
                )
            }
            ServiceError::Queue(e) => {
                tracing::error!(error = %e, "queue failure");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "queue-unavailable",
                    "Queue failure",
                    "the change is stored but its worker could not be woken; the next 5-minute tick applies it",
                )
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ServiceError::Store(e).into()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
