//! What the Lambda context says about one invocation: its request id and when to stop.
//!
//! Plain data on purpose: the functions hand over the context's request id and deadline, so the
//! event handling is tested without Lambda types.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Time kept back from Lambda's deadline to finish the current member, record the run and
/// answer before Lambda ends the invocation.
pub const SAFETY_MARGIN: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Invocation {
    /// Lambda's request id. Lambda keeps it when it retries an asynchronous invocation (or
    /// delivers the same one twice), so it identifies the delivery when the event has no id.
    pub request_id: String,
    /// When to stop starting new work.
    pub deadline: Instant,
}

impl Invocation {
    /// From the Lambda context's request id and deadline (milliseconds since the Unix epoch).
    ///
    /// `cargo lambda watch` (1.9) sends the function's timeout in milliseconds instead of an
    /// epoch deadline; a value before 2001 cannot be an epoch deadline, so it is read as the
    /// time remaining.
    pub fn from_lambda(request_id: &str, deadline_epoch_ms: u64) -> Self {
        const YEAR_2001_MS: u64 = 978_307_200_000;
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        let remaining = Duration::from_millis(if deadline_epoch_ms < YEAR_2001_MS {
            deadline_epoch_ms
        } else {
            deadline_epoch_ms.saturating_sub(now_ms)
        });
        Self {
            request_id: request_id.to_owned(),
            deadline: Instant::now() + work_time(remaining),
        }
    }
}

/// The part of `remaining` a run may spend: all but [`SAFETY_MARGIN`], or three quarters of it
/// when the function's timeout is too short for the full margin.
pub fn work_time(remaining: Duration) -> Duration {
    remaining.saturating_sub(SAFETY_MARGIN.min(remaining / 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_safety_margin_before_lambdas_deadline() {
        assert_eq!(
            work_time(Duration::from_secs(120)),
            Duration::from_secs(110)
        );
        assert_eq!(work_time(Duration::from_secs(20)), Duration::from_secs(15));
        assert_eq!(work_time(Duration::ZERO), Duration::ZERO);
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let lambda = Invocation::from_lambda("r", now_ms + 60_000);
        let left = lambda.deadline - Instant::now();
        assert!(
            left > Duration::from_secs(45) && left <= Duration::from_secs(50),
            "{left:?}"
        );
        let past = Invocation::from_lambda("r", now_ms - 1_000);
        assert!(past.deadline <= Instant::now());
        // cargo lambda watch: the timeout, not a deadline
        let watch = Invocation::from_lambda("r", 600_000);
        assert!(watch.deadline > Instant::now() + Duration::from_secs(500));
    }
}
