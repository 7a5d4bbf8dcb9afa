//! The AWS `JobQueue` adapter: an SQS FIFO queue.
//!
//! - One message per job: the body is the job as JSON, the message group is the client
//!   ([`Job::group`]: one client's jobs are delivered one after another, different clients side
//!   by side) and the deduplication id is [`Job::dedupe_id`] (SQS drops a second message with
//!   the same id sent within 5 minutes: a tick delivered twice enqueues once).
//! - `SendMessageBatch`, 10 entries per call (SQS's limit). Entries SQS refuses for a passing
//!   reason are sent again, at most [`SEND_ATTEMPTS`] times in all; an entry refused as the
//!   sender's fault fails at once (sending it again cannot help). A whole call that fails has
//!   already been retried by the SDK.
//! - Errors name the operation and the AWS error codes, never a message body.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_sdk_sqs::Client as SqsClient;

use super::{Job, JobQueue, QueueError};
use crate::aws::sdk_error_message;

/// SQS accepts at most 10 entries per `SendMessageBatch`.
pub const MAX_BATCH: usize = 10;
/// How many times an entry SQS refused for a passing reason is sent, the first time included.
pub const SEND_ATTEMPTS: u32 = 4;
/// Pause before the first resend; doubled for each further one.
const RESEND_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: SqsClient,
    queue_url: String,
}

impl SqsQueue {
    pub fn new(client: SqsClient, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// One `SendMessageBatch` call; returns the entries SQS refused.
    async fn send_batch(
        &self,
        entries: Vec<SendMessageBatchRequestEntry>,
    ) -> Result<Vec<Refused>, QueueError> {
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| QueueError::Backend(sdk_error_message("SendMessageBatch", &e)))?;
        Ok(out
            .failed()
            .iter()
            .map(|f| Refused {
                id: f.id().to_owned(),
                code: f.code().to_owned(),
                sender_fault: f.sender_fault(),
            })
            .collect())
    }
}

#[async_trait]
impl JobQueue for SqsQueue {
    async fn enqueue(&self, jobs: &[Job]) -> Result<(), QueueError> {
        for chunk in jobs.chunks(MAX_BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, job)| entry(i, job))
                .collect::<Result<Vec<_>, _>>()?;
            send_with_resends(entries, |batch| self.send_batch(batch)).await?;
        }
        Ok(())
    }
}

/// The batch entry of `job`, with id `index` (unique within its batch).
fn entry(index: usize, job: &Job) -> Result<SendMessageBatchRequestEntry, QueueError> {
    let body = serde_json::to_string(job)
        .map_err(|_| QueueError::Backend("SendMessageBatch: cannot encode a job".into()))?;
    SendMessageBatchRequestEntry::builder()
        .id(index.to_string())
        .message_body(body)
        .message_group_id(job.group())
        .message_deduplication_id(job.dedupe_id())
        .build()
        .map_err(|_| QueueError::Backend("SendMessageBatch: cannot build an entry".into()))
}

/// An entry `SendMessageBatch` did not accept.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refused {
    id: String,
    code: String,
    /// SQS says the request itself is wrong: sending it again cannot succeed.
    sender_fault: bool,
}

/// Sends `entries` with `send` (one `SendMessageBatch` call), then sends again only the entries
/// refused for a passing reason, up to [`SEND_ATTEMPTS`] calls in all.
async fn send_with_resends<F, Fut>(
    mut pending: Vec<SendMessageBatchRequestEntry>,
    mut send: F,
) -> Result<(), QueueError>
where
    F: FnMut(Vec<SendMessageBatchRequestEntry>) -> Fut,
    Fut: Future<Output = Result<Vec<Refused>, QueueError>>,
{
    let mut attempt = 1;
    loop {
        let refused = send(pending.clone()).await?;
        if refused.is_empty() {
            return Ok(());
        }
        let codes = || {
            let mut codes: Vec<&str> = refused.iter().map(|r| r.code.as_str()).collect();
            codes.sort_unstable();
            codes.dedup();
            codes.join(", ")
        };
        if refused.iter().any(|r| r.sender_fault) {
            return Err(QueueError::Backend(format!(
                "SendMessageBatch: {} of {} entries refused: {}",
                refused.len(),
                pending.len(),
                codes()
            )));
        }
        if attempt >= SEND_ATTEMPTS {
            return Err(QueueError::Backend(format!(
                "SendMessageBatch: {} entries still refused after {attempt} attempts: {}",
                refused.len(),
                codes()
            )));
        }
        pending.retain(|e| refused.iter().any(|r| r.id == e.id()));
        tokio::time::sleep(RESEND_BACKOFF * 2u32.pow(attempt - 1)).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::domain::TaskName;

    fn entries(n: usize) -> Vec<SendMessageBatchRequestEntry> {
        (0..n)
            .map(|i| entry(i, &Job::new("c", TaskName::VerifyGroups, "schedule", "t")).unwrap())
            .collect()
    }

    fn refused(id: &str, code: &str, sender_fault: bool) -> Refused {
        Refused {
            id: id.into(),
            code: code.into(),
            sender_fault,
        }
    }

    /// A fake `SendMessageBatch` answering from a script and recording the ids of each call.
    struct Script {
        answers: Mutex<Vec<Result<Vec<Refused>, QueueError>>>,
        calls: Mutex<Vec<Vec<String>>>,
    }

    impl Script {
        fn new(answers: Vec<Result<Vec<Refused>, QueueError>>) -> Self {
            Self {
                answers: Mutex::new(answers),
                calls: Mutex::default(),
            }
        }

        async fn send(
            &self,
            batch: Vec<SendMessageBatchRequestEntry>,
        ) -> Result<Vec<Refused>, QueueError> {
            self.calls
                .lock()
                .unwrap()
                .push(batch.iter().map(|e| e.id().to_owned()).collect());
            let mut answers = self.answers.lock().unwrap();
            if answers.is_empty() {
                Ok(vec![])
            } else {
                answers.remove(0)
            }
        }

        fn calls(&self) -> Vec<Vec<String>> {
            self.calls.lock().unwrap().clone()
        }
    }

    #[test]
    fn an_entry_carries_the_job_its_group_and_dedupe_id() {
        let job = Job::new("acme", TaskName::SyncAccounts, "schedule", "tick-1");
        let e = entry(3, &job).unwrap();
        assert_eq!(e.id(), "3");
        assert_eq!(e.message_group_id(), Some("acme"));
        assert_eq!(e.message_deduplication_id(), Some(job.dedupe_id().as_str()));
        assert_eq!(serde_json::from_str::<Job>(e.message_body()).unwrap(), job);
    }

    #[tokio::test]
    async fn only_refused_entries_are_sent_again() {
        let script = Script::new(vec![
            Ok(vec![
                refused("1", "InternalError", false),
                refused("3", "ServiceUnavailable", false),
            ]),
            Ok(vec![refused("3", "ServiceUnavailable", false)]),
        ]);
        send_with_resends(entries(4), |b| script.send(b))
            .await
            .unwrap();
        assert_eq!(
            script.calls(),
            vec![vec!["0", "1", "2", "3"], vec!["1", "3"], vec!["3"]]
        );
    }

    #[tokio::test]
    async fn an_entry_refused_every_time_fails_with_its_code() {
        let always = || Ok(vec![refused("0", "InternalError", false)]);
        let script = Script::new((0..SEND_ATTEMPTS).map(|_| always()).collect());
        let QueueError::Backend(message) = send_with_resends(entries(2), |b| script.send(b))
            .await
            .unwrap_err();
        assert!(message.starts_with("SendMessageBatch:"), "{message}");
        assert!(message.contains("InternalError"), "{message}");
        assert_eq!(script.calls().len(), SEND_ATTEMPTS as usize);
    }

    #[tokio::test]
    async fn the_senders_fault_is_not_sent_again() {
        let script = Script::new(vec![Ok(vec![refused("1", "InvalidParameterValue", true)])]);
        let QueueError::Backend(message) = send_with_resends(entries(2), |b| script.send(b))
            .await
            .unwrap_err();
        assert!(message.contains("InvalidParameterValue"), "{message}");
        assert!(!message.contains("verify-groups"), "no body: {message}");
        assert_eq!(script.calls().len(), 1);
    }

    #[tokio::test]
    async fn a_failed_call_is_returned_as_is() {
        let script = Script::new(vec![Err(QueueError::Backend(
            "SendMessageBatch: AccessDenied".into(),
        ))]);
        let err = send_with_resends(entries(1), |b| script.send(b))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "queue backend failure: SendMessageBatch: AccessDenied"
        );
    }
}
