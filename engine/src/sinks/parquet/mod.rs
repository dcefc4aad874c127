//! `type = "parquet"`: the data lake, one Parquet file per load unit in Hive-style partitions
//! (see `layout.rs`).
//!
//! A newer version of a unit is written beside the old output under a name no reader takes as
//! data and put in place over it in one step (see `put.rs`), so a reader sees either the old
//! version or the new one, never a mix and never both. Encoding runs on a thread of its own and
//! the columns on every core (see `encoder.rs`); how each column is encoded follows its hints
//! (see `tuning.rs`), never its name.

mod encoder;
mod layout;
mod object;
mod put;
pub(super) mod tuning;
mod verify;

use super::{BuildSink, CommittedVersion, Held, Holding, LoadUnit, Sink, SinkContext, SinkWriter};
use crate::env::EnvString;
use crate::error::{Error, Result};
use crate::lake::store::{self, Location, StoreOptions};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use encoder::{Background, Encoder};
use parquet::basic::ZstdLevel;
use put::{Destination, LocalFolder, PendingObject};
use serde::Deserialize;
use std::sync::Arc;

/// `[[sinks]]` with `type = "parquet"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParquetSinkConfig {
    /// The lake's root: a folder, or `s3://bucket/prefix` (also `gs://`, `az://`, `file://`).
    pub path: EnvString,
    /// An S3-compatible store's address (MinIO, a test server); default the provider's.
    #[serde(default)]
    pub endpoint: Option<EnvString>,
    /// Talk plain HTTP to `endpoint` (a local test store only).
    #[serde(default)]
    pub allow_http: bool,
    /// The bucket's region (default from the environment, `AWS_REGION`).
    #[serde(default)]
    pub region: Option<EnvString>,
    /// Object stores: the size of each uploaded part in MiB, 5 to 5000 (default 8); one part
    /// is what the upload holds in memory.
    #[serde(default = "default_part_size_mb")]
    pub part_size_mb: usize,
    /// zstd level, 1 (fast) to 22 (small); default 1 (`bench/README.md` has what the levels
    /// cost and save).
    #[serde(default = "default_zstd_level")]
    pub zstd_level: i32,
    /// Rows per row group (default 262144); bounds the writer's memory.
    #[serde(default = "default_row_group_rows")]
    pub row_group_rows: usize,
}

fn default_zstd_level() -> i32 {
    1
}
fn default_part_size_mb() -> usize {
    object::PART_BYTES / (1024 * 1024)
}
fn default_row_group_rows() -> usize {
    262_144
}

impl BuildSink for ParquetSinkConfig {
    fn build(&self, name: String, _context: &SinkContext) -> Result<Box<dyn Sink>> {
        let level = tuning::checked(&name, self.zstd_level, self.row_group_rows)?;
        let destination = self.destination(&name)?;
        Ok(Box::new(ParquetSink {
            name,
            destination,
            level,
            row_group_rows: self.row_group_rows,
        }))
    }
}

impl ParquetSinkConfig {
    /// Where the files go: a local folder for a plain path or `file://`, else the object store
    /// the URL names.
    fn destination(&self, name: &str) -> Result<Arc<dyn Destination>> {
        let at = |key: &str| format!("[[sinks]] {name} {key}");
        let options = StoreOptions::from_keys(
            self.endpoint.as_ref(),
            self.allow_http,
            self.region.as_ref(),
        );
        let (store, url) = match store::locate(&self.path, &options, at)? {
            Location::Local(folder) => return Ok(Arc::new(LocalFolder::new(folder))),
            Location::Object { store, url } => (store, url),
        };
        if !(5..=5000).contains(&self.part_size_mb) {
            return Err(Error::config(
                at("part_size_mb"),
                "part_size_mb must be 5 to 5000 (S3's smallest part is 5 MiB)",
            ));
        }
        let part_bytes = self.part_size_mb * 1024 * 1024;
        let destination =
            object::ObjectDestination::new(store, &url, part_bytes).map_err(|err| {
                Error::config(at("path"), format!("{:?}: {err}", self.path.as_written()))
            })?;
        Ok(Arc::new(destination))
    }
}

struct ParquetSink {
    name: String,
    destination: Arc<dyn Destination>,
    level: ZstdLevel,
    row_group_rows: usize,
}

#[async_trait::async_trait]
impl Sink for ParquetSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn verify(&self, held: &Held) -> Result<Holding> {
        let Some(path) = &held.location else {
            return Ok(Holding::Unchecked);
        };
        let described = self.destination.describe(path);
        let destination = Arc::clone(&self.destination);
        let path = path.clone();
        let footer = tokio::task::spawn_blocking(move || verify::footer_rows(&*destination, &path))
            .await
            .map_err(|err| Error::sink(&self.name, format!("cannot check {described}: {err}")))?;
        Ok(match footer {
            Ok(None) => Holding::Lost(format!("{described} is gone")),
            Ok(Some(rows)) if rows == held.rows => Holding::Holds,
            Ok(Some(rows)) => Holding::Lost(format!(
                "{described} holds {rows} rows, not the {} committed",
                held.rows
            )),
            Err(why) => Holding::Lost(format!("{described} is not a readable Parquet file: {why}")),
        })
    }

    async fn begin(&self, unit: &LoadUnit, schema: SchemaRef) -> Result<Box<dyn SinkWriter>> {
        let placement = layout::place(unit, &schema);
        let projected = schema.project(&placement.kept).map_err(|err| {
            Error::sink(
                &self.name,
                format!("cannot drop the partition columns: {err}"),
            )
        })?;
        let properties = tuning::properties(&projected, self.level, self.row_group_rows);
        let file_schema = Arc::new(crate::hints::without_hints(&projected));
        let described = self.destination.describe(&placement.path);
        let object = self
            .destination
            .create(&placement.path)
            .map_err(|err| Error::Sink {
                sink: self.name.clone(),
                message: format!("cannot create {described}"),
                cause: Some(Box::new(err)),
            })?;
        let encoder = Encoder::new(object, &file_schema, properties).map_err(|err| {
            Error::sink(&self.name, format!("cannot start a Parquet file: {err}"))
        })?;
        let encoder = Background::start(encoder).map_err(|err| Error::Sink {
            sink: self.name.clone(),
            message: "cannot start the Parquet encoder".to_owned(),
            cause: Some(Box::new(err)),
        })?;
        Ok(Box::new(ParquetWriter {
            path: placement.path.clone(),
            sink: self.name.clone(),
            writer: Some(encoder),
            kept: placement.kept,
            file_schema,
            described,
            rows: 0,
        }))
    }
}

struct ParquetWriter {
    /// The file's path in the lake.
    path: String,
    sink: String,
    writer: Option<Background<Box<dyn PendingObject>>>,
    kept: Vec<usize>,
    /// The schema of the file: the batches' without the partition columns and the hints.
    file_schema: SchemaRef,
    /// The final file, as named in messages.
    described: String,
    rows: u64,
}

impl ParquetWriter {
    fn failed(&self, message: String) -> Error {
        Error::sink(&self.sink, message)
    }
}

#[async_trait::async_trait]
impl SinkWriter for ParquetWriter {
    async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let projected = batch
            .project(&self.kept)
            .map_err(|err| self.failed(format!("unexpected batch: {err}")))?;
        let same_columns = projected.schema().fields().len() == self.file_schema.fields().len()
            && projected
                .schema()
                .fields()
                .iter()
                .zip(self.file_schema.fields())
                .all(|(got, expected)| {
                    got.name() == expected.name()
                        && got.data_type() == expected.data_type()
                        && got.is_nullable() == expected.is_nullable()
                });
        if !same_columns {
            return Err(self.failed(format!(
                "a batch's schema changed mid-file: expected {:?}, got {:?}",
                self.file_schema,
                projected.schema()
            )));
        }
        let projected =
            RecordBatch::try_new(Arc::clone(&self.file_schema), projected.columns().to_vec())
                .map_err(|err| self.failed(format!("unexpected batch: {err}")))?;
        let rows = projected.num_rows() as u64;
        let writer = self.writer.as_mut().expect("writer lives until commit");
        // The encoder may be a batch behind: wait for it off the async workers' backs.
        if tokio::task::block_in_place(|| writer.send(projected)).is_err() {
            let stopped = self.writer.take().expect("present above").finish();
            let why = match stopped {
                Ok(object) => {
                    object.abort();
                    "it stopped".to_owned()
                }
                Err(err) => err.to_string(),
            };
            return Err(self.failed(format!("cannot write Parquet: {why}")));
        }
        self.rows += rows;
        Ok(())
    }

    async fn commit(mut self: Box<Self>, _version: &CommittedVersion) -> Result<u64> {
        let Some(writer) = self.writer.take() else {
            return Err(self.failed("cannot commit after a failed write".to_owned()));
        };
        let sink = self.sink.clone();
        let described = self.described.clone();
        tokio::task::block_in_place(move || -> Result<()> {
            let object = writer
                .finish()
                .map_err(|err| Error::sink(&sink, format!("cannot finish Parquet: {err}")))?;
            object.commit().map_err(|err| Error::Sink {
                sink: sink.clone(),
                message: format!("cannot put {described} in place"),
                cause: Some(Box::new(err)),
            })
        })?;
        Ok(self.rows)
    }

    async fn abort(mut self: Box<Self>) {
        if let Some(writer) = self.writer.take() {
            tokio::task::block_in_place(|| writer.abort());
        }
    }

    fn location(&self) -> Option<String> {
        Some(self.path.clone())
    }
}
