//! remote-sync-groups: the weekly comparison with the live guild.

use connector_e2e::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// alice (members, pilots) and bob (members) linked; request log cleared.
async fn two_linked() -> Harness {
    let h = Harness::start().await;
    h.setup_client().await;
    h.put_user("u-alice", &["members", "pilots"]).await;
    h.link("u-alice", "alice").await;
    h.put_user("u-bob", &["members"]).await;
    h.link("u-bob", "bob").await;
    h.emu.clear_requests();
    h
}

fn writes(h: &Harness) -> Vec<String> {
    h.emu
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[tokio::test]
async fn drift_is_repaired_and_members_already_right_cost_nothing() {
    // given a moderator took alice's Pilot role and gave her Officer, plus an unmanaged Recruit
    let h = two_linked().await;
    let alice = h.discord_id("alice");
    let roles = ["Member", "Officer", "Recruit"].map(|r| h.role(r));
    h.emu.set_member_roles(h.emu.guild_id(), &alice, roles);

    // when the weekly remote sync runs
    let report = h.run_task("remote-sync-groups", false).await;

    // then only alice is touched: Pilot back, Officer gone, Recruit (unmanaged) kept
    assert_eq!(
        h.roles_on_discord("alice"),
        Some(names(&["Member", "Pilot", "Recruit"]))
    );
    assert_eq!(writes(&h).len(), 2, "{:?}", writes(&h));
    assert_eq!(report["counts"]["changed"], 1, "{report}");
    assert_eq!(report["counts"]["unchanged"], 1);
    assert_eq!(report["complete"], true);
    // one list call for this small guild, no per-member GET
    assert_eq!(
        report["calls"]["GET /guilds/{guild}/members"], 1,
        "{report}"
    );
    assert!(report["calls"]
        .get("GET /guilds/{guild}/members/{user}")
        .is_none());
    // and the guild audit names the owner, whom no site user links (the bot is not counted)
    assert_eq!(report["guild_audit"]["unlinked"], 1);
    assert_eq!(
        report["guild_audit"]["unlinked_sample"],
        json!([h.discord_id("dave")])
    );
    assert_eq!(report["guild_audit"]["linked"], 2);

    // a second run finds nothing to do and writes nothing
    h.emu.clear_requests();
    let again = h.run_task("remote-sync-groups", false).await;
    assert_eq!(again["counts"]["unchanged"], 2, "{again}");
    assert!(writes(&h).is_empty());
}

#[tokio::test]
async fn a_linked_member_missing_from_the_guild_becomes_left_and_returns_later() {
    let h = two_linked().await;
    h.emu.remove_member(h.emu.guild_id(), &h.discord_id("bob"));

    let report = h.run_task("remote-sync-groups", false).await;

    assert_eq!(report["counts"]["left"], 1, "{report}");
    assert_eq!(h.get_user("u-bob").await["link"]["status"], "left");

    // bob rejoins on his own: the next sync re-activates the link and gives his roles back
    h.emu.add_member(
        h.emu.guild_id(),
        &h.discord_id("bob"),
        None,
        Vec::<String>::new(),
    );
    let report = h.run_task("remote-sync-groups", false).await;
    assert_eq!(report["counts"]["returned"], 1, "{report}");
    assert_eq!(h.get_user("u-bob").await["link"]["status"], "active");
    assert_eq!(h.roles_on_discord("bob"), Some(names(&["Member"])));
}

#[tokio::test]
async fn without_the_members_intent_it_falls_back_to_one_get_per_linked_member_and_says_so() {
    let h = two_linked().await;
    h.emu.set_members_intent(h.emu.guild_id(), false);
    h.emu
        .set_member_roles(h.emu.guild_id(), &h.discord_id("bob"), Vec::<String>::new());

    let report = h.run_task("remote-sync-groups", false).await;

    assert_eq!(h.roles_on_discord("bob"), Some(names(&["Member"])));
    assert_eq!(
        report["calls"]["GET /guilds/{guild}/members/{user}"], 2,
        "{report}"
    );
    assert!(
        report["notes"].to_string().contains("GUILD_MEMBERS"),
        "{report}"
    );
    assert!(
        report.get("guild_audit").is_none(),
        "no audit without the list"
    );
}

#[tokio::test]
async fn with_discord_as_source_of_truth_roles_become_groups_and_discord_is_not_written() {
    let h = two_linked().await;
    let (status, _) = h
        .api(
            Method::PATCH,
            &format!("/clients/{CLIENT}"),
            Some(json!({"source_of_truth": "discord"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // a moderator promoted bob to Officer and removed his Member role in Discord
    h.emu
        .set_member_roles(h.emu.guild_id(), &h.discord_id("bob"), [h.role("Officer")]);
    h.put_user("u-bob", &["members", "website-only"]).await;
    h.emu.clear_requests();

    let report = h.run_task("remote-sync-groups", false).await;

    assert!(writes(&h).is_empty(), "{:?}", writes(&h));
    let bob = h.get_user("u-bob").await;
    assert_eq!(bob["groups"], json!(["officers", "website-only"]), "{bob}");
    let change = report["group_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["user_id"] == "u-bob")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(change["added"], json!(["officers"]), "{report}");
    assert_eq!(change["removed"], json!(["members"]));
}

#[tokio::test]
async fn a_dry_run_plans_the_repairs_and_writes_nothing() {
    let h = two_linked().await;
    h.emu
        .set_member_roles(h.emu.guild_id(), &h.discord_id("bob"), Vec::<String>::new());

    let plan = h.run_task("remote-sync-groups", true).await;

    assert_eq!(plan["changes"][0]["user_id"], "u-bob", "{plan}");
    assert_eq!(plan["changes"][0]["add_roles"], json!([h.role("Member")]));
    assert!(writes(&h).is_empty());
    assert_eq!(h.roles_on_discord("bob"), Some(names(&[])));
    let (_, runs) = h
        .api(Method::GET, &format!("/clients/{CLIENT}/runs"), None)
        .await;
    assert!(runs["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["task"] != "remote-sync-groups"));
}

#[tokio::test]
async fn a_run_stopped_early_leaves_a_cursor_and_the_next_run_resumes_without_redoing_work() {
    // given 2,500 linked members (three member-list pages), one in fifty drifted
    let h = Harness::start().await;
    h.setup_client().await;
    let guild = h.emu.guild_id().to_owned();
    let member_role = h.role("Member");
    let first: u64 = 400_000_000_000_000_000;
    h.emu
        .add_members_bulk(&guild, first, 2500, std::slice::from_ref(&member_role));
    let items: Vec<Value> = (0..2500u64)
        .map(|i| json!({"user_id": format!("site-{i:05}"), "discord_user_id": (first + i).to_string(), "groups": ["members"]}))
        .collect();
    // at most 250 users per import request
    for chunk in items.chunks(250) {
        let (status, imported) = h
            .api(
                Method::POST,
                &format!("/clients/{CLIENT}/users/import"),
                Some(Value::Array(chunk.to_vec())),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{imported}");
    }
    h.settle().await;
    for i in (0..2500u64).step_by(50) {
        h.emu
            .set_member_roles(&guild, &(first + i).to_string(), Vec::<String>::new());
    }
    h.emu.clear_requests();

    // when a run is cut short after 1,200 members
    let (_, first_run) = h
        .api(
            Method::POST,
            &format!("/clients/{CLIENT}/tasks/remote-sync-groups?max_members=1200"),
            None,
        )
        .await;
    assert_eq!(first_run["complete"], false, "{first_run}");
    let cursor = first_run["cursor"].as_str().expect("cursor").to_owned();

    // then the next run starts exactly there
    let second = h.run_task("remote-sync-groups", false).await;
    assert_eq!(second["complete"], true, "{second}");
    let examined = |r: &Value| r["counts"]["examined"].as_u64().unwrap_or(0);
    assert_eq!(
        examined(&first_run) + examined(&second),
        2500,
        "every member examined once"
    );
    let changed = |r: &Value| r["counts"]["changed"].as_u64().unwrap_or(0);
    assert_eq!(
        changed(&first_run) + changed(&second),
        50,
        "every drifted member repaired once"
    );
    let lists: Vec<String> = h
        .emu
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/members"))
        .map(|r| r.query.unwrap_or_default())
        .collect();
    assert!(
        lists.iter().any(|q| q.contains(&format!("after={cursor}"))),
        "{lists:?}"
    );
    let role_writes = h
        .emu
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.path.contains("/roles/"))
        .count();
    assert_eq!(
        role_writes, 50,
        "one write per drifted member, none repeated"
    );
    // imported links learned their Discord names from the list, with no per-user GET
    assert!(h
        .emu
        .requests()
        .iter()
        .all(|r| !(r.method == "GET" && r.path.contains("/members/"))));
    let user = h.get_user("site-00001").await;
    assert_eq!(
        user["link"]["username"],
        format!("user{}", first + 1),
        "{user}"
    );
}

#[tokio::test]
async fn a_mapped_role_deleted_in_discord_is_reported_and_unmapped_not_retried() {
    let h = two_linked().await;
    h.emu.delete_role(h.emu.guild_id(), &h.role("Pilot"));

    // bob gets the pilots group: the role add answers 10011
    let bob = h.put_user("u-bob", &["members", "pilots"]).await;

    assert_eq!(bob["pending"], false, "not retried: {bob}");
    let (_, roles) = h
        .api(Method::GET, &format!("/clients/{CLIENT}/roles"), None)
        .await;
    let pilot = roles
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Pilot")
        .unwrap()
        .clone();
    assert_eq!(pilot["groups"], json!([]), "unmapped: {pilot}");
    let (_, audit) = h
        .api(Method::GET, &format!("/clients/{CLIENT}/audit"), None)
        .await;
    assert!(audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "role.unmap"));
}
