//! Paging through the member list, and the privileged intent it needs.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use support::{json, start};

#[tokio::test]
async fn pages_ascend_by_user_id_after_the_cursor() {
    let h = start().await;
    let guild = h.guild();
    h.emu
        .add_members_bulk(&guild, 500_000_000_000_000_000, 25, &[h.role("Recruit")]);
    let mut seen = Vec::new();
    let mut after = "0".to_owned();

    loop {
        let path = format!("/guilds/{guild}/members?limit=10&after={after}");
        let page = json(h.bot(Method::GET, &path).send().await.expect("list")).await;
        let page = page.as_array().expect("array").clone();
        seen.extend(
            page.iter()
                .map(|m| m["user"]["id"].as_str().expect("id").to_owned()),
        );
        if page.len() < 10 {
            break;
        }
        after = seen.last().expect("non-empty page").clone();
    }

    assert_eq!(seen.len(), 27, "bot + owner + 25 generated");
    let mut sorted = seen.clone();
    sorted.sort_by_key(|id| id.parse::<u64>().expect("snowflake"));
    assert_eq!(seen, sorted);
}

#[tokio::test]
async fn default_limit_is_one_and_out_of_range_is_a_form_error() {
    let h = start().await;
    let guild = h.guild();

    let one: Value = json(
        h.bot(Method::GET, &format!("/guilds/{guild}/members"))
            .send()
            .await
            .expect("list"),
    )
    .await;
    assert_eq!(one.as_array().expect("array").len(), 1);

    let too_many = h
        .bot(Method::GET, &format!("/guilds/{guild}/members?limit=1001"))
        .send()
        .await
        .expect("list");
    assert_eq!(too_many.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(too_many).await["code"], 50035);
}

#[tokio::test]
async fn without_the_members_intent_the_list_is_missing_access() {
    let h = start().await;
    let guild = h.guild();
    h.emu.set_members_intent(&guild, false);

    let response = h
        .bot(Method::GET, &format!("/guilds/{guild}/members?limit=100"))
        .send()
        .await
        .expect("list");

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body = json(response).await;
    assert_eq!(body["code"], 50001);
    assert_eq!(body["message"], "Missing Access");
    let single = h
        .bot(
            Method::GET,
            &format!("/guilds/{guild}/members/{}", h.user("dave")),
        )
        .send()
        .await
        .expect("get");
    assert_eq!(
        single.status(),
        StatusCode::OK,
        "single GETs need no intent"
    );
}
