use serde_json::Value;

use crate::domain::{AuditAction, AuditEntry};

/// Builds audit entries for one client and actor.
pub struct AuditBatch {
    client: String,
    actor: String,
    at: i64,
    entries: Vec<AuditEntry>,
}

impl AuditBatch {
    pub fn new(client: &str, actor: &str, at: i64) -> Self {
        Self {
            client: client.to_owned(),
            actor: actor.to_owned(),
            at,
            entries: Vec::new(),
        }
    }

    pub fn push(
        &mut self,
        action: AuditAction,
        user_id: Option<&str>,
        discord_user_id: Option<&str>,
        detail: Value,
    ) {
        self.entries.push(AuditEntry {
            id: uuid::Uuid::new_v4().to_string(),
            client: self.client.clone(),
            at: self.at,
            actor: self.actor.clone(),
            action: action.as_str().to_owned(),
            user_id: user_id.map(str::to_owned),
            discord_user_id: discord_user_id.map(str::to_owned),
            detail,
        });
    }

    pub fn into_entries(self) -> Vec<AuditEntry> {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl AuditBatch {
    /// Writes what was pushed so far and starts over (each Discord write's entry is stored as
    /// the write completes).
    pub async fn flush(
        &mut self,
        store: &dyn crate::store::RunLog,
    ) -> crate::store::StoreResult<()> {
        if self.entries.is_empty() {
            return Ok(());
        }
        store.append_audit(&self.entries).await?;
        self.entries.clear();
        Ok(())
    }

    /// Writes the batch (nothing when empty).
    pub async fn save(self, store: &dyn crate::store::RunLog) -> crate::store::StoreResult<()> {
        if self.entries.is_empty() {
            return Ok(());
        }
        store.append_audit(&self.entries).await
    }
}
