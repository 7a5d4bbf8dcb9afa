//! `Settings`: deployment-wide settings, the `settings` table.

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::SqliteStore;
use crate::store::{Settings, StoreResult};

#[async_trait]
impl Settings for SqliteStore {
    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>> {
        let key = key.to_owned();
        self.run(move |c| get_setting(c, &key)).await
    }

    async fn put_setting_if_absent(&self, key: &str, value: &str) -> StoreResult<bool> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.run(move |c| put_setting_if_absent(c, &key, &value))
            .await
    }
}

fn get_setting(conn: &Connection, key: &str) -> StoreResult<Option<String>> {
    Ok(conn
        .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
            r.get(0)
        })
        .optional()?)
}

fn put_setting_if_absent(conn: &Connection, key: &str, value: &str) -> StoreResult<bool> {
    let stored = conn.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
        params![key, value],
    )?;
    Ok(stored == 1)
}
