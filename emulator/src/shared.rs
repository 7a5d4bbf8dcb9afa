//! The emulator's state, shared by the HTTP handlers and the in-process test API.
//!
//! Separate locks keep the request log and the limiter from serialising behind member writes;
//! no lock is ever held across an `.await`.

use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use ed25519_dalek::SigningKey;

use crate::clock::Clock;
use crate::consent::Consent;
use crate::events::EventDelivery;
use crate::fault::Fault;
use crate::oauth::OAuthStore;
use crate::ratelimit::{Limiter, RateLimits};
use crate::requests::RecordedRequest;
use crate::scenario::Scenario;
use crate::world::World;

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) scenario: Scenario,
    pub(crate) clock: Clock,
    pub(crate) world: Mutex<World>,
    pub(crate) oauth: Mutex<OAuthStore>,
    pub(crate) settings: Mutex<Settings>,
    pub(crate) limiter: Mutex<Limiter>,
    pub(crate) faults: Mutex<Vec<Fault>>,
    pub(crate) requests: Mutex<Vec<RecordedRequest>>,
    pub(crate) rate_limited: AtomicU64,
    /// Signs Webhook Events; its public half is what the developer portal shows.
    pub(crate) events_key: SigningKey,
    pub(crate) deliveries: Mutex<Vec<EventDelivery>>,
    /// The application's Linked Roles metadata records, as `GET` answers them.
    pub(crate) role_connection_metadata: Mutex<Vec<serde_json::Value>>,
    /// Each user's role connection with the application (Linked Roles), by user id. A role's
    /// requirements live on the role, in `world`.
    pub(crate) role_connections: Mutex<std::collections::BTreeMap<u64, serde_json::Value>>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Settings {
    pub(crate) consent: Consent,
    pub(crate) rate_limits: RateLimits,
    pub(crate) latency: Duration,
    pub(crate) events_url: Option<String>,
}

impl Shared {
    pub(crate) fn new(scenario: Scenario) -> Result<Self, String> {
        let clock = Clock::default();
        let world = World::from_scenario(&scenario, clock.now())?;
        let events_key = crate::events::signing_key(&scenario.application);
        let settings = Settings {
            events_url: scenario.application.events_url.clone(),
            ..Settings::default()
        };
        Ok(Self {
            scenario,
            clock,
            world: Mutex::new(world),
            oauth: Mutex::new(OAuthStore::default()),
            settings: Mutex::new(settings),
            limiter: Mutex::new(Limiter::default()),
            faults: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            rate_limited: AtomicU64::new(0),
            events_key,
            deliveries: Mutex::new(Vec::new()),
            role_connection_metadata: Mutex::new(Vec::new()),
            role_connections: Mutex::default(),
        })
    }

    pub(crate) fn settings(&self) -> Settings {
        lock(&self.settings).clone()
    }
}

/// A panic in one handler (say, a failing assertion in a test callback) must not wedge every
/// later request of a test double, so poisoning is ignored.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
