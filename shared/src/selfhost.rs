//! Building the self-hosted state: embedded SQLite store, local encrypted secrets, admin token.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::SecretString;

use crate::app::{random_token, AdminAuth, AppState};
use crate::clock::{Clock, SystemClock};
use crate::domain::client::DiscordUrlPolicy;
use crate::secrets::cipher::SecretKey;
use crate::secrets::local::LocalSecrets;
use crate::store::sqlite::SqliteStore;
use crate::store::{RetentionPolicy, Settings, Store};

const ADMIN_TOKEN_SETTING: &str = "admin_token_sha256";

#[derive(Debug, thiserror::Error)]
pub enum SelfHostError {
    #[error("database {path}: {source}")]
    Store {
        path: PathBuf,
        source: crate::store::StoreError,
    },
    #[error("secret key: {0}")]
    Secrets(#[from] crate::secrets::SecretsError),
    #[error("stored admin token hash is unreadable; delete the `{ADMIN_TOKEN_SETTING}` setting or set CONNECTOR_ADMIN_TOKEN")]
    AdminHash,
    #[error(
        "CONNECTOR_ADMIN_TOKEN must be at least {} characters: it is the operator token",
        crate::app::MIN_ADMIN_TOKEN_CHARS
    )]
    AdminTokenTooShort,
}

/// Configuration of the embedded deployment (from flags and `CONNECTOR_*` variables).
pub struct SelfHostConfig {
    pub database: PathBuf,
    /// `CONNECTOR_SECRET_KEY`: 64 hex characters or base64 of 32 bytes.
    pub secret_key: Option<SecretString>,
    /// `CONNECTOR_ADMIN_TOKEN`.
    pub admin_token: Option<SecretString>,
    /// `CONNECTOR_ALLOW_CUSTOM_DISCORD_URLS`: whether clients may use Discord URLs other than
    /// Discord's (the emulator of the demo and the tests).
    pub discord_urls: DiscordUrlPolicy,
    /// `CONNECTOR_RETAIN_RUNS_DAYS`, `CONNECTOR_RETAIN_AUDIT_DAYS`: what the scheduler's prune
    /// step keeps.
    pub retention: RetentionPolicy,
}

pub struct SelfHosted {
    pub state: AppState,
    /// The in-process queue's inbox: `start_workers` turns it into the worker pool.
    pub workers: Option<crate::work::pool::PoolInbox>,
    /// Set when this start generated the admin token: show it once, it is not stored.
    pub generated_admin_token: Option<String>,
    pub key_file: Option<PathBuf>,
}

/// `<database>.key`, beside the database.
pub fn key_file_for(database: &Path) -> PathBuf {
    let mut name = database
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".key");
    database.with_file_name(name)
}

pub async fn open(
    config: SelfHostConfig,
    clock: Arc<dyn Clock>,
) -> Result<SelfHosted, SelfHostError> {
    let store = SqliteStore::open(&config.database)
        .map_err(|source| SelfHostError::Store {
            path: config.database.clone(),
            source,
        })?
        .with_retention(config.retention);
    let store: Arc<dyn Store> = Arc::new(store);
    let (key, key_file) = match &config.secret_key {
        Some(v) => {
            use secrecy::ExposeSecret;
            (SecretKey::from_env_value(v.expose_secret())?, None)
        }
        None => {
            crate::secrets::rotation::check_no_unfinished_rotation(&config.database)?;
            let path = key_file_for(&config.database);
            (SecretKey::load_or_create(&path)?, Some(path))
        }
    };
    let secrets = Arc::new(LocalSecrets::open(&config.database, key)?);

    let (admin, generated) = match &config.admin_token {
        Some(t) if !crate::app::admin_token_long_enough(t) => {
            return Err(SelfHostError::AdminTokenTooShort)
        }
        Some(t) => (AdminAuth::from_token(t), None),
        None => admin_from_store(store.as_ref()).await?,
    };
    let (queue, inbox) = crate::work::pool::local_queue();
    let state = AppState::new(store, secrets, clock, Some(admin), queue)
        .with_discord_urls(config.discord_urls);
    Ok(SelfHosted {
        state,
        workers: Some(inbox),
        generated_admin_token: generated,
        key_file,
    })
}

async fn admin_from_store(
    store: &dyn Settings,
) -> Result<(AdminAuth, Option<String>), SelfHostError> {
    let store_err = |source| SelfHostError::Store {
        path: PathBuf::from("(settings)"),
        source,
    };
    if let Some(hash) = store
        .get_setting(ADMIN_TOKEN_SETTING)
        .await
        .map_err(store_err)?
    {
        return Ok((
            AdminAuth::from_hash_hex(&hash).ok_or(SelfHostError::AdminHash)?,
            None,
        ));
    }
    let token = format!("dc_{}", random_token(32));
    let secret = SecretString::from(token.clone());
    let stored = store
        .put_setting_if_absent(ADMIN_TOKEN_SETTING, &AdminAuth::hash_hex(&secret))
        .await
        .map_err(store_err)?;
    if !stored {
        // Another process generated one first: use theirs.
        return Box::pin(admin_from_store(store)).await;
    }
    Ok((AdminAuth::from_token(&secret), Some(token)))
}

/// Guild writers run at once in one process (one per client at a time; many clients side by
/// side). Each writer holds one of its bot's writer slots, so this bounds the process, not
/// Discord's budget.
pub const DEFAULT_WORKERS: usize = 16;

impl SelfHosted {
    /// Starts the worker pool and the webhook delivery loop on the current runtime (once; later
    /// calls do nothing).
    pub fn start_workers(&mut self, workers: usize) {
        if self.start_pool(workers) {
            // Website webhooks go out beside the writers, never through them.
            tokio::spawn(crate::work::webhooks::run_loop(self.state.clone()));
        }
    }

    /// The worker pool alone (tests that deliver webhooks the way the AWS worker does). Returns
    /// whether it started now.
    pub fn start_pool(&mut self, workers: usize) -> bool {
        let Some(inbox) = self.workers.take() else {
            return false;
        };
        tokio::spawn(crate::work::pool::run_pool(
            self.state.clone(),
            inbox,
            workers,
        ));
        true
    }
}

/// The system clock, boxed for `open`.
pub fn system_clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}
