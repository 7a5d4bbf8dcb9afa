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

/// A connector started like `serve` without `CONNECTOR_ALLOW_CUSTOM_DISCORD_URLS`.
async fn discord_only() -> Harness {
    Harness::start_with(Options {
        discord_urls: connector::domain::client::DiscordUrlPolicy::DiscordOnly,
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn discord_urls_other_than_discords_need_the_deployments_opt_in() {
    // given a deployment that did not opt in
    let h = discord_only().await;
    // when a client points either URL at another server, then it is refused naming the field
    for field in ["discord_api_base", "discord_authorize_url"] {
        let mut body = h.client_body();
        let other = if field == "discord_api_base" {
            "discord_authorize_url"
        } else {
            "discord_api_base"
        };
        body.as_object_mut().unwrap().remove(other);
        let (status, problem) = h.api(Method::POST, "/clients", Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert_eq!(problem["field"], field, "{problem}");
    }
    for evil in [
        "http://discord.com/api/v10",
        "https://discord.com.evil.example/api/v10",
        "https://evil.example/api/v10",
        "https://discord.com/api/v10/../../evil",
        "https://discord.com:8443/api/v10",
        "https://user@discord.com/api/v10",
    ] {
        let mut body = h.client_body();
        body["discord_api_base"] = json!(evil);
        body.as_object_mut()
            .unwrap()
            .remove("discord_authorize_url");
        let (status, problem) = h.api(Method::POST, "/clients", Some(body)).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{evil}: {problem}"
        );
        assert_eq!(problem["field"], "discord_api_base");
    }
    // and Discord's own URLs (explicit, with a trailing slash, or left out) are accepted
    let mut body = h.client_body();
    for secret in ["bot_token", "client_secret"] {
        // no secrets: nothing may call the real Discord from a test
        body.as_object_mut().unwrap().remove(secret);
    }
    body["discord_api_base"] = json!("https://discord.com/api/v10/");
    body.as_object_mut()
        .unwrap()
        .remove("discord_authorize_url");
    let (status, client) = h.api(Method::POST, "/clients", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{client}");
    assert_eq!(client["discord_api_base"], "https://discord.com/api/v10");
    assert_eq!(
        client["discord_authorize_url"],
        "https://discord.com/oauth2/authorize"
    );
}

#[tokio::test]
async fn with_the_opt_in_the_emulator_urls_are_accepted() {
    // given the tests' default: the deployment opted in
    let h = Harness::start().await;
    // when a client points at the emulator, then it is created and synced there
    let (status, body) = h.api(Method::POST, "/clients", Some(h.client_body())).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["discord_api_base"], h.emu.api_base());
    assert_eq!(body["roles_sync"]["status"], "synced", "{body}");
}

#[tokio::test]
async fn changing_where_or_whose_secrets_go_needs_the_secrets_again() {
    let h = Harness::start().await;
    h.setup_client().await;
    let path = format!("/clients/{CLIENT}");
    let elsewhere = format!("{}/", h.emu.api_base());
    // when a URL or the application id changes without both secrets, then 422 names the missing one
    for (patch, missing) in [
        (json!({"discord_api_base": elsewhere}), "bot_token"),
        (
            json!({"discord_authorize_url": "http://127.0.0.1:9/authorize"}),
            "bot_token",
        ),
        (json!({"client_id": "100000000000000099"}), "bot_token"),
        (
            json!({"discord_api_base": elsewhere, "bot_token": h.emu.bot_token()}),
            "client_secret",
        ),
        (
            json!({"discord_api_base": elsewhere, "client_secret": h.emu.client_secret()}),
            "bot_token",
        ),
    ] {
        let (status, problem) = h.api(Method::PATCH, &path, Some(patch.clone())).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{patch}: {problem}"
        );
        assert_eq!(problem["field"], missing, "{patch}: {problem}");
    }
    let (_, client) = h.api(Method::GET, &path, None).await;
    assert_eq!(client["discord_api_base"], h.emu.api_base(), "unchanged");
    // and an edit that keeps URLs and application id needs no secrets
    let (status, body) = h
        .api(
            Method::PATCH,
            &path,
            Some(json!({"name": "Renamed", "discord_api_base": h.emu.api_base()})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // when the URL changes with both secrets, then it is saved
    let (status, body) = h
        .api(
            Method::PATCH,
            &path,
            Some(
                json!({"discord_api_base": elsewhere, "bot_token": h.emu.bot_token(),
                        "client_secret": h.emu.client_secret()}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["discord_api_base"], elsewhere);
    assert_eq!(body["roles_sync"]["status"], "synced", "{body}");
}

#[tokio::test]
async fn discord_ids_must_be_canonical_snowflakes() {
    let h = Harness::start().await;
    for (field, id) in [
        ("guild_id", "0200000000000000001"),
        ("guild_id", "18446744073709551616"),
        ("guild_id", "0"),
        ("client_id", "+100000000000000001"),
        ("client_id", "１２３"),
    ] {
        let mut body = h.client_body();
        body[field] = json!(id);
        let (status, problem) = h.api(Method::POST, "/clients", Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{id}: {problem}");
        assert_eq!(problem["field"], field, "{id}: {problem}");
    }
    h.setup_client().await;
    let member = h.role("Member");
    for role in [format!("0{member}"), "18446744073709551616".to_owned()] {
        let (status, problem) = h
            .api(
                Method::PUT,
                &format!("/clients/{CLIENT}/roles/{role}"),
                Some(json!({"groups": ["g"]})),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{role}: {problem}"
        );
        assert_eq!(problem["field"], "role_id");
    }
    // the largest u64 is a valid id (unknown here)
    let (status, problem) = h
        .api(
            Method::PUT,
            &format!("/clients/{CLIENT}/roles/18446744073709551615"),
            Some(json!({"groups": ["g"]})),
        )
        .await;
    assert_ne!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
}

#[tokio::test]
async fn lists_and_attributes_are_capped() {
    let h = Harness::start().await;
    h.setup_client().await;
    let many: Vec<String> = (0..501).map(|i| format!("g{i}")).collect();
    let member = h.role("Member");
    let (status, problem) = h
        .api(
            Method::PUT,
            &format!("/clients/{CLIENT}/roles/{member}"),
            Some(json!({"groups": many})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["field"], "groups");
    let user = format!("/clients/{CLIENT}/users/u1");
    let attributes: serde_json::Map<String, Value> =
        (0..51).map(|i| (format!("a{i}"), json!("v"))).collect();
    for (body, field) in [
        (json!({"groups": many}), "groups"),
        (
            json!({"groups": [], "attributes": attributes}),
            "attributes",
        ),
        (
            json!({"groups": [], "attributes": {"t": "x".repeat(257)}}),
            "attributes.t",
        ),
        (
            json!({"groups": [], "attributes": {"t": "a\nb"}}),
            "attributes.t",
        ),
    ] {
        let (status, problem) = h.api(Method::PUT, &user, Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert_eq!(problem["field"], field, "{problem}");
    }
}

#[tokio::test]
async fn a_wrong_method_is_a_405_problem_with_allow() {
    let h = Harness::start().await;
    let resp = h
        .http
        .delete(h.url("/api/v1/clients"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let allow = resp.headers()["allow"].to_str().unwrap().to_owned();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    let problem: Value = resp.json().await.unwrap();
    assert_eq!(problem["status"], 405);
    assert!(
        problem["detail"].as_str().unwrap().contains("DELETE"),
        "{problem}"
    );
}

#[tokio::test]
async fn invalid_utf8_in_a_path_is_a_problem_naming_the_parameter() {
    let h = Harness::start().await;
    h.setup_client().await;
    for (path, field) in [
        ("/api/v1/clients/%FF".to_owned(), "client"),
        (format!("/api/v1/clients/{CLIENT}/users/%C3%28"), "user_id"),
    ] {
        let resp = h
            .http
            .get(h.url(&path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
        let problem: Value = resp.json().await.unwrap();
        assert_eq!(problem["field"], field, "{problem}");
    }
    // a body over the size limit is a problem too, with its status
    let resp = h
        .http
        .put(h.url(&format!("/api/v1/clients/{CLIENT}/users/u1")))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(vec![b' '; 3 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
}
