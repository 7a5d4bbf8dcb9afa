//! The store's ports, each narrow and named for its callers — [`ClientCatalog`], [`MemberStore`],
//! [`LinkSessions`], [`RunLog`], [`Settings`], [`Leases`], [`WorkIndex`], [`ApiTokens`],
//! [`ConsoleSessions`], [`Pruning`] (retention, in [`retention`]) — and [`Store`], all of
//! them at once, which the embedded SQLite adapter and the DynamoDB adapter implement so the same
//! callers run unchanged on either.

#[cfg(any(test, feature = "store-contract"))]
pub mod contract;
pub mod cursor;
#[cfg(feature = "aws")]
pub mod dynamo;
pub mod retention;
#[cfg(feature = "embedded")]
pub mod sqlite;
pub mod webhooks;

use std::collections::BTreeSet;

use async_trait::async_trait;

use crate::clock::Timestamp;
use crate::domain::linked_roles::RoleConnection;
use crate::domain::{
    ApiToken, AuditEntry, AuditSearch, Client, ConsoleSession, LastError, Link, LinkSession,
    LinkStatus, Member, MemberCounts, MemberSearch, Role, RunReport, SiteUser, StoredTokens,
    TaskName, UnlinkCleanup, Unlinking,
};

pub use cursor::Cursor;
pub use retention::{Pruned, Pruning, RetentionPolicy};
pub use webhooks::WebhookOutbox;

/// Every port trait, for code that calls store methods through `dyn Store`.
pub mod prelude {
    pub use super::{
        ApiTokens, ClientCatalog, ConsoleSessions, Leases, LinkSessions, MemberStore, Pruning,
        RunLog, Settings, Store, WebhookOutbox, WorkIndex,
    };
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("a client with this id already exists")]
    ClientExists,
    /// The Discord account is already linked to another site user of the same client.
    #[error("this Discord account is already linked to another site user")]
    DiscordAccountTaken { user_id: String },
    #[error("invalid cursor")]
    InvalidCursor,
    #[error("store backend failure: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A link session taken out of the store by the SSO callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumedSession {
    /// Unexpired: the link may proceed.
    Valid(LinkSession),
    /// Past its `expires_at`: refused, but its `return_to` lets the callback send the member back
    /// with a reason instead of stranding them.
    Expired(LinkSession),
}

impl ConsumedSession {
    pub fn session(&self) -> &LinkSession {
        match self {
            ConsumedSession::Valid(s) | ConsumedSession::Expired(s) => s,
        }
    }

    pub fn valid(self) -> Option<LinkSession> {
        match self {
            ConsumedSession::Valid(s) => Some(s),
            ConsumedSession::Expired(_) => None,
        }
    }
}

/// A lease just taken, with what its previous holder handed over (the guild writer's rate-limit
/// knowledge), if anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseGrant {
    pub handover: Option<String>,
}

/// A mark in the work index: `task` has work for `client` (members pending, or a run that has
/// not finished). The 5-minute dispatcher reads these instead of every client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkMark {
    pub client: String,
    pub task: TaskName,
    /// Bumped by every mark, so clearing a mark cannot erase one made after it was read.
    pub seq: u64,
    /// When the mark was first set (kept while it is re-marked).
    pub since: Timestamp,
}

/// Where the seq of a new work mark starts: from the time and a random offset, so a mark made
/// after a clear never reuses a seq handed out before it (a slow clearer holding that old seq
/// would otherwise erase the new mark).
pub fn work_seq_base(now: Timestamp) -> u64 {
    use rand::Rng;
    u64::try_from(now.max(0))
        .unwrap_or(0)
        .saturating_mul(1_000_000)
        .saturating_add(rand::thread_rng().gen_range(0..1_000_000))
}

/// One page of a listing; `next` is the opaque cursor of the following page, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

/// What a task learned or did for one member, written after it talked to Discord.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The member's managed roles as they now are on Discord.
    pub applied_roles: BTreeSet<String>,
    pub nickname: Option<String>,
    pub username: Option<String>,
    pub global_name: Option<Option<String>>,
    pub status: LinkStatus,
    /// `false` when the member is in line (or cannot be brought in line until something changes).
    pub still_pending: bool,
    pub last_error: Option<LastError>,
    /// Replaces the link's refused writes when set (see [`Link::refused`]).
    pub refused: Option<BTreeSet<String>>,
    /// The roles were read from Discord (not only derived from our writes): the link's roles
    /// become known (`Link::roles_known`).
    pub roles_observed: bool,
}

/// Clients and their mirrored roles: the admin API's configuration and every run's context.
#[async_trait]
pub trait ClientCatalog: Send + Sync {
    /// Fails with `ClientExists` when the id is taken.
    async fn create_client(&self, client: &Client) -> StoreResult<()>;

    async fn get_client(&self, id: &str) -> StoreResult<Option<Client>>;

    async fn list_clients(&self) -> StoreResult<Vec<Client>>;

    /// Replaces the client's configuration; `NotFound` when it does not exist.
    async fn update_client(&self, client: &Client) -> StoreResult<()>;

    /// Removes the client and everything stored under it (work marks included); `NotFound` when
    /// it does not exist.
    async fn delete_client(&self, id: &str) -> StoreResult<()>;

    /// Replaces the mirrored role list of a client with `roles` (groups included) in one step.
    async fn replace_roles(&self, client: &str, roles: &[Role]) -> StoreResult<()>;

    /// Roles ordered by position, highest first.
    async fn list_roles(&self, client: &str) -> StoreResult<Vec<Role>>;

    /// `NotFound` when the role is not mirrored.
    async fn set_role_groups(
        &self,
        client: &str,
        role_id: &str,
        groups: &BTreeSet<String>,
    ) -> StoreResult<()>;
}

/// Site users and their links: the API's pushes, the link flow, the guild writer and the scans.
#[async_trait]
pub trait MemberStore: Send + Sync {
    async fn get_member(&self, client: &str, user_id: &str) -> StoreResult<Option<Member>>;

    async fn find_member_by_discord(
        &self,
        client: &str,
        discord_user_id: &str,
    ) -> StoreResult<Option<Member>>;

    /// Creates or updates a site user's groups and attributes, sets `pending`, bumps `version`.
    /// The link (if any) is left as it is. Returns the member as stored.
    async fn save_site_user(
        &self,
        client: &str,
        user: &SiteUser,
        pending: bool,
        now: Timestamp,
    ) -> StoreResult<Member>;

    /// Links a Discord account to a site user (created if absent), replacing any earlier link of
    /// that user. Fails with `DiscordAccountTaken` — and writes nothing — when the Discord account is
    /// linked to another site user of this client. With `replaced`, an earlier link to another
    /// account becomes an [`Unlinking`] of the member in the same write (and the member pending);
    /// without it the earlier link is dropped as it is (a rolled-back link). An unlinking of
    /// `link`'s own account is dropped: the account is back.
    async fn create_link(
        &self,
        client: &str,
        user_id: &str,
        link: &Link,
        replaced: Option<&UnlinkCleanup>,
        pending: bool,
        now: Timestamp,
    ) -> StoreResult<Member>;

    /// Removes the link, freeing the Discord account. Returns the old link. With `cleanup`, the
    /// link becomes an [`Unlinking`] of the member in the same write, the member is marked
    /// pending and its version bumped (the guild writer does the Discord side); without it,
    /// `pending` is cleared (nothing is left to do).
    async fn delete_link(
        &self,
        client: &str,
        user_id: &str,
        cleanup: Option<&UnlinkCleanup>,
        now: Timestamp,
    ) -> StoreResult<Option<Link>>;

    /// Records the progress of one unlinking (`Some`: replaces it, if it is still there) or its
    /// end (`None`: removes it). `pending` and `version` are left as they are.
    async fn record_unlinking(
        &self,
        client: &str,
        user_id: &str,
        discord_user_id: &str,
        progress: Option<&Unlinking>,
    ) -> StoreResult<()>;

    /// Clears `pending` of a member with no link work left, only if `version` still equals
    /// `expected_version`. Returns whether it is now clear (`false`: changed meanwhile).
    async fn clear_pending(
        &self,
        client: &str,
        user_id: &str,
        expected_version: i64,
        now: Timestamp,
    ) -> StoreResult<bool>;

    /// Records what a task did. Role/nickname/status/error fields are always written (they
    /// describe Discord); `pending` is cleared only if `version` still equals `expected_version`,
    /// so a group change made meanwhile is not lost. Returns whether `pending` is now clear.
    /// `NotFound` when the member or its link is gone.
    async fn record_outcome(
        &self,
        client: &str,
        user_id: &str,
        expected_version: i64,
        outcome: &Outcome,
        now: Timestamp,
    ) -> StoreResult<bool>;

    /// Replaces the sealed OAuth tokens of a link (`None` drops them). `NotFound` without a link.
    async fn set_tokens(
        &self,
        client: &str,
        user_id: &str,
        tokens: Option<&StoredTokens>,
    ) -> StoreResult<()>;

    /// Records the Linked Roles role connection just pushed for the link to `discord_user_id`
    /// (`None` forgets it). `NotFound` when the user has no link to that account any more (a
    /// relink meanwhile: the new account's connection is still to push).
    async fn set_role_connection(
        &self,
        client: &str,
        user_id: &str,
        discord_user_id: &str,
        pushed: Option<&RoleConnection>,
    ) -> StoreResult<()>;

    /// Records that the website is told the active link to `discord_user_id` must be made again
    /// to grant `missing_scope` (Linked Roles), writing the `link.needs_relink` event in the
    /// same write. `false` when it was told already for this link, or the user has no active
    /// link to that account (nothing written).
    async fn request_relink(
        &self,
        client: &str,
        user_id: &str,
        discord_user_id: &str,
        missing_scope: &str,
        now: Timestamp,
    ) -> StoreResult<bool>;

    /// Marks every member with an active link or an unlinking pending and forgets their refused
    /// writes (after a mapping change or `roles/sync`: what Discord refused may now succeed).
    /// Returns how many.
    async fn mark_all_linked_pending(&self, client: &str, now: Timestamp) -> StoreResult<u64>;

    /// Marks one member pending and bumps their version (an operator's "apply now"); `false`
    /// when there is no such member. Only `pending`, `version` and `updated_at` change, so a
    /// concurrent push is never overwritten.
    async fn mark_member_pending(
        &self,
        client: &str,
        user_id: &str,
        now: Timestamp,
    ) -> StoreResult<bool>;

    /// Pending members only, by user id; costs O(pending), not O(members).
    async fn list_pending(
        &self,
        client: &str,
        after: Option<&Cursor>,
        limit: usize,
    ) -> StoreResult<Page<Member>>;

    /// All members (linked or not), by user id.
    async fn list_members(
        &self,
        client: &str,
        after: Option<&Cursor>,
        limit: usize,
    ) -> StoreResult<Page<Member>>;

    /// The console's member search: members matching `search`, by user id, starting after
    /// `after`. Answers once it has `limit` matches (a few more when the last page read held
    /// them), or after examining [`SEARCH_BUDGET`] members — then with fewer, even none, and a
    /// `next` cursor — so a request never reads a 100,000-member guild at once. The default
    /// walks [`MemberStore::list_members`] a page at a time; adapters override it with an
    /// indexed read where they have one.
    async fn search_members(
        &self,
        client: &str,
        search: &MemberSearch,
        after: Option<&Cursor>,
        limit: usize,
    ) -> StoreResult<Page<Member>> {
        let limit = limit.clamp(1, 500);
        let mut items = Vec::new();
        let mut cursor = after.cloned();
        let mut examined = 0usize;
        loop {
            let page = self.list_members(client, cursor.as_ref(), limit).await?;
            examined += page.items.len();
            items.extend(page.items.into_iter().filter(|m| search.matches(m)));
            if items.len() >= limit || examined >= SEARCH_BUDGET || page.next.is_none() {
                return Ok(Page {
                    items,
                    next: page.next,
                });
            }
            cursor = page.next;
        }
    }

    /// How the client's members stand. O(members) by default; adapters answer from an index or
    /// a counting query where they can.
    async fn count_members(&self, client: &str) -> StoreResult<MemberCounts> {
        let mut counts = MemberCounts::default();
        let mut cursor: Option<Cursor> = None;
        loop {
            let page = self.list_members(client, cursor.as_ref(), 500).await?;
            page.items.iter().for_each(|m| counts.add(m));
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(counts),
            }
        }
    }

    /// Members with a link (any status), ordered by Discord user id as a NUMBER — the order of
    /// Discord's member list — starting after `after_discord_id`, so a task can walk both lists
    /// side by side with flat memory and resume from a Discord id. `next` is set when more may
    /// follow (callers continue from the last item's id). The default reads every member on each
    /// call: adapters override it with an indexed read.
    async fn list_linked_by_discord(
        &self,
        client: &str,
        after_discord_id: Option<u64>,
        limit: usize,
    ) -> StoreResult<Page<Member>> {
        let mut linked = Vec::new();
        let mut cursor: Option<Cursor> = None;
        loop {
            let page = self.list_members(client, cursor.as_ref(), 500).await?;
            for m in page.items {
                let id = m
                    .link
                    .as_ref()
                    .and_then(|l| l.discord_user_id.parse::<u64>().ok());
                if let Some(id) = id.filter(|id| after_discord_id.is_none_or(|a| *id > a)) {
                    linked.push((id, m));
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        linked.sort_by_key(|(id, _)| *id);
        let more = linked.len() > limit.max(1);
        linked.truncate(limit.max(1));
        let next = more
            .then(|| linked.last().map(|(id, _)| Cursor::encode(&id.to_string())))
            .flatten();
        Ok(Page {
            items: linked.into_iter().map(|(_, m)| m).collect(),
            next,
        })
    }
}

/// Single-use link sessions: created by the API, consumed by the SSO callback.
#[async_trait]
pub trait LinkSessions: Send + Sync {
    /// Stores the session, replacing every other session of the same client and user: one live
    /// link session per user, so an older link URL stops working once a newer one is made.
    async fn put_link_session(&self, session: &LinkSession) -> StoreResult<()>;

    /// Returns and deletes the session in one atomic step, so a state is used at most once:
    /// `Valid` before its `expires_at`, `Expired` after it (never usable, deleted too), `None`
    /// when unknown or already consumed (or already removed by a TTL sweep).
    async fn consume_link_session(
        &self,
        state_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<ConsumedSession>>;
}

/// Run reports and the audit trail: written by runs and the service layer, read by operators.
#[async_trait]
pub trait RunLog: Send + Sync {
    /// Inserts or replaces a run report (a long run is saved again as it progresses).
    async fn put_run(&self, report: &RunReport) -> StoreResult<()>;

    /// Newest first.
    async fn list_runs(
        &self,
        client: &str,
        after: Option<&Cursor>,
        limit: usize,
    ) -> StoreResult<Page<RunReport>>;

    async fn append_audit(&self, entries: &[AuditEntry]) -> StoreResult<()>;

    /// Newest first.
    async fn list_audit(
        &self,
        client: &str,
        after: Option<&Cursor>,
        limit: usize,
    ) -> StoreResult<Page<AuditEntry>>;

    /// One run report by id. The default walks [`RunLog::list_runs`]; adapters read it directly.
    async fn get_run(&self, client: &str, run_id: &str) -> StoreResult<Option<RunReport>> {
        let mut cursor: Option<Cursor> = None;
        loop {
            let page = self.list_runs(client, cursor.as_ref(), 100).await?;
            if let Some(run) = page.items.into_iter().find(|r| r.id == run_id) {
                return Ok(Some(run));
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(None),
            }
        }
    }

    /// The console's audit search, newest first, with the same paging rule as
    /// [`MemberStore::search_members`].
    async fn search_audit(
        &self,
        client: &str,
        search: &AuditSearch,
        after: Option<&Cursor>,
        limit: usize,
    ) -> StoreResult<Page<AuditEntry>> {
        let limit = limit.clamp(1, 500);
        let mut items = Vec::new();
        let mut cursor = after.cloned();
        let mut examined = 0usize;
        loop {
            let page = self.list_audit(client, cursor.as_ref(), limit).await?;
            examined += page.items.len();
            // Newest first: once an entry is older than `since`, nothing further can match.
            let past_since = page
                .items
                .last()
                .is_some_and(|e| search.since.is_some_and(|s| e.at < s));
            items.extend(page.items.into_iter().filter(|e| search.matches(e)));
            if past_since {
                return Ok(Page { items, next: None });
            }
            if items.len() >= limit || examined >= SEARCH_BUDGET || page.next.is_none() {
                return Ok(Page {
                    items,
                    next: page.next,
                });
            }
            cursor = page.next;
        }
    }
}

/// Operator console sign-ins (see `domain::console`). Expired sessions are never returned and
/// are removed by retention (DynamoDB TTL, or [`Pruning`]).
#[async_trait]
pub trait ConsoleSessions: Send + Sync {
    async fn put_console_session(&self, session: &ConsoleSession) -> StoreResult<()>;

    /// The session stored under this id hash, unless unknown or expired at `now`.
    async fn get_console_session(
        &self,
        id_sha256: &str,
        now: Timestamp,
    ) -> StoreResult<Option<ConsoleSession>>;

    /// Sign-out; deleting an unknown session is not an error.
    async fn delete_console_session(&self, id_sha256: &str) -> StoreResult<()>;
}

/// Items a console search examines per request before it answers with what it found and a
/// cursor to continue.
pub const SEARCH_BUDGET: usize = 5_000;

/// Deployment-wide settings (the generated admin token's hash).
#[async_trait]
pub trait Settings: Send + Sync {
    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>>;

    /// Stores `value` unless the key exists; returns whether it was stored.
    async fn put_setting_if_absent(&self, key: &str, value: &str) -> StoreResult<bool>;
}

/// Scoped API tokens, read on every admin API request (so a revoked token stops working at once,
/// on every instance).
#[async_trait]
pub trait ApiTokens: Send + Sync {
    /// Fails with `Backend` if the id or the hash is taken (both are random: never in practice).
    async fn put_api_token(&self, token: &ApiToken) -> StoreResult<()>;

    async fn find_api_token(&self, token_sha256: &str) -> StoreResult<Option<ApiToken>>;

    /// Every token, oldest first.
    async fn list_api_tokens(&self) -> StoreResult<Vec<ApiToken>>;

    /// Returns whether it existed.
    async fn delete_api_token(&self, id: &str) -> StoreResult<bool>;
}

/// Named, expiring leases: the guild writer, bot writer slots, delivery de-duplication.
#[async_trait]
pub trait Leases: Send + Sync {
    /// Takes the named lease for `ttl_secs` unless another holder has it unexpired (the holder
    /// itself may take it again). `None` when it is held by someone else; otherwise what the
    /// previous holder handed over on its last renewal or release.
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        ttl_secs: i64,
    ) -> StoreResult<Option<LeaseGrant>>;

    /// Extends the lease to `now + ttl_secs` (and stores `handover` when given) only if `holder`
    /// still holds it unexpired; `false` means the lease was lost and the holder must stop.
    async fn renew_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        ttl_secs: i64,
        handover: Option<&str>,
    ) -> StoreResult<bool>;

    /// Frees the lease if `holder` has it, keeping `handover` (when given) for the next holder.
    async fn release_lease(
        &self,
        name: &str,
        holder: &str,
        handover: Option<&str>,
    ) -> StoreResult<()>;
}

/// The work index: which clients have work, so a tick costs O(clients with work).
#[async_trait]
pub trait WorkIndex: Send + Sync {
    /// Marks that `task` has work for `client` (idempotent; bumps `seq`). Returns the new seq.
    async fn mark_work(&self, client: &str, task: TaskName, now: Timestamp) -> StoreResult<u64>;

    async fn get_work(&self, client: &str, task: TaskName) -> StoreResult<Option<WorkMark>>;

    /// Every mark, by (client, task); costs O(marks), not O(clients).
    async fn list_work(&self, after: Option<&Cursor>, limit: usize) -> StoreResult<Page<WorkMark>>;

    /// Removes the mark unless it was marked again since `seen_seq` was read. Returns whether
    /// it was removed (absent counts as removed).
    async fn clear_work(&self, client: &str, task: TaskName, seen_seq: u64) -> StoreResult<bool>;
}

/// Every port at once: what an adapter implements and what `AppState` holds. Callers that need
/// less take the narrow port (`&dyn MemberStore`, `Arc<dyn Leases>`, …).
pub trait Store:
    ClientCatalog
    + MemberStore
    + LinkSessions
    + RunLog
    + Settings
    + Leases
    + WorkIndex
    + ApiTokens
    + ConsoleSessions
    + Pruning
    + WebhookOutbox
{
}

impl<
        T: ClientCatalog
            + MemberStore
            + LinkSessions
            + RunLog
            + Settings
            + Leases
            + WorkIndex
            + ApiTokens
            + ConsoleSessions
            + Pruning
            + WebhookOutbox
            + ?Sized,
    > Store for T
{
}
