//! A scripted stand-in for Discord: answers from a queue (or a live bucket) and records requests.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use secrecy::SecretString;

use connector::discord::{DiscordClient, DiscordConfig, RateLimiter};

pub const BOT_TOKEN: &str = "bot-token-SECRET-1";
pub const CLIENT_SECRET: &str = "client-secret-SECRET-2";

#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Reply {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: body.to_string(),
        }
    }
    pub fn empty(status: u16) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: String::new(),
        }
    }
    pub fn error(status: u16, code: u64) -> Self {
        Self::json(
            status,
            serde_json::json!({"code": code, "message": "scripted"}),
        )
    }
    pub fn header(mut self, name: &'static str, value: impl ToString) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }
    /// Bucket headers as Discord sends them.
    pub fn bucket(self, id: &str, limit: u32, remaining: u32, reset_after: f64) -> Self {
        self.header("x-ratelimit-bucket", id)
            .header("x-ratelimit-limit", limit)
            .header("x-ratelimit-remaining", remaining)
            .header("x-ratelimit-reset-after", reset_after)
    }
}

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: Method,
    /// Path and query, e.g. `/api/v10/guilds/1/members?limit=2`.
    pub uri: String,
    pub headers: HeaderMap,
    pub body: String,
    pub at: Instant,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A Discord bucket: `limit` requests per `window`, starting with the first request.
pub struct LiveBucket {
    pub limit: u32,
    pub window: Duration,
    started: Option<Instant>,
    used: u32,
}

impl LiveBucket {
    pub fn new(limit: u32, window: Duration) -> Self {
        LiveBucket {
            limit,
            window,
            started: None,
            used: 0,
        }
    }

    fn answer(&mut self) -> Reply {
        let now = Instant::now();
        let start = match self.started {
            Some(start) if now < start + self.window => start,
            _ => {
                self.started = Some(now);
                self.used = 0;
                now
            }
        };
        let reset_after = (start + self.window - now).as_secs_f64();
        if self.used >= self.limit {
            return Reply::json(
                429,
                serde_json::json!({"message": "You are being rate limited.", "retry_after": reset_after, "global": false}),
            )
            .bucket("live", self.limit, 0, reset_after)
            .header("x-ratelimit-scope", "user");
        }
        self.used += 1;
        Reply::empty(204).bucket("live", self.limit, self.limit - self.used, reset_after)
    }
}

#[derive(Default)]
struct Script {
    replies: VecDeque<Reply>,
    live: Option<LiveBucket>,
    requests: Vec<Recorded>,
    /// Requests being handled right now, and the most seen at once.
    in_flight: u32,
    max_in_flight: u32,
}

#[derive(Clone)]
pub struct Server {
    pub addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    delay: Duration,
}

impl Server {
    pub async fn start() -> Self {
        Self::start_with_delay(Duration::ZERO).await
    }

    /// Every answer takes `delay`: lets tests see how many requests were in flight.
    pub async fn start_with_delay(delay: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Server {
            addr: listener.local_addr().unwrap(),
            script: Arc::default(),
            delay,
        };
        let app = Router::new().fallback(handle).with_state(server.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        server
    }

    pub fn reply(&self, reply: Reply) -> &Self {
        self.script.lock().unwrap().replies.push_back(reply);
        self
    }

    pub fn live_bucket(&self, bucket: LiveBucket) {
        self.script.lock().unwrap().live = Some(bucket);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.script.lock().unwrap().requests.clone()
    }

    pub fn max_in_flight(&self) -> u32 {
        self.script.lock().unwrap().max_in_flight
    }

    pub fn config(&self) -> DiscordConfig {
        DiscordConfig {
            api_base: format!("http://{}/api/v10", self.addr),
            authorize_url: format!("http://{}/oauth2/authorize", self.addr),
            application_id: "1100000000000000001".into(),
            client_secret: Some(SecretString::from(CLIENT_SECRET)),
            bot_token: Some(SecretString::from(BOT_TOKEN)),
            redirect_uri: "https://connector.example/discord/sso/callback".into(),
        }
    }

    pub fn client(&self) -> DiscordClient {
        DiscordClient::new(self.config(), Arc::new(RateLimiter::default()))
    }
}

async fn handle(
    State(server): State<Server>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reply = {
        let mut script = server.script.lock().unwrap();
        script.requests.push(Recorded {
            method,
            uri: uri.to_string(),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            at: Instant::now(),
        });
        script.in_flight += 1;
        script.max_in_flight = script.max_in_flight.max(script.in_flight);
        match script.live.as_mut() {
            Some(bucket) => bucket.answer(),
            None => script
                .replies
                .pop_front()
                .unwrap_or_else(|| Reply::json(500, serde_json::json!({"message": "unscripted"}))),
        }
    };
    if !server.delay.is_zero() {
        tokio::time::sleep(server.delay).await;
    }
    server.script.lock().unwrap().in_flight -= 1;
    let mut response = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}
