//! Parsers for the value formats of the feeds (feeds.md, Common rules).
//!
//! Local timestamps are China Standard Time (+08:00, no DST): an instant is stored as UTC
//! microseconds, and local dates and quarters are derived by adding the offset back, never
//! from the UTC date.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

/// China Standard Time, in seconds east of UTC.
pub const CST_OFFSET_SECS: i64 = 8 * 3600;

const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// `YYYY-MM-DD` or `YYYY/M/D`, as days since 1970-01-01.
pub fn date(text: &str) -> Option<i32> {
    naive_date(text.trim()).map(|d| d.num_days_from_ce() - UNIX_EPOCH_DAYS_FROM_CE)
}

use chrono::Datelike;

fn naive_date(t: &str) -> Option<NaiveDate> {
    let (sep, short_ok) = if t.contains('-') {
        ('-', false)
    } else if t.contains('/') {
        ('/', true)
    } else {
        return None;
    };
    let mut parts = t.split(sep);
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 {
        return None;
    }
    let ok_len = |s: &str| {
        if short_ok {
            (1..=2).contains(&s.len())
        } else {
            s.len() == 2
        }
    };
    if !ok_len(m) || !ok_len(d) {
        return None;
    }
    NaiveDate::from_ymd_opt(digits(y)? as i32, digits(m)?, digits(d)?)
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn naive_time(t: &str) -> Option<NaiveTime> {
    let mut parts = t.split(':');
    let (h, m, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !(1..=2).contains(&h.len()) || m.len() != 2 || s.len() != 2 {
        return None;
    }
    NaiveTime::from_hms_opt(digits(h)?, digits(m)?, digits(s)?)
}

/// A local timestamp `YYYY-MM-DD HH:MM:SS` (or `YYYY/M/D H:MM:SS`), as UTC microseconds.
pub fn local_timestamp(text: &str) -> Option<i64> {
    let (d, t) = text.trim().split_once(' ')?;
    let dt = NaiveDateTime::new(naive_date(d)?, naive_time(t.trim_start())?);
    Some((dt.and_utc().timestamp() - CST_OFFSET_SECS) * 1_000_000)
}

/// The local (+08:00) date of a UTC instant in microseconds, as days since the epoch.
pub fn local_day(micros: i64) -> i32 {
    (micros / 1_000_000 + CST_OFFSET_SECS).div_euclid(86_400) as i32
}

/// `true/false`, `1/0`, `是/否`, `Y/N` in any case; empty is false.
pub fn boolean(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "false" | "0" | "否" | "n" => Some(false),
        "true" | "1" | "是" | "y" => Some(true),
        _ => None,
    }
}

/// An integer; `4` and `4.0` are the same, `4.5` is not an integer.
pub fn integer(text: &str) -> Option<i64> {
    let t = text.trim();
    if let Ok(v) = t.parse::<i64>() {
        return Some(v);
    }
    let (int, frac) = t.split_once('.')?;
    if !frac.is_empty() && frac.bytes().all(|b| b == b'0') {
        int.parse().ok()
    } else {
        None
    }
}

/// Yuan as an exact decimal with two places (fen). More places are accepted only when zero;
/// a negative amount parses (the caller decides it is not allowed).
pub fn money_fen(text: &str) -> Option<i128> {
    let t = text.trim().replace(',', "");
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest.to_string()),
        None => (false, t),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t.as_str(), ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || int.len() > 16 {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (cents, rest) = frac.split_at(frac.len().min(2));
    if !rest.bytes().all(|b| b == b'0') {
        return None;
    }
    let mut fen: i128 = int.parse::<i128>().ok()? * 100;
    if !cents.is_empty() {
        let c: i128 = cents.parse().ok()?;
        fen += if cents.len() == 1 { c * 10 } else { c };
    }
    Some(if neg { -fen } else { fen })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_local_time() {
        // 2025-09-30 23:59:59 +08:00 = 2025-09-30 15:59:59 UTC
        let t = local_timestamp("2025-09-30 23:59:59").unwrap();
        assert_eq!(t, 1_759_247_999_000_000);
        assert_eq!(local_day(t), date("2025-09-30").unwrap());
        let u = local_timestamp("2025-10-01 00:00:00").unwrap();
        assert_eq!(u - t, 1_000_000);
        assert_eq!(local_day(u), date("2025-10-01").unwrap());
        assert_eq!(local_timestamp("2025/10/1 0:00:00"), Some(u));
    }

    #[test]
    fn bad_timestamps_are_refused() {
        for bad in [
            "2025-09-31 10:00:00",
            "2025-09-30 25:10:00",
            "2025-09-30",
            "2025-9-30 10:00:00",
            "30/09/2025 10:00:00",
            "2025-09-30T10:00:00",
            "2025-09-30 10:00",
            "",
        ] {
            assert_eq!(local_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(date("1970-01-02"), Some(1));
        assert_eq!(date("2025/3/1"), date("2025-03-01"));
        assert_eq!(date("2025-02-29"), None);
        assert_eq!(date("2025-3-1"), None);
    }

    #[test]
    fn booleans() {
        for (t, v) in [
            ("是", true),
            ("否", false),
            ("Y", true),
            ("n", false),
            ("TRUE", true),
            ("0", false),
            ("", false),
        ] {
            assert_eq!(boolean(t), Some(v), "{t}");
        }
        assert_eq!(boolean("yes"), None);
    }

    #[test]
    fn integers_and_money() {
        assert_eq!(integer("4"), Some(4));
        assert_eq!(integer("4.0"), Some(4));
        assert_eq!(integer("4.5"), None);
        assert_eq!(money_fen("1234.5"), Some(123_450));
        assert_eq!(money_fen("1,234.56"), Some(123_456));
        assert_eq!(money_fen("0.10"), Some(10));
        assert_eq!(money_fen("7.000"), Some(700));
        assert_eq!(money_fen("7.001"), None);
        assert_eq!(money_fen("-3"), Some(-300));
        assert_eq!(money_fen("abc"), None);
    }
}
