//! The few Discord payload shapes we read and write (snowflakes stay strings, as on the wire).

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscordUser {
    pub id: String,
    pub username: String,
    #[serde(default)]
    pub discriminator: Option<String>,
    #[serde(default)]
    pub global_name: Option<String>,
    #[serde(default)]
    pub avatar: Option<String>,
    #[serde(default)]
    pub bot: Option<bool>,
}

impl DiscordUser {
    /// `@username` for migrated users (discriminator "0"), `name#1234` for the rest.
    pub fn display_tag(&self) -> String {
        match self.discriminator.as_deref() {
            None | Some("0") | Some("") => format!("@{}", self.username),
            Some(d) => format!("{}#{d}", self.username),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuildMember {
    #[serde(default)]
    pub user: Option<DiscordUser>,
    #[serde(default)]
    pub nick: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub joined_at: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuildRole {
    pub id: String,
    pub name: String,
    pub position: i64,
    #[serde(default)]
    pub managed: bool,
    #[serde(default)]
    pub permissions: String,
    #[serde(default)]
    pub color: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guild {
    pub id: String,
    pub name: String,
    pub owner_id: String,
}

/// Tokens from the OAuth2 token endpoint. `Debug` never prints the token values.
#[derive(Clone, Debug)]
pub struct TokenSet {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    /// Seconds from issue.
    pub expires_in: i64,
    pub scope: String,
}

/// `PUT /guilds/{g}/members/{u}`: 201 with the member, or 204 when they were already in (then
/// nick/roles in the body were NOT applied).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddMember {
    Added(GuildMember),
    AlreadyMember,
}

/// A URL to send a member to, with the values to keep for the callback. `Debug` shows none of
/// them: the URL carries the CSRF state.
pub struct AuthorizationRequest {
    pub url: String,
    pub state: SecretString,
    pub pkce_verifier: SecretString,
}

impl std::fmt::Debug for AuthorizationRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthorizationRequest { [redacted] }")
    }
}
