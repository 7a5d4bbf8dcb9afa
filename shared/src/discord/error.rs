//! Discord's error codes as types, so callers `match` instead of comparing numbers.

use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
pub enum DiscordError {
    #[error("unknown guild (10004)")]
    UnknownGuild,
    #[error("unknown member (10007): the user is not in the guild")]
    UnknownMember,
    #[error("unknown role (10011)")]
    UnknownRole,
    #[error("unknown user (10013)")]
    UnknownUser,
    #[error("the user is in too many guilds (30001)")]
    MaxGuilds,
    #[error("the guild has the maximum number of roles (30005)")]
    MaxRoles,
    #[error("the user is banned from the guild (40007)")]
    Banned,
    #[error("missing access (50001): the bot lacks access, or the GUILD_MEMBERS intent is off")]
    MissingAccess,
    #[error(
        "missing permissions (50013): role hierarchy, guild owner, or a missing bot permission"
    )]
    MissingPermissions,
    #[error("invalid OAuth2 access token (50025)")]
    InvalidOAuthToken,
    #[error("the user's account is limited by Discord (340015)")]
    UserLimited,
    #[error("invalid form body (50035): {0}")]
    InvalidFormBody(String),
    #[error("Discord API is overloaded (130000)")]
    Overloaded,
    /// 401 on a bot call: the bot token is wrong or was reset. The client stops using it.
    #[error("the bot token was rejected (401): set a new one")]
    BotTokenRejected,
    /// OAuth2 `invalid_grant`: a code or refresh token that is expired, used, or revoked.
    #[error("the authorization grant is invalid, expired or revoked")]
    InvalidGrant,
    /// OAuth2 `invalid_client`: wrong application id or client secret.
    #[error("the application id or client secret was rejected")]
    InvalidClient,
    #[error("rate limited for {retry_after:?} (global: {global})")]
    RateLimited { retry_after: Duration, global: bool },
    #[error("Discord answered {status} (code {code}): {message}")]
    Api {
        status: u16,
        code: u64,
        message: String,
    },
    #[error("Discord server error {status}")]
    Server { status: u16 },
    #[error("could not reach Discord: {0}")]
    Transport(String),
    #[error("unexpected response from Discord: {0}")]
    Decode(String),
    /// An answer larger than any Discord sends (the biggest, a page of 1,000 members, is about
    /// 1.5 MiB at most): not read further.
    #[error("Discord's answer is larger than {limit} bytes")]
    ResponseTooLarge { limit: usize },
    #[error("the client has no {0} configured")]
    NotConfigured(&'static str),
}

impl DiscordError {
    /// A stable snake_case code for reports, audit entries and redirect reasons.
    pub fn code(&self) -> &'static str {
        match self {
            DiscordError::UnknownGuild => "unknown_guild",
            DiscordError::UnknownMember => "unknown_member",
            DiscordError::UnknownRole => "unknown_role",
            DiscordError::UnknownUser => "unknown_user",
            DiscordError::MaxGuilds => "max_guilds",
            DiscordError::MaxRoles => "max_roles",
            DiscordError::Banned => "banned",
            DiscordError::MissingAccess => "missing_access",
            DiscordError::MissingPermissions => "missing_permissions",
            DiscordError::InvalidOAuthToken => "invalid_oauth_token",
            DiscordError::UserLimited => "user_limited",
            DiscordError::InvalidFormBody(_) => "invalid_form_body",
            DiscordError::Overloaded => "discord_overloaded",
            DiscordError::BotTokenRejected => "bot_token_rejected",
            DiscordError::InvalidGrant => "invalid_grant",
            DiscordError::InvalidClient => "invalid_client",
            DiscordError::RateLimited { .. } => "rate_limited",
            DiscordError::Api { .. } => "discord_error",
            DiscordError::Server { .. } => "discord_unavailable",
            DiscordError::Transport(_) => "discord_unreachable",
            DiscordError::Decode(_) => "discord_bad_response",
            DiscordError::ResponseTooLarge { .. } => "discord_response_too_large",
            DiscordError::NotConfigured(_) => "not_configured",
        }
    }

    /// Discord's numeric JSON error code, when the error came with one.
    pub fn discord_code(&self) -> Option<u64> {
        Some(match self {
            DiscordError::UnknownGuild => 10004,
            DiscordError::UnknownMember => 10007,
            DiscordError::UnknownRole => 10011,
            DiscordError::UnknownUser => 10013,
            DiscordError::MaxGuilds => 30001,
            DiscordError::MaxRoles => 30005,
            DiscordError::Banned => 40007,
            DiscordError::MissingAccess => 50001,
            DiscordError::MissingPermissions => 50013,
            DiscordError::InvalidOAuthToken => 50025,
            DiscordError::UserLimited => 340015,
            DiscordError::InvalidFormBody(_) => 50035,
            DiscordError::Overloaded => 130000,
            DiscordError::Api { code, .. } => *code,
            _ => return None,
        })
    }

    /// Maps Discord's JSON error code (with the HTTP status for the unknown ones).
    pub fn from_code(status: u16, code: u64, message: String) -> Self {
        match code {
            10004 => DiscordError::UnknownGuild,
            10007 => DiscordError::UnknownMember,
            10011 => DiscordError::UnknownRole,
            10013 => DiscordError::UnknownUser,
            30001 => DiscordError::MaxGuilds,
            30005 => DiscordError::MaxRoles,
            40007 => DiscordError::Banned,
            50001 => DiscordError::MissingAccess,
            50013 => DiscordError::MissingPermissions,
            50025 => DiscordError::InvalidOAuthToken,
            340015 => DiscordError::UserLimited,
            50035 => DiscordError::InvalidFormBody(message),
            130000 => DiscordError::Overloaded,
            _ => DiscordError::Api {
                status,
                code,
                message,
            },
        }
    }
}
