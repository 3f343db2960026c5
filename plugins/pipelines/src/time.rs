//! Timestamps as the host writes them (`2026-11-23T19:41:03.123456Z`). A plugin has
//! no clock and no time library; the stage history only needs differences.

/// Seconds since 1970 of an RFC 3339 UTC timestamp (fractions dropped).
pub fn unix_seconds(at: &str) -> Option<i64> {
    let (date, rest) = at.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let clock = rest.trim_end_matches('Z');
    let clock = clock.split('.').next()?;
    let mut t = clock.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, min, s) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    Some(days_from_civil(y, m, day) * 86_400 + h * 3_600 + min * 60 + s)
}

/// Seconds from `from` to `to`.
pub fn seconds_between(from: &str, to: &str) -> Option<i64> {
    Some(unix_seconds(to)? - unix_seconds(from)?)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_become_seconds() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_seconds("2000-03-01T00:00:01.5Z"), Some(951_868_801));
        assert_eq!(
            seconds_between("2026-02-28T23:00:00.000001Z", "2026-03-01T01:00:00Z"),
            Some(7_200)
        );
        assert_eq!(unix_seconds("yesterday"), None);
    }
}
