//! Where Toss files come from. A source lists the files of the selected business dates and
//! fetches one at a time as a local, finished byte stream; it never parses. Remote sources fetch
//! to a temporary file first, so a dropped connection can never load half a file.
//!
//! Adding a source: write `sources/NAME.rs` with a config struct implementing [`BuildSource`],
//! then add one line to the `register_sources!` list below.

mod dir;
mod ftp;
mod http;

use crate::dates::DateSelection;
use crate::error::Result;
use crate::parser::RecordKind;
use crate::state::FileVersion;
use chrono::NaiveDate;
use std::io::Read;
use std::sync::Arc;

/// One Toss file as a source lists it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The file name, `{mid}_{kind}_{yyyymmdd}.dat`: the key of the file in the state store and
    /// the name of its outputs, whatever the source.
    pub name: String,
    /// Where the records came from, for the `source_file` column: the file name, or for HTTP the
    /// URL without its key.
    pub origin: String,
    pub mid: String,
    pub kind: RecordKind,
    pub trxdate: NaiveDate,
    /// What the listing says of this version.
    pub version: FileVersion,
}

/// A file the source saw but will not hand over in this run, and why.
#[derive(Debug, Clone)]
pub struct Deferred {
    pub name: String,
    pub reason: String,
}

/// What a source found for the selected dates.
#[derive(Debug, Default)]
pub struct Listing {
    pub files: Vec<SourceFile>,
    pub deferred: Vec<Deferred>,
}

/// Whether a fetched file was still the version that was listed after it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterRead {
    Unchanged,
    /// It changed while being read (Toss was still writing it); the load must be discarded.
    Changed(String),
}

/// A file ready to be read: local, and complete (remote sources download to a temporary file
/// first, so a dropped connection never loads half a file).
pub struct Fetched {
    pub reader: Box<dyn Read + Send>,
    /// The content's xxh3-128 hash (hex), when the source computed it while fetching; lets a
    /// re-fetched, unchanged file be skipped before it is parsed.
    pub content_hash: Option<String>,
}

impl Fetched {
    /// A local reader whose hash the pipeline computes while parsing.
    pub fn local(reader: Box<dyn Read + Send>) -> Self {
        Fetched {
            reader,
            content_hash: None,
        }
    }
}

/// A running source.
#[async_trait::async_trait]
pub trait Source: Send + Sync {
    /// Lists the Toss files of the selected business dates that pass the source's filters.
    async fn list(&self, dates: &DateSelection) -> Result<Listing>;

    /// Fetches one listed file.
    async fn fetch(&self, file: &SourceFile) -> Result<Fetched>;

    /// How many files may be fetched ahead of the one loading (remote sources download several
    /// dates at once during a backfill).
    fn fetch_ahead(&self) -> usize {
        1
    }

    /// Checks, after the whole file was read, that it is still the version listed.
    async fn after_read(&self, file: &SourceFile) -> Result<AfterRead>;

    /// How the source is named in messages (a folder, a host).
    fn describe(&self) -> String;
}

/// A source config that can build its running source.
pub trait BuildSource {
    fn build(&self) -> Result<Arc<dyn Source>>;
}

macro_rules! register_sources {
    ($($tag:literal => $variant:ident($config:ty),)*) => {
        /// `[source]`: one of the registered source types, chosen by `type`.
        #[derive(Debug, serde::Deserialize)]
        #[serde(tag = "type", deny_unknown_fields)]
        pub enum SourceConfig {
            $(#[serde(rename = $tag)] $variant($config),)*
        }

        impl SourceConfig {
            pub fn build(&self) -> Result<Arc<dyn Source>> {
                match self {
                    $(SourceConfig::$variant(config) => config.build(),)*
                }
            }
        }
    };
}

register_sources! {
    "dir" => Dir(dir::DirSourceConfig),
    "ftp" => Ftp(ftp::FtpSourceConfig),
    "http" => Http(http::HttpSourceConfig),
}

/// Filters every source shares: which merchants and which kinds of file.
#[derive(Debug, Clone, Default)]
pub struct FileFilter {
    pub mids: Option<Vec<String>>,
    pub kinds: Option<Vec<RecordKind>>,
}

impl FileFilter {
    /// The filter a source's `mids` and `kinds` keys describe.
    pub fn from_keys(
        mids: &Option<Vec<crate::config::EnvString>>,
        kinds: &Option<Vec<RecordKind>>,
    ) -> Self {
        FileFilter {
            mids: mids
                .as_ref()
                .map(|mids| mids.iter().map(|mid| mid.to_string()).collect()),
            kinds: kinds.clone(),
        }
    }

    pub fn accepts(&self, name: &TossFileName, dates: &DateSelection) -> bool {
        self.mids
            .as_ref()
            .is_none_or(|mids| mids.contains(&name.mid))
            && self
                .kinds
                .as_ref()
                .is_none_or(|kinds| kinds.contains(&name.kind))
            && dates.contains(name.trxdate)
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
    fn filters_by_mid_kind_and_date() {
        let name = TossFileName::parse("toss_REV_20070706.dat").unwrap();
        let day = NaiveDate::from_ymd_opt(2007, 7, 6).unwrap();
        let that_day = DateSelection::Range { from: day, to: day };
        assert!(FileFilter::default().accepts(&name, &DateSelection::All));
        let only_auth = FileFilter {
            kinds: Some(vec![RecordKind::Auth]),
            ..FileFilter::default()
        };
        assert!(!only_auth.accepts(&name, &that_day));
        let other_mid = FileFilter {
            mids: Some(vec!["shop".into()]),
            ..FileFilter::default()
        };
        assert!(!other_mid.accepts(&name, &that_day));
        let next_day = day.succ_opt().unwrap();
        assert!(!FileFilter::default().accepts(
            &name,
            &DateSelection::Range {
                from: next_day,
                to: next_day
            }
        ));
    }
}
