//! The embedded `Secrets` adapter: client secrets sealed under a local key, in a `secrets` table
//! of the store's SQLite file (own connection). Plain text never reaches the disk.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use secrecy::{ExposeSecret, SecretString};

use super::cipher::{KeyRing, SecretKey};
use super::{
    client_secret_aad, ClientSecretKind, Secrets, SecretsError, TokenOwner, LEGACY_USER_TOKEN_AAD,
};
use crate::store::sqlite::Db;

pub(crate) const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS secrets (
    client  TEXT NOT NULL,
    kind    TEXT NOT NULL,
    sealed  TEXT NOT NULL,      -- cipher::seal output, aad = client_secret_aad(client, kind)
    PRIMARY KEY (client, kind)
) STRICT";

#[derive(Clone)]
pub struct LocalSecrets {
    db: Db,
    keys: Arc<KeyRing>,
}

impl std::fmt::Debug for LocalSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSecrets").finish_non_exhaustive()
    }
}

impl LocalSecrets {
    /// Opens (creating when absent) the `secrets` table in the database file at `db_path`.
    pub fn open(db_path: &Path, key: SecretKey) -> Result<Self, SecretsError> {
        Self::with_db(Db::open(db_path).map_err(SecretsError::Backend)?, key)
    }

    /// A private in-memory table: for tests.
    pub fn open_in_memory(key: SecretKey) -> Result<Self, SecretsError> {
        Self::with_db(Db::open_in_memory().map_err(SecretsError::Backend)?, key)
    }

    fn with_db(db: Db, key: SecretKey) -> Result<Self, SecretsError> {
        db.with_blocking(|c| c.execute_batch(SCHEMA))
            .map_err(|e| SecretsError::Backend(format!("cannot create secrets table: {e}")))?;
        Ok(Self {
            db,
            keys: Arc::new(KeyRing::new(key)),
        })
    }

    async fn run<T, F>(&self, f: F) -> Result<T, SecretsError>
    where
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.db
            .call(f)
            .await
            .map_err(|e| SecretsError::Backend(format!("sqlite worker failed: {e}")))?
            // SQLite's messages name tables and columns, never bound values.
            .map_err(|e| SecretsError::Backend(format!("sqlite: {e}")))
    }
}

/// UTF-8 plaintext as a `SecretString`, copied once into an exactly sized buffer (the decrypted
/// bytes are zeroized when dropped).
fn secret_string(bytes: &[u8]) -> Result<SecretString, SecretsError> {
    let text = std::str::from_utf8(bytes).map_err(|_| SecretsError::Decrypt)?;
    Ok(SecretString::from(text))
}

#[async_trait]
impl Secrets for LocalSecrets {
    async fn put_client_secret(
        &self,
        client: &str,
        kind: ClientSecretKind,
        value: &SecretString,
    ) -> Result<(), SecretsError> {
        let sealed = self.keys.seal(
            value.expose_secret().as_bytes(),
            &client_secret_aad(client, kind),
        )?;
        let client = client.to_owned();
        self.run(move |c| {
            c.execute(
                "INSERT INTO secrets (client, kind, sealed) VALUES (?1, ?2, ?3)
                 ON CONFLICT (client, kind) DO UPDATE SET sealed = excluded.sealed",
                params![client, kind.as_str(), sealed],
            )
        })
        .await?;
        Ok(())
    }

    async fn get_client_secret(
        &self,
        client: &str,
        kind: ClientSecretKind,
    ) -> Result<Option<SecretString>, SecretsError> {
        let owned = client.to_owned();
        let sealed: Option<String> = self
            .run(move |c| {
                c.query_row(
                    "SELECT sealed FROM secrets WHERE client = ?1 AND kind = ?2",
                    params![owned, kind.as_str()],
                    |r| r.get(0),
                )
                .optional()
            })
            .await?;
        sealed
            .map(|sealed| {
                let aad = client_secret_aad(client, kind);
                // `v1` values had the same associated data.
                let plain = self.keys.open(&sealed, &aad, &aad)?;
                secret_string(&plain)
            })
            .transpose()
    }

    async fn delete_client_secrets(&self, client: &str) -> Result<(), SecretsError> {
        let client = client.to_owned();
        self.run(move |c| c.execute("DELETE FROM secrets WHERE client = ?1", [client]))
            .await?;
        Ok(())
    }

    async fn seal(
        &self,
        plaintext: &SecretString,
        owner: &TokenOwner<'_>,
    ) -> Result<String, SecretsError> {
        self.keys
            .seal(plaintext.expose_secret().as_bytes(), &owner.aad())
    }

    async fn open(
        &self,
        sealed: &str,
        owner: &TokenOwner<'_>,
    ) -> Result<SecretString, SecretsError> {
        secret_string(
            &self
                .keys
                .open(sealed, &owner.aad(), LEGACY_USER_TOKEN_AAD)?,
        )
    }
}
