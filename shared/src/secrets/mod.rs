//! The `Secrets` port: bot tokens, client secrets and users' OAuth tokens. Values are encrypted at
//! rest, never logged, never returned by the API.

#[cfg(feature = "aws")]
pub mod aws;
pub mod cipher;
#[cfg(feature = "embedded")]
pub mod local;

use async_trait::async_trait;
use secrecy::SecretString;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientSecretKind {
    BotToken,
    ClientSecret,
}

impl ClientSecretKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientSecretKind::BotToken => "bot_token",
            ClientSecretKind::ClientSecret => "client_secret",
        }
    }
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
    /// Encrypts a value (a user's OAuth tokens) for storage in the store.
    async fn seal(&self, plaintext: &SecretString) -> Result<String, SecretsError>;
    async fn open(&self, sealed: &str) -> Result<SecretString, SecretsError>;
}
