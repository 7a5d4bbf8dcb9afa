//! Scoped API tokens: what a bearer token other than the bootstrap operator token may do.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::Timestamp;

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenScope {
    /// A website backend: push users, import, create link sessions, unlink and read its users —
    /// for its own clients only.
    Site,
    /// Everything, like the bootstrap token.
    Operator,
}

/// A stored API token. The token itself is shown once when it is made; only its SHA-256 is kept.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    pub scope: TokenScope,
    /// The clients a `site` token may act on (empty for `operator`).
    pub clients: Vec<String>,
    pub token_sha256: String,
    /// The token's first characters, so an operator can tell tokens apart (not enough to use).
    pub prefix: String,
    pub created_at: Timestamp,
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiToken")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("scope", &self.scope)
            .field("clients", &self.clients)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}
