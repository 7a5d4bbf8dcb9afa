//! The AWS side of the connector: the state each Lambda function builds once, and the events
//! Lambda hands the functions.
//!
//! - [`state_for`] — the DynamoDB store, Secrets Manager secrets, the SQS work queue and, for
//!   the admin API only, the admin token read from its secret: the state of the admin API, the
//!   SSO callback and the worker. Only the admin API reads the admin token.
//! - [`dispatch_state`] — what the scheduled dispatchers use, and all they build: the DynamoDB
//!   store's client list, run log, leases and work index, the SQS work queue and the clock (no
//!   Secrets Manager client, no Discord HTTP client).
//! - [`events`] — the scheduled dispatchers: EventBridge payloads, delivery de-duplication,
//!   `work::dispatch::dispatch_tick`.
//! - [`worker`] — the queue worker: an SQS batch → `work::worker::run_job` per job → a partial
//!   batch response.
//! - [`invocation`] — what the Lambda context says about an invocation (request id, deadline).
//!
//! | variable | meaning |
//! |---|---|
//! | `CONNECTOR_TABLE` | the DynamoDB table (required) |
//! | `CONNECTOR_QUEUE_URL` | URL of the SQS FIFO work queue (required) |
//! | `CONNECTOR_SECRETS_PREFIX` | prefix of the per-client secrets (default `discord-connector/`) |
//! | `CONNECTOR_TOKEN_KEY_SECRET` | secret id of the users' token key (required) |
//! | `CONNECTOR_ADMIN_TOKEN_SECRET` | secret id whose value is the admin bearer token (required by the admin API, ignored elsewhere) |
//! | `CONNECTOR_SECRETS_CACHE_SECONDS` | how long client secrets and the token key ring are cached (default 300) |
//! | `CONNECTOR_RETAIN_RUNS_DAYS` | days a run report is kept: its `ttl` (default 90; template parameter `RetainRunsDays`) |
//! | `CONNECTOR_RETAIN_AUDIT_DAYS` | days an audit entry is kept: its `ttl` (default 365; template parameter `RetainAuditDays`) |
//! | `CONNECTOR_ALLOW_CUSTOM_DISCORD_URLS` | `true`: clients may use Discord URLs other than Discord's (default `false`; template parameter `AllowCustomDiscordUrls`) |
//!
//! The SDK's configuration comes from the variables Lambda sets (`AWS_REGION`, the execution
//! role's credentials) and `AWS_ENDPOINT_URL` — which points everything at an emulator such as
//! moto without code changes ([`load_sdk_config`]); its HTTP client is [`https_client`].

pub mod events;
pub mod invocation;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::SharedCredentialsProvider;
use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

use crate::app::{AdminAuth, AppState};
use crate::clock::SystemClock;
use crate::domain::client::DiscordUrlPolicy;
use crate::secrets::aws::{AwsSecrets, AwsSecretsConfig};
use crate::secrets::SecretsError;
use crate::store::dynamo::DynamoStore;
use crate::store::RetentionPolicy;
use crate::work::dispatch::Dispatch;
use crate::work::sqs::SqsQueue;

pub use invocation::Invocation;
/// Re-exported so entry points and tests use the same SDK versions as the adapters.
pub use {aws_config, aws_sdk_dynamodb, aws_sdk_secretsmanager, aws_sdk_sqs};

pub const TABLE_VAR: &str = "CONNECTOR_TABLE";
pub const QUEUE_URL_VAR: &str = "CONNECTOR_QUEUE_URL";
pub const SECRETS_PREFIX_VAR: &str = "CONNECTOR_SECRETS_PREFIX";
pub const TOKEN_KEY_SECRET_VAR: &str = "CONNECTOR_TOKEN_KEY_SECRET";
pub const ADMIN_TOKEN_SECRET_VAR: &str = "CONNECTOR_ADMIN_TOKEN_SECRET";
pub const SECRETS_CACHE_SECONDS_VAR: &str = "CONNECTOR_SECRETS_CACHE_SECONDS";
pub const ALLOW_CUSTOM_DISCORD_URLS_VAR: &str = "CONNECTOR_ALLOW_CUSTOM_DISCORD_URLS";

pub const DEFAULT_SECRETS_PREFIX: &str = "discord-connector/";
pub const DEFAULT_SECRETS_CACHE_SECONDS: u64 = 300;

/// Which Lambda function is starting: it decides what the state holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// `admin-api`: the only function that reads the admin token (and serves `/api/v1`).
    AdminApi,
    /// `sso-callback`: Discord's OAuth2 redirect.
    SsoCallback,
    /// `verify-groups`, `sync-accounts`, `remote-sync-groups`: scheduled dispatchers.
    Dispatcher,
    /// `worker`: runs the jobs of the work queue.
    Worker,
}

impl Entry {
    /// Whether this function serves the admin API, and so needs the admin token.
    pub fn serves_admin_api(self) -> bool {
        self == Entry::AdminApi
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AwsSetupError {
    #[error("environment variable {0} is not set")]
    MissingVar(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    InvalidVar { name: &'static str, reason: String },
    #[error("the admin token in secret {secret_id} must be at least {} characters: it is the operator token", crate::app::MIN_ADMIN_TOKEN_CHARS)]
    AdminTokenTooShort { secret_id: String },
    #[error("cannot read the admin token from secret {secret_id}: {source}")]
    AdminToken {
        secret_id: String,
        source: SecretsError,
    },
}

/// The deployment's settings, read from `CONNECTOR_*` variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    pub table: String,
    pub queue_url: String,
    pub secrets_prefix: String,
    pub token_key_secret_id: String,
    /// Set for [`Entry::AdminApi`] only (required there); other functions never read it.
    pub admin_token_secret_id: Option<String>,
    pub secrets_cache: Duration,
    /// Which Discord URLs clients may be configured with.
    pub discord_urls: DiscordUrlPolicy,
    /// The `ttl` given to run reports and audit entries.
    pub retention: RetentionPolicy,
}

impl AwsSettings {
    pub fn from_env(entry: Entry) -> Result<Self, AwsSetupError> {
        Self::from_lookup(entry, |name| std::env::var(name).ok())
    }

    /// From any variable source (`lookup` returns a variable's value); empty counts as unset.
    pub fn from_lookup(
        entry: Entry,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, AwsSetupError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let required = |name: &'static str| get(name).ok_or(AwsSetupError::MissingVar(name));
        let secrets_cache = match get(SECRETS_CACHE_SECONDS_VAR) {
            None => DEFAULT_SECRETS_CACHE_SECONDS,
            Some(v) => v.trim().parse().map_err(|_| AwsSetupError::InvalidVar {
                name: SECRETS_CACHE_SECONDS_VAR,
                reason: "expected a whole number of seconds".to_owned(),
            })?,
        };
        let retention =
            RetentionPolicy::from_lookup(get).map_err(|e| AwsSetupError::InvalidVar {
                name: e.var,
                reason: format!(
                    "expected a whole number of days from 1 to {}",
                    crate::store::retention::MAX_RETAIN_DAYS
                ),
            })?;
        let queue_url = required(QUEUE_URL_VAR)?;
        if !(queue_url.starts_with("https://") || queue_url.starts_with("http://")) {
            return Err(AwsSetupError::InvalidVar {
                name: QUEUE_URL_VAR,
                reason: "expected the queue's URL (https://sqs.<region>.amazonaws.com/<account>/<name>.fifo)"
                    .to_owned(),
            });
        }
        Ok(Self {
            table: required(TABLE_VAR)?,
            queue_url,
            secrets_prefix: get(SECRETS_PREFIX_VAR)
                .unwrap_or_else(|| DEFAULT_SECRETS_PREFIX.to_owned()),
            token_key_secret_id: required(TOKEN_KEY_SECRET_VAR)?,
            admin_token_secret_id: if entry.serves_admin_api() {
                Some(required(ADMIN_TOKEN_SECRET_VAR)?)
            } else {
                None
            },
            secrets_cache: Duration::from_secs(secrets_cache),
            discord_urls: DiscordUrlPolicy::from_setting(
                get(ALLOW_CUSTOM_DISCORD_URLS_VAR).as_deref(),
            ),
            retention,
        })
    }
}

/// The HTTP client of every SDK client: the SDK's hyper + rustls client with ring, the crypto
/// provider reqwest (the Discord client) already uses — the SDK's default client would link
/// aws-lc-rs beside it. It trusts the system's root certificates, as the default client does.
pub fn https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The SDK's configuration from what Lambda puts in a function's environment: the region
/// (`AWS_REGION`, else `AWS_DEFAULT_REGION`), the execution role's credentials
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) and `AWS_ENDPOINT_URL` when
/// set (an emulator such as moto), on [`https_client`]. Not `aws_config`'s default chain: its
/// profile, SSO, web-identity, ECS and IMDS providers never serve a function on Lambda, and
/// linking them cost every bootstrap about 400 KB. Retries (standard, 3 attempts), the connect
/// timeout and stalled-stream protection are the SDK clients' defaults for the latest behavior
/// version, the same the loader chose.
pub fn load_sdk_config() -> SdkConfig {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let region = var("AWS_REGION")
        .or_else(|| var("AWS_DEFAULT_REGION"))
        .map(Region::new);
    let mut config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(region)
        .credentials_provider(SharedCredentialsProvider::new(
            EnvironmentVariableCredentialsProvider::new(),
        ))
        .http_client(https_client());
    if let Some(endpoint) = var("AWS_ENDPOINT_URL") {
        config = config.endpoint_url(endpoint);
    }
    config.build()
}

/// Reads the `CONNECTOR_*` variables and the SDK's own configuration, then builds the state
/// `entry` needs. The admin API's, the SSO callback's and the worker's `main` call it once.
pub async fn state_for(entry: Entry) -> Result<AppState, AwsSetupError> {
    let settings = AwsSettings::from_env(entry)?;
    let sdk = load_sdk_config();
    state_from(&sdk, settings).await
}

/// The state on the given SDK configuration: DynamoDB store, Secrets Manager secrets (client
/// secrets and the token key are read when first used), the SQS work queue, the system clock,
/// and the admin token read (once) from its secret when the settings name one.
pub async fn state_from(sdk: &SdkConfig, settings: AwsSettings) -> Result<AppState, AwsSetupError> {
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), settings.table)
        .with_retention(settings.retention);
    let secrets = AwsSecrets::new(
        aws_sdk_secretsmanager::Client::new(sdk),
        AwsSecretsConfig {
            prefix: settings.secrets_prefix,
            user_token_key_secret_id: settings.token_key_secret_id,
            cache_ttl: settings.secrets_cache,
        },
    );
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(sdk), settings.queue_url);
    let admin = match settings.admin_token_secret_id {
        None => None,
        Some(secret_id) => {
            let token = secrets
                .read_secret_string(&secret_id)
                .await
                .map_err(|source| AwsSetupError::AdminToken {
                    secret_id: secret_id.clone(),
                    source,
                })?;
            if !crate::app::admin_token_long_enough(&token) {
                return Err(AwsSetupError::AdminTokenTooShort { secret_id });
            }
            Some(AdminAuth::from_token(&token))
        }
    };
    Ok(AppState::new(
        Arc::new(store),
        Arc::new(secrets),
        Arc::new(SystemClock),
        admin,
        Arc::new(queue),
    )
    .with_discord_urls(settings.discord_urls))
}

/// Reads the `CONNECTOR_*` variables (as [`Entry::Dispatcher`]) and the SDK's own configuration,
/// then builds a scheduled dispatcher's state on the table and the queue they name. The
/// dispatchers' `main` calls it once.
pub async fn dispatch_state() -> Result<Dispatch, AwsSetupError> {
    let settings = AwsSettings::from_env(Entry::Dispatcher)?;
    let sdk = load_sdk_config();
    Ok(dispatch_from(&sdk, settings))
}

/// A dispatcher's state on the given SDK configuration: the DynamoDB store (as the ports a tick
/// uses), the SQS work queue and the system clock.
pub fn dispatch_from(sdk: &SdkConfig, settings: AwsSettings) -> Dispatch {
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), settings.table)
        .with_retention(settings.retention);
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(sdk), settings.queue_url);
    Dispatch::new(Arc::new(store), Arc::new(queue), Arc::new(SystemClock))
}

/// An SDK error for logs and error values: the operation and what went wrong (the AWS error code,
/// a timeout, a connection failure) — never request or response contents.
pub(crate) fn sdk_error_message<E, R>(op: &str, err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err {
        SdkError::ServiceError(e) => match e.err().code() {
            Some(code) => format!("{op}: {code}"),
            None => format!("{op}: unrecognized service error"),
        },
        SdkError::TimeoutError(_) => format!("{op}: timed out"),
        // Connection-level failures (refused, DNS, TLS) carry no request contents.
        SdkError::DispatchFailure(_) => format!("{op}: {}", DisplayErrorContext(err)),
        SdkError::ResponseError(_) => format!("{op}: unreadable response"),
        SdkError::ConstructionFailure(_) => format!("{op}: the request could not be built"),
        _ => format!("{op}: failed"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const QUEUE: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/work.fifo";

    const REQUIRED: [(&str, &str); 4] = [
        (TABLE_VAR, "table"),
        (QUEUE_URL_VAR, QUEUE),
        (TOKEN_KEY_SECRET_VAR, "key-secret"),
        (ADMIN_TOKEN_SECRET_VAR, "admin-secret"),
    ];

    const ENTRIES: [Entry; 4] = [
        Entry::AdminApi,
        Entry::SsoCallback,
        Entry::Dispatcher,
        Entry::Worker,
    ];

    #[test]
    fn defaults_apply_to_optional_variables() {
        let settings = AwsSettings::from_lookup(Entry::AdminApi, vars(&REQUIRED)).unwrap();
        assert_eq!(
            settings,
            AwsSettings {
                table: "table".into(),
                queue_url: QUEUE.into(),
                secrets_prefix: DEFAULT_SECRETS_PREFIX.into(),
                token_key_secret_id: "key-secret".into(),
                admin_token_secret_id: Some("admin-secret".into()),
                secrets_cache: Duration::from_secs(300),
                discord_urls: DiscordUrlPolicy::DiscordOnly,
                retention: RetentionPolicy::default(),
            }
        );
    }

    #[test]
    fn retention_is_read_and_a_bad_value_names_its_variable() {
        use crate::store::retention::{RETAIN_AUDIT_DAYS_VAR, RETAIN_RUNS_DAYS_VAR};
        let with = |runs: &'static str, audit: &'static str| {
            let mut pairs = REQUIRED.to_vec();
            pairs.extend([(RETAIN_RUNS_DAYS_VAR, runs), (RETAIN_AUDIT_DAYS_VAR, audit)]);
            AwsSettings::from_lookup(Entry::Worker, vars(&pairs))
        };
        assert_eq!(
            with("30", "730").unwrap().retention,
            RetentionPolicy {
                runs_days: 30,
                audit_days: 730
            }
        );
        match with("30", "0") {
            Err(AwsSetupError::InvalidVar { name, reason }) => {
                assert_eq!(name, RETAIN_AUDIT_DAYS_VAR);
                assert!(reason.contains("from 1 to"), "{reason}");
            }
            other => panic!("expected an invalid variable, got {other:?}"),
        }
    }

    #[test]
    fn only_the_admin_api_reads_the_admin_token_secret() {
        for entry in ENTRIES {
            let settings = AwsSettings::from_lookup(entry, vars(&REQUIRED)).unwrap();
            assert_eq!(
                settings.admin_token_secret_id.is_some(),
                entry == Entry::AdminApi,
                "{entry:?}"
            );
        }
        let without: Vec<_> = REQUIRED
            .iter()
            .filter(|(k, _)| *k != ADMIN_TOKEN_SECRET_VAR)
            .copied()
            .collect();
        for entry in [Entry::SsoCallback, Entry::Dispatcher, Entry::Worker] {
            assert!(
                AwsSettings::from_lookup(entry, vars(&without)).is_ok(),
                "{entry:?}"
            );
        }
        assert!(matches!(
            AwsSettings::from_lookup(Entry::AdminApi, vars(&without)),
            Err(AwsSetupError::MissingVar(ADMIN_TOKEN_SECRET_VAR))
        ));
    }

    #[test]
    fn a_missing_or_empty_variable_is_named() {
        for entry in ENTRIES {
            for missing in [TABLE_VAR, QUEUE_URL_VAR, TOKEN_KEY_SECRET_VAR] {
                let pairs: Vec<_> = REQUIRED
                    .iter()
                    .filter(|(k, _)| *k != missing)
                    .copied()
                    .collect();
                let err = AwsSettings::from_lookup(entry, vars(&pairs)).unwrap_err();
                assert!(err.to_string().contains(missing), "{entry:?}: {err}");

                let mut empty = REQUIRED.to_vec();
                empty.retain(|(k, _)| *k != missing);
                empty.push((missing, " "));
                let err = AwsSettings::from_lookup(entry, vars(&empty)).unwrap_err();
                assert!(
                    matches!(err, AwsSetupError::MissingVar(name) if name == missing),
                    "{entry:?}: {err}"
                );
            }
        }
    }

    #[test]
    fn the_queue_url_must_be_a_url() {
        let mut pairs = REQUIRED.to_vec();
        pairs.retain(|(k, _)| *k != QUEUE_URL_VAR);
        pairs.push((QUEUE_URL_VAR, "work.fifo"));
        let err = AwsSettings::from_lookup(Entry::Worker, vars(&pairs)).unwrap_err();
        assert!(
            matches!(
                err,
                AwsSetupError::InvalidVar {
                    name: QUEUE_URL_VAR,
                    ..
                }
            ),
            "{err}"
        );
        pairs.pop();
        pairs.push((
            QUEUE_URL_VAR,
            "http://127.0.0.1:5000/123456789012/work.fifo",
        ));
        let settings = AwsSettings::from_lookup(Entry::Worker, vars(&pairs)).unwrap();
        assert_eq!(
            settings.queue_url,
            "http://127.0.0.1:5000/123456789012/work.fifo"
        );
    }

    #[test]
    fn the_cache_duration_must_be_a_number() {
        let mut pairs = REQUIRED.to_vec();
        pairs.push((SECRETS_CACHE_SECONDS_VAR, "5m"));
        let err = AwsSettings::from_lookup(Entry::Worker, vars(&pairs)).unwrap_err();
        assert!(err.to_string().contains(SECRETS_CACHE_SECONDS_VAR));
        pairs.pop();
        pairs.push((SECRETS_CACHE_SECONDS_VAR, "0"));
        pairs.push((SECRETS_PREFIX_VAR, "dc/"));
        let settings = AwsSettings::from_lookup(Entry::Worker, vars(&pairs)).unwrap();
        assert_eq!(settings.secrets_cache, Duration::ZERO);
        assert_eq!(settings.secrets_prefix, "dc/");
    }

    #[test]
    fn custom_discord_urls_need_an_explicit_true() {
        for (value, policy) in [
            (None, DiscordUrlPolicy::DiscordOnly),
            (Some("false"), DiscordUrlPolicy::DiscordOnly),
            (Some("nope"), DiscordUrlPolicy::DiscordOnly),
            (Some("true"), DiscordUrlPolicy::AllowCustom),
        ] {
            let mut pairs = REQUIRED.to_vec();
            pairs.extend(value.map(|v| (ALLOW_CUSTOM_DISCORD_URLS_VAR, v)));
            let settings = AwsSettings::from_lookup(Entry::AdminApi, vars(&pairs)).unwrap();
            assert_eq!(settings.discord_urls, policy, "{value:?}");
        }
    }
}
