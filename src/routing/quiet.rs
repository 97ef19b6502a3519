//! Mute windows (weekdays and a time of day in a time zone) during which a route sends
//! nothing. Silences have their own module (`silences`).
//!
//! Mute windows are computed in the window's own time zone for each day, with chrono-tz,
//! so "22:00-07:00 Europe/Berlin" stays 22:00-07:00 local across DST changes (a fixed
//! UTC offset would be an hour off for half the year). A local time that does not exist
//! (the spring-forward gap) is taken as the first instant after the gap.

use chrono::{DateTime, Datelike, Duration as ChronoDuration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A compiled `[[mute_windows]]` entry.
#[derive(Debug, Clone)]
pub struct MuteWindow {
    pub name: String,
    pub tz: Tz,
    /// Weekdays (Monday = 0) on which the window *starts*.
    pub days: [bool; 7],
    pub start: NaiveTime,
    /// Not after `start`: the window runs past midnight into the next day.
    pub end: NaiveTime,
}

pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl MuteWindow {
    /// When the window that contains `at` ends, or None if `at` is outside every window.
    pub fn active_until(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let today = at.with_timezone(&self.tz).date_naive();
        for back in [1i64, 0] {
            let day = today - ChronoDuration::days(back);
            if !self.days[day.weekday().num_days_from_monday() as usize] {
                continue;
            }
            let end_day = if self.end <= self.start {
                day + ChronoDuration::days(1)
            } else {
                day
            };
            let start = self.instant(day, self.start);
            let end = self.instant(end_day, self.end);
            if start <= at && at < end {
                return Some(end);
            }
        }
        None
    }

    /// The UTC instant of a local date and time in the window's zone.
    fn instant(&self, day: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
        let mut local = day.and_time(time);
        // In a spring-forward gap the local time does not exist: move forward to the
        // first one that does (at most the size of the gap, an hour or two).
        for _ in 0..180 {
            if let Some(t) = self.tz.from_local_datetime(&local).earliest() {
                return t.with_timezone(&Utc);
            }
            local += ChronoDuration::minutes(1);
        }
        Utc.from_utc_datetime(&day.and_time(time))
    }
}

/// `HH:MM` or `HH:MM:SS` (24-hour).
pub fn parse_time_of_day(s: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(s.trim(), "%H:%M"))
        .map_err(|_| format!("{s:?} is not a time of day like \"22:00\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn berlin(start: &str, end: &str, days: &[usize]) -> MuteWindow {
        let mut d = [false; 7];
        for &i in days {
            d[i] = true;
        }
        MuteWindow {
            name: "w".into(),
            tz: "Europe/Berlin".parse().unwrap(),
            days: d,
            start: parse_time_of_day(start).unwrap(),
            end: parse_time_of_day(end).unwrap(),
        }
    }

    #[test]
    fn night_window_wraps_midnight_and_follows_weekdays() {
        // Weeknights 22:00-07:00 Berlin; 2026-12-04 is a Friday (CET, UTC+1).
        let w = berlin("22:00", "07:00", &[0, 1, 2, 3, 4]);
        assert_eq!(
            w.active_until(utc("2026-12-04T21:30:00Z")),
            Some(utc("2026-12-05T06:00:00Z"))
        );
        assert_eq!(w.active_until(utc("2026-12-04T20:59:00Z")), None);
        // Saturday night does not start a window; Saturday morning is Friday's tail.
        assert_eq!(
            w.active_until(utc("2026-12-05T05:00:00Z")),
            Some(utc("2026-12-05T06:00:00Z"))
        );
        assert_eq!(w.active_until(utc("2026-12-05T22:00:00Z")), None);
    }

    #[test]
    fn windows_keep_local_time_across_dst() {
        let w = berlin("01:00", "04:00", &[0, 1, 2, 3, 4, 5, 6]);
        // Spring forward, 2026-03-29 02:00 CET -> 03:00 CEST: 01:00 CET is 00:00Z and
        // 04:00 CEST is 02:00Z; the window is two real hours long.
        assert_eq!(
            w.active_until(utc("2026-03-29T00:30:00Z")),
            Some(utc("2026-03-29T02:00:00Z"))
        );
        assert_eq!(
            w.active_until(utc("2026-03-29T01:30:00Z")),
            Some(utc("2026-03-29T02:00:00Z"))
        );
        // 02:30Z is 04:30 CEST: outside. A fixed +01:00 offset would say 03:30, inside.
        assert_eq!(w.active_until(utc("2026-03-29T02:30:00Z")), None);
        // The next night is in summer time: 01:00 CEST = 23:00Z.
        assert_eq!(
            w.active_until(utc("2026-03-29T23:30:00Z")),
            Some(utc("2026-03-30T02:00:00Z"))
        );
        assert_eq!(w.active_until(utc("2026-03-29T22:30:00Z")), None);
        // Fall back, 2026-10-25 03:00 CEST -> 02:00 CET: 01:00 CEST is 23:00Z the day
        // before, 04:00 CET is 03:00Z; four real hours.
        assert_eq!(
            w.active_until(utc("2026-10-24T23:30:00Z")),
            Some(utc("2026-10-25T03:00:00Z"))
        );
        assert_eq!(
            w.active_until(utc("2026-10-25T02:30:00Z")),
            Some(utc("2026-10-25T03:00:00Z"))
        );
        assert_eq!(w.active_until(utc("2026-10-25T03:00:00Z")), None);
    }

    #[test]
    fn a_window_starting_in_the_gap_starts_when_the_gap_ends() {
        let w = berlin("02:30", "05:00", &[6]); // Sundays; 2026-03-29 is a Sunday
        assert_eq!(w.active_until(utc("2026-03-29T00:59:00Z")), None);
        assert_eq!(
            w.active_until(utc("2026-03-29T01:00:00Z")),
            Some(utc("2026-03-29T03:00:00Z"))
        );
    }
}
