//! `cargo run --release -p bench`: the real remote-sync-groups task against the Discord emulator
//! with Discord-like rate limits and latency, on guilds of several sizes with 1 % drift, next to
//! the original package's strategy (one GET per linked member, then per-role writes).

mod alloc;
mod counting_store;
mod floor;
mod original;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use connector::app::AppState;
use connector::domain::{Client, TaskName};
use connector::secrecy::SecretString;
use connector::selfhost::{self, SelfHostConfig};
use connector::service::clients::{create_client, ClientSecrets};
use connector::service::import::{import_users, ImportItem};
use connector::service::roles::map_role;
use connector::tasks::{run_task, TaskOptions};
use discord_emulator::{Emulator, Limit, RateLimits, Scenario};

use counting_store::CountingStore;
use floor::{floor, DISCORD_LIKE};

#[global_allocator]
static ALLOC: alloc::Tracking = alloc::Tracking;

const CLIENT: &str = "bench";
const FIRST_MEMBER: u64 = 500_000_000_000_000_000;

#[derive(Parser)]
#[command(about = "Benchmark the weekly remote sync against the Discord emulator")]
struct Args {
    /// Guild sizes (linked members).
    #[arg(long, value_delimiter = ',', default_values_t = [1_000u64, 10_000, 100_000])]
    sizes: Vec<u64>,
    /// Share of members whose managed roles drifted.
    #[arg(long, default_value_t = 0.01)]
    drift: f64,
    /// Emulated latency of every Discord request.
    #[arg(long, default_value_t = 30)]
    latency_ms: u64,
    /// Also run the original package's strategy for sizes up to this (it needs members/5 seconds).
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
    store_reads: u64,
    store_writes: u64,
    peak_heap: usize,
    repaired: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for &size in &args.sizes {
        eprintln!("== {size} members");
        let (o, t) = bench_size(size, &args).await?;
        ours.push(o);
        theirs.extend(t);
    }
    print_tables(&args, &ours, &theirs);
    Ok(())
}

fn discord_like_limits() -> RateLimits {
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
        default: Some(Limit::new(50, 1.0)),
    }
}

async fn bench_size(
    size: u64,
    args: &Args,
) -> Result<(Outcome, Option<Outcome>), Box<dyn std::error::Error>> {
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
    let hosted = selfhost::open(
        SelfHostConfig {
            database: dir.path().join("bench.db"),
            secret_key: None,
            admin_token: Some(SecretString::from("bench".to_owned())),
        },
        selfhost::system_clock(),
    )
    .await?;
    let counting = Arc::new(CountingStore::new(hosted.state.store.clone()));
    let app = AppState {
        store: counting.clone(),
        ..hosted.state.clone()
    };
    setup_client(&app, &emu, &member_role).await?;
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
    run_task(&app, TaskName::RemoteSyncGroups, CLIENT, &options()).await?;

    let drifted = drift(&emu, &guild, size, args.drift);
    emu.set_rate_limits(discord_like_limits());
    emu.set_latency(Duration::from_millis(args.latency_ms));
    let limited_before = emu.rate_limited_count();
    counting.reset();
    let baseline = alloc::reset_peak();
    let t0 = Instant::now();
    let report = run_task(&app, TaskName::RemoteSyncGroups, CLIENT, &options()).await?;
    let wall = t0.elapsed();
    let peak_heap = alloc::peak().saturating_sub(baseline);
    let ours = Outcome {
        members: size,
        drifted,
        floor: floor(&report.calls, &DISCORD_LIKE),
        calls: report.calls.clone(),
        rate_limited: emu.rate_limited_count() - limited_before,
        wall,
        store_reads: counting.reads.load(Ordering::Relaxed),
        store_writes: counting.writes.load(Ordering::Relaxed),
        peak_heap,
        repaired: report.counts.get("changed").copied().unwrap_or(0),
    };
    eprintln!(
        "   ours: {:.1?} (floor {:.1?}), {} repaired",
        ours.wall, ours.floor, ours.repaired
    );

    let theirs = if size <= args.original_up_to {
        emu.set_rate_limits(RateLimits::unlimited());
        drift(&emu, &guild, size, args.drift);
        emu.set_rate_limits(discord_like_limits());
        let limited_before = emu.rate_limited_count();
        counting.reset();
        let baseline = alloc::reset_peak();
        let t0 = Instant::now();
        let (calls, repaired) = original::run(&app, CLIENT).await?;
        let wall = t0.elapsed();
        let o = Outcome {
            members: size,
            drifted,
            floor: floor(&calls, &DISCORD_LIKE),
            calls,
            rate_limited: emu.rate_limited_count() - limited_before,
            wall,
            store_reads: counting.reads.load(Ordering::Relaxed),
            store_writes: counting.writes.load(Ordering::Relaxed),
            peak_heap: alloc::peak().saturating_sub(baseline),
            repaired,
        };
        eprintln!("   original: {:.1?} (floor {:.1?})", o.wall, o.floor);
        Some(o)
    } else {
        None
    };
    emu.shutdown().await;
    Ok((ours, theirs))
}

fn options() -> TaskOptions {
    TaskOptions {
        dry_run: false,
        deadline: None,
        trigger: "bench".into(),
        max_members: None,
    }
}

async fn setup_client(
    app: &AppState,
    emu: &Emulator,
    member_role: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let now = app.clock.now();
    let client = Client {
        id: CLIENT.into(),
        name: "Bench".into(),
        guild_id: emu.guild_id().into(),
        client_id: emu.application_id().into(),
        callback_url: "http://127.0.0.1/discord/sso/callback".into(),
        invite_link: None,
        nickname_template: None,
        unlink_policy: Default::default(),
        source_of_truth: Default::default(),
        return_to_origins: vec![],
        discord_api_base: emu.api_base(),
        discord_authorize_url: emu.authorize_url(),
        guild: Default::default(),
        created_at: now,
        updated_at: now,
    };
    let secrets = ClientSecrets {
        bot_token: Some(SecretString::from(emu.bot_token().to_owned())),
        client_secret: Some(SecretString::from(emu.client_secret().to_owned())),
    };
    create_client(app, client, secrets).await?;
    map_role(
        app,
        CLIENT,
        member_role,
        BTreeSet::from(["members".to_owned()]),
        "bench",
    )
    .await?;
    Ok(())
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

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn calls_summary(calls: &BTreeMap<String, u64>) -> String {
    let short = |route: &str| match route {
        "GET /guilds/{guild}/members" => "list".to_owned(),
        "GET /guilds/{guild}/members/{user}" => "get member".to_owned(),
        "PUT /guilds/{guild}/members/{user}/roles/{role}" => "role PUT".to_owned(),
        "DELETE /guilds/{guild}/members/{user}/roles/{role}" => "role DELETE".to_owned(),
        other => other.to_owned(),
    };
    calls
        .iter()
        .map(|(r, n)| format!("{} {n}", short(r)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_tables(args: &Args, ours: &[Outcome], theirs: &[Outcome]) {
    println!(
        "remote-sync-groups, {:.0} % drift, {} ms latency, limits: global 50/s, member list 1/s, role PUT/DELETE 10/10 s, GET member 5/s\n",
        args.drift * 100.0,
        args.latency_ms
    );
    println!("| members | drifted | Discord calls by route | total calls | target calls | 429s | wall | rate-limit floor | wall / floor | store reads / writes | peak heap |");
    println!("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for o in ours {
        let total: u64 = o.calls.values().sum();
        let target = (o.members + 2).div_ceil(1000) + o.drifted;
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {} / {} | {:.1} MiB |",
            o.members,
            o.drifted,
            calls_summary(&o.calls),
            total,
            target,
            o.rate_limited,
            secs(o.wall),
            secs(o.floor),
            o.wall.as_secs_f64() / o.floor.as_secs_f64().max(0.001),
            o.store_reads,
            o.store_writes,
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
}
