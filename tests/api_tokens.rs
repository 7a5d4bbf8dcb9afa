//! Scoped API tokens: an operator makes a `site` token for a website backend, which may only
//! push and read its clients' users, import, create link sessions and unlink; a revoked token
//! stops working at once on every instance.

use std::sync::Arc;

use connector::secrecy::SecretString;
use connector::selfhost::{self, SelfHostConfig};
use connector_e2e::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn call(
    h: &Harness,
    base: &str,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value, String) {
    let mut req = h
        .http
        .request(method, format!("{base}/api/v1{path}"))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        content_type,
    )
}

async fn make_token(h: &Harness, body: Value) -> Value {
    let (status, created) = h.api(Method::POST, "/tokens", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

#[tokio::test]
async fn a_site_token_does_only_what_a_website_backend_needs_for_its_own_clients() {
    // given an operator made a site token for the test client
    let h = Harness::start().await;
    h.setup_client().await;
    let created = make_token(
        &h,
        json!({"name": "website", "scope": "site", "clients": [CLIENT]}),
    )
    .await;
    let token = created["token"].as_str().expect("shown once").to_owned();
    assert!(token.starts_with("dct_") && token.len() > 40, "{token}");
    let base = h.url("");

    // then it pushes, reads, imports, starts links and unlinks for that client
    let own = [
        (
            Method::PUT,
            format!("/clients/{CLIENT}/users/u1"),
            Some(json!({"groups": ["members"]})),
            StatusCode::OK,
        ),
        (
            Method::GET,
            format!("/clients/{CLIENT}/users/u1"),
            None,
            StatusCode::OK,
        ),
        (
            Method::GET,
            format!("/clients/{CLIENT}/users"),
            None,
            StatusCode::OK,
        ),
        (
            Method::POST,
            format!("/clients/{CLIENT}/users/import"),
            Some(json!([])),
            StatusCode::OK,
        ),
        (
            Method::POST,
            format!("/clients/{CLIENT}/link-sessions"),
            Some(json!({"user_id": "u1", "return_to": format!("{SITE}/profile")})),
            StatusCode::CREATED,
        ),
        (
            Method::DELETE,
            format!("/clients/{CLIENT}/users/u1/link"),
            None,
            StatusCode::NOT_FOUND,
        ),
    ];
    for (method, path, body, expected) in own {
        let (status, answer, _) = call(&h, &base, &token, method.clone(), &path, body).await;
        assert_eq!(status, expected, "{method} {path}: {answer}");
    }

    // and nothing else: 403 problem+json
    let refused = [
        (
            Method::PATCH,
            format!("/clients/{CLIENT}"),
            Some(json!({"discord_api_base": "https://evil.test/api"})),
        ),
        (Method::DELETE, format!("/clients/{CLIENT}"), None),
        (Method::GET, "/clients".to_owned(), None),
        (Method::POST, format!("/clients/{CLIENT}/roles/sync"), None),
        (
            Method::POST,
            format!("/clients/{CLIENT}/tasks/verify-groups"),
            None,
        ),
        (Method::GET, format!("/clients/{CLIENT}/audit"), None),
        (Method::GET, "/tokens".to_owned(), None),
        (
            Method::POST,
            "/tokens".to_owned(),
            Some(json!({"name": "x", "scope": "operator"})),
        ),
        (
            Method::PUT,
            "/clients/another/users/u1".to_owned(),
            Some(json!({"groups": []})),
        ),
    ];
    for (method, path, body) in refused {
        let (status, problem, content_type) =
            call(&h, &base, &token, method.clone(), &path, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {problem}");
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(problem["status"], 403);
    }
    let (status, client, _) = call(
        &h,
        &base,
        ADMIN_TOKEN,
        Method::GET,
        &format!("/clients/{CLIENT}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(client["discord_api_base"], "https://evil.test/api");
}

#[tokio::test]
async fn tokens_are_listed_without_secrets_and_a_revoked_one_stops_at_once_on_every_instance() {
    let h = Harness::start().await;
    h.setup_client().await;
    let created = make_token(&h, json!({"name": "ops", "scope": "operator"})).await;
    let token = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();

    // listed without the token, with a prefix to tell it apart
    let (status, list) = h.api(Method::GET, "/tokens", None).await;
    assert_eq!(status, StatusCode::OK);
    let listed = &list["items"][0];
    assert_eq!(listed["id"], id.as_str());
    assert_eq!(listed["scope"], "operator");
    assert!(token.starts_with(listed["prefix"].as_str().unwrap()));
    assert!(!list.to_string().contains(&token), "{list}");

    // a second instance on the same database (another Lambda instance, another serve)
    let second = selfhost::open(
        SelfHostConfig {
            database: h.database.clone(),
            secret_key: None,
            admin_token: Some(SecretString::from(ADMIN_TOKEN.to_owned())),
            discord_urls: connector::domain::client::DiscordUrlPolicy::AllowCustom,
            retention: Default::default(),
        },
        Arc::new(h.clock.clone()),
    )
    .await
    .expect("second instance");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other = format!("http://{}", listener.local_addr().unwrap());
    let router = connector::http::router(second.state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    // the operator token works on both …
    for base in [h.url(""), other.clone()] {
        let (status, _, _) = call(&h, &base, &token, Method::GET, "/clients", None).await;
        assert_eq!(status, StatusCode::OK, "{base}");
    }
    // … until it is revoked on one of them
    let (status, _, _) = call(
        &h,
        &other,
        ADMIN_TOKEN,
        Method::DELETE,
        &format!("/tokens/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for base in [h.url(""), other.clone()] {
        let (status, problem, _) = call(&h, &base, &token, Method::GET, "/clients", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{base}: {problem}");
    }
    let (status, _) = h.api(Method::DELETE, &format!("/tokens/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_token_request_names_what_is_wrong() {
    let h = Harness::start().await;
    h.setup_client().await;
    for (body, field) in [
        (json!({"name": "w", "scope": "site"}), "clients"),
        (
            json!({"name": "w", "scope": "site", "clients": ["nope"]}),
            "clients[0]",
        ),
        (
            json!({"name": "w", "scope": "operator", "clients": [CLIENT]}),
            "clients",
        ),
        (json!({"name": "", "scope": "operator"}), "name"),
        (json!({"name": "w", "scope": "root"}), "scope"),
    ] {
        let (status, problem) = h.api(Method::POST, "/tokens", Some(body.clone())).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {problem}"
        );
        assert_eq!(problem["field"], field, "{body}: {problem}");
    }
    let (status, _) = h.api(Method::GET, "/tokens", None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_bootstrap_token_shorter_than_32_characters_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let opened = selfhost::open(
        SelfHostConfig {
            database: dir.path().join("c.db"),
            secret_key: None,
            admin_token: Some(SecretString::from("x".repeat(31))),
            discord_urls: Default::default(),
            retention: Default::default(),
        },
        Arc::new(connector::clock::SystemClock),
    )
    .await;
    let Err(e) = opened else {
        panic!("a 31-character operator token was accepted");
    };
    assert!(e.to_string().contains("at least 32 characters"), "{e}");
}
