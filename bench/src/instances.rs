//! `--scenario instances`: K `serve` instances on one SQLite file, each with its worker pool and
//! the real router on its own port; a website pushes a group change for every linked member,
//! round-robin over the instances' APIs. Measures what Discord sees (429s, invalid requests,
//! calls) and when every member's roles are right in the emulator, against the rate-limit floor.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use connector::domain::TaskName;
use connector::service::import::{import_users, ImportItem};
use connector::tasks::run_task;
use discord_emulator::{Emulator, RateLimits, Scenario};
use tokio::task::JoinHandle;

use crate::floor::{floor, DISCORD_LIKE};
use crate::harness::{
    add_client, calls_summary, discord_like_limits, goal, millis, open_instance, percentile, secs,
    task_options, traffic, wait_idle, BenchResult, ADMIN_TOKEN, FIRST_MEMBER,
};

const CLIENT: &str = "bench";
const PUT_ROUTE: &str = "PUT /guilds/{guild}/members/{user}/roles/{role}";

#[derive(clap::Args)]
pub struct Opts {
    /// instances: numbers of `serve` instances on the same store.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 4, 16])]
    instances: Vec<usize>,
    /// instances: linked members whose groups the website changes.
    #[arg(long, default_value_t = 200)]
    members: u64,
    /// instances: PUTs the website keeps in flight.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

struct Row {
    instances: usize,
    members: u64,
    put_p50: Duration,
    put_p95: Duration,
    put_max: Duration,
    put_failures: u64,
    rate_limited: u64,
    invalid: u64,
    peak_per_second: usize,
    calls: BTreeMap<String, u64>,
    /// Push start → every member right in the emulator; `None` if it did not happen in time.
    converged: Option<Duration>,
    floor: Duration,
    writer_runs: usize,
}

pub async fn run(opts: &Opts, latency: Duration, workers: usize) -> BenchResult<()> {
    let mut rows = Vec::new();
    for &k in &opts.instances {
        eprintln!("== instances: {k} on one store, {} members", opts.members);
        rows.push(bench_instances(k, opts, latency, workers).await?);
    }
    print_table(opts, latency, workers, &rows);
    Ok(())
}

async fn bench_instances(
    k: usize,
    opts: &Opts,
    latency: Duration,
    workers: usize,
) -> BenchResult<Row> {
    let n = opts.members;
    let emu = Emulator::start(Scenario::demo()).await?;
    emu.set_rate_limits(RateLimits::unlimited());
    let guild = emu.guild_id().to_owned();
    let member_role = emu.role_id("Member").ok_or("demo has a Member role")?;
    let pilot_role = emu.role_id("Pilot").ok_or("demo has a Pilot role")?;
    emu.add_members_bulk(&guild, FIRST_MEMBER, n, std::slice::from_ref(&member_role));

    let dir = tempfile::tempdir()?;
    let db = dir.path().join("bench.db");
    let mut hosted = Vec::new();
    for _ in 0..k {
        hosted.push(open_instance(&db).await?);
    }
    let setup = hosted[0].state.clone();
    add_client(
        &setup,
        &emu,
        CLIENT,
        &guild,
        &[(&member_role, "members"), (&pilot_role, "pilots")],
    )
    .await?;
    let items = (0..n)
        .map(|i| ImportItem {
            user_id: user_id(i),
            discord_user_id: (FIRST_MEMBER + i).to_string(),
            groups: vec!["members".into()],
            attributes: BTreeMap::new(),
        })
        .collect();
    import_users(&setup, CLIENT, items).await?;
    // Learn every member's live roles once (a weekly sync would); pushes are then planned from
    // the store alone.
    run_task(&setup, TaskName::RemoteSyncGroups, CLIENT, &task_options()).await?;

    let mut servers: Vec<JoinHandle<()>> = Vec::new();
    let mut bases = Vec::new();
    for h in &mut hosted {
        h.start_workers(workers);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        bases.push(format!("http://{}", listener.local_addr()?));
        let router = connector::http::router(h.state.clone());
        servers.push(tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        }));
    }
    if !wait_idle(&setup, Duration::from_secs(30)).await? {
        eprintln!("   warning: work still marked after set-up");
    }

    emu.set_rate_limits(discord_like_limits());
    emu.set_latency(latency);
    emu.clear_requests();
    let limited_before = emu.rate_limited_count();
    let since = setup.clock.now();
    let t0 = Instant::now();
    let (mut latencies, put_failures) = push_all(&bases, n, opts.concurrency).await;
    latencies.sort();
    eprintln!(
        "   pushed {n} changes in {:.1?} ({put_failures} failed)",
        t0.elapsed()
    );

    let calls_floor = BTreeMap::from([(PUT_ROUTE.to_owned(), n)]);
    let target_floor = floor(&calls_floor, &DISCORD_LIKE);
    let limit = target_floor * 3 + Duration::from_secs(60);
    let converged = wait_converged(&emu, &guild, &pilot_role, n, t0, limit).await;
    eprintln!("   converged: {converged:.1?} (floor {target_floor:.1?})");
    // Let writers finish releasing before the request log is read.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let seen = traffic(&emu.requests());
    let writer_runs = setup
        .store
        .list_runs(CLIENT, None, 500)
        .await?
        .items
        .iter()
        .filter(|r| r.task == TaskName::VerifyGroups && r.started_at >= since)
        .count();

    for s in servers {
        s.abort();
    }
    let rate_limited = emu.rate_limited_count() - limited_before;
    emu.shutdown().await;
    Ok(Row {
        instances: k,
        members: n,
        put_p50: percentile(&latencies, 50),
        put_p95: percentile(&latencies, 95),
        put_max: latencies.last().copied().unwrap_or_default(),
        put_failures,
        rate_limited,
        invalid: seen.invalid,
        peak_per_second: seen.peak_per_second,
        calls: seen.calls,
        converged,
        floor: target_floor,
        writer_runs,
    })
}

fn user_id(i: u64) -> String {
    format!("site-{i:07}")
}

/// The website: `PUT /api/v1/clients/{c}/users/{u}` with the new groups for every member,
/// round-robin over `bases`, `concurrency` at a time. Returns each PUT's latency and how many
/// failed (non-200, or not `pending`).
async fn push_all(bases: &[String], n: u64, concurrency: usize) -> (Vec<Duration>, u64) {
    let http = reqwest::Client::new();
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (http, next, bases) = (http.clone(), next.clone(), bases.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0u64;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return (latencies, failures);
                }
                let base = &bases[(i as usize) % bases.len()];
                let url = format!("{base}/api/v1/clients/{CLIENT}/users/{}", user_id(i));
                let t = Instant::now();
                let answer = http
                    .put(url)
                    .bearer_auth(ADMIN_TOKEN)
                    .json(&serde_json::json!({"groups": ["members", "pilots"]}))
                    .send()
                    .await;
                let ok = match answer {
                    Ok(r) if r.status().is_success() => r
                        .json::<serde_json::Value>()
                        .await
                        .is_ok_and(|v| v["pending"] == true),
                    _ => false,
                };
                latencies.push(t.elapsed());
                failures += u64::from(!ok);
            }
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    for t in tasks {
        if let Ok((l, f)) = t.await {
            latencies.extend(l);
            failures += f;
        }
    }
    (latencies, failures)
}

/// Polls the emulator until members `0..n` all carry `role`; the time since `t0`, or `None`
/// after `limit`.
async fn wait_converged(
    emu: &Emulator,
    guild: &str,
    role: &str,
    n: u64,
    t0: Instant,
    limit: Duration,
) -> Option<Duration> {
    let wanted: BTreeSet<String> = (0..n).map(|i| (FIRST_MEMBER + i).to_string()).collect();
    loop {
        let right = emu
            .members(guild)
            .iter()
            .filter(|m| wanted.contains(&m.user_id) && m.roles.contains(role))
            .count();
        if right == wanted.len() {
            return Some(t0.elapsed());
        }
        if t0.elapsed() >= limit {
            eprintln!("   gave up: {right} of {n} members right after {limit:.0?}");
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn print_table(opts: &Opts, latency: Duration, workers: usize, rows: &[Row]) {
    println!(
        "### K instances on one store\n\nOne SQLite file, K `serve` instances (router + pool of {workers} workers each), {} members, a group change per member pushed round-robin over the instances, {} in flight; Discord-like limits, {} ms latency. Converged = first PUT sent → every member's roles right in the emulator; floor = {} role writes at 10 per 10 s.\n",
        opts.members,
        opts.concurrency,
        latency.as_millis(),
        opts.members
    );
    println!("| instances | members | PUT p50 / p95 / max | failed PUTs | 429s | invalid (401/403/429) | peak requests in 1 s | Discord calls by route | writer runs | converged | floor | converged / floor | goals: 0 × 429, p95 < 50 ms, ≤ 1.2 × floor |");
    println!("|---:|---:|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---|");
    for r in rows {
        let ratio = r
            .converged
            .map(|c| c.as_secs_f64() / r.floor.as_secs_f64().max(0.001));
        println!(
            "| {} | {} | {} / {} / {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} {} {} |",
            r.instances,
            r.members,
            millis(r.put_p50),
            millis(r.put_p95),
            millis(r.put_max),
            r.put_failures,
            r.rate_limited,
            r.invalid,
            r.peak_per_second,
            calls_summary(&r.calls),
            r.writer_runs,
            r.converged.map_or("not in time".to_owned(), secs),
            secs(r.floor),
            ratio.map_or("–".to_owned(), |x| format!("{x:.2}")),
            goal(r.rate_limited == 0),
            goal(r.put_p95 < Duration::from_millis(50)),
            goal(ratio.is_some_and(|x| x <= 1.2)),
        );
    }
    println!();
}
