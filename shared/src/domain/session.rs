use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;

/// How long a member has to finish the Discord consent screen.
pub const LINK_SESSION_TTL_SECS: i64 = 600;

/// A link in progress, in two single-use steps. `POST …/link-sessions` creates it under the
/// SHA-256 of a start token (the `url` the site sends the member to). Opening that URL consumes
/// it and stores it again, now bound to that browser by a cookie (`browser_hash`), under the
/// SHA-256 of the OAuth `state` sent to Discord; the callback consumes it once more and requires
/// the cookie. The store never holds a usable token or state.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkSession {
    pub state_hash: String,
    pub client: String,
    pub user_id: String,
    pub return_to: Option<String>,
    /// Empty until the member opened the link URL.
    pub pkce_verifier: String,
    pub expires_at: Timestamp,
    /// SHA-256 of the cookie set in the browser that opened the link URL; `None` before that.
    #[serde(default)]
    pub browser_hash: Option<String>,
}

impl LinkSession {
    /// Whether the member's browser has opened the link URL (the session now waits for
    /// Discord's callback).
    pub fn started(&self) -> bool {
        self.browser_hash.is_some()
    }
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
