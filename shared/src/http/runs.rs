//! Run-now for tasks, run reports and the audit trail.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::domain::{AuditEntry, RunReport, TaskName};
use crate::tasks::{self, TaskOptions};

use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiPath, ApiQuery};
use super::users::page_args;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RunQuery {
    /// Return the plan without changing anything.
    #[serde(default)]
    pub dry_run: bool,
    /// Stop after this many members and leave a cursor; the next run resumes there.
    pub max_members: Option<u64>,
    /// Stop after this many seconds (default 25, within API gateways' 30 s limit) and leave a
    /// cursor; the 5-minute tick continues the run.
    pub max_seconds: Option<u64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub cursor: Option<String>,
    /// 1–500, default 100.
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunPage {
    pub items: Vec<RunReport>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    pub next_cursor: Option<String>,
}

#[utoipa::path(post, path = "/clients/{client}/tasks/{task}", tag = "tasks",
    params(("client" = String, Path), ("task" = String, Path, description = "verify-groups, sync-accounts or remote-sync-groups"), RunQuery),
    responses((status = 200, body = RunReport), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn run_task(
    State(app): State<AppState>,
    ApiPath((client, task)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<RunQuery>,
) -> ApiResult<Json<RunReport>> {
    let task =
        TaskName::parse(&task).ok_or_else(|| ApiError::not_found(&format!("task {task:?}")))?;
    let options = TaskOptions {
        dry_run: q.dry_run,
        deadline: Some(
            Instant::now() + Duration::from_secs(q.max_seconds.unwrap_or(25).clamp(1, 3600)),
        ),
        trigger: "admin".into(),
        max_members: q.max_members,
    };
    Ok(Json(tasks::run_task(&app, task, &client, &options).await?))
}

#[utoipa::path(get, path = "/clients/{client}/runs", tag = "tasks",
    params(("client" = String, Path), ListQuery), responses((status = 200, body = RunPage), (status = 404, body = Problem)))]
pub async fn list_runs(
    State(app): State<AppState>,
    ApiPath(client): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<RunPage>> {
    app.store
        .get_client(&client)
        .await?
        .ok_or_else(|| ApiError::not_found("client"))?;
    let (cursor, limit) = page_args(q.cursor.as_deref(), q.limit)?;
    let page = app.store.list_runs(&client, cursor.as_ref(), limit).await?;
    Ok(Json(RunPage {
        items: page.items,
        next_cursor: page.next.map(|c| c.as_str().to_owned()),
    }))
}

#[utoipa::path(get, path = "/clients/{client}/audit", tag = "tasks",
    params(("client" = String, Path), ListQuery), responses((status = 200, body = AuditPage), (status = 404, body = Problem)))]
pub async fn list_audit(
    State(app): State<AppState>,
    ApiPath(client): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<AuditPage>> {
    app.store
        .get_client(&client)
        .await?
        .ok_or_else(|| ApiError::not_found("client"))?;
    let (cursor, limit) = page_args(q.cursor.as_deref(), q.limit)?;
    let page = app
        .store
        .list_audit(&client, cursor.as_ref(), limit)
        .await?;
    Ok(Json(AuditPage {
        items: page.items,
        next_cursor: page.next.map(|c| c.as_str().to_owned()),
    }))
}
