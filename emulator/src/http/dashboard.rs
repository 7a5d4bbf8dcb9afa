//! `GET /`: a human-readable view of each guild's members and roles, refreshed every 2 s.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Html;

use crate::claims::may_claim;
use crate::shared::{lock, Shared};
use crate::world::{Guild, Role, World};

use super::html::{escape, page};
use super::AppState;

/// Keeps the page usable when a benchmark has loaded 100,000 members.
const MAX_ROWS: usize = 500;

pub(crate) async fn dashboard(State(s): State<AppState>) -> Html<String> {
    let authorized = authorized_section(&s);
    let linked = linked_roles_section(&s);
    let world = lock(&s.world);
    let mut body: String = world
        .guilds
        .values()
        .map(|g| guild_section(&world, g))
        .collect();
    body.push_str(&linked);
    body.push_str(&authorized);
    let head = "<meta http-equiv=\"refresh\" content=\"2\">";
    page(
        "Discord emulator",
        head,
        &format!("<h1>Discord emulator</h1>{body}"),
    )
}

/// Users who authorized the application, each with Discord's "Deauthorize" (User Settings →
/// Authorized Apps): it revokes their grants and sends APPLICATION_DEAUTHORIZED to the events URL.
fn authorized_section(s: &Shared) -> String {
    let users = lock(&s.oauth).authorized_users();
    let events_url = lock(&s.settings).events_url.clone();
    let world = lock(&s.world);
    let rows: String = users
        .iter()
        .take(MAX_ROWS)
        .map(|user| {
            let name = world.user_json(*user)["username"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            format!(
                "<tr><td>{user}</td><td>@{}</td><td><form method=\"post\" \
                 action=\"/_emulator/users/{user}/deauthorize?then=dashboard\">\
                 <button type=\"submit\">Deauthorize</button></form></td></tr>",
                escape(&name)
            )
        })
        .collect();
    let target = match &events_url {
        Some(url) => format!("events go to <code>{}</code>", escape(url)),
        None => "no events URL set: nothing is sent".to_owned(),
    };
    format!(
        "<h2>Authorized apps <small>({target})</small></h2>\
         <table><tr><th>User id</th><th>User</th><th></th></tr>{rows}</table>"
    )
}

/// Linked Roles: the application's metadata records, each user's role connection, and for each
/// role with requirements which members may claim it, each with Discord's "Claim" (server menu →
/// Linked Roles), which grants it.
fn linked_roles_section(s: &Shared) -> String {
    let records = lock(&s.role_connection_metadata).clone();
    let connections = s.connections();
    let now = s.clock.now();
    let world = lock(&s.world);
    let linked: Vec<(&Guild, u64, &Role)> = world
        .guilds
        .values()
        .flat_map(|g| {
            g.roles
                .iter()
                .filter(|(_, r)| r.is_linked())
                .map(move |(id, r)| (g, *id, r))
        })
        .collect();
    if records.is_empty() && connections.is_empty() && linked.is_empty() {
        return String::new();
    }
    let username = |user: u64| {
        world.user_json(user)["username"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let record_rows: String = records
        .iter()
        .map(|r| {
            format!(
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                escape(r["key"].as_str().unwrap_or_default()),
                r["type"],
                escape(r["name"].as_str().unwrap_or_default()),
            )
        })
        .collect();
    let connection_rows: String = connections
        .iter()
        .take(MAX_ROWS)
        .map(|(user, c)| {
            let metadata: Vec<String> = c["metadata"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{}={}", escape(k), escape(v.as_str().unwrap_or(""))))
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "<tr><td>{user}</td><td>@{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&username(*user)),
                escape(c["platform_name"].as_str().unwrap_or("")),
                escape(c["platform_username"].as_str().unwrap_or("")),
                metadata.join(", "),
            )
        })
        .collect();
    let role_blocks: String = linked
        .into_iter()
        .map(|(guild, role_id, role)| {
            let wanted: Vec<String> = role
                .linked_requirements
                .iter()
                .map(|r| format!("{} = {}", escape(&r.key), escape(&r.value)))
                .collect();
            let who = may_claim(guild, role, &records, &connections, now, MAX_ROWS);
            let ids: Vec<String> = who.iter().map(u64::to_string).collect();
            let rows: String = who
                .iter()
                .map(|user| {
                    let holds = guild
                        .members
                        .get(user)
                        .is_some_and(|m| m.roles.contains(&role_id));
                    let action = if holds {
                        "has it".to_owned()
                    } else {
                        format!(
                            "<form method=\"post\" action=\"/_emulator/guilds/{}/roles/{role_id}/claim?then=dashboard\">\
                             <input type=\"hidden\" name=\"user_id\" value=\"{user}\">\
                             <button type=\"submit\">Claim</button></form>",
                            guild.id
                        )
                    };
                    format!(
                        "<tr><td>{user}</td><td>@{}</td><td>{action}</td></tr>",
                        escape(&username(*user))
                    )
                })
                .collect();
            let table = if rows.is_empty() {
                String::new()
            } else {
                format!("<table><tr><th>User id</th><th>User</th><th></th></tr>{rows}</table>")
            };
            format!(
                "<p><strong>{}</strong> in {} requires {}: may claim it: {}</p>{table}",
                escape(&role.name),
                escape(&guild.name),
                wanted.join(" and "),
                if ids.is_empty() {
                    "nobody".to_owned()
                } else {
                    ids.join(", ")
                },
            )
        })
        .collect();
    format!(
        "<h2>Linked Roles</h2>\
         <table><tr><th>Key</th><th>Type</th><th>Name</th></tr>{record_rows}</table>\
         <table><tr><th>User id</th><th>User</th><th>Platform</th><th>Platform user</th>\
         <th>Metadata</th></tr>{connection_rows}</table>{role_blocks}"
    )
}

fn guild_section(world: &World, guild: &Guild) -> String {
    let role_names: BTreeMap<u64, &str> = guild
        .roles
        .iter()
        .map(|(id, r)| (*id, r.name.as_str()))
        .collect();
    let rows: String = guild
        .members
        .iter()
        .take(MAX_ROWS)
        .map(|(user, member)| {
            let name = world.user_json(*user)["username"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let mut roles: Vec<(i64, &str)> = member
                .roles
                .iter()
                .filter_map(|r| Some((guild.roles.get(r)?.position, *role_names.get(r)?)))
                .collect();
            roles.sort_by_key(|r| std::cmp::Reverse(r.0));
            let roles: Vec<String> = roles.iter().map(|(_, n)| escape(n)).collect();
            let owner = if *user == guild.owner_id {
                " (owner)"
            } else {
                ""
            };
            format!(
                "<tr><td>{user}</td><td>@{}{owner}</td><td>{}</td><td>{}</td></tr>",
                escape(&name),
                escape(member.nick.as_deref().unwrap_or("")),
                roles.join(", ")
            )
        })
        .collect();
    let more = guild.members.len().saturating_sub(MAX_ROWS);
    let more = if more > 0 {
        format!("<p>… and {more} more</p>")
    } else {
        String::new()
    };
    format!(
        "<h2>{} <small>({} members, member list intent {})</small></h2>\
         <table><tr><th>User id</th><th>User</th><th>Nick</th><th>Roles</th></tr>{rows}</table>{more}",
        escape(&guild.name),
        guild.members.len(),
        if guild.members_intent { "on" } else { "off" },
    )
}
