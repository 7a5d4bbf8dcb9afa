// INTERFACE STUB — to be implemented (bodies only; keep the signatures).
use std::collections::BTreeMap;
use std::sync::Arc;

use secrecy::SecretString;

use super::model::*;
use super::ratelimit::RateLimiter;
use super::DiscordResult;

/// Everything a client needs to talk to Discord for one application + guild.
#[derive(Clone, Debug)]
pub struct DiscordConfig {
    /// e.g. `https://discord.com/api/v10` (tests: the emulator's).
    pub api_base: String,
    /// e.g. `https://discord.com/oauth2/authorize`.
    pub authorize_url: String,
    /// The application's id (OAuth2 client_id).
    pub application_id: String,
    pub client_secret: Option<SecretString>,
    pub bot_token: Option<SecretString>,
    /// Our SSO callback URL, registered in the developer portal.
    pub redirect_uri: String,
}

/// Calls made through one `DiscordClient`, for run reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallStats {
    /// Calls by route template, e.g. `PUT /guilds/{guild}/members/{user}/roles/{role}`.
    pub calls: BTreeMap<String, u64>,
    /// 429 responses received.
    pub rate_limited: u64,
    /// 401/403/429 responses (Cloudflare bans an IP past 10,000 per 10 minutes).
    pub invalid_requests: u64,
}

pub struct DiscordClient {
    _config: DiscordConfig,
    _limiter: Arc<RateLimiter>,
}

impl DiscordClient {
    pub fn new(config: DiscordConfig, limiter: Arc<RateLimiter>) -> Self {
        Self { _config: config, _limiter: limiter }
    }
    pub fn stats(&self) -> CallStats {
        todo!()
    }
    pub fn authorization_request(&self) -> AuthorizationRequest {
        todo!()
    }
    pub async fn exchange_code(&self, _code: &str, _pkce_verifier: &SecretString) -> DiscordResult<TokenSet> {
        todo!()
    }
    pub async fn refresh_token(&self, _refresh_token: &SecretString) -> DiscordResult<TokenSet> {
        todo!()
    }
    pub async fn revoke_token(&self, _token: &SecretString) -> DiscordResult<()> {
        todo!()
    }
    pub async fn current_user(&self, _access_token: &SecretString) -> DiscordResult<DiscordUser> {
        todo!()
    }
    pub async fn bot_user(&self) -> DiscordResult<DiscordUser> {
        todo!()
    }
    pub async fn guild(&self, _guild_id: &str) -> DiscordResult<Guild> {
        todo!()
    }
    pub async fn guild_roles(&self, _guild_id: &str) -> DiscordResult<Vec<GuildRole>> {
        todo!()
    }
    pub async fn add_member(&self, _guild_id: &str, _user_id: &str, _access_token: &SecretString, _nick: Option<&str>, _roles: &[String]) -> DiscordResult<AddMember> {
        todo!()
    }
    pub async fn get_member(&self, _guild_id: &str, _user_id: &str) -> DiscordResult<GuildMember> {
        todo!()
    }
    pub async fn list_members(&self, _guild_id: &str, _after: Option<&str>, _limit: u16) -> DiscordResult<Vec<GuildMember>> {
        todo!()
    }
    pub async fn add_role(&self, _guild_id: &str, _user_id: &str, _role_id: &str, _reason: &str) -> DiscordResult<()> {
        todo!()
    }
    pub async fn remove_role(&self, _guild_id: &str, _user_id: &str, _role_id: &str, _reason: &str) -> DiscordResult<()> {
        todo!()
    }
    pub async fn set_nickname(&self, _guild_id: &str, _user_id: &str, _nick: Option<&str>, _reason: &str) -> DiscordResult<GuildMember> {
        todo!()
    }
    pub async fn kick(&self, _guild_id: &str, _user_id: &str, _reason: &str) -> DiscordResult<()> {
        todo!()
    }
}
