//! The scheduled dispatchers (`verify-groups`, `sync-accounts`, `remote-sync-groups`): read the
//! schedule's event, skip a delivery already handled, and hand the tick to
//! [`dispatch_tick`](crate::work::dispatch::dispatch_tick), which enqueues one job per client
//! with work. The jobs run in the worker, not here: a dispatch takes well under a second.
//! A dispatcher's state is a [`Dispatch`] (store ports, queue, clock): no secrets, no Discord
//! client.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Invocation;
use crate::domain::TaskName;
use crate::service::ServiceError;
use crate::store::StoreError;
use crate::work::dispatch::{dispatch_tick, Dispatch, DispatchSummary};

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("unreadable scheduled event: {0}")]
    InvalidEvent(String),
    #[error("this function dispatches {expected}, the event asks for {got}")]
    WrongTask { expected: TaskName, got: String },
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Service(#[from] ServiceError),
}

/// The shapes a schedule delivers (fixtures in `fixtures/events/`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ScheduledPayload {
    /// An EventBridge Scheduler event: its `detail` is JSON *text*, such as `"{}"`.
    Scheduler(EventEnvelope<String>),
    /// An EventBridge rule's event: its `detail` is an object.
    Rule(EventEnvelope<EventDetail>),
    /// A rule's or schedule's explicit `Input`, e.g. `{"task": "verify-groups"}`, or `{}`.
    Input(ScheduleInput),
}

/// The fields of an EventBridge event the dispatcher reads (`version`, `account`, `time`,
/// `resources`, … are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EventEnvelope<D> {
    /// The event's id: the same for every delivery of one event.
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default, rename = "detail-type")]
    pub detail_type: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    pub detail: D,
}

/// An event's `detail`: it may name the task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct EventDetail {
    #[serde(default)]
    pub task: Option<String>,
}

/// What the template's schedules send as `Input`. A Scheduler schedule may pass its execution
/// id (`<aws.scheduler.execution-id>`) to tell deliveries apart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleInput {
    #[serde(default)]
    pub task: Option<String>,
    #[serde(default, alias = "execution_id", alias = "execution-id")]
    pub id: Option<String>,
}

/// What the dispatcher needs from any payload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduledEvent {
    /// The delivery's id: an EventBridge event id, or a Scheduler execution id passed in `Input`.
    pub id: Option<String>,
    /// The task the event names, at the top level (`Input`) or in `detail`.
    pub task: Option<String>,
}

impl ScheduledPayload {
    pub fn into_event(self) -> Result<ScheduledEvent, EventError> {
        let (id, task) = match self {
            ScheduledPayload::Input(input) => (input.id, input.task),
            ScheduledPayload::Rule(event) => (event.id, event.detail.task),
            ScheduledPayload::Scheduler(event) => {
                let detail = if event.detail.trim().is_empty() {
                    EventDetail::default()
                } else {
                    serde_json::from_str::<EventDetail>(&event.detail).map_err(|e| {
                        EventError::InvalidEvent(format!(
                            "`detail` is text but not a JSON object with an optional string \
                             `task` ({:?} error at line {} column {})",
                            e.classify(),
                            e.line(),
                            e.column()
                        ))
                    })?
                };
                (event.id, detail.task)
            }
        };
        Ok(ScheduledEvent {
            id: id.filter(|id| !id.is_empty()),
            task,
        })
    }
}

/// Reads any payload a schedule delivers, or none at all (`null`).
pub fn parse_event(event: Value) -> Result<ScheduledEvent, EventError> {
    match &event {
        Value::Null => return Ok(ScheduledEvent::default()),
        Value::Object(_) => {}
        _ => return Err(EventError::InvalidEvent("expected a JSON object".into())),
    }
    ScheduledPayload::deserialize(event)
        .map_err(|_| {
            EventError::InvalidEvent(
                "expected an EventBridge event (`detail` an object or JSON text) or a schedule's \
                 Input ({\"task\": \"<name>\"}), with string `id` and `task`"
                    .into(),
            )
        })?
        .into_event()
}

/// How long a delivery is remembered: far longer than EventBridge and Lambda retry.
pub const DELIVERY_TTL_SECS: i64 = 2 * 86_400;
/// The holder of a delivery lease once its tick was dispatched.
const DELIVERY_DONE: &str = "done";

/// The tick's id: the event's id, else Lambda's request id (kept by Lambda's own retries).
pub fn tick_id(event: &ScheduledEvent, invocation: &Invocation) -> String {
    match &event.id {
        Some(id) => id.clone(),
        None => format!("request:{}", invocation.request_id),
    }
}

/// The lease name recording that this delivery was taken or handled.
pub fn dedupe_key(event: &ScheduledEvent, invocation: &Invocation) -> String {
    format!("event:{}", tick_id(event, invocation))
}

/// What a dispatcher answers (Lambda logs it as the invocation's result).
#[derive(Debug, Serialize)]
pub struct TickSummary {
    pub task: TaskName,
    /// The delivery's lease name (`event:<id>`).
    pub delivery: String,
    /// This delivery was already handled (or is being handled): nothing was dispatched.
    pub duplicate: bool,
    /// What the tick enqueued; absent for a duplicate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispatch: Option<DispatchSummary>,
}

/// Dispatches one tick of `task` and returns its summary.
///
/// Scheduled invocations are at-least-once. A delivery lease (`event:<id>`, expiring after
/// [`DELIVERY_TTL_SECS`], so the records clean themselves up — DynamoDB's TTL deletes them) is
/// taken by this request before dispatching and handed to the holder `done` after it: a
/// delivery whose lease another request holds (dispatching or done) is skipped. A failed
/// dispatch frees the lease, so Lambda's retry or EventBridge's redelivery dispatches again.
/// The jobs' deduplication ids derive from the tick id, so SQS also drops a second enqueue of
/// the same tick within its 5-minute window.
pub async fn handle(
    dispatch: &Dispatch,
    task: TaskName,
    event: Value,
    invocation: &Invocation,
) -> Result<TickSummary, EventError> {
    let event = parse_event(event)?;
    if let Some(asked) = &event.task {
        if TaskName::parse(asked) != Some(task) {
            return Err(EventError::WrongTask {
                expected: task,
                got: asked.clone(),
            });
        }
    }
    let tick = tick_id(&event, invocation);
    let key = dedupe_key(&event, invocation);
    let holder = invocation.request_id.as_str();
    let Dispatch { leases, clock, .. } = dispatch;
    let taken = leases
        .acquire_lease(&key, holder, clock.now(), DELIVERY_TTL_SECS)
        .await?;
    if taken.is_none() {
        tracing::info!(task = %task, delivery = %key, "duplicate delivery skipped");
        return Ok(TickSummary {
            task,
            delivery: key,
            duplicate: true,
            dispatch: None,
        });
    }

    let dispatched = match dispatch_tick(dispatch, task, &tick).await {
        Ok(summary) => summary,
        Err(e) => {
            if let Err(release) = leases.release_lease(&key, holder, None).await {
                tracing::warn!(task = %task, delivery = %key, error = %release,
                    "could not free the delivery after a failed dispatch");
            }
            return Err(e.into());
        }
    };

    let done = async {
        leases.release_lease(&key, holder, None).await?;
        leases
            .acquire_lease(&key, DELIVERY_DONE, clock.now(), DELIVERY_TTL_SECS)
            .await
    };
    if let Err(e) = done.await {
        // The jobs are enqueued; failing now would make Lambda dispatch again. Log and answer.
        tracing::warn!(task = %task, delivery = %key, error = %e, "could not record the delivery");
    }
    Ok(TickSummary {
        task,
        delivery: key,
        duplicate: false,
        dispatch: Some(dispatched),
    })
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use async_trait::async_trait;
    use serde_json::json;

    use super::*;
    use crate::clock::{Clock, SystemClock};
    use crate::store::prelude::*;
    use crate::store::sqlite::SqliteStore;
    use crate::work::{Job, JobQueue, QueueError};

    const RULE_EVENT: &str =
        include_str!("../../../fixtures/events/verify-groups.eventbridge-rule.json");
    const SCHEDULER_EVENT: &str =
        include_str!("../../../fixtures/events/verify-groups.eventbridge-scheduler.json");
    const INPUT: &str = include_str!("../../../fixtures/events/verify-groups.input.json");

    /// Keeps what was enqueued.
    #[derive(Default)]
    struct Recorded(Mutex<Vec<Job>>);

    #[async_trait]
    impl JobQueue for Recorded {
        async fn enqueue(&self, jobs: &[Job]) -> Result<(), QueueError> {
            self.0.lock().unwrap().extend_from_slice(jobs);
            Ok(())
        }
    }

    /// A dispatcher's state on a fresh store (kept for the test's own reads and writes).
    fn state(dir: &tempfile::TempDir) -> (Dispatch, Arc<SqliteStore>, Arc<Recorded>) {
        let db = dir.path().join("connector.db");
        let store = Arc::new(SqliteStore::open(&db).expect("store opens"));
        let queue = Arc::new(Recorded::default());
        let dispatch = Dispatch::new(store.clone(), queue.clone(), Arc::new(SystemClock));
        (dispatch, store, queue)
    }

    fn invocation(request_id: &str) -> Invocation {
        Invocation {
            request_id: request_id.to_owned(),
            deadline: Instant::now() + Duration::from_secs(60),
        }
    }

    fn json_of(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    fn client(id: &str) -> crate::domain::Client {
        crate::domain::Client {
            id: id.into(),
            name: "Guild".into(),
            guild_id: "1".into(),
            client_id: "2".into(),
            callback_url: "https://connector.example/discord/sso/callback".into(),
            invite_link: None,
            nickname_template: None,
            unlink_policy: Default::default(),
            source_of_truth: Default::default(),
            return_to_origins: vec![],
            discord_api_base: "http://127.0.0.1:9".into(),
            discord_authorize_url: "http://127.0.0.1:9/oauth2/authorize".into(),
            public_key: None,
            webhook_url: None,
            linked_roles: None,
            guild: Default::default(),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn reads_an_eventbridge_rule_event() {
        let payload: ScheduledPayload = serde_json::from_str(RULE_EVENT).unwrap();
        assert!(matches!(&payload, ScheduledPayload::Rule(e)
            if e.detail_type.as_deref() == Some("Scheduled Event")
                && e.source.as_deref() == Some("aws.events")));
        assert_eq!(
            parse_event(json_of(RULE_EVENT)).unwrap(),
            ScheduledEvent {
                id: Some("53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa".into()),
                task: None
            }
        );
        let custom = json!({"id": "e", "detail-type": "Run", "source": "ops", "detail": {"task": "sync-accounts"}});
        assert_eq!(
            parse_event(custom).unwrap().task.as_deref(),
            Some("sync-accounts")
        );
    }

    #[test]
    fn reads_a_scheduler_event_whose_detail_is_json_text() {
        let raw = json_of(SCHEDULER_EVENT);
        assert!(raw["detail"].is_string(), "fixture keeps Scheduler's shape");
        let payload: ScheduledPayload = serde_json::from_value(raw.clone()).unwrap();
        assert!(matches!(&payload, ScheduledPayload::Scheduler(e) if e.detail == "{}"));
        assert_eq!(
            parse_event(raw).unwrap(),
            ScheduledEvent {
                id: Some("f4b5c3a1-1b8e-4d6c-9a57-0e2b7c1d9a10".into()),
                task: None
            }
        );
        let with_task = json!({"id": "x", "detail": "{\"task\": \"verify-groups\"}"});
        assert_eq!(
            parse_event(with_task).unwrap().task.as_deref(),
            Some("verify-groups")
        );
    }

    #[test]
    fn reads_an_explicit_input_a_bare_object_and_no_payload() {
        let payload: ScheduledPayload = serde_json::from_str(INPUT).unwrap();
        assert_eq!(
            payload,
            ScheduledPayload::Input(ScheduleInput {
                task: Some("verify-groups".into()),
                id: None
            })
        );
        let input = parse_event(json!({"task": "sync-accounts"})).unwrap();
        assert_eq!(input.task.as_deref(), Some("sync-accounts"));
        assert_eq!(input.id, None);
        let with_execution = parse_event(json!({"task": "sync-accounts", "execution_id": "x1"}));
        assert_eq!(with_execution.unwrap().id.as_deref(), Some("x1"));
        assert_eq!(parse_event(json!({})).unwrap(), ScheduledEvent::default());
        assert_eq!(parse_event(Value::Null).unwrap(), ScheduledEvent::default());
        assert_eq!(
            parse_event(json!({"detail": ""})).unwrap(),
            ScheduledEvent::default()
        );
    }

    #[test]
    fn rejects_what_no_schedule_sends() {
        for bad in [
            json!([1]),
            json!([]),
            json!("verify-groups"),
            json!({"task": 3}),
            json!({"detail": "{not json"}),
            json!({"detail": "{\"task\": 3}"}),
            json!({"detail": 5}),
            json!({"tsak": "verify-groups"}),
        ] {
            let text = bad.to_string();
            match parse_event(bad) {
                Err(EventError::InvalidEvent(reason)) => {
                    assert!(!reason.contains("not json"), "no payload echoed: {reason}")
                }
                other => panic!("{text} accepted: {other:?}"),
            }
        }
    }

    #[test]
    fn the_dedupe_key_is_the_event_id_else_the_request_id() {
        let with_id = ScheduledEvent {
            id: Some("e1".into()),
            task: None,
        };
        assert_eq!(dedupe_key(&with_id, &invocation("r1")), "event:e1");
        assert_eq!(tick_id(&with_id, &invocation("r1")), "e1");
        assert_eq!(
            dedupe_key(&ScheduledEvent::default(), &invocation("r1")),
            "event:request:r1"
        );
    }

    #[tokio::test]
    async fn a_tick_enqueues_a_job_for_each_client_with_work() {
        // given two clients, one with pending work
        let dir = tempfile::tempdir().unwrap();
        let (dispatch, store, queue) = state(&dir);
        for id in ["busy", "idle"] {
            store.create_client(&client(id)).await.unwrap();
        }
        store
            .mark_work("busy", TaskName::VerifyGroups, SystemClock.now())
            .await
            .unwrap();

        // when the 5-minute schedule fires
        let summary = handle(
            &dispatch,
            TaskName::VerifyGroups,
            json_of(RULE_EVENT),
            &invocation("r1"),
        )
        .await
        .unwrap();

        // then one job goes to the queue, for the client with work
        assert!(!summary.duplicate);
        let jobs = queue.0.lock().unwrap().clone();
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        assert_eq!(jobs[0].client, "busy");
        assert_eq!(jobs[0].task, TaskName::VerifyGroups);
        let answer = serde_json::to_value(&summary).unwrap();
        assert_eq!(answer["dispatch"]["jobs"], 1, "{answer}");
    }

    #[tokio::test]
    async fn a_second_delivery_of_the_same_event_is_skipped() {
        // given a rule event dispatched once
        let dir = tempfile::tempdir().unwrap();
        let (dispatch, store, queue) = state(&dir);
        store.create_client(&client("guild")).await.unwrap();
        store
            .mark_work("guild", TaskName::VerifyGroups, SystemClock.now())
            .await
            .unwrap();
        let first = handle(
            &dispatch,
            TaskName::VerifyGroups,
            json_of(RULE_EVENT),
            &invocation("r1"),
        )
        .await
        .unwrap();
        assert!(!first.duplicate);
        let enqueued = queue.0.lock().unwrap().len();

        // when EventBridge delivers it again (a new Lambda request)
        let second = handle(
            &dispatch,
            TaskName::VerifyGroups,
            json_of(RULE_EVENT),
            &invocation("r2"),
        )
        .await
        .unwrap();

        // then nothing is dispatched, and the delivery stays recorded as done
        assert!(second.duplicate);
        assert!(second.dispatch.is_none());
        assert_eq!(queue.0.lock().unwrap().len(), enqueued);
        let key = "event:53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa";
        let now = SystemClock.now();
        assert!(store
            .acquire_lease(key, "r3", now, 60)
            .await
            .unwrap()
            .is_none());
        // and forgotten once its time is up
        let later = now + DELIVERY_TTL_SECS + 1;
        assert!(store
            .acquire_lease(key, "r3", later, 60)
            .await
            .unwrap()
            .is_some());
    }

    #[tokio::test]
    async fn deliveries_without_an_id_are_told_apart_by_lambdas_request_id() {
        let dir = tempfile::tempdir().unwrap();
        let (dispatch, _, _) = state(&dir);
        let run = |rid: &'static str| {
            let dispatch = dispatch.clone();
            async move {
                handle(
                    &dispatch,
                    TaskName::VerifyGroups,
                    json_of(INPUT),
                    &invocation(rid),
                )
                .await
                .unwrap()
                .duplicate
            }
        };
        assert!(!run("r1").await, "first tick dispatches");
        assert!(!run("r2").await, "the next tick dispatches");
        assert!(run("r2").await, "Lambda's redelivery of r2 is skipped");
    }

    #[tokio::test]
    async fn an_event_for_another_task_fails_and_records_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (dispatch, _, queue) = state(&dir);
        let err = handle(
            &dispatch,
            TaskName::VerifyGroups,
            json!({"task": "remote-sync-groups"}),
            &invocation("r1"),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, EventError::WrongTask { .. }), "{err}");
        assert!(queue.0.lock().unwrap().is_empty());
        let next = handle(
            &dispatch,
            TaskName::VerifyGroups,
            json!({}),
            &invocation("r1"),
        )
        .await
        .unwrap();
        assert!(!next.duplicate, "nothing was recorded");
    }
}
