//! The dashboard — every client with its health at a glance — and what every console page
//! shares for loading a client and failing in words.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use maud::{html, Markup};
use serde::Deserialize;

use crate::app::AppState;
use crate::domain::Client;
use crate::http::error::ApiError;
use crate::service::health::{client_summary, ClientSummary};
use crate::service::ServiceError;
use crate::store::StoreError;

use super::explain::task_title;
use super::page::{ago, badge, client_path, done_notice, error_page, health, shell, Page};
use super::session::ConsoleUser;

/// Clients shown per dashboard page (each costs a few store reads).
const CLIENTS_PER_PAGE: usize = 25;

/// A console request that could not be served, as a page saying why.
pub struct Failure(Page);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

impl Failure {
    pub fn not_found(user: &ConsoleUser, what: &str) -> Self {
        Self(error_page(
            Some(user),
            StatusCode::NOT_FOUND,
            "Not found",
            &format!("There is no {what} here. It may have been deleted."),
        ))
    }

    /// A page link whose cursor we did not make (edited or truncated).
    pub fn bad_cursor(user: &ConsoleUser) -> Self {
        Self(error_page(
            Some(user),
            StatusCode::BAD_REQUEST,
            "Broken page link",
            "The link's `cursor` is not one the console made. Start again from the first page.",
        ))
    }

    pub fn store(user: &ConsoleUser, e: StoreError) -> Self {
        Self::service(user, ServiceError::Store(e))
    }

    pub fn api(user: &ConsoleUser, e: ApiError) -> Self {
        let status = StatusCode::from_u16(e.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self(error_page(Some(user), status, &e.0.title, &e.0.detail))
    }

    pub fn service(user: &ConsoleUser, e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound(what) => Self::not_found(user, what),
            ServiceError::Store(StoreError::InvalidCursor) => Self::bad_cursor(user),
            ServiceError::Store(_) | ServiceError::Queue(_) | ServiceError::Secrets(_) => {
                tracing::error!(error = %e, "console: backend failure");
                Self(error_page(
                    Some(user),
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Temporarily unavailable",
                    "The connector could not reach its store or queue. Nothing was changed; try again in a moment.",
                ))
            }
            e => Self::api(user, ApiError::from(e)),
        }
    }

    pub fn discord(user: &ConsoleUser, problem: &str) -> Self {
        Self(error_page(
            Some(user),
            StatusCode::BAD_GATEWAY,
            "Discord did not answer as expected",
            &format!("{problem}. Nothing else was changed; try again in a moment."),
        ))
    }
}

/// The client of a console path, or a "not found" page.
pub async fn load_client(app: &AppState, user: &ConsoleUser, id: &str) -> Result<Client, Failure> {
    app.store
        .get_client(id)
        .await
        .map_err(|e| Failure::store(user, e))?
        .ok_or_else(|| Failure::not_found(user, "client"))
}

#[derive(Deserialize)]
pub struct DashboardQuery {
    done: Option<String>,
    page: Option<usize>,
}

/// `GET /admin`.
pub async fn dashboard(
    State(app): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Query(q): Query<DashboardQuery>,
) -> Result<Page, Failure> {
    let mut clients = app
        .store
        .list_clients()
        .await
        .map_err(|e| Failure::store(&user, e))?;
    clients.sort_by(|a, b| {
        a.name
            .to_lowercase()
            .cmp(&b.name.to_lowercase())
            .then(a.id.cmp(&b.id))
    });
    let pages = clients.len().div_ceil(CLIENTS_PER_PAGE).max(1);
    let page = q.page.unwrap_or(1).clamp(1, pages);
    let now = app.clock.now();
    let mut rows = Vec::new();
    for c in clients
        .iter()
        .skip((page - 1) * CLIENTS_PER_PAGE)
        .take(CLIENTS_PER_PAGE)
    {
        let summary = client_summary(&app, c)
            .await
            .map_err(|e| Failure::service(&user, e))?;
        rows.push(html! {
            tr {
                th scope="row" { a href=(client_path(&c.id)) { (c.name) } br; span.help { "server " (c.guild_id) } }
                (summary_cells(c, &summary, now))
            }
        });
    }
    Ok(shell(
        "Dashboard",
        Some(&user),
        None,
        done_notice(q.done.as_deref()),
        html! {
            h1 { "Clients" }
            @if clients.is_empty() {
                section.empty {
                    p { "No client yet. A client is one Discord application and the server it manages." }
                    p { a.button.primary href="/admin/clients/new" { "Set up your first client" } }
                }
            } @else {
                div.table-wrap {
                    table.stack {
                        caption.visually-hidden { "Every client and its health" }
                        thead { tr {
                            th scope="col" { "Client" }
                            th scope="col" { "Bot token" }
                            th scope="col" { "Hierarchy" }
                            th scope="col" { "Members" }
                            th scope="col" { "Last runs" }
                            th scope="col" { "429s (24 h)" }
                        } }
                        tbody { @for row in &rows { (row) } }
                    }
                }
                @if pages > 1 {
                    nav.pager aria-label="Pages" {
                        @for p in 1..=pages {
                            @if p == page { span aria-current="page" { (p) } }
                            @else { a href=(format!("/admin?page={p}")) { (p) } }
                        }
                    }
                }
                p { a.button href="/admin/clients/new" { "Set up another client" } }
            }
        },
    ))
}

/// The health cells of one client: bot token, hierarchy, members, last runs, 429s.
pub fn summary_cells(c: &Client, s: &ClientSummary, now: i64) -> Markup {
    let base = client_path(&c.id);
    let counts = &s.counts;
    html! {
        td data-label="Bot token" { (health(c.guild.bot_token_ok, "accepted", "refused", "not checked")) }
        td data-label="Hierarchy" {
            (health(s.hierarchy_ok, "OK", "blocked", "not synced"))
            @if !s.blocked_mapped.is_empty() {
                br; span.help { "move the bot above " (s.blocked_mapped.join(", ")) }
            }
        }
        td data-label="Members" {
            ul.counts {
                li { a href=(format!("{base}/members")) { (counts.linked) " linked" } " of " (counts.total) }
                li { a href=(format!("{base}/members?filter=pending")) { (counts.pending) " pending" } }
                li {
                    a href=(format!("{base}/members?filter=errors")) { (counts.errors) " with errors" }
                    @if counts.errors > 0 { " " (badge("bad", "!")) }
                }
                li { a href=(format!("{base}/members?filter=left")) { (counts.left) " left" } }
            }
        }
        td data-label="Last runs" {
            ul.counts {
                @for t in &s.tasks {
                    li {
                        (task_title(t.task)) ": "
                        @match &t.last {
                            Some(r) => {
                                a href=(format!("{base}/runs/{}", super::page::enc(&r.id))) { (ago(r.started_at, now)) }
                                @if !r.errors.is_empty() { " " (badge("bad", &format!("{} errors", r.errors.len()))) }
                                @else if !r.complete { " " (badge("unknown", "continuing")) }
                            }
                            None => { span.help { "never" } }
                        }
                        @if let Some(due) = t.next_due { span.help { " · next " (ago(due, now)) } }
                    }
                }
            }
        }
        td data-label="429s (24 h)" {
            @if s.rate_limited_24h == 0 { (badge("good", "0")) } @else { (badge("bad", &s.rate_limited_24h.to_string())) }
        }
    }
}

/// Any other `/admin/…` path.
pub async fn not_found(Extension(user): Extension<ConsoleUser>) -> Failure {
    Failure::not_found(&user, "page")
}
