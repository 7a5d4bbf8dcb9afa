//! Lambda function `sync-accounts`: the sync-accounts schedule's dispatcher (weekly). The state is built once
//! per cold start; `connector::aws::events` reads the event, skips a delivery already handled
//! and enqueues one sync-accounts job per client with work on the work queue (the `worker` function
//! runs them). It builds only what a tick uses (`connector::aws::dispatch_state`): the store's
//! work index, client list, run log and leases, the queue and the clock.

use connector::aws::{events, Invocation};
use connector::domain::TaskName;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    connector::telemetry::init_lambda();
    let dispatch = connector::aws::dispatch_state().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let dispatch = dispatch.clone();
        async move {
            let invocation =
                Invocation::from_lambda(&event.context.request_id, event.context.deadline);
            events::handle(
                &dispatch,
                TaskName::SyncAccounts,
                event.payload,
                &invocation,
            )
            .await
            .map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
