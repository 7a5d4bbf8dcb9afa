//! What every task run shares: the guild writer (one per guild, whatever the number of
//! processes), the client context, the work mark, the resume point left by an unfinished run,
//! the report — saved as the run progresses, so a run that dies leaves its cursor — and storing
//! it.

use std::time::Instant;

use crate::app::AppState;
use crate::discord::DiscordError;
use crate::domain::{RunReport, TaskName};
use crate::service::{ClientContext, ServiceError};
use crate::store::RunLog;
use crate::work::dispatch::enqueue_wake;
use crate::work::writer::GuildWriter;

use super::TaskOptions;

/// Entries kept per list (changes, errors, group changes) in a stored report: the audit trail has
/// every change, and a report must stay a small item (DynamoDB's limit is 400 KB).
const STORED_LIST_CAP: usize = 500;
/// The same for a dry run's plan, which is only returned.
const PLAN_LIST_CAP: usize = 10_000;
/// The note of a run that stopped at its deadline or member budget (its worker enqueues the
/// continuation).
pub const TIME_LIMIT_NOTE: &str = "stopped at the time limit; the next run resumes here";
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
    /// Members a transient failure (5xx, 429, timeout) left pending: the work mark stays.
    pub left_pending: u64,
    /// The verify-groups work mark's seq this run has handled up to (pushes made while a scan
    /// holds the writer are applied between pages; see `drain_pushed`).
    pub verify_seq: Option<u64>,
    writer: Option<GuildWriter>,
    /// The seq of this task's own work mark when the run started.
    task_seq: Option<u64>,
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
        let client = app
            .store
            .get_client(client_id)
            .await?
            .ok_or(ServiceError::NotFound("client"))?;
        // Time-ordered (UUIDv7): reports started within the same second still list newest first,
        // so the resume point is the latest run's, not a random one of that second.
        let run_id = uuid::Uuid::now_v7().to_string();
        let store = app.store.clone();
        let (ctx, writer) = if options.dry_run {
            (ClientContext::for_client(app, client).await?, None)
        } else {
            let Some(writer) = GuildWriter::claim(app, &client).await? else {
                return Err(ServiceError::Busy(format!(
                    "another run is writing to the guild of client {client_id}; the work stays \
                     queued and is done by that writer or the next tick"
                )));
            };
            let ctx =
                ClientContext::for_writer(app, client, writer.limiter(), writer.lost_flags()).await;
            match ctx {
                Ok(ctx) => (ctx, Some(writer)),
                Err(e) => {
                    writer.release().await?;
                    return Err(e);
                }
            }
        };
        let now = ctx.now();
        let (task_seq, verify_seq) = if options.dry_run {
            (None, None)
        } else {
            // A weekly run marks its own work first: if it dies, the mark makes the next tick
            // resume it.
            let task_seq = if task == TaskName::VerifyGroups {
                store.get_work(client_id, task).await?.map(|w| w.seq)
            } else {
                Some(store.mark_work(client_id, task, now).await?)
            };
            // A weekly run has handled no pushed work yet: any verify mark — older than the run or
            // not — is drained between its pages (see `verify_groups::drain_pushed`).
            (task_seq, None)
        };
        let resume = if options.dry_run || !resumable {
            None
        } else {
            resume_point(app, client_id, task).await?
        };
        let mut report = RunReport::new(run_id, client_id, task, options.dry_run, now);
        report.trigger = options.trigger.clone();
        if let Some(r) = &resume {
            report
                .notes
                .push(format!("resumed an unfinished run at {r}"));
        }
        let mut run = Run {
            ctx,
            report,
            options,
            actor: format!("task:{task}"),
            resume,
            left_pending: 0,
            verify_seq,
            writer,
            task_seq,
            members_started: 0,
        };
        if resumable && !options.dry_run {
            let at = run.resume.clone();
            run.checkpoint(at).await?;
        }
        Ok(run)
    }

    /// Asked before each member: whether the run must stop here (deadline, member budget, or
    /// the writer's lease lost).
    pub fn out_of_time(&mut self) -> bool {
        self.members_started += 1;
        self.ctx.writer_lost()
            || self.options.deadline.is_some_and(|d| Instant::now() >= d)
            || self
                .options
                .max_members
                .is_some_and(|max| self.members_started > max)
    }

    /// Members this run has started on so far.
    pub fn members_seen(&self) -> u64 {
        self.members_started
    }

    /// Marks the run unfinished at `position`; the next run resumes there.
    pub fn stop_at(&mut self, position: String) {
        let why = if self.ctx.writer_lost() {
            "stopped: the guild writer's lease was lost; the next run resumes here"
        } else {
            TIME_LIMIT_NOTE
        };
        self.report.notes.push(why.into());
        self.report.cursor = Some(position);
        self.report.complete = false;
    }

    /// Saves the report as unfinished at `position`, so a run that dies (crash, deploy, Lambda
    /// timeout) is resumed there instead of starting over.
    pub async fn checkpoint(&mut self, position: Option<String>) -> Result<(), ServiceError> {
        if self.options.dry_run {
            return Ok(());
        }
        let mut saved = self.report.clone();
        saved.cursor = position;
        saved.complete = false;
        saved.finished_at = self.ctx.now();
        saved.cap_lists(STORED_LIST_CAP);
        self.ctx.app.store.put_run(&saved).await?;
        Ok(())
    }

    /// Completes the report, stores it (unless a dry run, or `store_if` says it is not worth
    /// keeping), clears the work mark when the work is done, and releases the guild writer. A
    /// rejected bot token ends the run with the report saying so; other failures (store) are
    /// returned.
    pub async fn finish(
        mut self,
        outcome: Result<(), ServiceError>,
        store_if: impl FnOnce(&RunReport) -> bool,
    ) -> Result<RunReport, ServiceError> {
        let stats = self.ctx.discord.stats();
        self.report.calls = stats.calls;
        self.report.rate_limited = stats.rate_limited;
        self.report.invalid_requests = stats.invalid_requests;
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
        let client_id = self.ctx.client.id.clone();
        let task = self.report.task;
        let stored = outcome.is_ok() && !self.options.dry_run && store_if(&self.report);
        let saved = if stored {
            store.put_run(&self.report).await
        } else {
            Ok(())
        };
        // The writer goes first, so "no work mark" always means "no writer at work" too.
        let had_writer = match self.writer.take() {
            Some(writer) => {
                writer.release().await?;
                true
            }
            None => false,
        };
        saved?;
        let done = outcome.is_ok()
            && self.report.complete
            && (task != TaskName::VerifyGroups || self.left_pending == 0);
        if let (true, Some(seq)) = (done && !self.options.dry_run, self.task_seq) {
            store.clear_work(&client_id, task, seq).await?;
        }
        if had_writer {
            // Work pushed while this run held the writer (and found it busy) is this run's to
            // hand on: the pusher's own attempt saw the lease taken.
            self.wake_if_pushed_meanwhile().await?;
        }
        outcome.map(|()| self.report)
    }

    /// Enqueues a verify-groups job when the verify mark moved since this run last handled it.
    async fn wake_if_pushed_meanwhile(&self) -> Result<(), ServiceError> {
        let app = &self.ctx.app;
        let client_id = &self.ctx.client.id;
        let now_seq = app
            .store
            .get_work(client_id, TaskName::VerifyGroups)
            .await?
            .map(|w| w.seq);
        let seen = if self.report.task == TaskName::VerifyGroups {
            self.task_seq
        } else {
            self.verify_seq
        };
        if let Some(seq) = now_seq.filter(|s| Some(*s) != seen) {
            enqueue_wake(app, client_id, seq).await;
        }
        Ok(())
    }
}

/// The newest stored (not dry) run of `task` for a client, looking back a bounded number of runs.
pub async fn latest_run(
    runs: &dyn RunLog,
    client_id: &str,
    task: TaskName,
) -> Result<Option<RunReport>, ServiceError> {
    let mut after = None;
    for _ in 0..RESUME_LOOKBACK_PAGES {
        let page = runs.list_runs(client_id, after.as_ref(), 100).await?;
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
    Ok(latest_run(app.store.as_ref(), client_id, task)
        .await?
        .filter(|r| !r.complete)
        .and_then(|r| r.cursor))
}
