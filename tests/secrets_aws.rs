//! The Secrets Manager adapter against moto, and the AWS state built from the environment.

use std::time::Duration;

use connector::aws::aws_sdk_secretsmanager::Client;
use connector::aws::{self, AwsSetupError, Entry};
use connector::secrecy::{ExposeSecret, SecretString};
use connector::secrets::aws::{AwsSecrets, AwsSecretsConfig};
use connector::secrets::{ClientSecretKind, Secrets, SecretsError, TokenOwner};
use connector::store::contract::client;
use connector::store::dynamo::DynamoStore;
use connector_e2e::moto::{moto, unique_name};
use serde_json::Value;

const BOT: ClientSecretKind = ClientSecretKind::BotToken;
const APP: ClientSecretKind = ClientSecretKind::ClientSecret;

fn secret(v: &str) -> SecretString {
    SecretString::from(v)
}

const OWNER: TokenOwner<'static> = TokenOwner {
    client: "acme",
    user_id: "u1",
    discord_user_id: "111",
};

fn exposed(v: Option<SecretString>) -> Option<String> {
    v.map(|s| s.expose_secret().to_owned())
}

/// A secret with `value` under a fresh name; returns the name.
async fn create_secret(sm: &Client, value: &str) -> String {
    let name = unique_name("key");
    sm.create_secret()
        .name(&name)
        .secret_string(value)
        .send()
        .await
        .unwrap();
    name
}

/// An adapter with its own prefix and user-token key secret.
async fn adapter(cache_ttl: Duration) -> (AwsSecrets, Client, AwsSecretsConfig) {
    let sm = moto().await.secrets_manager();
    let config = AwsSecretsConfig {
        prefix: format!("{}/", unique_name("dc")),
        user_token_key_secret_id: create_secret(&sm, "generated key material 0123456789").await,
        cache_ttl,
    };
    (AwsSecrets::new(sm.clone(), config.clone()), sm, config)
}

async fn stored_json(sm: &Client, secret_id: &str) -> Value {
    let text = sm
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .unwrap()
        .secret_string
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn client_secrets_round_trip_and_one_put_keeps_the_other_value() {
    let (secrets, sm, config) = adapter(Duration::from_secs(300)).await;
    assert_eq!(
        exposed(secrets.get_client_secret("c1", BOT).await.unwrap()),
        None
    );

    secrets
        .put_client_secret("c1", BOT, &secret("bot-1"))
        .await
        .unwrap();
    assert_eq!(
        exposed(secrets.get_client_secret("c1", BOT).await.unwrap()).as_deref(),
        Some("bot-1"),
        "our own write is seen at once, though the absence was cached"
    );
    assert_eq!(
        exposed(secrets.get_client_secret("c1", APP).await.unwrap()),
        None
    );

    secrets
        .put_client_secret("c1", APP, &secret("app-1"))
        .await
        .unwrap();
    secrets
        .put_client_secret("c1", BOT, &secret("bot-2"))
        .await
        .unwrap();
    assert_eq!(
        exposed(secrets.get_client_secret("c1", BOT).await.unwrap()).as_deref(),
        Some("bot-2")
    );
    assert_eq!(
        exposed(secrets.get_client_secret("c1", APP).await.unwrap()).as_deref(),
        Some("app-1")
    );
    assert_eq!(
        exposed(secrets.get_client_secret("c2", BOT).await.unwrap()),
        None,
        "clients are apart"
    );

    let id = format!("{}clients/c1", config.prefix);
    assert_eq!(secrets.client_secret_id("c1"), id);
    assert_eq!(
        stored_json(&sm, &id).await,
        serde_json::json!({"bot_token": "bot-2", "client_secret": "app-1"}),
        "one secret per client, both values in its JSON"
    );
}

#[tokio::test]
async fn reads_are_cached_for_the_ttl_and_writes_invalidate() {
    let (cached, sm, config) = adapter(Duration::from_secs(3600)).await;
    cached
        .put_client_secret("c", BOT, &secret("v1"))
        .await
        .unwrap();
    assert_eq!(
        exposed(cached.get_client_secret("c", BOT).await.unwrap()).as_deref(),
        Some("v1")
    );

    // Changed out of band: the cache still answers.
    sm.put_secret_value()
        .secret_id(cached.client_secret_id("c"))
        .secret_string(r#"{"bot_token":"v2"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        exposed(cached.get_client_secret("c", BOT).await.unwrap()).as_deref(),
        Some("v1"),
        "served from the cache within the TTL"
    );
    let uncached = AwsSecrets::new(
        sm.clone(),
        AwsSecretsConfig {
            cache_ttl: Duration::ZERO,
            ..config.clone()
        },
    );
    assert_eq!(
        exposed(uncached.get_client_secret("c", BOT).await.unwrap()).as_deref(),
        Some("v2"),
        "without a cache the new value shows"
    );

    let short = AwsSecrets::new(
        sm.clone(),
        AwsSecretsConfig {
            cache_ttl: Duration::from_millis(200),
            ..config
        },
    );
    assert_eq!(
        exposed(short.get_client_secret("c", BOT).await.unwrap()).as_deref(),
        Some("v2")
    );
    sm.put_secret_value()
        .secret_id(short.client_secret_id("c"))
        .secret_string(r#"{"bot_token":"v3"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        exposed(short.get_client_secret("c", BOT).await.unwrap()).as_deref(),
        Some("v2")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        exposed(short.get_client_secret("c", BOT).await.unwrap()).as_deref(),
        Some("v3"),
        "read again once the TTL has passed"
    );

    // Our own write replaces the cached value at once.
    cached
        .put_client_secret("c", BOT, &secret("v4"))
        .await
        .unwrap();
    assert_eq!(
        exposed(cached.get_client_secret("c", BOT).await.unwrap()).as_deref(),
        Some("v4")
    );
}

#[tokio::test]
async fn deleted_client_secrets_read_as_absent_and_a_new_put_starts_afresh() {
    let (secrets, sm, _) = adapter(Duration::from_secs(300)).await;
    secrets
        .put_client_secret("c", BOT, &secret("old-bot"))
        .await
        .unwrap();
    secrets
        .put_client_secret("c", APP, &secret("old-app"))
        .await
        .unwrap();
    secrets.delete_client_secrets("c").await.unwrap();
    assert_eq!(
        exposed(secrets.get_client_secret("c", BOT).await.unwrap()),
        None
    );
    secrets.delete_client_secrets("c").await.unwrap();
    secrets
        .delete_client_secrets("never-created")
        .await
        .unwrap();

    let described = sm
        .describe_secret()
        .secret_id(secrets.client_secret_id("c"))
        .send()
        .await
        .unwrap();
    assert!(
        described.deleted_date.is_some(),
        "scheduled for deletion, within the recovery window"
    );

    // The same client id again (a client deleted and created anew).
    secrets
        .put_client_secret("c", BOT, &secret("new-bot"))
        .await
        .unwrap();
    assert_eq!(
        exposed(secrets.get_client_secret("c", BOT).await.unwrap()).as_deref(),
        Some("new-bot")
    );
    assert_eq!(
        exposed(secrets.get_client_secret("c", APP).await.unwrap()),
        None,
        "nothing of the deleted client comes back"
    );
}

#[tokio::test]
async fn user_tokens_are_sealed_under_the_one_key_secret() {
    let (secrets, sm, config) = adapter(Duration::from_secs(300)).await;
    let before = sm.list_secrets().send().await.unwrap().secret_list().len();

    let sealed = secrets
        .seal(&secret(r#"{"access_token":"at-1"}"#), &OWNER)
        .await
        .unwrap();
    assert!(sealed.starts_with("v2."));
    assert!(!sealed.contains("at-1"));
    assert_eq!(
        secrets.open(&sealed, &OWNER).await.unwrap().expose_secret(),
        r#"{"access_token":"at-1"}"#
    );
    let another_user = TokenOwner {
        user_id: "u2",
        ..OWNER
    };
    assert!(matches!(
        secrets.open(&sealed, &another_user).await,
        Err(SecretsError::Decrypt)
    ));
    for n in 0..3 {
        secrets
            .seal(&secret(&format!("user-{n}")), &OWNER)
            .await
            .unwrap();
    }
    assert_eq!(
        sm.list_secrets().send().await.unwrap().secret_list().len(),
        before,
        "sealing creates no secret per user"
    );

    // Another instance (another Lambda) with the same key secret opens it.
    let other = AwsSecrets::new(sm.clone(), config.clone());
    assert_eq!(
        other.open(&sealed, &OWNER).await.unwrap().expose_secret(),
        r#"{"access_token":"at-1"}"#
    );
    // A different key secret does not.
    let stranger = AwsSecrets::new(
        sm.clone(),
        AwsSecretsConfig {
            user_token_key_secret_id: create_secret(&sm, "another key").await,
            ..config
        },
    );
    assert!(matches!(
        stranger.open(&sealed, &OWNER).await,
        Err(SecretsError::Decrypt)
    ));
}

#[tokio::test]
async fn putting_a_new_token_key_value_rotates_the_key_and_the_previous_one_still_opens() {
    // Given tokens sealed under the key secret's first value
    let (secrets, sm, config) = adapter(Duration::ZERO).await;
    let id = config.user_token_key_secret_id.clone();
    let first = secrets.seal(&secret("under-first"), &OWNER).await.unwrap();

    // When the operator puts a new value (Secrets Manager moves the old one to AWSPREVIOUS)
    sm.put_secret_value()
        .secret_id(&id)
        .secret_string("second key material 0123456789")
        .send()
        .await
        .unwrap();

    // Then new values are sealed under another key id, and both open
    let second = secrets.seal(&secret("under-second"), &OWNER).await.unwrap();
    assert_ne!(
        connector::secrets::cipher::sealed_kid(&first),
        connector::secrets::cipher::sealed_kid(&second)
    );
    for (sealed, plain) in [(&first, "under-first"), (&second, "under-second")] {
        assert_eq!(
            secrets.open(sealed, &OWNER).await.unwrap().expose_secret(),
            plain
        );
    }

    // When it is rotated once more, then the first key is gone: only its values fail
    sm.put_secret_value()
        .secret_id(&id)
        .secret_string("third key material 0123456789")
        .send()
        .await
        .unwrap();
    assert!(matches!(
        secrets.open(&first, &OWNER).await,
        Err(SecretsError::Decrypt)
    ));
    assert_eq!(
        secrets.open(&second, &OWNER).await.unwrap().expose_secret(),
        "under-second"
    );
}

#[tokio::test]
async fn an_instance_that_has_not_seen_a_rotation_opens_values_sealed_after_it() {
    // Given an instance that read the key ring before the rotation (long cache)
    let (stale, sm, config) = adapter(Duration::from_secs(3600)).await;
    stale.seal(&secret("warm-up"), &OWNER).await.unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    sm.put_secret_value()
        .secret_id(&config.user_token_key_secret_id)
        .secret_string("rotated key material 0123456789")
        .send()
        .await
        .unwrap();
    // When another instance seals under the new key
    let fresh = AwsSecrets::new(sm.clone(), config.clone());
    let sealed = fresh.seal(&secret("after"), &OWNER).await.unwrap();
    // Then the stale instance reads the ring again for the unknown key id and opens it
    assert_eq!(
        stale.open(&sealed, &OWNER).await.unwrap().expose_secret(),
        "after"
    );
}

#[tokio::test]
async fn values_never_show_in_debug_output_or_errors() {
    let (secrets, sm, config) = adapter(Duration::from_secs(300)).await;
    secrets
        .put_client_secret("c", BOT, &secret("hunter2-bot"))
        .await
        .unwrap();
    secrets.get_client_secret("c", BOT).await.unwrap();
    let debug = format!("{secrets:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(!debug.contains("generated key material"), "{debug}");

    // A secret that is not our JSON: the error does not quote it.
    sm.put_secret_value()
        .secret_id(secrets.client_secret_id("c"))
        .secret_string("hunter2-not-json")
        .send()
        .await
        .unwrap();
    let fresh = AwsSecrets::new(sm.clone(), config.clone());
    let err = fresh.get_client_secret("c", BOT).await.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("hunter2"), "{shown}");

    // A missing key secret: the error names the operation, not a value.
    let keyless = AwsSecrets::new(
        sm.clone(),
        AwsSecretsConfig {
            user_token_key_secret_id: unique_name("missing"),
            ..config
        },
    );
    let err = keyless
        .seal(&secret("hunter2-token"), &OWNER)
        .await
        .unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("GetSecretValue"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
}

/// The one test that touches the process environment (no other test in this binary reads it).
#[tokio::test]
async fn the_state_is_built_from_the_environment() {
    let server = moto().await;
    let dynamodb = server.dynamodb();
    let sm = server.secrets_manager();
    let table = unique_name("state");
    DynamoStore::create_table(&dynamodb, &table).await.unwrap();
    let admin_secret = create_secret(&sm, "admin-token-from-secret-0123456789abcdef").await;
    let short_secret = create_secret(&sm, "31-characters-are-one-too-few-x").await;
    let key_secret = create_secret(&sm, "user token key").await;
    let prefix = format!("{}/", unique_name("env"));

    for (name, value) in server.env() {
        std::env::set_var(name, value);
    }
    for name in [
        aws::TABLE_VAR,
        aws::TOKEN_KEY_SECRET_VAR,
        aws::ADMIN_TOKEN_SECRET_VAR,
    ] {
        std::env::remove_var(name);
    }
    let queues = server.work_queues(&unique_name("state"), 5, 30).await;
    std::env::set_var(aws::QUEUE_URL_VAR, &queues.url);
    std::env::set_var(aws::TABLE_VAR, &table);
    std::env::set_var(aws::TOKEN_KEY_SECRET_VAR, &key_secret);
    match aws::state_for(Entry::AdminApi).await {
        Err(e @ AwsSetupError::MissingVar(aws::ADMIN_TOKEN_SECRET_VAR)) => {
            assert!(e.to_string().contains("CONNECTOR_ADMIN_TOKEN_SECRET"))
        }
        Err(other) => panic!("expected the admin secret variable to be named, got {other}"),
        Ok(_) => panic!("expected the admin secret variable to be named"),
    }
    std::env::set_var(aws::ADMIN_TOKEN_SECRET_VAR, &short_secret);
    match aws::state_for(Entry::AdminApi).await {
        Err(AwsSetupError::AdminTokenTooShort { secret_id }) => assert_eq!(secret_id, short_secret),
        Err(other) => panic!("expected a too-short admin token to be refused, got {other}"),
        Ok(_) => panic!("expected a too-short admin token to be refused"),
    }
    std::env::set_var(aws::ADMIN_TOKEN_SECRET_VAR, &admin_secret);
    std::env::set_var(aws::SECRETS_PREFIX_VAR, &prefix);
    std::env::set_var(aws::SECRETS_CACHE_SECONDS_VAR, "60");

    let state = aws::state_for(Entry::AdminApi).await.expect("state");

    let admin = state
        .admin
        .as_ref()
        .expect("the admin API gets the admin token");
    assert!(admin.verify("admin-token-from-secret-0123456789abcdef"));
    assert!(!admin.verify("something else"));
    state.store.create_client(&client("acme")).await.unwrap();
    assert_eq!(
        state.store.get_client("acme").await.unwrap(),
        Some(client("acme")),
        "the store is the table named by CONNECTOR_TABLE"
    );
    state
        .secrets
        .put_client_secret("acme", BOT, &secret("bot"))
        .await
        .unwrap();
    sm.describe_secret()
        .secret_id(format!("{prefix}clients/acme"))
        .send()
        .await
        .expect("the client secret lives under CONNECTOR_SECRETS_PREFIX");
    let sealed = state.secrets.seal(&secret("tokens"), &OWNER).await.unwrap();
    assert_eq!(
        state
            .secrets
            .open(&sealed, &OWNER)
            .await
            .unwrap()
            .expose_secret(),
        "tokens"
    );

    // A wrong admin secret id fails clearly.
    std::env::set_var(aws::ADMIN_TOKEN_SECRET_VAR, unique_name("no-such-secret"));
    match aws::state_for(Entry::AdminApi).await {
        Err(e @ AwsSetupError::AdminToken { .. }) => {
            assert!(e.to_string().contains("ResourceNotFoundException"), "{e}")
        }
        Err(other) => panic!("expected AdminToken, got {other}"),
        Ok(_) => panic!("expected AdminToken"),
    }
}
