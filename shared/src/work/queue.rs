//! The `JobQueue` port: how the API, the dispatcher and a run out of time hand work to a worker.
//! Adapters: the in-process pool (`work::pool`, self-hosted) and SQS FIFO (`work::sqs`, AWS).

use async_trait::async_trait;

use super::Job;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue backend failure: {0}")]
    Backend(String),
}

#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Hands the jobs over; each reaches a worker at least once. Jobs of one client run one
    /// after another; different clients run side by side.
    async fn enqueue(&self, jobs: &[Job]) -> Result<(), QueueError>;
}
