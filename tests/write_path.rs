//! The write path under concurrency: several instances on one database, a guild writer that
//! dies or loses its lease, a push during a scan, a slow Discord, refused writes, continuations.
//! Everything runs against the emulator over HTTP; Discord's limits are the emulator's defaults
//! (role writes 10 per 10 s per guild, global 50/s) where the test is about rate limits.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use connector::app::AppState;
use connector::clock::{Clock, ManualClock};
use connector::domain::TaskName;
use connector::secrecy::SecretString;
use connector::selfhost::{self, SelfHostConfig};
use connector::service::ServiceError;
use connector::tasks::{run_task, TaskOptions};
use connector::work::dispatch::dispatch_tick;
use connector::work::lease::LEASE_TTL_SECS;
use connector::work::worker::{run_job, JobOutcome};
use connector::work::writer::GuildWriter;
use connector::work::Job;
use connector_e2e::discord_emulator::RateLimits;
use connector_e2e::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

/// One more `serve` process on the harness's database: its own state, worker pool and router.
struct Instance {
    app: AppState,
    base: String,
    _server: JoinHandle<()>,
}

async fn instance(database: &Path, clock: &ManualClock) -> Instance {
    let mut hosted = selfhost::open(
        SelfHostConfig {
            database: database.to_owned(),
            secret_key: None,
            admin_token: Some(SecretString::from(ADMIN_TOKEN.to_owned())),
            discord_urls: connector::domain::client::DiscordUrlPolicy::AllowCustom,
            retention: Default::default(),
        },
        Arc::new(clock.clone()),
    )
    .await
    .expect("second instance opens the same database");
    hosted.start_workers(4);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = connector::http::router(hosted.state.clone());
    let server = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    Instance {
        app: hosted.state,
        base,
        _server: server,
    }
}

const FIRST: u64 = 400_000_000_000_000_000;

fn site_user(i: u64) -> String {
    format!("site-{i:05}")
}

/// `count` guild members carrying Member, imported as linked site users in group `members`, with
/// their roles learned by one remote sync.
async fn imported_guild(h: &Harness, count: u64) {
    let guild = h.emu.guild_id().to_owned();
    h.emu
        .add_members_bulk(&guild, FIRST, count, &[h.role("Member")]);
    let items: Vec<Value> = (0..count)
        .map(|i| json!({"user_id": site_user(i), "discord_user_id": (FIRST + i).to_string(), "groups": ["members"]}))
        .collect();
    // at most 250 users per import request
    for chunk in items.chunks(250) {
        let (status, body) = h
            .api(
                Method::POST,
                &format!("/clients/{CLIENT}/users/import"),
                Some(Value::Array(chunk.to_vec())),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let report = h.run_task("remote-sync-groups", false).await;
    assert_eq!(report["complete"], true, "{report}");
}

fn roles_of(h: &Harness, discord_id: u64) -> std::collections::BTreeSet<String> {
    let state = h.emu.state();
    let guild = state.guilds.first().expect("guild");
    h.emu
        .member(&guild.id, &discord_id.to_string())
        .map(|m| {
            m.roles
                .iter()
                .filter_map(|id| guild.roles.iter().find(|r| &r.id == id))
                .map(|r| r.name.clone())
                .collect()
        })
        .unwrap_or_default()
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn invalid_requests(h: &Harness) -> Vec<String> {
    h.emu
        .requests()
        .into_iter()
        .filter(|r| matches!(r.status, 401 | 403 | 429))
        .map(|r| format!("{} {} → {}", r.method, r.path, r.status))
        .collect()
}

async fn put_groups(http: &reqwest::Client, base: &str, user: &str, groups: &[&str]) -> Value {
    let resp = http
        .put(format!("{base}/api/v1/clients/{CLIENT}/users/{user}"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "groups": groups }))
        .send()
        .await
        .expect("push");
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.expect("json")
}

#[tokio::test]
async fn four_instances_on_one_database_converge_without_a_single_429() {
    // given Discord's limits, 24 linked members and four `serve` processes on one database
    let h = Harness::start_with(Options {
        rate_limits: RateLimits::default(),
        ..Options::default()
    })
    .await;
    h.setup_client().await;
    imported_guild(&h, 24).await;
    let mut bases = vec![h.base.clone()];
    let mut others = Vec::new();
    for _ in 0..3 {
        let i = instance(&h.database, &h.clock).await;
        bases.push(i.base.clone());
        others.push(i);
    }
    h.emu.clear_requests();

    // when the website pushes a new group for every member, spread over the instances at once
    let mut pushes = tokio::task::JoinSet::new();
    for i in 0..24u64 {
        let (http, base) = (h.http.clone(), bases[(i % 4) as usize].clone());
        pushes.spawn(async move {
            put_groups(&http, &base, &site_user(i), &["members", "pilots"]).await
        });
    }
    while let Some(answer) = pushes.join_next().await {
        // then every API answer comes at once: the change is recorded, not yet applied
        assert_eq!(answer.unwrap()["pending"], true);
    }

    // and every member gets the role, one writer spending the guild's bucket
    wait_until("every member to carry Pilot", || {
        (0..24).all(|i| roles_of(&h, FIRST + i).contains("Pilot"))
    })
    .await;
    assert_eq!(h.emu.rate_limited_count(), 0, "not a single 429");
    assert_eq!(invalid_requests(&h), Vec::<String>::new());
    let role_puts = h
        .emu
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.path.contains("/roles/"))
        .count();
    assert_eq!(role_puts, 24, "one write per member, none repeated");
    for app in std::iter::once(&h.app).chain(others.iter().map(|i| &i.app)) {
        assert!(settle(app).await);
    }
    let pending = h.app.store.list_pending(CLIENT, None, 10).await.unwrap();
    assert!(pending.items.is_empty(), "{:?}", pending.items);
}

#[tokio::test]
async fn a_writer_that_dies_loses_the_guild_within_the_lease_ttl_and_a_live_one_notices_a_takeover()
{
    let h = Harness::start().await;
    h.setup_client().await;
    h.settle().await;
    let client = h.app.store.get_client(CLIENT).await.unwrap().unwrap();

    // one writer per guild
    let first = GuildWriter::claim(&h.app, &client)
        .await
        .unwrap()
        .expect("the guild is free");
    assert!(
        GuildWriter::claim(&h.app, &client).await.unwrap().is_none(),
        "a second writer is refused while the first renews"
    );

    // another website's client on the same server with a bot of its own is not held back: Discord
    // counts that bot's writes against its own buckets
    let mut other = h.client_body();
    other["id"] = json!("other-site");
    other["bot_token"] = json!("another-bot-token.MTAwMDAwMDAwMDAwMDAwMDk5");
    let (status, body) = h.api(Method::POST, "/clients", Some(other)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let other = h.app.store.get_client("other-site").await.unwrap().unwrap();
    assert_eq!(other.guild_id, client.guild_id);
    let beside = GuildWriter::claim(&h.app, &other)
        .await
        .unwrap()
        .expect("a writer of another bot on the same guild");
    beside.release().await.unwrap();

    // a writer whose process died (no more renewals) loses the guild once the TTL has passed
    h.clock.advance(LEASE_TTL_SECS + 1);
    let second = GuildWriter::claim(&h.app, &client)
        .await
        .unwrap()
        .expect("taken over after the TTL");

    // and had the first one only stalled, its next renewal finds the lease gone: it stops writing
    let flags = first.lost_flags();
    wait_until("the stalled writer to notice", || {
        flags
            .iter()
            .any(|f| f.load(std::sync::atomic::Ordering::SeqCst))
    })
    .await;

    // a release frees the guild at once and hands the limiter's knowledge to the next holder
    second.release().await.unwrap();
    let bot = connector::app::bot_key(
        h.app
            .secrets
            .get_client_secret(CLIENT, connector::secrets::ClientSecretKind::BotToken)
            .await
            .unwrap()
            .as_ref(),
    );
    let name = connector::work::writer::guild_lease_name(&bot, &client.guild_id);
    let grant = h
        .app
        .store
        .acquire_lease(&name, "probe", h.clock.now(), 5)
        .await
        .unwrap()
        .expect("free at once after a release");
    let handover: Value = serde_json::from_str(grant.handover.as_deref().expect("handover"))
        .expect("the handover is the limiter's JSON");
    assert!(handover.get("buckets").is_some(), "{handover}");
}

#[tokio::test]
async fn a_run_killed_mid_scan_is_resumed_by_the_next_tick_from_its_checkpoint() {
    // given a guild of 2,500 members (three member-list pages) with drift in every page
    let h = Harness::start().await;
    h.setup_client().await;
    imported_guild(&h, 2500).await;
    let guild = h.emu.guild_id().to_owned();
    for i in (0..2500u64).step_by(100) {
        h.emu
            .set_member_roles(&guild, &(FIRST + i).to_string(), Vec::<String>::new());
    }
    h.emu.set_latency(Duration::from_millis(20));
    h.clock.advance(1);

    // when a remote sync is killed after its first checkpoint (crash, deploy, Lambda timeout)
    let app = h.app.clone();
    let running = tokio::spawn(async move {
        let options = TaskOptions {
            trigger: "admin".into(),
            ..TaskOptions::default()
        };
        run_task(&app, TaskName::RemoteSyncGroups, CLIENT, &options).await
    });
    let mut checkpoint = None;
    for _ in 0..600 {
        let runs = h.app.store.list_runs(CLIENT, None, 10).await.unwrap();
        checkpoint = runs
            .items
            .iter()
            .find(|r| r.task == TaskName::RemoteSyncGroups && !r.complete && r.cursor.is_some())
            .and_then(|r| r.cursor.clone());
        if checkpoint.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.abort();
    let _ = running.await;
    let checkpoint = checkpoint.expect("the run saved a checkpoint");

    // then right away its lease still holds the guild (the process might only be slow) …
    let busy = run_task(
        &h.app,
        TaskName::RemoteSyncGroups,
        CLIENT,
        &TaskOptions::default(),
    )
    .await;
    assert!(matches!(busy, Err(ServiceError::Busy(_))), "{busy:?}");

    // … and once the lease has expired the next tick resumes at the checkpoint and finishes
    h.clock.advance(LEASE_TTL_SECS + 1);
    let summary = dispatch_tick(&h.app.dispatch(), TaskName::VerifyGroups, "after-the-crash")
        .await
        .unwrap();
    assert!(summary.jobs >= 1);
    assert!(h.settle().await, "the resumed run finished");
    let runs = h.app.store.list_runs(CLIENT, None, 20).await.unwrap();
    let resumed = runs
        .items
        .iter()
        .find(|r| r.task == TaskName::RemoteSyncGroups && r.trigger == "schedule")
        .expect("a resumed run");
    assert!(resumed.complete, "{resumed:?}");
    assert_eq!(
        resumed.notes[0],
        format!("resumed an unfinished run at {checkpoint}")
    );
    for i in (0..2500u64).step_by(100) {
        assert!(roles_of(&h, FIRST + i).contains("Member"), "member {i}");
    }
}

#[tokio::test]
async fn a_push_during_a_scan_is_applied_and_never_overwritten_by_the_scans_snapshot() {
    // given a 1,500-member guild being scanned slowly, with drift to repair
    let h = Harness::start().await;
    h.setup_client().await;
    imported_guild(&h, 1500).await;
    let guild = h.emu.guild_id().to_owned();
    for i in (0..1500u64).step_by(60) {
        h.emu
            .set_member_roles(&guild, &(FIRST + i).to_string(), Vec::<String>::new());
    }
    h.emu.set_latency(Duration::from_millis(20));
    let app = h.app.clone();
    let scan = tokio::spawn(async move {
        let options = TaskOptions {
            trigger: "admin".into(),
            ..TaskOptions::default()
        };
        run_task(&app, TaskName::RemoteSyncGroups, CLIENT, &options).await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    // when the website changes members in the page being scanned and in a later one
    let pushed = [1u64, 2, 60, 1100, 1400];
    for i in pushed {
        let answer = h
            .put_user_nowait(&site_user(i), &["members", "pilots"])
            .await;
        assert_eq!(answer["pending"], true);
    }
    let report = scan.await.unwrap().expect("scan finished");
    assert!(report.complete, "{report:?}");
    assert!(h.settle().await);

    // then every pushed change is on Discord and in our record, and the drift was repaired
    for i in pushed {
        assert_eq!(
            roles_of(&h, FIRST + i),
            names(&["Member", "Pilot"]),
            "member {i}"
        );
        let user = h.get_user(&site_user(i)).await;
        assert_eq!(user["pending"], false, "{user}");
        let applied: Vec<String> =
            serde_json::from_value(user["link"]["applied_roles"].clone()).unwrap_or_default();
        assert_eq!(
            applied.len(),
            2,
            "the stored record matches Discord: {user}"
        );
    }
    for i in (0..1500u64).step_by(60) {
        assert!(roles_of(&h, FIRST + i).contains("Member"), "member {i}");
    }
}

#[tokio::test]
async fn with_a_slow_discord_the_api_answers_at_once_and_every_write_is_recorded_as_it_lands() {
    // given Discord answering each call after a second
    let h = Harness::start().await;
    h.setup_client().await;
    h.put_user("u-alice", &["members"]).await;
    h.link("u-alice", "alice").await;
    h.emu.set_latency(Duration::from_secs(1));

    // when the site grants two roles and reverts one of them while the writer is still at work
    let first = h
        .put_user_nowait("u-alice", &["members", "pilots", "officers"])
        .await;
    assert_eq!(first["pending"], true);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    h.put_user_nowait("u-alice", &["members", "officers"]).await;
    assert!(h.settle().await);

    // then Discord, our record and the audit trail agree
    assert_eq!(
        h.roles_on_discord("alice"),
        Some(names(&["Member", "Officer"]))
    );
    let user = h.get_user("u-alice").await;
    assert_eq!(user["pending"], false, "{user}");
    let (_, audit) = h
        .api(
            Method::GET,
            &format!("/clients/{CLIENT}/audit?limit=100"),
            None,
        )
        .await;
    let count = |action: &str, role: &str| {
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == action && e["detail"]["role_id"] == h.role(role))
            .count()
    };
    let pilot_added = count("role.add", "Pilot");
    assert_eq!(
        pilot_added,
        count("role.remove", "Pilot"),
        "every Pilot write on Discord is in the audit trail: {audit}"
    );
    assert_eq!(count("role.add", "Officer"), 1, "{audit}");
}

#[tokio::test]
async fn a_write_discord_refused_is_not_sent_again_until_something_relevant_changes() {
    // given the Pilot role moved above the bot in Discord, unknown to us (no roles/sync since)
    let h = Harness::start().await;
    h.setup_client().await;
    h.put_user("u-bob", &["members"]).await;
    h.link("u-bob", "bob").await;
    let guild = h.emu.guild_id().to_owned();
    assert!(h.emu.set_role_position(&guild, &h.role("Pilot"), 1000));
    h.emu.clear_requests();

    // when the site grants Pilot, then pushes the same groups again and again
    let user = h.put_user("u-bob", &["members", "pilots"]).await;
    assert_eq!(user["last_error"]["discord_code"], 50013, "{user}");
    assert_eq!(user["pending"], false, "a refusal is not retried");
    for _ in 0..3 {
        let again = h.put_user("u-bob", &["members", "pilots"]).await;
        assert_eq!(again["pending"], false, "{again}");
    }
    // then Discord saw the refused request once
    assert_eq!(invalid_requests(&h).len(), 1, "{:?}", invalid_requests(&h));

    // and an unrelated change still goes out, without the refused one
    h.put_user("u-bob", &["members", "pilots", "officers"])
        .await;
    assert_eq!(
        h.roles_on_discord("bob"),
        Some(names(&["Member", "Officer"]))
    );
    assert_eq!(invalid_requests(&h).len(), 1, "{:?}", invalid_requests(&h));

    // and after roles/sync the planner knows the hierarchy: still no refused request
    let (status, _) = h
        .api(Method::POST, &format!("/clients/{CLIENT}/roles/sync"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(h.settle().await);
    assert_eq!(invalid_requests(&h).len(), 1, "{:?}", invalid_requests(&h));
    assert_eq!(
        h.get_user("u-bob").await["last_error"]["code"],
        "role_above_bot"
    );

    // and once the role is back below the bot, a sync lets the write go out again
    assert!(h.emu.set_role_position(&guild, &h.role("Pilot"), 2));
    h.api(Method::POST, &format!("/clients/{CLIENT}/roles/sync"), None)
        .await;
    assert!(h.settle().await);
    assert_eq!(
        h.roles_on_discord("bob"),
        Some(names(&["Member", "Officer", "Pilot"]))
    );
}

#[tokio::test]
async fn a_job_out_of_time_queues_its_continuation_which_finishes_the_run() {
    let h = Harness::start().await;
    h.setup_client().await;
    imported_guild(&h, 1200).await;
    let guild = h.emu.guild_id().to_owned();
    h.emu
        .set_member_roles(&guild, &(FIRST + 1100).to_string(), Vec::<String>::new());

    // when a worker's job has no time left (its Lambda invocation is about to end)
    let job = Job::new(CLIENT, TaskName::RemoteSyncGroups, "schedule", "tick-1");
    let outcome = run_job(&h.app, &job, Some(Instant::now())).await.unwrap();

    // then it stops at once and queues its own continuation, which the pool runs to the end
    assert!(
        matches!(outcome, JobOutcome::Continued { .. }),
        "{outcome:?}"
    );
    assert!(h.settle().await);
    let runs = h.app.store.list_runs(CLIENT, None, 10).await.unwrap();
    assert!(
        runs.items
            .iter()
            .any(|r| r.trigger == "continuation" && r.complete),
        "{:?}",
        runs.items
    );
    assert!(roles_of(&h, FIRST + 1100).contains("Member"));
}

#[tokio::test]
async fn one_bot_writes_to_a_bounded_number_of_guilds_at_once_so_its_writers_stay_under_50_per_second(
) {
    use connector::secrets::ClientSecretKind;
    use connector::work::writer::{writer_share_per_second, BOT_WRITER_SLOTS};

    // given one more client (guild) than the bot has writer slots, all served by one bot token
    let h = Harness::start().await;
    let mut clients = Vec::new();
    for n in 0..=BOT_WRITER_SLOTS {
        let mut client = connector::store::contract::client(&format!("g{n}"));
        client.guild_id = format!("90000000000000{n:04}");
        h.app.store.create_client(&client).await.unwrap();
        h.app
            .secrets
            .put_client_secret(
                &client.id,
                ClientSecretKind::BotToken,
                &SecretString::from("one-bot-token".to_owned()),
            )
            .await
            .unwrap();
        clients.push(client);
    }

    // when every slot has a writer
    let mut writers = Vec::new();
    for client in &clients[..BOT_WRITER_SLOTS as usize] {
        writers.push(
            GuildWriter::claim(&h.app, client)
                .await
                .unwrap()
                .expect("a free slot"),
        );
    }

    // then the last one waits for a slot: all writers at their share stay under the bot's 50/s
    assert!(writer_share_per_second() * BOT_WRITER_SLOTS <= 50);
    let last = BOT_WRITER_SLOTS as usize;
    let eleventh = GuildWriter::claim(&h.app, &clients[last]).await;
    assert!(
        matches!(eleventh, Err(ServiceError::BotBusy)),
        "{eleventh:?}"
    );
    // and its guild is not left locked by the refused claim
    writers.pop().unwrap().release().await.unwrap();
    let claimed = GuildWriter::claim(&h.app, &clients[last]).await.unwrap();
    assert!(
        claimed.is_some(),
        "a released slot serves the next guild at once"
    );
}

#[tokio::test]
async fn a_removal_pushed_for_an_imported_link_before_any_sync_is_not_lost() {
    // given a migrated link whose roles on Discord we have never seen
    let h = Harness::start().await;
    h.setup_client().await;
    h.emu.add_member(
        h.emu.guild_id(),
        &h.discord_id("bob"),
        None,
        [h.role("Member"), h.role("Officer")],
    );
    let (status, report) = h
        .api(
            Method::POST,
            &format!("/clients/{CLIENT}/users/import"),
            Some(json!([{"user_id": "old-bob", "discord_user_id": h.discord_id("bob"), "groups": ["members", "officers"]}])),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert!(h.settle().await);

    // when the site takes a group away before the first remote sync
    let answer = h.put_user_nowait("old-bob", &["members"]).await;
    assert_eq!(answer["pending"], true, "{answer}");
    assert!(h.settle().await);

    // then the writer read the member first and removed the role
    assert_eq!(h.roles_on_discord("bob"), Some(names(&["Member"])));
    let user = h.get_user("old-bob").await;
    assert_eq!(user["pending"], false, "{user}");
    assert_eq!(
        user["link"]["applied_roles"],
        json!([h.role("Member")]),
        "{user}"
    );
}

#[tokio::test]
async fn two_clients_on_one_guild_both_get_their_changes_without_waiting_for_a_tick() {
    // given two websites' clients on the same guild, each with a linked member, and a slow Discord
    let h = Harness::start().await;
    h.setup_client().await;
    let mut second = h.client_body();
    second["id"] = json!("second");
    second["name"] = json!("Second community");
    let (status, body) = h.api(Method::POST, "/clients", Some(second)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = h
        .api(
            Method::PUT,
            &format!("/clients/second/roles/{}", h.role("Pilot")),
            Some(json!({"groups": ["pilots"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    h.put_user("u-alice", &["members"]).await;
    h.link("u-alice", "alice").await;
    let bob = h.discord_id("bob");
    h.emu.add_member(h.emu.guild_id(), &bob, None, []);
    let (status, body) = h
        .api(
            Method::POST,
            "/clients/second/users/import",
            Some(json!([{"user_id": "u-bob", "discord_user_id": bob, "groups": []}])),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(h.settle().await);
    h.emu.set_latency(Duration::from_millis(300));

    // when both websites push a change at the same moment (one writer per guild at a time)
    let (status, _) = h
        .api(
            Method::PUT,
            &format!("/clients/{CLIENT}/users/u-alice"),
            Some(json!({"groups": ["members", "officers"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = h
        .api(
            Method::PUT,
            "/clients/second/users/u-bob",
            Some(json!({"groups": ["pilots"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // then both reach Discord: the one that found the guild taken waited for it, not for a tick
    let settled = h.settle().await;
    let marks = h.app.store.list_work(None, 10).await.unwrap();
    assert!(
        settled,
        "both clients' work done without a tick: {:?}; alice {:?} bob {:?}",
        marks.items,
        h.get_user("u-alice").await,
        h.roles_on_discord("bob")
    );
    assert!(h.roles_on_discord("alice").unwrap().contains("Officer"));
    assert!(h.roles_on_discord("bob").unwrap().contains("Pilot"));
}
