//! `type = "parquet"`: the data lake. Hive-style partitions
//! `{path}/record_kind={AUTH|REV}/trxdate={YYYY-MM-DD}/` that DuckDB, Spark, Trino and pyarrow
//! read as they are, one file per source file (`{mid}_{kind}_{yyyymmdd}.parquet`).
//!
//! One output file per source file is what makes re-loads exact: a newer version of a day's
//! file is written beside the old output under a hidden temporary name and renamed over it, so a
//! reader sees either the old version or the new one, never a mix and never both. The partition
//! columns live in the path, not in the file, as Hive-style readers expect.

use super::{BuildSink, CommittedVersion, LoadUnit, Sink, SinkContext, SinkWriter};
use crate::config::EnvString;
use crate::error::{Error, Result};
use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use serde::Deserialize;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `[[sinks]]` with `type = "parquet"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParquetSinkConfig {
    /// The lake's root folder.
    pub path: EnvString,
    /// zstd level, 1 (fast) to 22 (small); default 3.
    #[serde(default = "default_zstd_level")]
    pub zstd_level: i32,
    /// Rows per row group (default 262144); bounds the writer's memory.
    #[serde(default = "default_row_group_rows")]
    pub row_group_rows: usize,
}

fn default_zstd_level() -> i32 {
    3
}
fn default_row_group_rows() -> usize {
    262_144
}

/// Columns that the partition path carries.
const PARTITION_COLUMNS: [&str; 2] = ["record_kind", "trxdate"];

/// Columns with many distinct values, where a dictionary only costs time.
const HIGH_CARDINALITY: [&str; 6] = [
    "transaction",
    "oid",
    "amount",
    "occurred_at",
    "authnumber",
    "source_line",
];

impl BuildSink for ParquetSinkConfig {
    fn build(&self, name: String, _context: &SinkContext) -> Result<Box<dyn Sink>> {
        let level = ZstdLevel::try_new(self.zstd_level).map_err(|_| {
            Error::config(
                format!("[[sinks]] {name} zstd_level"),
                format!("{} is not a zstd level; use 1 to 22", self.zstd_level),
            )
        })?;
        if self.row_group_rows == 0 {
            return Err(Error::config(
                format!("[[sinks]] {name} row_group_rows"),
                "row_group_rows must be at least 1",
            ));
        }
        Ok(Box::new(ParquetSink {
            name,
            root: self.path.to_path(),
            level,
            row_group_rows: self.row_group_rows,
        }))
    }
}

struct ParquetSink {
    name: String,
    root: PathBuf,
    level: ZstdLevel,
    row_group_rows: usize,
}

impl ParquetSink {
    fn properties(&self, schema: &Schema) -> WriterProperties {
        let mut builder = WriterProperties::builder()
            .set_compression(Compression::ZSTD(self.level))
            .set_max_row_group_row_count(Some(self.row_group_rows))
            .set_dictionary_enabled(true);
        for field in schema.fields() {
            if HIGH_CARDINALITY.contains(&field.name().as_str()) {
                builder = builder
                    .set_column_dictionary_enabled(ColumnPath::from(field.name().as_str()), false);
            }
        }
        builder.build()
    }
}

#[async_trait::async_trait]
impl Sink for ParquetSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn begin(&self, unit: &LoadUnit, schema: SchemaRef) -> Result<Box<dyn SinkWriter>> {
        let folder = self
            .root
            .join(format!("record_kind={}", unit.kind.as_str()))
            .join(format!("trxdate={}", unit.trxdate.format("%Y-%m-%d")));
        std::fs::create_dir_all(&folder)
            .map_err(|err| self.failed("cannot create", &folder, err))?;
        let stem = unit.source_file.trim_end_matches(".dat");
        let final_path = folder.join(format!("{stem}.parquet"));
        let temp_path = folder.join(format!(".{stem}.parquet.inprogress"));

        let kept: Vec<usize> = (0..schema.fields().len())
            .filter(|&index| !PARTITION_COLUMNS.contains(&schema.field(index).name().as_str()))
            .collect();
        let file_schema = Arc::new(schema.project(&kept).map_err(|err| {
            Error::sink(
                &self.name,
                format!("cannot drop the partition columns: {err}"),
            )
        })?);
        let file = File::create(&temp_path)
            .map_err(|err| self.failed("cannot create", &temp_path, err))?;
        let writer = ArrowWriter::try_new(
            file,
            file_schema.clone(),
            Some(self.properties(&file_schema)),
        )
        .map_err(|err| Error::sink(&self.name, format!("cannot start a Parquet file: {err}")))?;
        Ok(Box::new(ParquetWriter {
            sink: self.name.clone(),
            writer: Some(writer),
            kept,
            file_schema,
            temp_path,
            final_path,
            rows: 0,
        }))
    }
}

impl ParquetSink {
    fn failed(&self, what: &str, path: &Path, err: std::io::Error) -> Error {
        Error::Sink {
            sink: self.name.clone(),
            message: format!("{what} {}", path.display()),
            cause: Some(Box::new(err)),
        }
    }
}

struct ParquetWriter {
    sink: String,
    writer: Option<ArrowWriter<File>>,
    kept: Vec<usize>,
    file_schema: SchemaRef,
    temp_path: PathBuf,
    final_path: PathBuf,
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
        if projected.schema().fields() != self.file_schema.fields() {
            return Err(self.failed(format!(
                "a batch's schema changed mid-file: expected {:?}, got {:?}",
                self.file_schema,
                projected.schema()
            )));
        }
        let writer = self.writer.as_mut().expect("writer lives until commit");
        // Encoding and compression are CPU work: keep them off the async workers' backs.
        tokio::task::block_in_place(|| writer.write(&projected))
            .map_err(|err| Error::sink(&self.sink, format!("cannot write Parquet: {err}")))?;
        self.rows += projected.num_rows() as u64;
        Ok(())
    }

    async fn commit(mut self: Box<Self>, _version: &CommittedVersion) -> Result<u64> {
        let writer = self.writer.take().expect("commit runs once");
        let temp_path = self.temp_path.clone();
        let final_path = self.final_path.clone();
        let sink = self.sink.clone();
        tokio::task::block_in_place(move || -> Result<()> {
            let io_failed = |what: &str, err: std::io::Error| Error::Sink {
                sink: sink.clone(),
                message: format!("{what} {}", final_path.display()),
                cause: Some(Box::new(err)),
            };
            let file = writer
                .into_inner()
                .map_err(|err| Error::sink(&sink, format!("cannot finish Parquet: {err}")))?;
            file.sync_all()
                .map_err(|err| io_failed("cannot flush to disk", err))?;
            drop(file);
            std::fs::rename(&temp_path, &final_path)
                .map_err(|err| io_failed("cannot move into place", err))?;
            if let Some(folder) = final_path.parent() {
                // Make the rename itself durable.
                File::open(folder)
                    .and_then(|dir| dir.sync_all())
                    .map_err(|err| io_failed("cannot flush the folder of", err))?;
            }
            Ok(())
        })
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&self.temp_path);
        })?;
        Ok(self.rows)
    }

    async fn abort(mut self: Box<Self>) {
        drop(self.writer.take());
        let _ = std::fs::remove_file(&self.temp_path);
    }
}
