//! Lambda function `worker`: the work queue's consumer (SQS FIFO, one message group per client).
//! The state is built once per cold start; `connector::aws::worker` runs each job of the batch
//! within the invocation's remaining time and answers which messages to deliver again
//! (`ReportBatchItemFailures`).

use connector::aws::worker::{self, SqsEvent};
use connector::aws::{Entry, Invocation};
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    connector::telemetry::init_lambda();
    let state = connector::aws::state_for(Entry::Worker).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let state = state.clone();
        async move {
            let invocation =
                Invocation::from_lambda(&event.context.request_id, event.context.deadline);
            Ok::<_, lambda_runtime::Error>(worker::handle(&state, event.payload, &invocation).await)
        }
    }))
    .await
}
