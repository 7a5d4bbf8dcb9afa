//! A tick of the schedule: find the clients with work and hand each a job.
//!
//! - verify-groups (every 5 minutes): the store's work index lists exactly the clients with
//!   pending members or an unfinished run — O(clients with work), never a scan of every client.
//! - a weekly task: every client gets the task's work mark first (so a run that dies is
//!   resumed by the next 5-minute tick), then a job.
//!
//! A tick needs only [`Dispatch`]: the store's client list, run log, leases and work index, the
//! queue and the clock. The Lambda dispatchers build nothing more (no secrets, no Discord
//! client); the self-hosted scheduler takes it from its state ([`AppState::dispatch`]).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::app::AppState;
use crate::clock::Clock;
use crate::domain::TaskName;
use crate::service::ServiceError;
use crate::store::{ClientCatalog, Cursor, Leases, RunLog, WorkIndex};
use crate::tasks::run::latest_run;

use super::{Job, JobQueue};

/// Work marks read per store page.
const PAGE: usize = 500;
/// Jobs handed to the queue per call.
const ENQUEUE_BATCH: usize = 100;

/// What a tick reads and writes: four of the store's ports, the queue and the clock.
#[derive(Clone)]
pub struct Dispatch {
    /// Every client, for the weekly ticks.
    pub clients: Arc<dyn ClientCatalog>,
    /// The last runs, for the self-hosted scheduler's first weekly tick after a start.
    pub runs: Arc<dyn RunLog>,
    /// The Lambda dispatchers' delivery leases (`aws::events`).
    pub leases: Arc<dyn Leases>,
    pub work: Arc<dyn WorkIndex>,
    pub queue: Arc<dyn JobQueue>,
    pub clock: Arc<dyn Clock>,
}

impl Dispatch {
    /// The ports of one store adapter (`DynamoStore`, `SqliteStore`).
    pub fn new<S>(store: Arc<S>, queue: Arc<dyn JobQueue>, clock: Arc<dyn Clock>) -> Self
    where
        S: ClientCatalog + RunLog + Leases + WorkIndex + 'static,
    {
        Self {
            clients: store.clone(),
            runs: store.clone(),
            leases: store.clone(),
            work: store,
            queue,
            clock,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DispatchSummary {
    pub task: TaskName,
    pub jobs: usize,
}

/// Enqueues the jobs of one tick. `tick_id` identifies the tick (an EventBridge event id, the
/// scheduler's tick time): a tick delivered twice enqueues the same deduplication ids.
pub async fn dispatch_tick(
    dispatch: &Dispatch,
    task: TaskName,
    tick_id: &str,
) -> Result<DispatchSummary, ServiceError> {
    let jobs = match task {
        TaskName::VerifyGroups => {
            let jobs = marked_jobs(dispatch.work.as_ref(), tick_id).await?;
            enqueue_all(dispatch.queue.as_ref(), &jobs).await?;
            jobs.len()
        }
        weekly => dispatch_weekly(dispatch, weekly, tick_id, None).await?,
    };
    Ok(DispatchSummary { task, jobs })
}

/// A weekly task's tick: marks the task's work for every client (so a run that dies is resumed
/// by the next 5-minute tick), then enqueues one job each. With `skip_completed_within` (the
/// self-hosted scheduler's first tick after a start) a client whose last run of the task
/// completed within that window is left out. Returns the jobs enqueued.
pub async fn dispatch_weekly(
    dispatch: &Dispatch,
    task: TaskName,
    tick_id: &str,
    skip_completed_within: Option<Duration>,
) -> Result<usize, ServiceError> {
    let Dispatch {
        clients,
        runs,
        work,
        clock,
        ..
    } = dispatch;
    let mut jobs = Vec::new();
    for client in clients.list_clients().await? {
        if let Some(window) = skip_completed_within {
            let recent = latest_run(runs.as_ref(), &client.id, task)
                .await?
                .is_some_and(|r| {
                    r.complete && clock.now() - r.started_at < window.as_secs() as i64
                });
            if recent {
                continue;
            }
        }
        work.mark_work(&client.id, task, clock.now()).await?;
        jobs.push(Job::new(&client.id, task, "schedule", tick_id));
    }
    enqueue_all(dispatch.queue.as_ref(), &jobs).await?;
    Ok(jobs.len())
}

/// One job per work mark: pending members, and weekly runs that did not finish.
async fn marked_jobs(work: &dyn WorkIndex, tick_id: &str) -> Result<Vec<Job>, ServiceError> {
    let mut jobs = Vec::new();
    let mut after: Option<Cursor> = None;
    loop {
        let page = work.list_work(after.as_ref(), PAGE).await?;
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

async fn enqueue_all(queue: &dyn JobQueue, jobs: &[Job]) -> Result<(), ServiceError> {
    for chunk in jobs.chunks(ENQUEUE_BATCH) {
        queue.enqueue(chunk).await?;
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

/// After a change that may alter what any linked member should carry (a role mapping,
/// `roles/sync`, Linked Roles): marks the client's work, then every linked member pending (the
/// mark first, so no tick can miss them), and wakes the guild's writer. Costs store work only;
/// Discord is called just for members whose plan really changed.
pub async fn recheck_all_linked(app: &AppState, client_id: &str) -> Result<(), ServiceError> {
    mark_pending(app, client_id).await?;
    app.store
        .mark_all_linked_pending(client_id, app.clock.now())
        .await?;
    wake(app, client_id).await
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
