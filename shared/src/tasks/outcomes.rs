//! Per-member bookkeeping the weekly scans share.

use crate::discord::GuildMember;
use crate::domain::Count;
use crate::domain::{GuildAudit, LinkStatus, Member};
use crate::service::reconcile::{record_left, run_error, Reconciliation};
use crate::service::ServiceError;

use super::run::Run;

const UNLINKED_SAMPLE: usize = 1000;

/// A linked member who is no longer in the guild becomes `left` (and is not retried).
pub async fn mark_left(run: &mut Run<'_>, member: &Member) -> Result<(), ServiceError> {
    if member.active_link().is_none() {
        return Ok(());
    }
    run.report.count(Count::Left);
    if run.options.dry_run {
        return Ok(());
    }
    record_left(&run.ctx, member, &run.actor).await?;
    Ok(())
}

pub fn note_unlinked(audit: &mut GuildAudit, live: &GuildMember) {
    audit.members_seen += 1;
    audit.unlinked += 1;
    if audit.unlinked_sample.len() < UNLINKED_SAMPLE {
        if let Some(u) = &live.user {
            audit.unlinked_sample.push(u.id.clone());
        }
    }
}

pub fn note_failed(run: &mut Run<'_>, member: &Member, e: &crate::discord::DiscordError) {
    run.report.count(Count::Failed);
    run.report.errors.push(run_error(member, e));
}

/// Counts a reconciliation by outcome and keeps its errors and change.
pub fn tally(run: &mut Run<'_>, r: Reconciliation) {
    let outcome = if r.left {
        Count::Left
    } else if r.still_pending {
        run.left_pending += 1;
        Count::Failed
    } else if r.change.is_some() || !r.former.is_empty() {
        Count::Changed
    } else {
        Count::Unchanged
    };
    run.report.count(outcome);
    run.report.errors.extend(r.errors);
    run.report.changes.extend(r.change);
    run.report.changes.extend(r.former);
}

/// A copy of the member whose `left` link is active again (they came back to the guild).
pub fn returned(member: &Member) -> Member {
    let mut m = member.clone();
    if let Some(l) = m.link.as_mut().filter(|l| l.status == LinkStatus::Left) {
        l.status = LinkStatus::Active;
    }
    m
}
