//! The rate-limit floor: the least time Discord's limits allow for a given set of calls.

use std::collections::BTreeMap;
use std::time::Duration;

/// A limit of `per` requests in each `window`.
#[derive(Clone, Copy)]
pub struct Bucket {
    pub per: u64,
    pub window: Duration,
}

/// The limits the bench configures in the emulator (Discord's documented and reported sizes).
pub struct Limits {
    pub global: Bucket,
    pub member_list: Bucket,
    pub member_roles: Bucket,
    pub member_patch: Bucket,
    pub member_get: Bucket,
}

pub const DISCORD_LIKE: Limits = Limits {
    global: Bucket {
        per: 50,
        window: Duration::from_secs(1),
    },
    member_list: Bucket {
        per: 1,
        window: Duration::from_secs(1),
    },
    member_roles: Bucket {
        per: 10,
        window: Duration::from_secs(10),
    },
    member_patch: Bucket {
        per: 10,
        window: Duration::from_secs(10),
    },
    member_get: Bucket {
        per: 5,
        window: Duration::from_secs(1),
    },
};

/// `n` requests through one bucket: the first window's worth goes at once, each further full
/// window waits for a reset.
fn bucket_floor(n: u64, b: Bucket) -> Duration {
    if n == 0 {
        return Duration::ZERO;
    }
    b.window * u32::try_from((n - 1) / b.per).unwrap_or(u32::MAX)
}

/// `n` calls through the bot's global bucket alone (calls spread over many guilds, whose route
/// buckets do not bind).
pub fn global_floor(n: u64, limits: &Limits) -> Duration {
    bucket_floor(n, limits.global)
}

/// Calls by route template (as in run reports) → the floor: the slowest bucket, since buckets
/// drain in parallel.
pub fn floor(calls: &BTreeMap<String, u64>, limits: &Limits) -> Duration {
    let get = |route: &str| calls.get(route).copied().unwrap_or(0);
    let list = get("GET /guilds/{guild}/members");
    let roles = get("PUT /guilds/{guild}/members/{user}/roles/{role}")
        + get("DELETE /guilds/{guild}/members/{user}/roles/{role}");
    let patch = get("PATCH /guilds/{guild}/members/{user}");
    let member_get = get("GET /guilds/{guild}/members/{user}");
    let total: u64 = calls.values().sum();
    [
        bucket_floor(total, limits.global),
        bucket_floor(list, limits.member_list),
        bucket_floor(roles, limits.member_roles),
        bucket_floor(patch, limits.member_patch),
        bucket_floor(member_get, limits.member_get),
    ]
    .into_iter()
    .max()
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slowest_bucket_sets_the_floor() {
        let calls = BTreeMap::from([
            ("GET /guilds/{guild}/members".to_owned(), 101),
            (
                "PUT /guilds/{guild}/members/{user}/roles/{role}".to_owned(),
                1000,
            ),
        ]);
        assert_eq!(floor(&calls, &DISCORD_LIKE), Duration::from_secs(990));
        let few = BTreeMap::from([("GET /guilds/{guild}/members".to_owned(), 2)]);
        assert_eq!(floor(&few, &DISCORD_LIKE), Duration::from_secs(1));
        assert_eq!(floor(&BTreeMap::new(), &DISCORD_LIKE), Duration::ZERO);
    }
}
