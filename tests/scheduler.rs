//! The self-hosted scheduler runs the default schedule's tasks for every client.

use std::time::Duration;

use connector::domain::TaskName;
use connector::schedule::{default_schedule, run_scheduler};
use connector::work::dispatch::dispatch_tick;
use connector_e2e::discord_emulator::Fault;
use connector_e2e::*;
use reqwest::Method;

#[tokio::test]
async fn the_scheduler_applies_pending_work_without_anyone_asking() {
    // given a group change that could not be applied at once
    let h = Harness::start().await;
    h.setup_client().await;
    h.put_user("u-alice", &["members"]).await;
    h.link("u-alice", "alice").await;
    h.emu
        .inject_fault(Fault::new("/roles/", 502, 100).with_method("PUT"));
    assert_eq!(
        h.put_user_nowait("u-alice", &["members", "pilots"]).await["pending"],
        true
    );
    h.wait_for_user("u-alice", |u| !u["last_error"].is_null())
        .await;
    h.emu.clear_faults();

    // when the default schedule starts
    let scheduler = tokio::spawn(run_scheduler(
        h.app.clone(),
        default_schedule().unwrap(),
        Duration::ZERO,
    ));

    // then its first verify-groups tick hands the client to a worker, which applies the change
    // and leaves a report
    let mut applied = false;
    for _ in 0..100 {
        if h.roles_on_discord("alice") == Some(names(&["Member", "Pilot"])) {
            applied = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    scheduler.abort();
    assert!(
        applied,
        "scheduled verify-groups did not apply the pending change"
    );
    let (_, runs) = h
        .api(Method::GET, &format!("/clients/{CLIENT}/runs"), None)
        .await;
    assert!(
        runs["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["trigger"] == "schedule" && r["counts"]["changed"] == 1),
        "{runs}"
    );
}

#[tokio::test]
async fn the_five_minute_tick_continues_a_weekly_run_that_stopped_at_its_limit() {
    // given a remote sync that stopped after one member
    let h = Harness::start().await;
    h.setup_client().await;
    for (u, d) in [("u-alice", "alice"), ("u-bob", "bob")] {
        h.put_user(u, &["members"]).await;
        h.link(u, d).await;
    }
    h.emu
        .set_member_roles(h.emu.guild_id(), &h.discord_id("bob"), Vec::<String>::new());
    let (_, first) = h
        .api(
            Method::POST,
            &format!("/clients/{CLIENT}/tasks/remote-sync-groups?max_members=1"),
            None,
        )
        .await;
    assert_eq!(first["complete"], false, "{first}");

    // when the verify-groups tick comes (as EventBridge or the self-hosted scheduler sends it)
    let summary = dispatch_tick(&h.app.dispatch(), TaskName::VerifyGroups, "tick-1")
        .await
        .unwrap();

    // then the unfinished weekly run (its work mark) is handed to a worker and continued to the end
    assert_eq!(summary.jobs, 1, "only the client with work: {summary:?}");
    assert!(h.settle().await);
    assert_eq!(h.roles_on_discord("bob"), Some(names(&["Member"])));
    let (_, runs) = h
        .api(Method::GET, &format!("/clients/{CLIENT}/runs"), None)
        .await;
    let last_sync = runs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["task"] == "remote-sync-groups" && r["trigger"] == "schedule")
        .expect("the continued run");
    assert_eq!(last_sync["complete"], true, "{runs}");
    assert!(
        last_sync["notes"][0]
            .as_str()
            .unwrap()
            .starts_with("resumed an unfinished run"),
        "{last_sync}"
    );
}

#[tokio::test]
async fn the_scheduler_prunes_what_is_past_retention_when_it_starts() {
    use connector::clock::Clock;
    use connector::store::contract::{audit_entry, run_report};

    // given a run report and an audit entry past the default retention (90 and 365 days), and
    // recent ones
    let h = Harness::start().await;
    h.setup_client().await;
    let now = h.clock.now();
    let day = 86_400;
    let store = &h.app.store;
    store
        .put_run(&run_report(CLIENT, "old", now - 91 * day))
        .await
        .unwrap();
    store
        .put_run(&run_report(CLIENT, "recent", now - 89 * day))
        .await
        .unwrap();
    store
        .append_audit(&[
            audit_entry(CLIENT, "old", now - 366 * day),
            audit_entry(CLIENT, "recent", now - 364 * day),
        ])
        .await
        .unwrap();

    // when the default schedule starts
    let scheduler = tokio::spawn(run_scheduler(
        h.app.clone(),
        default_schedule().unwrap(),
        Duration::ZERO,
    ));

    // then its first prune removes the old ones and keeps the rest
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let mut pruned = false;
    for _ in 0..100 {
        let (_, runs) = h
            .api(Method::GET, &format!("/clients/{CLIENT}/runs"), None)
            .await;
        if !ids(&runs).contains(&"old".to_owned()) {
            pruned = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    scheduler.abort();
    assert!(pruned, "the run past retention was not pruned");
    let (_, runs) = h
        .api(Method::GET, &format!("/clients/{CLIENT}/runs"), None)
        .await;
    assert!(ids(&runs).contains(&"recent".to_owned()), "{runs}");
    let (_, audit) = h
        .api(Method::GET, &format!("/clients/{CLIENT}/audit"), None)
        .await;
    let audit_ids = ids(&audit);
    assert!(audit_ids.contains(&"recent".to_owned()), "{audit}");
    assert!(!audit_ids.contains(&"old".to_owned()), "{audit}");
}
