//! The `Secrets` port: bot tokens, client secrets and users' OAuth tokens. Values are encrypted at
//! rest, never logged, never returned by the API.

#[cfg(feature = "aws")]
pub mod aws;
pub mod cipher;
#[cfg(feature = "embedded")]
pub mod local;
#[cfg(feature = "embedded")]
pub mod rotation;

use async_trait::async_trait;
use secrecy::SecretString;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientSecretKind {
    BotToken,
    ClientSecret,
    /// The key that signs the client's website webhooks (`whsec_…`).
    WebhookSecret,
}

impl ClientSecretKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientSecretKind::BotToken => "bot_token",
            ClientSecretKind::ClientSecret => "client_secret",
            ClientSecretKind::WebhookSecret => "webhook_secret",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            ClientSecretKind::BotToken,
            ClientSecretKind::ClientSecret,
            ClientSecretKind::WebhookSecret,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == value)
    }
}

/// Whose OAuth tokens a sealed value holds. The three ids are the value's associated data: a
/// sealed value copied onto another member's record (or another client's) does not open there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenOwner<'a> {
    pub client: &'a str,
    pub user_id: &'a str,
    pub discord_user_id: &'a str,
}

impl TokenOwner<'_> {
    /// `user-token` and the three ids, each length-prefixed (so no two owners share a string).
    pub fn aad(&self) -> Vec<u8> {
        let mut out = b"user-token".to_vec();
        for part in [self.client, self.user_id, self.discord_user_id] {
            out.extend_from_slice(&(part.len() as u64).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        out
    }
}

/// The associated data of users' tokens sealed before key ids (`v1`): the same for everyone.
/// Such values still open (for any owner) until `rotate-key` or a token refresh re-seals them.
pub const LEGACY_USER_TOKEN_AAD: &[u8] = b"user-token";

/// The associated data of a client's secret in the local secrets table.
pub fn client_secret_aad(client: &str, kind: ClientSecretKind) -> Vec<u8> {
    format!("client:{client}:{}", kind.as_str()).into_bytes()
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("secret could not be decrypted (wrong key or corrupted value)")]
    Decrypt,
    #[error("secret key is invalid: {0}")]
    InvalidKey(String),
    #[error("secrets backend failure: {0}")]
    Backend(String),
}

#[async_trait]
pub trait Secrets: Send + Sync {
    async fn put_client_secret(
        &self,
        client: &str,
        kind: ClientSecretKind,
        value: &SecretString,
    ) -> Result<(), SecretsError>;
    async fn get_client_secret(
        &self,
        client: &str,
        kind: ClientSecretKind,
    ) -> Result<Option<SecretString>, SecretsError>;
    async fn delete_client_secrets(&self, client: &str) -> Result<(), SecretsError>;
    /// Encrypts a user's OAuth tokens for storage in the store, bound to their owner.
    async fn seal(
        &self,
        plaintext: &SecretString,
        owner: &TokenOwner<'_>,
    ) -> Result<String, SecretsError>;
    /// Opens what [`Secrets::seal`] sealed for the same owner (under the current key or one it
    /// still knows from before a rotation).
    async fn open(
        &self,
        sealed: &str,
        owner: &TokenOwner<'_>,
    ) -> Result<SecretString, SecretsError>;
}
