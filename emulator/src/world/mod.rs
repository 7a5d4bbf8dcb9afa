//! The Discord-side world: the application's bot, the users who exist and the guilds, plus how
//! they look on the wire.

mod guild;
mod members;

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

pub(crate) use guild::{Guild, Member, Role};
pub(crate) use members::{Joined, MemberPatch, WriteContext};

use crate::clock::rfc3339;
use crate::error::DiscordError;
use crate::scenario::{Scenario, ScenarioApplication, ScenarioUser};
use crate::views::StateView;

#[derive(Clone, Debug)]
pub(crate) struct World {
    pub(crate) app: ScenarioApplication,
    pub(crate) bot_id: u64,
    pub(crate) users: HashMap<u64, ScenarioUser>,
    pub(crate) guilds: BTreeMap<u64, Guild>,
}

pub(crate) fn parse_id(id: &str) -> Option<u64> {
    id.parse().ok()
}

impl World {
    pub(crate) fn from_scenario(scenario: &Scenario, now: f64) -> Result<Self, String> {
        let app = scenario.application.clone();
        let bot_id = parse_id(&app.bot_user.id)
            .ok_or_else(|| format!("bot user id {:?}", app.bot_user.id))?;
        let mut users = HashMap::new();
        for user in &scenario.users {
            let id = parse_id(&user.id).ok_or_else(|| format!("user id {:?}", user.id))?;
            users.insert(id, user.clone());
        }
        let mut guilds = BTreeMap::new();
        for seed in &scenario.guilds {
            let guild = Guild::from_scenario(seed, now)?;
            guilds.insert(guild.id, guild);
        }
        Ok(Self {
            app,
            bot_id,
            users,
            guilds,
        })
    }

    pub(crate) fn guild(&self, id: &str) -> Result<&Guild, DiscordError> {
        parse_id(id)
            .and_then(|id| self.guilds.get(&id))
            .ok_or(DiscordError::UnknownGuild)
    }

    pub(crate) fn guild_mut(&mut self, id: &str) -> Result<&mut Guild, DiscordError> {
        parse_id(id)
            .and_then(|id| self.guilds.get_mut(&id))
            .ok_or(DiscordError::UnknownGuild)
    }

    /// Users not in the scenario still exist (bulk-generated members, ad-hoc approvals) with a
    /// synthesized name, so large benchmarks need not seed 100,000 user records.
    pub(crate) fn user_json(&self, id: u64) -> Value {
        if id == self.bot_id {
            return json!({
                "id": id.to_string(), "username": self.app.bot_user.username, "discriminator": "0",
                "global_name": null, "avatar": null, "bot": true,
            });
        }
        match self.users.get(&id) {
            Some(u) => json!({
                "id": u.id, "username": u.username, "discriminator": u.discriminator,
                "global_name": u.global_name, "avatar": null,
            }),
            None => json!({
                "id": id.to_string(), "username": format!("user{id}"), "discriminator": "0",
                "global_name": null, "avatar": null,
            }),
        }
    }

    pub(crate) fn member_json(&self, user: u64, member: &Member) -> Value {
        let roles: Vec<String> = member.roles.iter().map(u64::to_string).collect();
        json!({
            "user": self.user_json(user),
            "nick": member.nick,
            "avatar": null,
            "roles": roles,
            "joined_at": rfc3339(member.joined_at),
            "premium_since": null,
            "deaf": false,
            "mute": false,
            "flags": 0,
            "pending": false,
            "communication_disabled_until": null,
        })
    }

    pub(crate) fn roles_json(guild: &Guild) -> Value {
        let roles: Vec<Value> = guild
            .role_seeds()
            .into_iter()
            .map(|r| {
                let mut role = json!({
                    "id": r.id, "name": r.name, "position": r.position, "managed": r.managed,
                    "permissions": r.permissions, "color": r.color, "hoist": false, "mentionable": false,
                    "icon": null, "unicode_emoji": null, "flags": 0,
                });
                // Discord tags a linked role (`guild_connections` is present, and null).
                if !r.linked_requirements.is_empty() {
                    role["tags"] = json!({"guild_connections": null});
                }
                role
            })
            .collect();
        Value::Array(roles)
    }

    pub(crate) fn view(&self, rate_limited_count: u64) -> StateView {
        let mut users: Vec<ScenarioUser> = self.users.values().cloned().collect();
        users.sort_by(|a, b| a.id.cmp(&b.id));
        StateView {
            application_id: self.app.id.clone(),
            bot_user_id: self.bot_id.to_string(),
            guilds: self.guilds.values().map(Guild::view).collect(),
            users,
            rate_limited_count,
        }
    }
}
