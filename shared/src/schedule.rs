//! The default schedule (read from `fixtures/schedule.json`, the single source shared with the
//! AWS template) and the in-process scheduler of the self-hosted binary.

use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::app::AppState;
use crate::domain::{RunReport, TaskName};
use crate::service::ServiceError;
use crate::tasks::run::latest_run;
use crate::tasks::{run_task, TaskOptions};

const DEFAULT_SCHEDULE: &str = include_str!("../../fixtures/schedule.json");

#[derive(Debug, Clone, Deserialize)]
pub struct ScheduleEntry {
    pub task: TaskName,
    /// An EventBridge rate expression: `rate(5 minutes)`, `rate(7 days)`.
    pub schedule: String,
}

#[derive(Deserialize)]
struct ScheduleFile {
    tasks: Vec<ScheduleEntry>,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid schedule: {0}")]
pub struct ScheduleError(String);

pub fn default_schedule() -> Result<Vec<ScheduleEntry>, ScheduleError> {
    let file: ScheduleFile =
        serde_json::from_str(DEFAULT_SCHEDULE).map_err(|e| ScheduleError(e.to_string()))?;
    for entry in &file.tasks {
        parse_rate(&entry.schedule)?;
    }
    Ok(file.tasks)
}

/// Parses EventBridge's `rate(value unit)`, where unit is minute(s), hour(s) or day(s) and the
/// singular goes with 1 only (as EventBridge requires).
pub fn parse_rate(expr: &str) -> Result<Duration, ScheduleError> {
    let bad = || ScheduleError(format!("{expr:?} is not rate(<n> minutes|hours|days)"));
    let inner = expr
        .strip_prefix("rate(")
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(bad)?;
    let (n, unit) = inner.split_once(' ').ok_or_else(bad)?;
    let n: u64 = n.parse().map_err(|_| bad())?;
    let secs = match (n, unit) {
        (0, _) => return Err(bad()),
        (1, "minute") | (2.., "minutes") => 60,
        (1, "hour") | (2.., "hours") => 3600,
        (1, "day") | (2.., "days") => 86_400,
        _ => return Err(bad()),
    };
    Ok(Duration::from_secs(n * secs))
}

/// Runs every scheduled task for every client until `shutdown` resolves. The first run of each
/// task happens shortly after start, so work left pending before a restart is picked up.
pub async fn run_scheduler(app: AppState, entries: Vec<ScheduleEntry>, first_delay: Duration) {
    let mut handles = Vec::new();
    for entry in entries {
        let Ok(period) = parse_rate(&entry.schedule) else {
            continue;
        };
        let app = app.clone();
        handles.push(tokio::spawn(async move {
            let mut ticker =
                tokio::time::interval_at(tokio::time::Instant::now() + first_delay, period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut first = true;
            loop {
                ticker.tick().await;
                // Leave a margin so a run never overlaps the next tick; a weekly run that needs
                // longer stops at a cursor and the 5-minute tick continues it.
                let deadline = Instant::now() + period.mul_f32(0.8).min(Duration::from_secs(240));
                // A restart does not re-run weekly work that completed within its period.
                let skip = first.then_some(period).filter(|p| *p > Duration::from_secs(3600));
                first = false;
                if let Err(e) = run_for_clients(&app, entry.task, Some(deadline), "schedule", skip).await {
                    tracing::error!(task = %entry.task, error = %e, "scheduler could not list clients");
                }
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
}

/// The tasks a run may leave unfinished (they walk the whole guild and resume from a cursor).
const RESUMABLE: [TaskName; 2] = [TaskName::SyncAccounts, TaskName::RemoteSyncGroups];

/// One run of `task` for every client, each bounded by `deadline` (a Lambda invocation's
/// remaining time, or the next scheduler tick). Returns each client's report or error.
///
/// The 5-minute verify-groups tick also continues weekly runs that stopped at a deadline, so a
/// guild too large for one invocation finishes within minutes instead of a week later.
pub async fn run_for_all_clients(
    app: &AppState,
    task: TaskName,
    deadline: Option<Instant>,
    trigger: &str,
) -> Result<Vec<(String, Result<RunReport, ServiceError>)>, ServiceError> {
    run_for_clients(app, task, deadline, trigger, None).await
}

async fn run_for_clients(
    app: &AppState,
    task: TaskName,
    deadline: Option<Instant>,
    trigger: &str,
    skip_if_ran_within: Option<Duration>,
) -> Result<Vec<(String, Result<RunReport, ServiceError>)>, ServiceError> {
    let mut out = Vec::new();
    for client in app.store.list_clients().await? {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if let Some(window) = skip_if_ran_within {
            let last = latest_run(app, &client.id, task).await?;
            let recent = last.is_some_and(|r| {
                r.complete && app.clock.now() - r.started_at < window.as_secs() as i64
            });
            if recent {
                continue;
            }
        }
        let result = run_logged(app, task, &client.id, deadline, trigger).await;
        out.push((client.id.clone(), result));
        if task == TaskName::VerifyGroups {
            for weekly in RESUMABLE {
                let unfinished = latest_run(app, &client.id, weekly)
                    .await?
                    .is_some_and(|r| !r.complete);
                if unfinished && deadline.is_none_or(|d| Instant::now() < d) {
                    let result = run_logged(app, weekly, &client.id, deadline, trigger).await;
                    out.push((client.id.clone(), result));
                }
            }
        }
    }
    Ok(out)
}

async fn run_logged(
    app: &AppState,
    task: TaskName,
    client: &str,
    deadline: Option<Instant>,
    trigger: &str,
) -> Result<RunReport, ServiceError> {
    let options = TaskOptions {
        dry_run: false,
        deadline,
        trigger: trigger.to_owned(),
        max_members: None,
    };
    let result = run_task(app, task, client, &options).await;
    match &result {
        Ok(report) => {
            let examined = report.counts.get("examined").copied().unwrap_or(0);
            if examined > 0 || !report.errors.is_empty() || !report.complete {
                tracing::info!(task = %task, client = %client, run_id = %report.id,
                    counts = ?report.counts, errors = report.errors.len(), complete = report.complete, "run finished");
            }
        }
        Err(ServiceError::Busy(m)) => tracing::info!(task = %task, client = %client, "{m}"),
        Err(e) => tracing::error!(task = %task, client = %client, error = %e, "run failed"),
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedule_runs_verify_groups_every_five_minutes() {
        let s = default_schedule().expect("fixture parses");
        let verify = s
            .iter()
            .find(|e| e.task == TaskName::VerifyGroups)
            .expect("verify-groups scheduled");
        assert_eq!(
            parse_rate(&verify.schedule).unwrap(),
            Duration::from_secs(300)
        );
    }

    #[test]
    fn rate_expressions_follow_eventbridge_grammar() {
        assert_eq!(
            parse_rate("rate(7 days)").unwrap(),
            Duration::from_secs(7 * 86_400)
        );
        assert_eq!(
            parse_rate("rate(1 hour)").unwrap(),
            Duration::from_secs(3600)
        );
        for bad in [
            "rate(5 minute)",
            "rate(1 minutes)",
            "rate(0 minutes)",
            "cron(0 * * * ? *)",
            "rate(5minutes)",
        ] {
            assert!(parse_rate(bad).is_err(), "{bad} accepted");
        }
    }
}
