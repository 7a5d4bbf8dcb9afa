//! A running emulator: the HTTP server task plus in-process access to its state for tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::audit::AuditLogEntry;
use crate::claims::ClaimRefused;
use crate::consent::Consent;
use crate::events::EventDelivery;
use crate::fault::Fault;
use crate::http::router;
use crate::linked::LinkedRequirement;
use crate::ratelimit::RateLimits;
use crate::requests::RecordedRequest;
use crate::scenario::{Scenario, ScenarioRole, ScenarioUser};
use crate::shared::{lock, Shared};
use crate::views::{MemberView, StateView};
use crate::world::parse_id;

/// Methods returning `bool` report whether the guild/member/role existed (and so whether the
/// change was applied); tests may ignore it.
pub struct Emulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl Emulator {
    /// Binds `127.0.0.1` on an ephemeral port.
    pub async fn start(scenario: Scenario) -> std::io::Result<Emulator> {
        Self::start_on(scenario, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    pub async fn start_on(scenario: Scenario, addr: SocketAddr) -> std::io::Result<Emulator> {
        let shared = Shared::new(scenario).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("invalid scenario: {e}"),
            )
        })?;
        let shared = Arc::new(shared);
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let app = router(shared.clone());
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(error) = serve.await {
                tracing::error!(%error, "discord emulator server stopped");
            }
        });
        Ok(Emulator {
            shared,
            addr,
            stop: Some(stop),
            server: Some(server),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `{base}/api/v10`
    pub fn api_base(&self) -> String {
        format!("{}/api/v10", self.base_url())
    }

    /// `{base}/oauth2/authorize`
    pub fn authorize_url(&self) -> String {
        format!("{}/oauth2/authorize", self.base_url())
    }

    /// The scenario as seeded (later changes show in [`Emulator::state`]).
    pub fn scenario(&self) -> &Scenario {
        &self.shared.scenario
    }

    pub fn application_id(&self) -> &str {
        &self.shared.scenario.application.id
    }

    pub fn client_secret(&self) -> &str {
        &self.shared.scenario.application.client_secret
    }

    pub fn bot_token(&self) -> &str {
        &self.shared.scenario.application.bot_token
    }

    pub fn bot_user_id(&self) -> &str {
        &self.shared.scenario.application.bot_user.id
    }

    /// The first guild of the scenario (empty when it has none).
    pub fn guild_id(&self) -> &str {
        self.shared
            .scenario
            .first_guild()
            .map(|g| g.id.as_str())
            .unwrap_or_default()
    }

    /// Id of the first role with this name in the first guild.
    pub fn role_id(&self, name: &str) -> Option<String> {
        let world = lock(&self.shared.world);
        let guild = world.guild(self.guild_id()).ok()?;
        let (id, _) = guild.roles.iter().find(|(_, r)| r.name == name)?;
        Some(id.to_string())
    }

    /// Id of the user with this username (scenario or added users).
    pub fn user_id(&self, username: &str) -> Option<String> {
        let world = lock(&self.shared.world);
        world
            .users
            .values()
            .find(|u| u.username == username)
            .map(|u| u.id.clone())
    }

    pub fn state(&self) -> StateView {
        self.shared.state_view()
    }

    pub fn member(&self, guild: &str, user: &str) -> Option<MemberView> {
        self.shared.member(guild, user)
    }

    pub fn members(&self, guild: &str) -> Vec<MemberView> {
        self.shared.members(guild)
    }

    /// Out-of-band role change, as a moderator in Discord's client would make.
    pub fn set_member_roles(
        &self,
        guild: &str,
        user: &str,
        roles: impl IntoIterator<Item = String>,
    ) -> bool {
        self.shared
            .set_member_roles(guild, user, roles.into_iter().collect())
    }

    pub fn add_member(
        &self,
        guild: &str,
        user: &str,
        nick: Option<&str>,
        roles: impl IntoIterator<Item = String>,
    ) -> bool {
        self.shared.add_member(
            guild,
            user,
            nick.map(str::to_owned),
            roles.into_iter().collect(),
        )
    }

    /// Members with user ids `first_user_id..first_user_id + count`, all holding `roles`; their
    /// users are synthesized (`user<id>`), so no user records are needed.
    pub fn add_members_bulk(
        &self,
        guild: &str,
        first_user_id: u64,
        count: u64,
        roles: &[String],
    ) -> bool {
        self.shared
            .add_members_bulk(guild, first_user_id, count, roles)
    }

    pub fn remove_member(&self, guild: &str, user: &str) -> bool {
        self.shared.remove_member(guild, user)
    }

    pub fn add_user(&self, user: ScenarioUser) -> bool {
        self.shared.add_user(user)
    }

    pub fn ban(&self, guild: &str, user: &str) -> bool {
        self.shared.ban(guild, user)
    }

    /// Creates the role, or replaces name/position/flags/Linked Roles requirements of an
    /// existing one (claims are then checked again).
    pub fn upsert_role(&self, guild: &str, role: ScenarioRole) -> bool {
        self.shared.upsert_role(guild, &role)
    }

    pub fn set_role_position(&self, guild: &str, role: &str, position: i64) -> bool {
        self.shared.set_role_position(guild, role, position)
    }

    pub fn delete_role(&self, guild: &str, role: &str) -> bool {
        self.shared.delete_role(guild, role)
    }

    pub fn set_members_intent(&self, guild: &str, on: bool) -> bool {
        self.shared.set_members_intent(guild, on)
    }

    pub fn set_consent(&self, consent: Consent) {
        lock(&self.shared.settings).consent = consent;
    }

    /// Replaces the limits and forgets current windows.
    pub fn set_rate_limits(&self, limits: RateLimits) {
        lock(&self.shared.settings).rate_limits = limits;
        lock(&self.shared.limiter).reset();
    }

    /// Added before every Discord route answers.
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.shared.settings).latency = latency;
    }

    pub fn inject_fault(&self, fault: Fault) {
        lock(&self.shared.faults).push(fault);
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Moves the emulator clock (token and code expiry, rate-limit windows); may be negative.
    pub fn advance_clock(&self, secs: i64) {
        self.shared.clock.advance(secs);
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// The application's Linked Roles metadata records, as Discord holds them.
    pub fn role_connection_metadata(&self) -> Vec<serde_json::Value> {
        lock(&self.shared.role_connection_metadata).clone()
    }

    /// The role connection `user` holds with the application (Linked Roles), if any was written.
    pub fn role_connection(&self, user: &str) -> Option<serde_json::Value> {
        let user = parse_id(user)?;
        lock(&self.shared.role_connections).get(&user).cloned()
    }

    /// Replaces `user`'s role connection out of band (another app version, a support fix), so a
    /// test can make it drift; false for an unknown id.
    pub fn set_role_connection(&self, user: &str, connection: serde_json::Value) -> bool {
        let Some(user) = parse_id(user) else {
            return false;
        };
        lock(&self.shared.role_connections).insert(user, connection);
        // As after the user's own PUT: claimed linked roles they no longer qualify for go.
        self.shared.role_connection_changed(user);
        true
    }

    /// Sets a role's Linked Roles requirements, as a server admin does in the role's Links
    /// (empty removes them); members who claimed it and no longer qualify lose it. False when
    /// the guild or role is unknown.
    pub fn set_linked_requirements(
        &self,
        guild: &str,
        role: &str,
        requirements: Vec<LinkedRequirement>,
    ) -> bool {
        self.shared
            .set_linked_requirements(guild, role, requirements)
    }

    /// Whether `user` meets the linked `role`'s requirements; `None` when it has none.
    pub fn qualifies(&self, guild: &str, role: &str, user: &str) -> Option<bool> {
        self.shared.qualifies(guild, role, user)
    }

    /// `user` claims the linked `role` themselves (Discord: server menu → Linked Roles): they
    /// get it when they are in the guild and their role connection meets its requirements;
    /// answers the member as they are now. They lose it again when a change of their role
    /// connection or of the requirements means they no longer qualify.
    pub fn claim_linked_role(
        &self,
        guild: &str,
        role: &str,
        user: &str,
    ) -> Result<MemberView, ClaimRefused> {
        self.shared.claim_linked_role(guild, role, user)?;
        self.member(guild, user).ok_or(ClaimRefused::UnknownMember)
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// 429 responses sent so far (rate limits and injected 429s).
    pub fn rate_limited_count(&self) -> u64 {
        self.shared.rate_limited_count()
    }

    pub fn audit_log(&self, guild: &str) -> Vec<AuditLogEntry> {
        self.shared.audit_log(guild)
    }

    /// Every OAuth access and refresh token this emulator has issued, so a test can check that
    /// none of them shows up where it must not (logs, API answers).
    pub fn issued_tokens(&self) -> Vec<String> {
        lock(&self.shared.oauth).issued_tokens()
    }

    /// Authorizations of this user that are not revoked.
    pub fn active_grants(&self, user: &str) -> usize {
        parse_id(user).map_or(0, |u| lock(&self.shared.oauth).active_grants(u))
    }

    /// The user removed the app in Discord: every token of theirs stops working, and — when an
    /// events URL is set and they had authorized the application — a signed
    /// APPLICATION_DEAUTHORIZED event is POSTed there in the background, as Discord does (see
    /// [`Emulator::event_deliveries`]; [`Emulator::deauthorize`] waits for it instead).
    pub fn revoke_user_grants(&self, user: &str) {
        let Some(body) = parse_id(user).and_then(|u| self.shared.deauthorize_user(u)) else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let shared = self.shared.clone();
            runtime.spawn(async move {
                shared
                    .deliver("APPLICATION_DEAUTHORIZED", body, None, None)
                    .await
            });
        }
    }

    /// Like [`Emulator::revoke_user_grants`], but waits for the event's delivery. `None` when
    /// the user had not authorized the application or no events URL is set.
    pub async fn deauthorize(&self, user: &str) -> Option<EventDelivery> {
        let body = parse_id(user).and_then(|u| self.shared.deauthorize_user(u))?;
        self.shared
            .deliver("APPLICATION_DEAUTHORIZED", body, None, None)
            .await
    }

    /// The application's Ed25519 public key in hex, as the developer portal shows it (General
    /// Information → Public Key): a connector verifies Webhook Events with it.
    pub fn public_key(&self) -> String {
        self.shared.public_key_hex()
    }

    /// The Events Endpoint URL Webhook Events are POSTed to.
    pub fn set_events_url(&self, url: &str) {
        lock(&self.shared.settings).events_url = Some(url.to_owned());
    }

    pub fn clear_events_url(&self) {
        lock(&self.shared.settings).events_url = None;
    }

    /// `X-Signature-Ed25519` for `timestamp` + `body`, signed with the application's key: lets a
    /// test build a request that is signed but wrong in some other way (old, tampered).
    pub fn sign_event(&self, timestamp: &str, body: &[u8]) -> String {
        crate::events::sign(&self.shared.events_key, timestamp, body)
    }

    /// Discord's PING (`type` 0), signed now. `None` without an events URL.
    pub async fn send_ping(&self) -> Option<EventDelivery> {
        let body = crate::events::ping_body(self.application_id());
        self.shared.deliver("PING", body, None, None).await
    }

    /// An event (`type` 1) of `kind` with `data`, signed now, e.g.
    /// `send_event("APPLICATION_AUTHORIZED", json!({"user": {"id": …}}))`.
    pub async fn send_event(&self, kind: &str, data: serde_json::Value) -> Option<EventDelivery> {
        let body =
            crate::events::event_body(self.application_id(), kind, self.shared.clock.now(), data);
        self.shared.deliver(kind, body, None, None).await
    }

    /// Any body with any headers: `timestamp` defaults to now, `signature` to the correct one
    /// (`Some(None)` leaves the header out, `Some(Some(x))` sends `x`).
    pub async fn send_raw_event(
        &self,
        body: Vec<u8>,
        timestamp: Option<String>,
        signature: Option<Option<String>>,
    ) -> Option<EventDelivery> {
        self.shared.deliver("RAW", body, timestamp, signature).await
    }

    /// Every Webhook Event POSTed so far, oldest first.
    pub fn event_deliveries(&self) -> Vec<EventDelivery> {
        lock(&self.shared.deliveries).clone()
    }

    /// Stops accepting connections and waits for in-flight requests.
    pub async fn shutdown(mut self) {
        self.stop_server();
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    fn stop_server(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop_server();
    }
}
