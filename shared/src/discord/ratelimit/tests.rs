//! The limiter on its own, with real (short) time: lower bounds only, so nothing is flaky.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use tokio::time::{timeout, Instant};

use super::*;

const ROUTE: &str = "PUT /guilds/{guild}/members/{user}/roles/{role}";

fn headers(bucket: &str, limit: u32, remaining: u32, reset: f64, reset_after: f64) -> Observed {
    let mut map = HeaderMap::new();
    let mut put = |name: &'static str, value: String| {
        map.insert(name, HeaderValue::from_str(&value).unwrap());
    };
    put("x-ratelimit-bucket", bucket.to_owned());
    put("x-ratelimit-limit", limit.to_string());
    put("x-ratelimit-remaining", remaining.to_string());
    put("x-ratelimit-reset", reset.to_string());
    put("x-ratelimit-reset-after", reset_after.to_string());
    Observed::from_headers(&map)
}

async fn blocked(limiter: &RateLimiter, route: &str, major: &str) -> bool {
    timeout(Duration::from_millis(50), limiter.acquire(route, major))
        .await
        .is_err()
}

#[tokio::test]
async fn an_unknown_bucket_allows_one_request_in_flight() {
    // given a route the limiter has never seen
    let limiter = RateLimiter::new(50);
    let first = limiter.acquire(ROUTE, "g1").await;
    // then a second request waits for the first answer
    assert!(blocked(&limiter, ROUTE, "g1").await);
    // when the answer teaches 5 per window, 4 left
    first.complete(&headers("roles", 5, 4, 1e9, 10.0));
    // then exactly 4 more go out at once
    let mut permits = Vec::new();
    for _ in 0..4 {
        permits.push(
            timeout(Duration::from_millis(50), limiter.acquire(ROUTE, "g1"))
                .await
                .expect("slot"),
        );
    }
    assert!(blocked(&limiter, ROUTE, "g1").await);
}

#[tokio::test]
async fn an_exhausted_bucket_waits_for_its_reset() {
    let limiter = RateLimiter::new(50);
    limiter
        .acquire(ROUTE, "g1")
        .await
        .complete(&headers("roles", 2, 0, 1e9, 0.3));
    let start = Instant::now();
    let permit = limiter.acquire(ROUTE, "g1").await;
    assert!(start.elapsed() >= Duration::from_millis(290));
    permit.complete(&headers("roles", 2, 1, 1e9 + 1.0, 0.3));
    // the next window's second slot is free at once
    assert!(!blocked(&limiter, ROUTE, "g1").await);
}

#[tokio::test]
async fn the_same_bucket_on_another_guild_is_another_limit() {
    let limiter = RateLimiter::new(50);
    limiter
        .acquire(ROUTE, "g1")
        .await
        .complete(&headers("roles", 1, 0, 1e9, 10.0));
    assert!(blocked(&limiter, ROUTE, "g1").await);
    assert!(!blocked(&limiter, ROUTE, "g2").await);
}

#[tokio::test]
async fn routes_sharing_a_bucket_share_its_count() {
    let limiter = RateLimiter::new(50);
    let other = "DELETE /guilds/{guild}/members/{user}/roles/{role}";
    limiter
        .acquire(ROUTE, "g1")
        .await
        .complete(&headers("roles", 2, 1, 1e9, 10.0));
    // the other route's first answer names the same bucket, now exhausted
    limiter
        .acquire(other, "g1")
        .await
        .complete(&headers("roles", 2, 0, 1e9, 10.0));
    assert!(blocked(&limiter, ROUTE, "g1").await);
    assert!(blocked(&limiter, other, "g1").await);
}

#[tokio::test]
async fn a_late_answer_from_an_old_window_does_not_free_slots() {
    let limiter = RateLimiter::new(50);
    limiter
        .acquire(ROUTE, "g1")
        .await
        .complete(&headers("roles", 3, 2, 1e9, 10.0));
    let a = limiter.acquire(ROUTE, "g1").await;
    let b = limiter.acquire(ROUTE, "g1").await;
    // b is processed first by Discord (remaining 0), a's answer (remaining 1) arrives last
    b.complete(&headers("roles", 3, 0, 1e9, 10.0));
    a.complete(&headers("roles", 3, 1, 1e9, 10.0));
    assert!(blocked(&limiter, ROUTE, "g1").await);
}

#[tokio::test]
async fn a_dropped_permit_frees_its_slot() {
    let limiter = RateLimiter::new(50);
    drop(limiter.acquire(ROUTE, "g1").await);
    assert!(!blocked(&limiter, ROUTE, "g1").await);
}

#[tokio::test]
async fn the_global_limit_spaces_requests() {
    let limiter = Arc::new(RateLimiter::new(2));
    let start = Instant::now();
    for guild in ["a", "b", "c"] {
        drop(limiter.acquire(ROUTE, guild).await);
    }
    assert!(start.elapsed() >= Duration::from_millis(990));
}

#[tokio::test]
async fn a_global_429_blocks_every_route() {
    let limiter = RateLimiter::new(50);
    let permit = limiter.acquire(ROUTE, "g1").await;
    let observed = Observed::default().rate_limited(&HeaderMap::new(), Some(0.3), Some(true));
    permit.complete(&observed);
    let start = Instant::now();
    drop(limiter.acquire("GET /guilds/{guild}", "g9").await);
    assert!(start.elapsed() >= Duration::from_millis(290));
}

#[tokio::test]
async fn a_bucket_429_blocks_that_bucket_only() {
    let limiter = RateLimiter::new(50);
    let permit = limiter.acquire(ROUTE, "g1").await;
    let mut map = HeaderMap::new();
    map.insert("x-ratelimit-bucket", HeaderValue::from_static("roles"));
    map.insert("retry-after", HeaderValue::from_static("5"));
    permit.complete(&Observed::from_headers(&map).rate_limited(&map, None, None));
    assert!(blocked(&limiter, ROUTE, "g1").await);
    assert!(!blocked(&limiter, "GET /guilds/{guild}", "g1").await);
}

#[test]
fn rejected_tokens_are_remembered_by_digest_only() {
    let limiter = RateLimiter::default();
    let token = SecretString::from("bot-token-value");
    assert!(!limiter.is_token_rejected(&token));
    limiter.reject_token(&token);
    assert!(limiter.is_token_rejected(&token));
    assert!(!limiter.is_token_rejected(&SecretString::from("new-token")));
    assert!(!format!("{limiter:?}").contains("bot-token-value"));
}

#[tokio::test]
async fn a_handover_carries_a_used_up_window_to_the_next_writer() {
    // given a writer that used the guild's role bucket up for the next 10 s
    let old = RateLimiter::new(5);
    old.acquire(ROUTE, "g1")
        .await
        .complete(&headers("roles", 10, 0, 1e9, 10.0));
    let handover = old.export_major("g1");
    assert!(!handover.contains("g2"), "{handover}");
    // when a new writer (another process) starts from it
    let new = RateLimiter::new(5);
    new.import_major("g1", &handover);
    // then it waits for the window instead of bursting into it
    assert!(blocked(&new, ROUTE, "g1").await);
    // and a writer that started fresh would have probed at once
    assert!(!blocked(&RateLimiter::new(5), ROUTE, "g1").await);
}

#[tokio::test]
async fn a_handover_with_room_left_lets_the_next_writer_continue_at_once() {
    let old = RateLimiter::new(5);
    old.acquire(ROUTE, "g1")
        .await
        .complete(&headers("roles", 10, 7, 1e9, 10.0));
    let new = RateLimiter::new(5);
    new.import_major("g1", &old.export_major("g1"));
    let mut permits = Vec::new();
    for _ in 0..5 {
        // the global share (5/s) allows five at once; the bucket had 7 left
        permits.push(
            timeout(Duration::from_millis(50), new.acquire(ROUTE, "g1"))
                .await
                .expect("slot"),
        );
    }
    // garbage is ignored, never a panic
    new.import_major("g1", "not json");
}

#[tokio::test]
async fn a_slots_next_holder_counts_the_previous_holders_last_second() {
    // given a writer that used its whole share (5 per second) just now
    let old = RateLimiter::new(5);
    for g in ["g1", "g2", "g3", "g4", "g5"] {
        old.acquire(ROUTE, g)
            .await
            .complete(&headers("roles", 10, 9, 1e9, 10.0));
    }
    // when the next holder of its slot starts from the handover
    let new = RateLimiter::new(5);
    new.import_global(&old.export_global());
    // then it waits for the second to pass instead of sending five more in it
    assert!(blocked(&new, ROUTE, "g6").await);
    let fresh = RateLimiter::new(5);
    assert!(!blocked(&fresh, ROUTE, "g6").await);
    new.import_global("garbage");
}

/// Headers carrying `value` (as Discord would write it, or as garbage) where seconds belong.
fn hostile(value: &str) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, v) in [
        ("x-ratelimit-bucket", "roles"),
        ("x-ratelimit-limit", "5"),
        ("x-ratelimit-remaining", "0"),
        ("x-ratelimit-reset", value),
        ("x-ratelimit-reset-after", value),
        ("retry-after", value),
    ] {
        if let Ok(v) = HeaderValue::from_str(v) {
            map.insert(name, v);
        }
    }
    map
}

/// Feeds one answer with `value` everywhere a duration goes (bucket headers, a 429's header and
/// body) through a limiter; returns the 429's wait.
fn feed(value: f64, text: &str) -> Duration {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let limiter = RateLimiter::new(50);
        let ok = Observed::from_headers(&hostile(text));
        limiter.acquire(ROUTE, "g1").await.complete(&ok);
        let map = hostile(text);
        let hit = Observed::from_headers(&map).rate_limited(&map, Some(value), Some(value > 0.0));
        let wait = hit.hit.as_ref().expect("a 429").retry_after;
        limiter.acquire(ROUTE, "g2").await.complete(&hit);
        // the handover of what was learned survives it too
        let handover = limiter.export_major("g1");
        RateLimiter::new(50).import_major("g1", &handover);
        RateLimiter::new(50).import_global(&limiter.export_global());
        wait
    })
}

#[test]
fn a_hostile_reset_after_neither_panics_nor_blocks_for_more_than_an_hour() {
    // 1.8e19 s fits a Duration but not an Instant: unclamped, `now + reset_after` panicked
    for value in [1.8e19, f64::MAX, f64::INFINITY] {
        assert_eq!(feed(value, &value.to_string()), MAX_DISCORD_WAIT);
    }
    for value in [f64::NAN, -1.0, f64::NEG_INFINITY, -0.0] {
        assert_eq!(feed(value, &value.to_string()), Duration::ZERO, "{value}");
    }
    assert_eq!(feed(2.5, "2.5"), Duration::from_millis(2500));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

    #[test]
    fn any_duration_from_discord_is_clamped_and_never_panics(
        value in proptest::prop_oneof![
            proptest::num::f64::ANY,
            proptest::prelude::Just(f64::NAN),
            proptest::prelude::Just(1.8e19),
            -1e30..1e30f64,
        ],
        garbage in "[ -~]{0,24}",
    ) {
        let wait = seconds(value);
        proptest::prop_assert!(wait <= MAX_DISCORD_WAIT);
        if value.is_nan() || value <= 0.0 {
            proptest::prop_assert_eq!(wait, Duration::ZERO);
        }
        proptest::prop_assert!(feed(value, &value.to_string()) <= MAX_DISCORD_WAIT);
        proptest::prop_assert!(feed(value, &garbage) <= MAX_DISCORD_WAIT);
    }
}

#[tokio::test]
async fn idle_buckets_are_forgotten_but_a_live_window_is_kept() {
    // given a live bucket whose window is used up, and many members' buckets whose windows passed
    let limiter = RateLimiter::new(100_000);
    let live = limiter.acquire(ROUTE, "guild").await;
    live.complete(&headers("roles", 1, 0, 1e9, 60.0));
    let member_route = "PUT /users/@me/applications/{application}/role-connection";
    for i in 0..(PRUNE_ABOVE + 10) {
        let permit = limiter.acquire(member_route, &format!("user:{i}")).await;
        permit.complete(&headers("conn", 5, 4, 1.0, 0.0));
    }
    // then the idle ones were dropped, so memory stays bounded
    let kept = limiter.lock().buckets.len();
    assert!(kept < PRUNE_ABOVE, "{kept} buckets kept");
    // and the used-up window is still honoured
    assert!(blocked(&limiter, ROUTE, "guild").await);
}

#[tokio::test]
async fn two_members_tokens_have_separate_buckets() {
    // given member A's bucket on the role-connection route is used up
    let limiter = RateLimiter::new(50);
    let route = "PUT /users/@me/applications/{application}/role-connection";
    let a = limiter.acquire(route, "user:a").await;
    a.complete(&headers("conn", 1, 0, 1e9, 60.0));
    // then A waits, and B is not held back by A's window
    assert!(blocked(&limiter, route, "user:a").await);
    assert!(!blocked(&limiter, route, "user:b").await);
}

#[tokio::test]
async fn a_handover_carries_the_members_token_buckets_too() {
    // given a writer that used up member A's bucket on the role-connection route
    let route = "PUT /users/@me/applications/{application}/role-connection";
    let old = RateLimiter::new(50);
    let a = old.acquire(route, "user:a").await;
    a.complete(&headers("conn", 1, 0, 1e9, 60.0));
    // when the guild's next writer starts from the handover
    let new = RateLimiter::new(50);
    new.import_major("g1", &old.export_major("g1"));
    // then A's window still holds, B's is free
    assert!(blocked(&new, route, "user:a").await);
    assert!(!blocked(&new, route, "user:b").await);
}
