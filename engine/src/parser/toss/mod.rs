//! `type = "toss"`: the record format of Toss Payments' transaction files, read as a stream.
//!
//! Toss Payments re-sends a day's cumulative file every 20 minutes, files may still be growing
//! while they are read, and an HTTP body arrives in arbitrary pieces, so this is a push decoder:
//! [`TossDecoder`] takes bytes in any chunking and hands out Arrow batches of [`toss_schema`] and
//! the lines that could not become a row. Memory is bounded by the batch size and the duplicate
//! check's fixed budget (its most recent keys in memory, older ones in a temporary file: see
//! `dedup.rs`), not by the file size. The layout of a line and what each field may hold are in
//! `docs/toss-format.md`.
//!
//! Speed matters (the engine is meant to beat a general-purpose CSV reader on these files), so
//! the hot path works on bytes: `memchr` finds lines and fields, ASCII fields are never run
//! through a text decoder, numbers and timestamps are parsed by hand, and values go straight into
//! Arrow builders without a `String` per field. Only fields that hold non-ASCII bytes in an
//! EUC-KR file are decoded (into one reused buffer). And the lines are parsed on every core: a
//! file is cut into segments of whole lines that worker threads parse at once, and only the
//! duplicate check runs in line order (see `decoder.rs`).

mod columns;
mod decoder;
mod dedup;
pub(crate) mod fields;
mod line_ends;
mod segment;
mod text;
mod workers;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use arrow::datatypes::SchemaRef;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{BuildDecoder, DecodeError, Decoder, Detected, ParseStats, Reject};
use crate::error::{Error, Result};
use crate::unit::LoadUnit;

pub use crate::toss::{KOREA_TIME_ZONE, RecordKind, UnknownValue};
pub use decoder::{MAX_LINE_BYTES, TossDecoder};

/// The columns that identify a Toss record: a sink that upserts or tracks deliveries keys on
/// these unless told otherwise.
pub const RECORD_KEY: [&str; 6] = [
    "record_kind",
    "trxdate",
    "mid",
    "paytype",
    "transaction",
    "oid",
];

/// `[parser]` with `type = "toss"` (the default).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TossFormatConfig {
    #[serde(default, deserialize_with = "crate::env::expanded")]
    pub delimiter: Delimiter,
    #[serde(default, deserialize_with = "crate::env::expanded")]
    pub encoding: Encoding,
    /// More rejected lines than this in one file fails that file's load.
    #[serde(default = "default_max_rejects")]
    pub max_rejects: u64,
    /// Lines per Arrow record batch.
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
}

fn default_max_rejects() -> u64 {
    100
}

fn default_batch_rows() -> usize {
    ParserOptions::DEFAULT_BATCH_ROWS
}

impl Default for TossFormatConfig {
    fn default() -> Self {
        TossFormatConfig {
            delimiter: Delimiter::Auto,
            encoding: Encoding::Auto,
            max_rejects: default_max_rejects(),
            batch_rows: default_batch_rows(),
        }
    }
}

impl TossFormatConfig {
    fn options(&self) -> ParserOptions {
        ParserOptions {
            delimiter: self.delimiter,
            encoding: self.encoding,
            batch_rows: self.batch_rows,
        }
    }
}

impl BuildDecoder for TossFormatConfig {
    fn schema(&self) -> SchemaRef {
        toss_schema()
    }

    fn record_key(&self) -> Vec<String> {
        RECORD_KEY.iter().map(|column| column.to_string()).collect()
    }

    fn max_rejects(&self) -> u64 {
        self.max_rejects
    }

    fn check(&self, at: &dyn Fn(&str) -> String) -> Result<()> {
        if self.batch_rows == 0 {
            return Err(Error::config(
                at("[parser] batch_rows"),
                "batch_rows must be at least 1 (default 32768)",
            ));
        }
        Ok(())
    }

    fn decoder(&self, unit: &LoadUnit) -> Result<Box<dyn Decoder>> {
        let context = FileContext::of(unit)?;
        Ok(Box::new(TossDecoder::new(self.options(), context)))
    }
}

impl Decoder for TossDecoder {
    fn decode(&mut self, chunk: &[u8]) -> Result<(), DecodeError> {
        TossDecoder::decode(self, chunk);
        self.check_keys()
    }

    fn finish(&mut self) -> Result<(), DecodeError> {
        TossDecoder::finish(self);
        self.check_keys()
    }

    fn next_batch(&mut self) -> Option<arrow::record_batch::RecordBatch> {
        TossDecoder::next_batch(self)
    }

    fn take_rejects(&mut self) -> Vec<Reject> {
        TossDecoder::take_rejects(self)
    }

    fn stats(&self) -> &ParseStats {
        TossDecoder::stats(self)
    }

    fn detected(&self) -> Detected {
        Detected {
            encoding: self.detected_encoding().map(Encoding::as_str),
            delimiter: self.detected_delimiter().map(Delimiter::as_str),
        }
    }
}

/// The field delimiter of a Toss file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Delimiter {
    /// Decide on the first non-blank line (see [`TossDecoder`]).
    #[default]
    Auto,
    /// `;`, what Toss's own examples and the public integrations use.
    Semicolon,
    /// `,`, what Toss's format description says.
    Comma,
}

impl Delimiter {
    /// The spelling used in the pipeline file: `auto`, `;` or `,`.
    pub fn as_str(self) -> &'static str {
        match self {
            Delimiter::Auto => "auto",
            Delimiter::Semicolon => ";",
            Delimiter::Comma => ",",
        }
    }

    /// The delimiter byte, `None` for [`Delimiter::Auto`].
    pub fn byte(self) -> Option<u8> {
        match self {
            Delimiter::Auto => None,
            Delimiter::Semicolon => Some(b';'),
            Delimiter::Comma => Some(b','),
        }
    }
}

impl FromStr for Delimiter {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            ";" => Ok(Delimiter::Semicolon),
            "," => Ok(Delimiter::Comma),
            t if t.eq_ignore_ascii_case("auto") => Ok(Delimiter::Auto),
            _ => Err(UnknownValue::new(
                "delimiter",
                s,
                "\"auto\", \";\" or \",\"",
            )),
        }
    }
}

/// The text encoding of a Toss file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Encoding {
    /// Decide at the first line that holds a non-ASCII byte (see [`TossDecoder`]).
    #[default]
    Auto,
    /// UTF-8.
    Utf8,
    /// EUC-KR, read as CP949 (its superset, which is what Korean legacy systems write).
    EucKr,
}

impl Encoding {
    /// The spelling used in the pipeline file: `auto`, `utf-8` or `euc-kr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Auto => "auto",
            Encoding::Utf8 => "utf-8",
            Encoding::EucKr => "euc-kr",
        }
    }
}

impl FromStr for Encoding {
    type Err = UnknownValue;

    /// Case-insensitive; accepts `auto`, `utf-8`/`utf8` and `euc-kr`/`euckr`/`cp949`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Encoding::Auto),
            "utf-8" | "utf8" => Ok(Encoding::Utf8),
            "euc-kr" | "euckr" | "cp949" => Ok(Encoding::EucKr),
            _ => Err(UnknownValue::new(
                "encoding",
                s,
                "\"auto\", \"utf-8\" or \"euc-kr\"",
            )),
        }
    }
}

macro_rules! serde_as_str {
    ($($ty:ty),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}

serde_as_str!(Delimiter, Encoding);

/// How to read a file: the `[parser]` table of the pipeline file, minus what is not the
/// decoder's business (`max_rejects` is enforced by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParserOptions {
    /// The field delimiter, or [`Delimiter::Auto`].
    pub delimiter: Delimiter,
    /// The text encoding, or [`Encoding::Auto`].
    pub encoding: Encoding,
    /// Lines per emitted batch: each batch holds the rows of this many lines of the file, so
    /// fewer rows when some of them are rejected, duplicate or blank (or the file ends). `0` is
    /// read as `1`.
    pub batch_rows: usize,
}

impl ParserOptions {
    /// The default number of lines per batch. A batch is in flight per parse worker, and up to
    /// six more after them (checked, queued, transformed, queued for and in the Parquet
    /// encoder), so this sets most of a load's memory (`bench/README.md` has the measurements).
    pub const DEFAULT_BATCH_ROWS: usize = 32_768;
}

impl Default for ParserOptions {
    fn default() -> Self {
        ParserOptions {
            delimiter: Delimiter::Auto,
            encoding: Encoding::Auto,
            batch_rows: Self::DEFAULT_BATCH_ROWS,
        }
    }
}

/// What the decoder knows about the file from outside its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContext {
    /// `AUTH` or `REV`: fixes which status codes are valid.
    pub record_kind: RecordKind,
    /// The business date of the file or query (Korea time).
    pub trxdate: chrono::NaiveDate,
    /// The file name, or the URL without its key; copied into every row.
    pub source_file: String,
}

impl FileContext {
    /// The context of a unit that a Toss file source listed.
    pub fn of(unit: &LoadUnit) -> Result<Self> {
        let kind = unit
            .label("record_kind")
            .ok_or_else(|| super::missing_label(unit, "toss", "record_kind"))?;
        let record_kind = kind.parse().map_err(|err: UnknownValue| Error::Input {
            file: unit.name.clone(),
            message: err.to_string(),
        })?;
        Ok(FileContext {
            record_kind,
            trxdate: unit.business_date,
            source_file: unit.origin.clone(),
        })
    }
}

/// The one Arrow schema of both kinds, in column order, with each column's shape noted for
/// the sinks (see [`crate::hints`]). It is the SDK's, so plugins and the engine cannot disagree
/// about it.
pub fn toss_schema() -> SchemaRef {
    toss_etl_sdk::toss::schema()
}
