use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::Timestamp;

/// One change we made (or an operator made through us), kept for the audit trail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub id: String,
    pub client: String,
    pub at: Timestamp,
    /// `admin`, `sso`, `discord` (a Webhook Event), or `task:<name>`.
    pub actor: String,
    /// One of [`AuditAction`]'s names (`role.add`, `link.create`, …); kept as text so entries
    /// written by another version still read.
    pub action: String,
    pub user_id: Option<String>,
    pub discord_user_id: Option<String>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// What an audit entry records. The names are the stable strings of the API and the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuditAction {
    ClientCreate,
    ClientUpdate,
    RolesSync,
    RoleMap,
    /// A mapped role Discord deleted: unmapped instead of retried.
    RoleUnmap,
    RoleAdd,
    RoleRemove,
    NickSet,
    MemberJoin,
    MemberLeft,
    MemberKick,
    LinkCreate,
    LinkDelete,
    LinkRevoked,
    UsersImport,
    /// Discord told us (a Webhook Event) that a user authorized the application.
    AppAuthorized,
    /// Remote-priority mode: a user's groups rewritten from their roles on Discord.
    GroupsFromDiscord,
    /// The website was asked to have a member link again (Linked Roles need a scope their link
    /// lacks).
    RelinkRequested,
}

impl AuditAction {
    pub const fn as_str(self) -> &'static str {
        match self {
            AuditAction::ClientCreate => "client.create",
            AuditAction::ClientUpdate => "client.update",
            AuditAction::RolesSync => "roles.sync",
            AuditAction::RoleMap => "role.map",
            AuditAction::RoleUnmap => "role.unmap",
            AuditAction::RoleAdd => "role.add",
            AuditAction::RoleRemove => "role.remove",
            AuditAction::NickSet => "nick.set",
            AuditAction::MemberJoin => "member.join",
            AuditAction::MemberLeft => "member.left",
            AuditAction::MemberKick => "member.kick",
            AuditAction::LinkCreate => "link.create",
            AuditAction::LinkDelete => "link.delete",
            AuditAction::LinkRevoked => "link.revoked",
            AuditAction::UsersImport => "users.import",
            AuditAction::AppAuthorized => "app.authorized",
            AuditAction::GroupsFromDiscord => "groups.from_discord",
            AuditAction::RelinkRequested => "link.relink_requested",
        }
    }
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
