//! Wall-clock times as text (UTC) and back, without a calendar dependency.

use std::time::{SystemTime, UNIX_EPOCH};

/// Civil date from days since 1970-01-01 (proleptic Gregorian; valid for any u64 day count
/// this program will see).
fn civil(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of each 400-year era.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // 0..365, from March 1st
    let mp = (5 * doy + 2) / 153; // month from March, 0..11
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

struct Parts {
    year: i64,
    month: u32,
    day: u32,
    hour: u64,
    minute: u64,
    second: u64,
    millis: u32,
}

fn parts(t: SystemTime) -> Parts {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (year, month, day) = civil((secs / 86_400) as i64);
    let rem = secs % 86_400;
    Parts {
        year,
        month,
        day,
        hour: rem / 3600,
        minute: rem / 60 % 60,
        second: rem % 60,
        millis: d.subsec_millis(),
    }
}

/// `2026-11-24T08:15:30.123Z`
pub fn rfc3339(t: SystemTime) -> String {
    let p = parts(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        p.year, p.month, p.day, p.hour, p.minute, p.second, p.millis
    )
}

/// `20261124T081530.123Z`, for file names.
pub fn compact(t: SystemTime) -> String {
    let p = parts(t);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z",
        p.year, p.month, p.day, p.hour, p.minute, p.second, p.millis
    )
}

/// Days since 1970-01-01 of a civil date (the inverse of `civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2026-11-30`, the UTC date (a folder of continuous recordings).
pub fn date(t: SystemTime) -> String {
    let p = parts(t);
    format!("{:04}-{:02}-{:02}", p.year, p.month, p.day)
}

/// `081530.123Z`, the UTC time of day with milliseconds (a continuous recording's name).
pub fn time_of_day(t: SystemTime) -> String {
    let p = parts(t);
    format!(
        "{:02}{:02}{:02}.{:03}Z",
        p.hour, p.minute, p.second, p.millis
    )
}

/// The instant `date` (`2026-11-30`) and `time_of_day` (`081530.123Z`) name, as written by
/// [`date`] and [`time_of_day`].
pub fn from_date_and_time_of_day(date: &str, time: &str) -> Option<SystemTime> {
    let d = date.as_bytes();
    let t = time.as_bytes();
    if d.len() != 10
        || d[4] != b'-'
        || d[7] != b'-'
        || t.len() != 11
        || t[6] != b'.'
        || t[10] != b'Z'
    {
        return None;
    }
    let text = format!(
        "{date}T{}:{}:{}.{}Z",
        &time[0..2],
        &time[2..4],
        &time[4..6],
        &time[7..10]
    );
    parse_rfc3339(&text)
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Reads an RFC 3339 time (`2026-11-30T08:15:30Z`, `…30.5+01:00`); `None` when it is not one.
/// A time before 1970 reads as 1970-01-01T00:00:00Z (nothing here is older).
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    if s.len() < 20 || !s.is_ascii() {
        return None;
    }
    let (date, rest) = s.split_at(10);
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let b = date.as_bytes();
    if b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (
        digits(&date[0..4])?,
        digits(&date[5..7])?,
        digits(&date[8..10])?,
    );
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let tb = rest.as_bytes();
    if tb.len() < 9 || tb[2] != b':' || tb[5] != b':' {
        return None;
    }
    let (hour, minute, second) = (
        digits(&rest[0..2])?,
        digits(&rest[3..5])?,
        digits(&rest[6..8])?,
    );
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &rest[8..];
    let mut nanos: u64 = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        let kept = &frac[..n.min(9)];
        nanos = u64::from(digits(kept)?) * 10u64.pow(9 - kept.len() as u32);
        rest = &frac[n..];
    }
    let offset: i64 = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) && &o[3..4] == ":" => {
            let (h, m) = (i64::from(digits(&o[1..3])?), i64::from(digits(&o[4..6])?));
            if h > 23 || m > 59 {
                return None;
            }
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (h * 3600 + m * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset;
    let Ok(secs) = u64::try_from(secs) else {
        return Some(UNIX_EPOCH);
    };
    Some(UNIX_EPOCH + std::time::Duration::from_secs(secs) + std::time::Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(secs * 1000 + millis)
    }

    #[test]
    fn known_dates() {
        assert_eq!(rfc3339(at(0, 0)), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (a leap day in a century leap year) 12:34:56.789
        assert_eq!(rfc3339(at(951_827_696, 789)), "2000-02-29T12:34:56.789Z");
        // 2100-03-01, after a century year that is not a leap year.
        assert_eq!(compact(at(4_107_542_400, 0)), "21000301T000000.000Z");
        assert_eq!(compact(at(1_795_508_130, 0)), "20261124T081530.000Z");
    }

    #[test]
    fn rfc3339_reads_back_what_is_written_and_offsets() {
        for (s, ms) in [
            (0, 0),
            (951_827_696, 789),
            (4_107_542_400, 0),
            (1_795_508_130, 5),
        ] {
            let t = at(s, ms);
            assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t));
            assert_eq!(
                from_date_and_time_of_day(&date(t), &time_of_day(t)),
                Some(t)
            );
        }
        assert_eq!(
            parse_rfc3339("2026-11-24T09:15:30.5+01:00"),
            Some(at(1_795_508_130, 500))
        );
        assert_eq!(
            parse_rfc3339("2026-11-24T08:15:30Z"),
            Some(at(1_795_508_130, 0))
        );
        for bad in [
            "2026-11-24",
            "2026-13-24T08:15:30Z",
            "2026-11-24T08:15:30",
            "2026-11-24T08:15:30.Z",
            "2026-11-24T08:15:30+1:00",
            "２０２６-11-24T08:15:30Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
