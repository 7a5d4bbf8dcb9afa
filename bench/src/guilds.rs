//! `--scenario guilds`: one bot in 1 big and many small guilds, one client per guild, all in one
//! instance with its worker pool. Every guild gets a mapping change that needs a role write per
//! member; measures when each small guild is right in the emulator while the big one drains.
//!
//! The emulator's buckets are Discord's: per route and guild (`member_roles:<guild>`), plus the
//! global limit per bot token, so the guilds only share the 50/s global budget.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use connector::app::AppState;
use connector::domain::TaskName;
use connector::service::import::{import_users, ImportItem};
use connector::service::roles::map_role;
use connector::tasks::run_task;
use connector::work::dispatch::dispatch_tick;
use discord_emulator::{
    Emulator, RateLimits, Scenario, ScenarioGuild, ScenarioMember, ScenarioRole,
};

use crate::floor::{floor, global_floor, DISCORD_LIKE};
use crate::harness::{
    add_client, calls_summary, discord_like_limits, goal, open_instance, percentile, secs,
    task_options, traffic, wait_idle, BenchResult, FIRST_MEMBER,
};

const FIRST_GUILD: u64 = 400_000_000_000_000_000;
/// Role ids of a guild are its id plus these.
const BOT_ROLE: u64 = 1;
const MEMBER_ROLE: u64 = 2;
const PILOT_ROLE: u64 = 3;
/// Discord user ids of one guild's members: `FIRST_MEMBER + index * MEMBERS_PER_GUILD_SPAN + i`.
const MEMBERS_PER_GUILD_SPAN: u64 = 1_000_000;
/// The bot's MANAGE_ROLES | MANAGE_NICKNAMES (and the demo's other bits).
const BOT_PERMISSIONS: &str = "402653187";

#[derive(clap::Args)]
pub struct Opts {
    /// guilds: linked members of the big guild, each needing a role write.
    #[arg(long, default_value_t = 150)]
    big_members: u64,
    /// guilds: small guilds beside it.
    #[arg(long, default_value_t = 100)]
    small_guilds: u64,
    /// guilds: linked members of each small guild, each needing a role write.
    #[arg(long, default_value_t = 5)]
    small_members: u64,
    /// guilds: also run the verify-groups dispatcher every this many seconds, as the self-hosted
    /// scheduler does every 300 (0: no ticks, only the wake-ups of the changes).
    #[arg(long, default_value_t = 300)]
    tick_secs: u64,
    /// guilds: give up waiting after this many seconds (default: three 5-minute ticks and a
    /// minute).
    #[arg(long, default_value_t = 960)]
    guilds_timeout_secs: u64,
}

/// 429 answers: all of them, and those on the big guild's routes (a small guild's five writes
/// never fill its own role bucket, so its 429s are global ones).
struct Limited {
    total: u64,
    big: u64,
}

struct GuildUnderTest {
    client: String,
    guild: String,
    members: u64,
    first_member: u64,
    triggered: Option<Instant>,
    converged: Option<Duration>,
}

pub async fn run(opts: &Opts, latency: Duration, workers: usize) -> BenchResult<()> {
    let sizes: Vec<u64> = std::iter::once(opts.big_members)
        .chain((0..opts.small_guilds).map(|_| opts.small_members))
        .collect();
    eprintln!(
        "== guilds: 1 × {} + {} × {} members, one bot, {workers} workers",
        opts.big_members, opts.small_guilds, opts.small_members
    );
    let emu = Emulator::start(scenario(&sizes)).await?;
    emu.set_rate_limits(RateLimits::unlimited());
    let dir = tempfile::tempdir()?;
    let mut hosted = open_instance(&dir.path().join("bench.db")).await?;
    let app = hosted.state.clone();

    let mut guilds = Vec::new();
    for (index, &members) in sizes.iter().enumerate() {
        let g = setup_guild(&app, &emu, index as u64, members).await?;
        guilds.push(g);
    }
    eprintln!("   set up {} clients", guilds.len());
    hosted.start_workers(workers);
    if !wait_idle(&app, Duration::from_secs(60)).await? {
        eprintln!("   warning: work still marked after set-up");
    }

    emu.set_rate_limits(discord_like_limits());
    emu.set_latency(latency);
    emu.clear_requests();
    let limited_before = emu.rate_limited_count();
    let t0 = Instant::now();
    let ticker = (opts.tick_secs > 0).then(|| {
        let (dispatch, period) = (app.dispatch(), Duration::from_secs(opts.tick_secs));
        tokio::spawn(async move {
            for n in 1.. {
                tokio::time::sleep(period).await;
                let _ =
                    dispatch_tick(&dispatch, TaskName::VerifyGroups, &format!("bench-{n}")).await;
            }
        })
    });
    // The big guild first, so it is draining when the small ones change.
    for g in &mut guilds {
        let pilot = role_id(&g.guild, PILOT_ROLE);
        map_role(
            &app,
            &g.client,
            &pilot,
            BTreeSet::from(["members".to_owned()]),
            "bench",
        )
        .await?;
        g.triggered = Some(Instant::now());
    }
    eprintln!("   triggered every guild in {:.1?}", t0.elapsed());
    wait_converged(
        &emu,
        &mut guilds,
        Duration::from_secs(opts.guilds_timeout_secs),
    )
    .await;
    if let Some(t) = ticker {
        t.abort();
    }
    let requests = emu.requests();
    let seen = traffic(&requests);
    let big_prefix = format!("/api/v10/guilds/{}/", guilds[0].guild);
    let limited = Limited {
        total: emu.rate_limited_count() - limited_before,
        big: requests
            .iter()
            .filter(|r| r.status == 429 && r.path.starts_with(&big_prefix))
            .count() as u64,
    };
    emu.shutdown().await;
    print_table(opts, latency, workers, &guilds, &seen, &limited);
    Ok(())
}

fn role_id(guild: &str, offset: u64) -> String {
    (guild.parse::<u64>().unwrap_or_default() + offset).to_string()
}

/// One application (the demo's) in one guild per size; each guild has a bot role above Member
/// and Pilot, the bot, an owner and `size` members holding Member.
fn scenario(sizes: &[u64]) -> Scenario {
    let demo = Scenario::demo();
    let owner = demo
        .first_guild()
        .map(|g| g.owner_id.clone())
        .unwrap_or_default();
    let bot = demo.application.bot_user.id.clone();
    let guilds = (0..sizes.len() as u64)
        .map(|index| {
            let id = (FIRST_GUILD + index * 10).to_string();
            let mut bot_role = ScenarioRole::new(role_id(&id, BOT_ROLE), "Connector Bot", 10);
            bot_role.managed = true;
            bot_role.permissions = BOT_PERMISSIONS.to_owned();
            ScenarioGuild {
                name: format!("Guild {index}"),
                owner_id: owner.clone(),
                members_intent: true,
                roles: vec![
                    ScenarioRole::new(id.clone(), "@everyone", 0),
                    bot_role,
                    ScenarioRole::new(role_id(&id, MEMBER_ROLE), "Member", 3),
                    ScenarioRole::new(role_id(&id, PILOT_ROLE), "Pilot", 4),
                ],
                members: vec![
                    ScenarioMember {
                        user_id: bot.clone(),
                        nick: None,
                        roles: vec![role_id(&id, BOT_ROLE)],
                    },
                    ScenarioMember {
                        user_id: owner.clone(),
                        nick: None,
                        roles: vec![],
                    },
                ],
                banned: vec![],
                id,
            }
        })
        .collect();
    Scenario { guilds, ..demo }
}

/// The client of guild `index`: members added in the emulator, linked by import, Member mapped
/// to `members`, and their live roles learned once by a remote sync (run here, unlimited).
async fn setup_guild(
    app: &AppState,
    emu: &Emulator,
    index: u64,
    members: u64,
) -> BenchResult<GuildUnderTest> {
    let guild = (FIRST_GUILD + index * 10).to_string();
    let client = if index == 0 {
        "big".to_owned()
    } else {
        format!("small-{index:03}")
    };
    let first_member = FIRST_MEMBER + index * MEMBERS_PER_GUILD_SPAN;
    let member_role = role_id(&guild, MEMBER_ROLE);
    emu.add_members_bulk(
        &guild,
        first_member,
        members,
        std::slice::from_ref(&member_role),
    );
    add_client(app, emu, &client, &guild, &[(&member_role, "members")]).await?;
    let items = (0..members)
        .map(|i| ImportItem {
            user_id: format!("site-{i:05}"),
            discord_user_id: (first_member + i).to_string(),
            groups: vec!["members".into()],
            attributes: BTreeMap::new(),
        })
        .collect();
    import_users(app, &client, items).await?;
    run_task(app, TaskName::RemoteSyncGroups, &client, &task_options()).await?;
    Ok(GuildUnderTest {
        client,
        guild,
        members,
        first_member,
        triggered: None,
        converged: None,
    })
}

/// Polls the emulator until every guild's members carry its Pilot role, or `limit` passes.
async fn wait_converged(emu: &Emulator, guilds: &mut [GuildUnderTest], limit: Duration) {
    let t0 = Instant::now();
    loop {
        for g in guilds.iter_mut().filter(|g| g.converged.is_none()) {
            let pilot = role_id(&g.guild, PILOT_ROLE);
            let wanted = g.first_member..g.first_member + g.members;
            let right = emu
                .members(&g.guild)
                .iter()
                .filter(|m| {
                    m.user_id
                        .parse::<u64>()
                        .is_ok_and(|id| wanted.contains(&id))
                        && m.roles.contains(&pilot)
                })
                .count() as u64;
            if right == g.members {
                g.converged = g.triggered.map(|t| t.elapsed());
            }
        }
        let done = guilds.iter().filter(|g| g.converged.is_some()).count();
        if done == guilds.len() {
            return;
        }
        if t0.elapsed() >= limit {
            eprintln!(
                "   gave up after {limit:.0?}: {done} of {} guilds right",
                guilds.len()
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn print_table(
    opts: &Opts,
    latency: Duration,
    workers: usize,
    guilds: &[GuildUnderTest],
    seen: &crate::harness::Traffic,
    limited: &Limited,
) {
    let (big, small) = guilds.split_first().expect("the big guild is first");
    let mut small_times: Vec<Duration> = small.iter().filter_map(|g| g.converged).collect();
    small_times.sort();
    let big_floor = floor(
        &BTreeMap::from([(
            "PUT /guilds/{guild}/members/{user}/roles/{role}".to_owned(),
            big.members,
        )]),
        &DISCORD_LIKE,
    );
    // Every small guild's writes through the bot's global 50/s (their own buckets never bind).
    let small_floor = global_floor(small.iter().map(|g| g.members).sum(), &DISCORD_LIKE);
    let all_small = small_times.len() == small.len();
    let small_max = all_small.then(|| small_times.last().copied()).flatten();
    let show = |d: Option<Duration>| d.map_or("not in time".to_owned(), secs);
    println!(
        "### One bot, 1 big + {} small guilds\n\nOne instance, pool of {workers} workers; a mapping change per guild needing one role write per member (big first, then the small ones); Discord-like limits per route and guild, global 50/s per bot token; {} ms latency; verify-groups ticks every {}. Times from each guild's change to its members being right in the emulator; gave up after {} s. Small floor = all small guilds' writes at the global 50/s.\n",
        opts.small_guilds,
        latency.as_millis(),
        if opts.tick_secs == 0 { "– (none)".to_owned() } else { format!("{} s", opts.tick_secs) },
        opts.guilds_timeout_secs,
    );
    println!("| big guild members | big converged / floor | small guilds (members each) | small converged | small min / p50 / max | small floor | 429s (big guild / small guilds) | invalid | peak requests in 1 s | Discord calls by route | goals: 0 × 429, small max ≤ 1.2 × small floor |");
    println!("|---:|---:|---:|---:|---|---:|---:|---:|---:|---|---|");
    println!(
        "| {} | {} / {} | {} ({}) | {} of {} | {} / {} / {} | {} | {} ({} / {}) | {} | {} | {} | {} {} |",
        big.members,
        show(big.converged),
        secs(big_floor),
        small.len(),
        opts.small_members,
        small_times.len(),
        small.len(),
        show(small_times.first().copied()),
        show((!small_times.is_empty()).then(|| percentile(&small_times, 50))),
        show(small_max),
        secs(small_floor),
        limited.total,
        limited.big,
        limited.total - limited.big,
        seen.invalid,
        seen.peak_per_second,
        calls_summary(&seen.calls),
        goal(limited.total == 0),
        goal(small_max.is_some_and(|m| m.as_secs_f64() <= 1.2 * small_floor.as_secs_f64().max(1.0))),
    );
    println!();
}
