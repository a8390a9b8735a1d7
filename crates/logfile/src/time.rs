//! Times of day as they appear in log lines (`HH:MM:SS.mmm`, UTC) and the
//! conversions between epoch milliseconds, days and file names.

use chrono::{DateTime, NaiveDate, Utc};
use std::fmt;

/// Milliseconds in one day.
pub const DAY_MS: i64 = 86_400_000;

/// A time of day with millisecond resolution, as written in a log line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeOfDay(u32);

impl TimeOfDay {
    /// Builds a time of day from milliseconds since midnight, if below 24 h.
    pub fn from_millis(ms: u32) -> Option<Self> {
        (i64::from(ms) < DAY_MS).then_some(Self(ms))
    }

    /// Milliseconds since midnight.
    pub fn millis(self) -> u32 {
        self.0
    }

    /// Parses exactly `HH:MM:SS.mmm`.
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 12 || b[2] != b':' || b[5] != b':' || b[8] != b'.' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            b[r].iter().try_fold(0u32, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
        };
        let (h, m, sec, ms) = (num(0..2)?, num(3..5)?, num(6..8)?, num(9..12)?);
        if h > 23 || m > 59 || sec > 59 {
            return None;
        }
        Some(Self(((h * 60 + m) * 60 + sec) * 1000 + ms))
    }

    /// Writes `HH:MM:SS.mmm` into `out`.
    pub fn write_to(self, out: &mut String) {
        let ms = self.0;
        let digits = [
            ms / 36_000_000,
            ms / 3_600_000 % 10,
            10,
            ms / 600_000 % 6,
            ms / 60_000 % 10,
            10,
            ms / 10_000 % 6,
            ms / 1000 % 10,
            11,
            ms / 100 % 10,
            ms / 10 % 10,
            ms % 10,
        ];
        for d in digits {
            out.push(match d {
                10 => ':',
                11 => '.',
                // Every other entry is a single decimal digit by construction.
                d => char::from(b'0' + d as u8),
            });
        }
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(12);
        self.write_to(&mut s);
        f.write_str(&s)
    }
}

/// Splits epoch milliseconds into the UTC day and the time of day.
pub fn split_millis(epoch_ms: i64) -> (NaiveDate, TimeOfDay) {
    let day = epoch_ms.div_euclid(DAY_MS);
    let tod = epoch_ms.rem_euclid(DAY_MS) as u32;
    (date_of_day_number(day), TimeOfDay(tod))
}

/// Joins a UTC day and a time of day into epoch milliseconds.
pub fn join_millis(date: NaiveDate, tod: TimeOfDay) -> i64 {
    day_number(date) * DAY_MS + i64::from(tod.0)
}

/// Days since 1970-01-01 for `date`.
pub fn day_number(date: NaiveDate) -> i64 {
    (date - NaiveDate::default()).num_days()
}

fn date_of_day_number(day: i64) -> NaiveDate {
    NaiveDate::default() + chrono::Duration::days(day)
}

/// Formats epoch milliseconds as RFC 3339 with milliseconds (`2012-11-30T00:04:53.611Z`).
/// Written by hand for years 0 to 9999 (the read commands print one or
/// four per row, and chrono's formatter was most of the time of `query
/// --every 1h` over a year); chrono formats the others.
pub fn rfc3339_millis(epoch_ms: i64) -> String {
    let mut out = String::with_capacity(24);
    push_rfc3339_millis(&mut out, epoch_ms);
    out
}

/// Appends [`rfc3339_millis`] of `epoch_ms` to `out`, without allocating.
pub fn push_rfc3339_millis(out: &mut String, epoch_ms: i64) {
    let (day, ms) = (epoch_ms.div_euclid(DAY_MS), epoch_ms.rem_euclid(DAY_MS));
    // Howard Hinnant's days-to-civil algorithm (proleptic Gregorian).
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    if !(0..=9999).contains(&y) {
        match DateTime::<Utc>::from_timestamp_millis(epoch_ms) {
            Some(t) => out.push_str(&t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
            None => out.push_str(&format!("@{epoch_ms}ms")),
        }
        return;
    }
    let (h, min, sec, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let digit = |v: i64| b'0' + (v % 10) as u8;
    let two = |v: i64| [digit(v / 10), digit(v)];
    let [y1, y2] = two(y / 100);
    let [y3, y4] = two(y);
    let ([m1, m2], [d1, d2], [h1, h2], [i1, i2], [s1, s2]) = (two(m), two(d), two(h), two(min), two(sec));
    let bytes = [
        y1,
        y2,
        y3,
        y4,
        b'-',
        m1,
        m2,
        b'-',
        d1,
        d2,
        b'T',
        h1,
        h2,
        b':',
        i1,
        i2,
        b':',
        s1,
        s2,
        b'.',
        digit(milli / 100),
        digit(milli / 10),
        digit(milli),
        b'Z',
    ];
    // Digits and separators only: always UTF-8.
    out.push_str(std::str::from_utf8(&bytes).unwrap_or_default());
}

/// Parses a point in time: RFC 3339 (`2012-11-30T00:04:53.611Z`),
/// `YYYY-MM-DD[ HH:MM[:SS[.mmm]]]` or `YYYY-MM-DDTHH:MM...` (UTC), or, when
/// `now_ms` is given, a time relative to it (`-2h`, `-7d`, `-30m`, `-90s`).
/// A relative time further back than 1970 is 1970 (no log is older): `-100000d`
/// means everything, and no count of days overflows.
pub fn parse_time(s: &str, now_ms: Option<i64>) -> Result<i64, String> {
    let s = s.trim();
    if let Some(rel) = s.strip_prefix('-') {
        let now = now_ms.ok_or_else(|| format!("relative time {s:?} is not allowed here; give a date such as 2012-11-30"))?;
        let split = rel.find(|c: char| !c.is_ascii_digit()).unwrap_or(rel.len());
        let n: i64 = rel[..split].parse().map_err(|_| format!("invalid relative time {s:?}: expected such as -2h or -7d"))?;
        let unit = match &rel[split..] {
            "s" => 1000,
            "m" | "min" => 60_000,
            "h" => 3_600_000,
            "d" => DAY_MS,
            "w" => 7 * DAY_MS,
            _ => return Err(format!("invalid relative time {s:?}: the unit must be s, m, h, d or w")),
        };
        return Ok(n.checked_mul(unit).and_then(|back| now.checked_sub(back)).map_or(0, |t| t.max(0)));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    let normalized = s.replacen('T', " ", 1);
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(&normalized, fmt) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(join_millis(d, TimeOfDay::default()));
    }
    Err(format!("invalid time {s:?}: use RFC 3339, YYYY-MM-DD[ HH:MM[:SS]] (UTC) or a relative time such as -2h"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse() {
        let t = 1_354_233_893_611;
        assert_eq!(parse_time("2012-11-30T00:04:53.611Z", None), Ok(t));
        assert_eq!(parse_time("2012-11-30T01:04:53.611+01:00", None), Ok(t));
        assert_eq!(parse_time("2012-11-30 00:04:53.611", None), Ok(t));
        assert_eq!(parse_time("2012-11-30 00:04", None), Ok(t - 53_611));
        assert_eq!(parse_time("2012-11-30", None), Ok(t - 293_611));
        assert_eq!(parse_time("-2h", Some(t)), Ok(t - 7_200_000));
        assert_eq!(parse_time("-7d", Some(t)), Ok(t - 7 * DAY_MS));
        assert!(parse_time("-2h", None).unwrap_err().contains("not allowed"));
        assert!(parse_time("yesterday", Some(t)).is_err());
        assert!(parse_time("-2x", Some(t)).is_err());
        // Further back than 1970, or than an i64 holds: 1970.
        assert_eq!(parse_time("-100000d", Some(t)), Ok(0));
        assert_eq!(parse_time("-99999999999d", Some(t)), Ok(0));
        assert_eq!(parse_time("-999999999999999999w", Some(t)), Ok(0));
        assert!(parse_time("-99999999999999999999d", Some(t)).is_err(), "more digits than an i64 holds");
    }

    #[test]
    fn parse_and_format() {
        for s in ["00:00:00.000", "00:04:53.611", "23:59:59.999", "12:34:56.078"] {
            let t = TimeOfDay::parse(s).unwrap();
            assert_eq!(t.to_string(), s);
        }
        for bad in ["24:00:00.000", "00:60:00.000", "0:00:00.000", "00:00:00.00", "00:00:00,000", "aa:00:00.000"] {
            assert_eq!(TimeOfDay::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn split_and_join() {
        // 2012-11-30T00:04:53.611Z
        let ms = 1_354_233_893_611;
        let (date, tod) = split_millis(ms);
        assert_eq!(date, NaiveDate::from_ymd_opt(2012, 11, 30).unwrap());
        assert_eq!(tod.to_string(), "00:04:53.611");
        assert_eq!(join_millis(date, tod), ms);
        assert_eq!(rfc3339_millis(ms), "2012-11-30T00:04:53.611Z");
        // The hand-written formatter agrees with chrono's, leap days and negative times included.
        for t in [0, -1, 951_782_400_000, 951_868_799_999, 4_107_542_400_000, -62_135_596_800_000, 253_402_300_799_999, -86_400_000 * 800] {
            let chrono = DateTime::<Utc>::from_timestamp_millis(t).unwrap().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
            assert_eq!(rfc3339_millis(t), chrono, "{t}");
        }
        let (date, tod) = split_millis(-1);
        assert_eq!(date, NaiveDate::from_ymd_opt(1969, 12, 31).unwrap());
        assert_eq!(tod.to_string(), "23:59:59.999");
    }
}
