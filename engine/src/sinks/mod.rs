//! Where records go. A sink receives one load unit's records at a time (see [`LoadUnit`]), through a
//! [`SinkWriter`] that shows nothing until [`SinkWriter::commit`] and leaves nothing behind after
//! [`SinkWriter::abort`]. `commit` returns only once the data is durable where the sink writes
//! (a Parquet file renamed into place, a database transaction committed, a webhook's receiver
//! answered 2xx); the pipeline records a file as loaded only after every sink committed it.
//!
//! Each load unit is a unit of replacement: Toss re-sends a whole day in every version of a
//! day's file, so a sink given a newer version of a unit must end up holding each of its records
//! once, in the newer version. A sink knows nothing of Toss: it lays its output out by the unit's
//! partition, keys on the record key the pipeline hands it, and takes its storage hints from the
//! columns' metadata (see [`crate::hints`]).
//!
//! Adding a sink: write `sinks/NAME.rs` with a config struct implementing [`BuildSink`], then
//! add one line to the `register_sinks!` list below.

mod delta;
mod parquet;
mod postgres;
mod webhook;

use crate::error::Result;
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use std::path::Path;

pub use crate::unit::LoadUnit;
pub use postgres::{ClientSettings, SslMode, connect_reader, describe_error};

/// A running sink.
#[async_trait::async_trait]
pub trait Sink: Send + Sync {
    /// The sink's name in the summary and in errors.
    fn name(&self) -> &str;

    /// Starts receiving the records of one source file, of the given schema.
    async fn begin(&self, unit: &LoadUnit, schema: SchemaRef) -> Result<Box<dyn SinkWriter>>;

    /// Whether the sink still holds what it committed of a unit (`engine status --verify`):
    /// files deleted or tables emptied by hand are found here, not by `run`, which trusts the
    /// state store. A sink that cannot tell (a webhook's receiver) says so.
    async fn verify(&self, _held: &Held) -> Result<Holding> {
        Ok(Holding::Unchecked)
    }
}

/// What the state store says a sink committed of one unit.
#[derive(Debug, Clone)]
pub struct Held {
    pub unit: String,
    pub rows: u64,
    /// Where the sink put it, as its writer said at commit ([`SinkWriter::location`]).
    pub location: Option<String>,
}

/// What [`Sink::verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holding {
    /// The unit's records are there, as many as committed.
    Holds,
    /// Not there, or not as committed; says what was found.
    Lost(String),
    /// The sink cannot look.
    Unchecked,
}

/// Receives one source file's records; see the module docs for the contract.
#[async_trait::async_trait]
pub trait SinkWriter: Send {
    async fn write(&mut self, batch: &RecordBatch) -> Result<()>;

    /// Makes the records durable and visible, replacing any earlier version of the same source
    /// file; returns the rows written.
    async fn commit(self: Box<Self>, version: &CommittedVersion) -> Result<u64>;

    /// Discards whatever was written since `begin`.
    async fn abort(self: Box<Self>);

    /// Where the unit's records go, for [`Sink::verify`] to look later (a file's path in the
    /// lake); `None` when the sink finds them without one.
    fn location(&self) -> Option<String> {
        None
    }
}

/// What is known of a source file once it has been read whole: what a sink may keep to tell
/// later which version it holds.
#[derive(Debug, Clone)]
pub struct CommittedVersion {
    /// A hash of the file's bytes (xxh3-128, hex).
    pub content_hash: String,
    /// The rows the parser produced from the file.
    pub rows: u64,
}

/// A sink's own tables in the pipeline's state file, for what it must remember between runs
/// (the webhook: what its receiver acknowledged). Their names start with the sink's type
/// (`webhook_sent`), so sink types never collide, and the run bookkeeping never sees them.
#[derive(Debug, Clone)]
pub struct SinkMemory {
    state_dir: std::path::PathBuf,
    namespace: &'static str,
}

impl SinkMemory {
    /// Opens the state file (creating it when needed).
    pub fn open(&self) -> Result<crate::sqlite::StateFile> {
        crate::sqlite::StateFile::open(&self.state_dir)
    }

    /// The full name of the sink's table `name`.
    pub fn table(&self, name: &str) -> String {
        format!("{}_{name}", self.namespace)
    }
}

/// What a sink is built with besides its own configuration.
#[derive(Debug, Clone, Copy)]
pub struct SinkContext<'a> {
    pub pipeline: &'a str,
    /// Where the pipeline keeps its own state; sinks that must remember what they delivered
    /// (the webhook) keep it there.
    pub state_dir: &'a Path,
    /// The columns that identify a record in the format the pipeline reads: what a sink that
    /// upserts or tracks deliveries keys on unless its own `key` says otherwise.
    pub record_key: &'a [String],
}

impl SinkContext<'_> {
    /// The tables of sinks of type `namespace` in the pipeline's state file.
    pub fn memory(&self, namespace: &'static str) -> SinkMemory {
        SinkMemory {
            state_dir: self.state_dir.to_path_buf(),
            namespace,
        }
    }
}

/// A sink config that can build its running sink; `name` is its label in summaries.
pub trait BuildSink {
    fn build(&self, name: String, context: &SinkContext) -> Result<Box<dyn Sink>>;
}

macro_rules! register_sinks {
    ($($tag:literal => $variant:ident($config:ty),)*) => {
        /// `[[sinks]]`: one of the registered sink types, chosen by `type`.
        #[derive(Debug, serde::Deserialize)]
        #[serde(tag = "type", deny_unknown_fields)]
        pub enum SinkConfig {
            $(#[serde(rename = $tag)] $variant($config),)*
        }

        impl SinkConfig {
            /// The `type` as written in the pipeline file.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $(SinkConfig::$variant(_) => $tag,)*
                }
            }

            pub fn build(&self, name: String, context: &SinkContext) -> Result<Box<dyn Sink>> {
                match self {
                    $(SinkConfig::$variant(config) => config.build(name, context),)*
                }
            }
        }
    };
}

register_sinks! {
    "parquet" => Parquet(parquet::ParquetSinkConfig),
    "delta" => Delta(delta::DeltaSinkConfig),
    "postgres" => Postgres(postgres::PostgresSinkConfig),
    "webhook" => Webhook(webhook::WebhookSinkConfig),
}

/// Builds every sink of a pipeline, naming each by its type, numbered when a type repeats
/// (`parquet`, `parquet#2`).
pub fn build_all(configs: &[SinkConfig], context: &SinkContext) -> Result<Vec<Box<dyn Sink>>> {
    configs
        .iter()
        .zip(names(configs))
        .map(|(config, name)| config.build(name, context))
        .collect()
}

/// The sinks' names, as [`build_all`] gives them, without building anything.
pub fn names(configs: &[SinkConfig]) -> Vec<String> {
    let mut seen = std::collections::HashMap::<&str, usize>::new();
    configs
        .iter()
        .map(|config| {
            let count = seen.entry(config.type_name()).or_default();
            *count += 1;
            match *count {
                1 => config.type_name().to_owned(),
                n => format!("{}#{n}", config.type_name()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configs(text: &str) -> Vec<SinkConfig> {
        #[derive(serde::Deserialize)]
        struct File {
            sinks: Vec<SinkConfig>,
        }
        toml::from_str::<File>(text).unwrap().sinks
    }

    #[test]
    fn sinks_are_named_by_type_and_numbered_when_a_type_repeats() {
        let sinks = configs(
            r#"
            [[sinks]]
            type = "parquet"
            path = "a"
            [[sinks]]
            type = "webhook"
            url = "http://127.0.0.1:9/hook"
            secret = "s"
            [[sinks]]
            type = "parquet"
            path = "b"
            [[sinks]]
            type = "parquet"
            path = "c"
            "#,
        );
        assert_eq!(
            names(&sinks),
            ["parquet", "webhook", "parquet#2", "parquet#3"]
        );
        assert!(names(&[]).is_empty());
    }
}
