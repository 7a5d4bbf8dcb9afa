//! The SQS work queue adapter (`connector::work::sqs::SqsQueue`) against moto's SQS: a FIFO
//! queue and its dead-letter queue shaped like template.yaml's.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use connector::aws::aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use connector::aws::aws_sdk_sqs::Client as SqsClient;
use connector::domain::TaskName;
use connector::work::sqs::SqsQueue;
use connector::work::{Job, JobQueue, QueueError};
use connector_e2e::moto::{moto, unique_name, WorkQueues};

async fn queues(max_receives: u32, visibility_secs: u32) -> (SqsClient, WorkQueues) {
    let server = moto().await;
    let queues = server
        .work_queues(&unique_name("work"), max_receives, visibility_secs)
        .await;
    (server.sqs(), queues)
}

fn job(client: &str, dedupe: &str) -> Job {
    Job::new(client, TaskName::VerifyGroups, "schedule", dedupe)
}

/// Up to 10 messages now (no long polling), with their system attributes.
async fn receive(sqs: &SqsClient, url: &str) -> Vec<Message> {
    sqs.receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .expect("receive")
        .messages
        .unwrap_or_default()
}

async fn delete(sqs: &SqsClient, url: &str, messages: &[Message]) {
    for m in messages {
        sqs.delete_message()
            .queue_url(url)
            .receipt_handle(m.receipt_handle().expect("receipt handle"))
            .send()
            .await
            .expect("delete");
    }
}

/// Receives and deletes until `expected` messages came or 10 s passed.
async fn drain(sqs: &SqsClient, url: &str, expected: usize) -> Vec<Message> {
    let started = Instant::now();
    let mut all = Vec::new();
    while all.len() < expected && started.elapsed() < Duration::from_secs(10) {
        let batch = receive(sqs, url).await;
        delete(sqs, url, &batch).await;
        all.extend(batch);
    }
    all
}

fn attribute(m: &Message, name: MessageSystemAttributeName) -> &str {
    m.attributes()
        .and_then(|a| a.get(&name))
        .map(String::as_str)
        .unwrap_or_default()
}

fn body(m: &Message) -> Job {
    serde_json::from_str(m.body().expect("body")).expect("the body is a job")
}

#[tokio::test]
async fn a_job_arrives_as_json_in_its_clients_group_with_its_dedupe_id() {
    // given a FIFO work queue
    let (sqs, q) = queues(5, 30).await;
    let queue = SqsQueue::new(sqs.clone(), &q.url);
    let jobs = [job("acme", "tick-1"), job("globex", "tick-1")];

    // when two clients' jobs are enqueued
    queue.enqueue(&jobs).await.expect("enqueued");

    // then each arrives once, as JSON, grouped by client, deduplicated by the job's id
    let got = drain(&sqs, &q.url, 2).await;
    assert_eq!(got.len(), 2);
    for m in &got {
        let arrived = body(m);
        let sent = jobs
            .iter()
            .find(|j| j.client == arrived.client)
            .expect("a sent job");
        assert_eq!(&arrived, sent);
        assert_eq!(
            attribute(m, MessageSystemAttributeName::MessageGroupId),
            sent.group()
        );
        assert_eq!(
            attribute(m, MessageSystemAttributeName::MessageDeduplicationId),
            sent.dedupe_id()
        );
    }
}

#[tokio::test]
async fn the_same_job_enqueued_twice_within_five_minutes_is_one_message() {
    // given a job enqueued once (a tick)
    let (sqs, q) = queues(5, 30).await;
    let queue = SqsQueue::new(sqs.clone(), &q.url);
    queue.enqueue(&[job("acme", "tick-1")]).await.unwrap();

    // when the same tick is delivered again and enqueues it again, beside a new tick's job
    queue
        .enqueue(&[job("acme", "tick-1"), job("acme", "tick-2")])
        .await
        .unwrap();

    // then the queue holds one message per tick
    let got = drain(&sqs, &q.url, 3).await;
    let dedupes: Vec<String> = got.iter().map(|m| body(m).dedupe).collect();
    assert_eq!(dedupes, ["tick-1", "tick-2"]);
    assert!(receive(&sqs, &q.url).await.is_empty());
}

#[tokio::test]
async fn more_than_ten_jobs_are_sent_in_batches_and_keep_their_order_per_client() {
    // given 25 jobs of three clients, interleaved (SendMessageBatch takes 10 at most)
    let (sqs, q) = queues(5, 30).await;
    let queue = SqsQueue::new(sqs.clone(), &q.url);
    let clients = ["a", "b", "c"];
    let jobs: Vec<Job> = (0..25)
        .map(|i| job(clients[i % 3], &format!("{i:02}")))
        .collect();

    // when they are enqueued in one call
    queue.enqueue(&jobs).await.expect("enqueued");

    // then all arrive, each client's in the order they were enqueued
    let got = drain(&sqs, &q.url, jobs.len()).await;
    assert_eq!(got.len(), jobs.len());
    let mut per_client: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in &got {
        let j = body(m);
        per_client.entry(j.client).or_default().push(j.dedupe);
    }
    for client in clients {
        let sent: Vec<String> = jobs
            .iter()
            .filter(|j| j.client == client)
            .map(|j| j.dedupe.clone())
            .collect();
        assert_eq!(per_client[client], sent, "order of {client}'s jobs");
    }
}

#[tokio::test]
async fn a_message_received_max_receive_count_times_lands_in_the_dead_letter_queue() {
    // given a queue that redrives after 2 deliveries, with a 1-second visibility timeout
    let (sqs, q) = queues(2, 1).await;
    let queue = SqsQueue::new(sqs.clone(), &q.url);
    let poisoned = job("acme", "tick-1");
    queue
        .enqueue(std::slice::from_ref(&poisoned))
        .await
        .unwrap();

    // when a worker receives it twice and never deletes it (it keeps failing)
    for delivery in 1..=2 {
        let got = receive(&sqs, &q.url).await;
        assert_eq!(got.len(), 1, "delivery {delivery}");
        assert_eq!(
            attribute(&got[0], MessageSystemAttributeName::ApproximateReceiveCount),
            delivery.to_string()
        );
        tokio::time::sleep(Duration::from_millis(1_300)).await;
    }

    // then the next receive finds the queue empty and the job in the dead-letter queue
    assert!(
        receive(&sqs, &q.url).await.is_empty(),
        "moved out of the queue"
    );
    let dead = drain(&sqs, &q.dlq_url, 1).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(body(&dead[0]), poisoned);
}

#[tokio::test]
async fn a_missing_queue_fails_naming_the_operation_and_code_never_the_body() {
    let server = moto().await;
    let sqs = server.sqs();
    let url = format!(
        "{}/123456789012/{}.fifo",
        server.endpoint(),
        unique_name("absent")
    );
    let queue = SqsQueue::new(sqs, url);
    let secret_looking = job("acme", "do-not-log-me");
    let QueueError::Backend(message) = queue.enqueue(&[secret_looking]).await.unwrap_err();
    assert!(message.starts_with("SendMessageBatch: "), "{message}");
    assert!(
        message.contains("NonExistentQueue") || message.contains("QueueDoesNotExist"),
        "{message}"
    );
    assert!(!message.contains("do-not-log-me"), "{message}");
}

#[tokio::test]
async fn nothing_to_enqueue_sends_nothing() {
    let server = moto().await;
    // A queue that does not exist: any call would fail.
    let queue = SqsQueue::new(
        server.sqs(),
        format!("{}/123456789012/none.fifo", server.endpoint()),
    );
    queue.enqueue(&[]).await.expect("no call made");
}
