//! The operator console in a real browser (headless Chromium over WebDriver) against `serve`'s
//! router and the Discord emulator: an operator who never read the API sets up a client and
//! manages members. Every page is checked with axe-core (no serious or critical violation) and
//! for secret values; the README's screenshots are taken here (`UPDATE_SCREENSHOTS=1`).

use connector_e2e::browser::{Browser, Until, WAIT};
use connector_e2e::discord_emulator::Fault;
use connector_e2e::{Harness, ADMIN_TOKEN, CLIENT, SITE};

/// Every page visited, so the test can say no secret value was ever in one.
struct Visits {
    sources: Vec<(String, String)>,
}

impl Visits {
    /// Checks the page the browser is on: accessible, recorded, optionally photographed.
    async fn check(&mut self, b: &Browser, label: &str, screenshot: Option<&str>) {
        b.assert_accessible(label).await;
        self.sources.push((label.to_owned(), b.source().await));
        if let Some(name) = screenshot {
            b.screenshot(name).await;
        }
    }

    fn assert_no_secret(&self, secrets: &[&str]) {
        for (label, source) in &self.sources {
            for secret in secrets {
                assert!(
                    !source.contains(secret),
                    "page {label} shows a secret value"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operator_sets_up_a_client_and_manages_members_in_the_browser() {
    let h = Harness::start().await;
    let b = Browser::new().await;
    let mut visits = Visits {
        sources: Vec::new(),
    };
    let admin = h.url("/admin");

    // Given nobody is signed in, the console sends the browser to the sign-in page.
    b.goto(&admin).await;
    b.wait_for(Until::Path("/admin/login"), WAIT).await;
    visits.check(&b, "sign-in", Some("sign-in")).await;

    // A wrong token is refused in words.
    b.fill(
        "Operator token",
        "not-the-token-not-the-token-not-the-token",
    )
    .await;
    b.click_button("Sign in").await;
    b.wait_for(Until::Text("That token was not accepted"), WAIT)
        .await;

    // When the operator signs in with the admin token,
    b.fill("Operator token", ADMIN_TOKEN).await;
    b.click_button("Sign in").await;
    b.wait_for(Until::Path("/admin"), WAIT).await;
    // then the session cookie is HttpOnly and SameSite=Strict, and the dashboard is empty.
    let cookie = b.cookie("dc_console").await.expect("session cookie");
    assert!(cookie.http_only, "{cookie:?}");
    assert_eq!(cookie.same_site.as_deref(), Some("Strict"), "{cookie:?}");
    b.wait_for(Until::Text("No client yet"), WAIT).await;
    visits.check(&b, "dashboard (empty)", None).await;

    // Guided setup: the callback URL to copy is this connector's.
    b.click_link("Set up your first client").await;
    b.wait_for(Until::Path("/admin/clients/new"), WAIT).await;
    let callback = b
        .find("#f-callback_url")
        .await
        .prop("value")
        .await
        .expect("value")
        .unwrap_or_default();
    assert_eq!(callback, h.url("/discord/sso/callback"));
    // A mistyped server id is refused naming the field; what was typed stays, but no secret.
    b.fill("Application ID", h.emu.application_id()).await;
    b.fill("Client Secret", h.emu.client_secret()).await;
    b.fill("Bot token", h.emu.bot_token()).await;
    b.fill("Name", "Test guild").await;
    b.fill("Client id (optional)", CLIENT).await;
    b.fill("Discord server (guild) ID", "my-server").await;
    b.fill("Website origins members may return to", SITE).await;
    b.click("details summary").await;
    b.fill("Discord API base", &h.emu.api_base()).await;
    b.fill("Discord authorize URL", &h.emu.authorize_url())
        .await;
    visits
        .check(&b, "new client", Some("setup-new-client"))
        .await;
    b.click_button("Create client").await;
    b.wait_for(Until::Css("#f-guild_id[aria-invalid=true]"), WAIT)
        .await;
    assert!(b.text().await.contains("guild_id:"), "{}", b.text().await);
    visits.check(&b, "new client (refused)", None).await;
    let value = |css: &'static str| {
        let b = &b;
        async move {
            b.find(css)
                .await
                .prop("value")
                .await
                .expect("value")
                .unwrap_or_default()
        }
    };
    assert_eq!(value("#f-client_id").await, h.emu.application_id());
    assert_eq!(
        value("#f-client_secret").await,
        "",
        "secrets are never echoed"
    );
    assert_eq!(value("#f-bot_token").await, "");
    b.fill("Discord server (guild) ID", h.emu.guild_id()).await;
    b.fill("Client Secret", h.emu.client_secret()).await;
    b.fill("Bot token", h.emu.bot_token()).await;
    b.click_button("Create client").await;

    // Then the setup page says the token works, the roles were synced, and shows the invite.
    b.wait_for(Until::Text("Client created"), WAIT).await;
    assert_eq!(
        b.url().await.path(),
        format!("/admin/clients/{CLIENT}/setup")
    );
    let invite = b
        .find("a[href*='scope=bot']")
        .await
        .attr("href")
        .await
        .expect("href")
        .expect("invite link");
    assert!(
        invite.contains(&format!("guild_id={}", h.emu.guild_id())),
        "{invite}"
    );
    assert!(invite.contains("permissions=402653185"), "{invite}");
    // The members intent is off in Discord: the check says so, and passes once it is on.
    h.emu.set_members_intent(h.emu.guild_id(), false);
    b.click_button("Check again with Discord").await;
    b.wait_for(Until::Text("turn on Server Members Intent"), WAIT)
        .await;
    h.emu.set_members_intent(h.emu.guild_id(), true);
    b.click_button("Check again with Discord").await;
    b.wait_for(Until::Text("Checked against Discord just now"), WAIT)
        .await;
    assert!(!b.text().await.contains("turn on Server Members Intent"));
    assert!(
        b.text().await.contains("Admin"),
        "roles above the bot are named"
    );
    visits.check(&b, "setup steps", Some("setup-steps")).await;

    // Roles: map groups in place; a role above the bot is named in the hierarchy warning.
    b.click_link("Roles").await;
    b.wait_for(Until::Text("Sync roles from Discord"), WAIT)
        .await;
    for (role, groups) in [
        ("Officer", "officers"),
        ("Member", "members"),
        ("Admin", "admins"),
    ] {
        let id = h.role(role);
        b.fill(&format!("groups-{id}"), groups).await;
        b.submit(&format!("form[action$='/roles/{id}']")).await;
        b.wait_for(Until::Text("Mapping saved"), WAIT).await;
    }
    b.wait_for(Until::Text("Move the bot's role above: Admin"), WAIT)
        .await;
    // The operator moves the bot's role up in Discord and syncs (seed step 11).
    h.emu
        .set_role_position(h.emu.guild_id(), &h.role("Connector Bot"), 30);
    b.click_button("Sync roles from Discord").await;
    b.wait_for(Until::Text("Roles synced from Discord"), WAIT)
        .await;
    assert!(!b.text().await.contains("Move the bot's role above"));
    visits.check(&b, "roles", Some("roles")).await;

    // The website links alice and pushes her groups (through the API, as a site backend does).
    h.put_user("alice-site", &["officers", "members"]).await;
    h.link("alice-site", "alice").await;
    h.put_user("bob-site", &["members"]).await;
    assert_eq!(
        h.roles_on_discord("alice"),
        Some(connector_e2e::names(&["Officer", "Member"]))
    );

    // Members: find alice by her Discord username.
    b.click_link("Members").await;
    b.fill("Site user id, Discord username or Discord id", "ALI")
        .await;
    b.click_button("Search").await;
    b.wait_for(Until::Text("alice-site"), WAIT).await;
    assert!(
        !b.text().await.contains("bob-site"),
        "only matches are listed"
    );
    visits.check(&b, "members", Some("members")).await;
    b.click_link("alice-site").await;
    b.wait_for(Until::Text("Member alice-site"), WAIT).await;
    assert!(b.text().await.contains("Officer"));
    visits.check(&b, "member", None).await;

    // Discord fails while the site adds a group: the member page explains the error and shows the
    // pending change.
    h.emu
        .inject_fault(Fault::new("/roles/", 500, 100).with_method("PUT"));
    h.put_user_nowait("alice-site", &["officers", "members", "admins"])
        .await;
    h.wait_for_user("alice-site", |u| !u["last_error"].is_null())
        .await;
    b.goto(&h.url(&format!("/admin/clients/{CLIENT}/members/alice-site")))
        .await;
    b.wait_for(Until::Text("Discord was unavailable"), WAIT)
        .await;
    assert!(
        b.text().await.contains("Would add Admin"),
        "{}",
        b.text().await
    );
    visits.check(&b, "member (pending)", Some("member")).await;
    h.emu.clear_faults();

    // Dry-run verify-groups: the plan, nothing written; then run it for real and read the run.
    b.click_link("Tasks").await;
    b.wait_for(Until::Text("Run history"), WAIT).await;
    b.submit("form[action$='/tasks/verify-groups']:has(input[name=dry_run])")
        .await;
    b.wait_for(Until::Text("Would add Admin to @alice"), WAIT)
        .await;
    assert_eq!(
        h.roles_on_discord("alice"),
        Some(connector_e2e::names(&["Officer", "Member"])),
        "a dry run writes nothing"
    );
    b.click_button("Run it for real").await;
    b.wait_for(Until::Text("Run: Verify groups"), WAIT).await;
    assert!(b.text().await.contains("added Admin"), "{}", b.text().await);
    assert_eq!(
        h.roles_on_discord("alice"),
        Some(connector_e2e::names(&["Officer", "Member", "Admin"]))
    );

    // A moderator removes Officer in Discord; the remote sync's dry run shows the repair before
    // anything is written.
    let guild = h.emu.guild_id().to_owned();
    h.emu.set_member_roles(
        &guild,
        &h.discord_id("alice"),
        [h.role("Member"), h.role("Admin")],
    );
    b.click_link("Tasks").await;
    b.wait_for(Until::Text("Run history"), WAIT).await;
    b.submit("form[action$='/tasks/remote-sync-groups']:has(input[name=dry_run])")
        .await;
    b.wait_for(Until::Text("Would add Officer to @alice"), WAIT)
        .await;
    assert_eq!(
        h.roles_on_discord("alice"),
        Some(connector_e2e::names(&["Member", "Admin"])),
        "a dry run writes nothing"
    );
    visits.check(&b, "dry run", Some("dry-run")).await;
    b.click_button("Run it for real").await;
    b.wait_for(Until::Text("Run: Remote group sync"), WAIT)
        .await;
    let run_text = b.text().await;
    assert!(
        run_text.contains("/guilds/{guild}/members"),
        "calls by route: {run_text}"
    );
    assert_eq!(
        h.roles_on_discord("alice"),
        Some(connector_e2e::names(&["Officer", "Member", "Admin"]))
    );
    visits.check(&b, "run", Some("run")).await;
    b.click_link("Tasks").await;
    b.wait_for(Until::Text("Remote group sync"), WAIT).await;
    visits.check(&b, "tasks", Some("tasks")).await;

    // The audit log, filtered by action, shows the repair.
    b.click_link("Audit log").await;
    b.select("Action", "role.add").await;
    b.click_button("Filter").await;
    b.wait_for(Until::Css("table"), WAIT).await;
    let entries = b.text_of("table").await;
    assert!(
        entries.contains("role.add") && entries.contains("alice-site"),
        "{entries}"
    );
    assert!(!entries.contains("link.create"), "filtered: {entries}");
    visits.check(&b, "audit", Some("audit")).await;

    // The dashboard shows the client's health.
    b.click_link("Dashboard").await;
    b.wait_for(Until::Text("Test guild"), WAIT).await;
    assert!(
        b.text().await.contains("1 linked of 2"),
        "{}",
        b.text().await
    );
    visits.check(&b, "dashboard", Some("dashboard")).await;
    b.phone().await;
    visits
        .check(&b, "dashboard (phone)", Some("dashboard-phone"))
        .await;
    b.set_viewport(1280, 900).await;

    // Website webhooks: setting the URL shows a new signing secret once; the unlink below is
    // then listed as a delivery.
    b.goto(&h.url(&format!("/admin/clients/{CLIENT}/webhooks")))
        .await;
    b.wait_for(Until::Text("Website webhooks"), WAIT).await;
    b.fill("Webhook URL", "https://site.example/hooks").await;
    b.click_button("Save webhook settings").await;
    b.wait_for(Until::Text("New signing secret"), WAIT).await;
    visits.check(&b, "webhooks (new secret)", None).await;

    // Unlink alice after a confirmation: the account is free at once, the writer strips the
    // managed roles.
    b.goto(&h.url(&format!("/admin/clients/{CLIENT}/members/alice-site")))
        .await;
    b.click_link("Unlink…").await;
    b.wait_for(Until::Text("Unlink alice-site?"), WAIT).await;
    visits.check(&b, "unlink confirmation", None).await;
    b.click_button("Unlink").await;
    b.wait_for(Until::Text("Unlinked."), WAIT).await;
    assert!(h.settle().await);
    assert_eq!(h.roles_on_discord("alice"), Some(connector_e2e::names(&[])));
    b.goto(&h.url(&format!("/admin/clients/{CLIENT}/webhooks")))
        .await;
    b.wait_for(Until::Text("link.removed"), WAIT).await;
    visits.check(&b, "webhook deliveries", None).await;

    // Sign out: the session is gone on the server, not just the cookie.
    let session = b.cookie("dc_console").await.expect("cookie").value;
    b.click_button("Sign out").await;
    b.wait_for(Until::Text("Signed out."), WAIT).await;
    let replay = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(&admin)
        .header("cookie", format!("dc_console={session}"))
        .send()
        .await
        .expect("request");
    assert_eq!(replay.status(), reqwest::StatusCode::SEE_OTHER);
    assert!(connector_e2e::location(&replay).starts_with("/admin/login"));

    visits.assert_no_secret(&[h.emu.bot_token(), h.emu.client_secret(), ADMIN_TOKEN]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operator_defines_linked_roles_in_the_browser() {
    // Given a set-up client without Linked Roles and a signed-in operator
    let h = Harness::start().await;
    h.setup_client().await;
    let b = Browser::new().await;
    let mut visits = Visits {
        sources: Vec::new(),
    };
    b.goto(&h.url(&format!("/admin/clients/{CLIENT}"))).await;
    b.wait_for(Until::Path("/admin/login"), WAIT).await;
    b.fill("Operator token", ADMIN_TOKEN).await;
    b.click_button("Sign in").await;
    b.wait_for(Until::Text("Not configured"), WAIT).await;

    // The overview links to the page that defines them
    b.click_link("Define linked roles").await;
    b.wait_for(
        Until::Path(&format!("/admin/clients/{CLIENT}/linked-roles")),
        WAIT,
    )
    .await;
    b.wait_for(Until::Text("Nothing is registered yet"), WAIT)
        .await;
    visits.check(&b, "linked roles (empty)", None).await;

    // When the operator defines a boolean from a group and an integer from an attribute, but
    // gives the second the first one's key
    b.click("input[name=enabled]").await;
    b.fill("Platform name", "Example Site").await;
    b.fill("metadata[0].key", "officer").await;
    b.fill("metadata[0].name", "Officer").await;
    b.fill("metadata[0].description", "Is an officer on the site")
        .await;
    b.select("metadata[0].type", "boolean (yes / no, from a group)")
        .await;
    b.fill("metadata[0].source", "officers").await;
    b.fill("metadata[1].key", "officer").await;
    b.fill("metadata[1].name", "Missions").await;
    b.fill("metadata[1].description", "Missions flown").await;
    b.select("metadata[1].type", "integer (a number, from an attribute)")
        .await;
    b.select("metadata[1].comparison", "greater than or equal (≥)")
        .await;
    b.fill("metadata[1].source", "missions").await;
    b.click_button("Save and register with Discord").await;

    // Then the second record's key is named and marked, what was typed is kept, and nothing is
    // registered or stored
    b.wait_for(Until::Css("#m1-key[aria-invalid=true]"), WAIT)
        .await;
    let text = b.text().await;
    assert!(text.contains("record 2, key"), "{text}");
    assert!(b.text_of("#m1-key-error").await.contains("used twice"));
    let value = |css: &'static str| {
        let b = &b;
        async move {
            b.find(css)
                .await
                .prop("value")
                .await
                .expect("value")
                .unwrap_or_default()
        }
    };
    assert_eq!(value("#m1-source").await, "missions");
    assert_eq!(value("#m1-comparison").await, "greater_than_or_equal");
    assert_eq!(value("#f-platform_name").await, "Example Site");
    assert_eq!(
        b.find("input[name=enabled]")
            .await
            .prop("checked")
            .await
            .expect("checked")
            .as_deref(),
        Some("true")
    );
    assert!(h.emu.role_connection_metadata().is_empty());
    let stored = |h: &connector_e2e::Harness| {
        let store = h.app.store.clone();
        async move {
            store
                .get_client(CLIENT)
                .await
                .expect("client")
                .expect("exists")
                .linked_roles
        }
    };
    assert_eq!(stored(&h).await, None);
    visits.check(&b, "linked roles (refused)", None).await;

    // A boolean compared by order is refused too, naming its comparison
    b.fill("metadata[1].key", "missions").await;
    b.select("metadata[0].comparison", "less than or equal (≤)")
        .await;
    b.click_button("Save and register with Discord").await;
    b.wait_for(Until::Css("#m0-comparison[aria-invalid=true]"), WAIT)
        .await;
    assert!(
        b.text_of("#m0-comparison-error")
            .await
            .contains("a boolean cannot be compared by less_than_or_equal"),
        "{}",
        b.text().await
    );
    assert_eq!(stored(&h).await, None);
    assert!(h.emu.role_connection_metadata().is_empty());

    // When the operator fixes it and saves
    b.select("metadata[0].comparison", "equal (=)").await;
    b.click_button("Save and register with Discord").await;
    b.wait_for(Until::Text("Saved and registered with Discord"), WAIT)
        .await;

    // Then Discord holds both records, ours are stored and on, and the page says they agree
    assert_eq!(
        h.emu.role_connection_metadata(),
        vec![
            serde_json::json!({"type": 7, "key": "officer", "name": "Officer",
                               "description": "Is an officer on the site"}),
            serde_json::json!({"type": 2, "key": "missions", "name": "Missions",
                               "description": "Missions flown"}),
        ]
    );
    let config = stored(&h).await.expect("stored");
    assert!(config.enabled);
    assert_eq!(config.platform_name, "Example Site");
    let state = b.text_of("#sync-state").await;
    assert!(
        state.contains("in sync") && !state.contains("out of sync"),
        "{state}"
    );
    assert_eq!(value("#m1-source").await, "missions");
    assert!(b
        .text_of("table")
        .await
        .contains("integer, greater_than_or_equal"));
    visits.check(&b, "linked roles", Some("linked-roles")).await;

    // And the save is audited as the console's
    let (_, audit) = h
        .api(
            reqwest::Method::GET,
            &format!("/clients/{CLIENT}/audit"),
            None,
        )
        .await;
    let entry = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|e| e["detail"]["linked_roles"].is_object())
        .cloned()
        .expect("audited");
    assert_eq!(entry["actor"], "console", "{entry}");
    assert_eq!(
        entry["detail"]["linked_roles"]["keys"],
        serde_json::json!(["officer", "missions"])
    );

    // The overview keeps its summary and links to the page
    b.click_link("Overview").await;
    b.wait_for(
        Until::Text("Edit linked roles and compare with Discord"),
        WAIT,
    )
    .await;
    assert!(b.text().await.contains("Example Site"));

    visits.assert_no_secret(&[h.emu.bot_token(), h.emu.client_secret(), ADMIN_TOKEN]);
}
