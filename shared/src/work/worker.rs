//! Runs one job: the task as the guild's writer, within a deadline. A run that runs out of time
//! enqueues its own continuation (it resumes from its stored cursor) instead of waiting for the
//! next tick.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::app::AppState;
use crate::service::ServiceError;
use crate::tasks::run::TIME_LIMIT_NOTE;
use crate::tasks::{run_task, TaskOptions};

use super::Job;

/// What became of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum JobOutcome {
    /// The run finished (or stopped on a Discord failure that its report explains).
    Done { run_id: String, complete: bool },
    /// Stopped at the deadline; the continuation is queued.
    Continued { run_id: String, cursor: String },
    /// Another writer held the guild (or every writer slot of the bot was taken) for as long as
    /// the job waits: the work stays marked and the next tick does it.
    Busy,
    /// The client was deleted meanwhile.
    ClientGone,
}

/// Runs `job`. `Err` is an infrastructure failure (store, secrets, queue): the delivery should be
/// retried.
pub async fn run_job(
    app: &AppState,
    job: &Job,
    deadline: Option<Instant>,
) -> Result<JobOutcome, ServiceError> {
    let options = TaskOptions {
        dry_run: false,
        deadline,
        trigger: job.trigger.clone(),
        max_members: None,
    };
    let report = match run_when_free(app, job, &options, deadline).await {
        Ok(report) => report,
        Err(ServiceError::Busy(m)) => {
            tracing::info!(client = %job.client, task = %job.task, "{m}");
            return Ok(JobOutcome::Busy);
        }
        Err(ServiceError::NotFound("client")) => return Ok(JobOutcome::ClientGone),
        Err(ServiceError::BotBusy) => {
            tracing::info!(client = %job.client, task = %job.task, "bot busy: left to the next tick");
            return Ok(JobOutcome::Busy);
        }
        Err(e) => return Err(e),
    };
    let ran_out = !report.complete && report.notes.iter().any(|n| n == TIME_LIMIT_NOTE);
    match (&report.cursor, ran_out) {
        (Some(cursor), true) => {
            let next = Job::new(
                &job.client,
                job.task,
                "continuation",
                format!("{}:{cursor}", report.id),
            );
            app.queue.enqueue(&[next]).await?;
            Ok(JobOutcome::Continued {
                run_id: report.id,
                cursor: cursor.clone(),
            })
        }
        _ => Ok(JobOutcome::Done {
            run_id: report.id,
            complete: report.complete,
        }),
    }
}

/// How long a job waits for its guild's writer and one of its bot's writer slots before leaving
/// the work to the next tick, and how often it looks.
const FREE_WAIT: Duration = Duration::from_secs(60);
const FREE_POLL: Duration = Duration::from_secs(2);

/// Runs the task, waiting (within the job's time) while it cannot write yet: another writer holds
/// the guild — another client of the same guild, whose writer hands nothing on to this client's
/// work, or a writer of this client in another instance — or every writer slot of the bot is
/// taken (more guilds with work than the bot's global budget serves at once). Both free up as
/// writers finish; waiting here spares the work a 5-minute wait for the next tick.
async fn run_when_free(
    app: &AppState,
    job: &Job,
    options: &TaskOptions,
    deadline: Option<Instant>,
) -> Result<crate::domain::RunReport, ServiceError> {
    let give_up = Instant::now() + FREE_WAIT;
    loop {
        match run_task(app, job.task, &job.client, options).await {
            Err(e @ (ServiceError::BotBusy | ServiceError::Busy(_))) => {
                let next = Instant::now() + FREE_POLL;
                if next >= give_up || deadline.is_some_and(|d| next >= d) {
                    return Err(e);
                }
                tokio::time::sleep(FREE_POLL).await;
            }
            other => return other,
        }
    }
}
