//! A `Store` decorator that counts operations, so the bench can show what a run costs the store.
//! Lease and work-index operations count as reads or writes like the others, and are also
//! counted on their own (`coordination`): they are what the write path adds.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use connector::clock::Timestamp;
use connector::domain::linked_roles::RoleConnection;
use connector::domain::{
    ApiToken, AuditEntry, Client, ConsoleSession, DeliveryAttempt, Link, LinkSession, Member, Role,
    RunReport, SiteUser, StoredTokens, TaskName, UnlinkCleanup, Unlinking, WebhookDelivery,
};
use connector::store::prelude::*;
use connector::store::{
    ConsumedSession, Cursor, LeaseGrant, Outcome, Page, Pruned, StoreResult, WorkMark,
};

/// Operations counted since the last reset.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreCounts {
    pub reads: u64,
    pub writes: u64,
    /// Of those, lease and work-index operations.
    pub coordination: u64,
}

pub struct CountingStore {
    inner: Arc<dyn Store>,
    pub reads: AtomicU64,
    pub writes: AtomicU64,
    pub coordination: AtomicU64,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            reads: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            coordination: AtomicU64::new(0),
        }
    }

    pub fn reset(&self) {
        self.reads.store(0, Ordering::Relaxed);
        self.writes.store(0, Ordering::Relaxed);
        self.coordination.store(0, Ordering::Relaxed);
    }

    pub fn counts(&self) -> StoreCounts {
        StoreCounts {
            reads: self.reads.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            coordination: self.coordination.load(Ordering::Relaxed),
        }
    }

    /// A lease or work-index operation.
    fn coordinate(&self) -> &Self {
        self.coordination.fetch_add(1, Ordering::Relaxed);
        self
    }

    fn read(&self) -> &dyn Store {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.as_ref()
    }

    fn write(&self) -> &dyn Store {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.as_ref()
    }
}

#[async_trait]
impl ClientCatalog for CountingStore {
    async fn create_client(&self, client: &Client) -> StoreResult<()> {
        self.write().create_client(client).await
    }

    async fn get_client(&self, id: &str) -> StoreResult<Option<Client>> {
        self.read().get_client(id).await
    }

    async fn list_clients(&self) -> StoreResult<Vec<Client>> {
        self.read().list_clients().await
    }

    async fn update_client(&self, client: &Client) -> StoreResult<()> {
        self.write().update_client(client).await
    }

    async fn delete_client(&self, id: &str) -> StoreResult<()> {
        self.write().delete_client(id).await
    }

    async fn replace_roles(&self, client: &str, roles: &[Role]) -> StoreResult<()> {
        self.write().replace_roles(client, roles).await
    }

    async fn list_roles(&self, client: &str) -> StoreResult<Vec<Role>> {
        self.read().list_roles(client).await
    }

    async fn set_role_groups(
        &self,
        client: &str,
        role_id: &str,
        groups: &BTreeSet<String>,
    ) -> StoreResult<()> {
        self.write().set_role_groups(client, role_id, groups).await
    }
}

#[async_trait]
impl MemberStore for CountingStore {
    async fn get_member(&self, client: &str, user_id: &str) -> StoreResult<Option<Member>> {
        self.read().get_member(client, user_id).await
    }

    async fn find_member_by_discord(
        &self,
        client: &str,
        discord_user_id: &str,
    ) -> StoreResult<Option<Member>> {
        self.read()
            .find_member_by_discord(client, discord_user_id)
            .await
    }

    async fn save_site_user(
        &self,
        client: &str,
        user: &SiteUser,
        pending: bool,
        now: Timestamp,
    ) -> StoreResult<Member> {
        self.write()
            .save_site_user(client, user, pending, now)
            .await
    }

    async fn create_link(
        &self,
        client: &str,
        user_id: &str,
        link: &Link,
        replaced: Option<&UnlinkCleanup>,
        pending: bool,
        now: Timestamp,
    ) -> StoreResult<Member> {
        self.write()
            .create_link(client, user_id, link, replaced, pending, now)
            .await
    }

    async fn delete_link(
        &self,
        client: &str,
        user_id: &str,
        cleanup: Option<&UnlinkCleanup>,
        now: Timestamp,
    ) -> StoreResult<Option<Link>> {
        self.write()
            .delete_link(client, user_id, cleanup, now)
            .await
    }

    async fn record_unlinking(
        &self,
        client: &str,
        user_id: &str,
        discord_user_id: &str,
        progress: Option<&Unlinking>,
    ) -> StoreResult<()> {
        self.write()
            .record_unlinking(client, user_id, discord_user_id, progress)
            .await
    }

    async fn clear_pending(
        &self,
        client: &str,
        user_id: &str,
        expected_version: i64,
        now: Timestamp,
    ) -> StoreResult<bool> {
        self.write()
            .clear_pending(client, user_id, expected_version, now)
            .await
    }

    async fn record_outcome(
        &self,
        client: &str,
        user_id: &str,
        expected_version: i64,
        outcome: &Outcome,
        now: Timestamp,
    ) -> StoreResult<bool> {
        self.write()
            .record_outcome(client, user_id, expected_version, outcome, now)
            .await
    }

    async fn set_tokens(
        &self,
        client: &str,
        user_id: &str,
        tokens: Option<&StoredTokens>,
    ) -> StoreResult<()> {
        self.write().set_tokens(client, user_id, tokens).await
    }

    async fn set_role_connection(
        &self,
        client: &str,
        user_id: &str,
        discord_user_id: &str,
        pushed: Option<&RoleConnection>,
    ) -> StoreResult<()> {
        self.write()
            .set_role_connection(client, user_id, discord_user_id, pushed)
            .await
    }

    async fn request_relink(
        &self,
        client: &str,
        user_id: &str,
        discord_user_id: &str,
        missing_scope: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        self.write()
            .request_relink(client, user_id, discord_user_id, missing_scope, now)
            .await
    }

    async fn mark_all_linked_pending(&self, client: &str, now: Timestamp) -> StoreResult<u64> {
        self.write().mark_all_linked_pending(client, now).await
    }

    async fn mark_member_pending(
        &self,
        client: &str,
        user_id: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        self.write().mark_member_pending(client, user_id, now).await
    }

    async fn list_pending(
        &self,
        client: &str,
        after: Option<&Cursor>,
        limit: usize,
    ) -> StoreResult<Page<Member>> {
        self.read().list_pending(client, after, limit).await
    }

    async fn list_members(
        &self,
        client: &str,
        after: Option<&Cursor>,
        limit: usize,
    ) -> StoreResult<Page<Member>> {
        self.read().list_members(client, after, limit).await
    }

    async fn list_linked_by_discord(
        &self,
        client: &str,
        after_discord_id: Option<u64>,
        limit: usize,
    ) -> StoreResult<Page<Member>> {
        self.read()
            .list_linked_by_discord(client, after_discord_id, limit)
            .await
    }
}

#[async_trait]
impl LinkSessions for CountingStore {
    async fn put_link_session(&self, session: &LinkSession) -> StoreResult<()> {
        self.write().put_link_session(session).await
    }

    async fn consume_link_session(
        &self,
        state_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<ConsumedSession>> {
        self.write().consume_link_session(state_hash, now).await
    }
}

#[async_trait]
impl RunLog for CountingStore {
    async fn put_run(&self, report: &RunReport) -> StoreResult<()> {
        self.write().put_run(report).await
    }

    async fn list_runs(
        &self,
        client: &str,
        after: Option<&Cursor>,
        limit: usize,
    ) -> StoreResult<Page<RunReport>> {
        self.read().list_runs(client, after, limit).await
    }

    async fn append_audit(&self, entries: &[AuditEntry]) -> StoreResult<()> {
        self.write().append_audit(entries).await
    }

    async fn list_audit(
        &self,
        client: &str,
        after: Option<&Cursor>,
        limit: usize,
    ) -> StoreResult<Page<AuditEntry>> {
        self.read().list_audit(client, after, limit).await
    }
}

#[async_trait]
impl ApiTokens for CountingStore {
    async fn put_api_token(&self, token: &ApiToken) -> StoreResult<()> {
        self.write().put_api_token(token).await
    }

    async fn find_api_token(&self, token_sha256: &str) -> StoreResult<Option<ApiToken>> {
        self.read().find_api_token(token_sha256).await
    }

    async fn list_api_tokens(&self) -> StoreResult<Vec<ApiToken>> {
        self.read().list_api_tokens().await
    }

    async fn delete_api_token(&self, id: &str) -> StoreResult<bool> {
        self.write().delete_api_token(id).await
    }
}

#[async_trait]
impl ConsoleSessions for CountingStore {
    async fn put_console_session(&self, session: &ConsoleSession) -> StoreResult<()> {
        self.write().put_console_session(session).await
    }

    async fn get_console_session(
        &self,
        id_sha256: &str,
        now: Timestamp,
    ) -> StoreResult<Option<ConsoleSession>> {
        self.read().get_console_session(id_sha256, now).await
    }

    async fn delete_console_session(&self, id_sha256: &str) -> StoreResult<()> {
        self.write().delete_console_session(id_sha256).await
    }
}

#[async_trait]
impl Settings for CountingStore {
    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>> {
        self.read().get_setting(key).await
    }

    async fn put_setting_if_absent(&self, key: &str, value: &str) -> StoreResult<bool> {
        self.write().put_setting_if_absent(key, value).await
    }
}

#[async_trait]
impl Leases for CountingStore {
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        ttl_secs: i64,
    ) -> StoreResult<Option<LeaseGrant>> {
        self.coordinate()
            .write()
            .acquire_lease(name, holder, now, ttl_secs)
            .await
    }

    async fn renew_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        ttl_secs: i64,
        handover: Option<&str>,
    ) -> StoreResult<bool> {
        self.coordinate()
            .write()
            .renew_lease(name, holder, now, ttl_secs, handover)
            .await
    }

    async fn release_lease(
        &self,
        name: &str,
        holder: &str,
        handover: Option<&str>,
    ) -> StoreResult<()> {
        self.coordinate()
            .write()
            .release_lease(name, holder, handover)
            .await
    }
}

#[async_trait]
impl Pruning for CountingStore {
    async fn prune_expired(&self, now: Timestamp, batch: usize) -> StoreResult<Pruned> {
        self.write().prune_expired(now, batch).await
    }
}

#[async_trait]
impl WorkIndex for CountingStore {
    async fn mark_work(&self, client: &str, task: TaskName, now: Timestamp) -> StoreResult<u64> {
        self.coordinate().write().mark_work(client, task, now).await
    }

    async fn get_work(&self, client: &str, task: TaskName) -> StoreResult<Option<WorkMark>> {
        self.coordinate().read().get_work(client, task).await
    }

    async fn list_work(&self, after: Option<&Cursor>, limit: usize) -> StoreResult<Page<WorkMark>> {
        self.coordinate().read().list_work(after, limit).await
    }

    async fn clear_work(&self, client: &str, task: TaskName, seen_seq: u64) -> StoreResult<bool> {
        self.coordinate()
            .write()
            .clear_work(client, task, seen_seq)
            .await
    }
}

#[async_trait]
impl WebhookOutbox for CountingStore {
    async fn due_deliveries(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<WebhookDelivery>> {
        self.read().due_deliveries(now, limit).await
    }

    async fn record_attempt(
        &self,
        client: &str,
        id: &str,
        attempt: &DeliveryAttempt,
        now: Timestamp,
    ) -> StoreResult<()> {
        self.write().record_attempt(client, id, attempt, now).await
    }

    async fn list_deliveries(
        &self,
        client: &str,
        after: Option<&Cursor>,
        limit: usize,
    ) -> StoreResult<Page<WebhookDelivery>> {
        self.read().list_deliveries(client, after, limit).await
    }

    async fn retry_delivery(
        &self,
        client: &str,
        id: &str,
        now: Timestamp,
    ) -> StoreResult<WebhookDelivery> {
        self.write().retry_delivery(client, id, now).await
    }
}
