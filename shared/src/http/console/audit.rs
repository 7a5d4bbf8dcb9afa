//! The audit log with filters: member, action, actor, time range.

use axum::extract::{Path, Query, State};
use axum::Extension;
use maud::html;
use serde::Deserialize;

use crate::app::AppState;
use crate::domain::AuditSearch;
use crate::store::Cursor;

use super::dashboard::{load_client, Failure};
use super::explain::AUDIT_ACTIONS;
use super::page::{client_path, date_start, enc, shell, time, Notice, Page, Section};
use super::session::ConsoleUser;

const ENTRIES_PER_PAGE: usize = 50;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AuditQuery {
    member: String,
    action: String,
    actor: String,
    /// `YYYY-MM-DD`, from the start of that day (UTC).
    since: String,
    /// `YYYY-MM-DD`, to the end of that day (UTC).
    until: String,
    cursor: String,
}

fn given(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// `GET /admin/clients/{client}/audit`.
pub async fn list(
    State(app): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path(id): Path<String>,
    Query(q): Query<AuditQuery>,
) -> Result<Page, Failure> {
    let c = load_client(&app, &user, &id).await?;
    let mut problems = Vec::new();
    let mut day = |field: &str, v: &str, end: bool| match given(v) {
        None => None,
        Some(v) => match date_start(&v) {
            Some(start) => Some(if end { start + 86_399 } else { start }),
            None => {
                problems.push(format!("{field}: {v:?} is not a date (YYYY-MM-DD)"));
                None
            }
        },
    };
    let search = AuditSearch {
        member: given(&q.member),
        action: given(&q.action),
        actor: given(&q.actor),
        since: day("From", &q.since, false),
        until: day("To", &q.until, true),
    };
    let cursor = match given(&q.cursor) {
        Some(raw) => Some(Cursor::parse(&raw).map_err(|_| Failure::bad_cursor(&user))?),
        None => None,
    };
    let page = app
        .store
        .search_audit(&c.id, &search, cursor.as_ref(), ENTRIES_PER_PAGE)
        .await
        .map_err(|e| Failure::store(&user, e))?;
    let base = client_path(&c.id);
    let filters = format!(
        "member={}&action={}&actor={}&since={}&until={}",
        enc(q.member.trim()),
        enc(q.action.trim()),
        enc(q.actor.trim()),
        enc(q.since.trim()),
        enc(q.until.trim())
    );
    let notice = (!problems.is_empty()).then(|| Notice::error(problems.join("; ")));
    Ok(shell(
        &format!("Audit log · {}", c.name),
        Some(&user),
        Some((&c, Section::Audit)),
        notice,
        html! {
            h1 { "Audit log" }
            form.search method="get" action=(format!("{base}/audit")) {
                div.field {
                    label for="a-member" { "Member (site user id or Discord id)" }
                    input #a-member type="text" name="member" value=(q.member) autocomplete="off";
                }
                div.field {
                    label for="a-action" { "Action" }
                    select #a-action name="action" {
                        option value="" selected[q.action.is_empty()] { "Any" }
                        @for a in AUDIT_ACTIONS { option value=(a) selected[q.action == *a] { (a) } }
                    }
                }
                div.field {
                    label for="a-actor" { "By" }
                    input #a-actor type="text" name="actor" value=(q.actor) placeholder="e.g. schedule, admin, console" autocomplete="off";
                }
                div.field {
                    label for="a-since" { "From (UTC)" }
                    input #a-since type="date" name="since" value=(q.since);
                }
                div.field {
                    label for="a-until" { "To (UTC)" }
                    input #a-until type="date" name="until" value=(q.until);
                }
                button type="submit" { "Filter" }
            }
            @if page.items.is_empty() {
                p { "No entry on this page matches." @if page.next.is_some() { " Older entries remain: see the next page." } }
            } @else {
                div.table-wrap {
                    table {
                        caption.visually-hidden { "Audit entries, newest first" }
                        thead { tr {
                            th scope="col" { "When" }
                            th scope="col" { "Action" }
                            th scope="col" { "By" }
                            th scope="col" { "Member" }
                            th scope="col" { "Detail" }
                        } }
                        tbody {
                            @for e in &page.items {
                                tr {
                                    td { (time(e.at)) }
                                    td { code { (e.action) } }
                                    td { (e.actor) }
                                    td {
                                        @if let Some(u) = &e.user_id { a href=(format!("{base}/members/{}", enc(u))) { (u) } }
                                        @if let Some(d) = &e.discord_user_id { br; span.help { (d) } }
                                    }
                                    td { code.detail { (e.detail.to_string()) } }
                                }
                            }
                        }
                    }
                }
            }
            nav.pager aria-label="Pages" {
                @if cursor.is_some() { a href=(format!("{base}/audit?{filters}")) { "Newest entries" } }
                @if let Some(n) = &page.next { a href=(format!("{base}/audit?{filters}&cursor={}", enc(n.as_str()))) { "Older entries" } }
            }
        },
    ))
}
