//! Linked Roles as a server sees them: a role's requirements (server settings → Roles → Links),
//! checked against a member's role connection the way Discord compares each metadata type.
//! Who claims and keeps a linked role is `claims.rs`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One requirement on a role: the metadata `key` compared with `value` by the record's type.
/// Integers and booleans (`"1"`/`"0"`) as strings; for a datetime record, `value` is a number
/// of days, as in Discord's settings ("at least N days ago" for type 5).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkedRequirement {
    pub key: String,
    pub value: String,
}

/// Whether a member with `connection` meets every requirement, given the application's
/// `records`. A requirement on an unregistered key, or a value the member lacks, is unmet.
pub(crate) fn qualifies(
    requirements: &[LinkedRequirement],
    records: &[Value],
    connection: Option<&Value>,
    now_secs: f64,
) -> bool {
    let Some(connection) = connection else {
        return false;
    };
    requirements.iter().all(|req| {
        let kind = records
            .iter()
            .find(|r| r["key"] == req.key.as_str())
            .and_then(|r| r["type"].as_u64());
        let Some(have) = connection["metadata"][req.key.as_str()].as_str() else {
            return false;
        };
        match kind {
            Some(kind @ 1..=4) => match (have.parse::<i64>(), req.value.parse::<i64>()) {
                (Ok(have), Ok(want)) => match kind {
                    1 => have <= want,
                    2 => have >= want,
                    3 => have == want,
                    _ => have != want,
                },
                _ => false,
            },
            Some(kind @ 5..=6) => match (days(have), req.value.parse::<i64>()) {
                (Some(day), Ok(want)) => {
                    let today = (now_secs / 86_400.0).floor() as i64;
                    let ago = today - day;
                    if kind == 5 {
                        ago >= want
                    } else {
                        ago <= want
                    }
                }
                _ => false,
            },
            Some(7) => have == req.value,
            Some(8) => have != req.value,
            _ => false,
        }
    })
}

/// Days since 1970-01-01 of an ISO 8601 date (`YYYY-MM-DD[T…]`), proleptic Gregorian.
fn days(iso: &str) -> Option<i64> {
    let y: i64 = iso.get(0..4)?.parse().ok()?;
    let m: i64 = iso.get(5..7)?.parse().ok()?;
    let d: i64 = iso.get(8..10)?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dates_count_days_from_the_epoch() {
        assert_eq!(days("1970-01-01"), Some(0));
        assert_eq!(days("2000-03-01T00:00:00Z"), Some(11_017));
        assert_eq!(days("nope"), None);
    }

    #[test]
    fn each_type_compares_like_discord() {
        let records = [
            json!({"type": 7, "key": "officer"}),
            json!({"type": 2, "key": "missions"}),
            json!({"type": 5, "key": "since"}),
        ];
        let conn = json!({"metadata": {"officer": "1", "missions": "3", "since": "1970-01-01"}});
        let req = |key: &str, value: &str| {
            vec![LinkedRequirement {
                key: key.into(),
                value: value.into(),
            }]
        };
        let now = 10.0 * 86_400.0;
        assert!(qualifies(&req("officer", "1"), &records, Some(&conn), now));
        assert!(!qualifies(&req("officer", "0"), &records, Some(&conn), now));
        assert!(qualifies(&req("missions", "3"), &records, Some(&conn), now));
        assert!(!qualifies(
            &req("missions", "4"),
            &records,
            Some(&conn),
            now
        ));
        assert!(qualifies(&req("since", "10"), &records, Some(&conn), now));
        assert!(!qualifies(&req("since", "11"), &records, Some(&conn), now));
        assert!(!qualifies(&req("unknown", "1"), &records, Some(&conn), now));
        assert!(!qualifies(&req("officer", "1"), &records, None, now));
    }
}
