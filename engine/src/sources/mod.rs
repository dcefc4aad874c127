//! Where the records come from. A source lists the load units of the selected business dates
//! (today: Toss files, one unit per file) and fetches one at a time as a local, finished byte
//! stream; it never parses. Remote sources fetch to a temporary file first, so a dropped
//! connection can never load half a file. What makes a unit final (needing no new look) is the
//! source's to say: only it knows when its data stops changing.
//!
//! Adding a source: write `sources/NAME.rs` with a config struct implementing [`BuildSource`],
//! then add one line to the `register_sources!` list below.

mod dir;
mod ftp;
mod http;
mod toss_api;

use crate::dates::DateSelection;
use crate::error::Result;
use crate::unit::{FileVersion, LoadUnit};
use chrono::{DateTime, FixedOffset};
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

pub use crate::toss::{RecordKind, TossFileName};

/// A unit the source saw but will not hand over in this run, and why.
#[derive(Debug, Clone)]
pub struct Deferred {
    pub name: String,
    pub reason: String,
}

/// What a source found for the selected dates.
#[derive(Debug, Default)]
pub struct Listing {
    pub units: Vec<LoadUnit>,
    pub deferred: Vec<Deferred>,
}

/// Whether a fetched unit was still the version that was listed after it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterRead {
    Unchanged,
    /// It changed while being read (Toss was still writing it); the load must be discarded.
    Changed(String),
}

/// A unit ready to be read: local, and complete (remote sources download to a temporary file
/// first, so a dropped connection never loads half a file).
pub struct Fetched {
    pub reader: Box<dyn Read + Send>,
    /// The content's xxh3-128 hash (hex), when the source computed it while fetching; lets a
    /// re-fetched, unchanged unit be skipped before it is parsed.
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
    /// Lists the units of the selected business dates that pass the source's filters.
    async fn list(&self, dates: &DateSelection) -> Result<Listing>;

    /// Fetches one listed unit.
    async fn fetch(&self, unit: &LoadUnit) -> Result<Fetched>;

    /// How many units may be fetched ahead of the one loading (remote sources download several
    /// dates at once during a backfill).
    fn fetch_ahead(&self) -> usize {
        1
    }

    /// Checks, after the whole unit was read, that it is still the version listed.
    async fn after_read(&self, unit: &LoadUnit) -> Result<AfterRead>;

    /// Whether a unit whose listing says nothing new needs no fetch at all because what was
    /// loaded at `loaded_at` is final (the source knows when its data stops changing). Units
    /// whose listed version equals the loaded one are skipped without asking.
    fn is_final(&self, _unit: &LoadUnit, _loaded_at: DateTime<FixedOffset>) -> bool {
        false
    }

    /// How the source is named in messages (a folder, a host).
    fn describe(&self) -> String;

    /// For a source whose past days keep changing (an API's late cancels and settlements): how
    /// many days before today `engine watch` pulls in every cycle. `None`: today, and
    /// yesterday until its full file is in (Toss's file schedule).
    fn watch_days(&self) -> Option<u32> {
        None
    }
}

/// The load unit of one Toss file: named by its file name, partitioned by kind and business
/// date, labelled with what the Toss parser needs.
pub fn toss_file_unit(file: &TossFileName, origin: String, version: FileVersion) -> LoadUnit {
    let kind = file.kind.as_str().to_owned();
    LoadUnit {
        name: file.file_name(),
        origin,
        business_date: file.trxdate,
        labels: BTreeMap::from([
            ("mid".to_owned(), file.mid.clone()),
            ("record_kind".to_owned(), kind.clone()),
        ]),
        partition: vec![
            ("record_kind".to_owned(), kind),
            (
                "trxdate".to_owned(),
                file.trxdate.format("%Y-%m-%d").to_string(),
            ),
        ],
        version,
    }
}

/// The Toss file a unit of a Toss file source stands for.
fn toss_file(unit: &LoadUnit) -> TossFileName {
    TossFileName::parse(&unit.name).expect("Toss file sources name units by their file names")
}

/// A source config that can build its running source.
pub trait BuildSource {
    fn build(&self) -> Result<Arc<dyn Source>>;

    /// The `[parser] type` of the source's bytes when only one can be (an API's records), so
    /// the pipeline file need not name it; `None` for sources of files in any format.
    fn format(&self) -> Option<&'static str> {
        None
    }
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

            /// See [`BuildSource::format`].
            pub fn format(&self) -> Option<&'static str> {
                match self {
                    $(SourceConfig::$variant(config) => config.format(),)*
                }
            }
        }
    };
}

register_sources! {
    "dir" => Dir(dir::DirSourceConfig),
    "ftp" => Ftp(ftp::FtpSourceConfig),
    "http" => Http(http::HttpSourceConfig),
    "toss-api" => TossApi(toss_api::TossApiSourceConfig),
}

/// Filters every source shares: which merchants and which kinds of file.
#[derive(Debug, Clone, Default)]
pub struct FileFilter {
    pub mids: Option<Vec<String>>,
    pub kinds: Option<Vec<RecordKind>>,
}

/// `mids`: left out, every merchant id; a list, those. An empty list would match no file at
/// all, which nobody means.
pub(crate) fn deserialize_mids<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<Vec<crate::env::EnvString>>, D::Error> {
    use serde::Deserialize;
    let mids = Option::<Vec<crate::env::EnvString>>::deserialize(deserializer)?;
    if mids.as_ref().is_some_and(Vec::is_empty) {
        return Err(serde::de::Error::custom(
            "`mids = []` matches no file; remove the key to load every merchant id, or list one \
             (mids = [\"your-mid\"])",
        ));
    }
    Ok(mids)
}

impl FileFilter {
    /// The filter a source's `mids` and `kinds` keys describe.
    pub fn from_keys(
        mids: &Option<Vec<crate::env::EnvString>>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

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
