//! What a Toss Payments file is, as far as more than one stage must know it: its two kinds and
//! how its name reads. The sources find files by their names, the Toss parser checks each row's
//! status against its file's kind; neither owns these facts, so they sit below both.

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The time zone of every Toss timestamp: Korea time, which has no daylight saving.
pub use toss_etl_sdk::toss::KOREA_TIME_ZONE;

/// Which of the two Toss files a record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// Approvals (the FTP file kind `AUTH`, HTTP `servicecode=TRX`).
    Auth,
    /// Cancels and refunds (`REV`).
    Rev,
}

impl RecordKind {
    /// The kind as written in file names and in the `record_kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Auth => "AUTH",
            RecordKind::Rev => "REV",
        }
    }

    /// The status codes a row of this kind may carry, with their meaning.
    pub fn allowed_statuses(self) -> [(&'static str, &'static str); 2] {
        match self {
            RecordKind::Auth => [("10", "success"), ("11", "failure")],
            RecordKind::Rev => [
                ("20", "cancel/refund succeeded"),
                ("21", "cancel/refund failed"),
            ],
        }
    }

    /// Toss's name of field 10 for this kind: the payment date of an approval, the refund date
    /// of a cancel.
    pub fn date_field_name(self) -> &'static str {
        match self {
            RecordKind::Auth => "paydate",
            RecordKind::Rev => "refunddate",
        }
    }
}

impl FromStr for RecordKind {
    type Err = UnknownValue;

    /// Accepts exactly `AUTH` or `REV`, as in file names (`{mid}_{kind}_{yyyymmdd}.dat`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "AUTH" => Ok(RecordKind::Auth),
            "REV" => Ok(RecordKind::Rev),
            _ => Err(UnknownValue::new("record kind", s, "\"AUTH\" or \"REV\"")),
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RecordKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RecordKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A configuration value that names no known option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} '{value}': expected {expected}")]
pub struct UnknownValue {
    what: &'static str,
    value: String,
    expected: &'static str,
}

impl UnknownValue {
    pub fn new(what: &'static str, value: &str, expected: &'static str) -> Self {
        UnknownValue {
            what,
            value: value.to_owned(),
            expected,
        }
    }
}

/// The parts of a Toss file name, `{mid}_{AUTH|REV}_{yyyymmdd}.dat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TossFileName {
    pub mid: String,
    pub kind: RecordKind,
    pub trxdate: NaiveDate,
}

impl TossFileName {
    /// Parses a file name; anything else (other files in the folder) is `None`. The mid may
    /// itself hold `_`, so the name is read from the right.
    pub fn parse(file_name: &str) -> Option<Self> {
        let stem = file_name.strip_suffix(".dat")?;
        let (rest, date) = stem.rsplit_once('_')?;
        let (mid, kind) = rest.rsplit_once('_')?;
        let safe_mid = !mid.is_empty()
            && mid
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !safe_mid || date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let kind = match kind {
            "AUTH" => RecordKind::Auth,
            "REV" => RecordKind::Rev,
            _ => return None,
        };
        let trxdate = NaiveDate::parse_from_str(date, "%Y%m%d").ok()?;
        Some(TossFileName {
            mid: mid.to_owned(),
            kind,
            trxdate,
        })
    }

    /// The file name itself.
    pub fn file_name(&self) -> String {
        format!(
            "{}_{}_{}.dat",
            self.mid,
            self.kind.as_str(),
            self.trxdate.format("%Y%m%d")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_toss_file_names_and_nothing_else() {
        let name = TossFileName::parse("tosstest_AUTH_20050201.dat").unwrap();
        assert_eq!(name.mid, "tosstest");
        assert_eq!(name.kind, RecordKind::Auth);
        assert_eq!(name.trxdate, NaiveDate::from_ymd_opt(2005, 2, 1).unwrap());
        assert_eq!(name.file_name(), "tosstest_AUTH_20050201.dat");
        let name = TossFileName::parse("my_shop_REV_20070706.dat").unwrap();
        assert_eq!((name.mid.as_str(), name.kind), ("my_shop", RecordKind::Rev));
        for other in [
            "toss_AUTH_20070706.dat.part",
            "toss_SETTLE_20070706.dat",
            "toss_AUTH_20070732.dat",
            "toss_AUTH_2007070.dat",
            "_AUTH_20070706.dat",
            "README.md",
            "../x_AUTH_20070706.dat",
        ] {
            assert_eq!(TossFileName::parse(other), None, "{other}");
        }
    }

    #[test]
    fn kinds_read_as_written_in_file_names() {
        assert_eq!("AUTH".parse::<RecordKind>().unwrap(), RecordKind::Auth);
        assert_eq!("REV".parse::<RecordKind>().unwrap(), RecordKind::Rev);
        let err = "auth".parse::<RecordKind>().unwrap_err().to_string();
        assert!(err.contains("\"AUTH\" or \"REV\""), "{err}");
    }
}
