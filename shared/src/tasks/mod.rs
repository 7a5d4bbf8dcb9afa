//! The scheduled tasks, one function each, shared by the self-hosted scheduler, the CLI, the
//! admin API "run now" and (later) the Lambda functions.

pub mod guild_scan;
pub mod outcomes;
pub mod remote_sync_groups;
pub mod run;
pub mod sync_accounts;
pub mod verify_groups;
pub mod walk;

use std::time::Instant;

use crate::app::AppState;
use crate::domain::{RunReport, TaskName};
use crate::service::ServiceError;

/// How a run is asked to behave.
#[derive(Debug, Clone, Default)]
pub struct TaskOptions {
    /// Return the plan without writing anything (no Discord writes, no store writes, no report).
    pub dry_run: bool,
    /// Stop starting new work after this instant and leave a cursor (Lambda's remaining time).
    pub deadline: Option<Instant>,
    /// Who triggered the run, for the audit trail: `schedule`, `admin`, `cli`.
    pub trigger: String,
    /// Stop after this many members, leaving a cursor like a deadline does (small batches on
    /// demand; deterministic resume tests).
    pub max_members: Option<u64>,
}

/// Runs one task for one client and returns its report.
pub async fn run_task(
    app: &AppState,
    task: TaskName,
    client_id: &str,
    options: &TaskOptions,
) -> Result<RunReport, ServiceError> {
    match task {
        TaskName::VerifyGroups => verify_groups::run(app, client_id, options).await,
        TaskName::SyncAccounts => sync_accounts::run(app, client_id, options).await,
        TaskName::RemoteSyncGroups => remote_sync_groups::run(app, client_id, options).await,
    }
}
