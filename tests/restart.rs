//! Restarting the self-hosted connector keeps everything: clients, secrets, links, admin token.

use connector_e2e::*;
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn a_restart_keeps_clients_links_secrets_and_the_generated_admin_token() {
    // given a connector that generated its own admin token, with a client and a linked member
    let h = Harness::start_with(Options {
        admin_token: None,
        ..Options::default()
    })
    .await;
    let token = h
        .generated_admin_token
        .clone()
        .expect("first start generates a token");
    h.setup_client().await;
    h.put_user("u-alice", &["members"]).await;
    h.link("u-alice", "alice").await;

    // when it restarts on the same database
    let h = h.restart(None).await;

    // then no new token is generated, the old one still works, and the data is all there
    assert_eq!(h.generated_admin_token, None);
    assert_eq!(
        h.admin_token, "",
        "the harness has no token until we give it the first one"
    );
    let mut h = h;
    h.admin_token = token;
    let user = h.get_user("u-alice").await;
    assert_eq!(user["link"]["discord_user_id"], h.discord_id("alice"));
    let (status, client) = h
        .api(Method::GET, &format!("/clients/{CLIENT}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(client["has_bot_token"], true);

    // and the encrypted bot token still decrypts: a group change reaches Discord
    h.put_user("u-alice", &["members", "pilots"]).await;
    assert_eq!(
        h.roles_on_discord("alice"),
        Some(names(&["Member", "Pilot"]))
    );

    // and secrets are not stored in plain text
    let raw = std::fs::read(&h.database).expect("database file");
    let needle = h.emu.bot_token().as_bytes();
    assert!(
        !raw.windows(needle.len()).any(|w| w == needle),
        "bot token in plain text on disk"
    );
}
