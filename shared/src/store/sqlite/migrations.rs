//! Schema migrations, tracked by `PRAGMA user_version`: migration `n` (1-based) moves the
//! database from version `n - 1` to `n`. Append new migrations; never edit a released one.
//!
//! Rows are not tied to `clients` by foreign keys: an audit entry may outlive its client (the
//! `client.delete` entry itself), and `delete_client` removes a client's rows explicitly.

use rusqlite::{Connection, TransactionBehavior};

const MIGRATIONS: &[&str] = &[
    V1_SCHEMA,
    V2_MEMBERS_BY_DISCORD_NUMBER,
    V3_WORK_AND_HANDOVER,
    V4_UNLINKING,
    V5_API_TOKENS,
    V6_RETENTION,
    V7_CONSOLE_SESSIONS,
    V8_ROLE_COLOURS,
    V9_WEBHOOK_OUTBOX,
];

/// The version a fully migrated database has.
pub(crate) const LATEST: usize = MIGRATIONS.len();

/// The website webhooks' outbox: `seq` orders one user's events; the partial indexes keep the
/// due scan and the per-user ordering check O(pending).
const V9_WEBHOOK_OUTBOX: &str = r#"
CREATE TABLE webhook_deliveries (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL UNIQUE,
    client           TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    payload          TEXT NOT NULL,       -- JSON body as sent
    status           TEXT NOT NULL,       -- pending | delivered | failed
    attempts         INTEGER NOT NULL,
    last_status_code INTEGER,
    last_error       TEXT,
    next_attempt_at  INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX webhook_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_user_pending ON webhook_deliveries (client, user_id, seq)
    WHERE status = 'pending';
CREATE INDEX webhook_by_client ON webhook_deliveries (client, seq);
CREATE INDEX webhook_finished ON webhook_deliveries (updated_at) WHERE status != 'pending';
"#;

/// Roles keep Discord's colour (shown by the console).
const V8_ROLE_COLOURS: &str = r#"
ALTER TABLE roles ADD COLUMN color INTEGER NOT NULL DEFAULT 0;
"#;

/// The weekly tasks walk our links in the order of Discord's member list: numeric user ids.
const V2_MEMBERS_BY_DISCORD_NUMBER: &str = r#"
CREATE INDEX members_by_discord_number ON members (client, CAST(discord_user_id AS INTEGER))
    WHERE discord_user_id IS NOT NULL;
"#;

/// Operator console sign-ins, found by the SHA-256 of the cookie's id; `Pruning` removes them by
/// `expires_at`.
const V7_CONSOLE_SESSIONS: &str = r#"
CREATE TABLE console_sessions (
    id_sha256   TEXT PRIMARY KEY NOT NULL,
    expires_at  INTEGER NOT NULL,
    session     TEXT NOT NULL              -- JSON `ConsoleSession` (the id's hash only)
) STRICT;
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
"#;

/// Pruning (`Pruning`) deletes by time across clients: indexes on those times, and when a lease
/// may go — a day (`retention::LEASE_KEEP_SECS`) after its last expiry, kept by a release (which
/// sets `expires_at` to 0) so the handover still reaches the next holder.
const V6_RETENTION: &str = r#"
CREATE INDEX runs_started ON runs (started_at);
CREATE INDEX audit_at ON audit (at);
ALTER TABLE leases ADD COLUMN keep_until INTEGER NOT NULL DEFAULT 0;
UPDATE leases SET keep_until = expires_at + 86400;
CREATE INDEX leases_keep_until ON leases (keep_until);
"#;

/// Scoped API tokens, found by the SHA-256 of the bearer token on every request.
const V5_API_TOKENS: &str = r#"
CREATE TABLE api_tokens (
    id              TEXT PRIMARY KEY NOT NULL,
    token_sha256    TEXT NOT NULL UNIQUE,
    created_at      INTEGER NOT NULL,
    token           TEXT NOT NULL              -- JSON `ApiToken` (no secret: the hash only)
) STRICT;
"#;

/// Former accounts of a member whose clean-up the guild's writer has still to do (JSON map by
/// Discord id, NULL when there is none): written in the same statement as the link change.
const V4_UNLINKING: &str = r#"
ALTER TABLE members ADD COLUMN unlinking TEXT;
"#;

/// The work index the dispatcher reads instead of every client, and the guild writer's
/// rate-limit knowledge handed over with its lease.
const V3_WORK_AND_HANDOVER: &str = r#"
CREATE TABLE work (
    client      TEXT NOT NULL,
    task        TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    since       INTEGER NOT NULL,
    PRIMARY KEY (client, task)
) STRICT;
ALTER TABLE leases ADD COLUMN handover TEXT;
"#;

const V1_SCHEMA: &str = r#"
CREATE TABLE clients (
    id          TEXT PRIMARY KEY NOT NULL,
    config      TEXT NOT NULL               -- JSON `Client`
) STRICT;

CREATE TABLE roles (
    client      TEXT NOT NULL,
    role_id     TEXT NOT NULL,
    name        TEXT NOT NULL,
    position    INTEGER NOT NULL,
    managed     INTEGER NOT NULL,
    groups      TEXT NOT NULL,              -- JSON array of site groups
    PRIMARY KEY (client, role_id)
) STRICT;

CREATE TABLE members (
    client          TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    groups          TEXT NOT NULL,          -- JSON array
    attributes      TEXT NOT NULL,          -- JSON object
    pending         INTEGER NOT NULL,
    version         INTEGER NOT NULL,
    last_error      TEXT,                   -- JSON `LastError`
    updated_at      INTEGER NOT NULL,
    discord_user_id TEXT,                   -- copy of link.discord_user_id, for the unique index
    link_status     TEXT,                   -- copy of link.status: 'active' | 'left' | 'revoked'
    link            TEXT,                   -- JSON `Link` (tokens sealed)
    PRIMARY KEY (client, user_id)
) STRICT;
-- One site user per Discord account and client, enforced by the database.
CREATE UNIQUE INDEX members_discord ON members (client, discord_user_id)
    WHERE discord_user_id IS NOT NULL;
-- `list_pending` reads this index only: O(pending), not O(members).
CREATE INDEX members_pending ON members (client, user_id) WHERE pending = 1;

CREATE TABLE link_sessions (
    state_hash  TEXT PRIMARY KEY NOT NULL,
    client      TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    session     TEXT NOT NULL               -- JSON `LinkSession`
) STRICT;
CREATE INDEX link_sessions_expiry ON link_sessions (expires_at);
CREATE INDEX link_sessions_client ON link_sessions (client);

CREATE TABLE runs (
    client      TEXT NOT NULL,
    id          TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    report      TEXT NOT NULL,              -- JSON `RunReport`
    PRIMARY KEY (client, id)
) STRICT;
CREATE INDEX runs_newest ON runs (client, started_at DESC, id DESC);

CREATE TABLE audit (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    client      TEXT NOT NULL,
    at          INTEGER NOT NULL,
    entry       TEXT NOT NULL               -- JSON `AuditEntry`
) STRICT;
CREATE INDEX audit_newest ON audit (client, seq DESC);

CREATE TABLE settings (
    key         TEXT PRIMARY KEY NOT NULL,
    value       TEXT NOT NULL
) STRICT;

CREATE TABLE leases (
    name        TEXT PRIMARY KEY NOT NULL,
    holder      TEXT NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT;
"#;

/// Brings the schema up to date; a no-op when it already is. Each migration commits on its own,
/// together with its version bump, so an interrupted upgrade resumes where it stopped.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), String> {
    let latest = MIGRATIONS.len();
    loop {
        // Immediate: two processes opening the same file at once take turns.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| format!("cannot start migration: {e}"))?;
        let current: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| format!("cannot read schema version: {e}"))?;
        let current = usize::try_from(current).unwrap_or(usize::MAX);
        if current == latest {
            return Ok(());
        }
        let Some(sql) = MIGRATIONS.get(current) else {
            return Err(format!(
                "database schema version {current} is newer than this program supports \
                 ({latest}); upgrade discord-connector"
            ));
        };
        let next = current + 1;
        tx.execute_batch(sql)
            .and_then(|()| tx.pragma_update(None, "user_version", next as i64))
            .and_then(|()| tx.commit())
            .map_err(|e| format!("migration {next} failed: {e}"))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_is_a_no_op() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert!(err.contains("newer"), "{err}");
    }
}
