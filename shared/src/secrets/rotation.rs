//! `rotate-key`: every sealed value of the embedded database re-sealed under a new key.
//!
//! The values are the client secrets of the `secrets` table and the users' OAuth tokens inside
//! `members.link` and `members.unlinking`. All are re-sealed in ONE transaction, so the database
//! never mixes keys because of a crash; values already under the new key id are skipped, so a
//! re-run finishes an interrupted rotation instead of failing on them.
//!
//! With the key file (`<database>.key`), the order makes an interruption at any point safe:
//! 1. the new key is written to `<database>.key.new` (0600) — or read from it, when an
//!    interrupted run left it;
//! 2. the database is re-sealed (old or new key opens each value; the new one seals);
//! 3. the old key is kept as `<database>.key.<old kid>.bak` (0600);
//! 4. `<database>.key.new` is renamed over `<database>.key` (atomic).
//!
//! `serve` and `task` refuse to start while `<database>.key.new` exists: that is a rotation to
//! finish (run `rotate-key` again), and the database may already be sealed under the new key.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, TransactionBehavior};
use secrecy::{ExposeSecret, SecretString};

use super::cipher::{self, KeyRing, SecretKey};
use super::{client_secret_aad, ClientSecretKind, SecretsError, TokenOwner, LEGACY_USER_TOKEN_AAD};
use crate::domain::{Link, Unlinking};
use crate::selfhost::key_file_for;
use crate::store::sqlite::SqliteStore;

/// What a rotation re-sealed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ResealReport {
    pub client_secrets: usize,
    pub user_tokens: usize,
    /// Values already under the new key (an earlier, interrupted run sealed them).
    pub already_current: usize,
}

/// The inputs of `discord-connector rotate-key`.
pub struct RotateKey {
    pub database: PathBuf,
    /// `CONNECTOR_SECRET_KEY`: when set, the current key (and no key file is written).
    pub current_key: Option<SecretString>,
    /// `CONNECTOR_NEW_SECRET_KEY`: the new key; generated when unset (key file only).
    pub new_key: Option<SecretString>,
}

#[derive(Debug)]
pub struct Rotated {
    pub report: ResealReport,
    pub old_kid: String,
    pub new_kid: String,
    /// The key file now holding the new key, and the backup of the old one.
    pub key_file: Option<(PathBuf, PathBuf)>,
}

/// `<database>.key.new`: the new key of a rotation under way.
pub fn pending_key_file_for(database: &Path) -> PathBuf {
    with_suffix(&key_file_for(database), ".new")
}

/// Refuses to go on while a rotation is unfinished (see the module documentation).
pub fn check_no_unfinished_rotation(database: &Path) -> Result<(), SecretsError> {
    let pending = pending_key_file_for(database);
    if pending.exists() {
        return Err(SecretsError::InvalidKey(format!(
            "{} exists: a key rotation was interrupted; run `discord-connector rotate-key \
             --database {}` again to finish it",
            pending.display(),
            database.display()
        )));
    }
    Ok(())
}

/// Rotates the key of the database (see the module documentation).
pub fn rotate_key(config: RotateKey) -> Result<Rotated, SecretsError> {
    let database = config.database.as_path();
    let new_from_env = config
        .new_key
        .as_ref()
        .map(|v| SecretKey::from_env_value(v.expose_secret()))
        .transpose()?;
    if let Some(current) = &config.current_key {
        let old = SecretKey::from_env_value(current.expose_secret())?;
        let new = new_from_env.ok_or_else(|| {
            SecretsError::InvalidKey(
                "CONNECTOR_SECRET_KEY is set, so the key lives in your environment, not in a \
                 key file: set CONNECTOR_NEW_SECRET_KEY to a new key (`openssl rand -hex 32`), \
                 run rotate-key, then give the new key to CONNECTOR_SECRET_KEY"
                    .into(),
            )
        })?;
        let (old_kid, new_kid) = (old.kid(), new.kid());
        let report = reseal_database(database, &old, &new)?;
        return Ok(Rotated {
            report,
            old_kid,
            new_kid,
            key_file: None,
        });
    }

    let key_file = key_file_for(database);
    if !key_file.exists() {
        return Err(SecretsError::InvalidKey(format!(
            "no key file at {} and CONNECTOR_SECRET_KEY is unset: nothing to rotate",
            key_file.display()
        )));
    }
    let old = SecretKey::load_file(&key_file)?;
    let pending = pending_key_file_for(database);
    let new = if pending.exists() {
        let left = SecretKey::load_file(&pending)?;
        if new_from_env.as_ref().is_some_and(|k| k.kid() != left.kid()) {
            return Err(SecretsError::InvalidKey(format!(
                "an interrupted rotation left {} with another key than CONNECTOR_NEW_SECRET_KEY; \
                 unset CONNECTOR_NEW_SECRET_KEY to finish that rotation",
                pending.display()
            )));
        }
        left
    } else {
        let new = new_from_env.unwrap_or_else(SecretKey::generate);
        new.write_new_file(&pending)?;
        new
    };
    let (old_kid, new_kid) = (old.kid(), new.kid());
    if old_kid == new_kid {
        return Err(SecretsError::InvalidKey(
            "the new key is the current key".into(),
        ));
    }
    let report = reseal_database(database, &old, &new)?;

    let backup = with_suffix(&key_file, &format!(".{old_kid}.bak"));
    if !backup.exists() {
        old.write_new_file(&backup)?;
    }
    std::fs::rename(&pending, &key_file).map_err(|e| {
        SecretsError::InvalidKey(format!(
            "cannot move {} to {}: {e}",
            pending.display(),
            key_file.display()
        ))
    })?;
    if let Some(dir) = key_file.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Best effort: make the rename durable.
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(Rotated {
        report,
        old_kid,
        new_kid,
        key_file: Some((key_file, backup)),
    })
}

/// Re-seals every sealed value of the database at `path` under `new`, in one transaction. Each
/// value must open under `old` (or already be under `new`); otherwise nothing changes and the
/// error names the value's place (never the value).
pub fn reseal_database(
    path: &Path,
    old: &SecretKey,
    new: &SecretKey,
) -> Result<ResealReport, SecretsError> {
    let store = SqliteStore::open(path)
        .map_err(|e| SecretsError::Backend(format!("database {}: {e}", path.display())))?;
    let keys = KeyRing::new(new.duplicate()).with_previous(old.duplicate());
    store.db().with_blocking(|conn| reseal(conn, &keys))
}

fn reseal(conn: &mut Connection, keys: &KeyRing) -> Result<ResealReport, SecretsError> {
    let sql = |e: rusqlite::Error| SecretsError::Backend(format!("sqlite: {e}"));
    conn.execute_batch(super::local::SCHEMA).map_err(sql)?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql)?;
    let mut report = ResealReport::default();
    let mut reseal_one =
        |sealed: &mut String, aad: &[u8], legacy_aad: &[u8], place: &dyn Fn() -> String| {
            if cipher::sealed_kid(sealed) == Some(keys.current_kid()) {
                report.already_current += 1;
                return Ok(false);
            }
            let plain = keys.open(sealed, aad, legacy_aad).map_err(|_| {
                SecretsError::InvalidKey(format!(
                    "{} does not open with the current key; nothing was changed",
                    place()
                ))
            })?;
            *sealed = keys.seal(&plain, aad)?;
            Ok::<_, SecretsError>(true)
        };

    let rows: Vec<(String, String, String)> = {
        let mut stmt = tx
            .prepare("SELECT client, kind, sealed FROM secrets")
            .map_err(sql)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(sql)?
            .collect::<Result<_, _>>()
            .map_err(sql)?;
        rows
    };
    for (client, kind_name, mut sealed) in rows {
        let place = || format!("the {kind_name} of client {client}");
        let kind = ClientSecretKind::parse(&kind_name)
            .ok_or_else(|| SecretsError::Backend(format!("unknown secret kind in {}", place())))?;
        let aad = client_secret_aad(&client, kind);
        if reseal_one(&mut sealed, &aad, &aad, &place)? {
            tx.execute(
                "UPDATE secrets SET sealed = ?3 WHERE client = ?1 AND kind = ?2",
                params![client, kind_name, sealed],
            )
            .map_err(sql)?;
            report.client_secrets += 1;
        }
    }

    type MemberRow = (String, String, Option<String>, Option<String>);
    let rows: Vec<MemberRow> = {
        let mut stmt = tx
            .prepare(
                "SELECT client, user_id, link, unlinking FROM members
                 WHERE link IS NOT NULL OR unlinking IS NOT NULL",
            )
            .map_err(sql)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .map_err(sql)?
            .collect::<Result<_, _>>()
            .map_err(sql)?;
        rows
    };
    let json = |e: serde_json::Error| SecretsError::Backend(format!("stored member JSON: {e}"));
    for (client, user_id, link, unlinking) in rows {
        let mut changed = 0;
        let mut link: Option<Link> = link
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(json)?;
        let mut unlinking: Option<std::collections::BTreeMap<String, Unlinking>> = unlinking
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(json)?;
        let slots = link
            .iter_mut()
            .map(|l| (l.discord_user_id.clone(), &mut l.tokens))
            .chain(
                unlinking
                    .iter_mut()
                    .flat_map(|map| map.values_mut())
                    .map(|u| (u.discord_user_id.clone(), &mut u.tokens)),
            );
        for (discord_user_id, tokens) in slots {
            let Some(tokens) = tokens else { continue };
            let owner = TokenOwner {
                client: &client,
                user_id: &user_id,
                discord_user_id: &discord_user_id,
            };
            let place = || {
                format!("the OAuth tokens of user {user_id} (Discord {discord_user_id}) of client {client}")
            };
            if reseal_one(
                &mut tokens.sealed,
                &owner.aad(),
                LEGACY_USER_TOKEN_AAD,
                &place,
            )? {
                changed += 1;
            }
        }
        if changed > 0 {
            let link = link
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(json)?;
            let unlinking = unlinking
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(json)?;
            tx.execute(
                "UPDATE members SET link = ?3, unlinking = ?4 WHERE client = ?1 AND user_id = ?2",
                params![client, user_id, link, unlinking],
            )
            .map_err(sql)?;
            report.user_tokens += changed;
        }
    }
    tx.commit().map_err(sql)?;
    Ok(report)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}
