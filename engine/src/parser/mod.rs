//! The Toss record format, read as a stream.
//!
//! Toss Payments re-sends a day's cumulative file every 20 minutes, files may still be growing
//! while they are read, and an HTTP body arrives in arbitrary pieces. So the parser is a *push
//! decoder* in the shape of arrow-csv's: [`TossDecoder::decode`] takes bytes in any chunking,
//! [`TossDecoder::next_batch`] hands out Arrow [`RecordBatch`](arrow::record_batch::RecordBatch)es
//! of [`toss_schema`], and [`TossDecoder::take_rejects`] hands out the lines that could not become
//! a row, each with its line number, its text and a reason a merchant can act on. Memory is
//! bounded by the batch size and the duplicate check's fixed budget (its most recent keys in
//! memory, older ones in a temporary file: see `dedup.rs`), not by the file size.
//!
//! The decoder never fails on its input: a line that is wrong is a [`Reject`], and the other
//! lines still load. (Only the duplicate check's temporary file can fail, which
//! [`TossDecoder::take_io_error`] reports.)
//! Nothing is dropped without a trace: every physical line is counted in [`ParseStats`] as a row,
//! a reject, an exact duplicate or a blank line.
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
mod fields;
mod segment;
mod text;
mod workers;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use arrow::datatypes::SchemaRef;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use decoder::{MAX_LINE_BYTES, TossDecoder};

/// The time zone of every Toss timestamp: Korea time, which has no daylight saving.
pub const KOREA_TIME_ZONE: &str = "+09:00";

/// The columns that identify a record (the spec's record key): a sink that upserts or tracks
/// deliveries keys on these unless told otherwise.
pub const RECORD_KEY: [&str; 6] = [
    "record_kind",
    "trxdate",
    "mid",
    "paytype",
    "transaction",
    "oid",
];

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

    /// The seed's name of field 10 for this kind.
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

/// The field delimiter of a Toss file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Delimiter {
    /// Decide on the first non-blank line (see [`TossDecoder`]).
    #[default]
    Auto,
    /// `;`, what the seed's examples and the public integrations use.
    Semicolon,
    /// `,`, what the seed's text says.
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

serde_as_str!(RecordKind, Delimiter, Encoding);

/// A configuration value that names no known option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} '{value}': expected {expected}")]
pub struct UnknownValue {
    what: &'static str,
    value: String,
    expected: &'static str,
}

impl UnknownValue {
    fn new(what: &'static str, value: &str, expected: &'static str) -> Self {
        UnknownValue {
            what,
            value: value.to_owned(),
            expected,
        }
    }
}

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
    /// encoder), so this sets most of a load's memory: measured on 5 million rows, 32 768 lines
    /// (about 6 MB a batch) loads as fast as 65 536 in a fifth less memory, and 8 192 or 16 384
    /// cost a fifth or a tenth more time in per-batch work.
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

/// A line that could not become a row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reject {
    /// 1-based physical line number in the file.
    pub line: u64,
    /// The line's text, decoded (lossily where its bytes are invalid), without the line ending.
    pub raw: String,
    /// What is wrong and, where useful, how to fix it.
    pub reason: String,
}

/// Counts of what the decoder has seen. Every physical line is exactly one of a row, a
/// rejected line, an exact duplicate or a blank line:
/// `lines == rows + rejected + duplicates + blank`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ParseStats {
    /// Physical lines seen, blank ones included.
    pub lines: u64,
    /// Rows emitted (or waiting in the current batch).
    pub rows: u64,
    /// Lines rejected.
    pub rejected: u64,
    /// Lines skipped because an identical row with the same key came earlier in the file.
    pub duplicates: u64,
    /// Empty or whitespace-only lines, skipped.
    pub blank: u64,
}

/// The one Arrow schema of both kinds, in column order.
pub fn toss_schema() -> SchemaRef {
    toss_etl_sdk::toss::schema()
}
