//! Lambda function `verify-groups`: its scheduled task (every 5 minutes) for every client.
//! The state is built once per cold start; `connector::tasks::invocation` reads the event
//! and runs the task within the invocation's remaining time.

use connector::domain::TaskName;
use connector::tasks::invocation::{handle, Invocation};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let state = connector::aws::state_from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let state = state.clone();
        async move {
            let invocation =
                Invocation::from_lambda(&event.context.request_id, event.context.deadline);
            handle(&state, TaskName::VerifyGroups, event.payload, &invocation)
                .await
                .map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
