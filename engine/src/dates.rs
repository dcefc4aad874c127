//! Business dates. Toss names every file by its business date in Korea time (UTC+9, no daylight
//! saving), so "today" and "yesterday" are Korean days whatever the machine's time zone is.

use chrono::{FixedOffset, NaiveDate, Utc};
use std::fmt;

/// Korea Standard Time, UTC+9 all year.
pub fn kst() -> FixedOffset {
    FixedOffset::east_opt(9 * 3600).expect("+09:00 is a valid offset")
}

/// Today's date in Korea.
pub fn korea_today() -> NaiveDate {
    Utc::now().with_timezone(&kst()).date_naive()
}

/// `date` as Arrow's `Date32` counts it: days since 1970-01-01.
pub fn days_since_epoch(date: NaiveDate) -> i32 {
    (date - NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid")).num_days() as i32
}

/// The day an Arrow `Date32` value names.
pub fn from_days_since_epoch(days: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid") + chrono::TimeDelta::days(i64::from(days))
}

/// Which business dates a run loads, as written in `[pipeline] dates` or on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatesSpec {
    Today,
    Yesterday,
    All,
    Range { from: NaiveDate, to: NaiveDate },
}

/// The concrete selection a run works with, after "today"/"yesterday" were resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateSelection {
    /// Every file the source lists.
    All,
    /// Business dates from `from` to `to`, both included.
    Range { from: NaiveDate, to: NaiveDate },
}

impl DatesSpec {
    /// The forms `dates` accepts, for error messages.
    pub const ALLOWED: &'static str =
        "\"today\", \"yesterday\", \"all\", \"YYYY-MM-DD\" or \"YYYY-MM-DD..YYYY-MM-DD\"";

    /// Parses one of the forms in [`DatesSpec::ALLOWED`].
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        match text {
            "today" => return Ok(DatesSpec::Today),
            "yesterday" => return Ok(DatesSpec::Yesterday),
            "all" => return Ok(DatesSpec::All),
            _ => {}
        }
        let (from, to) = match text.split_once("..") {
            Some((from, to)) => (parse_date(from)?, parse_date(to)?),
            None => {
                let day = parse_date(text)?;
                (day, day)
            }
        };
        if from > to {
            return Err(format!(
                "the range {text:?} ends before it starts; write the earlier date first"
            ));
        }
        Ok(DatesSpec::Range { from, to })
    }

    /// Resolves relative days against `today` (a Korean date).
    pub fn resolve(&self, today: NaiveDate) -> DateSelection {
        match *self {
            DatesSpec::Today => DateSelection::Range {
                from: today,
                to: today,
            },
            DatesSpec::Yesterday => {
                let day = today.pred_opt().expect("dates are far from the minimum");
                DateSelection::Range { from: day, to: day }
            }
            DatesSpec::All => DateSelection::All,
            DatesSpec::Range { from, to } => DateSelection::Range { from, to },
        }
    }
}

/// How the pipeline file's `dates` is read (after `${NAME}` expansion).
impl std::str::FromStr for DatesSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        DatesSpec::parse(text).map_err(|why| {
            format!(
                "invalid dates {text:?}: {why}; allowed: {}",
                DatesSpec::ALLOWED
            )
        })
    }
}

impl DateSelection {
    /// Whether a file of business date `day` belongs to this selection.
    pub fn contains(&self, day: NaiveDate) -> bool {
        match *self {
            DateSelection::All => true,
            DateSelection::Range { from, to } => from <= day && day <= to,
        }
    }
}

impl fmt::Display for DateSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DateSelection::All => f.write_str("all dates"),
            DateSelection::Range { from, to } if from == to => write!(f, "{from}"),
            DateSelection::Range { from, to } => write!(f, "{from}..{to}"),
        }
    }
}

/// Parses `YYYY-MM-DD`, saying what was expected when it is not.
pub fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| format!("{:?} is not a date of the form YYYY-MM-DD", text.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        parse_date(text).unwrap()
    }

    #[test]
    fn parses_every_documented_form() {
        assert_eq!(DatesSpec::parse("today"), Ok(DatesSpec::Today));
        assert_eq!(DatesSpec::parse("yesterday"), Ok(DatesSpec::Yesterday));
        assert_eq!(DatesSpec::parse("all"), Ok(DatesSpec::All));
        assert_eq!(
            DatesSpec::parse("2007-07-06"),
            Ok(DatesSpec::Range {
                from: day("2007-07-06"),
                to: day("2007-07-06")
            })
        );
        assert_eq!(
            DatesSpec::parse("2007-07-01..2007-07-31"),
            Ok(DatesSpec::Range {
                from: day("2007-07-01"),
                to: day("2007-07-31")
            })
        );
    }

    #[test]
    fn rejects_reversed_ranges_and_impossible_dates() {
        assert!(DatesSpec::parse("2007-07-31..2007-07-01").is_err());
        assert!(DatesSpec::parse("2007-02-30").is_err());
        assert!(DatesSpec::parse("last week").is_err());
    }

    #[test]
    fn yesterday_is_the_korean_day_before() {
        let selection = DatesSpec::Yesterday.resolve(day("2007-03-01"));
        assert_eq!(
            selection,
            DateSelection::Range {
                from: day("2007-02-28"),
                to: day("2007-02-28")
            }
        );
        assert!(selection.contains(day("2007-02-28")));
        assert!(!selection.contains(day("2007-03-01")));
    }
}
