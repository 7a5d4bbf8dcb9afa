//! Logging set-up for every entry point. Whatever level an operator asks for (`RUST_LOG`,
//! `AWS_LAMBDA_LOG_LEVEL`), the crates that log raw HTTP requests, Lambda events or credentials
//! at DEBUG/TRACE stay at INFO: the Lambda runtime logs whole events (bearer tokens, bodies),
//! HTTP clients log headers. Our own spans carry a request's method and path, never its query.
//!
//! The filter is `tracing_subscriber`'s `Targets` (`target=level` directives), not `EnvFilter`:
//! the same syntax for what operators write, without a regex engine in every Lambda bootstrap.

use std::str::FromStr;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

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

/// The filter for `requested` (`trace`, `info,connector=debug`, …; unparsable parts are
/// ignored, INFO when nothing is left) with [`PINNED_TO_INFO`] applied over it: those crates log
/// at the requested default level, but never above INFO.
pub fn filter(requested: &str) -> Targets {
    let asked = requested
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty() && Targets::from_str(d).is_ok())
        .collect::<Vec<_>>()
        .join(",");
    if asked.is_empty() {
        return filter("info");
    }
    let asked = Targets::from_str(&asked).unwrap_or_default();
    let default = asked
        .default_level()
        .unwrap_or(if asked.iter().next().is_none() {
            LevelFilter::INFO
        } else {
            LevelFilter::OFF
        });
    let mut filter = Targets::new().with_default(default);
    for (target, level) in asked.iter() {
        if !PINNED_TO_INFO.contains(&target) {
            filter = filter.with_target(target.to_owned(), level);
        }
    }
    for target in PINNED_TO_INFO {
        filter = filter.with_target(*target, default.min(LevelFilter::INFO));
    }
    filter
}

/// The self-hosted binary: `RUST_LOG`, or `default`.
pub fn init_cli(default: &str) {
    let requested = std::env::var("RUST_LOG").unwrap_or_else(|_| default.to_owned());
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_target(false))
        .with(filter(&requested))
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
    let layer = tracing_subscriber::fmt::layer()
        .with_target(false)
        .without_time();
    let registry = tracing_subscriber::registry().with(filter(&requested.to_lowercase()));
    if json {
        registry.with(layer.json()).init();
    } else {
        registry.with(layer).init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn pinned_crates_stay_at_info_whatever_is_asked() {
        for requested in [
            "trace",
            "debug",
            "hyper=trace,trace",
            "lambda_runtime=trace,debug",
        ] {
            let f = filter(requested);
            for target in PINNED_TO_INFO {
                assert!(
                    f.would_enable(target, &Level::INFO),
                    "{requested}: {target}"
                );
                assert!(
                    !f.would_enable(target, &Level::DEBUG),
                    "{requested}: {target}"
                );
            }
        }
        let f = filter("trace");
        assert!(f.would_enable("connector::http", &Level::TRACE));
    }

    #[test]
    fn an_operators_filter_is_kept_for_everything_else() {
        let f = filter("warn,connector=debug,nonsense=loud");
        assert!(f.would_enable("connector::work", &Level::DEBUG));
        assert!(!f.would_enable("tower_http", &Level::INFO));
        assert!(f.would_enable("tower_http", &Level::WARN));
        let off = filter("off");
        assert!(!off.would_enable("connector", &Level::ERROR));
        assert!(
            !off.would_enable("hyper", &Level::INFO),
            "pinned crates follow a lower level"
        );
        assert!(filter("").would_enable("connector", &Level::INFO));
    }
}
