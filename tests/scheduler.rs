//! The self-hosted scheduler runs the default schedule's tasks for every client.

use std::time::Duration;

use connector::schedule::{default_schedule, run_scheduler};
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
        h.put_user("u-alice", &["members", "pilots"]).await["pending"],
        true
    );
    h.emu.clear_faults();

    // when the default schedule starts
    let scheduler = tokio::spawn(run_scheduler(
        h.app.clone(),
        default_schedule().unwrap(),
        Duration::ZERO,
    ));

    // then its first verify-groups run applies the change and leaves a report
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
    assert_eq!(runs["items"][0]["trigger"], "schedule", "{runs}");
}
