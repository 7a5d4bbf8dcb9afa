//! A store lease kept alive by a heartbeat while its holder works, and lost within seconds when
//! the holder dies (crash, deploy, Lambda timeout) — instead of blocking the next run for
//! minutes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::store::{Leases, StoreResult};

/// How long a lease outlives its holder's last heartbeat.
pub const LEASE_TTL_SECS: i64 = 15;
/// How often the holder renews it: three renewals fit in one TTL, so one slow store call does
/// not lose it.
pub const RENEW_EVERY: Duration = Duration::from_secs(4);

/// What the holder wants stored with each renewal (the writer's rate-limit knowledge).
pub type HandoverSource = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// A lease held by this process. Dropping it stops the heartbeat (the lease then expires within
/// [`LEASE_TTL_SECS`]); [`HeldLease::release`] frees it at once.
pub struct HeldLease {
    store: Arc<dyn Leases>,
    name: String,
    holder: String,
    handover: Option<String>,
    lost: Arc<AtomicBool>,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for HeldLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldLease")
            .field("name", &self.name)
            .field("lost", &self.lost())
            .finish_non_exhaustive()
    }
}

impl HeldLease {
    /// Takes `name` unless someone else holds it; `None` then.
    pub async fn acquire(
        store: Arc<dyn Leases>,
        clock: Arc<dyn Clock>,
        name: &str,
        source: Option<HandoverSource>,
    ) -> StoreResult<Option<HeldLease>> {
        let holder = uuid::Uuid::new_v4().to_string();
        let Some(grant) = store
            .acquire_lease(name, &holder, clock.now(), LEASE_TTL_SECS)
            .await?
        else {
            return Ok(None);
        };
        let lost = Arc::new(AtomicBool::new(false));
        let heartbeat = tokio::spawn(heartbeat(
            store.clone(),
            clock,
            name.to_owned(),
            holder.clone(),
            source,
            lost.clone(),
        ));
        Ok(Some(HeldLease {
            store,
            name: name.to_owned(),
            holder,
            handover: grant.handover,
            lost,
            heartbeat,
        }))
    }

    /// True once a renewal found the lease taken by someone else (or the store unreachable for
    /// longer than the TTL): the holder must stop writing.
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// The flag the heartbeat sets when the lease is lost, for code that checks it per write.
    pub fn lost_flag(&self) -> Arc<AtomicBool> {
        self.lost.clone()
    }

    /// What the previous holder handed over.
    pub fn handover(&self) -> Option<&str> {
        self.handover.as_deref()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Frees the lease now, leaving `handover` for the next holder.
    pub async fn release(self, handover: Option<&str>) -> StoreResult<()> {
        self.heartbeat.abort();
        if self.lost() {
            return Ok(());
        }
        self.store
            .release_lease(&self.name, &self.holder, handover)
            .await
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

async fn heartbeat(
    store: Arc<dyn Leases>,
    clock: Arc<dyn Clock>,
    name: String,
    holder: String,
    source: Option<HandoverSource>,
    lost: Arc<AtomicBool>,
) {
    let mut last_renewed = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        let handover = source.as_ref().and_then(|f| f());
        match store
            .renew_lease(
                &name,
                &holder,
                clock.now(),
                LEASE_TTL_SECS,
                handover.as_deref(),
            )
            .await
        {
            Ok(true) => last_renewed = tokio::time::Instant::now(),
            Ok(false) => {
                tracing::warn!(lease = %name, "lease lost to another holder");
                lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(e) => {
                tracing::warn!(lease = %name, error = %e, "lease renewal failed");
                if last_renewed.elapsed() >= Duration::from_secs(LEASE_TTL_SECS as u64) {
                    lost.store(true, Ordering::SeqCst);
                    return;
                }
            }
        }
    }
}
