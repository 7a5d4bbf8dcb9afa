//! Linked Roles from the member's side: claiming a linked role (server menu → Linked Roles) is
//! granted only to a member whose role connection meets the role's requirements, and the role is
//! taken back when their connection or the requirements change so that they no longer do.

mod support;

use discord_emulator::{AuditAction, ClaimRefused, LinkedRequirement};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{json, Harness, VERIFIER};

const LINKED_ROLE: &str = "Verified Officer";

/// The application registers `officer` (boolean) and `missions` (integer, at least), and
/// `username` joins the guild and authorizes `role_connections.write`; answers their token.
async fn member_with_role_connections(h: &Harness, username: &str) -> String {
    let records = json!([
        {"type": 7, "key": "officer", "name": "Officer", "description": "An officer on the site"},
        {"type": 2, "key": "missions", "name": "Missions", "description": "Missions flown"},
    ]);
    let path = format!(
        "/applications/{}/role-connections/metadata",
        h.emu.application_id()
    );
    let put = h
        .bot(Method::PUT, &path)
        .json(&records)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    let user = h.user(username);
    h.emu.add_member(&h.guild(), &user, None, []);
    let code = h
        .authorize_code(&user, "identify role_connections.write", VERIFIER)
        .await;
    let tokens = json(h.exchange(&code, VERIFIER).await).await;
    tokens["access_token"].as_str().unwrap().to_owned()
}

/// The member's own `PUT /users/@me/applications/{app}/role-connection`.
async fn put_connection(h: &Harness, token: &str, metadata: Value) {
    let response = h
        .http
        .put(format!(
            "{}/users/@me/applications/{}/role-connection",
            h.emu.api_base(),
            h.emu.application_id()
        ))
        .bearer_auth(token)
        .json(&json!({"platform_name": "Demo community", "platform_username": "u", "metadata": metadata}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// `POST /_emulator/guilds/{g}/roles/{r}/claim` with `{"user_id"}`.
async fn claim(h: &Harness, role: &str, user: &str) -> reqwest::Response {
    h.http
        .post(format!(
            "{}/_emulator/guilds/{}/roles/{role}/claim",
            h.emu.base_url(),
            h.guild()
        ))
        .json(&json!({"user_id": user}))
        .send()
        .await
        .unwrap()
}

fn holds(h: &Harness, user: &str, role: &str) -> bool {
    h.emu
        .member(&h.guild(), user)
        .is_some_and(|m| m.roles.contains(role))
}

#[tokio::test]
async fn a_claim_is_refused_unless_the_member_qualifies() {
    // given alice in the guild, not an officer, and bob not in the guild
    let h = support::start().await;
    let token = member_with_role_connections(&h, "alice").await;
    let (alice, bob, linked) = (h.user("alice"), h.user("bob"), h.role(LINKED_ROLE));

    // before any role connection, then with officer = 0: 403 50013, nothing granted
    let none = claim(&h, &linked, &alice).await;
    assert_eq!(none.status(), StatusCode::FORBIDDEN);
    put_connection(&h, &token, json!({"officer": "0"})).await;
    let refused = claim(&h, &linked, &alice).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body = json(refused).await;
    assert_eq!(body["code"], 50013, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("Linked Roles"),
        "{body}"
    );
    assert!(!holds(&h, &alice, &linked));

    // someone outside the guild, a role without requirements, an unknown role
    let outsider = claim(&h, &linked, &bob).await;
    assert_eq!(outsider.status(), StatusCode::NOT_FOUND);
    assert_eq!(json(outsider).await["code"], 10007);
    let plain = claim(&h, &h.role("Pilot"), &alice).await;
    assert_eq!(plain.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(plain).await["code"], 50035);
    let unknown = claim(&h, "999", &alice).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(json(unknown).await["code"], 10011);
    assert_eq!(
        h.emu.claim_linked_role(&h.guild(), &linked, &alice),
        Err(ClaimRefused::RequirementsNotMet)
    );
}

#[tokio::test]
async fn a_qualifying_member_claims_the_role_and_discord_shows_it_on_them() {
    // given alice is an officer on the site, as her role connection says
    let h = support::start().await;
    let token = member_with_role_connections(&h, "alice").await;
    let (guild, alice, linked) = (h.guild(), h.user("alice"), h.role(LINKED_ROLE));
    put_connection(&h, &token, json!({"officer": "1"})).await;
    assert_eq!(h.emu.qualifies(&guild, &linked, &alice), Some(true));

    // when she claims the linked role
    let granted = claim(&h, &linked, &alice).await;

    // then she holds it: in the answer, in the guild and in the bot's GET member
    assert_eq!(granted.status(), StatusCode::OK);
    assert_eq!(json(granted).await["roles"], json!([linked]));
    assert!(holds(&h, &alice, &linked));
    let member = h
        .bot(Method::GET, &format!("/guilds/{guild}/members/{alice}"))
        .send()
        .await
        .unwrap();
    assert_eq!(json(member).await["roles"], json!([linked]));
    let entry = h.emu.audit_log(&guild).pop().expect("audited");
    assert_eq!(entry.action, AuditAction::MemberRoleAdd);
    assert_eq!(entry.role_id.as_deref(), Some(linked.as_str()));

    // and claiming again keeps it
    assert_eq!(claim(&h, &linked, &alice).await.status(), StatusCode::OK);
    assert!(holds(&h, &alice, &linked));
}

#[tokio::test]
async fn the_dashboard_offers_claim_to_qualifying_members_and_its_form_grants_the_role() {
    let h = support::start().await;
    let token = member_with_role_connections(&h, "alice").await;
    let (guild, alice, linked) = (h.guild(), h.user("alice"), h.role(LINKED_ROLE));
    put_connection(&h, &token, json!({"officer": "1"})).await;
    let action = format!("/_emulator/guilds/{guild}/roles/{linked}/claim?then=dashboard");
    let page = || async {
        let url = format!("{}/", h.emu.base_url());
        h.http.get(url).send().await.unwrap().text().await.unwrap()
    };
    let before = page().await;
    assert!(
        before.contains(&format!("may claim it: {alice}")),
        "{before}"
    );
    assert!(before.contains(&action), "{before}");

    // the form posts like a browser's
    let posted = h
        .http
        .post(format!("{}{action}", h.emu.base_url()))
        .form(&[("user_id", alice.as_str())])
        .send()
        .await
        .unwrap();

    assert_eq!(posted.status(), StatusCode::SEE_OTHER);
    assert_eq!(posted.headers()["location"], "/");
    assert!(holds(&h, &alice, &linked));
    let after = page().await;
    assert!(after.contains("has it"), "{after}");
    assert!(!after.contains(&action), "{after}");
}

#[tokio::test]
async fn a_role_connection_that_no_longer_qualifies_loses_the_claimed_role() {
    // given alice claimed the linked role as an officer
    let h = support::start().await;
    let token = member_with_role_connections(&h, "alice").await;
    let (guild, alice, linked) = (h.guild(), h.user("alice"), h.role(LINKED_ROLE));
    put_connection(&h, &token, json!({"officer": "1"})).await;
    assert_eq!(claim(&h, &linked, &alice).await.status(), StatusCode::OK);

    // an update that still qualifies keeps it
    put_connection(&h, &token, json!({"officer": "1", "missions": "3"})).await;
    assert!(holds(&h, &alice, &linked));

    // when her role connection says she is no longer an officer
    put_connection(&h, &token, json!({"officer": "0", "missions": "3"})).await;

    // then Discord takes the role back, in the audit log too
    assert!(!holds(&h, &alice, &linked));
    let entry = h.emu.audit_log(&guild).pop().expect("audited");
    assert_eq!(entry.action, AuditAction::MemberRoleRemove);
    assert_eq!(entry.role_id.as_deref(), Some(linked.as_str()));

    // and so does an out-of-band change of the connection
    put_connection(&h, &token, json!({"officer": "1"})).await;
    h.emu
        .claim_linked_role(&guild, &linked, &alice)
        .expect("qualifies again");
    assert!(h
        .emu
        .set_role_connection(&alice, json!({"metadata": {"officer": "0"}})));
    assert!(!holds(&h, &alice, &linked));
}

#[tokio::test]
async fn requirements_that_change_so_the_member_no_longer_qualifies_take_the_role_back() {
    // given alice claimed the linked role as an officer with 3 missions
    let h = support::start().await;
    let token = member_with_role_connections(&h, "alice").await;
    let (guild, alice, linked) = (h.guild(), h.user("alice"), h.role(LINKED_ROLE));
    put_connection(&h, &token, json!({"officer": "1", "missions": "3"})).await;
    h.emu
        .claim_linked_role(&guild, &linked, &alice)
        .expect("qualifies");
    let requirements = |missions: &str| json!([{"key": "officer", "value": "1"}, {"key": "missions", "value": missions}]);
    let set = |body: Value| {
        let url = format!(
            "{}/_emulator/guilds/{guild}/roles/{linked}/linked-requirements",
            h.emu.base_url()
        );
        let http = h.http.clone();
        async move { http.put(url).json(&body).send().await.unwrap().status() }
    };

    // a stricter requirement she still meets keeps it
    assert_eq!(set(requirements("3")).await, StatusCode::NO_CONTENT);
    assert!(holds(&h, &alice, &linked));

    // when the server asks for 5 missions
    assert_eq!(set(requirements("5")).await, StatusCode::NO_CONTENT);

    // then she loses it, and the control API says nobody may claim it
    assert!(!holds(&h, &alice, &linked));
    let view: Value = h
        .http
        .get(format!(
            "{}/_emulator/guilds/{guild}/roles/{linked}/linked-requirements",
            h.emu.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["may_claim"], json!([]), "{view}");
    assert_eq!(view["requirements"], requirements("5"));
}

#[tokio::test]
async fn a_linked_role_given_by_the_bot_is_not_a_claim_and_stays() {
    // Bot writes on a linked role follow the usual hierarchy rules (it is not `managed`);
    // Discord documents no re-evaluation of such a grant, so the emulator leaves it alone.
    let h = support::start().await;
    let token = member_with_role_connections(&h, "alice").await;
    let (guild, alice, linked) = (h.guild(), h.user("alice"), h.role(LINKED_ROLE));
    let path = format!("/guilds/{guild}/members/{alice}/roles/{linked}");
    let put = h.bot(Method::PUT, &path).send().await.unwrap();
    assert_eq!(put.status(), StatusCode::NO_CONTENT);

    put_connection(&h, &token, json!({"officer": "0"})).await;
    assert!(h.emu.set_linked_requirements(
        &guild,
        &linked,
        vec![LinkedRequirement {
            key: "officer".into(),
            value: "1".into()
        }]
    ));

    assert!(holds(&h, &alice, &linked));
}

#[tokio::test]
async fn the_demos_verified_officer_is_a_linked_role_on_the_wire() {
    let h = support::start().await;
    let linked = h.role(LINKED_ROLE);
    let roles = json(
        h.bot(Method::GET, &format!("/guilds/{}/roles", h.guild()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let role = roles
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == linked.as_str())
        .cloned()
        .expect("listed");
    assert_eq!(role["managed"], false);
    assert_eq!(role["tags"], json!({"guild_connections": null}));
    let state = h.emu.state();
    let seed = state.guilds[0]
        .roles
        .iter()
        .find(|r| r.id == linked)
        .expect("in the state");
    assert_eq!(seed.linked_requirements[0].key, "officer");
}
