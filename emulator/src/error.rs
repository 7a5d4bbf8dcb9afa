//! Discord's JSON error bodies, with the status and code Discord pairs with each failure.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DiscordError {
    Unauthorized,
    NotFound,
    UnknownGuild,
    UnknownMember,
    UnknownRole,
    MaxGuilds,
    Banned,
    MissingAccess,
    MissingPermissions,
    /// A member claims a linked role whose requirements their role connection does not meet.
    /// Discord's client refuses the claim; its public API has no claim route, so the code is
    /// Missing Permissions' and the message says why.
    LinkedRequirementsNotMet,
    InvalidOAuthToken,
    InvalidFormBody {
        field: String,
        message: String,
    },
    UserLimited,
}

impl DiscordError {
    pub(crate) fn form(field: &str, message: impl Into<String>) -> Self {
        Self::InvalidFormBody {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    fn status_code_message(&self) -> (StatusCode, u64, &'static str) {
        use DiscordError::*;
        match self {
            Unauthorized => (StatusCode::UNAUTHORIZED, 0, "401: Unauthorized"),
            NotFound => (StatusCode::NOT_FOUND, 0, "404: Not Found"),
            UnknownGuild => (StatusCode::NOT_FOUND, 10004, "Unknown Guild"),
            UnknownMember => (StatusCode::NOT_FOUND, 10007, "Unknown Member"),
            UnknownRole => (StatusCode::NOT_FOUND, 10011, "Unknown Role"),
            MaxGuilds => (
                StatusCode::BAD_REQUEST,
                30001,
                "Maximum number of guilds reached (100)",
            ),
            Banned => (
                StatusCode::FORBIDDEN,
                40007,
                "The user is banned from this guild.",
            ),
            MissingAccess => (StatusCode::FORBIDDEN, 50001, "Missing Access"),
            MissingPermissions => (StatusCode::FORBIDDEN, 50013, "Missing Permissions"),
            LinkedRequirementsNotMet => (
                StatusCode::FORBIDDEN,
                50013,
                "Missing Permissions: the user does not meet the role's Linked Roles requirements",
            ),
            InvalidOAuthToken => (StatusCode::FORBIDDEN, 50025, "Invalid OAuth2 access token"),
            InvalidFormBody { .. } => (StatusCode::BAD_REQUEST, 50035, "Invalid Form Body"),
            UserLimited => (
                StatusCode::FORBIDDEN,
                340015,
                "The user's account is limited and cannot join guilds",
            ),
        }
    }
}

impl IntoResponse for DiscordError {
    fn into_response(self) -> Response {
        let (status, code, message) = self.status_code_message();
        let mut body = json!({ "code": code, "message": message });
        if let DiscordError::InvalidFormBody { field, message } = &self {
            body["errors"] = form_errors(field, message);
        }
        (status, Json(body)).into_response()
    }
}

fn form_errors(field: &str, message: &str) -> Value {
    json!({ field: { "_errors": [ { "code": "BASE_TYPE_INVALID", "message": message } ] } })
}

/// An OAuth2 endpoint failure (RFC 6749 shape, which Discord uses on `/oauth2/token`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: Option<String>,
}

impl OAuthError {
    pub(crate) fn invalid_client() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            description: None,
        }
    }

    pub(crate) fn invalid_grant(description: impl Into<String>) -> Self {
        Self::bad_request("invalid_grant", description)
    }

    pub(crate) fn invalid_request(description: impl Into<String>) -> Self {
        Self::bad_request("invalid_request", description)
    }

    pub(crate) fn unsupported_grant_type() -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: "unsupported_grant_type",
            description: None,
        }
    }

    fn bad_request(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error,
            description: Some(description.into()),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = match self.description {
            Some(d) => json!({ "error": self.error, "error_description": d }),
            None => json!({ "error": self.error }),
        };
        (self.status, Json(body)).into_response()
    }
}
