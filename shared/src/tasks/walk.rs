//! The walk both weekly tasks share: the merged member-list scan, bookkeeping for members who
//! left or nobody links, the guild audit, the fallback note, and stopping at a cursor.

use crate::domain::GuildAudit;
use crate::service::ServiceError;

use super::guild_scan::{GuildScan, Seen};
use super::outcomes::{mark_left, note_failed, note_unlinked};
use super::run::Run;
use super::{remote_sync_groups, sync_accounts, verify_groups};

/// What to do with a linked member and their live state.
#[derive(Clone, Copy)]
pub enum OnLinked {
    /// remote-sync-groups: repair role drift (or adopt Discord's roles).
    RepairRoles,
    /// sync-accounts: refresh names and enforce the nickname template.
    RefreshNames,
}

/// Walks the guild from `after` (a Discord user id). Returns whether it reached the end; when it
/// stops early the report's cursor is `<cursor_prefix><last id handled>`.
pub async fn walk_guild(
    run: &mut Run<'_>,
    after: Option<u64>,
    on_linked: OnLinked,
    cursor_prefix: &str,
) -> Result<bool, ServiceError> {
    let mut scan = GuildScan::new(after);
    let mut audit = GuildAudit::default();
    let result = walk(run, &mut scan, &mut audit, on_linked, cursor_prefix).await;
    if scan.fallback {
        run.report.notes.push(
            "the bot lacks the GUILD_MEMBERS intent (403 50001): fell back to one GET per linked member; \
             enable the Server Members Intent in the developer portal to list members 1,000 at a time"
                .into(),
        );
    } else {
        run.report.guild_audit = Some(audit);
    }
    result
}

async fn walk(
    run: &mut Run<'_>,
    scan: &mut GuildScan,
    audit: &mut GuildAudit,
    on_linked: OnLinked,
    cursor_prefix: &str,
) -> Result<bool, ServiceError> {
    let mut position = scan.position();
    while let Some(batch) = scan.next_batch(&run.ctx).await? {
        if position.is_some() || run.members_seen() > 0 {
            let at = position.map(|p| format!("{cursor_prefix}{p}"));
            run.checkpoint(at).await?;
            verify_groups::drain_pushed(run).await?;
        }
        for seen in batch {
            if run.out_of_time() {
                let at = position.map(|p| p.to_string()).unwrap_or_default();
                run.stop_at(format!("{cursor_prefix}{at}"));
                return Ok(false);
            }
            position = seen.discord_id().or(position);
            match seen {
                Seen::Linked(member, live) => {
                    audit.members_seen += 1;
                    audit.linked += 1;
                    match on_linked {
                        OnLinked::RepairRoles => {
                            remote_sync_groups::repair(run, &member, &live).await?
                        }
                        OnLinked::RefreshNames => {
                            sync_accounts::refresh_names(run, &member, &live).await?
                        }
                    }
                }
                Seen::Missing(member) => mark_left(run, &member).await?,
                Seen::Unlinked(live) => note_unlinked(audit, &live),
                Seen::Failed(member, e) => note_failed(run, &member, &e),
            }
        }
    }
    Ok(true)
}
