//! A tick of the schedule: find the clients with work and hand each a job.
//!
//! - verify-groups (every 5 minutes): the store's work index lists exactly the clients with
//!   pending members or an unfinished run — O(clients with work), never a scan of every client.
//! - a weekly task: every client gets the task's work mark first (so a run that dies is
//!   resumed by the next 5-minute tick), then a job.

use std::time::Duration;

use serde::Serialize;

use crate::app::AppState;
use crate::domain::TaskName;
use crate::service::ServiceError;
use crate::store::Cursor;
use crate::tasks::run::latest_run;

use super::Job;

/// Work marks read per store page.
const PAGE: usize = 500;
/// Jobs handed to the queue per call.
const ENQUEUE_BATCH: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DispatchSummary {
    pub task: TaskName,
    pub jobs: usize,
}

/// Enqueues the jobs of one tick. `tick_id` identifies the tick (an EventBridge event id, the
/// scheduler's tick time): a tick delivered twice enqueues the same deduplication ids.
pub async fn dispatch_tick(
    app: &AppState,
    task: TaskName,
    tick_id: &str,
) -> Result<DispatchSummary, ServiceError> {
    let jobs = match task {
        TaskName::VerifyGroups => {
            let jobs = marked_jobs(app, tick_id).await?;
            enqueue_all(app, &jobs).await?;
            jobs.len()
        }
        weekly => dispatch_weekly(app, weekly, tick_id, None).await?,
    };
    Ok(DispatchSummary { task, jobs })
}

/// A weekly task's tick: marks the task's work for every client (so a run that dies is resumed
/// by the next 5-minute tick), then enqueues one job each. With `skip_completed_within` (the
/// self-hosted scheduler's first tick after a start) a client whose last run of the task
/// completed within that window is left out. Returns the jobs enqueued.
pub async fn dispatch_weekly(
    app: &AppState,
    task: TaskName,
    tick_id: &str,
    skip_completed_within: Option<Duration>,
) -> Result<usize, ServiceError> {
    let mut jobs = Vec::new();
    for client in app.store.list_clients().await? {
        if let Some(window) = skip_completed_within {
            let recent = latest_run(app, &client.id, task).await?.is_some_and(|r| {
                r.complete && app.clock.now() - r.started_at < window.as_secs() as i64
            });
            if recent {
                continue;
            }
        }
        app.store
            .mark_work(&client.id, task, app.clock.now())
            .await?;
        jobs.push(Job::new(&client.id, task, "schedule", tick_id));
    }
    enqueue_all(app, &jobs).await?;
    Ok(jobs.len())
}

/// One job per work mark: pending members, and weekly runs that did not finish.
async fn marked_jobs(app: &AppState, tick_id: &str) -> Result<Vec<Job>, ServiceError> {
    let mut jobs = Vec::new();
    let mut after: Option<Cursor> = None;
    loop {
        let page = app.store.list_work(after.as_ref(), PAGE).await?;
        jobs.extend(
            page.items
                .iter()
                .map(|mark| Job::new(&mark.client, mark.task, "schedule", tick_id)),
        );
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(jobs),
        }
    }
}

async fn enqueue_all(app: &AppState, jobs: &[Job]) -> Result<(), ServiceError> {
    for chunk in jobs.chunks(ENQUEUE_BATCH) {
        app.queue.enqueue(chunk).await?;
    }
    Ok(())
}

/// Marks verify-groups work for a client. Called BEFORE the store write that makes members
/// pending: a crash in between leaves an empty mark (one idle drain), never a pending member
/// no tick knows of.
pub async fn mark_pending(app: &AppState, client_id: &str) -> Result<u64, ServiceError> {
    Ok(app
        .store
        .mark_work(client_id, TaskName::VerifyGroups, app.clock.now())
        .await?)
}

/// Wakes the client's writer after a change was recorded. It marks the work again first: a
/// writer that read the mark between [`mark_pending`] and the change could have listed pending
/// members before the change landed and then cleared that mark — the second mark survives it
/// (the clear is conditional on the seq it read). A queue failure is only logged: the change is
/// stored and marked, so the next 5-minute tick applies it.
pub async fn wake(app: &AppState, client_id: &str) -> Result<(), ServiceError> {
    let seq = mark_pending(app, client_id).await?;
    enqueue_wake(app, client_id, seq).await;
    Ok(())
}

/// Enqueues a verify-groups job for the mark `seq` (its deduplication key). A queue failure is
/// only logged: the mark stays, so the next tick dispatches it.
pub async fn enqueue_wake(app: &AppState, client_id: &str, seq: u64) {
    let job = Job::new(
        client_id,
        TaskName::VerifyGroups,
        "wake",
        format!("seq:{seq}"),
    );
    if let Err(e) = app.queue.enqueue(&[job]).await {
        tracing::warn!(client = %client_id, error = %e, "could not wake the guild writer");
    }
}
