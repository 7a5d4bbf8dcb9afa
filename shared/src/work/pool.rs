//! The self-hosted `JobQueue`: a bounded pool of workers in the process. One client's jobs run
//! one after another (like an SQS FIFO message group), many clients side by side, so one slow
//! guild never delays another.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::{mpsc, Semaphore};

use crate::app::AppState;

use super::queue::{JobQueue, QueueError};
use super::worker::run_job;
use super::Job;

/// How long one job may run before it stops at a cursor and queues its continuation: like a
/// Lambda invocation, so the two hosts behave alike.
pub const JOB_TIME: Duration = Duration::from_secs(240);

/// The sending side: cheap, held by the `AppState`.
pub struct LocalQueue {
    tx: mpsc::UnboundedSender<Job>,
}

/// The receiving side, turned into running workers by [`run_pool`].
pub struct PoolInbox {
    rx: mpsc::UnboundedReceiver<Job>,
}

/// A queue and its inbox. Jobs wait in the inbox until [`run_pool`] runs (tests that never start
/// a pool only see their jobs queued).
pub fn local_queue() -> (Arc<LocalQueue>, PoolInbox) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Arc::new(LocalQueue { tx }), PoolInbox { rx })
}

#[async_trait]
impl JobQueue for LocalQueue {
    async fn enqueue(&self, jobs: &[Job]) -> Result<(), QueueError> {
        for job in jobs {
            self.tx
                .send(job.clone())
                .map_err(|_| QueueError::Backend("the worker pool has stopped".into()))?;
        }
        Ok(())
    }
}

/// Per client: the jobs waiting behind the one running (one per task: a job already waiting
/// absorbs its duplicates).
#[derive(Default)]
struct Lanes {
    waiting: HashMap<String, VecDeque<Job>>,
}

/// Runs jobs from `inbox` with at most `workers` at once until the queue is dropped.
pub async fn run_pool(app: AppState, mut inbox: PoolInbox, workers: usize) {
    let permits = Arc::new(Semaphore::new(workers.max(1)));
    let lanes = Arc::new(Mutex::new(Lanes::default()));
    while let Some(job) = inbox.rx.recv().await {
        {
            let mut l = lanes.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(queue) = l.waiting.get_mut(&job.client) {
                // A job of this client is running: wait behind it, once per task.
                if !queue.iter().any(|j| j.task == job.task) {
                    queue.push_back(job);
                }
                continue;
            }
            l.waiting.insert(job.client.clone(), VecDeque::new());
        }
        let (app, permits, lanes) = (app.clone(), permits.clone(), lanes.clone());
        tokio::spawn(async move {
            let mut next = Some(job);
            while let Some(job) = next {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let deadline = Instant::now() + JOB_TIME;
                match run_job(&app, &job, Some(deadline)).await {
                    Ok(outcome) => {
                        tracing::debug!(client = %job.client, task = %job.task, ?outcome, "job done")
                    }
                    // The work mark stays: the next tick dispatches it again.
                    Err(e) => {
                        tracing::error!(client = %job.client, task = %job.task, error = %e, "job failed")
                    }
                }
                drop(permit);
                let mut l = lanes.lock().unwrap_or_else(|e| e.into_inner());
                next = l.waiting.get_mut(&job.client).and_then(VecDeque::pop_front);
                if next.is_none() {
                    l.waiting.remove(&job.client);
                }
            }
        });
    }
}
