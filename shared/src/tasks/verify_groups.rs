//! verify-groups (every 5 minutes): applies the plan of every pending member, and only those.

use std::time::Instant;

use crate::app::AppState;
use crate::domain::{RunReport, TaskName};
use crate::service::reconcile::reconcile_member;
use crate::service::{ClientContext, ServiceError};
use crate::store::Cursor;

use super::TaskOptions;

const PAGE: usize = 100;
/// Longest a run may hold the lease if its host dies mid-run.
const LEASE_SECS: i64 = 15 * 60;

pub async fn run(
    app: &AppState,
    client_id: &str,
    options: &TaskOptions,
) -> Result<RunReport, ServiceError> {
    let ctx = ClientContext::load(app, client_id).await?;
    let run_id = uuid::Uuid::new_v4().to_string();
    let lease = format!("task:{}:{client_id}", TaskName::VerifyGroups);
    if !options.dry_run
        && !app
            .store
            .acquire_lease(&lease, &run_id, app.clock.now(), LEASE_SECS)
            .await?
    {
        return Err(ServiceError::Busy(format!(
            "verify-groups is already running for client {client_id}"
        )));
    }
    let result = run_locked(&ctx, &run_id, options).await;
    if !options.dry_run {
        app.store.release_lease(&lease, &run_id).await?;
    }
    result
}

async fn run_locked(
    ctx: &ClientContext,
    run_id: &str,
    options: &TaskOptions,
) -> Result<RunReport, ServiceError> {
    let store = ctx.app.store.as_ref();
    let actor = format!("task:{}", TaskName::VerifyGroups);
    let mut report = RunReport::new(
        run_id.to_owned(),
        &ctx.client.id,
        TaskName::VerifyGroups,
        options.dry_run,
        ctx.now(),
    );
    report.trigger = options.trigger.clone();
    let mut after: Option<Cursor> = None;
    let mut fatal: Option<ServiceError> = None;
    'pages: loop {
        let page = store
            .list_pending(&ctx.client.id, after.as_ref(), PAGE)
            .await?;
        for member in &page.items {
            if options.deadline.is_some_and(|d| Instant::now() >= d) {
                report.cursor = Some(Cursor::encode(&member.user.user_id).as_str().to_owned());
                report.notes.push(
                    "stopped at the time limit; the rest stays pending for the next run".into(),
                );
                break 'pages;
            }
            report.count("examined");
            match reconcile_member(ctx, member, &actor, options.dry_run).await {
                Ok(r) => {
                    if r.left {
                        report.count("left");
                    } else if r.still_pending {
                        report.count("failed");
                    } else if r.change.is_some() {
                        report.count("changed");
                    } else {
                        report.count("unchanged");
                    }
                    report.errors.extend(r.errors);
                    report.changes.extend(r.change);
                }
                Err(e) => {
                    report.count("failed");
                    report.notes.push(format!("stopped: {e}"));
                    fatal = Some(e);
                    break 'pages;
                }
            }
        }
        match page.next {
            // In a real run, handled members leave the pending index, so paging by the last id
            // still visits every member exactly once.
            Some(next) => after = Some(next),
            None => {
                report.complete = true;
                break;
            }
        }
    }
    let stats = ctx.discord.stats();
    report.calls = stats.calls;
    report.rate_limited = stats.rate_limited;
    report.finished_at = ctx.now();
    if !options.dry_run {
        store.put_run(&report).await?;
    }
    match fatal {
        Some(e @ ServiceError::Discord(_)) => {
            tracing::error!(client = %ctx.client.id, task = "verify-groups", error = %e, "run stopped");
            Ok(report)
        }
        Some(e) => Err(e),
        None => Ok(report),
    }
}
