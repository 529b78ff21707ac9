//! Parsers for the value formats of the feeds (feeds.md, Common rules).
//!
//! Local timestamps are China Standard Time (+08:00, no DST): an instant is stored as UTC
//! microseconds, and local dates and quarters are derived by adding the offset back, never
//! from the UTC date.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

/// China Standard Time, in seconds east of UTC.
pub const CST_OFFSET_SECS: i64 = 8 * 3600;

const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// `text` without leading and trailing white space (Unicode's, as `str::trim`), in a few
/// instructions when it has none at either end: the common case, for every field of a file.
#[inline]
pub fn trim(text: &str) -> &str {
    let b = text.as_bytes();
    let (Some(&first), Some(&last)) = (b.first(), b.last()) else {
        return text;
    };
    // A byte above the space and below 0x80 is ASCII and not white space. Of the bytes that
    // start a longer character, only 0xC2 (U+0085, U+00A0) and 0xE1 to 0xE3 (U+1680, U+2000 to
    // U+205F, U+3000) start white space: a field that starts with a Chinese character (a case
    // number's 豫, a type's 法律援助, a 是 or 否) is seen as such without walking it.
    let plain_start =
        (0x21..0x80).contains(&first) || (first >= 0xC3 && !matches!(first, 0xE1..=0xE3));
    let plain_end = (0x21..0x80).contains(&last)
        || (last >= 0x80 && text.chars().next_back().is_some_and(|c| !c.is_whitespace()));
    if plain_start && plain_end {
        text
    } else {
        text.trim()
    }
}

/// Whether `a` and `b` are the same text: as `a == b`, without a call to `memcmp` for texts of
/// 4 to 16 bytes (a code, a date, a label: the conversion compares a code or a date with the
/// one before in its column, and a type with the one an `ignored_unless` rule names, several
/// times per record).
#[inline]
pub fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    let half = |s: &[u8], at: usize| u32::from_le_bytes(s[at..at + 4].try_into().expect("4 bytes"));
    match a.len() {
        // The first and the last 8 (or 4) bytes, which overlap when shorter than 16 (or 8).
        n @ 8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        n @ 4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        _ => a == b,
    }
}

/// `YYYY-MM-DD` or `YYYY/M/D`, as days since 1970-01-01.
pub fn date(text: &str) -> Option<i32> {
    let t = trim(text);
    if let Some(days) = iso_date(t.as_bytes()) {
        return Some(days);
    }
    naive_date(t).map(|d| d.num_days_from_ce() - UNIX_EPOCH_DAYS_FROM_CE)
}

/// The usual shape, `YYYY-MM-DD`, read byte by byte: `None` for anything else, which the
/// general parser then reads (and refuses, if it is not a date).
fn iso_date(b: &[u8]) -> Option<i32> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    days_from_civil(number(&b[..4])? as i32, number(&b[5..7])?, number(&b[8..])?)
}

/// ASCII digits as a number (at most 4 of them here).
fn number(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date, or `None` when there is no such day
/// (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i32, month: u32, day: u32) -> Option<i32> {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > days_in_month {
        return None;
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month as i32 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
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
    let text = trim(text);
    let b = text.as_bytes();
    if b.len() == 19 && b[10] == b' ' && b[13] == b':' && b[16] == b':' {
        if let (Some(day), Some(h), Some(m), Some(s)) = (
            iso_date(&b[..10]),
            number(&b[11..13]),
            number(&b[14..16]),
            number(&b[17..]),
        ) {
            if h < 24 && m < 60 && s < 60 {
                let secs = i64::from(day) * 86_400 + i64::from(h * 3600 + m * 60 + s);
                return Some((secs - CST_OFFSET_SECS) * 1_000_000);
            }
            return None;
        }
    }
    let (d, t) = text.split_once(' ')?;
    let dt = NaiveDateTime::new(naive_date(d)?, naive_time(t.trim_start())?);
    Some((dt.and_utc().timestamp() - CST_OFFSET_SECS) * 1_000_000)
}

/// The local (+08:00) date of a UTC instant in microseconds, as days since the epoch.
pub fn local_day(micros: i64) -> i32 {
    (micros / 1_000_000 + CST_OFFSET_SECS).div_euclid(86_400) as i32
}

/// `true/false`, `1/0`, `是/否`, `Y/N` in any case; empty is false.
pub fn boolean(text: &str) -> Option<bool> {
    // The exports' own words first, compared whole.
    match text {
        "否" => return Some(false),
        "是" => return Some(true),
        _ => {}
    }
    let t = trim(text);
    let is = |words: &[&str]| words.iter().any(|w| w.eq_ignore_ascii_case(t));
    if is(&["", "false", "0", "否", "n"]) {
        Some(false)
    } else if is(&["true", "1", "是", "y"]) {
        Some(true)
    } else {
        None
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
    let t = trim(text);
    // Thousands separators are dropped (a copy only when there are some).
    let t: std::borrow::Cow<str> = if t.contains(',') {
        t.replace(',', "").into()
    } else {
        t.into()
    };
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, &*t),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
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
    fn same_is_equality_whatever_byte_differs() {
        // Every length around the words compared, and a difference at every position (a byte
        // that only the overlap of the two words sees, in the middle of a 15-byte text, too).
        for n in 0..=20 {
            let a: String = "法0123456789abcdefghijklmn".chars().take(n).collect();
            assert!(same(&a, &a.clone()), "{a:?}");
            for i in 0..a.len() {
                let mut b = a.clone().into_bytes();
                b[i] ^= 0x01;
                let Ok(b) = String::from_utf8(b) else {
                    continue;
                };
                assert!(!same(&a, &b), "{a:?} {b:?}");
                assert_eq!(same(&a, &b), a == b);
            }
            let longer = format!("{a}x");
            assert!(!same(&a, &longer) && !same(&longer, &a));
        }
        assert!(same("", ""));
        assert!(same("2025-01-01", "2025-01-01") && !same("2025-01-01", "2025-01-02"));
    }

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
    fn the_fast_paths_agree_with_chrono_on_every_day() {
        // Every day from 1599 to 2401 (leap centuries on both sides), and a few shapes
        // around it, through the byte-by-byte paths and through chrono's.
        let mut day = NaiveDate::from_ymd_opt(1599, 1, 1).unwrap();
        let end = NaiveDate::from_ymd_opt(2401, 12, 31).unwrap();
        let mut n = 0;
        while day <= end {
            let text = day.format("%Y-%m-%d").to_string();
            let expected = day.num_days_from_ce() - UNIX_EPOCH_DAYS_FROM_CE;
            assert_eq!(iso_date(text.as_bytes()), Some(expected), "{text}");
            assert_eq!(date(&text), Some(expected), "{text}");
            let ts = format!("{text} 13:07:59");
            let via_chrono = NaiveDateTime::new(day, NaiveTime::from_hms_opt(13, 7, 59).unwrap())
                .and_utc()
                .timestamp();
            assert_eq!(
                local_timestamp(&ts),
                Some((via_chrono - CST_OFFSET_SECS) * 1_000_000),
                "{ts}"
            );
            day = day.succ_opt().unwrap();
            n += 1;
        }
        assert_eq!(n, 293_290);
        for bad in [
            "2025-02-29",
            "2024-02-30",
            "1900-02-29",
            "2025-04-31",
            "2025-00-10",
            "2025-13-01",
            "2025-01-00",
            "2025-01-32",
            "2025-1a-01",
            "+025-01-01",
        ] {
            assert_eq!(iso_date(bad.as_bytes()), None, "{bad}");
            assert_eq!(date(bad), None, "{bad}");
        }
        assert_eq!(date("2000-02-29"), date("2000/2/29"));
        assert!(date("2000-02-29").is_some());
        for bad in [
            "2025-01-01 24:00:00",
            "2025-01-01 23:60:00",
            "2025-01-01 23:59:60",
        ] {
            assert_eq!(local_timestamp(bad), None, "{bad}");
        }
        assert_eq!(trim(" a "), "a");
        assert_eq!(trim("\u{3000}豫A\u{3000}"), "豫A");
        assert_eq!(trim("豫A"), "豫A");
        assert_eq!(trim("a\t"), "a");
        // Every character at either end, and between two others, as `str::trim` has it.
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            for s in [
                format!("{c}"),
                format!("{c}豫A"),
                format!("豫A{c}"),
                format!("{c}x{c}"),
                format!("法{c}助"),
            ] {
                assert_eq!(trim(&s), s.trim(), "{:?}", c as u32);
            }
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
