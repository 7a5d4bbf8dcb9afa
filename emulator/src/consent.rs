//! How `GET /oauth2/authorize` answers: show a page, or act as a user who already decided.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Consent {
    /// An HTML consent page where a person picks the user and presses Authorize or Cancel.
    #[default]
    Page,
    /// Redirect back at once with a code for this user (any snowflake; unknown ids get a
    /// synthesized user).
    Approve { user_id: String },
    /// Redirect back at once with `error=access_denied`.
    Deny,
}
