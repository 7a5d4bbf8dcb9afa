//! Local secrets: sealed under a key, in the store's SQLite file, never in plain text.

use std::path::Path;

use connector::secrets::cipher::{self, SecretKey};
use connector::secrets::local::LocalSecrets;
use connector::secrets::{ClientSecretKind, Secrets, SecretsError, TokenOwner};
use secrecy::{ExposeSecret, SecretString};

const BOT_TOKEN: &str = "MTA5ODc2NTQzMjEwOTg3NjU0.GhIjKl.bot-token-that-must-not-leak";
const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn key() -> SecretKey {
    SecretKey::from_env_value(KEY_HEX).unwrap()
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s)
}

const OWNER: TokenOwner<'static> = TokenOwner {
    client: "acme",
    user_id: "u1",
    discord_user_id: "111",
};

/// Every byte SQLite has on disk for `db`: the file and its write-ahead log.
fn disk_bytes(db: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(db).unwrap();
    let wal = db.with_extension("db-wal");
    if wal.exists() {
        bytes.extend(std::fs::read(wal).unwrap());
    }
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn client_secrets_round_trip_per_client_and_kind() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = LocalSecrets::open(&dir.path().join("c.db"), key()).unwrap();
    let bot = ClientSecretKind::BotToken;
    let oauth = ClientSecretKind::ClientSecret;

    assert!(secrets.get_client_secret("a", bot).await.unwrap().is_none());
    secrets
        .put_client_secret("a", bot, &secret(BOT_TOKEN))
        .await
        .unwrap();
    secrets
        .put_client_secret("a", oauth, &secret("oauth-secret"))
        .await
        .unwrap();
    secrets
        .put_client_secret("b", bot, &secret("b-token"))
        .await
        .unwrap();

    let got = secrets.get_client_secret("a", bot).await.unwrap().unwrap();
    assert_eq!(got.expose_secret(), BOT_TOKEN);
    let got = secrets
        .get_client_secret("a", oauth)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.expose_secret(), "oauth-secret");

    secrets
        .put_client_secret("a", bot, &secret("rotated"))
        .await
        .unwrap();
    let got = secrets.get_client_secret("a", bot).await.unwrap().unwrap();
    assert_eq!(got.expose_secret(), "rotated");

    secrets.delete_client_secrets("a").await.unwrap();
    assert!(secrets.get_client_secret("a", bot).await.unwrap().is_none());
    assert!(secrets
        .get_client_secret("a", oauth)
        .await
        .unwrap()
        .is_none());
    assert!(secrets.get_client_secret("b", bot).await.unwrap().is_some());
}

#[tokio::test]
async fn user_tokens_are_sealed_and_opened() {
    let secrets = LocalSecrets::open_in_memory(key()).unwrap();
    let sealed = secrets
        .seal(&secret("access+refresh"), &OWNER)
        .await
        .unwrap();
    assert!(
        sealed.starts_with(&format!("v2.{}.", key().kid())),
        "{sealed}"
    );
    assert!(!sealed.contains("access"));
    assert_eq!(
        secrets.open(&sealed, &OWNER).await.unwrap().expose_secret(),
        "access+refresh"
    );
}

#[tokio::test]
async fn a_users_tokens_copied_onto_another_record_do_not_open() {
    // Given tokens sealed for user u1 of acme, linked to Discord account 111
    let secrets = LocalSecrets::open_in_memory(key()).unwrap();
    let sealed = secrets.seal(&secret("tokens"), &OWNER).await.unwrap();
    // When the sealed value is read as another member's, another account's, another client's
    for other in [
        TokenOwner {
            user_id: "u2",
            ..OWNER
        },
        TokenOwner {
            discord_user_id: "222",
            ..OWNER
        },
        TokenOwner {
            client: "other",
            ..OWNER
        },
        // The ids are length-prefixed: moving characters between them is another owner.
        TokenOwner {
            client: "acmeu",
            user_id: "1",
            ..OWNER
        },
    ] {
        // Then it does not open
        assert!(
            matches!(
                secrets.open(&sealed, &other).await,
                Err(SecretsError::Decrypt)
            ),
            "{other:?}"
        );
    }
    assert_eq!(
        secrets.open(&sealed, &OWNER).await.unwrap().expose_secret(),
        "tokens"
    );
}

#[tokio::test]
async fn values_sealed_before_key_ids_still_open() {
    // Given a database written by the previous version: `v1.` values, no key id, the constant
    // associated data for users' tokens
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let old_token = cipher::seal_v1(&key(), b"legacy tokens", b"user-token").unwrap();
    let old_bot = cipher::seal_v1(&key(), BOT_TOKEN.as_bytes(), b"client:a:bot_token").unwrap();
    drop(LocalSecrets::open(&db, key()).unwrap());
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "INSERT INTO secrets (client, kind, sealed) VALUES ('a', 'bot_token', ?1)",
        [&old_bot],
    )
    .unwrap();
    drop(conn);
    // When this version reads them, then they open
    let secrets = LocalSecrets::open(&db, key()).unwrap();
    assert_eq!(
        secrets
            .open(&old_token, &OWNER)
            .await
            .unwrap()
            .expose_secret(),
        "legacy tokens"
    );
    assert_eq!(
        secrets
            .get_client_secret("a", ClientSecretKind::BotToken)
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        BOT_TOKEN
    );
}

#[tokio::test]
async fn secrets_survive_reopening_with_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    {
        let secrets = LocalSecrets::open(&db, key()).unwrap();
        secrets
            .put_client_secret("a", ClientSecretKind::BotToken, &secret(BOT_TOKEN))
            .await
            .unwrap();
    }
    let secrets = LocalSecrets::open(&db, key()).unwrap();
    let got = secrets
        .get_client_secret("a", ClientSecretKind::BotToken)
        .await
        .unwrap();
    assert_eq!(got.unwrap().expose_secret(), BOT_TOKEN);
}

#[tokio::test]
async fn the_database_file_never_holds_the_plain_secret() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    // The store shares the file: both write to it.
    let _store = connector::store::sqlite::SqliteStore::open(&db).unwrap();
    let secrets = LocalSecrets::open(&db, key()).unwrap();
    secrets
        .put_client_secret("a", ClientSecretKind::BotToken, &secret(BOT_TOKEN))
        .await
        .unwrap();

    let bytes = disk_bytes(&db);
    assert!(
        contains(&bytes, b"bot_token"),
        "the test reads the right file"
    );
    assert!(!contains(&bytes, BOT_TOKEN.as_bytes()));
    assert!(!contains(&bytes, b"must-not-leak"));
}

#[tokio::test]
async fn another_key_cannot_open_the_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let secrets = LocalSecrets::open(&db, key()).unwrap();
    secrets
        .put_client_secret("a", ClientSecretKind::BotToken, &secret(BOT_TOKEN))
        .await
        .unwrap();
    let sealed = secrets.seal(&secret("tokens"), &OWNER).await.unwrap();
    drop(secrets);

    let wrong = LocalSecrets::open(&db, SecretKey::generate()).unwrap();
    assert!(matches!(
        wrong
            .get_client_secret("a", ClientSecretKind::BotToken)
            .await,
        Err(SecretsError::Decrypt)
    ));
    assert!(matches!(
        wrong.open(&sealed, &OWNER).await,
        Err(SecretsError::Decrypt)
    ));
}

#[tokio::test]
async fn a_tampered_or_misplaced_value_does_not_open() {
    let key = key();
    let sealed = cipher::seal(&key, b"secret", b"client:a:bot_token").unwrap();

    // Flip one character of the payload.
    let mut chars: Vec<char> = sealed.chars().collect();
    let i = chars.len() - 5;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    assert!(matches!(
        cipher::open(&key, &tampered, b"client:a:bot_token"),
        Err(SecretsError::Decrypt)
    ));
    assert!(matches!(
        cipher::open(&key, &sealed[..sealed.len() - 4], b"client:a:bot_token"),
        Err(SecretsError::Decrypt)
    ));
    assert!(matches!(
        cipher::open(&key, "not sealed", b"client:a:bot_token"),
        Err(SecretsError::Decrypt)
    ));

    // The right bytes in the wrong place: another client's or kind's slot.
    assert!(matches!(
        cipher::open(&key, &sealed, b"client:b:bot_token"),
        Err(SecretsError::Decrypt)
    ));
    assert!(matches!(
        cipher::open(&key, &sealed, b"client:a:client_secret"),
        Err(SecretsError::Decrypt)
    ));
    assert_eq!(
        cipher::open(&key, &sealed, b"client:a:bot_token")
            .unwrap()
            .as_slice(),
        b"secret"
    );

    // A user token sealed by the port is not a client secret.
    let secrets =
        LocalSecrets::open_in_memory(SecretKey::from_env_value(KEY_HEX).unwrap()).unwrap();
    let user_token = secrets.seal(&secret("secret"), &OWNER).await.unwrap();
    assert!(matches!(
        cipher::open(&key, &user_token, b"client:a:bot_token"),
        Err(SecretsError::Decrypt)
    ));
}

#[cfg(unix)]
#[test]
fn a_new_key_file_is_private_and_loaded_again() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys").join("secret.key");

    let created = SecretKey::load_or_create(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let loaded = SecretKey::load_or_create(&path).unwrap();
    let sealed = cipher::seal(&created, b"x", b"").unwrap();
    assert_eq!(
        cipher::open(&loaded, &sealed, b"").unwrap().as_slice(),
        b"x",
        "the same key"
    );
}

#[cfg(unix)]
#[test]
fn a_key_file_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret.key");
    SecretKey::load_or_create(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();

    match SecretKey::load_or_create(&path) {
        Err(SecretsError::InvalidKey(msg)) => {
            assert!(msg.contains("chmod 600"), "{msg}");
            assert!(msg.contains("644"), "{msg}");
        }
        other => panic!("expected InvalidKey, got {other:?}"),
    }
}

#[test]
fn a_corrupt_key_file_is_refused_without_showing_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret.key");
    SecretKey::load_or_create(&path).unwrap();
    std::fs::write(&path, "hunter2-not-a-key").unwrap();
    match SecretKey::load_or_create(&path) {
        Err(SecretsError::InvalidKey(msg)) => assert!(!msg.contains("hunter2"), "{msg}"),
        other => panic!("expected InvalidKey, got {other:?}"),
    }
}

#[test]
fn env_keys_are_64_hex_characters_or_base64_of_32_bytes() {
    use base64::Engine;
    let bytes: Vec<u8> = (0u8..32).collect();
    let std_b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let url_b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
    let sealed = cipher::seal(&key(), b"same", b"").unwrap();
    for value in [
        KEY_HEX.to_owned(),
        KEY_HEX.to_uppercase(),
        std_b64,
        url_b64,
        format!(" {KEY_HEX}\n"),
    ] {
        let k = SecretKey::from_env_value(&value).unwrap();
        assert_eq!(
            cipher::open(&k, &sealed, b"").unwrap().as_slice(),
            b"same",
            "{value}"
        );
    }

    let too_short = base64::engine::general_purpose::STANDARD.encode([7u8; 16]);
    for bad in [
        "",
        "hunter2",
        &KEY_HEX[..62],
        &too_short,
        &format!("{KEY_HEX}00"),
    ] {
        match SecretKey::from_env_value(bad) {
            Err(e @ SecretsError::InvalidKey(_)) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("64 hex characters or base64 of 32 bytes"),
                    "{msg}"
                );
                assert!(
                    bad.is_empty() || !msg.contains(bad),
                    "the value is not repeated: {msg}"
                );
            }
            other => panic!("{bad:?}: expected InvalidKey, got {other:?}"),
        }
    }
}

#[test]
fn debug_output_shows_no_secret() {
    let key = key();
    let shown = format!("{key:?}");
    assert!(!shown.contains("0001020304"), "{shown}");
    assert!(!shown.contains("AAECAwQF"), "{shown}");
    assert!(shown.contains("redacted"), "{shown}");

    let secrets = LocalSecrets::open_in_memory(SecretKey::generate()).unwrap();
    assert!(!format!("{secrets:?}").contains("0001"));

    let value = secret(BOT_TOKEN);
    assert!(!format!("{value:?}").contains("must-not-leak"));
}
