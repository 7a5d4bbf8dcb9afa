//! The default schedule (read from `fixtures/schedule.json`, the single source shared with the
//! AWS template) and the in-process scheduler of the self-hosted binary, which also prunes the
//! embedded store ([`PRUNE_PERIOD`]; on AWS the table's TTL does that).

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::app::AppState;
use crate::clock::Clock;
use crate::domain::TaskName;
use crate::store::retention::{prune_all, PRUNE_BATCH};
use crate::store::Pruning;
use crate::work::dispatch::{dispatch_tick, dispatch_weekly};

const DEFAULT_SCHEDULE: &str = include_str!("../../fixtures/schedule.json");

/// How often the self-hosted scheduler removes what is past retention (and once at its start).
pub const PRUNE_PERIOD: Duration = Duration::from_secs(86_400);

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

/// Dispatches every scheduled task on its period until the future is dropped: each tick hands
/// one job per client with work to the app's queue (the in-process worker pool when
/// self-hosted), exactly as the EventBridge rules do on AWS. The first tick comes after
/// `first_delay`, so work left pending before a restart is picked up; a weekly task that
/// completed within its period before the restart is not dispatched again on that first tick.
/// Beside the ticks, the store is pruned after `first_delay` and then every [`PRUNE_PERIOD`].
pub async fn run_scheduler(app: AppState, entries: Vec<ScheduleEntry>, first_delay: Duration) {
    let dispatch = app.dispatch();
    let mut handles = vec![tokio::spawn(run_pruning(
        app.store.clone(),
        app.clock.clone(),
        first_delay,
    ))];
    for entry in entries {
        let Ok(period) = parse_rate(&entry.schedule) else {
            continue;
        };
        let dispatch = dispatch.clone();
        handles.push(tokio::spawn(async move {
            let mut ticker =
                tokio::time::interval_at(tokio::time::Instant::now() + first_delay, period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut first = true;
            loop {
                ticker.tick().await;
                let tick_id = format!("{}:{}", entry.task, dispatch.clock.now());
                let skip_recent = first
                    .then_some(period)
                    .filter(|p| *p > Duration::from_secs(3600));
                first = false;
                let result = match skip_recent {
                    Some(window) => {
                        dispatch_weekly(&dispatch, entry.task, &tick_id, Some(window)).await
                    }
                    None => dispatch_tick(&dispatch, entry.task, &tick_id)
                        .await
                        .map(|s| s.jobs),
                };
                match result {
                    Ok(jobs) if jobs > 0 => {
                        tracing::info!(task = %entry.task, jobs, "tick dispatched")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(task = %entry.task, error = %e, "tick failed"),
                }
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
}

/// Prunes the store after `first_delay`, then every [`PRUNE_PERIOD`], in batches of
/// [`PRUNE_BATCH`] (a short write each, so a large backlog never holds the database for long).
async fn run_pruning<S: Pruning + ?Sized>(
    store: Arc<S>,
    clock: Arc<dyn Clock>,
    first_delay: Duration,
) {
    let mut ticker =
        tokio::time::interval_at(tokio::time::Instant::now() + first_delay, PRUNE_PERIOD);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticker.tick().await;
        match prune_all(store.as_ref(), clock.now(), PRUNE_BATCH).await {
            Ok(p) if p.total() > 0 => tracing::info!(
                runs = p.runs,
                audit = p.audit,
                link_sessions = p.link_sessions,
                console_sessions = p.console_sessions,
                leases = p.leases,
                "pruned what is past retention"
            ),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "pruning failed"),
        }
    }
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
