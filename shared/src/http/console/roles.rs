//! The guild's roles in Discord's order, whether the bot can manage each, and the group mapping
//! edited in place; "Sync roles" mirrors them from Discord again.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::html;
use serde::Deserialize;

use crate::app::AppState;
use crate::http::validate;
use crate::service::health::Hierarchy;
use crate::service::roles as svc;

use super::clients::DoneQuery;
use super::dashboard::{load_client, Failure};
use super::explain::error_code;
use super::page::{
    badge, client_path, csrf_field, done_notice, enc, shell, time, Notice, Page, Section,
};
use super::session::ConsoleUser;

/// `GET /admin/clients/{client}/roles`.
pub async fn list(
    State(app): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path(id): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Result<Page, Failure> {
    page(&app, &user, &id, done_notice(q.done.as_deref())).await
}

async fn page(
    app: &AppState,
    user: &ConsoleUser,
    id: &str,
    notice: Option<Notice>,
) -> Result<Page, Failure> {
    let c = load_client(app, user, id).await?;
    let roles = app
        .store
        .list_roles(&c.id)
        .await
        .map_err(|e| Failure::store(user, e))?;
    let hierarchy = Hierarchy::of(&c, &roles);
    let base = client_path(&c.id);
    let bot_top = c.guild.bot_top_position;
    Ok(shell(
        &format!("Roles · {}", c.name),
        Some(user),
        Some((&c, Section::Roles)),
        notice,
        html! {
            h1 { "Roles" }
            p { "Members get a role when they are in at least one of its groups. Only roles with groups are managed: "
                "the connector never adds or removes any other role." }
            form.inline method="post" action=(format!("{base}/roles/sync")) {
                (csrf_field(user))
                button.primary type="submit" { "Sync roles from Discord" }
                @if let Some(at) = c.guild.synced_at { " " span.help { "Last synced " (time(at)) "." } }
            }
            @if !hierarchy.blocked_mapped.is_empty() {
                div.notice.error role="alert" {
                    "Move the bot's role above: " strong { (hierarchy.blocked_mapped.join(", ")) }
                    " (Server Settings → Roles), then sync roles."
                }
            }
            @if roles.is_empty() {
                p { "No roles yet: sync them from Discord." }
            } @else {
                div.table-wrap {
                    table {
                        caption.visually-hidden { "Roles of the server, highest first" }
                        thead { tr {
                            th scope="col" { "Position" }
                            th scope="col" { "Role" }
                            th scope="col" { "Bot can manage" }
                            th scope="col" { "Site groups" }
                        } }
                        tbody {
                            @for r in &hierarchy.roles {
                                @let is_bot_top = bot_top == Some(r.role.position) && r.blocked_by.as_deref() == Some("role_above_bot");
                                tr class=[is_bot_top.then_some("bot-role")] {
                                    td { (r.role.position) }
                                    th scope="row" {
                                        (swatch(r.role.color))
                                        (r.role.name)
                                        @if r.role.color != 0 { " " span.help { "#" (format!("{:06x}", r.role.color)) } }
                                    }
                                    td {
                                        @if r.assignable { (badge("good", "yes")) }
                                        @else {
                                            (badge("bad", "no"))
                                            @if let Some(why) = &r.blocked_by { br; span.help { (blocked_text(why)) } }
                                        }
                                    }
                                    td {
                                        @if r.role.managed || r.blocked_by.as_deref() == Some("role_is_everyone") {
                                            span.help { "cannot be managed" }
                                        } @else {
                                            form.mapping method="post" action=(format!("{base}/roles/{}", enc(&r.role.id))) {
                                                (csrf_field(user))
                                                label.visually-hidden for=(format!("groups-{}", r.role.id)) { "Site groups for " (r.role.name) }
                                                input id=(format!("groups-{}", r.role.id)) name="groups" type="text"
                                                    value=(r.role.groups.iter().cloned().collect::<Vec<_>>().join(", "))
                                                    placeholder="e.g. officers, directors";
                                                button type="submit" { "Save" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// The role's colour as a small square: an SVG fill, which the page's CSP allows where an inline
/// style would not. Discord's 0 means "no colour".
fn swatch(color: u32) -> maud::Markup {
    let fill = if color == 0 {
        "#99aab5".to_owned()
    } else {
        format!("#{color:06x}")
    };
    html! {
        svg.swatch width="14" height="14" viewBox="0 0 14 14" aria-hidden="true" focusable="false" {
            rect width="14" height="14" rx="3" fill=(fill) {}
        }
    }
}

fn blocked_text(code: &str) -> &'static str {
    match code {
        "role_above_bot" => "at or above the bot's highest role",
        "role_managed_by_discord" => "managed by Discord (bot, booster or integration)",
        "role_is_everyone" => "@everyone",
        other => error_code(other),
    }
}

/// `POST /admin/clients/{client}/roles/sync` (seed step 11).
pub async fn sync(
    State(app): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path(id): Path<String>,
) -> Result<Response, Failure> {
    let c = load_client(&app, &user, &id).await?;
    match svc::sync_roles(&app, &c.id, &user.actor).await {
        Ok(_) => {
            Ok(Redirect::to(&format!("{}/roles?done=synced", client_path(&c.id))).into_response())
        }
        Err(crate::service::ServiceError::Discord(e)) => {
            let notice = Notice::error(format!(
                "Discord refused the sync ({}): {}",
                e.code(),
                error_code(e.code())
            ));
            Ok(page(&app, &user, &id, Some(notice)).await?.into_response())
        }
        Err(e) => Err(Failure::service(&user, e)),
    }
}

#[derive(Deserialize)]
pub struct MappingForm {
    #[serde(default)]
    groups: String,
}

/// `POST /admin/clients/{client}/roles/{role}`: comma- or newline-separated groups; empty stops
/// managing the role.
pub async fn map(
    State(app): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path((id, role)): Path<(String, String)>,
    Form(form): Form<MappingForm>,
) -> Result<Response, Failure> {
    let c = load_client(&app, &user, &id).await?;
    let groups: Vec<String> = form
        .groups
        .split([',', '\n'])
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect();
    let checked =
        validate::snowflake("role_id", &role).and_then(|_| validate::groups("groups", &groups));
    if let Err(e) = checked {
        let notice = Notice::error(format!("Not saved: {}", e.0.detail));
        return Ok(page(&app, &user, &id, Some(notice)).await?.into_response());
    }
    match svc::map_role(
        &app,
        &c.id,
        &role,
        groups.into_iter().collect(),
        &user.actor,
    )
    .await
    {
        Ok(_) => {
            Ok(Redirect::to(&format!("{}/roles?done=mapped", client_path(&c.id))).into_response())
        }
        Err(e) => Err(Failure::service(&user, e)),
    }
}
