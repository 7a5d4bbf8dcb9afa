//! One guild: its roles, members (keyed by user id so listing `after` is a range scan), bans and
//! audit log, plus the role-hierarchy rules Discord enforces on a bot.

use std::collections::{BTreeMap, BTreeSet};

use crate::audit::{AuditAction, AuditLogEntry};
use crate::error::DiscordError;
use crate::linked::LinkedRequirement;
use crate::scenario::{ScenarioGuild, ScenarioRole};
use crate::views::{GuildView, MemberView};

use super::parse_id;

#[derive(Clone, Debug)]
pub(crate) struct Role {
    pub(crate) name: String,
    pub(crate) position: i64,
    pub(crate) managed: bool,
    pub(crate) permissions: String,
    pub(crate) color: u32,
    /// Linked Roles requirements (server settings → Roles → Links); empty: not a linked role.
    pub(crate) linked_requirements: Vec<LinkedRequirement>,
}

impl Role {
    pub(crate) fn is_linked(&self) -> bool {
        !self.linked_requirements.is_empty()
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Member {
    pub(crate) nick: Option<String>,
    /// Never contains `@everyone`: Discord leaves it implicit.
    pub(crate) roles: BTreeSet<u64>,
    pub(crate) joined_at: f64,
    /// Linked roles the member claimed themselves (a subset of `roles`): Discord takes these
    /// back when the member stops meeting the requirements. A role given by the bot or by hand
    /// is not a claim and is left alone.
    pub(crate) claimed: BTreeSet<u64>,
}

impl Member {
    /// Replaces the member's roles; a claimed role that is gone stops being a claim (given
    /// again later by the bot, it is not one).
    pub(crate) fn set_roles(&mut self, roles: BTreeSet<u64>) {
        self.claimed.retain(|r| roles.contains(r));
        self.roles = roles;
    }

    pub(crate) fn remove_role(&mut self, role: u64) {
        self.roles.remove(&role);
        self.claimed.remove(&role);
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Guild {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) owner_id: u64,
    pub(crate) members_intent: bool,
    pub(crate) roles: BTreeMap<u64, Role>,
    pub(crate) members: BTreeMap<u64, Member>,
    pub(crate) banned: BTreeSet<u64>,
    pub(crate) audit_log: Vec<AuditLogEntry>,
}

impl Guild {
    pub(crate) fn from_scenario(seed: &ScenarioGuild, now: f64) -> Result<Self, String> {
        let id = parse_id(&seed.id).ok_or_else(|| format!("guild id {:?}", seed.id))?;
        let mut guild = Guild {
            id,
            name: seed.name.clone(),
            owner_id: parse_id(&seed.owner_id)
                .ok_or_else(|| format!("owner {:?}", seed.owner_id))?,
            members_intent: seed.members_intent,
            roles: BTreeMap::new(),
            members: BTreeMap::new(),
            banned: BTreeSet::new(),
            audit_log: Vec::new(),
        };
        for role in &seed.roles {
            guild.upsert_role(role)?;
        }
        // Discord always has @everyone; scenarios may leave it out.
        guild.roles.entry(id).or_insert_with(|| Role {
            name: "@everyone".to_owned(),
            position: 0,
            managed: false,
            permissions: "0".to_owned(),
            color: 0,
            linked_requirements: Vec::new(),
        });
        for m in &seed.members {
            let user = parse_id(&m.user_id).ok_or_else(|| format!("member {:?}", m.user_id))?;
            let roles = m
                .roles
                .iter()
                .map(|r| parse_id(r).ok_or_else(|| format!("role {r:?}")));
            let roles = roles.collect::<Result<BTreeSet<u64>, String>>()?;
            guild.insert_member(user, m.nick.clone(), roles, now);
        }
        for b in &seed.banned {
            guild
                .banned
                .insert(parse_id(b).ok_or_else(|| format!("banned {b:?}"))?);
        }
        Ok(guild)
    }

    pub(crate) fn upsert_role(&mut self, role: &ScenarioRole) -> Result<(), String> {
        let id = parse_id(&role.id).ok_or_else(|| format!("role id {:?}", role.id))?;
        let entry = Role {
            name: role.name.clone(),
            position: role.position,
            managed: role.managed,
            permissions: role.permissions.clone(),
            color: role.color,
            linked_requirements: role.linked_requirements.clone(),
        };
        self.roles.insert(id, entry);
        Ok(())
    }

    /// Unknown roles and `@everyone` are dropped: a member only ever holds real, assignable ids.
    pub(crate) fn insert_member(
        &mut self,
        user: u64,
        nick: Option<String>,
        roles: BTreeSet<u64>,
        now: f64,
    ) {
        let roles = self.known_roles(roles);
        self.members.insert(
            user,
            Member {
                nick,
                roles,
                joined_at: now,
                claimed: BTreeSet::new(),
            },
        );
    }

    pub(crate) fn known_roles(&self, roles: impl IntoIterator<Item = u64>) -> BTreeSet<u64> {
        roles
            .into_iter()
            .filter(|r| *r != self.id && self.roles.contains_key(r))
            .collect()
    }

    pub(crate) fn member(&self, user: u64) -> Result<&Member, DiscordError> {
        self.members.get(&user).ok_or(DiscordError::UnknownMember)
    }

    /// The member's highest role position; 0 (`@everyone`) for members without roles.
    pub(crate) fn top_position(&self, user: u64) -> i64 {
        self.members
            .get(&user)
            .into_iter()
            .flat_map(|m| m.roles.iter())
            .filter_map(|r| self.roles.get(r).map(|role| role.position))
            .max()
            .unwrap_or(0)
    }

    /// A bot may grant or take a role only strictly below its own highest role, and never a
    /// managed one (bot, booster, integration roles).
    pub(crate) fn check_assignable(&self, role: u64, bot: u64) -> Result<(), DiscordError> {
        let found = self.roles.get(&role).ok_or(DiscordError::UnknownRole)?;
        if found.managed || found.position >= self.top_position(bot) {
            return Err(DiscordError::MissingPermissions);
        }
        Ok(())
    }

    /// Nicknames and kicks: never the owner, never anyone at or above the bot.
    pub(crate) fn check_moderatable(&self, target: u64, bot: u64) -> Result<(), DiscordError> {
        if target == self.owner_id || self.top_position(target) >= self.top_position(bot) {
            return Err(DiscordError::MissingPermissions);
        }
        Ok(())
    }

    pub(crate) fn record(
        &mut self,
        action: AuditAction,
        target: u64,
        role: Option<u64>,
        reason: Option<String>,
        at: f64,
    ) {
        self.audit_log.push(AuditLogEntry {
            action,
            target_user_id: target.to_string(),
            role_id: role.map(|r| r.to_string()),
            reason,
            at,
        });
    }

    pub(crate) fn member_view(user: u64, member: &Member) -> MemberView {
        MemberView {
            user_id: user.to_string(),
            nick: member.nick.clone(),
            roles: member.roles.iter().map(u64::to_string).collect(),
        }
    }

    pub(crate) fn role_seeds(&self) -> Vec<ScenarioRole> {
        let mut roles: Vec<ScenarioRole> = self
            .roles
            .iter()
            .map(|(id, r)| ScenarioRole {
                id: id.to_string(),
                name: r.name.clone(),
                position: r.position,
                managed: r.managed,
                permissions: r.permissions.clone(),
                color: r.color,
                linked_requirements: r.linked_requirements.clone(),
            })
            .collect();
        roles.sort_by(|a, b| b.position.cmp(&a.position).then_with(|| a.id.cmp(&b.id)));
        roles
    }

    pub(crate) fn view(&self) -> GuildView {
        GuildView {
            id: self.id.to_string(),
            name: self.name.clone(),
            owner_id: self.owner_id.to_string(),
            members_intent: self.members_intent,
            roles: self.role_seeds(),
            member_count: self.members.len(),
            members: self
                .members
                .iter()
                .map(|(u, m)| Self::member_view(*u, m))
                .collect(),
            banned: self.banned.iter().map(u64::to_string).collect(),
        }
    }
}
