//! The request log: what a client sent, minus any secret.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthorizationKind {
    Bot,
    Bearer,
    Basic,
    None,
    /// A header with no recognised scheme (e.g. a bare token): almost always a client bug.
    Other,
}

impl AuthorizationKind {
    pub(crate) fn of(header: Option<&str>) -> Self {
        let Some(value) = header else {
            return Self::None;
        };
        let scheme = value.split_whitespace().next().unwrap_or_default();
        match scheme.to_ascii_lowercase().as_str() {
            "bot" => Self::Bot,
            "bearer" => Self::Bearer,
            "basic" => Self::Basic,
            _ => Self::Other,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub method: String,
    /// Without the query string.
    pub path: String,
    pub query: Option<String>,
    pub status: u16,
    pub user_agent: Option<String>,
    /// URL-decoded `X-Audit-Log-Reason`.
    pub audit_reason: Option<String>,
    pub authorization_kind: AuthorizationKind,
    /// Emulator clock, epoch seconds.
    pub at: f64,
}
