//! `ConsoleSessions`: operator console sign-ins, one `CONSOLESESSION#<sha256>` item each.

use async_trait::async_trait;

use super::items::{self, Item, Keyed};
use super::keys;
use super::{backend, put, DynamoStore};
use crate::clock::Timestamp;
use crate::domain::ConsoleSession;
use crate::store::{ConsoleSessions, StoreResult};

#[async_trait]
impl ConsoleSessions for DynamoStore {
    /// The session's `ttl` is its `expires_at`: the table's TTL sweep removes it, some time after
    /// (up to days), so expiry is also checked on read.
    async fn put_console_session(&self, session: &ConsoleSession) -> StoreResult<()> {
        let item = Keyed::new(
            keys::console_session_pk(&session.id_sha256),
            keys::CONSOLE_SESSION.to_owned(),
            items::CONSOLE_SESSION,
            session,
        )
        .ttl(session.expires_at)
        .to_item()?;
        put(self, item).await
    }

    /// Valid while `now < expires_at` (as link sessions are).
    async fn get_console_session(
        &self,
        id_sha256: &str,
        now: Timestamp,
    ) -> StoreResult<Option<ConsoleSession>> {
        Ok(self
            .get(session_key(id_sha256))
            .await?
            .map(|item| items::decode::<ConsoleSession>(item, items::CONSOLE_SESSION))
            .transpose()?
            .filter(|session| now < session.expires_at))
    }

    async fn delete_console_session(&self, id_sha256: &str) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(session_key(id_sha256)))
            .send()
            .await
            .map_err(|e| backend("DeleteItem", &e))?;
        Ok(())
    }
}

fn session_key(id_sha256: &str) -> Item {
    items::key(keys::console_session_pk(id_sha256), keys::CONSOLE_SESSION)
}
