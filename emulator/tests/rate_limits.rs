//! Rate-limit headers, the shared member-role bucket and the global limit.

mod support;

use discord_emulator::{Limit, RateLimits};
use reqwest::{Method, StatusCode};
use support::{json, start};

#[tokio::test]
async fn responses_carry_bucket_headers() {
    let h = start().await;
    h.emu.set_rate_limits(RateLimits::default());

    let response = h
        .bot(Method::GET, &format!("/guilds/{}/roles", h.guild()))
        .send()
        .await
        .expect("roles");

    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    for name in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-ratelimit-reset-after",
        "x-ratelimit-bucket",
    ] {
        assert!(headers.contains_key(name), "{name} missing");
    }
    assert_eq!(headers["x-ratelimit-limit"], "50");
    assert_eq!(headers["x-ratelimit-remaining"], "49");
}

#[tokio::test]
async fn role_puts_and_deletes_share_a_bucket_of_ten_per_guild() {
    let h = start().await;
    h.emu.set_rate_limits(RateLimits::default());
    let (guild, bob, pilot) = (h.guild(), h.user("bob"), h.role("Pilot"));
    h.emu.add_member(&guild, &bob, None, []);
    let path = format!("/guilds/{guild}/members/{bob}/roles/{pilot}");

    for i in 0..10 {
        let method = if i % 2 == 0 {
            Method::PUT
        } else {
            Method::DELETE
        };
        let response = h.bot(method, &path).send().await.expect("role write");
        assert_eq!(response.status(), StatusCode::NO_CONTENT, "request {i}");
    }
    let limited = h.bot(Method::PUT, &path).send().await.expect("role write");

    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()["x-ratelimit-scope"], "user");
    assert!(limited.headers().contains_key("retry-after"));
    let body = json(limited).await;
    assert_eq!(body["global"], false);
    let retry_after = body["retry_after"].as_f64().expect("float");
    assert!(retry_after > 0.0 && retry_after <= 10.0, "{retry_after}");
    assert_eq!(h.emu.rate_limited_count(), 1);

    h.emu.advance_clock(11);
    let after_reset = h.bot(Method::PUT, &path).send().await.expect("role write");
    assert_eq!(after_reset.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn the_global_limit_applies_across_routes() {
    let h = start().await;
    h.emu.set_rate_limits(RateLimits {
        global: Some(Limit::new(3, 1.0)),
        ..RateLimits::unlimited()
    });
    let guild = h.guild();

    for _ in 0..3 {
        assert_eq!(
            h.bot(Method::GET, &format!("/guilds/{guild}"))
                .send()
                .await
                .expect("get")
                .status(),
            200
        );
    }
    let limited = h
        .bot(Method::GET, &format!("/guilds/{guild}/roles"))
        .send()
        .await
        .expect("get");

    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()["x-ratelimit-global"], "true");
    assert_eq!(limited.headers()["x-ratelimit-scope"], "global");
    assert_eq!(json(limited).await["global"], true);
}

#[tokio::test]
async fn a_users_own_routes_are_limited_per_token() {
    // given one role-connection request per 10 s, and alice and bob each holding a token
    let h = start().await;
    h.emu.set_rate_limits(RateLimits {
        role_connection: Some(Limit::new(1, 10.0)),
        ..RateLimits::unlimited()
    });
    let mut tokens = Vec::new();
    for name in ["alice", "bob"] {
        let code = h
            .authorize_code(
                &h.user(name),
                "identify role_connections.write",
                "v".repeat(43).as_str(),
            )
            .await;
        let body = json(h.exchange(&code, &"v".repeat(43)).await).await;
        tokens.push(body["access_token"].as_str().expect("token").to_owned());
    }
    let path = format!(
        "{}/users/@me/applications/{}/role-connection",
        h.emu.api_base(),
        h.emu.application_id()
    );
    let get = |token: &str| {
        h.http
            .get(&path)
            .header("Authorization", format!("Bearer {token}"))
            .send()
    };

    // when alice asks twice and bob once
    let first = get(&tokens[0]).await.expect("alice");
    let second = get(&tokens[0]).await.expect("alice again");
    let bob = get(&tokens[1]).await.expect("bob");

    // then alice's second is limited, bob has a bucket of his own
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()["x-ratelimit-remaining"], "0");
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(bob.status(), StatusCode::OK);
    assert_eq!(
        first.headers()["x-ratelimit-bucket"],
        bob.headers()["x-ratelimit-bucket"]
    );
}
