use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::Timestamp;
use crate::domain::UnlinkPolicy;

/// The desired state of one website user, pushed by the site backend.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteUser {
    pub user_id: String,
    pub groups: BTreeSet<String>,
    pub attributes: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkStatus {
    Active,
    /// The member is no longer in the guild (Discord said 10007); not retried.
    Left,
    /// The user revoked our authorization (invalid_grant); the unlink policy was applied.
    Revoked,
}

/// The user's OAuth tokens, sealed by the `Secrets` port (never plain text in the store).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTokens {
    pub sealed: String,
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for StoredTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredTokens")
            .field("sealed", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A site user's Discord account, as far as we know it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub discord_user_id: String,
    pub username: String,
    pub global_name: Option<String>,
    pub nickname: Option<String>,
    pub status: LinkStatus,
    /// Managed roles we applied (or saw) on the member: our belief of their current managed roles.
    pub applied_roles: BTreeSet<String>,
    pub tokens: Option<StoredTokens>,
    pub linked_at: Timestamp,
    /// False for an imported link until the member is first seen on Discord: the writer reads
    /// the member before planning, so a removal is never planned against an empty record.
    #[serde(default = "known")]
    pub roles_known: bool,
    /// Writes Discord refused (403) for this member — `add:<role>`, `remove:<role>`, `nick` — not
    /// sent again until something relevant changes: `roles/sync`, a mapping change, or the
    /// member's roles on Discord. Every refused request counts against the IP's invalid-request
    /// budget.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub refused: BTreeSet<String>,
    /// OAuth2 scopes the member granted when linking (`role_connections.write` only when the
    /// client's Linked Roles were on then). Empty for imported links and links stored before
    /// scopes were kept: those count as lacking every optional scope.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub scopes: BTreeSet<String>,
    /// The Linked Roles role connection last pushed to Discord for this member; an unchanged
    /// one is not sent again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_connection: Option<super::linked_roles::RoleConnection>,
    /// When the website was told this member must link again for Linked Roles (the
    /// `link.needs_relink` webhook event): told once per link, a new link starts afresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relink_requested_at: Option<Timestamp>,
}

impl Link {
    /// Whether the member granted `scope` when linking.
    pub fn granted(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }
}

fn known() -> bool {
    true
}

/// The key of a refused write in [`Link::refused`].
pub fn refusal_key(add: bool, role: &str) -> String {
    format!("{}:{role}", if add { "add" } else { "remove" })
}

/// The key of a refused nickname change in [`Link::refused`].
pub const NICK_REFUSAL: &str = "nick";

/// Why a Discord account stopped being a site user's link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnlinkReason {
    /// `DELETE …/users/{id}/link`.
    Unlinked,
    /// The site user linked another Discord account.
    Relinked,
    /// An import gave the site user another Discord account.
    Imported,
    /// The member removed the application from their authorized apps on Discord (a Webhook
    /// Event `APPLICATION_DEAUTHORIZED`), or Discord did so when banning the account.
    Revoked,
}

/// A Discord account a site user no longer has linked, whose clean-up on Discord is still to
/// do: the client's unlink policy (managed roles removed, or a kick) and the revocation of our
/// OAuth grant. It is recorded in the same store write that removes the link and is worked off
/// by the guild's writer, so an unlink answers at once and never cuts a sequence of Discord
/// writes in half.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unlinking {
    pub discord_user_id: String,
    pub reason: UnlinkReason,
    /// `None`: the account only loses our grant (it had left the guild, or its authorization
    /// was already revoked and the policy applied then).
    pub policy: Option<UnlinkPolicy>,
    /// Managed roles still to remove, as far as we know (each removed one leaves the set as it
    /// completes).
    pub roles: BTreeSet<String>,
    /// False when the account's roles were never seen (an imported link): the writer reads the
    /// member first.
    pub roles_known: bool,
    pub tokens: Option<StoredTokens>,
    pub actor: String,
    pub since: Timestamp,
    /// Discord refused (403) part of the clean-up: not sent again until `roles/sync` or a
    /// mapping change.
    #[serde(default)]
    pub refused: bool,
    pub last_error: Option<LastError>,
}

/// How a link that is being removed or replaced is to be cleaned up on Discord: the store
/// turns the link it removes into an [`Unlinking`] in the same write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnlinkCleanup {
    pub reason: UnlinkReason,
    pub policy: UnlinkPolicy,
    pub actor: String,
}

impl UnlinkCleanup {
    /// The clean-up `link` needs, if any: the policy for an active link, the grant's revocation
    /// for any link that holds tokens.
    pub fn for_link(&self, link: &Link, now: Timestamp) -> Option<Unlinking> {
        let policy = (link.status == LinkStatus::Active).then_some(self.policy);
        if policy.is_none() && link.tokens.is_none() {
            return None;
        }
        Some(Unlinking {
            discord_user_id: link.discord_user_id.clone(),
            reason: self.reason,
            policy,
            roles: link.applied_roles.clone(),
            roles_known: link.roles_known,
            tokens: link.tokens.clone(),
            actor: self.actor.clone(),
            since: now,
            refused: false,
            last_error: None,
        })
    }
}

/// Why the last attempt to bring a member in line failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LastError {
    /// Stable machine-readable code, e.g. `missing_permissions`, `role_above_bot`.
    pub code: String,
    pub message: String,
    pub discord_code: Option<u64>,
    pub at: Timestamp,
}

/// One site user of one client with their optional link: the unit the store reads and writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub client: String,
    pub user: SiteUser,
    pub link: Option<Link>,
    /// Former accounts whose clean-up is still to do, by Discord user id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unlinking: BTreeMap<String, Unlinking>,
    /// Set while the member's managed roles or nickname may differ from what their groups entitle.
    pub pending: bool,
    pub last_error: Option<LastError>,
    /// Bumped by every change of the desired state, so a task can clear `pending` only if nothing
    /// changed while it worked.
    pub version: i64,
    pub updated_at: Timestamp,
}

impl Member {
    pub fn new(client: &str, user_id: &str, now: Timestamp) -> Self {
        Self {
            client: client.to_owned(),
            user: SiteUser {
                user_id: user_id.to_owned(),
                ..SiteUser::default()
            },
            link: None,
            unlinking: BTreeMap::new(),
            pending: false,
            last_error: None,
            version: 0,
            updated_at: now,
        }
    }

    pub fn active_link(&self) -> Option<&Link> {
        self.link
            .as_ref()
            .filter(|l| l.status == LinkStatus::Active)
    }
}
