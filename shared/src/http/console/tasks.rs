//! Tasks: run now or dry-run any task (the dry run shows the plan — "would add Officer to
//! @alice" — before anything is written), the run history, and one run's report with its
//! counts, Discord calls by route, 429s, errors linked to their members and the guild audit.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{html, Markup};
use serde::Deserialize;

use crate::app::AppState;
use crate::domain::{Client, Role, RunReport, TaskName};
use crate::store::Cursor;
use crate::tasks::{self, TaskOptions};

use super::dashboard::{load_client, Failure};
use super::explain::{error_code, task_description, task_title};
use super::page::{badge, client_path, csrf_field, enc, shell, time, Notice, Page, Section};
use super::session::ConsoleUser;

const RUNS_PER_PAGE: usize = 25;
/// Planned changes shown with the member's Discord name (one store read each).
const NAMED_CHANGES: usize = 200;

const TASKS: [TaskName; 3] = [
    TaskName::VerifyGroups,
    TaskName::SyncAccounts,
    TaskName::RemoteSyncGroups,
];

#[derive(Deserialize)]
pub struct RunsQuery {
    cursor: Option<String>,
}

/// `GET /admin/clients/{client}/tasks`.
pub async fn list(
    State(app): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path(id): Path<String>,
    Query(q): Query<RunsQuery>,
) -> Result<Page, Failure> {
    let c = load_client(&app, &user, &id).await?;
    let cursor = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(raw) => Some(Cursor::parse(raw).map_err(|_| Failure::bad_cursor(&user))?),
        None => None,
    };
    let runs = app
        .store
        .list_runs(&c.id, cursor.as_ref(), RUNS_PER_PAGE)
        .await
        .map_err(|e| Failure::store(&user, e))?;
    let base = client_path(&c.id);
    Ok(shell(
        &format!("Tasks · {}", c.name),
        Some(&user),
        Some((&c, Section::Tasks)),
        None,
        html! {
            h1 { "Tasks" }
            div.cards {
                @for t in TASKS {
                    section.card aria-labelledby=(format!("t-{}", t.as_str())) {
                        h2 id=(format!("t-{}", t.as_str())) { (task_title(t)) }
                        p { (task_description(t)) }
                        div.actions {
                            form method="post" action=(format!("{base}/tasks/{}", t.as_str())) {
                                (csrf_field(&user))
                                input type="hidden" name="dry_run" value="true";
                                button type="submit" { "Dry run" }
                            }
                            form method="post" action=(format!("{base}/tasks/{}", t.as_str())) {
                                (csrf_field(&user))
                                button.primary type="submit" { "Run now" }
                            }
                        }
                    }
                }
            }
            h2 { "Run history" }
            @if runs.items.is_empty() { p { "No run yet." } }
            @else {
                div.table-wrap {
                    table {
                        caption.visually-hidden { "Runs, newest first" }
                        thead { tr {
                            th scope="col" { "Started" }
                            th scope="col" { "Task" }
                            th scope="col" { "Trigger" }
                            th scope="col" { "Duration" }
                            th scope="col" { "Members" }
                            th scope="col" { "Discord calls" }
                            th scope="col" { "429s" }
                            th scope="col" { "Errors" }
                        } }
                        tbody {
                            @for r in &runs.items {
                                tr {
                                    th scope="row" { a href=(format!("{base}/runs/{}", enc(&r.id))) { (time(r.started_at)) } }
                                    td { (task_title(r.task)) @if !r.complete { " " (badge("unknown", "continuing")) } }
                                    td { (r.trigger) }
                                    td { (duration(r)) }
                                    td { (r.counts.get("examined").copied().unwrap_or(0)) }
                                    td { (r.calls.values().sum::<u64>()) }
                                    td { (r.rate_limited) }
                                    td { @if r.errors.is_empty() { "0" } @else { (badge("bad", &r.errors.len().to_string())) } }
                                }
                            }
                        }
                    }
                }
                nav.pager aria-label="Pages" {
                    @if cursor.is_some() { a href=(format!("{base}/tasks")) { "Newest runs" } }
                    @if let Some(n) = &runs.next { a href=(format!("{base}/tasks?cursor={}", enc(n.as_str()))) { "Older runs" } }
                }
            }
        },
    ))
}

fn duration(r: &RunReport) -> String {
    let secs = (r.finished_at - r.started_at).max(0);
    if secs < 60 {
        format!("{secs} s")
    } else {
        format!("{} min {} s", secs / 60, secs % 60)
    }
}

#[derive(Deserialize)]
pub struct RunForm {
    #[serde(default)]
    dry_run: Option<String>,
}

/// `POST /admin/clients/{client}/tasks/{task}`: a dry run answers with its plan; a real run
/// goes to its report.
pub async fn run(
    State(app): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path((id, task)): Path<(String, String)>,
    Form(form): Form<RunForm>,
) -> Result<Response, Failure> {
    let c = load_client(&app, &user, &id).await?;
    let task = TaskName::parse(&task).ok_or_else(|| Failure::not_found(&user, "task"))?;
    let dry_run = form.dry_run.as_deref() == Some("true");
    let options = TaskOptions {
        dry_run,
        // Within API Gateway's 30 s; a longer run leaves a cursor the schedule continues.
        deadline: Some(Instant::now() + Duration::from_secs(25)),
        trigger: user.actor.clone(),
        max_members: None,
    };
    let report = tasks::run_task(&app, task, &c.id, &options)
        .await
        .map_err(|e| Failure::service(&user, e))?;
    if dry_run {
        Ok(report_page(&app, &user, &c, &report).await?.into_response())
    } else {
        Ok(
            Redirect::to(&format!("{}/runs/{}", client_path(&c.id), enc(&report.id)))
                .into_response(),
        )
    }
}

/// `GET /admin/clients/{client}/runs/{run}`.
pub async fn show_run(
    State(app): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path((id, run_id)): Path<(String, String)>,
) -> Result<Page, Failure> {
    let c = load_client(&app, &user, &id).await?;
    let report = app
        .store
        .get_run(&c.id, &run_id)
        .await
        .map_err(|e| Failure::store(&user, e))?
        .ok_or_else(|| Failure::not_found(&user, "run"))?;
    report_page(&app, &user, &c, &report).await
}

fn names(ids: &[String], roles: &[Role]) -> String {
    ids.iter()
        .map(|id| {
            roles
                .iter()
                .find(|r| &r.id == id)
                .map_or_else(|| format!("role {id}"), |r| r.name.clone())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn report_page(
    app: &AppState,
    user: &ConsoleUser,
    c: &Client,
    r: &RunReport,
) -> Result<Page, Failure> {
    let roles = app
        .store
        .list_roles(&c.id)
        .await
        .map_err(|e| Failure::store(user, e))?;
    // "@alice" rather than a Discord id, for the changes shown.
    let mut usernames = BTreeMap::new();
    for change in r.changes.iter().take(NAMED_CHANGES) {
        if let Ok(Some(m)) = app.store.get_member(&c.id, &change.user_id).await {
            if let Some(l) = m.link {
                usernames.insert(change.user_id.clone(), l.username);
            }
        }
    }
    let base = client_path(&c.id);
    let member_link = |user_id: &str| -> Markup {
        html! { a href=(format!("{base}/members/{}", enc(user_id))) { (user_id) } }
    };
    let who = |user_id: &str, discord_id: &str| -> Markup {
        html! {
            @match usernames.get(user_id) {
                Some(name) => { "@" (name) }
                None => { (discord_id) }
            }
            " (" (member_link(user_id)) ")"
        }
    };
    let title = if r.dry_run {
        format!("Dry run: {}", task_title(r.task))
    } else {
        format!("Run: {}", task_title(r.task))
    };
    let notice = r.dry_run.then(|| Notice::ok("Dry run: nothing was written to Discord or the store. This is what a run would do now."));
    Ok(shell(
        &title,
        Some(user),
        Some((c, Section::Tasks)),
        notice,
        html! {
            h1 { (title) }
            p.help {
                "Started " (time(r.started_at)) " · " (duration(r)) " · trigger " (r.trigger)
                @if !r.complete { " · " (badge("unknown", "continues at the next tick")) }
            }
            @if r.dry_run {
                section aria-labelledby="plan-h" {
                    h2 #plan-h { "Plan" }
                    @if r.changes.is_empty() { p { "Nothing to change." } }
                    @else {
                        ul.plan {
                            @for ch in &r.changes {
                                @if !ch.add_roles.is_empty() {
                                    li { "Would add " strong { (names(&ch.add_roles, &roles)) } " to " (who(&ch.user_id, &ch.discord_user_id)) }
                                }
                                @if !ch.remove_roles.is_empty() {
                                    li { "Would remove " strong { (names(&ch.remove_roles, &roles)) } " from " (who(&ch.user_id, &ch.discord_user_id)) }
                                }
                                @if let Some(n) = &ch.set_nickname {
                                    li { "Would set the nickname of " (who(&ch.user_id, &ch.discord_user_id)) " to " strong { (n.as_deref().unwrap_or("(none)")) } }
                                }
                            }
                        }
                    }
                    form method="post" action=(format!("{base}/tasks/{}", r.task.as_str())) {
                        (csrf_field(user))
                        button.primary type="submit" { "Run it for real" }
                    }
                }
            }
            div.cards {
                section.card aria-labelledby="counts-h" {
                    h2 #counts-h { "Counts" }
                    @if r.counts.is_empty() { p { "none" } }
                    dl { @for (k, v) in &r.counts { dt { (k.replace('_', " ")) } dd { (v) } } }
                }
                section.card aria-labelledby="calls-h" {
                    h2 #calls-h { "Discord calls" }
                    dl {
                        @for (route, n) in &r.calls { dt { code { (route) } } dd { (n) } }
                        dt { "429 answers" } dd { (r.rate_limited) }
                        dt { "invalid requests (401/403/429)" } dd { (r.invalid_requests) }
                    }
                }
            }
            @if !r.errors.is_empty() {
                section aria-labelledby="errors-h" {
                    h2 #errors-h { "Errors" }
                    ul {
                        @for e in &r.errors {
                            li {
                                @if let Some(u) = &e.user_id { (member_link(u)) ": " }
                                strong { (error_code(&e.code)) } " "
                                span.help { code { (e.code) } @if let Some(d) = e.discord_code { " / " (d) } " — " (e.message) }
                            }
                        }
                    }
                }
            }
            @if !r.dry_run && !r.changes.is_empty() {
                section aria-labelledby="changes-h" {
                    h2 #changes-h { "Changes" }
                    ul {
                        @for ch in &r.changes {
                            li {
                                (who(&ch.user_id, &ch.discord_user_id)) ": "
                                @if !ch.add_roles.is_empty() { "added " (names(&ch.add_roles, &roles)) " " }
                                @if !ch.remove_roles.is_empty() { "removed " (names(&ch.remove_roles, &roles)) " " }
                                @if let Some(n) = &ch.set_nickname { "nickname " (n.as_deref().unwrap_or("(none)")) }
                            }
                        }
                    }
                }
            }
            @if let Some(a) = &r.guild_audit {
                section aria-labelledby="guild-h" {
                    h2 #guild-h { "Guild audit" }
                    p { (a.members_seen) " members in the server, " (a.linked) " linked, "
                        strong { (a.unlinked) " nobody links" } "." }
                    @if !a.unlinked_sample.is_empty() {
                        p { "Some of them (Discord ids): " (a.unlinked_sample.join(", ")) }
                    }
                }
            }
            @if !r.group_changes.is_empty() {
                section aria-labelledby="groups-h" {
                    h2 #groups-h { "Groups rewritten from Discord" }
                    ul { @for g in &r.group_changes { li { (member_link(&g.user_id)) ": +" (g.added.join(", ")) " −" (g.removed.join(", ")) } } }
                }
            }
            @if !r.notes.is_empty() {
                section aria-labelledby="notes-h" {
                    h2 #notes-h { "Notes" }
                    ul { @for n in &r.notes { li { (n) } } }
                }
            }
        },
    ))
}
