//! Joining members with a user's token, role changes under the hierarchy, nicknames and kicks.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::json;
use support::{json, start};

#[tokio::test]
async fn joining_answers_201_then_204_without_applying_the_body() {
    let h = start().await;
    let tokens = h.link("alice").await;
    let (guild, alice, member_role) = (h.guild(), h.user("alice"), h.role("Member"));
    let path = format!("/guilds/{guild}/members/{alice}");
    let body =
        json!({ "access_token": tokens["access_token"], "nick": "Al", "roles": [member_role] });

    let first = h
        .bot(Method::PUT, &path)
        .json(&body)
        .send()
        .await
        .expect("put");
    assert_eq!(first.status(), StatusCode::CREATED);
    let member = json(first).await;
    assert_eq!(member["user"]["id"], alice.as_str());
    assert_eq!(member["roles"], json!([member_role]));

    let officer = h.role("Officer");
    let again =
        json!({ "access_token": tokens["access_token"], "nick": "Other", "roles": [officer] });
    let second = h
        .bot(Method::PUT, &path)
        .json(&again)
        .send()
        .await
        .expect("put");
    assert_eq!(second.status(), StatusCode::NO_CONTENT);
    assert!(second.bytes().await.expect("body").is_empty());
    let stored = h.emu.member(&guild, &alice).expect("member");
    assert_eq!(stored.nick.as_deref(), Some("Al"));
    assert!(!stored.roles.contains(&officer));
}

#[tokio::test]
async fn banned_users_cannot_join() {
    let h = start().await;
    let tokens = h.link("erin").await;
    let path = format!("/guilds/{}/members/{}", h.guild(), h.user("erin"));

    let response = h
        .bot(Method::PUT, &path)
        .json(&json!({ "access_token": tokens["access_token"] }))
        .send()
        .await
        .expect("put");

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(json(response).await["code"], 40007);
}

#[tokio::test]
async fn another_users_token_is_an_invalid_oauth_token() {
    let h = start().await;
    let tokens = h.link("alice").await;
    let path = format!("/guilds/{}/members/{}", h.guild(), h.user("bob"));

    let response = h
        .bot(Method::PUT, &path)
        .json(&json!({ "access_token": tokens["access_token"] }))
        .send()
        .await
        .expect("put");

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(json(response).await["code"], 50025);
}

#[tokio::test]
async fn roles_at_or_above_the_bot_or_managed_are_refused() {
    let h = start().await;
    let (guild, bob) = (h.guild(), h.user("bob"));
    h.emu.add_member(&guild, &bob, None, []);

    for role in ["Admin", "Connector Bot", "Server Booster"] {
        let path = format!("/guilds/{guild}/members/{bob}/roles/{}", h.role(role));
        let response = h.bot(Method::PUT, &path).send().await.expect("put role");
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{role}");
        assert_eq!(json(response).await["code"], 50013, "{role}");
    }
    assert!(h.emu.member(&guild, &bob).expect("member").roles.is_empty());
}

#[tokio::test]
async fn single_role_add_and_remove_are_idempotent_and_audited() {
    let h = start().await;
    let (guild, bob, pilot) = (h.guild(), h.user("bob"), h.role("Pilot"));
    h.emu.add_member(&guild, &bob, None, []);
    let path = format!("/guilds/{guild}/members/{bob}/roles/{pilot}");

    for _ in 0..2 {
        let put = h
            .bot(Method::PUT, &path)
            .header("X-Audit-Log-Reason", "Linked%20role%20sync")
            .send()
            .await
            .expect("put");
        assert_eq!(put.status(), StatusCode::NO_CONTENT);
    }
    assert!(h
        .emu
        .member(&guild, &bob)
        .expect("member")
        .roles
        .contains(&pilot));
    let delete = h.bot(Method::DELETE, &path).send().await.expect("delete");
    assert_eq!(delete.status(), StatusCode::NO_CONTENT);

    assert!(h.emu.member(&guild, &bob).expect("member").roles.is_empty());
    let log = h.emu.audit_log(&guild);
    assert_eq!(log.len(), 3);
    assert_eq!(log[0].reason.as_deref(), Some("Linked role sync"));
}

#[tokio::test]
async fn unknown_member_and_unknown_role() {
    let h = start().await;
    let (guild, bob) = (h.guild(), h.user("bob"));

    let member = h
        .bot(Method::GET, &format!("/guilds/{guild}/members/{bob}"))
        .send()
        .await
        .expect("get");
    assert_eq!(member.status(), StatusCode::NOT_FOUND);
    assert_eq!(json(member).await["code"], 10007);

    h.emu.add_member(&guild, &bob, None, []);
    let role = h
        .bot(
            Method::PUT,
            &format!("/guilds/{guild}/members/{bob}/roles/999"),
        )
        .send()
        .await
        .expect("put");
    assert_eq!(role.status(), StatusCode::NOT_FOUND);
    assert_eq!(json(role).await["code"], 10011);

    let everyone = h
        .bot(
            Method::PUT,
            &format!("/guilds/{guild}/members/{bob}/roles/{guild}"),
        )
        .send()
        .await
        .expect("put");
    assert_eq!(json(everyone).await["code"], 10011);

    let guild_404 = h.bot(Method::GET, "/guilds/42").send().await.expect("get");
    assert_eq!(json(guild_404).await["code"], 10004);
}

#[tokio::test]
async fn the_owners_nickname_is_off_limits() {
    let h = start().await;
    let path = format!("/guilds/{}/members/{}", h.guild(), h.user("dave"));

    let response = h
        .bot(Method::PATCH, &path)
        .json(&json!({ "nick": "Boss" }))
        .send()
        .await
        .expect("patch");

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(json(response).await["code"], 50013);
}

#[tokio::test]
async fn patch_roles_is_a_full_replacement() {
    let h = start().await;
    let (guild, carol) = (h.guild(), h.user("carol"));
    let (member, pilot, booster) = (h.role("Member"), h.role("Pilot"), h.role("Server Booster"));
    h.emu
        .add_member(&guild, &carol, None, [member.clone(), booster.clone()]);
    let path = format!("/guilds/{guild}/members/{carol}");

    // The booster role is managed: keeping it is fine, listing it unchanged is no change.
    let body = json!({ "roles": [pilot, booster], "nick": "Caro" });
    let response = h
        .bot(Method::PATCH, &path)
        .json(&body)
        .send()
        .await
        .expect("patch");

    assert_eq!(response.status(), StatusCode::OK);
    let stored = h.emu.member(&guild, &carol).expect("member");
    assert_eq!(
        stored.roles,
        [pilot.clone(), booster.clone()].into_iter().collect()
    );
    assert_eq!(stored.nick.as_deref(), Some("Caro"));

    let drop_booster = h
        .bot(Method::PATCH, &path)
        .json(&json!({ "roles": [pilot] }))
        .send()
        .await
        .expect("patch");
    assert_eq!(json(drop_booster).await["code"], 50013);

    let long_nick = h
        .bot(Method::PATCH, &path)
        .json(&json!({ "nick": "x".repeat(33) }))
        .send()
        .await
        .expect("patch");
    assert_eq!(long_nick.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(long_nick).await["code"], 50035);
}

#[tokio::test]
async fn kicking_removes_the_member_but_never_the_owner() {
    let h = start().await;
    let (guild, bob) = (h.guild(), h.user("bob"));
    h.emu.add_member(&guild, &bob, None, []);

    let kick = h
        .bot(Method::DELETE, &format!("/guilds/{guild}/members/{bob}"))
        .send()
        .await
        .expect("kick");
    assert_eq!(kick.status(), StatusCode::NO_CONTENT);
    assert!(h.emu.member(&guild, &bob).is_none());

    let owner = h
        .bot(
            Method::DELETE,
            &format!("/guilds/{guild}/members/{}", h.user("dave")),
        )
        .send()
        .await
        .expect("kick");
    assert_eq!(json(owner).await["code"], 50013);
    let gone = h
        .bot(Method::DELETE, &format!("/guilds/{guild}/members/{bob}"))
        .send()
        .await
        .expect("kick");
    assert_eq!(json(gone).await["code"], 10007);
}
