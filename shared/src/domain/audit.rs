use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::Timestamp;

/// One change we made (or an operator made through us), kept for the audit trail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub id: String,
    pub client: String,
    pub at: Timestamp,
    /// `admin`, `sso`, or `task:<name>`.
    pub actor: String,
    /// e.g. `role.add`, `role.remove`, `nick.set`, `member.join`, `member.kick`, `link.create`,
    /// `link.delete`, `client.create`, `role.map`.
    pub action: String,
    pub user_id: Option<String>,
    pub discord_user_id: Option<String>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}
