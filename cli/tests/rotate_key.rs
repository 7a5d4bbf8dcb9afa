//! `discord-connector rotate-key` end to end: a database sealed under the old key opens with only
//! the new key afterwards, the old key alone opens nothing, and an interrupted rotation finishes
//! when run again (issue #8, finding 6).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use connector::domain::{
    Link, LinkStatus, StoredTokens, UnlinkCleanup, UnlinkPolicy, UnlinkReason,
};
use connector::secrecy::{ExposeSecret, SecretString};
use connector::secrets::cipher::{self, SecretKey};
use connector::secrets::local::LocalSecrets;
use connector::secrets::rotation;
use connector::secrets::{ClientSecretKind, Secrets, SecretsError, TokenOwner};
use connector::selfhost::key_file_for;
use connector::store::sqlite::SqliteStore;
use connector::store::MemberStore;

const BOT: ClientSecretKind = ClientSecretKind::BotToken;

fn rotate(db: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_discord-connector"))
        .arg("rotate-key")
        .arg("--database")
        .arg(db)
        .env_remove("CONNECTOR_SECRET_KEY")
        .env_remove("CONNECTOR_NEW_SECRET_KEY")
        .env_remove("CONNECTOR_DATABASE")
        .output()
        .expect("runs")
}

fn owner<'a>(user_id: &'a str, discord_user_id: &'a str) -> TokenOwner<'a> {
    TokenOwner {
        client: "acme",
        user_id,
        discord_user_id,
    }
}

fn link(discord_user_id: &str, sealed: String) -> Link {
    Link {
        discord_user_id: discord_user_id.to_owned(),
        username: format!("name-{discord_user_id}"),
        global_name: None,
        nickname: None,
        status: LinkStatus::Active,
        applied_roles: BTreeSet::new(),
        tokens: Some(StoredTokens {
            sealed,
            expires_at: 2_000_000_000,
        }),
        linked_at: 1_700_000_000,
        roles_known: true,
        refused: BTreeSet::new(),
        scopes: BTreeSet::new(),
        role_connection: None,
        relink_requested_at: None,
    }
}

/// Every sealed user-token value of the database, by (user, Discord id).
async fn sealed_tokens(store: &SqliteStore) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for user in ["u1", "u2", "u3"] {
        let member = store.get_member("acme", user).await.unwrap().unwrap();
        if let Some(link) = &member.link {
            let tokens = link.tokens.as_ref().unwrap();
            out.push((
                user.into(),
                link.discord_user_id.clone(),
                tokens.sealed.clone(),
            ));
        }
        for unlinking in member.unlinking.values() {
            let tokens = unlinking.tokens.as_ref().unwrap();
            out.push((
                user.into(),
                unlinking.discord_user_id.clone(),
                tokens.sealed.clone(),
            ));
        }
    }
    out
}

/// A database as `serve` leaves it: a client's bot token, a linked member's tokens, a member's
/// tokens from before key ids (`v1`), and the tokens of an account being unlinked.
async fn seeded(dir: &Path) -> (PathBuf, SecretKey) {
    let db = dir.join("c.db");
    let key = SecretKey::load_or_create(&key_file_for(&db)).unwrap();
    let store = SqliteStore::open(&db).unwrap();
    let secrets = LocalSecrets::open(&db, key.duplicate()).unwrap();
    secrets
        .put_client_secret("acme", BOT, &SecretString::from("bot-token-1"))
        .await
        .unwrap();
    let u1 = secrets
        .seal(&SecretString::from("tokens-u1"), &owner("u1", "111"))
        .await
        .unwrap();
    store
        .create_link("acme", "u1", &link("111", u1), None, false, 1)
        .await
        .unwrap();
    let u2 = cipher::seal_v1(&key, b"tokens-u2", b"user-token").unwrap();
    store
        .create_link("acme", "u2", &link("222", u2), None, false, 1)
        .await
        .unwrap();
    let u3 = secrets
        .seal(&SecretString::from("tokens-u3"), &owner("u3", "333"))
        .await
        .unwrap();
    store
        .create_link("acme", "u3", &link("333", u3), None, false, 1)
        .await
        .unwrap();
    let cleanup = UnlinkCleanup {
        reason: UnlinkReason::Unlinked,
        policy: UnlinkPolicy::RemoveRoles,
        actor: "test".into(),
    };
    store
        .delete_link("acme", "u3", Some(&cleanup), 2)
        .await
        .unwrap();
    (db, key)
}

/// Opens every value of the seeded database with `secrets`.
async fn open_all(
    store: &SqliteStore,
    secrets: &LocalSecrets,
) -> Result<Vec<String>, SecretsError> {
    let mut plain = vec![secrets
        .get_client_secret("acme", BOT)
        .await?
        .unwrap()
        .expose_secret()
        .to_owned()];
    for (user, discord, sealed) in sealed_tokens(store).await {
        let opened = secrets.open(&sealed, &owner(&user, &discord)).await?;
        plain.push(opened.expose_secret().to_owned());
    }
    Ok(plain)
}

#[tokio::test]
async fn rotate_key_reseals_everything_under_a_new_key_file_and_keeps_the_old_key() {
    // Given a database sealed under the key file's key
    let dir = tempfile::tempdir().unwrap();
    let (db, old) = seeded(dir.path()).await;
    let key_file = key_file_for(&db);

    // When rotate-key runs
    let out = rotate(&db);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("re-sealed 1 client secrets and 3 users' tokens"),
        "{stdout}"
    );

    // Then the key file holds a new key (still 0600) and the old one is kept beside it
    let new = SecretKey::load_file(&key_file).unwrap();
    assert_ne!(new.kid(), old.kid());
    let backup = dir.path().join(format!("c.db.key.{}.bak", old.kid()));
    assert_eq!(SecretKey::load_file(&backup).unwrap().kid(), old.kid());
    #[cfg(unix)]
    for file in [&key_file, &backup] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", file.display());
    }
    // and every value, the v1 one too, is sealed under the new key id
    let store = SqliteStore::open(&db).unwrap();
    for (_, _, sealed) in sealed_tokens(&store).await {
        assert_eq!(cipher::sealed_kid(&sealed), Some(new.kid().as_str()));
    }
    // and the new key alone opens everything
    let with_new = LocalSecrets::open(&db, new.duplicate()).unwrap();
    assert_eq!(
        open_all(&store, &with_new).await.unwrap(),
        ["bot-token-1", "tokens-u1", "tokens-u2", "tokens-u3"]
    );
    // and the old key alone opens nothing any more
    let with_old = LocalSecrets::open(&db, old).unwrap();
    assert!(matches!(
        with_old.get_client_secret("acme", BOT).await,
        Err(SecretsError::Decrypt)
    ));
    for (user, discord, sealed) in sealed_tokens(&store).await {
        assert!(matches!(
            with_old.open(&sealed, &owner(&user, &discord)).await,
            Err(SecretsError::Decrypt)
        ));
    }
}

#[tokio::test]
async fn an_interrupted_rotation_blocks_serving_and_finishes_when_run_again() {
    // Given a rotation interrupted after its transaction committed: the database is under the
    // new key, which waits in `<db>.key.new`, while `<db>.key` still holds the old key
    let dir = tempfile::tempdir().unwrap();
    let (db, old) = seeded(dir.path()).await;
    let new = SecretKey::generate();
    let pending = rotation::pending_key_file_for(&db);
    new.write_new_file(&pending).unwrap();
    rotation::reseal_database(&db, &old, &new).unwrap();

    // When a task starts, then it refuses: the key file's key no longer opens the database
    let out = Command::new(env!("CARGO_BIN_EXE_discord-connector"))
        .args(["task", "verify-groups", "--client", "acme", "--database"])
        .arg(&db)
        .env_remove("CONNECTOR_SECRET_KEY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("rotate-key"), "{stderr}");

    // When rotate-key runs again, then it skips what is done and installs the waiting key
    let out = rotate(&db);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("re-sealed 0 client secrets and 0 users' tokens"),
        "{stdout}"
    );
    assert!(stdout.contains("4 were already under it"), "{stdout}");
    assert!(!pending.exists());
    assert_eq!(
        SecretKey::load_file(&key_file_for(&db)).unwrap().kid(),
        new.kid()
    );
    let store = SqliteStore::open(&db).unwrap();
    let secrets = LocalSecrets::open(&db, new).unwrap();
    assert_eq!(open_all(&store, &secrets).await.unwrap().len(), 4);
}

#[test]
fn the_wrong_current_key_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (db, _old) = rt.block_on(seeded(dir.path()));
    let before = std::fs::read(key_file_for(&db)).unwrap();
    // Given CONNECTOR_SECRET_KEY set to a key that is not the database's
    let out = Command::new(env!("CARGO_BIN_EXE_discord-connector"))
        .arg("rotate-key")
        .arg("--database")
        .arg(&db)
        .env("CONNECTOR_SECRET_KEY", "11".repeat(32))
        .env("CONNECTOR_NEW_SECRET_KEY", "22".repeat(32))
        .output()
        .unwrap();
    // Then it fails naming the first value it cannot open, and the database still opens with
    // the key file's key
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("does not open with the current key"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(key_file_for(&db)).unwrap(), before);
    let key = SecretKey::load_file(&key_file_for(&db)).unwrap();
    let store = SqliteStore::open(&db).unwrap();
    let secrets = LocalSecrets::open(&db, key).unwrap();
    assert_eq!(rt.block_on(open_all(&store, &secrets)).unwrap().len(), 4);
}
