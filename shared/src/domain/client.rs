use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::linked_roles::LinkedRoles;
use crate::clock::Timestamp;

pub const DEFAULT_API_BASE: &str = "https://discord.com/api/v10";
pub const DEFAULT_AUTHORIZE_URL: &str = "https://discord.com/oauth2/authorize";

/// Whether a client may point its Discord URLs anywhere but Discord (an emulator, tests, the
/// demo). Off unless the deployment opts in: the bot token and the client secret go to these URLs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DiscordUrlPolicy {
    /// Only `https://discord.com/api/v10` and `https://discord.com/oauth2/authorize`.
    #[default]
    DiscordOnly,
    /// Any http(s) URL (`CONNECTOR_ALLOW_CUSTOM_DISCORD_URLS=true`, `AllowCustomDiscordUrls` on AWS).
    AllowCustom,
}

impl DiscordUrlPolicy {
    /// From a `true`/`false` setting (`CONNECTOR_ALLOW_CUSTOM_DISCORD_URLS`); anything but a
    /// clear yes keeps Discord only.
    pub fn from_setting(value: Option<&str>) -> Self {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            Some("true" | "1" | "yes") => Self::AllowCustom,
            _ => Self::DiscordOnly,
        }
    }

    pub fn allows_custom(self) -> bool {
        self == Self::AllowCustom
    }
}

/// What happens on Discord when a site user's link is removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnlinkPolicy {
    /// Remove the roles we manage; the member stays in the guild.
    #[default]
    RemoveRoles,
    /// Kick the member from the guild.
    Kick,
}

/// Which side wins when the site's groups and Discord's roles disagree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceOfTruth {
    #[default]
    Site,
    Discord,
}

/// Facts about the guild learned from Discord by `roles/sync`: who the bot is and how high it sits.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GuildFacts {
    pub bot_user_id: Option<String>,
    /// Position of the bot's highest role; it can only manage roles strictly below it.
    pub bot_top_position: Option<i64>,
    pub owner_id: Option<String>,
    pub synced_at: Option<Timestamp>,
    /// Whether Discord accepted the bot token at the last check (roles sync, setup check, or a
    /// 401 seen by a task); `None` before any.
    #[serde(default)]
    pub bot_token_ok: Option<bool>,
    /// Whether the GUILD_MEMBERS privileged intent was enabled at the last setup check (the
    /// member list answers 403 50001 without it).
    #[serde(default)]
    pub members_intent: Option<bool>,
    /// When the console's setup check last ran.
    #[serde(default)]
    pub checked_at: Option<Timestamp>,
}

/// A Discord application + guild, configured by an operator. Secrets are not here: they live in
/// the `Secrets` port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub guild_id: String,
    /// The Discord application's id (OAuth2 `client_id`).
    pub client_id: String,
    pub callback_url: String,
    pub invite_link: Option<String>,
    pub nickname_template: Option<String>,
    pub unlink_policy: UnlinkPolicy,
    pub source_of_truth: SourceOfTruth,
    /// Origins (`scheme://host[:port]`) a link session may return to.
    pub return_to_origins: Vec<String>,
    pub discord_api_base: String,
    pub discord_authorize_url: String,
    /// The application's Ed25519 public key (64 hex digits, lowercase), which verifies Discord's
    /// Webhook Events (`POST /discord/events`). `None`: events for this client are refused.
    #[serde(default)]
    pub public_key: Option<String>,
    /// Where the website receives signed webhooks (`domain::webhook`); `None`: no events are
    /// kept for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// Linked Roles metadata and its sources (`domain::linked_roles`); `None`: not configured
    /// (also every row written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked_roles: Option<LinkedRoles>,
    pub guild: GuildFacts,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_stored_before_public_key_existed_still_reads() {
        // Both store adapters keep a client as its serde form; rows written by an older version
        // have no `public_key`.
        let client = Client {
            id: "c".into(),
            name: "C".into(),
            guild_id: "1".into(),
            client_id: "2".into(),
            callback_url: "https://example.test/discord/sso/callback".into(),
            invite_link: None,
            nickname_template: None,
            unlink_policy: UnlinkPolicy::default(),
            source_of_truth: SourceOfTruth::default(),
            return_to_origins: vec![],
            discord_api_base: DEFAULT_API_BASE.into(),
            discord_authorize_url: DEFAULT_AUTHORIZE_URL.into(),
            public_key: Some("ab".repeat(32)),
            webhook_url: None,
            linked_roles: None,
            guild: GuildFacts::default(),
            created_at: 1,
            updated_at: 1,
        };
        let mut old = serde_json::to_value(&client).expect("serialises");
        old.as_object_mut().expect("object").remove("public_key");
        let read: Client = serde_json::from_value(old).expect("an old row reads");
        assert_eq!(read.public_key, None);
        assert_eq!(
            Client {
                public_key: None,
                ..client
            },
            read
        );
    }
}
