//! Quiet time: silences (conditions plus a start and an end) and mute windows (weekdays
//! and a time of day in a time zone).
//!
//! Mute windows are computed in the window's own time zone for each day, with chrono-tz,
//! so "22:00-07:00 Europe/Berlin" stays 22:00-07:00 local across DST changes (a fixed
//! UTC offset would be an hour off for half the year). A local time that does not exist
//! (the spring-forward gap) is taken as the first instant after the gap.

use chrono::{DateTime, Datelike, Duration as ChronoDuration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Glob, when};

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

/// What a silence applies to. Stored as JSON for silences added from the command line.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matcher {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Event name patterns (`*` globs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<String>>,
    /// A `when` condition on the event's fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Value>,
}

impl Matcher {
    /// `path=value`, `path!=value`, `path=~regex`, `path!~regex` (command-line form) into
    /// `when` conditions, all of which must hold.
    pub fn add_field_matchers(&mut self, specs: &[String]) -> Result<(), String> {
        let mut conds = Vec::new();
        for s in specs {
            let (path, op, value) = if let Some((p, v)) = s.split_once("!~") {
                (p, "not_regex", v)
            } else if let Some((p, v)) = s.split_once("=~") {
                (p, "regex", v)
            } else if let Some((p, v)) = s.split_once("!=") {
                (p, "not_equals", v)
            } else if let Some((p, v)) = s.split_once('=') {
                (p, "equals", v)
            } else {
                return Err(format!(
                    "{s:?}: write path=value, path!=value, path=~regex or path!~regex"
                ));
            };
            let path = path.trim();
            if path.is_empty() {
                return Err(format!("{s:?}: the field path is empty"));
            }
            conds.push(json!({ "field": path, op: value }));
        }
        if !conds.is_empty() {
            let mut all = conds;
            if let Some(w) = self.when.take() {
                all.push(w);
            }
            self.when = Some(json!({ "all": all }));
        }
        Ok(())
    }
}

/// A silence ready to check events against.
#[derive(Debug)]
pub struct CompiledSilence {
    /// `config #N` or `#id` (stored).
    pub label: String,
    pub comment: String,
    pub starts_at: i64,
    pub ends_at: i64,
    source: Option<String>,
    events: Option<Vec<Glob>>,
    routes: Option<Vec<String>>,
    when: Option<when::Cond>,
}

impl CompiledSilence {
    /// Errors are `(key suffix, problem)`.
    pub fn compile(
        label: String,
        comment: String,
        starts_at: i64,
        ends_at: i64,
        m: &Matcher,
    ) -> Result<CompiledSilence, (String, String)> {
        if ends_at <= starts_at {
            return Err(("ends".into(), "must be after the start".into()));
        }
        let when = match &m.when {
            None => None,
            Some(v) => Some(when::compile(v).map_err(|(k, p)| {
                (
                    if k.is_empty() {
                        "when".into()
                    } else {
                        format!("when.{k}")
                    },
                    p,
                )
            })?),
        };
        Ok(CompiledSilence {
            label,
            comment,
            starts_at,
            ends_at,
            source: m.source.clone(),
            events: m
                .events
                .as_ref()
                .map(|l| l.iter().map(|e| Glob(e.trim().to_string())).collect()),
            routes: m.routes.clone(),
            when,
        })
    }

    /// Whether this silence mutes `route`'s message about this event at `now_ms`.
    pub fn silences(
        &self,
        now_ms: i64,
        source: &str,
        event: &str,
        route: &str,
        payload: &Value,
    ) -> bool {
        now_ms >= self.starts_at
            && now_ms < self.ends_at
            && self.source.as_deref().is_none_or(|s| s == source)
            && self
                .events
                .as_ref()
                .is_none_or(|g| g.iter().any(|g| g.matches(event)))
            && self
                .routes
                .as_ref()
                .is_none_or(|r| r.iter().any(|r| r == route))
            && self
                .when
                .as_ref()
                .is_none_or(|w| w.check(payload).is_none())
    }
}

/// Parses RFC 3339 (`2026-12-01T20:00:00Z`, `2026-12-01T21:00:00+01:00`) to unix ms.
pub fn parse_instant(s: &str) -> Result<i64, String> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("{s:?} is not an RFC 3339 time like 2026-12-01T20:00:00Z: {e}"))
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

    #[test]
    fn field_matchers_become_conditions() {
        let mut m = Matcher::default();
        m.add_field_matchers(&[
            "commonLabels.alertname=DiskFull".into(),
            "commonLabels.instance=~^db-".into(),
        ])
        .unwrap();
        let s = CompiledSilence::compile("t".into(), "c".into(), 0, i64::MAX, &m).unwrap();
        let hit = json!({"commonLabels": {"alertname": "DiskFull", "instance": "db-1"}});
        let miss = json!({"commonLabels": {"alertname": "DiskFull", "instance": "web-1"}});
        assert!(s.silences(1, "am", "alertmanager.firing", "r", &hit));
        assert!(!s.silences(1, "am", "alertmanager.firing", "r", &miss));
        assert!(m.clone().add_field_matchers(&["nofield".into()]).is_err());
        let expired = CompiledSilence::compile("t".into(), "c".into(), 0, 10, &m).unwrap();
        assert!(!expired.silences(10, "am", "alertmanager.firing", "r", &hit));
    }
}
