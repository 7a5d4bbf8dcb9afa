//! Member writes as the bot performs them: join, patch, single-role add/remove, kick. Every
//! operation validates completely before changing anything, as Discord's are atomic.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::audit::AuditAction;
use crate::error::DiscordError;

use super::{parse_id, World};

/// Nicknames are 1–32 characters.
const MAX_NICK_CHARS: usize = 32;

pub(crate) enum Joined {
    Added(Value),
    /// 204: nothing in the request body was applied.
    AlreadyMember,
}

/// `PATCH /guilds/{g}/members/{u}`: an absent field is left alone, `nick: null` clears.
#[derive(Debug, Default)]
pub(crate) struct MemberPatch {
    pub(crate) nick: Option<Option<String>>,
    pub(crate) roles: Option<Vec<String>>,
}

/// What the HTTP layer knows about the write besides its body.
pub(crate) struct WriteContext {
    pub(crate) reason: Option<String>,
    pub(crate) now: f64,
}

impl World {
    /// `PUT /guilds/{g}/members/{u}`; the access token has already been checked by the caller.
    pub(crate) fn join(
        &mut self,
        guild_id: &str,
        user: u64,
        nick: Option<String>,
        roles: Option<Vec<String>>,
        ctx: WriteContext,
    ) -> Result<Joined, DiscordError> {
        let bot = self.bot_id;
        let flags = self
            .users
            .get(&user)
            .map(|u| (u.too_many_guilds, u.limited));
        let guild = self.guild(guild_id)?;
        if guild.banned.contains(&user) {
            return Err(DiscordError::Banned);
        }
        if guild.members.contains_key(&user) {
            return Ok(Joined::AlreadyMember);
        }
        match flags {
            Some((true, _)) => return Err(DiscordError::MaxGuilds),
            Some((_, true)) => return Err(DiscordError::UserLimited),
            _ => {}
        }
        let nick = validate_nick(nick)?;
        let roles = parse_roles(roles.unwrap_or_default())?;
        for role in &roles {
            if *role != guild.id {
                known_role(guild, *role)?;
                guild.check_assignable(*role, bot)?;
            }
        }
        let guild = self.guild_mut(guild_id)?;
        guild.insert_member(user, nick, roles, ctx.now);
        guild.record(AuditAction::MemberAdd, user, None, ctx.reason, ctx.now);
        let member = self.guild(guild_id)?.member(user)?;
        Ok(Joined::Added(self.member_json(user, member)))
    }

    pub(crate) fn patch_member(
        &mut self,
        guild_id: &str,
        user: u64,
        patch: MemberPatch,
        ctx: WriteContext,
    ) -> Result<Value, DiscordError> {
        let bot = self.bot_id;
        let guild = self.guild(guild_id)?;
        let current = guild.member(user)?;
        let nick = match patch.nick {
            Some(nick) => {
                let nick = validate_nick(nick)?;
                guild.check_moderatable(user, bot)?;
                Some(nick)
            }
            None => None,
        };
        let roles = match patch.roles {
            Some(ids) => {
                let wanted: BTreeSet<u64> = parse_roles(ids)?
                    .into_iter()
                    .filter(|r| *r != guild.id)
                    .collect();
                for role in &wanted {
                    known_role(guild, *role)?;
                }
                for changed in wanted.symmetric_difference(&current.roles) {
                    guild.check_assignable(*changed, bot)?;
                }
                Some(wanted)
            }
            None => None,
        };
        let guild = self.guild_mut(guild_id)?;
        let member = guild
            .members
            .get_mut(&user)
            .ok_or(DiscordError::UnknownMember)?;
        if let Some(nick) = nick {
            member.nick = nick;
        }
        if let Some(roles) = roles {
            member.set_roles(roles);
        }
        guild.record(AuditAction::MemberUpdate, user, None, ctx.reason, ctx.now);
        let member = self.guild(guild_id)?.member(user)?;
        Ok(self.member_json(user, member))
    }

    /// `PUT` (add = true) or `DELETE` `/guilds/{g}/members/{u}/roles/{r}`; idempotent.
    pub(crate) fn set_member_role(
        &mut self,
        guild_id: &str,
        user: u64,
        role_id: &str,
        add: bool,
        ctx: WriteContext,
    ) -> Result<(), DiscordError> {
        let bot = self.bot_id;
        let guild = self.guild_mut(guild_id)?;
        let role = parse_id(role_id)
            .filter(|r| *r != guild.id && guild.roles.contains_key(r))
            .ok_or(DiscordError::UnknownRole)?;
        guild.member(user)?;
        guild.check_assignable(role, bot)?;
        let member = guild
            .members
            .get_mut(&user)
            .ok_or(DiscordError::UnknownMember)?;
        let action = if add {
            member.roles.insert(role);
            AuditAction::MemberRoleAdd
        } else {
            member.remove_role(role);
            AuditAction::MemberRoleRemove
        };
        guild.record(action, user, Some(role), ctx.reason, ctx.now);
        Ok(())
    }

    pub(crate) fn kick(
        &mut self,
        guild_id: &str,
        user: u64,
        ctx: WriteContext,
    ) -> Result<(), DiscordError> {
        let bot = self.bot_id;
        let guild = self.guild_mut(guild_id)?;
        guild.member(user)?;
        guild.check_moderatable(user, bot)?;
        guild.members.remove(&user);
        guild.record(AuditAction::MemberKick, user, None, ctx.reason, ctx.now);
        Ok(())
    }
}

/// An empty nickname resets it, as in Discord's client.
fn validate_nick(nick: Option<String>) -> Result<Option<String>, DiscordError> {
    match nick {
        Some(n) if n.chars().count() > MAX_NICK_CHARS => Err(DiscordError::form(
            "nick",
            format!("Must be {MAX_NICK_CHARS} or fewer in length."),
        )),
        Some(n) if n.is_empty() => Ok(None),
        other => Ok(other),
    }
}

fn parse_roles(ids: Vec<String>) -> Result<BTreeSet<u64>, DiscordError> {
    ids.iter()
        .map(|id| {
            parse_id(id).ok_or_else(|| {
                DiscordError::form("roles", format!("Value \"{id}\" is not snowflake."))
            })
        })
        .collect()
}

/// Discord rejects unknown role ids in a body as a form error, not as 10011.
fn known_role(guild: &super::Guild, role: u64) -> Result<(), DiscordError> {
    if guild.roles.contains_key(&role) {
        Ok(())
    } else {
        Err(DiscordError::form("roles", format!("Unknown role {role}")))
    }
}
