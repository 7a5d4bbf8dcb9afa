//! Logging set-up for every entry point. Whatever level an operator asks for (`RUST_LOG`,
//! `AWS_LAMBDA_LOG_LEVEL`), the crates that log raw HTTP requests, Lambda events or credentials
//! at DEBUG/TRACE stay at INFO: the Lambda runtime logs whole events (bearer tokens, bodies),
//! HTTP clients log headers. Our own spans carry a request's method and path, never its query.

use tracing_subscriber::EnvFilter;

/// Crates pinned to INFO.
pub const PINNED_TO_INFO: &[&str] = &[
    "lambda_runtime",
    "lambda_runtime_api_client",
    "lambda_http",
    "aws_lambda_events",
    "hyper",
    "hyper_util",
    "h2",
    "reqwest",
    "rustls",
    "oauth2",
    "aws_config",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_smithy_http",
    "aws_sigv4",
    "aws_sdk_dynamodb",
    "aws_sdk_secretsmanager",
    "aws_sdk_sqs",
    "aws_sdk_sts",
];

/// The filter for `requested` (an `EnvFilter` string such as `trace` or `info,connector=debug`)
/// with [`PINNED_TO_INFO`] applied over it.
pub fn filter(requested: &str) -> EnvFilter {
    let mut filter = EnvFilter::builder().parse_lossy(requested);
    for target in PINNED_TO_INFO {
        if let Ok(directive) = format!("{target}=info").parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

/// The self-hosted binary: `RUST_LOG`, or `default`.
pub fn init_cli(default: &str) {
    let requested = std::env::var("RUST_LOG").unwrap_or_else(|_| default.to_owned());
    tracing_subscriber::fmt()
        .with_env_filter(filter(&requested))
        .with_target(false)
        .init();
}

/// A Lambda function: Lambda's advanced logging controls (`AWS_LAMBDA_LOG_LEVEL`,
/// `AWS_LAMBDA_LOG_FORMAT=json`) or `RUST_LOG`, INFO by default; no timestamps (CloudWatch adds
/// them).
pub fn init_lambda() {
    let requested = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_owned());
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter(&requested.to_lowercase()))
        .with_target(false)
        .without_time();
    if json {
        fmt.json().init();
    } else {
        fmt.init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_crates_stay_at_info_whatever_is_asked() {
        for requested in [
            "trace",
            "debug",
            "hyper=trace,trace",
            "lambda_runtime=trace",
        ] {
            let shown = filter(requested).to_string();
            for target in PINNED_TO_INFO {
                assert!(
                    shown.contains(&format!("{target}=info")),
                    "{requested}: {shown}"
                );
                assert!(
                    !shown.contains(&format!("{target}=trace")),
                    "{requested}: {shown}"
                );
            }
        }
        assert!(filter("trace").to_string().contains("trace"));
    }
}
