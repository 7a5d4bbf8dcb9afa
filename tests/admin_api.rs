//! The admin API contract: auth, problem+json errors naming the field, write-only secrets,
//! pagination, OpenAPI.

use connector_e2e::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn every_admin_route_needs_the_bearer_token() {
    let h = Harness::start().await;
    let resp = h.http.get(h.url("/api/v1/clients")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let resp = h
        .http
        .get(h.url("/api/v1/clients"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = h.http.get(h.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn secrets_are_write_only_and_never_echoed() {
    let h = Harness::start().await;
    h.setup_client().await;
    for path in [format!("/clients/{CLIENT}"), "/clients".to_owned()] {
        let (_, body) = h.api(Method::GET, &path, None).await;
        let text = body.to_string();
        assert!(
            !text.contains(h.emu.bot_token()),
            "bot token leaked by {path}"
        );
        assert!(
            !text.contains(h.emu.client_secret()),
            "client secret leaked by {path}"
        );
    }
    let (_, body) = h
        .api(Method::GET, &format!("/clients/{CLIENT}"), None)
        .await;
    assert_eq!(body["has_bot_token"], true);
    assert_eq!(body["has_client_secret"], true);
    assert!(
        body["guild"]["bot_top_position"].as_i64().unwrap() > 0,
        "roles synced on create: {body}"
    );
}

#[tokio::test]
async fn bad_input_is_a_problem_naming_the_field() {
    let h = Harness::start().await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({"name": "x"}), "guild_id"),
        (
            {
                let mut b = h.client_body();
                b["guild_id"] = json!("not-a-snowflake");
                b
            },
            "guild_id",
        ),
        (
            {
                let mut b = h.client_body();
                b["callback_url"] = json!("ftp://x");
                b
            },
            "callback_url",
        ),
        (
            {
                let mut b = h.client_body();
                b["return_to_origins"] = json!(["https://ok.example", "https://x.example/path"]);
                b
            },
            "return_to_origins[1]",
        ),
        (
            {
                let mut b = h.client_body();
                b["unlink_policy"] = json!("explode");
                b
            },
            "unlink_policy",
        ),
        (
            {
                let mut b = h.client_body();
                b["bot_token"] = json!("has space");
                b
            },
            "bot_token",
        ),
    ];
    for (body, field) in cases {
        let (status, problem) = h.api(Method::POST, "/clients", Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert_eq!(problem["field"], field, "{problem}");
        assert!(problem["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:discord-connector:problem:"));
        assert!(!problem.to_string().contains(h.emu.bot_token()));
    }
    h.setup_client().await;
    let (status, problem) = h
        .api(
            Method::PUT,
            &format!("/clients/{CLIENT}/users/u1"),
            Some(json!({"groups": ["ok", 3]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "groups[1]");
    let resp = h
        .http
        .put(h.url(&format!("/api/v1/clients/{CLIENT}/users/u1")))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let (status, problem) = h
        .api(
            Method::GET,
            &format!("/clients/{CLIENT}/users?limit=0"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "limit");
}

#[tokio::test]
async fn duplicate_clients_conflict_and_unknown_ones_are_404() {
    let h = Harness::start().await;
    h.setup_client().await;
    let (status, problem) = h.api(Method::POST, "/clients", Some(h.client_body())).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let (status, _) = h.api(Method::GET, "/clients/nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = h
        .api(
            Method::PUT,
            "/clients/nope/users/u1",
            Some(json!({"groups": []})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn managed_and_everyone_roles_cannot_be_mapped() {
    let h = Harness::start().await;
    h.setup_client().await;
    for role in [h.role("Server Booster"), h.emu.guild_id().to_owned()] {
        let (status, problem) = h
            .api(
                Method::PUT,
                &format!("/clients/{CLIENT}/roles/{role}"),
                Some(json!({"groups": ["g"]})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert_eq!(problem["field"], "role_id");
    }
    let (_, roles) = h
        .api(Method::GET, &format!("/clients/{CLIENT}/roles"), None)
        .await;
    let admin = roles
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Admin")
        .unwrap();
    assert_eq!(admin["assignable"], false);
    assert_eq!(admin["blocked_by"], "role_above_bot");
}

#[tokio::test]
async fn users_are_listed_page_by_page_with_an_opaque_cursor() {
    let h = Harness::start().await;
    h.setup_client().await;
    for i in 0..5 {
        h.put_user(&format!("u{i}"), &["members"]).await;
    }
    let mut seen = Vec::new();
    let mut path = format!("/clients/{CLIENT}/users?limit=2");
    loop {
        let (status, page) = h.api(Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for item in page["items"].as_array().unwrap() {
            seen.push(item["user_id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/clients/{CLIENT}/users?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ["u0", "u1", "u2", "u3", "u4"]);
}

#[tokio::test]
async fn the_openapi_document_describes_the_v1_routes() {
    let h = Harness::start().await;
    let doc: Value = h
        .http
        .get(h.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().expect("paths");
    for p in [
        "/clients",
        "/clients/{client}",
        "/clients/{client}/roles/sync",
        "/clients/{client}/roles/{role_id}",
        "/clients/{client}/users/{user_id}",
        "/clients/{client}/users/{user_id}/link",
        "/clients/{client}/link-sessions",
        "/clients/{client}/tasks/{task}",
        "/clients/{client}/runs",
        "/clients/{client}/audit",
    ] {
        assert!(paths.contains_key(p), "{p} missing from OpenAPI");
    }
}
