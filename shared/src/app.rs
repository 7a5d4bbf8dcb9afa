//! The state every entry point builds once: ports, clock, Discord client factory, admin auth,
//! the work queue. A schedule's tick needs less: [`AppState::dispatch`] (the Lambda
//! dispatchers build only that, see `aws::dispatch_state`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::discord::{DiscordClient, DiscordConfig, RateLimiter};
use crate::domain::client::DiscordUrlPolicy;
use crate::domain::Client;
use crate::secrets::{ClientSecretKind, Secrets, SecretsError};
use crate::store::Store;
use crate::work::dispatch::Dispatch;
use crate::work::JobQueue;

/// Discord's global limit per bot token.
pub const DISCORD_GLOBAL_PER_SECOND: u32 = 50;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub secrets: Arc<dyn Secrets>,
    pub clock: Arc<dyn Clock>,
    pub discord: Arc<DiscordHub>,
    /// `None` where the entry point serves no admin API (the SSO callback, the scheduled
    /// functions, the worker): every `/api/v1` request is then refused.
    pub admin: Option<Arc<AdminAuth>>,
    /// Where work for the guild writers goes: the in-process pool, or SQS on AWS.
    pub queue: Arc<dyn JobQueue>,
    /// Which Discord URLs a client may be configured with (Discord's own unless opted in).
    pub discord_urls: DiscordUrlPolicy,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        secrets: Arc<dyn Secrets>,
        clock: Arc<dyn Clock>,
        admin: Option<AdminAuth>,
        queue: Arc<dyn JobQueue>,
    ) -> Self {
        Self {
            store,
            secrets,
            clock,
            discord: Arc::new(DiscordHub::default()),
            admin: admin.map(Arc::new),
            queue,
            discord_urls: DiscordUrlPolicy::default(),
        }
    }

    /// What a schedule's tick uses of this state (the self-hosted scheduler, a test's tick).
    pub fn dispatch(&self) -> Dispatch {
        Dispatch {
            clients: self.store.clone(),
            runs: self.store.clone(),
            leases: self.store.clone(),
            work: self.store.clone(),
            queue: self.queue.clone(),
            clock: self.clock.clone(),
        }
    }

    /// The same state, allowing (or not) clients to use Discord URLs other than Discord's.
    pub fn with_discord_urls(mut self, policy: DiscordUrlPolicy) -> Self {
        self.discord_urls = policy;
        self
    }

    /// A Discord client for one configured client, for calls made outside a guild writer (the
    /// link flow, `roles/sync`): it waits on the limiter shared by every such call of the
    /// process with the same bot token.
    pub async fn discord_for(&self, client: &Client) -> Result<DiscordClient, SecretsError> {
        let config = self.discord_config(client).await?;
        let limiter = self.discord.limiter_for(config.bot_token.as_ref());
        Ok(self.discord.client(config, limiter))
    }

    /// A Discord client for a guild writer: its own limiter, whose global budget is the
    /// writer's share of the bot's (see `work::writer`).
    pub async fn discord_with_limiter(
        &self,
        client: &Client,
        limiter: Arc<RateLimiter>,
    ) -> Result<DiscordClient, SecretsError> {
        let config = self.discord_config(client).await?;
        Ok(self.discord.client(config, limiter))
    }

    async fn discord_config(&self, client: &Client) -> Result<DiscordConfig, SecretsError> {
        let bot_token = self
            .secrets
            .get_client_secret(&client.id, ClientSecretKind::BotToken)
            .await?;
        let client_secret = self
            .secrets
            .get_client_secret(&client.id, ClientSecretKind::ClientSecret)
            .await?;
        Ok(DiscordConfig {
            api_base: client.discord_api_base.clone(),
            authorize_url: client.discord_authorize_url.clone(),
            application_id: client.client_id.clone(),
            client_secret,
            bot_token,
            redirect_uri: client.callback_url.clone(),
        })
    }
}

/// What every Discord client of a process shares: one HTTP connection pool, and one rate
/// limiter per bot token for calls made outside a guild writer.
pub struct DiscordHub {
    http: reqwest::Client,
    limiters: Mutex<HashMap<String, Arc<RateLimiter>>>,
}

impl Default for DiscordHub {
    fn default() -> Self {
        Self {
            http: crate::discord::client::http_client(),
            limiters: Mutex::default(),
        }
    }
}

impl DiscordHub {
    pub fn limiter_for(&self, bot_token: Option<&SecretString>) -> Arc<RateLimiter> {
        let key = bot_key(bot_token);
        let mut map = self.limiters.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key)
            .or_insert_with(|| Arc::new(RateLimiter::new(DISCORD_GLOBAL_PER_SECOND)))
            .clone()
    }

    fn client(&self, config: DiscordConfig, limiter: Arc<RateLimiter>) -> DiscordClient {
        DiscordClient::with_http(config, limiter, self.http.clone())
    }
}

/// A bot token's identity in lease names and maps: its SHA-256, never the token.
pub fn bot_key(bot_token: Option<&SecretString>) -> String {
    bot_token
        .map(|t| hex::encode(Sha256::digest(t.expose_secret().as_bytes())))
        .unwrap_or_default()
}

/// The shortest bootstrap (operator) token accepted: it guards everything.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 32;

/// Whether a bootstrap token is long enough to be accepted.
pub fn admin_token_long_enough(token: &SecretString) -> bool {
    token.expose_secret().chars().count() >= MIN_ADMIN_TOKEN_CHARS
}

/// Verifies the admin bearer token against its SHA-256, in constant time.
pub struct AdminAuth {
    token_sha256: [u8; 32],
}

impl AdminAuth {
    pub fn from_token(token: &SecretString) -> Self {
        Self {
            token_sha256: Sha256::digest(token.expose_secret().as_bytes()).into(),
        }
    }

    /// From a stored hex SHA-256 (the token itself is never stored).
    pub fn from_hash_hex(hash: &str) -> Option<Self> {
        let bytes = hex::decode(hash).ok()?;
        Some(Self {
            token_sha256: bytes.try_into().ok()?,
        })
    }

    pub fn hash_hex(token: &SecretString) -> String {
        hex::encode(Sha256::digest(token.expose_secret().as_bytes()))
    }

    /// Whether `hash` (hex SHA-256) is this token's: a console session made with an earlier
    /// bootstrap token stops working once the token is rotated.
    pub fn has_hash(&self, hash: &str) -> bool {
        use subtle::ConstantTimeEq;
        hex::decode(hash).is_ok_and(|h| h.ct_eq(&self.token_sha256).into())
    }

    pub fn verify(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        digest.ct_eq(&self.token_sha256).into()
    }
}

/// A fresh random token (admin token, OAuth state), URL-safe.
pub fn random_token(bytes: usize) -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// The store key of an OAuth `state`: its SHA-256, so the store never holds a usable state.
pub fn state_hash(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}
