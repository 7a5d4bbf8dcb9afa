//! Bulk migration of existing links (from the original package or Alliance Auth) without asking
//! members to link again. Imported links carry no OAuth token and cost no Discord call: their real
//! Discord state is learned by the next remote-sync-groups from the paged member list.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::domain::AuditAction;
use crate::domain::{Link, LinkStatus, SiteUser, UnlinkCleanup, UnlinkReason};
use crate::store::StoreError;
use crate::work::dispatch::{mark_pending, wake};

use super::audit::AuditBatch;
use super::ServiceError;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportItem {
    pub user_id: String,
    pub discord_user_id: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportFailure {
    /// Position in the request array.
    pub index: usize,
    pub user_id: String,
    pub code: String,
    pub detail: String,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct ImportReport {
    pub received: usize,
    /// New site users.
    pub created: usize,
    /// Existing users whose groups, attributes or link changed.
    pub updated: usize,
    /// Already exactly as imported (an import is idempotent).
    pub unchanged: usize,
    pub failed: Vec<ImportFailure>,
}

/// Imports already-validated items (see the HTTP layer). Each item is applied on its own, so a
/// conflict on one (a Discord account linked to another user) does not stop the rest, and
/// repeating the same import changes nothing.
pub async fn import_users(
    app: &AppState,
    client_id: &str,
    items: Vec<ImportItem>,
) -> Result<ImportReport, ServiceError> {
    let client = app
        .store
        .get_client(client_id)
        .await?
        .ok_or(ServiceError::NotFound("client"))?;
    // A user imported with another Discord account than the one linked: the old account gets
    // the unlink policy, like a relink.
    let replaced = UnlinkCleanup {
        reason: UnlinkReason::Imported,
        policy: client.unlink_policy,
        actor: "admin".to_owned(),
    };
    let store = app.store.as_ref();
    let now = app.clock.now();
    mark_pending(app, client_id).await?;
    let mut report = ImportReport {
        received: items.len(),
        ..ImportReport::default()
    };
    for (index, item) in items.into_iter().enumerate() {
        let existing = store.get_member(client_id, &item.user_id).await?;
        let user = SiteUser {
            user_id: item.user_id.clone(),
            groups: item.groups.iter().cloned().collect::<BTreeSet<_>>(),
            attributes: item.attributes.clone(),
        };
        let same_user = existing.as_ref().is_some_and(|m| m.user == user);
        let same_link = existing
            .as_ref()
            .and_then(|m| m.link.as_ref())
            .is_some_and(|l| l.discord_user_id == item.discord_user_id);
        if same_user && same_link {
            report.unchanged += 1;
            continue;
        }
        if !same_link {
            let link = Link {
                discord_user_id: item.discord_user_id.clone(),
                username: String::new(),
                global_name: None,
                nickname: None,
                status: LinkStatus::Active,
                applied_roles: BTreeSet::new(),
                tokens: None,
                linked_at: now,
                // Nothing is known of the member's roles until Discord is read: the writer reads
                // the member before planning, so a removal pushed now is not lost.
                roles_known: false,
                refused: Default::default(),
                // No OAuth grant: an imported member has granted no scope yet.
                scopes: Default::default(),
                role_connection: None,
                relink_requested_at: None,
            };
            match store
                // Not pending: the next remote sync learns the member's roles from the member
                // list (1,000 per call); a change pushed before then reads the member first.
                .create_link(client_id, &item.user_id, &link, Some(&replaced), false, now)
                .await
            {
                Ok(_) => {}
                Err(StoreError::DiscordAccountTaken { user_id }) => {
                    report.failed.push(ImportFailure {
                        index,
                        user_id: item.user_id,
                        code: "account_already_linked".into(),
                        detail: format!(
                            "Discord account {} is linked to site user {user_id}",
                            item.discord_user_id
                        ),
                    });
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if !same_user {
            // New groups of a member whose roles are known are work for the writer now.
            let known = existing
                .as_ref()
                .and_then(|m| m.active_link())
                .is_some_and(|l| l.roles_known && same_link);
            let pending = known || existing.as_ref().is_some_and(|m| m.pending);
            store.save_site_user(client_id, &user, pending, now).await?;
        }
        if existing.is_some() {
            report.updated += 1;
        } else {
            report.created += 1;
        }
    }
    let mut audit = AuditBatch::new(client_id, "admin", now);
    audit.push(
        AuditAction::UsersImport,
        None,
        None,
        json!({"received": report.received, "created": report.created, "updated": report.updated,
               "unchanged": report.unchanged, "failed": report.failed.len()}),
    );
    audit.save(store).await?;
    wake(app, client_id).await?;
    Ok(report)
}
