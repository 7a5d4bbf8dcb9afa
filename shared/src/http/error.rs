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
