//! Lambda function `admin-api`: the admin API (`/api/v1/…`), the operator console (`/admin`)
//! and `/healthz`. The state is built
//! once per cold start; the shared router does the rest.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    connector::telemetry::init_lambda();
    let state = connector::aws::state_for(connector::aws::Entry::AdminApi).await?;
    lambda_http::run(connector::http::api_router(state)).await
}
