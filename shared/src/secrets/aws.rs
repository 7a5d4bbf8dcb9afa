//! The AWS `Secrets` adapter: AWS Secrets Manager.
//!
//! - One secret per client, `{prefix}clients/{client}`, holding JSON
//!   `{"bot_token": "…", "client_secret": "…"}`. The first put creates it (`CreateSecret`), later
//!   puts read it, merge and write a new version (`PutSecretValue`), so setting one value keeps the
//!   other. Two puts for one client at the same instant may lose one value: Secrets Manager has
//!   no conditional write; the admin API sets a client's values one request at a time.
//! - Reads go through an in-process cache for `cache_ttl` (values and absences alike); our own
//!   writes and deletes invalidate it. A value changed out of band is seen after the TTL.
//! - `delete_client_secrets` schedules the secret's deletion with the minimum recovery window
//!   (7 days; `ForceDeleteWithoutRecovery` is not used, so an operator can still restore it). A
//!   secret scheduled for deletion reads as absent, and a later put for the same client id
//!   restores it and overwrites it with only the new value.
//! - Users' OAuth tokens are sealed locally (XChaCha20-Poly1305, [`cipher`]) under a key derived
//!   as SHA-256 of the string value of ONE secret (`user_token_key_secret_id`), bound to their
//!   owner ([`TokenOwner`]). The key ring is that secret's `AWSCURRENT` version (seals and opens)
//!   and its `AWSPREVIOUS` version when there is one (opens only): putting a new value rotates
//!   the key, and values sealed under the previous one keep opening. The ring is read again after
//!   `cache_ttl`, or at once when a value names a key id the ring does not know (another
//!   instance saw the rotation first).
//! - Secret values never appear in `Debug` output or errors; errors name the operation and the
//!   AWS error code.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::cipher::{self, KeyRing, SecretKey};
use super::{ClientSecretKind, Secrets, SecretsError, TokenOwner, LEGACY_USER_TOKEN_AAD};
use crate::aws::sdk_error_message;
use async_trait::async_trait;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::Client as SecretsManagerClient;
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A ring is read again for an unknown key id at most this often.
const UNKNOWN_KID_REFRESH: Duration = Duration::from_secs(5);
/// The shortest recovery window Secrets Manager allows.
const RECOVERY_WINDOW_DAYS: i64 = 7;

#[derive(Debug, Clone)]
pub struct AwsSecretsConfig {
    /// Prepended to every secret name this adapter creates, e.g. `discord-connector/`.
    pub prefix: String,
    /// Id (name or ARN) of the secret whose string value the user-token key is derived from.
    pub user_token_key_secret_id: String,
    /// How long a read client secret is served from memory.
    pub cache_ttl: Duration,
}

pub struct AwsSecrets {
    client: SecretsManagerClient,
    config: AwsSecretsConfig,
    cache: Mutex<HashMap<String, Cached>>,
    user_keys: Mutex<Option<(Instant, Arc<KeyRing>)>>,
}

impl std::fmt::Debug for AwsSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsSecrets")
            .field("prefix", &self.config.prefix)
            .field("cache_ttl", &self.config.cache_ttl)
            .finish_non_exhaustive()
    }
}

struct Cached {
    at: Instant,
    values: Option<ClientValues>,
}

/// The JSON document of a client's secret. `SecretString` redacts `Debug`.
#[derive(Default, Clone, Debug, Deserialize)]
struct ClientValues {
    #[serde(default)]
    bot_token: Option<SecretString>,
    #[serde(default)]
    client_secret: Option<SecretString>,
    #[serde(default)]
    webhook_secret: Option<SecretString>,
}

impl ClientValues {
    fn get(&self, kind: ClientSecretKind) -> Option<&SecretString> {
        match kind {
            ClientSecretKind::BotToken => self.bot_token.as_ref(),
            ClientSecretKind::ClientSecret => self.client_secret.as_ref(),
            ClientSecretKind::WebhookSecret => self.webhook_secret.as_ref(),
        }
    }

    fn set(&mut self, kind: ClientSecretKind, value: &SecretString) {
        let slot = match kind {
            ClientSecretKind::BotToken => &mut self.bot_token,
            ClientSecretKind::ClientSecret => &mut self.client_secret,
            ClientSecretKind::WebhookSecret => &mut self.webhook_secret,
        };
        *slot = Some(value.clone());
    }

    /// The JSON text, in a buffer zeroized on drop.
    fn to_json(&self) -> Result<Zeroizing<String>, SecretsError> {
        #[derive(Serialize)]
        struct Doc<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            bot_token: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            client_secret: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            webhook_secret: Option<&'a str>,
        }
        serde_json::to_string(&Doc {
            bot_token: self.bot_token.as_ref().map(|v| v.expose_secret()),
            client_secret: self.client_secret.as_ref().map(|v| v.expose_secret()),
            webhook_secret: self.webhook_secret.as_ref().map(|v| v.expose_secret()),
        })
        .map(Zeroizing::new)
        .map_err(|_| SecretsError::Backend("cannot encode the client secret document".into()))
    }
}

/// What Secrets Manager holds for a client.
enum Stored {
    Absent,
    /// Scheduled for deletion: reads as absent, must be restored before it can be written.
    Deleted,
    Present(ClientValues),
}

impl AwsSecrets {
    pub fn new(client: SecretsManagerClient, config: AwsSecretsConfig) -> Self {
        Self {
            client,
            config,
            cache: Mutex::new(HashMap::new()),
            user_keys: Mutex::new(None),
        }
    }

    /// `{prefix}clients/{client}`.
    pub fn client_secret_id(&self, client: &str) -> String {
        format!("{}clients/{client}", self.config.prefix)
    }

    /// The current string value of any secret (uncached): e.g. the admin token at start-up.
    pub async fn read_secret_string(&self, secret_id: &str) -> Result<SecretString, SecretsError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|e| backend("GetSecretValue", &e))?;
        out.secret_string.map(SecretString::from).ok_or_else(|| {
            SecretsError::Backend("GetSecretValue: the secret has no string value".into())
        })
    }

    async fn fetch(&self, client: &str) -> Result<Stored, SecretsError> {
        let result = self
            .client
            .get_secret_value()
            .secret_id(self.client_secret_id(client))
            .send()
            .await;
        match result {
            Ok(out) => {
                let text = Zeroizing::new(out.secret_string.unwrap_or_default());
                let values: ClientValues = serde_json::from_str(&text).map_err(|_| {
                    SecretsError::Backend(format!(
                        "the secret of client {client} is not a JSON object of strings"
                    ))
                })?;
                Ok(Stored::Present(values))
            }
            Err(e) => match code(&e) {
                Some("ResourceNotFoundException") => Ok(Stored::Absent),
                // Secrets Manager refuses to read a secret scheduled for deletion.
                Some("InvalidRequestException") => Ok(Stored::Deleted),
                _ => Err(backend("GetSecretValue", &e)),
            },
        }
    }

    /// The client's values, from the cache while fresh.
    async fn values(&self, client: &str) -> Result<Option<ClientValues>, SecretsError> {
        if let Some(cached) = self.lock_cache().get(client) {
            if cached.at.elapsed() < self.config.cache_ttl {
                return Ok(cached.values.clone());
            }
        }
        let values = match self.fetch(client).await? {
            Stored::Present(values) => Some(values),
            Stored::Absent | Stored::Deleted => None,
        };
        self.lock_cache().insert(
            client.to_owned(),
            Cached {
                at: Instant::now(),
                values: values.clone(),
            },
        );
        Ok(values)
    }

    fn invalidate(&self, client: &str) {
        self.lock_cache().remove(client);
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn create(&self, client: &str, json: &str) -> Result<bool, SecretsError> {
        let result = self
            .client
            .create_secret()
            .name(self.client_secret_id(client))
            .description(format!("discord-connector secrets of client {client}"))
            .secret_string(json)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            // Created by someone else meanwhile: write a new version instead.
            Err(e) if code(&e) == Some("ResourceExistsException") => Ok(false),
            Err(e) => Err(backend("CreateSecret", &e)),
        }
    }

    async fn put_version(&self, client: &str, json: &str) -> Result<(), SecretsError> {
        self.client
            .put_secret_value()
            .secret_id(self.client_secret_id(client))
            .secret_string(json)
            .send()
            .await
            .map_err(|e| backend("PutSecretValue", &e))?;
        Ok(())
    }

    /// The token key ring, from memory while younger than `max_age`.
    async fn user_keys(&self, max_age: Duration) -> Result<Arc<KeyRing>, SecretsError> {
        if let Some((at, ring)) = self.lock_keys().as_ref() {
            if at.elapsed() < max_age {
                return Ok(Arc::clone(ring));
            }
        }
        let id = &self.config.user_token_key_secret_id;
        let current = derive_key(&self.read_secret_string(id).await?)?;
        let mut ring = KeyRing::new(current);
        if let Some(previous) = self.read_previous(id).await? {
            ring = ring.with_previous(derive_key(&previous)?);
        }
        let ring = Arc::new(ring);
        *self.lock_keys() = Some((Instant::now(), Arc::clone(&ring)));
        Ok(ring)
    }

    /// The `AWSPREVIOUS` version of a secret; `None` before its first rotation.
    async fn read_previous(&self, secret_id: &str) -> Result<Option<SecretString>, SecretsError> {
        let result = self
            .client
            .get_secret_value()
            .secret_id(secret_id)
            .version_stage("AWSPREVIOUS")
            .send()
            .await;
        match result {
            Ok(out) => Ok(out
                .secret_string
                .filter(|v| !v.is_empty())
                .map(SecretString::from)),
            Err(e) if code(&e) == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(backend("GetSecretValue (AWSPREVIOUS)", &e)),
        }
    }

    fn lock_keys(&self) -> std::sync::MutexGuard<'_, Option<(Instant, Arc<KeyRing>)>> {
        self.user_keys.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The token key: SHA-256 of the secret's string value (any length, e.g. `openssl rand -hex 32`).
fn derive_key(value: &SecretString) -> Result<SecretKey, SecretsError> {
    if value.expose_secret().is_empty() {
        return Err(SecretsError::InvalidKey(
            "the user-token key secret is empty".into(),
        ));
    }
    let digest: Zeroizing<[u8; 32]> =
        Zeroizing::new(Sha256::digest(value.expose_secret().as_bytes()).into());
    let hex = Zeroizing::new(hex::encode(*digest));
    SecretKey::from_env_value(&hex)
}

#[async_trait]
impl Secrets for AwsSecrets {
    async fn put_client_secret(
        &self,
        client: &str,
        kind: ClientSecretKind,
        value: &SecretString,
    ) -> Result<(), SecretsError> {
        let stored = self.fetch(client).await?;
        let mut values = match &stored {
            Stored::Present(values) => values.clone(),
            Stored::Absent | Stored::Deleted => ClientValues::default(),
        };
        values.set(kind, value);
        let json = values.to_json()?;
        let result = match stored {
            Stored::Absent => match self.create(client, &json).await {
                Ok(true) => Ok(()),
                Ok(false) => self.put_version(client, &json).await,
                Err(e) => Err(e),
            },
            Stored::Deleted => match self
                .client
                .restore_secret()
                .secret_id(self.client_secret_id(client))
                .send()
                .await
            {
                Ok(_) => self.put_version(client, &json).await,
                Err(e) => Err(backend("RestoreSecret", &e)),
            },
            Stored::Present(_) => self.put_version(client, &json).await,
        };
        self.invalidate(client);
        result
    }

    async fn get_client_secret(
        &self,
        client: &str,
        kind: ClientSecretKind,
    ) -> Result<Option<SecretString>, SecretsError> {
        Ok(self
            .values(client)
            .await?
            .and_then(|values| values.get(kind).cloned()))
    }

    async fn delete_client_secrets(&self, client: &str) -> Result<(), SecretsError> {
        self.invalidate(client);
        let result = self
            .client
            .delete_secret()
            .secret_id(self.client_secret_id(client))
            .recovery_window_in_days(RECOVERY_WINDOW_DAYS)
            .send()
            .await;
        self.invalidate(client);
        match result {
            Ok(_) => Ok(()),
            // Never created, or already scheduled for deletion.
            Err(e)
                if matches!(
                    code(&e),
                    Some("ResourceNotFoundException" | "InvalidRequestException")
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(backend("DeleteSecret", &e)),
        }
    }

    async fn seal(
        &self,
        plaintext: &SecretString,
        owner: &TokenOwner<'_>,
    ) -> Result<String, SecretsError> {
        let keys = self.user_keys(self.config.cache_ttl).await?;
        keys.seal(plaintext.expose_secret().as_bytes(), &owner.aad())
    }

    async fn open(
        &self,
        sealed: &str,
        owner: &TokenOwner<'_>,
    ) -> Result<SecretString, SecretsError> {
        let mut keys = self.user_keys(self.config.cache_ttl).await?;
        if cipher::sealed_kid(sealed).is_some_and(|kid| !keys.has_kid(kid)) {
            // Sealed by an instance that saw a rotation this one has not seen yet.
            keys = self.user_keys(UNKNOWN_KID_REFRESH).await?;
        }
        let plain = keys.open(sealed, &owner.aad(), LEGACY_USER_TOKEN_AAD)?;
        let text = std::str::from_utf8(&plain).map_err(|_| SecretsError::Decrypt)?;
        Ok(SecretString::from(text))
    }
}

fn code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    err.as_service_error().and_then(|e| e.code())
}

fn backend<E, R>(op: &str, err: &SdkError<E, R>) -> SecretsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    SecretsError::Backend(sdk_error_message(op, err))
}
