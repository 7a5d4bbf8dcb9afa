//! Discord's rate limits, learned from response headers and shared by every client of one bot token.
//!
//! Two limits apply before a request goes out:
//! - the global limit (`global_per_second`, 50 for a bot token), a sliding one-second window, plus
//!   any global block announced by a 429 with `global: true`;
//! - the route's bucket. A route (method + template) maps to a bucket id learned from
//!   `X-RateLimit-Bucket`; the bucket's state is keyed by (bucket id, major parameter = guild id),
//!   because the same route on two guilds is two limits. A route or guild whose bucket is not yet
//!   known gets one request in flight, so the first response teaches the limit before a burst.
//!
//! A request reserves its slot under the state mutex ([`RateLimiter::acquire`]) and reports the
//! response headers back ([`Permit::complete`]); concurrent requests therefore never overrun a
//! bucket the limiter has learned. Windows are identified by `X-RateLimit-Reset` (or, without it,
//! by the local end time derived from `X-RateLimit-Reset-After`), so a late response from an old
//! window cannot lift the count of the current one.
//!
//! We do not use `twilight-http-ratelimiting`: it only reads the bucket headers when
//! `x-ratelimit-scope` is present, i.e. it does not learn from ordinary (non-429) responses.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio::time::Instant;

#[cfg(test)]
mod tests;

/// Width of the global window.
const GLOBAL_WINDOW: Duration = Duration::from_secs(1);
/// Without `X-RateLimit-Reset`, two responses whose computed window ends differ by less than this
/// belong to the same window (network jitter).
const WINDOW_JITTER: Duration = Duration::from_millis(100);

/// Shared per bot token: one instance serves every `DiscordClient` using that token.
pub struct RateLimiter {
    global_per_second: usize,
    state: Mutex<State>,
    /// Woken whenever a slot is released or the limits change.
    changed: Notify,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("RateLimiter")
            .field("global_per_second", &self.global_per_second)
            .field("routes", &state.routes.len())
            .field("buckets", &state.buckets.len())
            .field("rejected_tokens", &state.rejected_tokens.len())
            .finish()
    }
}

impl Default for RateLimiter {
    /// Discord's global limit for a bot token: 50 requests per second.
    fn default() -> Self {
        Self::new(50)
    }
}

#[derive(Default)]
struct State {
    /// Send times inside the current global window, oldest first.
    global_sent: VecDeque<Instant>,
    /// Set by a global 429: nothing goes out before this.
    global_blocked_until: Option<Instant>,
    /// "METHOD /route/{template}" → bucket id.
    routes: HashMap<String, String>,
    buckets: HashMap<BucketKey, Bucket>,
    /// SHA-256 of bot tokens Discord answered 401 for ("stop on 401").
    rejected_tokens: HashSet<[u8; 32]>,
    /// Idle buckets are forgotten once there are more than this many (see [`State::prune`]).
    prune_above: usize,
}

/// How a member's own token is named as a major (`user:` + a digest of the token): their
/// buckets travel with the guild's in a writer's handover.
pub(crate) const MEMBER_MAJOR_PREFIX: &str = "user:";

/// Buckets kept before idle ones are forgotten. A member's own token has buckets of its own
/// (Linked Roles pushes), so a long-running process would otherwise keep one per member forever.
const PRUNE_ABOVE: usize = 1_024;

impl State {
    /// Forgets buckets with nothing in flight whose window has passed: all they still hold is a
    /// learned limit, and an unknown bucket is probed with one request — as safe, just slower
    /// for its first request. The threshold then grows with what stays, so a process with many
    /// live buckets does not scan them on every response.
    fn prune(&mut self, now: Instant) {
        if self.buckets.len() <= self.prune_above.max(PRUNE_ABOVE) {
            return;
        }
        self.buckets
            .retain(|_, b| b.in_flight > 0 || b.reset_at.is_some_and(|reset| reset > now));
        self.prune_above = (self.buckets.len() * 2).max(PRUNE_ABOVE);
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct BucketKey {
    /// A learned bucket id, or `route:<METHOD template>` while the route's bucket is unknown.
    bucket: String,
    major: String,
}

#[derive(Debug)]
struct Bucket {
    /// False until a response told us this bucket's limit: then one request in flight at most.
    learned: bool,
    limit: u32,
    /// Requests we may still send in the current window (reservations already deducted).
    remaining: u32,
    /// When the current window ends locally; `None` once it has passed and no response of the
    /// next window has arrived yet.
    reset_at: Option<Instant>,
    /// Identity of the current (or last) window.
    window: Option<Window>,
    in_flight: u32,
}

#[derive(Clone, Copy, Debug)]
struct Window {
    /// `X-RateLimit-Reset` (epoch seconds) when sent.
    server_reset: Option<f64>,
    local_end: Instant,
}

/// How a response's window relates to the bucket's current one.
enum WindowOrder {
    Older,
    Same,
    Newer,
}

impl Window {
    fn compare(&self, current: &Window) -> WindowOrder {
        if let (Some(new), Some(cur)) = (self.server_reset, current.server_reset) {
            return if new > cur + 0.001 {
                WindowOrder::Newer
            } else if new < cur - 0.001 {
                WindowOrder::Older
            } else {
                WindowOrder::Same
            };
        }
        if self.local_end > current.local_end + WINDOW_JITTER {
            WindowOrder::Newer
        } else if self.local_end + WINDOW_JITTER < current.local_end {
            WindowOrder::Older
        } else {
            WindowOrder::Same
        }
    }
}

impl Bucket {
    fn unknown() -> Self {
        Bucket {
            learned: false,
            limit: 1,
            remaining: 1,
            reset_at: None,
            window: None,
            in_flight: 0,
        }
    }

    /// Starts a fresh window locally once the current one has ended.
    fn roll_over(&mut self, now: Instant) {
        if self.reset_at.is_some_and(|reset| reset <= now) {
            self.reset_at = None;
            self.remaining = self.limit;
        }
    }

    /// Applies what one response said about this bucket. `others` = requests still in flight.
    fn learn(&mut self, seen: &BucketHeaders, now: Instant) {
        let window = Window {
            server_reset: seen.reset,
            local_end: now + seen.reset_after,
        };
        let others = self.in_flight;
        let safe_remaining = seen.remaining.saturating_sub(others);
        self.limit = seen.limit.max(1);
        if !self.learned {
            self.learned = true;
            self.remaining = safe_remaining;
            self.reset_at = Some(window.local_end);
            self.window = Some(window);
            return;
        }
        let order = match &self.window {
            None => WindowOrder::Newer,
            Some(current) => window.compare(current),
        };
        match (order, self.reset_at) {
            // A window we have already seen end locally, or an older one: nothing new.
            (WindowOrder::Older, _) | (WindowOrder::Same, None) => {}
            (WindowOrder::Same, Some(_)) => self.remaining = self.remaining.min(safe_remaining),
            (WindowOrder::Newer, reset_at) => {
                // After a local roll-over `remaining` counts this window's reservations too.
                self.remaining = match reset_at {
                    None => self.remaining.min(safe_remaining),
                    Some(_) => safe_remaining,
                };
                self.reset_at = Some(window.local_end);
                self.window = Some(window);
            }
        }
    }

    /// A 429 for this bucket: nothing more until `retry_after` has passed.
    fn block(&mut self, until: Instant) {
        self.remaining = 0;
        self.reset_at = Some(self.reset_at.map_or(until, |reset| reset.max(until)));
        if !self.learned {
            // Keep the single-flight rule but remember the wait.
            self.learned = true;
            self.limit = 1;
        }
    }
}

/// The rate-limit headers of one response.
#[derive(Clone, Debug, Default)]
pub(crate) struct Observed {
    bucket: Option<String>,
    limits: Option<BucketHeaders>,
    /// Set for a 429.
    pub(crate) hit: Option<RateLimitHit>,
}

#[derive(Clone, Debug)]
struct BucketHeaders {
    limit: u32,
    remaining: u32,
    reset: Option<f64>,
    reset_after: Duration,
}

/// A 429 response: how long to wait and for whom.
#[derive(Clone, Debug)]
pub(crate) struct RateLimitHit {
    pub(crate) retry_after: Duration,
    pub(crate) global: bool,
    /// `X-RateLimit-Scope: shared` 429s do not count as invalid requests.
    pub(crate) shared: bool,
}

impl Observed {
    pub(crate) fn from_headers(headers: &HeaderMap) -> Self {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let number = |name: &str| text(name).and_then(|v| v.trim().parse::<f64>().ok());
        let limits = match (
            number("x-ratelimit-limit"),
            number("x-ratelimit-remaining"),
            number("x-ratelimit-reset-after").map(seconds),
        ) {
            (Some(limit), Some(remaining), Some(reset_after)) => Some(BucketHeaders {
                limit: limit.clamp(0.0, f64::from(u32::MAX)) as u32,
                remaining: remaining.clamp(0.0, f64::from(u32::MAX)) as u32,
                reset: number("x-ratelimit-reset").filter(|r| r.is_finite()),
                reset_after,
            }),
            _ => None,
        };
        Observed {
            bucket: text("x-ratelimit-bucket").map(str::to_owned),
            limits,
            hit: None,
        }
    }

    /// Records a 429, with `retry_after`/`global` from the JSON body when it had them.
    pub(crate) fn rate_limited(
        mut self,
        headers: &HeaderMap,
        retry_after: Option<f64>,
        global: Option<bool>,
    ) -> Self {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let retry_after = retry_after
            .map(seconds)
            .or_else(|| {
                text("retry-after")
                    .and_then(|v| v.trim().parse().ok())
                    .map(seconds)
            })
            .or_else(|| self.limits.as_ref().map(|l| l.reset_after))
            .unwrap_or(Duration::from_secs(1));
        let global = global.unwrap_or(false)
            || text("x-ratelimit-global").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || text("x-ratelimit-scope").is_some_and(|v| v.eq_ignore_ascii_case("global"));
        let shared = text("x-ratelimit-scope").is_some_and(|v| v.eq_ignore_ascii_case("shared"));
        self.hit = Some(RateLimitHit {
            retry_after,
            global,
            shared,
        });
        self
    }
}

/// The longest wait a header or a 429 body may impose. Discord's windows last seconds and its
/// longest 429s minutes; a larger value is a broken or hostile answer, and unclamped it would
/// overflow `Instant` arithmetic (a panic).
pub(crate) const MAX_DISCORD_WAIT: Duration = Duration::from_secs(3600);

/// Seconds from a Discord header or body as a wait: NaN and negatives count as 0, anything
/// above [`MAX_DISCORD_WAIT`] (infinity included) as that maximum.
pub(crate) fn seconds(value: f64) -> Duration {
    if value.is_nan() || value <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(value.min(MAX_DISCORD_WAIT.as_secs_f64()))
        .unwrap_or(MAX_DISCORD_WAIT)
}

/// A reserved slot for one request. Report the response with [`Permit::complete`]; dropping it
/// unreported (transport error, cancelled future) frees the slot.
pub(crate) struct Permit<'a> {
    limiter: &'a RateLimiter,
    route: String,
    key: BucketKey,
    released: bool,
}

impl Permit<'_> {
    pub(crate) fn complete(mut self, observed: &Observed) {
        self.released = true;
        self.limiter.complete(&self.route, &self.key, observed);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.released {
            self.limiter
                .complete(&self.route, &self.key, &Observed::default());
        }
    }
}

enum Decision {
    /// Wait for a slot to be released (or the bucket to be learned).
    Notified,
    Until(Instant),
}

impl RateLimiter {
    /// Global limit in requests per second (Discord: 50 per bot token).
    pub fn new(global_per_second: u32) -> Self {
        Self {
            global_per_second: usize::try_from(global_per_second.max(1)).unwrap_or(usize::MAX),
            state: Mutex::new(State::default()),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent between statements, so a panic elsewhere cannot poison it
        // in a harmful way.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits until `route` (e.g. `PUT /guilds/{guild}/members/{user}/roles/{role}`) on `major`
    /// (the guild id, or "") may send one request, and reserves that slot.
    pub(crate) async fn acquire(&self, route: &str, major: &str) -> Permit<'_> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let decision = match self.try_reserve(route, major) {
                Ok(key) => {
                    return Permit {
                        limiter: self,
                        route: route.to_owned(),
                        key,
                        released: false,
                    }
                }
                Err(decision) => decision,
            };
            match decision {
                Decision::Notified => notified.await,
                Decision::Until(deadline) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline) => {}
                        () = notified => {}
                    }
                }
            }
        }
    }

    fn try_reserve(&self, route: &str, major: &str) -> Result<BucketKey, Decision> {
        let mut state = self.lock();
        let now = Instant::now();
        if let Some(until) = state.global_blocked_until {
            if until > now {
                return Err(Decision::Until(until));
            }
            state.global_blocked_until = None;
        }
        let key = BucketKey {
            bucket: match state.routes.get(route) {
                Some(bucket) => bucket.clone(),
                None => format!("route:{route}"),
            },
            major: major.to_owned(),
        };
        let bucket = state
            .buckets
            .entry(key.clone())
            .or_insert_with(Bucket::unknown);
        bucket.roll_over(now);
        if !bucket.learned {
            if bucket.in_flight > 0 {
                return Err(Decision::Notified);
            }
        } else if bucket.remaining == 0 {
            match bucket.reset_at {
                Some(reset) => return Err(Decision::Until(reset)),
                None if bucket.in_flight > 0 => return Err(Decision::Notified),
                // Nothing in flight will tell us about the new window: probe with one request.
                None => bucket.remaining = 1,
            }
        }
        while state
            .global_sent
            .front()
            .is_some_and(|sent| *sent + GLOBAL_WINDOW <= now)
        {
            state.global_sent.pop_front();
        }
        if state.global_sent.len() >= self.global_per_second {
            if let Some(oldest) = state.global_sent.front() {
                return Err(Decision::Until(*oldest + GLOBAL_WINDOW));
            }
        }
        state.global_sent.push_back(now);
        if let Some(bucket) = state.buckets.get_mut(&key) {
            bucket.in_flight += 1;
            if bucket.learned {
                bucket.remaining = bucket.remaining.saturating_sub(1);
            }
        }
        Ok(key)
    }

    fn complete(&self, route: &str, reserved: &BucketKey, observed: &Observed) {
        {
            let mut state = self.lock();
            let now = Instant::now();
            if let Some(bucket) = state.buckets.get_mut(reserved) {
                bucket.in_flight = bucket.in_flight.saturating_sub(1);
            }
            let key = match &observed.bucket {
                Some(bucket_id) => {
                    if state.routes.get(route) != Some(bucket_id) {
                        state.routes.insert(route.to_owned(), bucket_id.clone());
                    }
                    BucketKey {
                        bucket: bucket_id.clone(),
                        major: reserved.major.clone(),
                    }
                }
                None => reserved.clone(),
            };
            if let Some(limits) = &observed.limits {
                let bucket = state
                    .buckets
                    .entry(key.clone())
                    .or_insert_with(Bucket::unknown);
                bucket.roll_over(now);
                bucket.learn(limits, now);
            }
            if let Some(hit) = &observed.hit {
                let until = now + hit.retry_after;
                if hit.global {
                    state.global_blocked_until = Some(
                        state
                            .global_blocked_until
                            .map_or(until, |blocked| blocked.max(until)),
                    );
                } else {
                    state
                        .buckets
                        .entry(key)
                        .or_insert_with(Bucket::unknown)
                        .block(until);
                }
            }
            state.prune(now);
        }
        self.changed.notify_waiters();
    }

    /// "Stop on 401": remembers that Discord rejected this bot token.
    pub(crate) fn reject_token(&self, token: &SecretString) {
        let digest = token_digest(token);
        self.lock().rejected_tokens.insert(digest);
    }

    /// True once Discord answered 401 to a call made with this bot token.
    pub fn is_token_rejected(&self, token: &SecretString) -> bool {
        let digest = token_digest(token);
        self.lock().rejected_tokens.contains(&digest)
    }
}

/// What a guild writer knew about its guild's buckets, handed to the next holder of the guild's
/// lease (in another process, maybe) so it does not burst into a window already used up.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Handover {
    /// Route → learned bucket id.
    routes: BTreeMap<String, String>,
    buckets: Vec<BucketSnapshot>,
}

#[derive(Debug, Serialize, Deserialize)]
struct BucketSnapshot {
    /// A member token's major ([`MEMBER_MAJOR_PREFIX`]…); absent for the guild's own buckets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    member: Option<String>,
    bucket: String,
    limit: u32,
    remaining: u32,
    /// When the window ends, milliseconds since the Unix epoch.
    reset_ms: u64,
    /// Discord's `X-RateLimit-Reset` of that window, when it sent one.
    server_reset: Option<f64>,
}

fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

impl RateLimiter {
    /// The learned buckets of `major` (a guild id) whose window is still open, as text for a
    /// lease's handover — with those of the members' own tokens, which the guild's writer used
    /// for their Linked Roles pushes. Reservations in flight are already deducted from
    /// `remaining`.
    pub fn export_major(&self, major: &str) -> String {
        let state = self.lock();
        let now = Instant::now();
        let now_ms = epoch_ms();
        let buckets = state
            .buckets
            .iter()
            .filter(|(key, b)| {
                (key.major == major || key.major.starts_with(MEMBER_MAJOR_PREFIX)) && b.learned
            })
            .filter_map(|(key, b)| {
                let reset = b.reset_at.filter(|r| *r > now)?;
                Some(BucketSnapshot {
                    member: (key.major != major).then(|| key.major.clone()),
                    bucket: key.bucket.clone(),
                    limit: b.limit,
                    remaining: b.remaining,
                    reset_ms: now_ms + (reset - now).as_millis() as u64,
                    server_reset: b.window.and_then(|w| w.server_reset),
                })
            })
            .collect();
        let routes = state
            .routes
            .iter()
            .map(|(r, b)| (r.clone(), b.clone()))
            .collect();
        serde_json::to_string(&Handover { routes, buckets }).unwrap_or_default()
    }

    /// The requests sent within the last second (epoch milliseconds), for the handover of a
    /// share of the global budget: a writer slot's next holder counts them against its own.
    pub fn export_global(&self) -> String {
        let mut state = self.lock();
        let now = Instant::now();
        let now_ms = epoch_ms();
        while state
            .global_sent
            .front()
            .is_some_and(|sent| *sent + GLOBAL_WINDOW <= now)
        {
            state.global_sent.pop_front();
        }
        let sent: Vec<u64> = state
            .global_sent
            .iter()
            .map(|t| now_ms.saturating_sub((now - *t).as_millis() as u64))
            .collect();
        serde_json::to_string(&sent).unwrap_or_default()
    }

    /// Counts the previous holder's sends of the last second (from [`export_global`]) against
    /// this limiter's global window. Unreadable text is ignored.
    ///
    /// [`export_global`]: RateLimiter::export_global
    pub fn import_global(&self, text: &str) {
        let Ok(sent) = serde_json::from_str::<Vec<u64>>(text) else {
            return;
        };
        let mut state = self.lock();
        let now = Instant::now();
        let now_ms = epoch_ms();
        let mut times: Vec<Instant> = sent
            .into_iter()
            .filter(|ms| *ms + 1000 > now_ms && *ms <= now_ms)
            .map(|ms| now - Duration::from_millis(now_ms - ms))
            .chain(state.global_sent.iter().copied())
            .collect();
        times.sort();
        state.global_sent = times.into();
    }

    /// Starts from what the previous writer of `major` knew: its open windows count against us.
    /// Unreadable text is ignored (the limiter then learns from the first response, one request
    /// in flight per bucket).
    pub fn import_major(&self, major: &str, text: &str) {
        let Ok(handover) = serde_json::from_str::<Handover>(text) else {
            return;
        };
        let mut state = self.lock();
        let now = Instant::now();
        let now_ms = epoch_ms();
        for (route, bucket) in handover.routes {
            state.routes.entry(route).or_insert(bucket);
        }
        for snap in handover.buckets {
            if snap.reset_ms <= now_ms {
                continue;
            }
            // Never trust a handover for longer than a Discord window can last.
            let left = Duration::from_millis(snap.reset_ms - now_ms).min(Duration::from_secs(60));
            let major = match snap.member {
                Some(member) if member.starts_with(MEMBER_MAJOR_PREFIX) => member,
                Some(_) => continue,
                None => major.to_owned(),
            };
            let key = BucketKey {
                bucket: snap.bucket,
                major,
            };
            let limit = snap.limit.max(1);
            state.buckets.insert(
                key,
                Bucket {
                    learned: true,
                    limit,
                    remaining: snap.remaining.min(limit),
                    reset_at: Some(now + left),
                    window: Some(Window {
                        server_reset: snap.server_reset,
                        local_end: now + left,
                    }),
                    in_flight: 0,
                },
            );
        }
    }
}

fn token_digest(token: &SecretString) -> [u8; 32] {
    Sha256::digest(token.expose_secret().as_bytes()).into()
}
