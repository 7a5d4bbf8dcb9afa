//! One scheduled Lambda invocation: read the event, run the function's task for every client
//! within the invocation's remaining time, and answer a JSON summary.
//!
//! Pure on purpose (no Lambda or AWS types): the functions hand over the event as JSON plus the
//! request id and deadline from their Lambda context, so this is tested like any other code.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::app::AppState;
use crate::domain::{RunReport, TaskName};
use crate::schedule::run_for_all_clients;
use crate::service::ServiceError;
use crate::store::StoreError;

/// Time kept back from Lambda's deadline to finish the current member, write the run report and
/// answer before Lambda kills the invocation.
pub const SAFETY_MARGIN: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    #[error("unreadable scheduled event: {0}")]
    InvalidEvent(String),
    #[error("this function runs {expected}, the event asks for {got}")]
    WrongTask { expected: TaskName, got: String },
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Service(#[from] ServiceError),
}

/// What the Lambda context says about this invocation.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// Lambda's request id. Lambda keeps it when it retries an asynchronous invocation (or
    /// delivers the same one twice), so it identifies the delivery when the event has no id.
    pub request_id: String,
    /// When to stop starting new work.
    pub deadline: Instant,
}

impl Invocation {
    /// From the Lambda context's request id and deadline (milliseconds since the Unix epoch).
    ///
    /// `cargo lambda watch` (1.9) sends the function's timeout in milliseconds instead of an
    /// epoch deadline; a value before 2001 cannot be an epoch deadline, so it is read as the
    /// time remaining.
    pub fn from_lambda(request_id: &str, deadline_epoch_ms: u64) -> Self {
        const YEAR_2001_MS: u64 = 978_307_200_000;
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        let remaining = Duration::from_millis(if deadline_epoch_ms < YEAR_2001_MS {
            deadline_epoch_ms
        } else {
            deadline_epoch_ms.saturating_sub(now_ms)
        });
        Self {
            request_id: request_id.to_owned(),
            deadline: Instant::now() + work_time(remaining),
        }
    }
}

/// The part of `remaining` a run may spend: all but [`SAFETY_MARGIN`], or three quarters of it
/// when the function's timeout is too short for the full margin.
pub fn work_time(remaining: Duration) -> Duration {
    remaining.saturating_sub(SAFETY_MARGIN.min(remaining / 4))
}

/// The fields of a scheduled event this function cares about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduledEvent {
    /// The delivery's id: an EventBridge event id, or a Scheduler execution id passed in `Input`.
    pub id: Option<String>,
    /// The task named by the event, at the top level (`Input`) or in `detail`.
    pub task: Option<String>,
}

/// Reads any of the shapes a schedule can deliver:
/// - an EventBridge rule event `{"id", "detail-type", "source", "time", "detail": {..}}`,
/// - an EventBridge Scheduler payload, whose `detail` may be a JSON *string* such as `"{}"`,
/// - a rule's or schedule's explicit `Input`, e.g. `{"task": "verify-groups"}`, or a bare `{}`,
/// - no payload at all (`null`).
pub fn parse_event(event: &Value) -> Result<ScheduledEvent, InvocationError> {
    let object = match event {
        Value::Null => return Ok(ScheduledEvent::default()),
        Value::Object(o) => o,
        other => {
            return Err(InvocationError::InvalidEvent(format!(
                "expected a JSON object, got {}",
                kind(other)
            )))
        }
    };
    let detail = match object.get("detail") {
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(serde_json::from_str::<Value>(s).map_err(|e| {
            InvocationError::InvalidEvent(format!("`detail` is a string but not JSON: {e}"))
        })?),
        Some(v) => Some(v.clone()),
        None => None,
    };
    let id = ["id", "execution_id", "execution-id"]
        .iter()
        .find_map(|k| object.get(*k).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let task = match (
        object.get("task"),
        detail.as_ref().and_then(|d| d.get("task")),
    ) {
        (Some(t), _) | (None, Some(t)) => Some(
            t.as_str()
                .ok_or_else(|| InvocationError::InvalidEvent("`task` must be a string".into()))?
                .to_owned(),
        ),
        (None, None) => None,
    };
    Ok(ScheduledEvent { id, task })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// How long a delivery is remembered: far longer than EventBridge and Lambda retry.
pub const DELIVERY_TTL_SECS: i64 = 2 * 86_400;
/// The holder of a delivery lease once its run finished.
const DELIVERY_DONE: &str = "done";

/// The lease name recording that this delivery was taken or handled.
pub fn dedupe_key(event: &ScheduledEvent, invocation: &Invocation) -> String {
    match &event.id {
        Some(id) => format!("event:{id}"),
        None => format!("event:request:{}", invocation.request_id),
    }
}

/// Runs `task` for every client and returns the summary Lambda logs as the invocation's result.
///
/// Scheduled invocations are at-least-once, and two mechanisms keep a second delivery harmless:
/// - a delivery lease (`event:<id>`, expiring after [`DELIVERY_TTL_SECS`], so the records clean
///   themselves up — DynamoDB's TTL deletes them): taken by this request before the run, handed
///   to the holder `done` after it. A delivery whose lease is held by another request (running
///   or done) is skipped; Lambda's retry of a failed request (same request id) takes it again and
///   runs.
/// - the task's own store lease (taken per client by the task) stops two runs overlapping even
///   across different deliveries: a slow run still going at the next tick, or an operator's
///   "run now".
pub async fn handle(
    state: &AppState,
    task: TaskName,
    event: Value,
    invocation: &Invocation,
) -> Result<Value, InvocationError> {
    let event = parse_event(&event)?;
    if let Some(asked) = &event.task {
        if TaskName::parse(asked) != Some(task) {
            return Err(InvocationError::WrongTask {
                expected: task,
                got: asked.clone(),
            });
        }
    }
    let key = dedupe_key(&event, invocation);
    let now = state.clock.now();
    let taken = state
        .store
        .acquire_lease(&key, &invocation.request_id, now, DELIVERY_TTL_SECS)
        .await?;
    if !taken {
        tracing::info!(task = %task, delivery = %key, "duplicate delivery skipped");
        return Ok(json!({
            "task": task,
            "delivery": key,
            "duplicate": true,
            "clients": [],
        }));
    }

    let results = run_for_all_clients(state, task, Some(invocation.deadline), "lambda").await?;
    let clients: Vec<Value> = results
        .iter()
        .map(|(client, result)| client_summary(client, result))
        .collect();

    let done = async {
        state
            .store
            .release_lease(&key, &invocation.request_id)
            .await?;
        state
            .store
            .acquire_lease(&key, DELIVERY_DONE, state.clock.now(), DELIVERY_TTL_SECS)
            .await
    };
    if let Err(e) = done.await {
        // The work is done; failing now would make Lambda retry it. Log and answer.
        tracing::warn!(task = %task, delivery = %key, error = %e, "could not record the delivery");
    }
    Ok(json!({
        "task": task,
        "delivery": key,
        "duplicate": false,
        "clients": clients,
    }))
}

fn client_summary(client: &str, result: &Result<RunReport, ServiceError>) -> Value {
    match result {
        Ok(report) => json!({
            "client": client,
            "run_id": report.id,
            "counts": report.counts,
            "errors": report.errors.len(),
            "complete": report.complete,
            "cursor": report.cursor,
        }),
        Err(ServiceError::Busy(message)) => json!({
            "client": client,
            "busy": message,
        }),
        Err(e) => json!({
            "client": client,
            "error": e.to_string(),
        }),
    }
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use std::sync::Arc;

    use secrecy::SecretString;

    use super::*;
    use crate::app::AdminAuth;
    use crate::clock::SystemClock;
    use crate::secrets::cipher::SecretKey;
    use crate::secrets::local::LocalSecrets;
    use crate::store::sqlite::SqliteStore;

    const RULE_EVENT: &str =
        include_str!("../../../fixtures/events/verify-groups.eventbridge-rule.json");
    const SCHEDULER_EVENT: &str =
        include_str!("../../../fixtures/events/verify-groups.eventbridge-scheduler.json");

    fn state(dir: &tempfile::TempDir) -> AppState {
        let db = dir.path().join("connector.db");
        let store = Arc::new(SqliteStore::open(&db).expect("store opens"));
        let secrets = Arc::new(LocalSecrets::open(&db, SecretKey::generate()).expect("secrets"));
        AppState::new(
            store,
            secrets,
            Arc::new(SystemClock),
            AdminAuth::from_token(&SecretString::from("t")),
        )
    }

    fn invocation(request_id: &str) -> Invocation {
        Invocation {
            request_id: request_id.to_owned(),
            deadline: Instant::now() + Duration::from_secs(60),
        }
    }

    #[test]
    fn reads_an_eventbridge_rule_event() {
        let event = parse_event(&serde_json::from_str(RULE_EVENT).unwrap()).unwrap();
        assert_eq!(
            event,
            ScheduledEvent {
                id: Some("53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa".into()),
                task: None
            }
        );
        let custom = json!({"id": "e", "detail-type": "Run", "source": "ops", "detail": {"task": "sync-accounts"}});
        assert_eq!(
            parse_event(&custom).unwrap().task.as_deref(),
            Some("sync-accounts")
        );
    }

    #[test]
    fn reads_a_scheduler_payload_whose_detail_is_a_json_string() {
        let raw: Value = serde_json::from_str(SCHEDULER_EVENT).unwrap();
        assert!(raw["detail"].is_string(), "fixture keeps Scheduler's shape");
        let event = parse_event(&raw).unwrap();
        assert_eq!(
            event,
            ScheduledEvent {
                id: Some("f4b5c3a1-1b8e-4d6c-9a57-0e2b7c1d9a10".into()),
                task: None
            }
        );
        let with_task = json!({"id": "x", "detail": "{\"task\": \"verify-groups\"}"});
        assert_eq!(
            parse_event(&with_task).unwrap().task.as_deref(),
            Some("verify-groups")
        );
    }

    #[test]
    fn reads_an_explicit_input_a_bare_object_and_no_payload() {
        let input = parse_event(&json!({"task": "sync-accounts"})).unwrap();
        assert_eq!(input.task.as_deref(), Some("sync-accounts"));
        assert_eq!(input.id, None);
        assert_eq!(parse_event(&json!({})).unwrap(), ScheduledEvent::default());
        assert_eq!(
            parse_event(&Value::Null).unwrap(),
            ScheduledEvent::default()
        );
        assert_eq!(
            parse_event(&json!({"detail": ""})).unwrap(),
            ScheduledEvent::default()
        );
    }

    #[test]
    fn rejects_what_no_schedule_sends() {
        for bad in [
            json!([1]),
            json!("verify-groups"),
            json!({"task": 3}),
            json!({"detail": "{not json"}),
        ] {
            assert!(
                matches!(parse_event(&bad), Err(InvocationError::InvalidEvent(_))),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn keeps_a_safety_margin_before_lambdas_deadline() {
        assert_eq!(
            work_time(Duration::from_secs(120)),
            Duration::from_secs(110)
        );
        assert_eq!(work_time(Duration::from_secs(20)), Duration::from_secs(15));
        assert_eq!(work_time(Duration::ZERO), Duration::ZERO);
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let lambda = Invocation::from_lambda("r", now_ms + 60_000);
        let left = lambda.deadline - Instant::now();
        assert!(
            left > Duration::from_secs(45) && left <= Duration::from_secs(50),
            "{left:?}"
        );
        let past = Invocation::from_lambda("r", now_ms - 1_000);
        assert!(past.deadline <= Instant::now());
        // cargo lambda watch: the timeout, not a deadline
        let watch = Invocation::from_lambda("r", 600_000);
        assert!(watch.deadline > Instant::now() + Duration::from_secs(500));
    }

    #[test]
    fn the_dedupe_key_is_the_event_id_else_the_request_id() {
        let with_id = ScheduledEvent {
            id: Some("e1".into()),
            task: None,
        };
        assert_eq!(dedupe_key(&with_id, &invocation("r1")), "event:e1");
        assert_eq!(
            dedupe_key(&ScheduledEvent::default(), &invocation("r1")),
            "event:request:r1"
        );
    }

    #[tokio::test]
    async fn a_second_delivery_of_the_same_event_is_skipped() {
        // given a deployment and a rule event handled once
        let dir = tempfile::tempdir().unwrap();
        let app = state(&dir);
        let event: Value = serde_json::from_str(RULE_EVENT).unwrap();
        let first = handle(
            &app,
            TaskName::VerifyGroups,
            event.clone(),
            &invocation("r1"),
        )
        .await
        .unwrap();
        assert_eq!(first["duplicate"], false, "{first}");

        // when EventBridge delivers it again (a new Lambda request)
        let second = handle(&app, TaskName::VerifyGroups, event, &invocation("r2"))
            .await
            .unwrap();

        // then nothing runs, and the delivery stays recorded as done
        assert_eq!(second["duplicate"], true, "{second}");
        let id = parse_event(&serde_json::from_str(RULE_EVENT).unwrap())
            .unwrap()
            .id
            .unwrap();
        let now = app.clock.now();
        let key = format!("event:{id}");
        assert!(!app.store.acquire_lease(&key, "r3", now, 60).await.unwrap());
        // and forgotten once its time is up
        let later = now + DELIVERY_TTL_SECS + 1;
        assert!(app
            .store
            .acquire_lease(&key, "r3", later, 60)
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn deliveries_without_an_id_are_told_apart_by_lambdas_request_id() {
        let dir = tempfile::tempdir().unwrap();
        let app = state(&dir);
        let input = json!({"task": "verify-groups"});
        let run = |rid: &'static str| {
            let (app, input) = (app.clone(), input.clone());
            async move {
                handle(&app, TaskName::VerifyGroups, input, &invocation(rid))
                    .await
                    .unwrap()["duplicate"]
                    .clone()
            }
        };
        assert_eq!(run("r1").await, false, "first tick runs");
        assert_eq!(run("r2").await, false, "the next tick runs");
        assert_eq!(
            run("r2").await,
            true,
            "Lambda's redelivery of r2 is skipped"
        );
    }

    #[tokio::test]
    async fn an_event_for_another_task_fails_and_records_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let app = state(&dir);
        let err = handle(
            &app,
            TaskName::VerifyGroups,
            json!({"task": "remote-sync-groups"}),
            &invocation("r1"),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, InvocationError::WrongTask { .. }), "{err}");
        let next = handle(&app, TaskName::VerifyGroups, json!({}), &invocation("r1"))
            .await
            .unwrap();
        assert_eq!(next["duplicate"], false, "nothing was recorded: {next}");
    }

    #[tokio::test]
    async fn the_summary_has_a_run_per_client() {
        // given one configured client with nothing pending
        let dir = tempfile::tempdir().unwrap();
        let app = state(&dir);
        let client = crate::domain::Client {
            id: "guild".into(),
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
            guild: Default::default(),
            created_at: 0,
            updated_at: 0,
        };
        app.store.create_client(&client).await.unwrap();

        // when the schedule fires
        let summary = handle(
            &app,
            TaskName::VerifyGroups,
            json!({"task": "verify-groups"}),
            &invocation("r1"),
        )
        .await
        .unwrap();

        // then the client ran to completion (a run with nothing to do stores no report)
        let run = &summary["clients"][0];
        assert_eq!(run["client"], "guild", "{summary}");
        assert_eq!(run["complete"], true, "{summary}");
        assert!(run["run_id"].is_string(), "{summary}");
        assert_eq!(run["cursor"], Value::Null, "{summary}");
    }
}
