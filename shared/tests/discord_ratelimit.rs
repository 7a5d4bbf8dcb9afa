//! Rate limits as the server sees them: learned buckets are never overrun, the global limit spaces
//! requests. Time assertions are lower bounds only (a slow machine cannot break them).

mod discord_support;

use std::sync::Arc;
use std::time::Duration;

use connector::discord::{DiscordClient, RateLimiter};
use discord_support::{LiveBucket, Reply, Server};

#[tokio::test]
async fn an_exhausted_bucket_holds_the_next_request_until_reset() {
    // given Discord said: bucket exhausted, resets in 1 s
    let server = Server::start().await;
    server
        .reply(Reply::empty(204).bucket("roles", 10, 0, 1.0))
        .reply(Reply::empty(204).bucket("roles", 10, 9, 1.0));
    let client = server.client();
    client.add_role("1", "2", "3", "sync").await.unwrap();
    // when the next call on that bucket is made
    client.add_role("1", "2", "4", "sync").await.unwrap();
    // then the server saw it only after the reset
    let requests = server.requests();
    assert!(requests[1].at - requests[0].at >= Duration::from_millis(990));
    assert_eq!(client.stats().rate_limited, 0);
}

#[tokio::test]
async fn another_guild_is_not_held_by_an_exhausted_bucket() {
    let server = Server::start().await;
    server
        .reply(Reply::empty(204).bucket("roles", 10, 0, 30.0))
        .reply(Reply::empty(204).bucket("roles", 10, 9, 30.0));
    let client = server.client();
    client.add_role("1", "2", "3", "sync").await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(5),
        client.add_role("8", "2", "3", "sync"),
    )
    .await
    .expect("guild 8 has its own bucket")
    .unwrap();
}

#[tokio::test]
async fn concurrent_writes_never_overrun_a_learned_bucket() {
    // given a Discord bucket of 3 requests per 400 ms that answers 429 past it
    let server = Server::start().await;
    server.live_bucket(LiveBucket::new(3, Duration::from_millis(400)));
    let client = Arc::new(server.client());
    // when 10 role changes are fired at once
    let tasks: Vec<_> = (0..10)
        .map(|role| {
            let client = client.clone();
            tokio::spawn(async move { client.add_role("1", "2", &role.to_string(), "sync").await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    // then none was rate limited
    let stats = client.stats();
    assert_eq!(stats.rate_limited, 0, "{stats:?}");
    assert_eq!(server.requests().len(), 10);
}

#[tokio::test]
async fn an_unknown_bucket_gets_one_request_in_flight() {
    let server = Server::start_with_delay(Duration::from_millis(100)).await;
    for _ in 0..4 {
        server.reply(Reply::empty(204).bucket("roles", 10, 9, 10.0));
    }
    let client = Arc::new(server.client());
    let tasks: Vec<_> = (0..4)
        .map(|role| {
            let client = client.clone();
            tokio::spawn(async move { client.add_role("1", "2", &role.to_string(), "sync").await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let requests = server.requests();
    // the first answer taught the bucket; the other three then went out together
    assert!(requests[1].at - requests[0].at >= Duration::from_millis(100));
    assert!(server.max_in_flight() >= 2);
}

#[tokio::test]
async fn the_global_limit_spaces_requests_across_clients() {
    // given two clients sharing a limiter of 2 requests per second
    let server = Server::start().await;
    for _ in 0..3 {
        server.reply(Reply::json(
            200,
            serde_json::json!({"id": "1", "name": "G", "owner_id": "5"}),
        ));
    }
    let limiter = Arc::new(RateLimiter::new(2));
    let first = DiscordClient::new(server.config(), limiter.clone());
    let second = DiscordClient::new(server.config(), limiter);
    // when three requests on different guilds go out
    first.guild("1").await.unwrap();
    second.guild("2").await.unwrap();
    first.guild("3").await.unwrap();
    // then the third waited for the first to leave the one-second window
    let requests = server.requests();
    assert!(requests[2].at - requests[0].at >= Duration::from_millis(990));
}

#[tokio::test]
async fn a_global_429_holds_every_route() {
    let server = Server::start().await;
    server
        .reply(
            Reply::json(
                429,
                serde_json::json!({"message": "global", "retry_after": 0.5, "global": true}),
            )
            .header("x-ratelimit-global", "true"),
        )
        .reply(Reply::json(
            200,
            serde_json::json!({"id": "1", "name": "G", "owner_id": "5"}),
        ))
        .reply(Reply::json(200, serde_json::json!([])));
    let limiter = Arc::new(RateLimiter::default());
    let client = Arc::new(DiscordClient::new(server.config(), limiter.clone()));
    let other = DiscordClient::new(server.config(), limiter);
    let retried = {
        let client = client.clone();
        tokio::spawn(async move { client.guild("1").await })
    };
    // let the 429 arrive, then call another route through another client
    tokio::time::sleep(Duration::from_millis(100)).await;
    other.guild_roles("1").await.unwrap();
    retried.await.unwrap().unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests[1].at - requests[0].at >= Duration::from_millis(490));
    assert!(requests[2].at - requests[0].at >= Duration::from_millis(490));
}
