//! The write path: work is recorded in the store, handed to a worker through a queue, and done
//! by the guild's single writer.
//!
//! - [`Job`] — run one task for one client; [`JobQueue`] — the port that carries jobs (the
//!   in-process [`pool`] self-hosted, SQS FIFO on AWS: `sqs`).
//! - [`dispatch`] — a tick finds the clients with work in the store's work index (not a scan of
//!   every client) and enqueues one job each.
//! - [`worker`] — runs one job within a deadline and enqueues its own continuation when time
//!   runs out.
//! - [`lease`] — store leases kept alive by a heartbeat; [`writer`] — the guild writer's lease,
//!   its share of the bot's global budget and the rate-limit knowledge handed over with it.

pub mod dispatch;
pub mod job;
pub mod lease;
pub mod pool;
pub mod queue;
#[cfg(feature = "aws")]
pub mod sqs;
pub mod webhooks;
pub mod worker;
pub mod writer;

pub use job::Job;
pub use queue::{JobQueue, QueueError};
