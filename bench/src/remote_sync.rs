//! `--scenario remote-sync`: the real remote-sync-groups task (run as the guild's writer) on
//! guilds of several sizes with drift, next to the original package's strategy (one GET per
//! linked member, then per-role writes).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use connector::app::AppState;
use connector::domain::TaskName;
use connector::service::import::{import_users, ImportItem};
use connector::tasks::run_task;
use discord_emulator::{Emulator, RateLimits, Scenario};

use crate::alloc;
use crate::counting_store::{CountingStore, StoreCounts};
use crate::floor::{floor, DISCORD_LIKE};
use crate::harness::{
    add_client, calls_summary, discord_like_limits, open_instance, secs, task_options, BenchResult,
    FIRST_MEMBER,
};
use crate::original;

const CLIENT: &str = "bench";

#[derive(clap::Args)]
pub struct Opts {
    /// remote-sync: guild sizes (linked members).
    #[arg(long, value_delimiter = ',', default_values_t = [1_000u64, 10_000, 100_000])]
    sizes: Vec<u64>,
    /// remote-sync: share of members whose managed roles drifted.
    #[arg(long, default_value_t = 0.01)]
    drift: f64,
    /// remote-sync: also run the original package's strategy for sizes up to this (it needs
    /// members / 5 seconds).
    #[arg(long, default_value_t = 1_000)]
    original_up_to: u64,
}

struct Outcome {
    members: u64,
    drifted: u64,
    calls: BTreeMap<String, u64>,
    rate_limited: u64,
    wall: Duration,
    floor: Duration,
    store: StoreCounts,
    peak_heap: usize,
}

pub async fn run(opts: &Opts, latency: Duration) -> BenchResult<()> {
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for &size in &opts.sizes {
        eprintln!("== remote-sync: {size} members");
        let (o, t) = bench_size(size, opts, latency).await?;
        ours.push(o);
        theirs.extend(t);
    }
    print_tables(opts, latency, &ours, &theirs);
    Ok(())
}

async fn bench_size(
    size: u64,
    opts: &Opts,
    latency: Duration,
) -> BenchResult<(Outcome, Option<Outcome>)> {
    let emu = Emulator::start(Scenario::demo()).await?;
    emu.set_rate_limits(RateLimits::unlimited());
    let guild = emu.guild_id().to_owned();
    let member_role = emu
        .role_id("Member")
        .ok_or("demo scenario has a Member role")?;
    emu.add_members_bulk(
        &guild,
        FIRST_MEMBER,
        size,
        std::slice::from_ref(&member_role),
    );

    let dir = tempfile::tempdir()?;
    // No worker pool: the wake-ups of the import wait in the inbox; the bench runs the task.
    let hosted = open_instance(&dir.path().join("bench.db")).await?;
    let counting = Arc::new(CountingStore::new(hosted.state.store.clone()));
    let app = AppState {
        store: counting.clone(),
        ..hosted.state.clone()
    };
    add_client(&app, &emu, CLIENT, &guild, &[(&member_role, "members")]).await?;
    let started = Instant::now();
    for chunk in (0..size).collect::<Vec<_>>().chunks(5_000) {
        let items = chunk
            .iter()
            .map(|i| ImportItem {
                user_id: format!("site-{i:07}"),
                discord_user_id: (FIRST_MEMBER + i).to_string(),
                groups: vec!["members".into()],
                attributes: BTreeMap::new(),
            })
            .collect();
        import_users(&app, CLIENT, items).await?;
    }
    eprintln!("   imported {size} links in {:.1?}", started.elapsed());

    // The first sync learns every imported member's live state (names, roles): a one-off.
    run_task(&app, TaskName::RemoteSyncGroups, CLIENT, &task_options()).await?;

    let drifted = drift(&emu, &guild, size, opts.drift);
    emu.set_rate_limits(discord_like_limits());
    emu.set_latency(latency);
    let measure = |calls: BTreeMap<String, u64>, limited_before: u64, wall, baseline| Outcome {
        members: size,
        drifted,
        floor: floor(&calls, &DISCORD_LIKE),
        calls,
        rate_limited: emu.rate_limited_count() - limited_before,
        wall,
        store: counting.counts(),
        peak_heap: alloc::peak().saturating_sub(baseline),
    };

    let limited_before = emu.rate_limited_count();
    counting.reset();
    let baseline = alloc::reset_peak();
    let t0 = Instant::now();
    let report = run_task(&app, TaskName::RemoteSyncGroups, CLIENT, &task_options()).await?;
    let ours = measure(report.calls, limited_before, t0.elapsed(), baseline);
    eprintln!("   ours: {:.1?} (floor {:.1?})", ours.wall, ours.floor);

    let theirs = if size <= opts.original_up_to {
        emu.set_rate_limits(RateLimits::unlimited());
        drift(&emu, &guild, size, opts.drift);
        emu.set_rate_limits(discord_like_limits());
        let limited_before = emu.rate_limited_count();
        counting.reset();
        let baseline = alloc::reset_peak();
        let t0 = Instant::now();
        let (calls, _repaired) = original::run(&app, CLIENT).await?;
        let o = measure(calls, limited_before, t0.elapsed(), baseline);
        eprintln!("   original: {:.1?} (floor {:.1?})", o.wall, o.floor);
        Some(o)
    } else {
        None
    };
    emu.shutdown().await;
    Ok((ours, theirs))
}

/// Takes the managed role from every 1/`share`-th member, out of band; returns how many.
fn drift(emu: &Emulator, guild: &str, size: u64, share: f64) -> u64 {
    let step = (1.0 / share).round().max(1.0) as u64;
    let mut n = 0;
    for i in (0..size).step_by(usize::try_from(step).unwrap_or(usize::MAX)) {
        emu.set_member_roles(guild, &(FIRST_MEMBER + i).to_string(), Vec::<String>::new());
        n += 1;
    }
    n
}

fn print_tables(opts: &Opts, latency: Duration, ours: &[Outcome], theirs: &[Outcome]) {
    println!(
        "### remote-sync-groups\n\n{:.0} % drift, {} ms latency, limits: global 50/s, member list 1/s, role PUT/DELETE 10/10 s, GET member 5/s\n",
        opts.drift * 100.0,
        latency.as_millis()
    );
    println!("| members | drifted | Discord calls by route | total calls | target calls | 429s | wall | rate-limit floor | wall / floor | store reads / writes (of which lease + work index) | peak heap |");
    println!("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for o in ours {
        let total: u64 = o.calls.values().sum();
        let target = (o.members + 2).div_ceil(1000) + o.drifted;
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {} / {} ({}) | {:.1} MiB |",
            o.members,
            o.drifted,
            calls_summary(&o.calls),
            total,
            target,
            o.rate_limited,
            secs(o.wall),
            secs(o.floor),
            o.wall.as_secs_f64() / o.floor.as_secs_f64().max(0.001),
            o.store.reads,
            o.store.writes,
            o.store.coordination,
            o.peak_heap as f64 / (1024.0 * 1024.0)
        );
    }
    println!("\nThe original package's strategy (one GET per linked member, then per-role writes), same emulator and limits:\n");
    println!("| members | Discord calls by route | total calls | 429s | wall | rate-limit floor |");
    println!("|---:|---|---:|---:|---:|---:|");
    for o in theirs {
        let total: u64 = o.calls.values().sum();
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            o.members,
            calls_summary(&o.calls),
            total,
            o.rate_limited,
            secs(o.wall),
            secs(o.floor)
        );
    }
    for o in ours
        .iter()
        .filter(|o| !theirs.iter().any(|t| t.members == o.members))
    {
        let gets = o.members;
        let floor = Duration::from_secs((gets - 1) / 5);
        println!(
            "| {} | get member {gets}, role PUT {} (not run) | {} | – | – | {} |",
            o.members,
            o.drifted,
            gets + o.drifted,
            secs(floor)
        );
    }
    println!();
}
