//! When transcript sweeps run.
//!
//! People write cron with 5 fields; tokio-cron-scheduler wants 6 and keeps a fixed UTC
//! offset per time-zone job, so after a DST change its recurring jobs fire an hour off.
//! So each next run is computed here with croner in
//! the configured zone, from the current time, and handed to tokio-cron-scheduler as a
//! one-shot job at that instant: the scheduler only ever sees absolute instants, and
//! every occurrence is computed with the zone's offset on that day.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;

use super::sweep::Sweeper;
use crate::config::{Config, ConfigError};

#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    pub tz: Tz,
    pub expr: String,
}

impl Schedule {
    /// `[transcripts] schedule` and `timezone` when transcripts are on (None when off);
    /// a problem names its key.
    pub fn from_config(cfg: &Config) -> Result<Option<Schedule>, ConfigError> {
        let t = &cfg.transcripts;
        if !t.enabled {
            return Ok(None);
        }
        Schedule::parse(&t.schedule, &t.timezone)
            .map(Some)
            .map_err(|(k, p)| cfg.error(&format!("transcripts.{k}"), p))
    }

    /// A 5-field cron (`min hour dom mon dow`), or 6 with seconds first, read in `tz`.
    pub fn parse(expr: &str, tz: &str) -> Result<Schedule, (&'static str, String)> {
        let fields = expr.split_whitespace().count();
        if !(5..=6).contains(&fields) {
            return Err((
                "schedule",
                format!(
                    "{expr:?} has {fields} fields; write 5 (minute hour day month weekday), e.g. \"*/15 * * * *\""
                ),
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(expr)
            .map_err(|e| {
                (
                    "schedule",
                    format!("{expr:?} is not a valid cron expression: {e}"),
                )
            })?;
        let tz = Tz::from_str(tz.trim()).map_err(|_| {
            (
                "timezone",
                format!("{tz:?} is not an IANA time zone name like \"Europe/Berlin\""),
            )
        })?;
        Ok(Schedule {
            cron,
            tz,
            expr: expr.to_string(),
        })
    }

    /// The first run strictly after `t`, on a whole second. (croner keeps the input's
    /// fraction of a second, so without the truncation two replicas would name the same
    /// run by different instants and both run it.)
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&t.trunc_subsecs(0).with_timezone(&self.tz), false)
            .ok()
            .map(|d| d.with_timezone(&Utc).trunc_subsecs(0))
    }

    /// The last run at or before `t`, on a whole second.
    pub fn last_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_previous_occurrence(&t.trunc_subsecs(0).with_timezone(&self.tz), true)
            .ok()
            .map(|d| d.with_timezone(&Utc).trunc_subsecs(0))
    }

    /// The 6-field form tokio-cron-scheduler would take (for logs).
    pub fn six_fields(&self) -> String {
        if self.expr.split_whitespace().count() == 5 {
            format!("0 {}", self.expr.trim())
        } else {
            self.expr.trim().to_string()
        }
    }
}

/// Runs sweeps on the schedule until shutdown. A run missed while the daemon was down
/// (the last recorded run is before the latest scheduled time) is caught up at once.
pub async fn run(schedule: Schedule, sweeper: Arc<Sweeper>, shutdown: CancellationToken) {
    let scheduler = match JobScheduler::new().await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the transcript scheduler; transcripts are processed only on webhook");
            return;
        }
    };
    if let Err(e) = scheduler.start().await {
        tracing::error!(error = %e, "cannot start the transcript scheduler; transcripts are processed only on webhook");
        return;
    }
    tracing::info!(schedule = %schedule.expr, as_6_fields = %schedule.six_fields(), timezone = %schedule.tz, "transcript sweeps scheduled");
    if sweeper.missed_run(&schedule).await {
        let tick = schedule
            .last_at_or_before(Utc::now())
            .map_or(0, |t| t.timestamp_millis());
        sweeper
            .run_scheduled(tick, "catch-up at start-up", &shutdown)
            .await;
    }
    let mut scheduler = scheduler;
    // The timer may fire before the wall clock reaches the run's time: the next run is
    // computed from the run just done, or it would be run twice.
    let mut last: Option<DateTime<Utc>> = None;
    loop {
        let now = Utc::now();
        let Some(next) = schedule.next_after(last.map_or(now, |l| l.max(now))) else {
            tracing::error!(schedule = %schedule.expr, "the schedule has no next run; no more scheduled sweeps");
            break;
        };
        sweeper
            .status()
            .update(|s| s.next_run_at = Some(next.to_rfc3339()));
        let wait = (next - now).to_std().unwrap_or(Duration::ZERO);
        let fire = Arc::new(tokio::sync::Notify::new());
        let job = Job::new_one_shot_at_instant_async(std::time::Instant::now() + wait, {
            let fire = fire.clone();
            move |_, _| {
                fire.notify_one();
                Box::pin(async {})
            }
        });
        let added = match job {
            Ok(job) => scheduler.add(job).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = added {
            tracing::error!(error = %e, "cannot schedule the next transcript sweep; retrying in a minute");
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(60)) => continue,
                _ = shutdown.cancelled() => break,
            }
        }
        tokio::select! {
            _ = fire.notified() => {
                last = Some(next);
                // tokio-cron-scheduler works in whole seconds and fires a one-shot job up
                // to a second early (measured: 0.7-1.0 s): the run starts at its own time.
                let at = tokio::time::Instant::now() + (next - Utc::now()).to_std().unwrap_or_default();
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = shutdown.cancelled() => break,
                }
                sweeper
                    .run_scheduled(next.timestamp_millis(), "schedule", &shutdown)
                    .await;
            }
            _ = shutdown.cancelled() => break,
        }
    }
    let _ = scheduler.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn five_fields_in_a_zone_stay_on_local_time_across_dst() {
        let s = Schedule::parse("0 9 * * *", "Europe/Berlin").unwrap();
        assert_eq!(s.six_fields(), "0 0 9 * * *");
        // Before the spring change 09:00 is 08:00Z; after it, 07:00Z.
        assert_eq!(
            s.next_after(utc("2026-03-28T00:00:00Z")),
            Some(utc("2026-03-28T08:00:00Z"))
        );
        assert_eq!(
            s.next_after(utc("2026-03-28T08:00:00Z")),
            Some(utc("2026-03-29T07:00:00Z"))
        );
        // Autumn: back to 08:00Z the day after the change.
        assert_eq!(
            s.next_after(utc("2026-10-24T07:00:00Z")),
            Some(utc("2026-10-25T08:00:00Z"))
        );
        // What a fixed offset taken in winter (+01:00) would have said after the change:
        assert_ne!(
            s.next_after(utc("2026-03-29T00:00:00Z")),
            Some(utc("2026-03-29T08:00:00Z"))
        );
    }

    #[test]
    fn runs_are_whole_seconds_whatever_the_fraction_of_now() {
        // Two replicas asking at different moments of the same second name the same run.
        let s = Schedule::parse("*/2 * * * * *", "UTC").unwrap();
        let a = s.next_after(utc("2026-11-29T10:00:00.722Z")).unwrap();
        let b = s.next_after(utc("2026-11-29T10:00:00.218Z")).unwrap();
        assert_eq!(a, utc("2026-11-29T10:00:02Z"));
        assert_eq!(a, b);
        let m = Schedule::parse("*/15 * * * *", "Europe/Berlin").unwrap();
        assert_eq!(
            m.next_after(utc("2026-11-29T10:14:59.999Z")).unwrap(),
            utc("2026-11-29T10:15:00Z")
        );
        assert_eq!(
            m.last_at_or_before(utc("2026-11-29T10:15:00.5Z")).unwrap(),
            utc("2026-11-29T10:15:00Z")
        );
    }

    #[test]
    fn a_run_in_the_spring_gap_happens_once() {
        // 02:30 does not exist in Berlin on 2026-03-29.
        let s = Schedule::parse("30 2 * * *", "Europe/Berlin").unwrap();
        let first = s.next_after(utc("2026-03-28T12:00:00Z")).unwrap();
        let second = s.next_after(first).unwrap();
        assert!(first < utc("2026-03-29T02:00:00Z"), "{first}");
        assert!(
            second > first + chrono::Duration::hours(20),
            "{first} {second}"
        );
        // The autumn 02:30 happens twice on the clock; the schedule runs it once.
        let a = s.next_after(utc("2026-10-24T12:00:00Z")).unwrap();
        let b = s.next_after(a).unwrap();
        assert!(b - a >= chrono::Duration::hours(23), "{a} {b}");
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        assert!(
            Schedule::parse("0 18 * *", "UTC")
                .unwrap_err()
                .1
                .contains("4 fields")
        );
        assert!(
            Schedule::parse("61 * * * *", "UTC")
                .unwrap_err()
                .1
                .contains("not a valid cron")
        );
        assert_eq!(
            Schedule::parse("* * * * *", "Mars/Olympus").unwrap_err().0,
            "timezone"
        );
        let every = Schedule::parse("*/15 * * * *", "UTC").unwrap();
        assert_eq!(
            every.last_at_or_before(utc("2026-05-01T10:07:00Z")),
            Some(utc("2026-05-01T10:00:00Z"))
        );
    }
}
