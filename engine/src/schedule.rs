//! When `engine watch` wakes. Toss writes each day's cumulative files at minutes 05, 25 and 45
//! of every hour (and the previous day in full at 00:05), all Korea time; the watcher looks a
//! few minutes later (`lag_minutes`), so an upload in progress has usually finished. A pipeline
//! may replace this with any cron expression, also read in Korea time.

use crate::config::PipelineSection;
use crate::dates::kst;
use crate::error::{Error, Result};
use chrono::{DateTime, Duration, FixedOffset, NaiveTime, TimeZone, Timelike};
use std::str::FromStr;

/// The minutes of each hour at which Toss writes the day's files.
pub const TOSS_MINUTES: [u32; 3] = [5, 25, 45];

#[derive(Debug, Clone)]
pub enum Schedule {
    /// Toss's own: minutes 05, 25, 45 of every hour, plus a lag.
    Toss { lag: Duration },
    /// `[pipeline] schedule`.
    Cron(Box<cron::Schedule>),
}

impl Schedule {
    pub fn from_config(section: &PipelineSection) -> Result<Schedule> {
        let Some(expression) = &section.schedule else {
            return Ok(Schedule::Toss {
                lag: Duration::minutes(i64::from(section.lag_minutes)),
            });
        };
        // Five fields are the crontab form; the cron crate wants seconds first.
        let fields = expression.split_whitespace().count();
        let full = if fields == 5 {
            format!("0 {}", expression.as_str())
        } else {
            expression.to_string()
        };
        cron::Schedule::from_str(&full)
            .map(|schedule| Schedule::Cron(Box::new(schedule)))
            .map_err(|err| {
                Error::config(
                    "[pipeline] schedule",
                    format!(
                        "{:?} is not a cron expression ({err}); write five fields \
                         `min hour day-of-month month day-of-week` (e.g. \"7,27,47 * * * *\"), \
                         or six with seconds first",
                        expression.as_written()
                    ),
                )
            })
    }

    /// The first wake strictly after `now`.
    pub fn next_after(&self, now: DateTime<FixedOffset>) -> DateTime<FixedOffset> {
        let now = now.with_timezone(&kst());
        match self {
            Schedule::Toss { lag } => {
                let hour = now
                    .with_minute(0)
                    .and_then(|t| t.with_second(0))
                    .and_then(|t| t.with_nanosecond(0))
                    .unwrap_or(now);
                (0..=2)
                    .flat_map(|hours| {
                        TOSS_MINUTES.iter().map(move |&minute| {
                            hour + Duration::hours(hours)
                                + Duration::minutes(i64::from(minute))
                                + *lag
                        })
                    })
                    .filter(|wake| *wake > now)
                    .min()
                    .unwrap_or(now + Duration::minutes(20))
            }
            Schedule::Cron(schedule) => schedule
                .after(&now)
                .next()
                .unwrap_or(now + Duration::days(1)),
        }
    }

    /// When the previous business day's full file is there: Toss writes it at 00:05, and the
    /// watcher looks `lag` later.
    pub fn yesterday_final_after(&self, today: chrono::NaiveDate) -> DateTime<FixedOffset> {
        let lag = match self {
            Schedule::Toss { lag } => *lag,
            Schedule::Cron(_) => Duration::zero(),
        };
        let at = today.and_time(NaiveTime::from_hms_opt(0, 5, 0).expect("valid time"));
        kst()
            .from_local_datetime(&at)
            .single()
            .expect("fixed offset")
            + lag
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(text).unwrap()
    }

    fn toss(lag: i64) -> Schedule {
        Schedule::Toss {
            lag: Duration::minutes(lag),
        }
    }

    #[test]
    fn toss_schedule_wakes_after_each_upload_with_the_lag() {
        let schedule = toss(2);
        assert_eq!(
            schedule.next_after(at("2026-11-27T10:00:00+09:00")),
            at("2026-11-27T10:07:00+09:00")
        );
        assert_eq!(
            schedule.next_after(at("2026-11-27T10:07:00+09:00")),
            at("2026-11-27T10:27:00+09:00")
        );
        assert_eq!(
            schedule.next_after(at("2026-11-27T10:47:30+09:00")),
            at("2026-11-27T11:07:00+09:00")
        );
        // Across midnight: the 00:05 full file of the day before, looked at 00:07.
        assert_eq!(
            schedule.next_after(at("2026-11-27T23:50:00+09:00")),
            at("2026-11-28T00:07:00+09:00")
        );
        // Times given in UTC are read in Korea time.
        assert_eq!(
            schedule.next_after(at("2026-11-27T01:00:00+00:00")),
            at("2026-11-27T10:07:00+09:00")
        );
    }

    #[test]
    fn a_long_lag_still_gives_the_next_wake() {
        assert_eq!(
            toss(19).next_after(at("2026-11-27T10:30:00+09:00")),
            at("2026-11-27T10:44:00+09:00")
        );
    }

    #[test]
    fn a_cron_schedule_replaces_toss_times() {
        let section: PipelineSection =
            toml::from_str("name = \"x\"\nschedule = \"*/10 * * * *\"").unwrap();
        let schedule = Schedule::from_config(&section).unwrap();
        assert_eq!(
            schedule.next_after(at("2026-11-27T10:01:00+09:00")),
            at("2026-11-27T10:10:00+09:00")
        );
        let with_seconds: PipelineSection =
            toml::from_str("name = \"x\"\nschedule = \"*/2 * * * * *\"").unwrap();
        let fast = Schedule::from_config(&with_seconds).unwrap();
        assert_eq!(
            fast.next_after(at("2026-11-27T10:01:01+09:00")),
            at("2026-11-27T10:01:02+09:00")
        );
    }

    #[test]
    fn a_bad_cron_expression_is_a_config_error_naming_the_key() {
        let section: PipelineSection =
            toml::from_str("name = \"x\"\nschedule = \"every five minutes\"").unwrap();
        let err = Schedule::from_config(&section).unwrap_err().to_string();
        assert!(err.starts_with("[pipeline] schedule:"), "{err}");
        assert!(err.contains("7,27,47 * * * *"), "{err}");
    }

    #[test]
    fn yesterday_is_final_after_five_past_midnight_plus_lag() {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        assert_eq!(
            toss(2).yesterday_final_after(day),
            at("2026-11-28T00:07:00+09:00")
        );
    }
}
