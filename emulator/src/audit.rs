//! The guild audit log, as far as the connector's writes show up in it.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    MemberAdd,
    MemberUpdate,
    MemberRoleAdd,
    MemberRoleRemove,
    MemberKick,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditLogEntry {
    pub action: AuditAction,
    pub target_user_id: String,
    /// Set for single-role adds and removes.
    pub role_id: Option<String>,
    /// The URL-decoded `X-Audit-Log-Reason`, when the caller sent one.
    pub reason: Option<String>,
    /// Emulator clock, epoch seconds.
    pub at: f64,
}
