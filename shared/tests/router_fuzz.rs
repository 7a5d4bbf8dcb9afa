//! The whole router under arbitrary requests: any method, path (percent-encoded garbage, invalid
//! UTF-8, very long segments), headers and body. Never a 5xx, never a panic, and every 4xx is
//! problem+json — except the SSO callback's pages, which are HTML for people in a browser.

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Request};
use axum::Router;
use connector::domain::client::DiscordUrlPolicy;
use connector::secrecy::SecretString;
use connector::selfhost::{self, SelfHostConfig, SelfHosted};
use proptest::prelude::*;
use serde_json::{json, Value};
use tower::ServiceExt;

const ADMIN_TOKEN: &str = "fuzz-admin-token-0123456789abcdef";

struct Fixture {
    runtime: tokio::runtime::Runtime,
    router: Router,
    _hosted: SelfHosted,
    _dir: tempfile::TempDir,
}

/// One connector for every case: a temp SQLite store, one client (`guild`) whose Discord is a
/// closed local port (no case may reach the real Discord), a few users.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let hosted = runtime.block_on(async {
            selfhost::open(
                SelfHostConfig {
                    database: dir.path().join("fuzz.db"),
                    secret_key: None,
                    admin_token: Some(SecretString::from(ADMIN_TOKEN)),
                    discord_urls: DiscordUrlPolicy::AllowCustom,
                    retention: Default::default(),
                },
                selfhost::system_clock(),
            )
            .await
            .expect("state opens")
        });
        let router = connector::http::router(hosted.state.clone());
        runtime.block_on(async {
            let setup = [
                (
                    Method::POST,
                    "/api/v1/clients",
                    json!({"id": "guild", "name": "Fuzz", "guild_id": "200000000000000001",
                       "client_id": "100000000000000001",
                       "callback_url": "https://connector.example/discord/sso/callback",
                       "return_to_origins": ["https://site.example"],
                       "discord_api_base": "http://127.0.0.1:1/api/v10",
                       "discord_authorize_url": "http://127.0.0.1:1/oauth2/authorize"}),
                ),
                (
                    Method::PUT,
                    "/api/v1/clients/guild/users/alice",
                    json!({"groups": ["members"], "attributes": {"t": "X"}}),
                ),
                (
                    Method::POST,
                    "/api/v1/clients/guild/users/import",
                    json!([{"user_id": "bob", "discord_user_id": "300000000000000001"}]),
                ),
            ];
            for (method, path, body) in setup {
                let response = router
                    .clone()
                    .oneshot(
                        Request::builder()
                            .method(method)
                            .uri(path)
                            .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
                            .header(header::CONTENT_TYPE, "application/json")
                            .body(Body::from(body.to_string()))
                            .expect("request"),
                    )
                    .await
                    .expect("infallible");
                assert!(response.status().is_success(), "setup {path}: {response:?}");
            }
        });
        Fixture {
            runtime,
            router,
            _hosted: hosted,
            _dir: dir,
        }
    })
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        Just(Method::PUT),
        Just(Method::PATCH),
        Just(Method::DELETE),
        Just(Method::HEAD),
        Just(Method::OPTIONS),
        Just(Method::TRACE),
        "[A-Z]{1,12}".prop_map(|m| Method::from_bytes(m.as_bytes()).expect("token")),
    ]
}

fn percent_encoded(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

/// One path segment: a word the router knows, an id, garbage, invalid UTF-8, or a long run.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "api", "v1", "clients", "guild", "users", "alice", "bob", "roles", "sync", "import",
            "link", "link-sessions", "tasks", "verify-groups", "sync-accounts",
            "remote-sync-groups", "runs", "audit", "discord", "sso", "callback", "healthz",
            "openapi.json", "210000000000000001", "0123", "18446744073709551616", "..", ".",
        ])
        .prop_map(str::to_owned),
        1 => "[A-Za-z0-9._~!$&'()*+,;=:@-]{0,40}",
        1 => prop::collection::vec(any::<u8>(), 0..24).prop_map(|b| percent_encoded(&b)),
        1 => Just("%FF%FE".to_owned()),
        1 => (1usize..8_000).prop_map(|n| "x".repeat(n)),
    ]
}

fn path() -> impl Strategy<Value = String> {
    let prefix = prop::sample::select(vec![
        "",
        "/api/v1",
        "/api/v1/clients/guild",
        "/api/v1/clients/guild/users",
        "/api/v1/clients/guild/roles",
        "/discord/sso",
    ]);
    let query = prop::option::of(prop_oneof![
        "[a-z_]{1,10}=[A-Za-z0-9%_.-]{0,60}",
        prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| format!(
            "state={}&code={}",
            percent_encoded(&b),
            percent_encoded(&b)
        )),
        Just("dry_run=maybe&limit=-1&cursor=%FF".to_owned()),
    ]);
    (prefix, prop::collection::vec(segment(), 0..6), query).prop_map(|(prefix, segs, query)| {
        let mut p = prefix.to_owned();
        for s in segs {
            p.push('/');
            p.push_str(&s);
        }
        if p.is_empty() {
            p.push('/');
        }
        if let Some(q) = query {
            p.push('?');
            p.push_str(&q);
        }
        p
    })
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::from),
        "[0-9]{1,25}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    // Fields the API reads (never the secrets: a PATCH setting a bot token
                    // would start a roles/sync).
                    prop::sample::select(vec![
                        "name",
                        "groups",
                        "attributes",
                        "user_id",
                        "discord_user_id",
                        "return_to",
                        "guild_id",
                        "client_id",
                        "callback_url",
                        "id",
                        "unlink_policy",
                        "source_of_truth",
                        "return_to_origins",
                        "nickname_template",
                        "invite_link",
                    ])
                    .prop_map(str::to_owned),
                    ".{0,12}",
                ],
                inner,
                0..6,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        prop::collection::vec(any::<u8>(), 0..512),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(json_value(), 0..4)
            .prop_map(|v| Value::from(v).to_string().into_bytes()),
    ]
}

#[derive(Debug, Clone)]
struct Headers {
    auth: Option<String>,
    content_type: Option<String>,
    extra: Option<(String, Vec<u8>)>,
}

fn headers() -> impl Strategy<Value = Headers> {
    let auth = prop::option::weighted(
        0.9,
        prop_oneof![
            3 => Just(format!("Bearer {ADMIN_TOKEN}")),
            1 => "Bearer [ -~]{0,40}",
            1 => "[ -~]{0,40}",
        ],
    );
    let content_type = prop::option::of(prop_oneof![
        Just("application/json".to_owned()),
        Just("application/problem+json".to_owned()),
        Just("text/plain".to_owned()),
        "[ -~]{0,40}",
    ]);
    let extra = prop::option::of(("[a-z-]{1,20}", prop::collection::vec(32u8..127, 0..60)));
    (auth, content_type, extra).prop_map(|(auth, content_type, extra)| Headers {
        auth,
        content_type,
        extra,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn any_request_gets_a_non_5xx_answer_and_every_4xx_is_problem_json(
        method in method(),
        path in path(),
        headers in headers(),
        body in body(),
    ) {
        let f = fixture();
        let mut request = Request::builder().method(method.clone()).uri(path.as_str());
        if let Some(v) = headers.auth.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            request = request.header(header::AUTHORIZATION, v);
        }
        if let Some(v) = headers.content_type.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            request = request.header(header::CONTENT_TYPE, v);
        }
        if let Some((name, value)) = &headers.extra {
            if let Ok(v) = HeaderValue::from_bytes(value) {
                request = request.header(name.as_str(), v);
            }
        }
        // Only what an HTTP server could receive: a URI that parses.
        let Ok(request) = request.body(Body::from(body)) else {
            return Err(TestCaseError::reject("not a valid HTTP request"));
        };
        let response = f
            .runtime
            .block_on(f.router.clone().oneshot(request))
            .expect("infallible");
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        prop_assert!(!status.is_server_error(), "{method} {path:.200} → {status}");
        if status.is_client_error() {
            let callback_page = path.starts_with("/discord/sso/callback")
                && content_type.starts_with("text/html");
            prop_assert!(
                content_type == "application/problem+json" || callback_page,
                "{method} {path:.200} → {status} with content-type {content_type:?}"
            );
            if status == axum::http::StatusCode::METHOD_NOT_ALLOWED {
                prop_assert!(response.headers().contains_key(header::ALLOW), "405 names the methods");
            }
        }
    }
}
