//! `GET /`: a human-readable view of each guild's members and roles, refreshed every 2 s.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Html;

use crate::shared::lock;
use crate::world::{Guild, World};

use super::html::{escape, page};
use super::AppState;

/// Keeps the page usable when a benchmark has loaded 100,000 members.
const MAX_ROWS: usize = 500;

pub(crate) async fn dashboard(State(s): State<AppState>) -> Html<String> {
    let world = lock(&s.world);
    let body: String = world
        .guilds
        .values()
        .map(|g| guild_section(&world, g))
        .collect();
    let head = "<meta http-equiv=\"refresh\" content=\"2\">";
    page(
        "Discord emulator",
        head,
        &format!("<h1>Discord emulator</h1>{body}"),
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
