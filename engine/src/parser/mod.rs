//! The parser stage: the bytes of a load unit in, Arrow record batches and rejected lines out.
//!
//! A format is a push [`Decoder`] (bytes in any chunking in, batches and [`Reject`]s out, in
//! the shape of arrow-csv's decoder), chosen by `[parser] type` in the pipeline file. A pull
//! [`BatchReader`] on top of it reads any `Read` to the end; the pipeline, `engine inspect` and
//! the tests all read through it, so there is one read/decode/drain loop.
//!
//! Nothing is dropped without a trace: every physical line is counted in [`ParseStats`] as a
//! row, a reject, an exact duplicate or a blank line, and every reject carries its line number,
//! its text and a reason a merchant can act on.
//!
//! Adding a format: write `parser/NAME/` (or `NAME.rs`) with a config struct implementing
//! [`BuildDecoder`], then add one line to the `register_formats!` list below.

mod reader;
pub mod toss;
pub mod toss_api;

use crate::error::{Error, Result};
use crate::unit::LoadUnit;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Deserializer, Serialize};

pub use reader::{BatchReader, Decoded};

/// Turns the bytes of one load unit into batches of one schema and rejected lines.
///
/// Feed bytes with [`decode`](Self::decode) in any chunking, call [`finish`](Self::finish) at
/// the end of the input, and drain [`next_batch`](Self::next_batch) and
/// [`take_rejects`](Self::take_rejects) as you go: the output must not depend on how the input
/// was cut. A line that is wrong is a [`Reject`], never an error: errors are for what makes the
/// whole unit unreadable (a failing temporary file), and after one the unit must not be loaded.
pub trait Decoder: Send {
    /// Reads all of `chunk`.
    fn decode(&mut self, chunk: &[u8]) -> Result<(), DecodeError>;

    /// Marks the end of the input; every batch is ready afterwards.
    fn finish(&mut self) -> Result<(), DecodeError>;

    /// The next batch, once ready; `None` when nothing is ready yet.
    fn next_batch(&mut self) -> Option<RecordBatch>;

    /// The lines rejected since the last call, in line order.
    fn take_rejects(&mut self) -> Vec<Reject>;

    /// What the decoder has seen so far.
    fn stats(&self) -> &ParseStats;

    /// What the decoder found out about the input's text (encoding, delimiter), for people.
    fn detected(&self) -> Detected {
        Detected::default()
    }
}

/// What makes a whole unit unreadable.
#[derive(Debug, thiserror::Error)]
#[error("cannot {doing}: {source}")]
pub struct DecodeError {
    /// What the decoder was doing, e.g. "check for duplicates".
    pub doing: &'static str,
    #[source]
    pub source: std::io::Error,
}

/// What a decoder found out about its input's text; `None` where it did not decide.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Detected {
    pub encoding: Option<&'static str>,
    pub delimiter: Option<&'static str>,
}

/// A line that could not become a row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reject {
    /// 1-based physical line number in the input.
    pub line: u64,
    /// The line's text, decoded (lossily where its bytes are invalid), without the line ending.
    pub raw: String,
    /// What is wrong and, where useful, how to fix it.
    pub reason: String,
}

/// Counts of what a decoder has seen. Every physical line is exactly one of a row, a
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
    /// Lines skipped because an identical row with the same key came earlier in the input.
    pub duplicates: u64,
    /// Empty or whitespace-only lines, skipped.
    pub blank: u64,
}

/// What every format tells the pipeline before any data moves, and how it starts a decoder for
/// one unit.
pub trait BuildDecoder {
    /// The schema of every batch the format's decoders produce (what the first transform gets).
    fn schema(&self) -> SchemaRef;

    /// The columns that identify a record: sinks that upsert or track deliveries key on them
    /// unless their own configuration says otherwise.
    fn record_key(&self) -> Vec<String>;

    /// More rejected lines than this in one unit fails that unit's load.
    fn max_rejects(&self) -> u64;

    /// Checks the rules the types alone cannot express; `at` names a key in messages.
    fn check(&self, at: &dyn Fn(&str) -> String) -> Result<()>;

    /// A decoder for one unit; fails when the unit lacks what the format needs to know.
    fn decoder(&self, unit: &LoadUnit) -> Result<Box<dyn Decoder>>;
}

macro_rules! register_formats {
    ($($tag:literal => $variant:ident($config:ty),)*) => {
        /// `[parser]`: one of the registered formats, chosen by `type`.
        #[derive(Debug, Clone, Deserialize)]
        #[serde(tag = "type", deny_unknown_fields)]
        enum Format {
            $(#[serde(rename = $tag)] $variant($config),)*
        }

        impl Format {
            fn config(&self) -> &dyn BuildDecoder {
                match self {
                    $(Format::$variant(config) => config,)*
                }
            }

            fn type_name(&self) -> &'static str {
                match self {
                    $(Format::$variant(_) => $tag,)*
                }
            }
        }
    };
}

register_formats! {
    "toss" => Toss(toss::TossFormatConfig),
    "toss-api-transactions" => TossApiTransactions(toss_api::TransactionsFormatConfig),
    "toss-api-settlements" => TossApiSettlements(toss_api::SettlementsFormatConfig),
}

/// The format `[parser]` names when it names none (or there is no `[parser]` table).
const DEFAULT_FORMAT: &str = "toss";

/// `[parser]`: the format of the source's bytes and how to read it.
#[derive(Debug, Clone)]
pub struct ParserConfig(Format);

impl ParserConfig {
    /// The format's build side.
    pub fn format(&self) -> &dyn BuildDecoder {
        self.0.config()
    }

    /// The format's `type`, as written in the pipeline file.
    pub fn type_name(&self) -> &'static str {
        self.0.type_name()
    }

    /// The `[parser]` table as written (`None`: no such table) read for a source whose bytes
    /// are always of format `type_name`: `type` may be left out, and must be that if given.
    pub fn for_source(written: Option<toml::Table>, type_name: &str) -> Result<Self> {
        let mut table = written.unwrap_or_default();
        match table.get("type").and_then(toml::Value::as_str) {
            None => {
                table.insert("type".to_owned(), toml::Value::String(type_name.to_owned()));
            }
            Some(given) if given == type_name => {}
            Some(given) => {
                return Err(Error::config(
                    "[parser] type",
                    format!(
                        "this source's records are {type_name:?}, not {given:?}; remove `type` \
                         from [parser] (or the whole [parser] table)"
                    ),
                ));
            }
        }
        Format::deserialize(toml::Value::Table(table))
            .map(ParserConfig)
            .map_err(|err| Error::config("[parser]", err.to_string()))
    }
}

impl Default for ParserConfig {
    fn default() -> Self {
        ParserConfig(Format::Toss(toss::TossFormatConfig::default()))
    }
}

impl<'de> Deserialize<'de> for ParserConfig {
    /// `type` may be left out for the default format.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut table = toml::Table::deserialize(deserializer)?;
        table
            .entry("type")
            .or_insert_with(|| toml::Value::String(DEFAULT_FORMAT.to_owned()));
        Format::deserialize(toml::Value::Table(table))
            .map(ParserConfig)
            .map_err(serde::de::Error::custom)
    }
}

/// The error for a unit that lacks a label its format needs.
pub(crate) fn missing_label(unit: &LoadUnit, format: &str, label: &str) -> Error {
    Error::Input {
        file: unit.name.clone(),
        message: format!(
            "the {format} parser needs to know the unit's `{label}`, which its source did not \
             say; use a source that yields {format} files"
        ),
    }
}
