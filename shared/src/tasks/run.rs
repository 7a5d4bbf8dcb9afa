//! What every task run shares: the client context, a lease against overlapping runs, the resume
//! point left by an unfinished run, the report, and storing it.

use std::time::Instant;

use crate::app::AppState;
use crate::discord::DiscordError;
use crate::domain::{RunReport, TaskName};
use crate::service::{ClientContext, ServiceError};

use super::TaskOptions;

/// Longest a run may hold the lease if its host dies mid-run.
const LEASE_SECS: i64 = 15 * 60;
/// Entries kept per list (changes, errors, group changes) in a stored report: the audit trail has
/// every change, and a report must stay a small item (DynamoDB's limit is 400 KB).
const STORED_LIST_CAP: usize = 500;
/// The same for a dry run's plan, which is only returned.
const PLAN_LIST_CAP: usize = 10_000;
/// How far back to look for an unfinished run to resume.
const RESUME_LOOKBACK_PAGES: usize = 5;

pub struct Run<'a> {
    pub ctx: ClientContext,
    pub report: RunReport,
    pub options: &'a TaskOptions,
    /// The audit actor: `task:<name>`.
    pub actor: String,
    /// Where the last unfinished run of this task stopped.
    pub resume: Option<String>,
    lease: Option<String>,
    members_started: u64,
}

impl<'a> Run<'a> {
    pub async fn start(
        app: &AppState,
        task: TaskName,
        client_id: &str,
        options: &'a TaskOptions,
        resumable: bool,
    ) -> Result<Run<'a>, ServiceError> {
        let ctx = ClientContext::load(app, client_id).await?;
        let run_id = uuid::Uuid::new_v4().to_string();
        let lease = if options.dry_run {
            None
        } else {
            let name = format!("task:{task}:{client_id}");
            if !app
                .store
                .acquire_lease(&name, &run_id, app.clock.now(), LEASE_SECS)
                .await?
            {
                return Err(ServiceError::Busy(format!(
                    "{task} is already running for client {client_id}"
                )));
            }
            Some(name)
        };
        let resume = if options.dry_run || !resumable {
            None
        } else {
            resume_point(app, client_id, task).await?
        };
        let mut report = RunReport::new(run_id, client_id, task, options.dry_run, ctx.now());
        report.trigger = options.trigger.clone();
        if let Some(r) = &resume {
            report
                .notes
                .push(format!("resumed an unfinished run at {r}"));
        }
        Ok(Run {
            ctx,
            report,
            options,
            actor: format!("task:{task}"),
            resume,
            lease,
            members_started: 0,
        })
    }

    /// Asked before each member: whether the run must stop here (deadline or member budget).
    pub fn out_of_time(&mut self) -> bool {
        self.members_started += 1;
        self.options.deadline.is_some_and(|d| Instant::now() >= d)
            || self
                .options
                .max_members
                .is_some_and(|max| self.members_started > max)
    }

    /// Marks the run unfinished at `position`; the next run resumes there.
    pub fn stop_at(&mut self, position: String) {
        self.report
            .notes
            .push("stopped at the time limit; the next run resumes here".into());
        self.report.cursor = Some(position);
        self.report.complete = false;
    }

    /// Completes the report, stores it (unless a dry run, or `store_if` says it is not worth
    /// keeping) and releases the lease. A rejected bot token ends the run with the report saying
    /// so; other failures (store) are returned.
    pub async fn finish(
        mut self,
        outcome: Result<(), ServiceError>,
        store_if: impl FnOnce(&RunReport) -> bool,
    ) -> Result<RunReport, ServiceError> {
        let stats = self.ctx.discord.stats();
        self.report.calls = stats.calls;
        self.report.rate_limited = stats.rate_limited;
        self.report.finished_at = self.ctx.now();
        let outcome = match outcome {
            Err(ServiceError::Discord(e)) => {
                tracing::error!(client = %self.ctx.client.id, task = %self.report.task, error = %e, "run stopped");
                self.report.notes.push(format!("stopped: {e}"));
                self.report.complete = false;
                if !matches!(e, DiscordError::BotTokenRejected) && self.report.cursor.is_none() {
                    self.report.cursor = self.resume.clone();
                }
                Ok(())
            }
            other => other,
        };
        self.report.cap_lists(if self.options.dry_run {
            PLAN_LIST_CAP
        } else {
            STORED_LIST_CAP
        });
        let store = self.ctx.app.store.clone();
        if outcome.is_ok() && !self.options.dry_run && store_if(&self.report) {
            store.put_run(&self.report).await?;
        }
        if let Some(lease) = &self.lease {
            store.release_lease(lease, &self.report.id).await?;
        }
        outcome.map(|()| self.report)
    }
}

/// The newest stored (not dry) run of `task` for a client, looking back a bounded number of runs.
pub async fn latest_run(
    app: &AppState,
    client_id: &str,
    task: TaskName,
) -> Result<Option<RunReport>, ServiceError> {
    let mut after = None;
    for _ in 0..RESUME_LOOKBACK_PAGES {
        let page = app.store.list_runs(client_id, after.as_ref(), 100).await?;
        if let Some(last) = page
            .items
            .into_iter()
            .find(|r| r.task == task && !r.dry_run)
        {
            return Ok(Some(last));
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok(None)
}

/// The cursor of the newest run of `task`, if that run did not finish.
async fn resume_point(
    app: &AppState,
    client_id: &str,
    task: TaskName,
) -> Result<Option<String>, ServiceError> {
    Ok(latest_run(app, client_id, task)
        .await?
        .filter(|r| !r.complete)
        .and_then(|r| r.cursor))
}
