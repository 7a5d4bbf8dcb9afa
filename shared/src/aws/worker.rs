//! The queue worker: Lambda hands it a batch of SQS FIFO messages, each a [`Job`]; it runs them
//! in order with [`run_job`] and answers a partial batch response (`ReportBatchItemFailures`)
//! naming the messages to deliver again.
//!
//! - A job that fails (`Err`: the store or Secrets Manager failed) is reported, and so is every
//!   later message of the batch, unprocessed: SQS then redelivers them in order, so one
//!   client's jobs never overtake each other.
//! - A body that is not a job is logged (never its contents) and reported like a failure: after
//!   the queue's `maxReceiveCount` deliveries SQS moves it to the dead-letter queue.
//! - A job out of time is not a failure: `run_job` enqueues its continuation and succeeds.

use std::future::Future;

use serde::{Deserialize, Serialize};

use super::Invocation;
use crate::app::AppState;
use crate::service::ServiceError;
use crate::work::worker::run_job;
use crate::work::{webhooks, Job};

/// The SQS event Lambda's event source mapping sends (only the fields the worker reads).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct SqsEvent {
    #[serde(rename = "Records", default)]
    pub records: Vec<SqsRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsRecord {
    pub message_id: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub attributes: SqsAttributes,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SqsAttributes {
    /// How many times SQS has delivered this message, this delivery included.
    #[serde(default)]
    pub approximate_receive_count: Option<String>,
    #[serde(default)]
    pub message_group_id: Option<String>,
    #[serde(default)]
    pub message_deduplication_id: Option<String>,
}

/// Lambda's partial batch response: the messages to deliver again (none: the batch succeeded).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    pub batch_item_failures: Vec<BatchItemFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchItemFailure {
    /// The failed message's `messageId`.
    pub item_identifier: String,
}

impl BatchResponse {
    /// The ids of the messages to deliver again.
    pub fn failed_ids(&self) -> Vec<&str> {
        self.batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect()
    }
}

/// Runs the batch's jobs as guild writers, each within the invocation's deadline.
pub async fn handle(app: &AppState, event: SqsEvent, invocation: &Invocation) -> BatchResponse {
    let deadline = invocation.deadline;
    let http = webhook_http();
    handle_with(event, |job| async move {
        let outcome = run_job(app, &job, Some(deadline)).await?;
        // The client's website webhooks go out after its job (no loop runs on Lambda); their
        // trouble is logged, never the job's failure (that would run the job again).
        if let Err(e) = webhooks::deliver_for_client(app, http, &job.client, Some(deadline)).await {
            tracing::warn!(error = %e, "webhook delivery after the job failed");
        }
        Ok(outcome)
    })
    .await
}

/// One HTTP client for webhook deliveries per Lambda instance (its connection pool outlives
/// invocations).
fn webhook_http() -> &'static reqwest::Client {
    static HTTP: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    HTTP.get_or_init(webhooks::http_client)
}

/// [`handle`] with any job runner (tests script it).
pub async fn handle_with<F, Fut, O>(event: SqsEvent, mut run: F) -> BatchResponse
where
    F: FnMut(Job) -> Fut,
    Fut: Future<Output = Result<O, ServiceError>>,
    O: Serialize,
{
    let records = event.records;
    let mut failed_from = None;
    for (index, record) in records.iter().enumerate() {
        let receives = record
            .attributes
            .approximate_receive_count
            .as_deref()
            .unwrap_or("?");
        let job = match serde_json::from_str::<Job>(&record.body) {
            Ok(job) => job,
            Err(e) => {
                // The error's text may quote the body: log only where and what kind.
                tracing::error!(
                    message_id = %record.message_id,
                    receives,
                    error = ?e.classify(),
                    line = e.line(),
                    column = e.column(),
                    "message is not a job; it goes to the dead-letter queue after its last delivery"
                );
                failed_from = Some(index);
                break;
            }
        };
        let span = tracing::info_span!("job", client = %job.client, task = %job.task,
            trigger = %job.trigger, message_id = %record.message_id);
        let _entered = span.enter();
        match run(job).await {
            Ok(outcome) => {
                let outcome = serde_json::to_string(&outcome).unwrap_or_default();
                tracing::info!(%outcome, "job done");
            }
            Err(e) => {
                tracing::error!(error = %e, receives, "job failed; it and the rest of the batch are delivered again");
                failed_from = Some(index);
                break;
            }
        }
    }
    let batch_item_failures = match failed_from {
        None => Vec::new(),
        Some(first) => records[first..]
            .iter()
            .map(|r| BatchItemFailure {
                item_identifier: r.message_id.clone(),
            })
            .collect(),
    };
    if !batch_item_failures.is_empty() {
        tracing::warn!(
            failed = batch_item_failures.len(),
            of = records.len(),
            "batch partly delivered again"
        );
    }
    BatchResponse {
        batch_item_failures,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::{json, Value};

    use super::*;
    use crate::domain::TaskName;
    use crate::store::StoreError;

    const FIXTURE: &str = include_str!("../../../fixtures/events/worker.sqs.json");

    fn job(client: &str) -> Job {
        Job::new(client, TaskName::VerifyGroups, "schedule", "tick")
    }

    fn record(id: &str, body: &str) -> Value {
        json!({
            "messageId": id,
            "receiptHandle": "handle",
            "body": body,
            "attributes": {
                "ApproximateReceiveCount": "1",
                "MessageGroupId": "g",
                "MessageDeduplicationId": "d"
            },
            "messageAttributes": {},
            "md5OfBody": "x",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:work.fifo",
            "awsRegion": "us-east-1"
        })
    }

    fn event(records: Vec<Value>) -> SqsEvent {
        serde_json::from_value(json!({ "Records": records })).unwrap()
    }

    fn body(job: &Job) -> String {
        serde_json::to_string(job).unwrap()
    }

    /// Runs jobs, failing those of the named clients; records who ran.
    struct Runner {
        fail: Vec<&'static str>,
        ran: Mutex<Vec<String>>,
    }

    impl Runner {
        fn failing(fail: Vec<&'static str>) -> Self {
            Self {
                fail,
                ran: Mutex::default(),
            }
        }

        async fn run(&self, job: Job) -> Result<Value, ServiceError> {
            self.ran.lock().unwrap().push(job.client.clone());
            if self.fail.contains(&job.client.as_str()) {
                Err(ServiceError::Store(StoreError::Backend(
                    "Query: timed out".into(),
                )))
            } else {
                Ok(json!({"client": job.client}))
            }
        }

        fn ran(&self) -> Vec<String> {
            self.ran.lock().unwrap().clone()
        }
    }

    #[test]
    fn the_committed_fixture_is_an_sqs_event_with_a_job() {
        let event: SqsEvent = serde_json::from_str(FIXTURE).unwrap();
        assert_eq!(event.records.len(), 1);
        let record = &event.records[0];
        assert!(!record.message_id.is_empty());
        assert!(record.attributes.message_group_id.is_some());
        let job: Job = serde_json::from_str(&record.body).unwrap();
        assert_eq!(
            record.attributes.message_group_id.as_deref(),
            Some(job.group())
        );
        assert_eq!(
            record.attributes.message_deduplication_id,
            Some(job.dedupe_id())
        );
    }

    #[tokio::test]
    async fn a_batch_that_succeeds_reports_no_failures() {
        let runner = Runner::failing(vec![]);
        let batch = event(vec![
            record("m1", &body(&job("a"))),
            record("m2", &body(&job("b"))),
        ]);
        let response = handle_with(batch, |j| runner.run(j)).await;
        assert_eq!(response, BatchResponse::default());
        assert_eq!(runner.ran(), ["a", "b"]);
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({"batchItemFailures": []})
        );
    }

    #[tokio::test]
    async fn a_failed_job_and_every_later_message_are_delivered_again_unprocessed() {
        // given a batch whose second job fails
        let runner = Runner::failing(vec!["b"]);
        let batch = event(vec![
            record("m1", &body(&job("a"))),
            record("m2", &body(&job("b"))),
            record("m3", &body(&job("c"))),
            record("m4", &body(&job("a"))),
        ]);

        // when the worker handles it
        let response = handle_with(batch, |j| runner.run(j)).await;

        // then the failed message and all after it are reported, and none after it ran
        assert_eq!(response.failed_ids(), ["m2", "m3", "m4"]);
        assert_eq!(runner.ran(), ["a", "b"]);
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({"batchItemFailures": [
                {"itemIdentifier": "m2"}, {"itemIdentifier": "m3"}, {"itemIdentifier": "m4"}
            ]})
        );
    }

    #[tokio::test]
    async fn a_body_that_is_not_a_job_is_reported_failed() {
        let runner = Runner::failing(vec![]);
        for bad in [
            "not json",
            "{\"client\": \"a\"}",
            "",
            "{\"client\":\"a\",\"task\":\"nope\",\"trigger\":\"x\",\"dedupe\":\"y\"}",
        ] {
            let batch = event(vec![
                record("ok", &body(&job("a"))),
                record("bad", bad),
                record("later", &body(&job("b"))),
            ]);
            let response = handle_with(batch, |j| runner.run(j)).await;
            assert_eq!(response.failed_ids(), ["bad", "later"], "{bad}");
        }
        assert!(runner.ran().iter().all(|c| c == "a"), "{:?}", runner.ran());
    }

    #[tokio::test]
    async fn an_empty_event_is_a_success() {
        let runner = Runner::failing(vec![]);
        let empty: SqsEvent = serde_json::from_str("{}").unwrap();
        assert_eq!(
            handle_with(empty, |j| runner.run(j)).await,
            BatchResponse::default()
        );
    }
}
