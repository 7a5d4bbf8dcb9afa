//! The one planner: every role/nickname change (5-minute verify, weekly remote sync, dry run,
//! immediate apply) is decided here, so they can never disagree.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::member::{refusal_key, Link, SiteUser, NICK_REFUSAL};
use super::nickname::{render_nickname, NicknameInputs};
use super::role::Role;

/// What a member should carry, derived from their site groups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Desired {
    /// Managed roles the member's groups entitle them to.
    pub roles: BTreeSet<String>,
    /// `None`: we don't manage this member's nickname. `Some(None)`: no nickname.
    pub nickname: Option<Option<String>>,
}

/// What the member carries on Discord (live, or our stored belief).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Current {
    pub discord_user_id: String,
    pub roles: BTreeSet<String>,
    pub nickname: Option<String>,
}

/// The guild as the planner needs to see it.
#[derive(Clone, Copy, Debug)]
pub struct GuildView<'a> {
    pub guild_id: &'a str,
    pub roles: &'a [Role],
    pub bot_top_position: Option<i64>,
    pub owner_id: Option<&'a str>,
}

/// Why a wanted change is not made: reported to admins, never sent to Discord.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum PlanIssue {
    /// `@everyone` can't be granted or removed.
    RoleIsEveryone { role_id: String },
    /// Discord-managed roles (bots, boosters, integrations) can't be assigned by a bot.
    RoleManagedByDiscord { role_id: String },
    /// The role sits at or above the bot's highest role.
    RoleAboveBot { role_id: String },
    /// Discord never lets a bot change the guild owner's nickname.
    NicknameOfOwner,
    /// The member's highest role sits at or above the bot's.
    MemberAboveBot,
    /// Discord refused this write (403) before; it is not sent again until the role order, the
    /// mapping or the member's roles change (`roles/sync` re-checks).
    RefusedEarlier { write: String },
}

impl PlanIssue {
    pub fn code(&self) -> &'static str {
        match self {
            PlanIssue::RoleIsEveryone { .. } => "role_is_everyone",
            PlanIssue::RoleManagedByDiscord { .. } => "role_managed_by_discord",
            PlanIssue::RoleAboveBot { .. } => "role_above_bot",
            PlanIssue::NicknameOfOwner => "nickname_of_owner",
            PlanIssue::MemberAboveBot => "member_above_bot",
            PlanIssue::RefusedEarlier { .. } => "refused_earlier",
        }
    }

    pub fn message(&self) -> String {
        match self {
            PlanIssue::RoleIsEveryone { role_id } => {
                format!("role {role_id} is @everyone and cannot be managed")
            }
            PlanIssue::RoleManagedByDiscord { role_id } => {
                format!("role {role_id} is managed by Discord (bot, booster or integration role)")
            }
            PlanIssue::RoleAboveBot { role_id } => format!(
                "role {role_id} is at or above the bot's highest role: move the bot's role higher"
            ),
            PlanIssue::NicknameOfOwner => {
                "Discord does not let bots change the guild owner's nickname".to_owned()
            }
            PlanIssue::MemberAboveBot => {
                "the member's highest role is at or above the bot's: nickname left alone".to_owned()
            }
            PlanIssue::RefusedEarlier { write } => format!(
                "Discord refused `{write}` before (missing permissions): not sent again until the \
                 role order or mapping changes; fix the bot's role, then run roles/sync"
            ),
        }
    }
}

/// The exact changes for one member.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub add: Vec<String>,
    pub remove: Vec<String>,
    /// `Some(None)` clears the nickname.
    pub nickname: Option<Option<String>>,
    pub issues: Vec<PlanIssue>,
}

impl Plan {
    /// True when nothing needs to be sent to Discord.
    pub fn is_noop(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty() && self.nickname.is_none()
    }

    /// The plan without the writes Discord already refused for this member (see
    /// [`Link::refused`]): each becomes a `refused_earlier` issue instead of a request that
    /// would count against the IP's invalid-request budget again.
    pub fn without_refused(mut self, refused: &BTreeSet<String>) -> Plan {
        if refused.is_empty() {
            return self;
        }
        let mut dropped = Vec::new();
        self.add.retain(|r| {
            let keep = !refused.contains(&refusal_key(true, r));
            if !keep {
                dropped.push(refusal_key(true, r));
            }
            keep
        });
        self.remove.retain(|r| {
            let keep = !refused.contains(&refusal_key(false, r));
            if !keep {
                dropped.push(refusal_key(false, r));
            }
            keep
        });
        if self.nickname.is_some() && refused.contains(NICK_REFUSAL) {
            self.nickname = None;
            dropped.push(NICK_REFUSAL.to_owned());
        }
        self.issues.extend(
            dropped
                .into_iter()
                .map(|write| PlanIssue::RefusedEarlier { write }),
        );
        self
    }

    /// The member as they will be once every change in this plan succeeded.
    pub fn applied_to(&self, current: &Current) -> Current {
        let mut next = current.clone();
        for r in &self.remove {
            next.roles.remove(r);
        }
        next.roles.extend(self.add.iter().cloned());
        if let Some(nick) = &self.nickname {
            next.nickname = nick.clone();
        }
        next
    }
}

/// Managed roles that a set of site groups entitles to.
pub fn entitled_roles(groups: &BTreeSet<String>, roles: &[Role]) -> BTreeSet<String> {
    roles
        .iter()
        .filter(|r| !r.groups.is_disjoint(groups))
        .map(|r| r.id.clone())
        .collect()
}

/// The desired state of a linked member: entitled roles plus the templated nickname (if any).
pub fn desired_for(
    user: &SiteUser,
    link: &Link,
    roles: &[Role],
    nickname_template: Option<&str>,
) -> Desired {
    Desired {
        roles: entitled_roles(&user.groups, roles),
        nickname: nickname_template.map(|t| {
            render_nickname(
                t,
                &NicknameInputs {
                    username: &link.username,
                    global_name: link.global_name.as_deref(),
                    attributes: &user.attributes,
                },
            )
        }),
    }
}

fn role_block(role: &Role, guild: &GuildView<'_>) -> Option<PlanIssue> {
    let role_id = role.id.clone();
    if role.id == guild.guild_id {
        Some(PlanIssue::RoleIsEveryone { role_id })
    } else if role.managed {
        Some(PlanIssue::RoleManagedByDiscord { role_id })
    } else if guild
        .bot_top_position
        .is_some_and(|top| role.position >= top)
    {
        Some(PlanIssue::RoleAboveBot { role_id })
    } else {
        None
    }
}

/// Decides the role adds/removes and nickname change for one member. Only mapped roles are ever
/// touched; roles the bot cannot manage become issues, not calls.
pub fn plan(desired: &Desired, current: &Current, guild: &GuildView<'_>) -> Plan {
    let mut out = Plan::default();
    for role in guild.roles.iter().filter(|r| r.is_mapped()) {
        let want = desired.roles.contains(&role.id);
        let has = current.roles.contains(&role.id);
        if want == has {
            continue;
        }
        match role_block(role, guild) {
            Some(issue) => out.issues.push(issue),
            None if want => out.add.push(role.id.clone()),
            None => out.remove.push(role.id.clone()),
        }
    }
    if let Some(nick) = &desired.nickname {
        if *nick != current.nickname {
            if guild.owner_id == Some(current.discord_user_id.as_str()) {
                out.issues.push(PlanIssue::NicknameOfOwner);
            } else if member_outranks_bot(current, guild) {
                out.issues.push(PlanIssue::MemberAboveBot);
            } else {
                out.nickname = Some(nick.clone());
            }
        }
    }
    out
}

fn member_outranks_bot(current: &Current, guild: &GuildView<'_>) -> bool {
    let Some(top) = guild.bot_top_position else {
        return false;
    };
    guild
        .roles
        .iter()
        .filter(|r| current.roles.contains(&r.id))
        .any(|r| r.position >= top)
}

#[cfg(test)]
mod tests;
