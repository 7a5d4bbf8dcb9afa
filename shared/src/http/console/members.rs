//! Members: search and filters over any number of members (paged by cursor), a member's page
//! with their groups, link, roles on Discord, the pending change, the last error in words and
//! their audit trail, and the actions "apply now" and "unlink" (after a confirmation).

use std::collections::BTreeSet;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use maud::{html, Markup};
use serde::Deserialize;

use crate::app::AppState;
use crate::domain::plan::{desired_for, plan};
use crate::domain::{
    AuditSearch, Client, Current, GuildView, LastError, LinkStatus, Member, MemberFilter,
    MemberSearch, Role,
};
use crate::service::members as svc;
use crate::store::Cursor;

use super::clients::DoneQuery;
use super::dashboard::{load_client, Failure};
use super::explain::error_code;
use super::page::{
    ago, badge, client_path, csrf_field, done_notice, enc, shell, time, Notice, Page, Section,
};
use super::session::ConsoleUser;

const MEMBERS_PER_PAGE: usize = 50;

#[derive(Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    filter: Option<String>,
    cursor: Option<String>,
}

fn role_names(ids: &BTreeSet<String>, roles: &[Role]) -> Vec<String> {
    ids.iter()
        .map(|id| {
            roles
                .iter()
                .find(|r| &r.id == id)
                .map_or_else(|| format!("role {id}"), |r| r.name.clone())
        })
        .collect()
}

fn status_badge(m: &Member) -> Markup {
    match m.link.as_ref().map(|l| l.status) {
        Some(LinkStatus::Active) => badge("good", "linked"),
        Some(LinkStatus::Left) => badge("unknown", "left the server"),
        Some(LinkStatus::Revoked) => badge("bad", "revoked"),
        None => badge("unknown", "not linked"),
    }
}

fn discord_name(m: &Member) -> Markup {
    match &m.link {
        Some(l) => html! {
            @if l.username.contains('#') { (l.username) } @else { "@" (l.username) }
            br; span.help { (l.discord_user_id) }
        },
        None => html! { span.help { "—" } },
    }
}

/// `GET /admin/clients/{client}/members?q=&filter=&cursor=`.
pub async fn list(
    State(app): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Page, Failure> {
    let c = load_client(&app, &user, &id).await?;
    let filter = q
        .filter
        .as_deref()
        .and_then(MemberFilter::parse)
        .unwrap_or_default();
    let text =
        q.q.as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
    let search = MemberSearch {
        filter,
        text: text.clone(),
    };
    let cursor = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(raw) => Some(Cursor::parse(raw).map_err(|_| Failure::bad_cursor(&user))?),
        None => None,
    };
    let base = client_path(&c.id);
    // An exact site user id goes straight to the member.
    if let (Some(t), None) = (&text, &cursor) {
        if let Ok(Some(m)) = app.store.get_member(&c.id, t).await {
            if filter.matches(&m) && search_is_exact(t, &m) {
                return Ok(list_page(
                    &app,
                    &user,
                    &c,
                    &search,
                    vec![m],
                    None,
                    q.cursor.is_some(),
                ));
            }
        }
    }
    let page = app
        .store
        .search_members(&c.id, &search, cursor.as_ref(), MEMBERS_PER_PAGE)
        .await
        .map_err(|e| Failure::store(&user, e))?;
    let next = page.next.map(|n| {
        let mut url = format!(
            "{base}/members?filter={}&cursor={}",
            filter.as_str(),
            enc(n.as_str())
        );
        if let Some(t) = &text {
            url.push_str(&format!("&q={}", enc(t)));
        }
        url
    });
    Ok(list_page(
        &app,
        &user,
        &c,
        &search,
        page.items,
        next,
        cursor.is_some(),
    ))
}

fn search_is_exact(text: &str, m: &Member) -> bool {
    m.user.user_id == text
}

fn list_page(
    app: &AppState,
    user: &ConsoleUser,
    c: &Client,
    search: &MemberSearch,
    members: Vec<Member>,
    next: Option<String>,
    paged: bool,
) -> Page {
    let base = client_path(&c.id);
    let now = app.clock.now();
    let text = search.text.clone().unwrap_or_default();
    shell(
        &format!("Members · {}", c.name),
        Some(user),
        Some((c, Section::Members)),
        None,
        html! {
            h1 { "Members" }
            form.search method="get" action=(format!("{base}/members")) role="search" {
                div.field {
                    label for="q" { "Site user id, Discord username or Discord id" }
                    input #q type="search" name="q" value=(text) autocomplete="off" spellcheck="false";
                }
                div.field {
                    label for="filter" { "Show" }
                    select #filter name="filter" {
                        @for f in MemberFilter::ALL {
                            option value=(f.as_str()) selected[f == search.filter] { (filter_label(f)) }
                        }
                    }
                }
                button type="submit" { "Search" }
            }
            @if members.is_empty() {
                p { "No member on this page matches." @if next.is_some() { " More members remain to be searched: see the next page." } }
            } @else {
                div.table-wrap {
                    table.stack {
                        caption.visually-hidden { "Members" }
                        thead { tr {
                            th scope="col" { "Site user" }
                            th scope="col" { "Discord" }
                            th scope="col" { "Status" }
                            th scope="col" { "Groups" }
                            th scope="col" { "Updated" }
                        } }
                        tbody {
                            @for m in &members {
                                tr {
                                    th scope="row" { a href=(format!("{base}/members/{}", enc(&m.user.user_id))) { (m.user.user_id) } }
                                    td data-label="Discord" { (discord_name(m)) }
                                    td data-label="Status" {
                                        (status_badge(m))
                                        @if m.pending { " " (badge("unknown", "pending")) }
                                        @if m.last_error.is_some() { " " (badge("bad", "error")) }
                                    }
                                    td data-label="Groups" { (m.user.groups.iter().cloned().collect::<Vec<_>>().join(", ")) }
                                    td data-label="Updated" { (ago(m.updated_at, now)) }
                                }
                            }
                        }
                    }
                }
            }
            nav.pager aria-label="Pages" {
                @if paged {
                    a href=(format!("{base}/members?filter={}&q={}", search.filter.as_str(), enc(&text))) { "First page" }
                }
                @if let Some(next) = next { a href=(next) { "Next page" } }
            }
        },
    )
}

fn filter_label(f: MemberFilter) -> &'static str {
    match f {
        MemberFilter::All => "Everyone",
        MemberFilter::Pending => "Pending",
        MemberFilter::Errors => "With errors",
        MemberFilter::Left => "Left the server",
        MemberFilter::Revoked => "Revoked",
        MemberFilter::Unlinked => "Not linked",
    }
}

fn last_error(e: &LastError, now: i64) -> Markup {
    html! {
        div.notice.error {
            p { strong { (error_code(&e.code)) } }
            p.help {
                "Code " code { (e.code) }
                @if let Some(d) = e.discord_code { ", Discord code " code { (d) } }
                ", " (ago(e.at, now)) ": " (e.message)
            }
        }
    }
}

async fn load_member(
    app: &AppState,
    user: &ConsoleUser,
    c: &Client,
    user_id: &str,
) -> Result<Member, Failure> {
    app.store
        .get_member(&c.id, user_id)
        .await
        .map_err(|e| Failure::store(user, e))?
        .ok_or_else(|| Failure::not_found(user, "member"))
}

/// `GET /admin/clients/{client}/members/{user}`.
pub async fn show(
    State(app): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path((id, user_id)): Path<(String, String)>,
    Query(q): Query<DoneQuery>,
) -> Result<Page, Failure> {
    let c = load_client(&app, &user, &id).await?;
    let m = load_member(&app, &user, &c, &user_id).await?;
    let roles = app
        .store
        .list_roles(&c.id)
        .await
        .map_err(|e| Failure::store(&user, e))?;
    let audit = app
        .store
        .search_audit(
            &c.id,
            &AuditSearch {
                member: Some(m.user.user_id.clone()),
                ..AuditSearch::default()
            },
            None,
            25,
        )
        .await
        .map_err(|e| Failure::store(&user, e))?;
    let now = app.clock.now();
    let base = client_path(&c.id);
    let member_path = format!("{base}/members/{}", enc(&m.user.user_id));
    let change = m.active_link().map(|link| {
        let desired = desired_for(&m.user, link, &roles, c.nickname_template.as_deref());
        let current = Current {
            discord_user_id: link.discord_user_id.clone(),
            roles: link.applied_roles.clone(),
            nickname: link.nickname.clone(),
        };
        let guild = GuildView {
            guild_id: &c.guild_id,
            roles: &roles,
            bot_top_position: c.guild.bot_top_position,
            owner_id: c.guild.owner_id.as_deref(),
        };
        let p = plan(&desired, &current, &guild);
        (desired, p)
    });
    Ok(shell(
        &format!("{} · {}", m.user.user_id, c.name),
        Some(&user),
        Some((&c, Section::Members)),
        done_notice(q.done.as_deref()),
        html! {
            h1 { "Member " (m.user.user_id) }
            p { (status_badge(&m)) @if m.pending { " " (badge("unknown", "pending")) } }
            @if let Some(e) = &m.last_error { (last_error(e, now)) }
            div.cards {
                section.card aria-labelledby="site-h" {
                    h2 #site-h { "On the website" }
                    dl {
                        dt { "Groups" } dd { @if m.user.groups.is_empty() { "none" } @else { (m.user.groups.iter().cloned().collect::<Vec<_>>().join(", ")) } }
                        @for (k, v) in &m.user.attributes { dt { (k) } dd { (v) } }
                        dt { "Updated" } dd { (time(m.updated_at)) }
                    }
                }
                section.card aria-labelledby="discord-h" {
                    h2 #discord-h { "On Discord" }
                    @match &m.link {
                        Some(l) => {
                            dl {
                                dt { "Account" } dd { (discord_name(&m)) }
                                @if let Some(g) = &l.global_name { dt { "Display name" } dd { (g) } }
                                dt { "Nickname" } dd { (l.nickname.as_deref().unwrap_or("none")) }
                                dt { "Managed roles" } dd {
                                    @if l.applied_roles.is_empty() { "none" } @else { (role_names(&l.applied_roles, &roles).join(", ")) }
                                    @if !l.roles_known { br; span.help { "as imported; read from Discord at the next remote sync" } }
                                }
                                dt { "Linked" } dd { (time(l.linked_at)) }
                                @if crate::domain::linked_roles::needs_relink(c.linked_roles.as_ref(), l) {
                                    dt { "Linked Roles" } dd {
                                        (badge("warn", "needs relink"))
                                        " Linked before Linked Roles were on: the member must link again to share their metadata with Discord."
                                        @if let (Some(at), true) = (l.relink_requested_at, c.webhook_url.is_some()) {
                                            " The website was told (" code { "link.needs_relink" } ") " (time(at)) "."
                                        }
                                    }
                                }
                            }
                        }
                        None => { p { "Not linked. The website sends the member a link button." } }
                    }
                }
            }
            @if let Some((desired, p)) = &change {
                section aria-labelledby="plan-h" {
                    h2 #plan-h { "What their groups entitle them to" }
                    p { "Roles: " @if desired.roles.is_empty() { "none" } @else { (role_names(&desired.roles, &roles).join(", ")) } }
                    @if p.is_noop() && p.issues.is_empty() {
                        p { (badge("good", "in line")) " Discord matches their groups as far as we know." }
                    } @else {
                        ul {
                            @for r in &p.add { li { "Would add " strong { (role_names(&BTreeSet::from([r.clone()]), &roles).join("")) } } }
                            @for r in &p.remove { li { "Would remove " strong { (role_names(&BTreeSet::from([r.clone()]), &roles).join("")) } } }
                            @if let Some(n) = &p.nickname { li { "Would set the nickname to " strong { (n.as_deref().unwrap_or("(none)")) } } }
                            @for i in &p.issues { li.field-error { (i.message()) } }
                        }
                    }
                }
            }
            @if !m.unlinking.is_empty() {
                section aria-labelledby="unlinking-h" {
                    h2 #unlinking-h { "Former accounts being cleaned up" }
                    ul {
                        @for u in m.unlinking.values() {
                            li {
                                (u.discord_user_id) ": " (role_names(&u.roles, &roles).join(", "))
                                " since " (time(u.since))
                                @if u.refused { " " (badge("bad", "refused by Discord")) }
                                @if let Some(e) = &u.last_error { " — " (error_code(&e.code)) }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="actions-h" {
                h2 #actions-h { "Actions" }
                div.actions {
                    @if m.active_link().is_some() {
                        form method="post" action=(format!("{member_path}/apply")) {
                            (csrf_field(&user))
                            button.primary type="submit" { "Apply now" }
                        }
                    }
                    @if m.link.is_some() {
                        a.button.danger href=(format!("{member_path}/unlink")) { "Unlink…" }
                    }
                }
            }
            section aria-labelledby="audit-h" {
                h2 #audit-h { "Audit trail" }
                @if audit.items.is_empty() { p { "Nothing recorded yet." } }
                @else {
                    div.table-wrap {
                        table {
                            caption.visually-hidden { "Audit entries of this member, newest first" }
                            thead { tr { th scope="col" { "When" } th scope="col" { "Action" } th scope="col" { "By" } th scope="col" { "Detail" } } }
                            tbody {
                                @for e in &audit.items {
                                    tr { td { (time(e.at)) } td { code { (e.action) } } td { (e.actor) } td { code.detail { (e.detail.to_string()) } } }
                                }
                            }
                        }
                    }
                    p { a href=(format!("{base}/audit?member={}", enc(&m.user.user_id))) { "All audit entries of this member" } }
                }
            }
        },
    ))
}

/// `POST …/members/{user}/apply`: re-check the member now (the guild's writer does it within
/// seconds).
pub async fn apply(
    State(app): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<Response, Failure> {
    let c = load_client(&app, &user, &id).await?;
    svc::recheck(&app, &c.id, &user_id)
        .await
        .map_err(|e| Failure::service(&user, e))?;
    Ok(Redirect::to(&format!(
        "{}/members/{}?done=applied",
        client_path(&c.id),
        enc(&user_id)
    ))
    .into_response())
}

/// `GET …/members/{user}/unlink`: what unlinking will do, and the button.
pub async fn confirm_unlink(
    State(app): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<Page, Failure> {
    let c = load_client(&app, &user, &id).await?;
    let m = load_member(&app, &user, &c, &user_id).await?;
    let Some(link) = &m.link else {
        return Ok(shell(
            "Not linked",
            Some(&user),
            Some((&c, Section::Members)),
            Some(Notice::error("This member has no link.")),
            html! {},
        ));
    };
    let member_path = format!("{}/members/{}", client_path(&c.id), enc(&m.user.user_id));
    let what = match c.unlink_policy {
        crate::domain::UnlinkPolicy::Kick => "kicked from the server",
        crate::domain::UnlinkPolicy::RemoveRoles => {
            "stripped of the roles the connector manages (they stay in the server)"
        }
    };
    Ok(shell(
        "Unlink",
        Some(&user),
        Some((&c, Section::Members)),
        None,
        html! {
            h1 { "Unlink " (m.user.user_id) "?" }
            p { "Discord account " strong { "@" (link.username) } " (" (link.discord_user_id) ") will be " (what)
                ", and the connector's access to it is revoked. The account is free to link again at once." }
            div.actions {
                form method="post" action=(format!("{member_path}/unlink")) {
                    (csrf_field(&user))
                    button.danger type="submit" { "Unlink" }
                }
                a.button href=(member_path) { "Cancel" }
            }
        },
    ))
}

/// `POST …/members/{user}/unlink`.
pub async fn unlink(
    State(app): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<Response, Failure> {
    let c = load_client(&app, &user, &id).await?;
    svc::unlink(&app, &c.id, &user_id, &user.actor)
        .await
        .map_err(|e| Failure::service(&user, e))?;
    Ok(Redirect::to(&format!(
        "{}/members/{}?done=unlinked",
        client_path(&c.id),
        enc(&user_id)
    ))
    .into_response())
}
