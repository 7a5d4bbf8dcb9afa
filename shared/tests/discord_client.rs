//! The Discord client against a scripted server: request shape, answers, error mapping, retries.

mod discord_support;

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use connector::discord::{AddMember, DiscordClient, DiscordError, RateLimiter};
use discord_support::{Reply, Server, BOT_TOKEN, CLIENT_SECRET};

fn member(user_id: &str) -> serde_json::Value {
    json!({"user": {"id": user_id, "username": "ada", "discriminator": "0"}, "nick": null, "roles": ["7"], "joined_at": "2024-01-01T00:00:00Z"})
}

#[tokio::test]
async fn bot_calls_go_to_v10_with_user_agent_and_bot_token() {
    // given
    let server = Server::start().await;
    server.reply(Reply::json(
        200,
        json!({"id": "99", "username": "connector", "bot": true}),
    ));
    // when
    let bot = server.client().bot_user().await.unwrap();
    // then
    assert_eq!(bot.id, "99");
    let request = &server.requests()[0];
    assert_eq!(request.uri, "/api/v10/users/@me");
    assert_eq!(
        request.header("user-agent").unwrap(),
        concat!(
            "DiscordBot (https://github.com/discord-connector/discord-connector, ",
            env!("CARGO_PKG_VERSION"),
            ")"
        )
    );
    assert_eq!(
        request.header("authorization").unwrap(),
        format!("Bot {BOT_TOKEN}")
    );
}

#[tokio::test]
async fn writes_carry_an_encoded_audit_log_reason() {
    let server = Server::start().await;
    server
        .reply(Reply::empty(204))
        .reply(Reply::empty(204))
        .reply(Reply::json(200, member("2")))
        .reply(Reply::empty(204));
    let client = server.client();
    let reason = "Linked via SSO: ada/é";
    client.add_role("1", "2", "3", reason).await.unwrap();
    client.remove_role("1", "2", "3", reason).await.unwrap();
    client.set_nickname("1", "2", None, reason).await.unwrap();
    client.kick("1", "2", reason).await.unwrap();

    let requests = server.requests();
    let seen: Vec<_> = requests
        .iter()
        .map(|r| (r.method.as_str(), r.uri.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("PUT", "/api/v10/guilds/1/members/2/roles/3"),
            ("DELETE", "/api/v10/guilds/1/members/2/roles/3"),
            ("PATCH", "/api/v10/guilds/1/members/2"),
            ("DELETE", "/api/v10/guilds/1/members/2"),
        ]
    );
    for request in &requests {
        assert_eq!(
            request.header("x-audit-log-reason"),
            Some("Linked%20via%20SSO%3A%20ada%2F%C3%A9")
        );
    }
    assert_eq!(requests[2].body, r#"{"nick":null}"#);
    let stats = client.stats();
    assert_eq!(
        stats.calls["PUT /guilds/{guild}/members/{user}/roles/{role}"],
        1
    );
    assert_eq!(stats.calls["DELETE /guilds/{guild}/members/{user}"], 1);
}

#[tokio::test]
async fn add_member_tells_added_from_already_member() {
    let server = Server::start().await;
    server
        .reply(Reply::json(201, member("2")))
        .reply(Reply::empty(204));
    let client = server.client();
    let token = SecretString::from("user-access-token");
    let roles = vec!["7".to_owned()];

    let added = client
        .add_member("1", "2", &token, Some("Ada"), &roles)
        .await
        .unwrap();
    let again = client
        .add_member("1", "2", &token, None, &roles)
        .await
        .unwrap();

    assert!(matches!(added, AddMember::Added(m) if m.roles == ["7"]));
    assert_eq!(again, AddMember::AlreadyMember);
    let body: serde_json::Value = serde_json::from_str(&server.requests()[0].body).unwrap();
    assert_eq!(
        body,
        json!({"access_token": "user-access-token", "nick": "Ada", "roles": ["7"]})
    );
    assert_eq!(
        server.requests()[0].header("authorization").unwrap(),
        format!("Bot {BOT_TOKEN}")
    );
}

#[tokio::test]
async fn list_members_pages_with_limit_and_after() {
    let server = Server::start().await;
    server.reply(Reply::json(200, json!([member("5")])));
    let page = server
        .client()
        .list_members("1", Some("4"), 5000)
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(
        server.requests()[0].uri,
        "/api/v10/guilds/1/members?limit=1000&after=4"
    );
}

#[tokio::test]
async fn discord_codes_become_typed_errors() {
    type Expected = fn(&DiscordError) -> bool;
    let cases: [(u16, u64, Expected); 8] = [
        (404, 10007, |e| matches!(e, DiscordError::UnknownMember)),
        (404, 10011, |e| matches!(e, DiscordError::UnknownRole)),
        (403, 50013, |e| {
            matches!(e, DiscordError::MissingPermissions)
        }),
        (403, 50001, |e| matches!(e, DiscordError::MissingAccess)),
        (403, 40007, |e| matches!(e, DiscordError::Banned)),
        (400, 30001, |e| matches!(e, DiscordError::MaxGuilds)),
        (403, 50025, |e| matches!(e, DiscordError::InvalidOAuthToken)),
        (400, 130000, |e| matches!(e, DiscordError::Overloaded)),
    ];
    for (status, code, expected) in cases {
        let server = Server::start().await;
        server.reply(Reply::error(status, code));
        let error = server.client().get_member("1", "2").await.unwrap_err();
        assert!(expected(&error), "{status}/{code} gave {error:?}");
        assert_eq!(server.requests().len(), 1, "{status}/{code} was retried");
    }
}

#[tokio::test]
async fn a_403_is_not_retried_and_counts_as_invalid() {
    let server = Server::start().await;
    server.reply(Reply::error(403, 50013));
    let client = server.client();
    let error = client.add_role("1", "2", "3", "sync").await.unwrap_err();
    assert!(matches!(error, DiscordError::MissingPermissions));
    assert_eq!(server.requests().len(), 1);
    assert_eq!(client.stats().invalid_requests, 1);
}

#[tokio::test]
async fn a_401_stops_the_bot_token_for_every_client_sharing_it() {
    // given two clients of one bot token
    let server = Server::start().await;
    server.reply(Reply::json(
        401,
        json!({"message": "401: Unauthorized", "code": 0}),
    ));
    let limiter = Arc::new(RateLimiter::default());
    let first = DiscordClient::new(server.config(), limiter.clone());
    let second = DiscordClient::new(server.config(), limiter);
    // when Discord rejects the token once
    let error = first.guild_roles("1").await.unwrap_err();
    // then nobody sends with it again
    assert!(matches!(error, DiscordError::BotTokenRejected));
    let error = second.get_member("1", "2").await.unwrap_err();
    assert!(matches!(error, DiscordError::BotTokenRejected));
    assert_eq!(server.requests().len(), 1);
    assert_eq!(first.stats().invalid_requests, 1);
    assert!(second.stats().calls.is_empty());
}

#[tokio::test]
async fn a_401_on_a_user_call_is_an_invalid_oauth_token_and_does_not_stop_the_bot() {
    let server = Server::start().await;
    server
        .reply(Reply::json(
            401,
            json!({"message": "401: Unauthorized", "code": 0}),
        ))
        .reply(Reply::json(
            200,
            json!({"id": "99", "username": "connector"}),
        ));
    let client = server.client();
    let error = client
        .current_user(&SecretString::from("expired-user-token"))
        .await
        .unwrap_err();
    assert!(matches!(error, DiscordError::InvalidOAuthToken));
    assert_eq!(
        server.requests()[0].header("authorization"),
        Some("Bearer expired-user-token")
    );
    client.bot_user().await.unwrap();
}

#[tokio::test]
async fn a_429_waits_retry_after_then_succeeds() {
    let server = Server::start().await;
    server
        .reply(
            Reply::json(
                429,
                json!({"message": "slow down", "retry_after": 0.3, "global": false}),
            )
            .header("retry-after", 1),
        )
        .reply(Reply::json(200, member("2")));
    let client = server.client();

    client.get_member("1", "2").await.unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[1].at - requests[0].at >= Duration::from_millis(300));
    let stats = client.stats();
    assert_eq!(stats.rate_limited, 1);
    assert_eq!(stats.invalid_requests, 1);
    assert_eq!(stats.calls["GET /guilds/{guild}/members/{user}"], 2);
}

#[tokio::test]
async fn a_429_asking_for_more_than_a_minute_is_returned() {
    let server = Server::start().await;
    server.reply(Reply::json(
        429,
        json!({"message": "banned", "retry_after": 3600.0, "global": true}),
    ));
    let error = server.client().bot_user().await.unwrap_err();
    assert!(matches!(
        error,
        DiscordError::RateLimited { retry_after, global: true } if retry_after == Duration::from_secs(3600)
    ));
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff() {
    let server = Server::start().await;
    server
        .reply(Reply::empty(502))
        .reply(Reply::empty(500))
        .reply(Reply::json(
            200,
            json!({"id": "1", "name": "Guild", "owner_id": "5"}),
        ));
    let guild = server.client().guild("1").await.unwrap();
    assert_eq!(guild.owner_id, "5");
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests[1].at - requests[0].at >= Duration::from_millis(250));
    assert!(requests[2].at - requests[1].at >= Duration::from_millis(500));
}

#[tokio::test]
async fn server_errors_give_up_after_three_retries() {
    let server = Server::start().await;
    for _ in 0..5 {
        server.reply(Reply::empty(503));
    }
    let client = server.client();
    let error = client.guild("1").await.unwrap_err();
    assert!(matches!(error, DiscordError::Server { status: 503 }));
    assert_eq!(server.requests().len(), 4);
    assert_eq!(client.stats().calls["GET /guilds/{guild}"], 4);
}

#[tokio::test]
async fn an_unreachable_discord_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let server = Server::start().await;
    let mut config = server.config();
    config.api_base = format!("http://{addr}/api/v10");
    let client = DiscordClient::new(config, Arc::new(RateLimiter::default()));
    let error = client.bot_user().await.unwrap_err();
    assert!(matches!(error, DiscordError::Transport(_)), "{error:?}");
    assert_eq!(client.stats().calls["GET /users/@me"], 4);
}

#[tokio::test]
async fn missing_credentials_are_not_configured() {
    let server = Server::start().await;
    let mut config = server.config();
    config.bot_token = None;
    config.client_secret = None;
    let client = DiscordClient::new(config, Arc::new(RateLimiter::default()));
    assert!(matches!(
        client.bot_user().await,
        Err(DiscordError::NotConfigured("bot token"))
    ));
    assert!(matches!(
        client.exchange_code("c", &SecretString::from("v")).await,
        Err(DiscordError::NotConfigured("client secret"))
    ));
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn authorization_request_asks_for_identify_and_guilds_join_with_pkce() {
    let server = Server::start().await;
    let request = server.client().authorization_request();
    let url = url::Url::parse(&request.url).unwrap();
    assert_eq!(url.path(), "/oauth2/authorize");
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], "1100000000000000001");
    assert_eq!(query["scope"], "identify guilds.join");
    assert_eq!(query["prompt"], "consent");
    assert_eq!(
        query["redirect_uri"],
        "https://connector.example/discord/sso/callback"
    );
    assert_eq!(query["state"], request.state.expose_secret());
    assert_eq!(query["code_challenge_method"], "S256");
    let challenge = {
        use base64::Engine;
        use sha2::Digest;
        let digest = sha2::Sha256::digest(request.pkce_verifier.expose_secret().as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    };
    assert_eq!(query["code_challenge"], challenge);
    assert_ne!(
        server
            .client()
            .authorization_request()
            .state
            .expose_secret(),
        request.state.expose_secret()
    );
}

#[tokio::test]
async fn exchange_code_posts_the_form_and_returns_tokens() {
    let server = Server::start().await;
    server.reply(Reply::json(
        200,
        json!({"access_token": "new-access", "token_type": "Bearer", "expires_in": 604800, "refresh_token": "new-refresh", "scope": "identify guilds.join"}),
    ));
    let client = server.client();
    let tokens = client
        .exchange_code("the-code", &SecretString::from("the-verifier"))
        .await
        .unwrap();
    assert_eq!(tokens.access_token.expose_secret(), "new-access");
    assert_eq!(tokens.refresh_token.unwrap().expose_secret(), "new-refresh");
    assert_eq!(tokens.expires_in, 604800);
    assert_eq!(tokens.scope, "identify guilds.join");

    let request = &server.requests()[0];
    assert_eq!(request.uri, "/api/v10/oauth2/token");
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert!(request
        .header("user-agent")
        .unwrap()
        .starts_with("DiscordBot ("));
    let form: std::collections::HashMap<String, String> =
        serde_urlencoded::from_str(&request.body).unwrap();
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["code"], "the-code");
    assert_eq!(form["code_verifier"], "the-verifier");
    assert_eq!(
        form["redirect_uri"],
        "https://connector.example/discord/sso/callback"
    );
    let basic = request.header("authorization").unwrap();
    let decoded = {
        use base64::Engine;
        let raw = basic.strip_prefix("Basic ").unwrap();
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(raw)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(decoded, format!("1100000000000000001:{CLIENT_SECRET}"));
    assert_eq!(client.stats().calls["POST /oauth2/token"], 1);
}

#[tokio::test]
async fn oauth_errors_are_typed() {
    let server = Server::start().await;
    server
        .reply(Reply::json(
            400,
            json!({"error": "invalid_grant", "error_description": "Invalid \"code\" in request."}),
        ))
        .reply(Reply::json(401, json!({"error": "invalid_client"})))
        .reply(Reply::json(400, json!({"error": "invalid_grant"})));
    let client = server.client();
    let verifier = SecretString::from("v");
    assert!(matches!(
        client.exchange_code("used", &verifier).await,
        Err(DiscordError::InvalidGrant)
    ));
    assert!(matches!(
        client.exchange_code("c", &verifier).await,
        Err(DiscordError::InvalidClient)
    ));
    assert!(matches!(
        client
            .refresh_token(&SecretString::from("old-refresh"))
            .await,
        Err(DiscordError::InvalidGrant)
    ));
    let form: std::collections::HashMap<String, String> =
        serde_urlencoded::from_str(&server.requests()[2].body).unwrap();
    assert_eq!(form["grant_type"], "refresh_token");
    assert_eq!(form["refresh_token"], "old-refresh");
}

#[tokio::test]
async fn revoke_posts_the_token_with_a_hint() {
    let server = Server::start().await;
    server.reply(Reply::json(200, json!({})));
    server
        .client()
        .revoke_token(&SecretString::from("access-to-revoke"))
        .await
        .unwrap();
    let request = &server.requests()[0];
    assert_eq!(request.uri, "/api/v10/oauth2/token/revoke");
    let form: std::collections::HashMap<String, String> =
        serde_urlencoded::from_str(&request.body).unwrap();
    assert_eq!(form["token"], "access-to-revoke");
    assert_eq!(form["token_type_hint"], "access_token");
    assert!(request
        .header("authorization")
        .unwrap()
        .starts_with("Basic "));
}

#[tokio::test]
async fn secrets_never_show_in_debug_output() {
    let server = Server::start().await;
    server
        .reply(Reply::json(
            200,
            json!({"access_token": "ACCESS-SECRET", "token_type": "Bearer", "expires_in": 10, "refresh_token": "REFRESH-SECRET", "scope": "identify"}),
        ))
        .reply(Reply::json(200, json!({"access_token": 5})))
        .reply(Reply::json(401, json!({"message": "401: Unauthorized", "code": 0})));
    let client = server.client();
    let tokens = client
        .exchange_code("CODE-SECRET", &SecretString::from("VERIFIER-SECRET"))
        .await
        .unwrap();
    let decode_error = client
        .refresh_token(&SecretString::from("REFRESH-SECRET"))
        .await
        .unwrap_err();
    let bot_error = client.bot_user().await.unwrap_err();

    let printed = format!(
        "{client:?} {:?} {tokens:?} {decode_error:?} {decode_error} {bot_error:?} {:?}",
        server.config(),
        client.stats()
    );
    for secret in [
        BOT_TOKEN,
        CLIENT_SECRET,
        "ACCESS-SECRET",
        "REFRESH-SECRET",
        "VERIFIER-SECRET",
    ] {
        assert!(!printed.contains(secret), "{secret} leaked in {printed}");
    }
    // The authorize URL must carry the state; the PKCE verifier never leaves us.
    let request = client.authorization_request();
    assert!(!format!("{request:?}").contains(request.pkce_verifier.expose_secret()));
}

/// Compiles only if every client future is `Send` in an axum handler's (higher-ranked) context.
#[test]
fn client_futures_fit_axum_handlers() {
    async fn handler(
        axum::extract::State(client): axum::extract::State<Arc<DiscordClient>>,
        axum::extract::Path(code): axum::extract::Path<String>,
    ) -> String {
        let secret = SecretString::from(code.clone());
        let tokens = client.exchange_code(&code, &secret).await;
        let refreshed = client.refresh_token(&secret).await;
        let revoked = client.revoke_token(&secret).await;
        let me = client.current_user(&secret).await;
        let added = client
            .add_member(&code, &code, &secret, Some(&code), &[])
            .await;
        let role = client.add_role(&code, &code, &code, &code).await;
        format!(
            "{} {} {} {} {} {}",
            tokens.is_ok(),
            refreshed.is_ok(),
            revoked.is_ok(),
            me.is_ok(),
            added.is_ok(),
            role.is_ok()
        )
    }
    let client = Arc::new(DiscordClient::new(
        connector::discord::DiscordConfig {
            api_base: "http://127.0.0.1:9/api/v10".into(),
            authorize_url: "http://127.0.0.1:9/oauth2/authorize".into(),
            application_id: "1".into(),
            client_secret: None,
            bot_token: None,
            redirect_uri: "http://127.0.0.1:9/cb".into(),
        },
        Arc::new(RateLimiter::default()),
    ));
    let _router: axum::Router = axum::Router::new()
        .route("/{code}", axum::routing::get(handler))
        .with_state(client);
}

#[tokio::test]
async fn an_oversized_answer_is_a_typed_error_not_read_whole() {
    use connector::discord::client::MAX_RESPONSE_BYTES;
    // given a member list page larger than any Discord sends (with its Content-Length)
    let server = Server::start().await;
    server.reply(Reply {
        status: 200,
        headers: vec![("content-type", "application/json".into())],
        body: format!("[{}]", " ".repeat(MAX_RESPONSE_BYTES)),
    });
    // when the client reads it, then it stops with a typed error
    match server.client().list_members("1", None, 1000).await {
        Err(DiscordError::ResponseTooLarge { limit }) => assert_eq!(limit, MAX_RESPONSE_BYTES),
        other => panic!("expected ResponseTooLarge, got {other:?}"),
    }
    assert_eq!(server.requests().len(), 1, "not retried");
}

#[tokio::test]
async fn an_endless_chunked_answer_is_cut_at_the_cap() {
    use connector::discord::client::MAX_RESPONSE_BYTES;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // given a server that streams chunks without a Content-Length and never ends
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 4096];
        let _ = socket.read(&mut request).await;
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
        if socket.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
        // up to twice the cap, so a client without one would read it all and fail to parse
        for _ in 0..(2 * MAX_RESPONSE_BYTES / (64 * 1024)) {
            if socket.write_all(chunk.as_bytes()).await.is_err() {
                return;
            }
        }
    });
    let mut config = Server::start().await.config();
    config.api_base = format!("http://{addr}/api/v10");
    let client = DiscordClient::new(config, Arc::new(RateLimiter::default()));
    match client.list_members("1", None, 1000).await {
        Err(DiscordError::ResponseTooLarge { .. }) => {}
        other => panic!("expected ResponseTooLarge, got {other:?}"),
    }
}
