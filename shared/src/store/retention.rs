//! How long the store keeps what only looks back — run reports, the audit trail — and what is
//! dead — expired link and console sessions, leases long expired — and the [`Pruning`] port that removes them
//! where the database does not do it by itself.
//!
//! Each adapter is built with a [`RetentionPolicy`]. DynamoDB gives every such item a `ttl` and
//! lets the table's TTL sweep remove it (lazily, up to about two days late); the embedded SQLite
//! store is pruned by the self-hosted scheduler through [`Pruning`], in small batches. Work marks
//! are never pruned: they are the work index.

use async_trait::async_trait;

use super::StoreResult;
use crate::clock::Timestamp;

pub const DAY_SECS: i64 = 86_400;

/// How long a lease is kept after its expiry, so the `handover` its last holder left still
/// reaches a holder that comes a while later (a day: what it hands over is rate-limit knowledge,
/// stale well before then).
pub const LEASE_KEEP_SECS: i64 = DAY_SECS;

/// `CONNECTOR_RETAIN_RUNS_DAYS`: days a run report is kept after it started.
pub const RETAIN_RUNS_DAYS_VAR: &str = "CONNECTOR_RETAIN_RUNS_DAYS";
/// `CONNECTOR_RETAIN_AUDIT_DAYS`: days an audit entry is kept.
pub const RETAIN_AUDIT_DAYS_VAR: &str = "CONNECTOR_RETAIN_AUDIT_DAYS";

pub const DEFAULT_RETAIN_RUNS_DAYS: u32 = 90;
pub const DEFAULT_RETAIN_AUDIT_DAYS: u32 = 365;
/// The longest retention accepted (100 years): anything longer is a typo.
pub const MAX_RETAIN_DAYS: u32 = 36_500;

/// How long run reports and audit entries are kept (whole days, at least one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub runs_days: u32,
    pub audit_days: u32,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            runs_days: DEFAULT_RETAIN_RUNS_DAYS,
            audit_days: DEFAULT_RETAIN_AUDIT_DAYS,
        }
    }
}

impl RetentionPolicy {
    /// From `CONNECTOR_RETAIN_*` variables (`lookup` returns a variable's value; unset or empty
    /// takes the default). The error names the variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, InvalidRetention> {
        let days =
            |var: &'static str, default: u32| match lookup(var).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(v) => parse_days(var, &v),
            };
        Ok(Self {
            runs_days: days(RETAIN_RUNS_DAYS_VAR, DEFAULT_RETAIN_RUNS_DAYS)?,
            audit_days: days(RETAIN_AUDIT_DAYS_VAR, DEFAULT_RETAIN_AUDIT_DAYS)?,
        })
    }

    /// When a run report started at `started_at` may go.
    pub fn run_expiry(&self, started_at: Timestamp) -> Timestamp {
        started_at.saturating_add(i64::from(self.runs_days) * DAY_SECS)
    }

    /// When an audit entry made at `at` may go.
    pub fn audit_expiry(&self, at: Timestamp) -> Timestamp {
        at.saturating_add(i64::from(self.audit_days) * DAY_SECS)
    }
}

/// When a lease that expires (or expired) at `expires_at` may go.
pub fn lease_expiry(expires_at: Timestamp) -> Timestamp {
    expires_at.saturating_add(LEASE_KEEP_SECS)
}

/// A retention variable whose value is not a whole number of days from 1 to
/// [`MAX_RETAIN_DAYS`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var} must be a whole number of days from 1 to {MAX_RETAIN_DAYS}, got {value:?}")]
pub struct InvalidRetention {
    pub var: &'static str,
    pub value: String,
}

/// A retention in days: a whole number from 1 to [`MAX_RETAIN_DAYS`]. The error names `var`.
pub fn parse_days(var: &'static str, value: &str) -> Result<u32, InvalidRetention> {
    value
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|d| (1..=MAX_RETAIN_DAYS).contains(d))
        .ok_or_else(|| InvalidRetention {
            var,
            value: value.to_owned(),
        })
}

/// What one prune removed, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub runs: u64,
    pub audit: u64,
    pub link_sessions: u64,
    pub console_sessions: u64,
    pub leases: u64,
    /// Website webhook deliveries finished (delivered or failed) as long ago as run reports.
    pub webhook_deliveries: u64,
}

impl Pruned {
    pub fn total(&self) -> u64 {
        self.runs
            + self.audit
            + self.link_sessions
            + self.console_sessions
            + self.leases
            + self.webhook_deliveries
    }

    fn add(&mut self, other: Pruned) {
        self.runs += other.runs;
        self.audit += other.audit;
        self.link_sessions += other.link_sessions;
        self.console_sessions += other.console_sessions;
        self.leases += other.leases;
        self.webhook_deliveries += other.webhook_deliveries;
    }
}

/// Removes what is past the store's [`RetentionPolicy`]: the self-hosted scheduler's prune step.
#[async_trait]
pub trait Pruning: Send + Sync {
    /// Removes at most `batch` items of each kind that are past retention at `now`: run reports
    /// and audit entries older than the policy, link and console sessions past `expires_at`,
    /// leases more than [`LEASE_KEEP_SECS`] past theirs. Each kind is its own short write, so a
    /// large backlog never holds the database for long; call again while a kind comes back full
    /// ([`prune_all`]). A store whose database expires items itself (DynamoDB's TTL) removes
    /// nothing here.
    async fn prune_expired(&self, now: Timestamp, batch: usize) -> StoreResult<Pruned>;
}

/// Items removed per kind and write by [`prune_all`].
pub const PRUNE_BATCH: usize = 500;

/// Prunes in batches of `batch` until nothing past retention is left, letting other work take
/// the database between batches. Returns the total removed.
pub async fn prune_all<S: Pruning + ?Sized>(
    store: &S,
    now: Timestamp,
    batch: usize,
) -> StoreResult<Pruned> {
    let batch = batch.max(1);
    let mut total = Pruned::default();
    loop {
        let pruned = store.prune_expired(now, batch).await?;
        total.add(pruned);
        let full = [
            pruned.runs,
            pruned.audit,
            pruned.link_sessions,
            pruned.console_sessions,
            pruned.leases,
        ]
        .iter()
        .any(|n| *n >= batch as u64);
        if !full {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_90_days_of_runs_and_a_year_of_audit() {
        let policy = RetentionPolicy::from_lookup(|_| None).unwrap();
        assert_eq!(policy, RetentionPolicy::default());
        assert_eq!((policy.runs_days, policy.audit_days), (90, 365));
        assert_eq!(policy.run_expiry(0), 90 * DAY_SECS);
        assert_eq!(policy.audit_expiry(10), 10 + 365 * DAY_SECS);
    }

    #[test]
    fn retention_days_are_positive_whole_numbers_and_errors_name_the_variable() {
        let policy = RetentionPolicy::from_lookup(|v| {
            (v == RETAIN_RUNS_DAYS_VAR)
                .then(|| " 7 ".to_owned())
                .or_else(|| (v == RETAIN_AUDIT_DAYS_VAR).then(String::new))
        })
        .unwrap();
        assert_eq!((policy.runs_days, policy.audit_days), (7, 365));
        for bad in ["0", "-1", "1.5", "ninety", "36501", "99999999999"] {
            let err = RetentionPolicy::from_lookup(|v| {
                (v == RETAIN_AUDIT_DAYS_VAR).then(|| bad.to_owned())
            })
            .unwrap_err();
            assert_eq!(err.var, RETAIN_AUDIT_DAYS_VAR);
            assert!(
                err.to_string().contains(RETAIN_AUDIT_DAYS_VAR),
                "{bad}: {err}"
            );
        }
    }
}
