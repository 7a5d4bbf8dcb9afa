//! verify-groups (every 5 minutes): applies the plan of every pending member, and only those.

use crate::app::AppState;
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

async fn apply_pending(run: &mut Run<'_>) -> Result<(), ServiceError> {
    let mut after: Option<Cursor> = None;
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
            run.report.count("examined");
            let r = reconcile_member(&run.ctx, member, &run.actor, run.options.dry_run).await?;
            tally(run, r);
        }
        match page.next {
            // Handled members leave the pending index, so paging by the last id still visits
            // every member exactly once.
            Some(next) => after = Some(next),
            None => {
                run.report.complete = true;
                return Ok(());
            }
        }
    }
}
