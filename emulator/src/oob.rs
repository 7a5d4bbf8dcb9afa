//! Out-of-band changes and inspection, as if someone acted in Discord's own client: shared by
//! the Rust test API and the `/_emulator` HTTP control API.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use crate::audit::AuditLogEntry;
use crate::scenario::{ScenarioRole, ScenarioUser};
use crate::shared::{lock, Shared};
use crate::views::{MemberView, StateView};
use crate::world::{parse_id, Guild};

impl Shared {
    /// Runs `change` on the guild; `None` when the guild id is unknown.
    fn with_guild<T>(&self, guild: &str, change: impl FnOnce(&mut Guild, f64) -> T) -> Option<T> {
        let now = self.clock.now();
        let mut world = lock(&self.world);
        world.guild_mut(guild).ok().map(|g| change(g, now))
    }

    pub(crate) fn member(&self, guild: &str, user: &str) -> Option<MemberView> {
        let user = parse_id(user)?;
        let world = lock(&self.world);
        let member = world.guild(guild).ok()?.members.get(&user)?;
        Some(Guild::member_view(user, member))
    }

    pub(crate) fn members(&self, guild: &str) -> Vec<MemberView> {
        let world = lock(&self.world);
        world
            .guild(guild)
            .map(|g| {
                g.members
                    .iter()
                    .map(|(u, m)| Guild::member_view(*u, m))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// False when the guild or the member does not exist.
    pub(crate) fn set_member_roles(&self, guild: &str, user: &str, roles: Vec<String>) -> bool {
        let Some(user) = parse_id(user) else {
            return false;
        };
        self.with_guild(guild, |g, _| {
            let roles = g.known_roles(roles.iter().filter_map(|r| parse_id(r)));
            g.members
                .get_mut(&user)
                .map(|m| m.set_roles(roles))
                .is_some()
        })
        .unwrap_or(false)
    }

    /// Adds or replaces the member; false when the guild or an id is unknown.
    pub(crate) fn add_member(
        &self,
        guild: &str,
        user: &str,
        nick: Option<String>,
        roles: Vec<String>,
    ) -> bool {
        let Some(user) = parse_id(user) else {
            return false;
        };
        let roles: BTreeSet<u64> = roles.iter().filter_map(|r| parse_id(r)).collect();
        self.with_guild(guild, |g, now| g.insert_member(user, nick, roles, now))
            .is_some()
    }

    pub(crate) fn add_members_bulk(
        &self,
        guild: &str,
        first_user_id: u64,
        count: u64,
        roles: &[String],
    ) -> bool {
        let roles: BTreeSet<u64> = roles.iter().filter_map(|r| parse_id(r)).collect();
        self.with_guild(guild, |g, now| {
            let roles = g.known_roles(roles);
            for user in first_user_id..first_user_id.saturating_add(count) {
                g.insert_member(user, None, roles.clone(), now);
            }
        })
        .is_some()
    }

    pub(crate) fn remove_member(&self, guild: &str, user: &str) -> bool {
        let Some(user) = parse_id(user) else {
            return false;
        };
        self.with_guild(guild, |g, _| g.members.remove(&user).is_some())
            .unwrap_or(false)
    }

    pub(crate) fn add_user(&self, user: ScenarioUser) -> bool {
        let Some(id) = parse_id(&user.id) else {
            return false;
        };
        lock(&self.world).users.insert(id, user);
        true
    }

    /// Its Linked Roles requirements may have changed: claims are checked again.
    pub(crate) fn upsert_role(&self, guild: &str, role: &ScenarioRole) -> bool {
        let applied = self
            .with_guild(guild, |g, _| g.upsert_role(role).is_ok())
            .unwrap_or(false);
        if applied {
            self.reevaluate_claims();
        }
        applied
    }

    pub(crate) fn set_role_position(&self, guild: &str, role: &str, position: i64) -> bool {
        let Some(role) = parse_id(role) else {
            return false;
        };
        self.with_guild(guild, |g, _| {
            g.roles
                .get_mut(&role)
                .map(|r| r.position = position)
                .is_some()
        })
        .unwrap_or(false)
    }

    /// Also takes the role off every member, as Discord does.
    pub(crate) fn delete_role(&self, guild: &str, role: &str) -> bool {
        let Some(role) = parse_id(role) else {
            return false;
        };
        self.with_guild(guild, |g, _| {
            for member in g.members.values_mut() {
                member.remove_role(role);
            }
            g.roles.remove(&role).is_some()
        })
        .unwrap_or(false)
    }

    pub(crate) fn set_members_intent(&self, guild: &str, on: bool) -> bool {
        self.with_guild(guild, |g, _| g.members_intent = on)
            .is_some()
    }

    pub(crate) fn ban(&self, guild: &str, user: &str) -> bool {
        let Some(user) = parse_id(user) else {
            return false;
        };
        self.with_guild(guild, |g, _| {
            g.members.remove(&user);
            g.banned.insert(user);
        })
        .is_some()
    }

    pub(crate) fn audit_log(&self, guild: &str) -> Vec<AuditLogEntry> {
        let world = lock(&self.world);
        world
            .guild(guild)
            .map(|g| g.audit_log.clone())
            .unwrap_or_default()
    }

    pub(crate) fn rate_limited_count(&self) -> u64 {
        self.rate_limited.load(Ordering::Relaxed)
    }

    pub(crate) fn state_view(&self) -> StateView {
        lock(&self.world).view(self.rate_limited_count())
    }
}
