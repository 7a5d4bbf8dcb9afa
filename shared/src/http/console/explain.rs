//! Error codes, task names and audit actions in words an operator can act on.

use crate::domain::TaskName;

/// What a member's or a run's error code means, and what to do about it.
pub fn error_code(code: &str) -> &'static str {
    match code {
        "missing_permissions" => {
            "Discord refused: the bot lacks a permission or its role is not above the role or \
             member. Move the bot's role up in Server Settings → Roles, then press Sync roles; \
             the refused change is not retried before that."
        }
        "missing_access" => {
            "Discord refused access: the bot is not in the server, or the Server Members Intent \
             is off (Developer Portal → Bot)."
        }
        "role_above_bot" => {
            "A mapped role is at or above the bot's highest role. Move the bot's role above it, \
             then Sync roles."
        }
        "member_above_bot" => {
            "The member's highest role is at or above the bot's, so Discord does not let the bot \
             change their nickname."
        }
        "nickname_of_owner" => "Discord never lets a bot change the server owner's nickname.",
        "refused_earlier" => {
            "Discord refused this change before. It is not sent again until the role order or the \
             mapping changes (fix it, then Sync roles)."
        }
        "unknown_member" => "The member is no longer in the Discord server.",
        "unknown_role" => {
            "A mapped role no longer exists in Discord; its mapping was removed. Sync roles to \
             refresh the list."
        }
        "unknown_guild" => "Discord does not know this server, or the bot was removed from it.",
        "unknown_user" => "Discord does not know this account (deleted?).",
        "max_guilds" => "The member is in 100 servers already; Discord refuses to add more.",
        "max_roles" => "The server has reached Discord's role limit.",
        "banned" => "The member is banned from the server.",
        "invalid_oauth_token" | "invalid_grant" => {
            "The member revoked the connector's access (or it expired). They must link again."
        }
        "invalid_client" => {
            "Discord refused the application id / client secret. Replace the client secret on \
             the Overview page."
        }
        "bot_token_rejected" => {
            "Discord refused the bot token (401). Nothing is sent with it until it is replaced on \
             the Overview page."
        }
        "user_limited" => "Discord limits this account for now; try again later.",
        "rate_limited" => "Discord asked us to slow down; the change waits and is retried.",
        "discord_overloaded" | "discord_unavailable" | "discord_unreachable" => {
            "Discord was unavailable; the change is retried automatically."
        }
        "discord_bad_response" | "discord_response_too_large" => {
            "Discord answered something unexpected; the change is retried automatically."
        }
        "not_configured" => "The client lacks its bot token or client secret.",
        "session_mismatch" => {
            "The link was finished in another browser than the one that started it; nothing was \
             linked."
        }
        "account_already_linked" => "That Discord account is linked to another site user.",
        _ => "See the message for details.",
    }
}

pub fn task_title(task: TaskName) -> &'static str {
    match task {
        TaskName::VerifyGroups => "Verify groups",
        TaskName::SyncAccounts => "Update nicknames and usernames",
        TaskName::RemoteSyncGroups => "Remote group sync",
    }
}

pub fn task_description(task: TaskName) -> &'static str {
    match task {
        TaskName::VerifyGroups => {
            "Applies the role and nickname changes of members whose groups changed (pending \
             members only). Runs every 5 minutes when there is work."
        }
        TaskName::SyncAccounts => {
            "Refreshes Discord usernames and nicknames, enforces the nickname template, refreshes \
             OAuth tokens. Weekly."
        }
        TaskName::RemoteSyncGroups => {
            "Compares every linked member's roles on Discord with their groups and repairs only \
             the drift; counts members nobody links. Weekly."
        }
    }
}

/// Every audit action, for the audit log's filter.
pub const AUDIT_ACTIONS: &[&str] = &[
    "client.create",
    "client.update",
    "roles.sync",
    "role.map",
    "role.unmap",
    "role.add",
    "role.remove",
    "nick.set",
    "member.join",
    "member.left",
    "member.kick",
    "link.create",
    "link.delete",
    "link.revoked",
    "users.import",
    "app.authorized",
    "groups.from_discord",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discord::DiscordError;

    #[test]
    fn every_discord_error_the_connector_knows_is_explained() {
        for e in [
            DiscordError::UnknownGuild,
            DiscordError::UnknownMember,
            DiscordError::UnknownRole,
            DiscordError::UnknownUser,
            DiscordError::MaxGuilds,
            DiscordError::MaxRoles,
            DiscordError::Banned,
            DiscordError::MissingAccess,
            DiscordError::MissingPermissions,
            DiscordError::InvalidOAuthToken,
            DiscordError::UserLimited,
            DiscordError::Overloaded,
            DiscordError::BotTokenRejected,
            DiscordError::InvalidGrant,
            DiscordError::InvalidClient,
        ] {
            assert_ne!(
                error_code(e.code()),
                error_code("something-else"),
                "{}",
                e.code()
            );
        }
    }

    #[test]
    fn every_audit_action_can_be_filtered() {
        use crate::domain::AuditAction as A;
        for a in [
            A::ClientCreate,
            A::ClientUpdate,
            A::RolesSync,
            A::RoleMap,
            A::RoleUnmap,
            A::RoleAdd,
            A::RoleRemove,
            A::NickSet,
            A::MemberJoin,
            A::MemberLeft,
            A::MemberKick,
            A::LinkCreate,
            A::LinkDelete,
            A::LinkRevoked,
            A::UsersImport,
            A::AppAuthorized,
            A::GroupsFromDiscord,
        ] {
            assert!(AUDIT_ACTIONS.contains(&a.as_str()), "{a}");
        }
    }
}
