use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;

/// How long a member has to finish the Discord consent screen.
pub const LINK_SESSION_TTL_SECS: i64 = 600;

/// A pending OAuth2 authorization: created by `POST …/link-sessions`, consumed once by the callback.
/// Stored under the SHA-256 of the `state` value, so the store never holds a usable state.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkSession {
    pub state_hash: String,
    pub client: String,
    pub user_id: String,
    pub return_to: Option<String>,
    pub pkce_verifier: String,
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for LinkSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkSession")
            .field("client", &self.client)
            .field("user_id", &self.user_id)
            .field("return_to", &self.return_to)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}
