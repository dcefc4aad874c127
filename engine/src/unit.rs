//! The load unit: what a source hands over as one whole and every sink replaces as one whole.
//!
//! Today a unit is one version of one Toss file; a source that pulls an API by day makes a
//! unit of each day. Everything downstream keys on the unit's [`LoadUnit::name`] (the state
//! store, the rejects file, a sink's record of what it holds) and lays its output out by the
//! unit's [`LoadUnit::partition`], so nothing past the source needs to know what a Toss file
//! name looks like.

use chrono::NaiveDate;
use std::collections::BTreeMap;

/// One unit of loading; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadUnit {
    /// The unit's identity within its pipeline, stable from one version to the next: the key
    /// of its versions in the state store, the name of its rejects file and of its outputs. For
    /// the file feed, the file name (`{mid}_{AUTH|REV}_{yyyymmdd}.dat`).
    pub name: String,
    /// Where the records came from, as people should see it (a file name, a URL without its
    /// key); what a decoder copies into each row's provenance.
    pub origin: String,
    /// The business day (Korea time) whose records the unit holds.
    pub business_date: NaiveDate,
    /// Facts about the unit that its decoder needs besides the bytes, by name (for a Toss file:
    /// `mid` and `record_kind`).
    pub labels: BTreeMap<String, String>,
    /// The Hive-style partition of the unit's records, outermost first: column and value. A
    /// partitioning sink lays its files out by it and keeps these columns out of the files.
    pub partition: Vec<(String, String)>,
    /// What the source's listing says of this version.
    pub version: FileVersion,
}

impl LoadUnit {
    /// The label `name`, if the source gave it.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }

    /// The unit's name without its extension (`toss_AUTH_20070706`): the stem of an output
    /// file named after it.
    pub fn stem(&self) -> &str {
        match self.name.rsplit_once('.') {
            Some((stem, _)) if !stem.is_empty() => stem,
            _ => &self.name,
        }
    }
}

/// What one version of a unit looked like.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileVersion {
    /// Size in bytes, when the source knows it before reading.
    pub size: Option<u64>,
    /// Modification time in nanoseconds since the Unix epoch, when the source knows it.
    pub modified_ns: Option<i64>,
    /// Hash of the content (xxh3-128, hex), once the unit was read.
    pub content_hash: Option<String>,
}

impl FileVersion {
    /// Whether `other` is the same version, judged by what both sides know: equal size and
    /// modification time, or equal content hash.
    pub fn same_as(&self, other: &FileVersion) -> bool {
        let by_listing = match (self.size, self.modified_ns, other.size, other.modified_ns) {
            (Some(a_size), Some(a_time), Some(b_size), Some(b_time)) => {
                a_size == b_size && a_time == b_time
            }
            _ => false,
        };
        let by_content = matches!(
            (&self.content_hash, &other.content_hash),
            (Some(a), Some(b)) if a == b
        );
        by_listing || by_content
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stem_drops_only_the_extension() {
        let mut unit = LoadUnit {
            name: "toss_AUTH_20070706.dat".into(),
            origin: String::new(),
            business_date: NaiveDate::from_ymd_opt(2007, 7, 6).unwrap(),
            labels: BTreeMap::new(),
            partition: Vec::new(),
            version: FileVersion::default(),
        };
        assert_eq!(unit.stem(), "toss_AUTH_20070706");
        unit.name = "transactions_2026-12-01".into();
        assert_eq!(unit.stem(), "transactions_2026-12-01");
        unit.name = ".hidden".into();
        assert_eq!(unit.stem(), ".hidden");
    }

    #[test]
    fn versions_match_by_listing_or_by_content() {
        let listed = |size, time| FileVersion {
            size: Some(size),
            modified_ns: Some(time),
            content_hash: None,
        };
        assert!(listed(1, 2).same_as(&listed(1, 2)));
        assert!(!listed(1, 2).same_as(&listed(1, 3)));
        let hashed = |hash: &str| FileVersion {
            content_hash: Some(hash.into()),
            ..FileVersion::default()
        };
        assert!(hashed("a").same_as(&hashed("a")));
        assert!(!hashed("a").same_as(&hashed("b")));
        assert!(!FileVersion::default().same_as(&FileVersion::default()));
    }
}
