//! Wall-clock time that tests can push forward, so expiry and rate-limit windows need no sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Default)]
pub(crate) struct Clock {
    offset_millis: AtomicI64,
}

impl Clock {
    /// Seconds since the Unix epoch, fractional (the unit of Discord's rate-limit headers).
    pub(crate) fn now(&self) -> f64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        real + self.offset_millis.load(Ordering::Relaxed) as f64 / 1000.0
    }

    pub(crate) fn advance(&self, secs: i64) {
        self.offset_millis
            .fetch_add(secs.saturating_mul(1000), Ordering::Relaxed);
    }
}

/// ISO 8601 / RFC 3339 in UTC (`joined_at` on members), without pulling in a date crate.
pub(crate) fn rfc3339(epoch_secs: f64) -> String {
    let micros = (epoch_secs * 1_000_000.0) as i64;
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:06}+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00.000000+00:00");
        assert_eq!(rfc3339(1_709_251_200.5), "2024-03-01T00:00:00.500000+00:00");
    }

    #[test]
    fn advancing_moves_now() {
        let clock = Clock::default();
        let before = clock.now();
        clock.advance(600);
        assert!(clock.now() - before >= 599.9);
    }
}
