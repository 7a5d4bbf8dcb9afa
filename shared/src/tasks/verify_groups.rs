//! verify-groups (every 5 minutes): applies the plan of every pending member, and only those.

use crate::app::AppState;
use crate::domain::Count;
use crate::domain::{RunReport, TaskName};
use crate::service::reconcile::reconcile_member;
use crate::service::ServiceError;
use crate::store::Cursor;

use super::outcomes::tally;
use super::run::Run;
use super::TaskOptions;

const PAGE: usize = 100;

pub async fn run(
    app: &AppState,
    client_id: &str,
    options: &TaskOptions,
) -> Result<RunReport, ServiceError> {
    let mut run = Run::start(app, TaskName::VerifyGroups, client_id, options, false).await?;
    let outcome = apply_pending(&mut run).await;
    // A run that found nothing pending is not worth a stored report every 5 minutes.
    run.finish(outcome, |r| {
        !r.counts.is_empty() || !r.errors.is_empty() || !r.complete
    })
    .await
}

/// Applies changes pushed while a weekly scan holds the guild's writer (the pusher found it
/// busy): between two member-list pages, when the verify-groups mark moved since the run last
/// looked. Counted as `pushed_applied`.
pub async fn drain_pushed(run: &mut Run<'_>) -> Result<(), ServiceError> {
    if run.options.dry_run {
        return Ok(());
    }
    let store = run.ctx.app.store.clone();
    let client_id = run.ctx.client.id.clone();
    let Some(mark) = store.get_work(&client_id, TaskName::VerifyGroups).await? else {
        return Ok(());
    };
    if Some(mark.seq) == run.verify_seq {
        return Ok(());
    }
    let mut after: Option<Cursor> = None;
    let mut left_pending = false;
    loop {
        let page = store.list_pending(&client_id, after.as_ref(), PAGE).await?;
        for member in &page.items {
            let late = run
                .options
                .deadline
                .is_some_and(|d| std::time::Instant::now() >= d);
            if run.ctx.writer_lost() || late {
                // The mark stays: the next writer (or this run's continuation) finishes it.
                return Ok(());
            }
            let r = reconcile_member(&run.ctx, member, &run.actor, false).await?;
            run.report.count(Count::PushedApplied);
            left_pending |= r.still_pending;
            run.report.errors.extend(r.errors);
            run.report.changes.extend(r.change);
            run.report.changes.extend(r.former);
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    run.verify_seq = Some(mark.seq);
    if !left_pending {
        store
            .clear_work(&client_id, TaskName::VerifyGroups, mark.seq)
            .await?;
    }
    Ok(())
}

/// Passes over the pending index in one run: a member whose groups changed while the writer
/// worked on them is visited again at once (bounded, for a site that pushes without pause).
const MAX_PASSES: usize = 5;

async fn apply_pending(run: &mut Run<'_>) -> Result<(), ServiceError> {
    for _ in 0..MAX_PASSES {
        let mut after: Option<Cursor> = None;
        let mut superseded = false;
        loop {
            let page = run
                .ctx
                .app
                .store
                .list_pending(&run.ctx.client.id, after.as_ref(), PAGE)
                .await?;
            for member in &page.items {
                if run.out_of_time() {
                    // Pending members stay pending: the next run picks them up from the index.
                    run.stop_at(member.user.user_id.clone());
                    return Ok(());
                }
                run.report.count(Count::Examined);
                let r = reconcile_member(&run.ctx, member, &run.actor, run.options.dry_run).await?;
                superseded |= r.superseded;
                tally(run, r);
            }
            match page.next {
                // Handled members leave the pending index, so paging by the last id still
                // visits every member exactly once per pass.
                Some(next) => after = Some(next),
                None => break,
            }
        }
        if !superseded || run.options.dry_run {
            run.report.complete = true;
            return Ok(());
        }
    }
    // Still being changed: the mark stays and the push's own wake-up brings the writer back.
    run.left_pending += 1;
    run.report.complete = true;
    Ok(())
}
