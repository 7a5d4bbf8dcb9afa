//! Claiming linked roles: a member who meets a role's Linked Roles requirements claims it
//! themselves (server menu → Linked Roles), with no bot and no role hierarchy involved, and
//! loses it again when a change of their role connection, of the role's requirements or of the
//! application's metadata records means they no longer qualify, as Discord re-evaluates them.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::audit::AuditAction;
use crate::error::DiscordError;
use crate::linked::{qualifies, LinkedRequirement};
use crate::shared::{lock, Shared};
use crate::world::{parse_id, Guild, Role};

/// Audit log reasons of the role changes a claim makes (no bot is involved).
const CLAIMED: &str = "Linked Roles: claimed by the member";
const NO_LONGER_MET: &str = "Linked Roles: requirements no longer met";

/// Why a member cannot claim a role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimRefused {
    UnknownGuild,
    /// No such role in the guild (or `@everyone`).
    UnknownRole,
    /// The user is not in the guild.
    UnknownMember,
    /// The role has no Linked Roles requirements: there is nothing to claim.
    NotLinked,
    /// The user's role connection does not meet the role's requirements (or they have none).
    RequirementsNotMet,
}

impl fmt::Display for ClaimRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClaimRefused::UnknownGuild => "unknown guild",
            ClaimRefused::UnknownRole => "unknown role",
            ClaimRefused::UnknownMember => "the user is not in the guild",
            ClaimRefused::NotLinked => "the role has no Linked Roles requirements",
            ClaimRefused::RequirementsNotMet => {
                "the user does not meet the role's Linked Roles requirements"
            }
        })
    }
}

impl std::error::Error for ClaimRefused {}

impl From<ClaimRefused> for DiscordError {
    fn from(refused: ClaimRefused) -> Self {
        match refused {
            ClaimRefused::UnknownGuild => DiscordError::UnknownGuild,
            ClaimRefused::UnknownRole => DiscordError::UnknownRole,
            ClaimRefused::UnknownMember => DiscordError::UnknownMember,
            ClaimRefused::NotLinked => DiscordError::form(
                "role_id",
                "The role has no Linked Roles requirements: there is nothing to claim.",
            ),
            ClaimRefused::RequirementsNotMet => DiscordError::LinkedRequirementsNotMet,
        }
    }
}

impl Shared {
    fn metadata_records(&self) -> Vec<Value> {
        lock(&self.role_connection_metadata).clone()
    }

    fn connection(&self, user: u64) -> Option<Value> {
        lock(&self.role_connections).get(&user).cloned()
    }

    /// Every role connection, copied: checks run under the world's lock and never hold
    /// another with it.
    pub(crate) fn connections(&self) -> BTreeMap<u64, Value> {
        lock(&self.role_connections).clone()
    }

    /// Sets a role's Linked Roles requirements (empty: none) and takes the role back from
    /// members who claimed it and no longer qualify; false when the guild or role is unknown
    /// (or the role is `@everyone`).
    pub(crate) fn set_linked_requirements(
        &self,
        guild: &str,
        role: &str,
        requirements: Vec<LinkedRequirement>,
    ) -> bool {
        let Some(role) = parse_id(role) else {
            return false;
        };
        let (records, connections, now) = (
            self.metadata_records(),
            self.connections(),
            self.clock.now(),
        );
        let mut world = lock(&self.world);
        let Ok(guild) = world.guild_mut(guild) else {
            return false;
        };
        let everyone = guild.id;
        let Some(found) = guild.roles.get_mut(&role).filter(|_| role != everyone) else {
            return false;
        };
        found.linked_requirements = requirements;
        reevaluate_guild(guild, &records, &connections, now);
        true
    }

    /// Whether `user` may claim the linked `role` (its requirements met by their role
    /// connection); `None` when the role has no requirements or an id is unknown.
    pub(crate) fn qualifies(&self, guild: &str, role: &str, user: &str) -> Option<bool> {
        let (role, user) = (parse_id(role)?, parse_id(user)?);
        let (records, connection) = (self.metadata_records(), self.connection(user));
        let world = lock(&self.world);
        let found = world
            .guild(guild)
            .ok()?
            .roles
            .get(&role)
            .filter(|r| r.is_linked())?;
        Some(qualifies(
            &found.linked_requirements,
            &records,
            connection.as_ref(),
            self.clock.now(),
        ))
    }

    /// The member claims the linked `role` (server menu → Linked Roles → the role): granted
    /// when they are in the guild and their role connection meets its requirements. No bot and
    /// no role hierarchy is involved. Claiming a role already held keeps it (and makes it a
    /// claim).
    pub(crate) fn claim_linked_role(
        &self,
        guild: &str,
        role: &str,
        user: &str,
    ) -> Result<(), ClaimRefused> {
        let user = parse_id(user).ok_or(ClaimRefused::UnknownMember)?;
        let role = parse_id(role).ok_or(ClaimRefused::UnknownRole)?;
        let (records, connection, now) = (
            self.metadata_records(),
            self.connection(user),
            self.clock.now(),
        );
        let mut world = lock(&self.world);
        let guild = world
            .guild_mut(guild)
            .map_err(|_| ClaimRefused::UnknownGuild)?;
        let found = guild
            .roles
            .get(&role)
            .filter(|_| role != guild.id)
            .ok_or(ClaimRefused::UnknownRole)?;
        if !found.is_linked() {
            return Err(ClaimRefused::NotLinked);
        }
        let member = guild
            .members
            .get_mut(&user)
            .ok_or(ClaimRefused::UnknownMember)?;
        if !qualifies(
            &found.linked_requirements,
            &records,
            connection.as_ref(),
            now,
        ) {
            return Err(ClaimRefused::RequirementsNotMet);
        }
        member.roles.insert(role);
        member.claimed.insert(role);
        guild.record(
            AuditAction::MemberRoleAdd,
            user,
            Some(role),
            Some(CLAIMED.to_owned()),
            now,
        );
        Ok(())
    }

    /// `user`'s role connection changed: in every guild, the linked roles they claimed and no
    /// longer qualify for are taken back.
    pub(crate) fn role_connection_changed(&self, user: u64) {
        let (records, connection, now) = (
            self.metadata_records(),
            self.connection(user),
            self.clock.now(),
        );
        let mut world = lock(&self.world);
        for guild in world.guilds.values_mut() {
            drop_unmet_claims(guild, user, &records, connection.as_ref(), now);
        }
    }

    /// Requirements or metadata records changed: every claim is checked again.
    pub(crate) fn reevaluate_claims(&self) {
        let (records, connections, now) = (
            self.metadata_records(),
            self.connections(),
            self.clock.now(),
        );
        let mut world = lock(&self.world);
        for guild in world.guilds.values_mut() {
            reevaluate_guild(guild, &records, &connections, now);
        }
    }
}

fn reevaluate_guild(
    guild: &mut Guild,
    records: &[Value],
    connections: &BTreeMap<u64, Value>,
    now: f64,
) {
    let claimers: Vec<u64> = guild
        .members
        .iter()
        .filter(|(_, m)| !m.claimed.is_empty())
        .map(|(user, _)| *user)
        .collect();
    for user in claimers {
        drop_unmet_claims(guild, user, records, connections.get(&user), now);
    }
}

/// Takes back each linked role `user` claimed and no longer qualifies for, as Discord does when
/// it re-evaluates a member; a claim on a role that is no longer linked is forgotten (the role
/// stays).
fn drop_unmet_claims(
    guild: &mut Guild,
    user: u64,
    records: &[Value],
    connection: Option<&Value>,
    now: f64,
) {
    let Some(member) = guild.members.get(&user) else {
        return;
    };
    let (mut unmet, mut unlinked) = (Vec::new(), Vec::new());
    for role in &member.claimed {
        match guild.roles.get(role).filter(|r| r.is_linked()) {
            Some(found) => {
                if !qualifies(&found.linked_requirements, records, connection, now) {
                    unmet.push(*role);
                }
            }
            None => unlinked.push(*role),
        }
    }
    let Some(member) = guild.members.get_mut(&user) else {
        return;
    };
    for role in unlinked {
        member.claimed.remove(&role);
    }
    for role in &unmet {
        member.remove_role(*role);
    }
    for role in unmet {
        guild.record(
            AuditAction::MemberRoleRemove,
            user,
            Some(role),
            Some(NO_LONGER_MET.to_owned()),
            now,
        );
    }
}

/// Members of `guild` who meet the linked `role`'s requirements, by user id (at most `limit`).
pub(crate) fn may_claim(
    guild: &Guild,
    role: &Role,
    records: &[Value],
    connections: &BTreeMap<u64, Value>,
    now: f64,
    limit: usize,
) -> Vec<u64> {
    connections
        .iter()
        .filter(|(user, _)| guild.members.contains_key(user))
        .filter(|(_, c)| qualifies(&role.linked_requirements, records, Some(c), now))
        .map(|(user, _)| *user)
        .take(limit)
        .collect()
}
