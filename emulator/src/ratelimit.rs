//! Discord-style rate limits: a global limit per bot token plus fixed-window buckets per route
//! family and top-level resource (guild id), reported in `X-RateLimit-*` headers.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Limit {
    pub requests: u32,
    pub window_secs: f64,
}

impl Limit {
    pub const fn new(requests: u32, window_secs: f64) -> Self {
        Self {
            requests,
            window_secs,
        }
    }
}

/// `None` means unlimited (and no `X-RateLimit-*` headers for that bucket).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimits {
    /// Per bot token, across all routes.
    pub global: Option<Limit>,
    /// `PUT`/`DELETE /guilds/{g}/members/{u}/roles/{r}` share one bucket per guild.
    pub member_roles: Option<Limit>,
    pub member_patch: Option<Limit>,
    pub member_list: Option<Limit>,
    pub member_get: Option<Limit>,
    /// `GET`/`PUT /users/@me/applications/{app}/role-connection`, one bucket per user token;
    /// `None` falls back to `default`.
    pub role_connection: Option<Limit>,
    /// Every other route, one bucket per route and guild (per user token for `/users/@me`).
    pub default: Option<Limit>,
}

impl Default for RateLimits {
    /// The sizes Discord is reported to use.
    fn default() -> Self {
        Self {
            global: Some(Limit::new(50, 1.0)),
            member_roles: Some(Limit::new(10, 10.0)),
            member_patch: Some(Limit::new(10, 10.0)),
            member_list: Some(Limit::new(10, 10.0)),
            member_get: Some(Limit::new(5, 1.0)),
            role_connection: None,
            default: Some(Limit::new(50, 1.0)),
        }
    }
}

impl RateLimits {
    pub fn unlimited() -> Self {
        Self {
            global: None,
            member_roles: None,
            member_patch: None,
            member_list: None,
            member_get: None,
            role_connection: None,
            default: None,
        }
    }
}

/// Which bucket a request falls in (computed from method and path under `/api/v10`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Route {
    /// Route family, e.g. `member_roles` or `GET /guilds/{id}/roles`.
    family: String,
    /// Top-level resource: the guild id, or empty.
    major: String,
}

impl Route {
    /// `None` for routes Discord does not rate-limit here (OAuth2 token endpoints).
    pub(crate) fn classify(method: &str, api_path: &str) -> Option<Self> {
        let segments: Vec<&str> = api_path.trim_matches('/').split('/').collect();
        if segments.first() == Some(&"oauth2") {
            return None;
        }
        let major = match segments.as_slice() {
            ["guilds", g, ..] => (*g).to_owned(),
            _ => String::new(),
        };
        let family = match (method, segments.as_slice()) {
            ("PUT" | "DELETE", ["guilds", _, "members", _, "roles", _]) => {
                "member_roles".to_owned()
            }
            ("PATCH", ["guilds", _, "members", _]) => "member_patch".to_owned(),
            ("GET", ["guilds", _, "members"]) => "member_list".to_owned(),
            ("GET", ["guilds", _, "members", _]) => "member_get".to_owned(),
            ("GET" | "PUT", ["users", "@me", "applications", _, "role-connection"]) => {
                "role_connection".to_owned()
            }
            _ => {
                let template: Vec<&str> = segments
                    .iter()
                    .map(|s| {
                        if s.bytes().all(|b| b.is_ascii_digit()) {
                            "{id}"
                        } else {
                            s
                        }
                    })
                    .collect();
                format!("{method} /{}", template.join("/"))
            }
        };
        Some(Self { family, major })
    }

    fn limit(&self, limits: &RateLimits) -> Option<Limit> {
        match self.family.as_str() {
            "member_roles" => limits.member_roles,
            "member_patch" => limits.member_patch,
            "member_list" => limits.member_list,
            "member_get" => limits.member_get,
            "role_connection" => limits.role_connection.or(limits.default),
            _ => limits.default,
        }
    }

    /// The same route acting as a user (`Authorization: Bearer`): Discord limits a user's own
    /// routes per token, so each user gets their own bucket.
    pub(crate) fn for_user(mut self, token: &str) -> Self {
        if self.major.is_empty() {
            let digest = Sha256::digest(token.as_bytes());
            self.major = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        }
        self
    }

    /// Opaque and stable, like Discord's: the same family shares a hash across guilds.
    fn bucket_hash(&self) -> String {
        let digest = Sha256::digest(self.family.as_bytes());
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

/// What to put in the `X-RateLimit-*` headers.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct BucketState {
    pub(crate) limit: u32,
    pub(crate) remaining: u32,
    pub(crate) reset_at: f64,
    pub(crate) reset_after: f64,
    pub(crate) bucket: String,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Decision {
    Allowed(Option<BucketState>),
    Limited {
        retry_after: f64,
        global: bool,
        bucket: Option<BucketState>,
    },
}

#[derive(Debug, Default)]
pub(crate) struct Limiter {
    windows: HashMap<String, Window>,
}

#[derive(Clone, Copy, Debug)]
struct Window {
    reset_at: f64,
    used: u32,
}

impl Limiter {
    /// Checks global and bucket limits first and only then consumes from both, so a rejected
    /// request costs nothing.
    pub(crate) fn check(
        &mut self,
        limits: &RateLimits,
        route: &Route,
        token: Option<&str>,
        now: f64,
    ) -> Decision {
        let global = token
            .zip(limits.global)
            .map(|(t, l)| (format!("global:{t}"), l));
        // Per account, as Discord limits: two bots writing to one guild have a bucket each.
        let bucket = route.limit(limits).map(|l| {
            (
                format!("{}:{}:{}", route.family, route.major, token.unwrap_or("")),
                l,
            )
        });
        let bucket_state = |w: Window, l: Limit| BucketState {
            limit: l.requests,
            remaining: l.requests.saturating_sub(w.used),
            reset_at: w.reset_at,
            reset_after: (w.reset_at - now).max(0.0),
            bucket: route.bucket_hash(),
        };
        if let Some((key, limit)) = &bucket {
            let w = *self.window(key, *limit, now);
            if w.used >= limit.requests {
                return Decision::Limited {
                    retry_after: (w.reset_at - now).max(0.001),
                    global: false,
                    bucket: Some(bucket_state(w, *limit)),
                };
            }
        }
        if let Some((key, limit)) = &global {
            let w = *self.window(key, *limit, now);
            if w.used >= limit.requests {
                return Decision::Limited {
                    retry_after: (w.reset_at - now).max(0.001),
                    global: true,
                    bucket: None,
                };
            }
        }
        for (key, limit) in global.iter().chain(bucket.iter()) {
            self.window(key, *limit, now).used += 1;
        }
        Decision::Allowed(
            bucket.map(|(key, limit)| bucket_state(*self.window(&key, limit, now), limit)),
        )
    }

    pub(crate) fn reset(&mut self) {
        self.windows.clear();
    }

    /// The bucket's current window, opening a fresh one when the last has expired.
    fn window(&mut self, key: &str, limit: Limit, now: f64) -> &mut Window {
        let w = self.windows.entry(key.to_owned()).or_insert(Window {
            reset_at: now + limit.window_secs,
            used: 0,
        });
        if now >= w.reset_at {
            *w = Window {
                reset_at: now + limit.window_secs,
                used: 0,
            };
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_puts_and_deletes_share_one_bucket_per_guild() {
        let put = Route::classify("PUT", "/guilds/1/members/2/roles/3").expect("limited");
        let delete = Route::classify("DELETE", "/guilds/1/members/9/roles/8").expect("limited");
        let other_guild = Route::classify("PUT", "/guilds/7/members/2/roles/3").expect("limited");
        assert_eq!(put, delete);
        assert_ne!(put, other_guild);
        assert_eq!(put.bucket_hash(), other_guild.bucket_hash());
        assert_eq!(Route::classify("POST", "/oauth2/token"), None);
    }

    #[test]
    fn eleventh_role_write_in_a_window_is_limited_until_reset() {
        let mut limiter = Limiter::default();
        let limits = RateLimits::default();
        let route = Route::classify("PUT", "/guilds/1/members/2/roles/3").expect("limited");
        for i in 0..10 {
            let decision = limiter.check(&limits, &route, Some("t"), 100.0);
            assert!(matches!(decision, Decision::Allowed(Some(ref b)) if b.remaining == 9 - i));
        }
        let decision = limiter.check(&limits, &route, Some("t"), 101.0);
        assert!(
            matches!(decision, Decision::Limited { global: false, retry_after, .. } if (retry_after - 9.0).abs() < 1e-9)
        );
        assert!(matches!(
            limiter.check(&limits, &route, Some("t"), 110.0),
            Decision::Allowed(_)
        ));
    }

    #[test]
    fn another_bot_on_the_same_guild_has_a_bucket_of_its_own() {
        let mut limiter = Limiter::default();
        let limits = RateLimits::default();
        let route = Route::classify("PUT", "/guilds/1/members/2/roles/3").expect("limited");
        for _ in 0..10 {
            limiter.check(&limits, &route, Some("Bot a"), 100.0);
        }
        assert!(matches!(
            limiter.check(&limits, &route, Some("Bot a"), 100.0),
            Decision::Limited { global: false, .. }
        ));
        assert!(matches!(
            limiter.check(&limits, &route, Some("Bot b"), 100.0),
            Decision::Allowed(Some(ref b)) if b.remaining == 9
        ));
    }
}
