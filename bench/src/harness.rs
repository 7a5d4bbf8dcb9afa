//! What the scenarios share: the emulator's Discord-like limits, a bench client and its
//! instances, reading the emulator's request log, and formatting.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use connector::app::AppState;
use connector::domain::Client;
use connector::secrecy::SecretString;
use connector::selfhost::{self, SelfHostConfig, SelfHosted};
use connector::service::clients::{create_client, ClientSecrets};
use connector::service::roles::map_role;
use connector::tasks::TaskOptions;
use discord_emulator::{Emulator, Limit, RateLimits, RecordedRequest};

use crate::floor::{self, DISCORD_LIKE};

pub type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Discord user ids of the bench's members start here (above every scenario id).
pub const FIRST_MEMBER: u64 = 500_000_000_000_000_000;
/// `CONNECTOR_SECRET_KEY` of every instance of a run (64 hex characters): they share one store,
/// so they must share the key that seals its secrets.
const SECRET_KEY_HEX: &str = "62656e63682d6f6e6c792d6b65792d6e6f742d7365637265742d2d2d2d2d2d2d";
pub const ADMIN_TOKEN: &str = "bench-admin-token-0123456789abcdefghij";

pub fn discord_like_limits() -> RateLimits {
    let l = |b: floor::Bucket| {
        Some(Limit::new(
            u32::try_from(b.per).unwrap_or(u32::MAX),
            b.window.as_secs_f64(),
        ))
    };
    RateLimits {
        global: l(DISCORD_LIKE.global),
        member_list: l(DISCORD_LIKE.member_list),
        member_roles: l(DISCORD_LIKE.member_roles),
        member_patch: l(DISCORD_LIKE.member_patch),
        member_get: l(DISCORD_LIKE.member_get),
        role_connection: None,
        default: Some(Limit::new(50, 1.0)),
    }
}

pub fn task_options() -> TaskOptions {
    TaskOptions {
        dry_run: false,
        deadline: None,
        trigger: "bench".into(),
        max_members: None,
    }
}

/// One self-hosted instance on `database`, as `serve` opens it (same key, same admin token for
/// every instance of a run).
pub async fn open_instance(database: &Path) -> BenchResult<SelfHosted> {
    Ok(selfhost::open(
        SelfHostConfig {
            database: database.to_owned(),
            secret_key: Some(SecretString::from(SECRET_KEY_HEX.to_owned())),
            admin_token: Some(SecretString::from(ADMIN_TOKEN.to_owned())),
            // The bench's clients talk to the emulator.
            discord_urls: connector::domain::client::DiscordUrlPolicy::AllowCustom,
            retention: Default::default(),
        },
        selfhost::system_clock(),
    )
    .await?)
}

/// A client of the emulator's application for `guild_id`.
pub fn bench_client(id: &str, guild_id: &str, emu: &Emulator, now: i64) -> Client {
    Client {
        id: id.into(),
        name: format!("Bench {id}"),
        guild_id: guild_id.into(),
        client_id: emu.application_id().into(),
        callback_url: "http://127.0.0.1/discord/sso/callback".into(),
        invite_link: None,
        nickname_template: None,
        unlink_policy: Default::default(),
        source_of_truth: Default::default(),
        return_to_origins: vec![],
        discord_api_base: emu.api_base(),
        discord_authorize_url: emu.authorize_url(),
        public_key: None,
        webhook_url: None,
        linked_roles: None,
        guild: Default::default(),
        created_at: now,
        updated_at: now,
    }
}

/// Creates the client (its roles are mirrored at once) and maps each `(role, group)`.
pub async fn add_client(
    app: &AppState,
    emu: &Emulator,
    id: &str,
    guild_id: &str,
    mappings: &[(&str, &str)],
) -> BenchResult<()> {
    let secrets = ClientSecrets {
        bot_token: Some(SecretString::from(emu.bot_token().to_owned())),
        client_secret: Some(SecretString::from(emu.client_secret().to_owned())),
        webhook_secret: None,
    };
    create_client(
        app,
        bench_client(id, guild_id, emu, app.clock.now()),
        secrets,
    )
    .await?;
    for (role, group) in mappings {
        map_role(
            app,
            id,
            role,
            BTreeSet::from([(*group).to_owned()]),
            "bench",
        )
        .await?;
    }
    Ok(())
}

/// Waits until the store's work index is empty (the writers are idle), at most `limit`;
/// returns whether it emptied.
pub async fn wait_idle(app: &AppState, limit: Duration) -> BenchResult<bool> {
    let t0 = Instant::now();
    loop {
        if app.store.list_work(None, 1).await?.items.is_empty() {
            return Ok(true);
        }
        if t0.elapsed() >= limit {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the emulator's request log says about a phase.
pub struct Traffic {
    /// Calls by route template, as run reports name them.
    pub calls: BTreeMap<String, u64>,
    /// 401, 403 and 429 answers (what Discord counts towards its invalid-request ban).
    pub invalid: u64,
    /// The most requests that reached the emulator within any one second (a sliding window over
    /// arrival times): above 50, the bot's global budget was overspent on our side.
    pub peak_per_second: usize,
}

pub fn traffic(requests: &[RecordedRequest]) -> Traffic {
    let mut calls = BTreeMap::new();
    let mut invalid = 0;
    for r in requests {
        *calls.entry(route_template(&r.method, &r.path)).or_insert(0) += 1;
        invalid += u64::from(matches!(r.status, 401 | 403 | 429));
    }
    let mut arrivals: Vec<f64> = requests.iter().map(|r| r.at).collect();
    arrivals.sort_by(f64::total_cmp);
    Traffic {
        calls,
        invalid,
        peak_per_second: peak_within(&arrivals, 1.0),
    }
}

/// The most of `sorted` times within any window of `width` (half-open).
fn peak_within(sorted: &[f64], width: f64) -> usize {
    let mut start = 0;
    let mut peak = 0;
    for (end, t) in sorted.iter().enumerate() {
        while sorted[start] <= t - width {
            start += 1;
        }
        peak = peak.max(end + 1 - start);
    }
    peak
}

/// `PUT /api/v10/guilds/1/members/2/roles/3` → `PUT /guilds/{guild}/members/{user}/roles/{role}`.
fn route_template(method: &str, path: &str) -> String {
    let path = path.strip_prefix("/api/v10").unwrap_or(path);
    let mut out = Vec::new();
    let mut previous = "";
    for segment in path.trim_matches('/').split('/') {
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push(match previous {
                "guilds" => "{guild}",
                "members" | "users" => "{user}",
                "roles" => "{role}",
                _ => "{id}",
            });
        } else {
            out.push(segment);
        }
        previous = segment;
    }
    format!("{method} /{}", out.join("/"))
}

/// The value at `pct` % of `sorted` (nearest rank); zero when empty.
pub fn percentile(sorted: &[Duration], pct: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (pct * sorted.len()).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

pub fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

pub fn millis(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

pub fn goal(met: bool) -> &'static str {
    if met {
        "✅"
    } else {
        "❌"
    }
}

pub fn calls_summary(calls: &BTreeMap<String, u64>) -> String {
    let short = |route: &str| match route {
        "GET /guilds/{guild}/members" => "list".to_owned(),
        "GET /guilds/{guild}/members/{user}" => "get member".to_owned(),
        "PUT /guilds/{guild}/members/{user}/roles/{role}" => "role PUT".to_owned(),
        "DELETE /guilds/{guild}/members/{user}/roles/{role}" => "role DELETE".to_owned(),
        "GET /guilds/{guild}/roles" => "roles".to_owned(),
        other => other.to_owned(),
    };
    if calls.is_empty() {
        return "none".to_owned();
    }
    calls
        .iter()
        .map(|(r, n)| format!("{} {n}", short(r)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Today (UTC) as `YYYY-MM-DD`, for the tables' headers.
pub fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or_default() as i64;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_named_as_run_reports_name_them() {
        assert_eq!(
            route_template("PUT", "/api/v10/guilds/1/members/2/roles/3"),
            "PUT /guilds/{guild}/members/{user}/roles/{role}"
        );
        assert_eq!(
            route_template("GET", "/api/v10/guilds/1/members"),
            "GET /guilds/{guild}/members"
        );
        assert_eq!(
            route_template("GET", "/api/v10/users/@me"),
            "GET /users/@me"
        );
    }

    #[test]
    fn the_peak_counts_the_busiest_second() {
        assert_eq!(peak_within(&[], 1.0), 0);
        assert_eq!(peak_within(&[0.0, 0.5, 0.99, 1.0, 1.2, 3.0], 1.0), 4);
        assert_eq!(peak_within(&[0.0, 2.0, 4.0], 1.0), 1);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<Duration> = (1..=20).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50), Duration::from_millis(10));
        assert_eq!(percentile(&v, 95), Duration::from_millis(19));
        assert_eq!(percentile(&v, 100), Duration::from_millis(20));
        assert_eq!(percentile(&[], 95), Duration::ZERO);
    }
}
