//! Lambda function `sso-callback`: Discord sends members here after the consent screen
//! (`GET /discord/sso/callback`), and its signed Webhook Events (`POST /discord/events`). The
//! state is built once per cold start; the shared SSO router does the rest (no admin API, no
//! console).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    connector::telemetry::init_lambda();
    let state = connector::aws::state_for(connector::aws::Entry::SsoCallback).await?;
    lambda_http::run(connector::http::sso_router(state)).await
}
