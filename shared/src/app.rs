//! The state every entry point builds once: ports, clock, Discord client factory, admin auth.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::discord::{DiscordClient, DiscordConfig, RateLimiter};
use crate::domain::Client;
use crate::secrets::{ClientSecretKind, Secrets, SecretsError};
use crate::store::Store;

/// Discord's global limit per bot token.
pub const DISCORD_GLOBAL_PER_SECOND: u32 = 50;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub secrets: Arc<dyn Secrets>,
    pub clock: Arc<dyn Clock>,
    pub discord: Arc<DiscordHub>,
    pub admin: Arc<AdminAuth>,
    /// How long a group change may spend applying roles at once before leaving the rest to the
    /// 5-minute task.
    pub immediate_apply_budget: Duration,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        secrets: Arc<dyn Secrets>,
        clock: Arc<dyn Clock>,
        admin: AdminAuth,
    ) -> Self {
        Self {
            store,
            secrets,
            clock,
            discord: Arc::new(DiscordHub::default()),
            admin: Arc::new(admin),
            immediate_apply_budget: Duration::from_secs(5),
        }
    }

    /// A Discord client for one configured client, with its secrets and the rate limiter shared
    /// by every client using the same bot token.
    pub async fn discord_for(&self, client: &Client) -> Result<DiscordClient, SecretsError> {
        let bot_token = self
            .secrets
            .get_client_secret(&client.id, ClientSecretKind::BotToken)
            .await?;
        let client_secret = self
            .secrets
            .get_client_secret(&client.id, ClientSecretKind::ClientSecret)
            .await?;
        let limiter = self.discord.limiter_for(bot_token.as_ref());
        Ok(DiscordClient::new(
            DiscordConfig {
                api_base: client.discord_api_base.clone(),
                authorize_url: client.discord_authorize_url.clone(),
                application_id: client.client_id.clone(),
                client_secret,
                bot_token,
                redirect_uri: client.callback_url.clone(),
            },
            limiter,
        ))
    }
}

/// Hands out one rate limiter per bot token, so every run and request of a deployment shares
/// what Discord told us about that token's buckets.
#[derive(Default)]
pub struct DiscordHub {
    limiters: Mutex<HashMap<String, Arc<RateLimiter>>>,
}

impl DiscordHub {
    pub fn limiter_for(&self, bot_token: Option<&SecretString>) -> Arc<RateLimiter> {
        let key = bot_token
            .map(|t| hex::encode(Sha256::digest(t.expose_secret().as_bytes())))
            .unwrap_or_default();
        let mut map = self.limiters.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key)
            .or_insert_with(|| Arc::new(RateLimiter::new(DISCORD_GLOBAL_PER_SECOND)))
            .clone()
    }
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
