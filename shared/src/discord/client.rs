//! The Discord REST + OAuth2 client: every call goes to `{api_base}{path}` (`api_base` ends in
//! `/v10`) with our User-Agent, bot calls wait for the shared [`RateLimiter`], writes carry an
//! `X-Audit-Log-Reason`, and answers become typed [`DiscordError`](super::DiscordError)s.

mod oauth;

pub use oauth::{is_well_formed_state, ROLE_CONNECTIONS_WRITE};
pub use transport::MAX_RESPONSE_BYTES;
mod transport;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use self::transport::{decode, Auth, Call, Transport};
use super::model::*;
use super::ratelimit::RateLimiter;
use super::DiscordResult;
use crate::domain::linked_roles::{DiscordMetadataRecord, HeldRoleConnection, RoleConnection};

/// `User-Agent: DiscordBot ($url, $versionNumber)`, required by Discord.
const USER_AGENT: &str = concat!(
    "DiscordBot (https://github.com/discord-connector/discord-connector, ",
    env!("CARGO_PKG_VERSION"),
    ")"
);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Discord keeps 1–512 characters of an audit-log reason.
const MAX_AUDIT_REASON_CHARS: usize = 512;
const AUDIT_LOG_REASON: HeaderName = HeaderName::from_static("x-audit-log-reason");
/// Like JavaScript's `encodeURIComponent`: everything but unreserved characters.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

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

/// A Discord client for one application. Bot calls share `limiter` with every other client of
/// the same bot token; [`CallStats`] are this instance's own (clones share them).
#[derive(Clone)]
pub struct DiscordClient {
    config: DiscordConfig,
    transport: Transport,
}

impl fmt::Debug for DiscordClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiscordClient")
            .field("config", &self.config)
            .field("limiter", &self.transport.limiter)
            .finish_non_exhaustive()
    }
}

/// The HTTP client every Discord call of a process goes through: our User-Agent, no redirects,
/// timeouts.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .unwrap_or_else(|e| {
            // Only fails when the TLS backend cannot start; keep going with the defaults.
            tracing::error!(error = %e, "could not build the Discord HTTP client");
            reqwest::Client::new()
        })
}

#[derive(Serialize)]
struct AddMemberBody<'a> {
    access_token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    nick: Option<&'a str>,
    roles: &'a [String],
}

#[derive(Serialize)]
struct NickBody<'a> {
    nick: Option<&'a str>,
}

impl DiscordClient {
    /// A client with an HTTP connection pool of its own (tests, one-off tools). Long-lived
    /// processes share one pool through [`DiscordClient::with_http`].
    pub fn new(config: DiscordConfig, limiter: Arc<RateLimiter>) -> Self {
        Self::with_http(config, limiter, http_client())
    }

    /// A client on a shared HTTP connection pool (built once per process with [`http_client`]),
    /// so requests reuse Discord's TLS connections.
    pub fn with_http(
        mut config: DiscordConfig,
        limiter: Arc<RateLimiter>,
        http: reqwest::Client,
    ) -> Self {
        config.api_base = config.api_base.trim_end_matches('/').to_owned();
        let transport = Transport {
            http,
            limiter,
            bot_token: config.bot_token.clone(),
            stats: Arc::default(),
        };
        Self { config, transport }
    }

    /// The limiter this client waits on.
    pub fn limiter(&self) -> &Arc<RateLimiter> {
        &self.transport.limiter
    }

    pub fn stats(&self) -> CallStats {
        self.transport
            .stats
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The authorize URL (scope `identify guilds.join`, `prompt=consent`, PKCE S256) with the
    /// CSRF state and PKCE verifier to keep for the callback.
    pub fn authorization_request(&self) -> AuthorizationRequest {
        self.build_authorization_request(false)
    }

    /// The same, also asking for `role_connections.write` when `role_connections` (a client
    /// with Linked Roles on needs it to write the member's role connection).
    pub fn authorization_request_with(&self, role_connections: bool) -> AuthorizationRequest {
        self.build_authorization_request(role_connections)
    }

    /// `POST /oauth2/token` with `grant_type=authorization_code`.
    pub async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: &SecretString,
    ) -> DiscordResult<TokenSet> {
        self.exchange_code_grant(code, pkce_verifier).await
    }

    /// `POST /oauth2/token` with `grant_type=refresh_token`. The old refresh token is dead after
    /// this: store the new one.
    pub async fn refresh_token(&self, refresh_token: &SecretString) -> DiscordResult<TokenSet> {
        self.refresh_token_grant(refresh_token).await
    }

    /// `POST /oauth2/token/revoke`: ends the member's whole authorization.
    pub async fn revoke_token(&self, token: &SecretString) -> DiscordResult<()> {
        self.revoke(token).await
    }

    pub async fn current_user(&self, access_token: &SecretString) -> DiscordResult<DiscordUser> {
        let call = self.call(Method::GET, "/users/@me", "/users/@me".to_owned(), None);
        self.transport
            .send_json(&Call {
                auth: Auth::Bearer(access_token),
                ..call
            })
            .await
    }

    pub async fn bot_user(&self) -> DiscordResult<DiscordUser> {
        let call = self.call(Method::GET, "/users/@me", "/users/@me".to_owned(), None);
        self.transport.send_json(&call).await
    }

    pub async fn guild(&self, guild_id: &str) -> DiscordResult<Guild> {
        let path = format!("/guilds/{}", segment(guild_id)?);
        let call = self.call(Method::GET, "/guilds/{guild}", path, Some(guild_id));
        self.transport.send_json(&call).await
    }

    pub async fn guild_roles(&self, guild_id: &str) -> DiscordResult<Vec<GuildRole>> {
        let path = format!("/guilds/{}/roles", segment(guild_id)?);
        let call = self.call(Method::GET, "/guilds/{guild}/roles", path, Some(guild_id));
        self.transport.send_json(&call).await
    }

    /// `PUT /guilds/{g}/members/{u}`: 201 → `Added`, 204 → `AlreadyMember` (nick and roles were
    /// then NOT applied).
    pub async fn add_member(
        &self,
        guild_id: &str,
        user_id: &str,
        access_token: &SecretString,
        nick: Option<&str>,
        roles: &[String],
    ) -> DiscordResult<AddMember> {
        let body = AddMemberBody {
            access_token: access_token.expose_secret(),
            nick,
            roles,
        };
        let call = self
            .call(
                Method::PUT,
                "/guilds/{guild}/members/{user}",
                member_path(guild_id, user_id)?,
                Some(guild_id),
            )
            .json(&body)?;
        let raw = self.transport.send(&call).await?;
        if raw.status == StatusCode::NO_CONTENT || raw.body.is_empty() {
            return Ok(AddMember::AlreadyMember);
        }
        decode(call.route, &raw.body).map(AddMember::Added)
    }

    /// `GET /guilds/{g}/members/{u}`: `UnknownMember` when the user is not in the guild.
    pub async fn get_member(&self, guild_id: &str, user_id: &str) -> DiscordResult<GuildMember> {
        let call = self.call(
            Method::GET,
            "/guilds/{guild}/members/{user}",
            member_path(guild_id, user_id)?,
            Some(guild_id),
        );
        self.transport.send_json(&call).await
    }

    /// One page of members, ascending by user id after `after`; `limit` is clamped to 1..=1000.
    /// Without the GUILD_MEMBERS intent Discord answers `MissingAccess`.
    pub async fn list_members(
        &self,
        guild_id: &str,
        after: Option<&str>,
        limit: u16,
    ) -> DiscordResult<Vec<GuildMember>> {
        let mut path = format!(
            "/guilds/{}/members?limit={}",
            segment(guild_id)?,
            limit.clamp(1, 1000)
        );
        if let Some(after) = after {
            path.push_str("&after=");
            path.push_str(&segment(after)?);
        }
        let call = self.call(Method::GET, "/guilds/{guild}/members", path, Some(guild_id));
        self.transport.send_json(&call).await
    }

    pub async fn add_role(
        &self,
        guild_id: &str,
        user_id: &str,
        role_id: &str,
        reason: &str,
    ) -> DiscordResult<()> {
        let call = self.role_call(Method::PUT, guild_id, user_id, role_id, reason)?;
        self.transport.send_empty(&call).await
    }

    pub async fn remove_role(
        &self,
        guild_id: &str,
        user_id: &str,
        role_id: &str,
        reason: &str,
    ) -> DiscordResult<()> {
        let call = self.role_call(Method::DELETE, guild_id, user_id, role_id, reason)?;
        self.transport.send_empty(&call).await
    }

    /// `PATCH /guilds/{g}/members/{u}` with `{"nick": value}`; `None` clears the nickname.
    pub async fn set_nickname(
        &self,
        guild_id: &str,
        user_id: &str,
        nick: Option<&str>,
        reason: &str,
    ) -> DiscordResult<GuildMember> {
        let call = self
            .call(
                Method::PATCH,
                "/guilds/{guild}/members/{user}",
                member_path(guild_id, user_id)?,
                Some(guild_id),
            )
            .reason(reason)
            .json(&NickBody { nick })?;
        self.transport.send_json(&call).await
    }

    /// `DELETE /guilds/{g}/members/{u}`.
    pub async fn kick(&self, guild_id: &str, user_id: &str, reason: &str) -> DiscordResult<()> {
        let call = self
            .call(
                Method::DELETE,
                "/guilds/{guild}/members/{user}",
                member_path(guild_id, user_id)?,
                Some(guild_id),
            )
            .reason(reason);
        self.transport.send_empty(&call).await
    }

    /// `GET /applications/{app}/role-connections/metadata`: the Linked Roles records Discord
    /// holds for this application.
    pub async fn role_connection_metadata(&self) -> DiscordResult<Vec<DiscordMetadataRecord>> {
        let path = format!(
            "/applications/{}/role-connections/metadata",
            segment(&self.config.application_id)?
        );
        let call = self.call(
            Method::GET,
            "/applications/{application}/role-connections/metadata",
            path,
            None,
        );
        self.transport.send_json(&call).await
    }

    /// `PUT /applications/{app}/role-connections/metadata`: replaces the whole set; answers what
    /// Discord now holds.
    pub async fn put_role_connection_metadata(
        &self,
        records: &[DiscordMetadataRecord],
        reason: &str,
    ) -> DiscordResult<Vec<DiscordMetadataRecord>> {
        let path = format!(
            "/applications/{}/role-connections/metadata",
            segment(&self.config.application_id)?
        );
        let call = self
            .call(
                Method::PUT,
                "/applications/{application}/role-connections/metadata",
                path,
                None,
            )
            .reason(reason)
            .json(&records)?;
        self.transport.send_json(&call).await
    }

    /// `PUT /users/@me/applications/{app}/role-connection` with the member's own token (scope
    /// `role_connections.write`). Sent as the member: the limiter keys its bucket by the
    /// member's token (Discord limits these per user), so one member's bucket never holds back
    /// another's.
    pub async fn put_role_connection(
        &self,
        access_token: &SecretString,
        connection: &RoleConnection,
        reason: &str,
    ) -> DiscordResult<()> {
        let path = format!(
            "/users/@me/applications/{}/role-connection",
            segment(&self.config.application_id)?
        );
        let call = self
            .call(
                Method::PUT,
                "/users/@me/applications/{application}/role-connection",
                path,
                None,
            )
            .reason(reason)
            .json(connection)?;
        self.transport
            .send(&Call {
                auth: Auth::Bearer(access_token),
                ..call
            })
            .await
            .map(drop)
    }

    /// `GET /users/@me/applications/{app}/role-connection` with the member's own token.
    pub async fn role_connection(
        &self,
        access_token: &SecretString,
    ) -> DiscordResult<HeldRoleConnection> {
        let path = format!(
            "/users/@me/applications/{}/role-connection",
            segment(&self.config.application_id)?
        );
        let call = self.call(
            Method::GET,
            "/users/@me/applications/{application}/role-connection",
            path,
            None,
        );
        self.transport
            .send_json(&Call {
                auth: Auth::Bearer(access_token),
                ..call
            })
            .await
    }

    fn role_call<'a>(
        &self,
        method: Method,
        guild_id: &'a str,
        user_id: &str,
        role_id: &str,
        reason: &str,
    ) -> DiscordResult<Call<'a>> {
        let path = format!(
            "{}/roles/{}",
            member_path(guild_id, user_id)?,
            segment(role_id)?
        );
        Ok(self
            .call(
                method,
                "/guilds/{guild}/members/{user}/roles/{role}",
                path,
                Some(guild_id),
            )
            .reason(reason))
    }

    /// A bot call to `{api_base}{path}`.
    fn call<'a>(
        &self,
        method: Method,
        route: &'static str,
        path: String,
        major: Option<&'a str>,
    ) -> Call<'a> {
        Call {
            method,
            route,
            url: self.url(&path),
            major,
            auth: Auth::Bot,
            headers: HeaderMap::new(),
            body: None,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.api_base)
    }
}

impl Call<'_> {
    fn json(mut self, body: &impl Serialize) -> DiscordResult<Self> {
        let body = serde_json::to_vec(body)
            .map_err(|e| super::DiscordError::Decode(format!("request body: {e}")))?;
        self.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self.body = Some(body);
        Ok(self)
    }

    /// `X-Audit-Log-Reason`: URL-encoded, at most 512 characters; none when empty.
    fn reason(mut self, reason: &str) -> Self {
        let reason = reason.trim();
        if reason.is_empty() {
            return self;
        }
        let truncated: String = reason.chars().take(MAX_AUDIT_REASON_CHARS).collect();
        let encoded = utf8_percent_encode(&truncated, COMPONENT).to_string();
        if let Ok(value) = HeaderValue::from_str(&encoded) {
            self.headers.insert(AUDIT_LOG_REASON, value);
        }
        self
    }
}

fn member_path(guild_id: &str, user_id: &str) -> DiscordResult<String> {
    Ok(format!(
        "/guilds/{}/members/{}",
        segment(guild_id)?,
        segment(user_id)?
    ))
}

/// An id as one path segment: snowflakes are digits; anything else is encoded (never a `/`), and
/// ids that URL normalisation would remove (``, `.`, `..`) are refused.
fn segment(id: &str) -> DiscordResult<String> {
    if id.chars().all(|c| c == '.') {
        return Err(super::DiscordError::InvalidFormBody(format!(
            "{id:?} is not a Discord id"
        )));
    }
    Ok(utf8_percent_encode(id, COMPONENT).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_reason_is_encoded_and_truncated() {
        let client = DiscordClient::new(
            DiscordConfig {
                api_base: "http://127.0.0.1:1/api/v10/".into(),
                authorize_url: "http://127.0.0.1:1/oauth2/authorize".into(),
                application_id: "1".into(),
                client_secret: None,
                bot_token: None,
                redirect_uri: "http://127.0.0.1:2/cb".into(),
            },
            Arc::new(RateLimiter::default()),
        );
        let long = "é".repeat(600);
        let call = client
            .call(Method::DELETE, "/x", "/x".into(), None)
            .reason(&long);
        let header = call.headers[&AUDIT_LOG_REASON].to_str().unwrap().to_owned();
        assert_eq!(header, "%C3%A9".repeat(512));
        assert_eq!(call.url, "http://127.0.0.1:1/api/v10/x");
        let call = client
            .call(Method::DELETE, "/x", "/x".into(), None)
            .reason("  ");
        assert!(call.headers.get(&AUDIT_LOG_REASON).is_none());
    }

    #[test]
    fn ids_cannot_escape_their_segment() {
        assert_eq!(
            segment("../../users/@me").unwrap(),
            "..%2F..%2Fusers%2F%40me"
        );
        assert_eq!(segment("123456789012345678").unwrap(), "123456789012345678");
        assert!(segment("..").is_err());
        assert!(segment("").is_err());
    }
}
