//! Building the AWS state: DynamoDB store, Secrets Manager secrets, admin token from a secret.
//! Every Lambda `main` calls [`state_from_env`] once.
//!
//! | variable | meaning |
//! |---|---|
//! | `CONNECTOR_TABLE` | the DynamoDB table (required) |
//! | `CONNECTOR_SECRETS_PREFIX` | prefix of the per-client secrets (default `discord-connector/`) |
//! | `CONNECTOR_TOKEN_KEY_SECRET` | secret id of the users' token key (required) |
//! | `CONNECTOR_ADMIN_TOKEN_SECRET` | secret id whose value is the admin bearer token (required) |
//! | `CONNECTOR_SECRETS_CACHE_SECONDS` | how long client secrets are cached (default 300) |
//!
//! The SDK reads its own configuration the usual way (`AWS_REGION`, credentials, and
//! `AWS_ENDPOINT_URL` — which points everything at an emulator such as moto without code changes).

use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::app::{AdminAuth, AppState};
use crate::clock::SystemClock;
use crate::secrets::aws::{AwsSecrets, AwsSecretsConfig};
use crate::secrets::SecretsError;
use crate::store::dynamo::DynamoStore;

/// Re-exported so entry points and tests use the same SDK versions as the adapters.
pub use {aws_config, aws_sdk_dynamodb, aws_sdk_secretsmanager};

pub const TABLE_VAR: &str = "CONNECTOR_TABLE";
pub const SECRETS_PREFIX_VAR: &str = "CONNECTOR_SECRETS_PREFIX";
pub const TOKEN_KEY_SECRET_VAR: &str = "CONNECTOR_TOKEN_KEY_SECRET";
pub const ADMIN_TOKEN_SECRET_VAR: &str = "CONNECTOR_ADMIN_TOKEN_SECRET";
pub const SECRETS_CACHE_SECONDS_VAR: &str = "CONNECTOR_SECRETS_CACHE_SECONDS";

pub const DEFAULT_SECRETS_PREFIX: &str = "discord-connector/";
pub const DEFAULT_SECRETS_CACHE_SECONDS: u64 = 300;

#[derive(Debug, thiserror::Error)]
pub enum AwsSetupError {
    #[error("environment variable {0} is not set")]
    MissingVar(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    InvalidVar { name: &'static str, reason: String },
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
    pub secrets_prefix: String,
    pub token_key_secret_id: String,
    pub admin_token_secret_id: String,
    pub secrets_cache: Duration,
}

impl AwsSettings {
    pub fn from_env() -> Result<Self, AwsSetupError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// From any variable source (`lookup` returns a variable's value); empty counts as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, AwsSetupError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let required = |name: &'static str| get(name).ok_or(AwsSetupError::MissingVar(name));
        let secrets_cache = match get(SECRETS_CACHE_SECONDS_VAR) {
            None => DEFAULT_SECRETS_CACHE_SECONDS,
            Some(v) => v.trim().parse().map_err(|_| AwsSetupError::InvalidVar {
                name: SECRETS_CACHE_SECONDS_VAR,
                reason: "expected a whole number of seconds".to_owned(),
            })?,
        };
        Ok(Self {
            table: required(TABLE_VAR)?,
            secrets_prefix: get(SECRETS_PREFIX_VAR)
                .unwrap_or_else(|| DEFAULT_SECRETS_PREFIX.to_owned()),
            token_key_secret_id: required(TOKEN_KEY_SECRET_VAR)?,
            admin_token_secret_id: required(ADMIN_TOKEN_SECRET_VAR)?,
            secrets_cache: Duration::from_secs(secrets_cache),
        })
    }
}

/// Reads the `CONNECTOR_*` variables and the SDK's own configuration, then builds the state.
pub async fn state_from_env() -> Result<AppState, AwsSetupError> {
    let settings = AwsSettings::from_env()?;
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    state_from(&sdk, settings).await
}

/// The state on the given SDK configuration: DynamoDB store, Secrets Manager secrets, the admin
/// token read (once) from its secret, the system clock.
pub async fn state_from(sdk: &SdkConfig, settings: AwsSettings) -> Result<AppState, AwsSetupError> {
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), settings.table);
    let secrets = AwsSecrets::new(
        aws_sdk_secretsmanager::Client::new(sdk),
        AwsSecretsConfig {
            prefix: settings.secrets_prefix,
            user_token_key_secret_id: settings.token_key_secret_id,
            cache_ttl: settings.secrets_cache,
        },
    );
    let admin_token = secrets
        .read_secret_string(&settings.admin_token_secret_id)
        .await
        .map_err(|source| AwsSetupError::AdminToken {
            secret_id: settings.admin_token_secret_id.clone(),
            source,
        })?;
    let admin = AdminAuth::from_token(&admin_token);
    Ok(AppState::new(
        Arc::new(store),
        Arc::new(secrets),
        Arc::new(SystemClock),
        admin,
    ))
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

    const REQUIRED: [(&str, &str); 3] = [
        (TABLE_VAR, "table"),
        (TOKEN_KEY_SECRET_VAR, "key-secret"),
        (ADMIN_TOKEN_SECRET_VAR, "admin-secret"),
    ];

    #[test]
    fn defaults_apply_to_optional_variables() {
        let settings = AwsSettings::from_lookup(vars(&REQUIRED)).unwrap();
        assert_eq!(
            settings,
            AwsSettings {
                table: "table".into(),
                secrets_prefix: DEFAULT_SECRETS_PREFIX.into(),
                token_key_secret_id: "key-secret".into(),
                admin_token_secret_id: "admin-secret".into(),
                secrets_cache: Duration::from_secs(300),
            }
        );
    }

    #[test]
    fn a_missing_or_empty_variable_is_named() {
        for missing in [TABLE_VAR, TOKEN_KEY_SECRET_VAR, ADMIN_TOKEN_SECRET_VAR] {
            let pairs: Vec<_> = REQUIRED
                .iter()
                .filter(|(k, _)| *k != missing)
                .copied()
                .collect();
            let err = AwsSettings::from_lookup(vars(&pairs)).unwrap_err();
            assert!(err.to_string().contains(missing), "{err}");

            let mut empty = REQUIRED.to_vec();
            empty.retain(|(k, _)| *k != missing);
            empty.push((missing, " "));
            let err = AwsSettings::from_lookup(vars(&empty)).unwrap_err();
            assert!(matches!(err, AwsSetupError::MissingVar(name) if name == missing));
        }
    }

    #[test]
    fn the_cache_duration_must_be_a_number() {
        let mut pairs = REQUIRED.to_vec();
        pairs.push((SECRETS_CACHE_SECONDS_VAR, "5m"));
        let err = AwsSettings::from_lookup(vars(&pairs)).unwrap_err();
        assert!(err.to_string().contains(SECRETS_CACHE_SECONDS_VAR));
        pairs.pop();
        pairs.push((SECRETS_CACHE_SECONDS_VAR, "0"));
        pairs.push((SECRETS_PREFIX_VAR, "dc/"));
        let settings = AwsSettings::from_lookup(vars(&pairs)).unwrap();
        assert_eq!(settings.secrets_cache, Duration::ZERO);
        assert_eq!(settings.secrets_prefix, "dc/");
    }
}
