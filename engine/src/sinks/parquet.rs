//! `type = "parquet"`: the data lake. Hive-style partitions
//! `{path}/record_kind={AUTH|REV}/trxdate={YYYY-MM-DD}/` that DuckDB, Spark, Trino and pyarrow
//! read as they are, one file per source file (`{mid}_{kind}_{yyyymmdd}.parquet`).
//!
//! One output file per source file is what makes re-loads exact: a newer version of a day's
//! file is written beside the old output under a hidden temporary name and renamed over it, so a
//! reader sees either the old version or the new one, never a mix and never both. The partition
//! columns live in the path, not in the file, as Hive-style readers expect.
//!
//! # Speed and size
//! Encoding and compressing are most of a load's CPU time, so each column of a row group is
//! encoded by its own [`ArrowColumnWriter`] and the columns of a batch are written in parallel on
//! the engine's pool ([`crate::threads`]); the chunks are then appended to the file in column
//! order, so the file is the same whatever the thread count. Each column gets the encoding that
//! measured smallest and fastest on realistic Toss data (`bench/`): dictionaries for the
//! low-cardinality columns, delta encodings for the ordered numbers and for the transaction
//! numbers (which share long prefixes), plain bytes for the random ones, then zstd.

use super::{BuildSink, CommittedVersion, LoadUnit, Sink, SinkContext, SinkWriter};
use crate::config::EnvString;
use crate::error::{Error, Result};
use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowLeafColumn, ArrowRowGroupWriterFactory,
    compute_leaves,
};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;
use serde::Deserialize;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

/// `[[sinks]]` with `type = "parquet"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParquetSinkConfig {
    /// The lake's root folder.
    pub path: EnvString,
    /// zstd level, 1 (fast) to 22 (small); default 1. Measured on the benchmark's 5 million
    /// rows: level 3 makes the file 6 % smaller for 15 % more CPU time, and level 1 is
    /// already smaller than DuckDB's output at its default level 3.
    #[serde(default = "default_zstd_level")]
    pub zstd_level: i32,
    /// Rows per row group (default 262144); bounds the writer's memory.
    #[serde(default = "default_row_group_rows")]
    pub row_group_rows: usize,
}

fn default_zstd_level() -> i32 {
    1
}
fn default_row_group_rows() -> usize {
    262_144
}

/// Columns that the partition path carries.
const PARTITION_COLUMNS: [&str; 2] = ["record_kind", "trxdate"];

/// Columns with many distinct values, where a dictionary only costs time, and the encoding
/// each gets instead (chosen by measuring sizes and times on the benchmark's data): the
/// transaction numbers and order ids share long prefixes with the row before, so only their
/// suffixes are stored; buyer ids and the random authorization numbers compress better with
/// their lengths stored apart from their bytes; timestamps and line numbers are ordered, so
/// their deltas are tiny. Every other column (amount included: a few thousand distinct amounts)
/// is dictionary-encoded.
const HIGH_CARDINALITY: [(&str, Encoding); 6] = [
    ("transaction", Encoding::DELTA_BYTE_ARRAY),
    ("oid", Encoding::DELTA_BYTE_ARRAY),
    ("buyerid", Encoding::DELTA_LENGTH_BYTE_ARRAY),
    ("authnumber", Encoding::DELTA_LENGTH_BYTE_ARRAY),
    ("occurred_at", Encoding::DELTA_BINARY_PACKED),
    ("source_line", Encoding::DELTA_BINARY_PACKED),
];

/// Columns whose statistics could never let a reader skip a row group: the random ones, whose
/// every row group spans nearly all values, and `source_file`, which has one value per file
/// (each file holds one source file). Their statistics would cost two comparisons a value (a
/// tenth of the encoder's time in the profile) for nothing.
const UNORDERED: [&str; 3] = ["buyerid", "authnumber", "source_file"];

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
            let name = field.name().as_str();
            if let Some(&(_, encoding)) =
                HIGH_CARDINALITY.iter().find(|(column, _)| *column == name)
            {
                builder = builder
                    .set_column_dictionary_enabled(ColumnPath::from(name), false)
                    .set_column_encoding(ColumnPath::from(name), encoding);
            }
            if UNORDERED.contains(&name) {
                builder = builder
                    .set_column_statistics_enabled(ColumnPath::from(name), EnabledStatistics::None);
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
        let encoder =
            Encoder::new(file, &file_schema, self.properties(&file_schema)).map_err(|err| {
                Error::sink(&self.name, format!("cannot start a Parquet file: {err}"))
            })?;
        let encoder = Background::start(encoder).map_err(|err| Error::Sink {
            sink: self.name.clone(),
            message: "cannot start the Parquet encoder".to_owned(),
            cause: Some(Box::new(err)),
        })?;
        Ok(Box::new(ParquetWriter {
            sink: self.name.clone(),
            writer: Some(encoder),
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

/// Writes a Parquet file row group by row group, encoding the columns of each in parallel.
struct Encoder {
    file: SerializedFileWriter<File>,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    /// The current row group's column writers; empty between row groups.
    columns: Vec<ArrowColumnWriter>,
    /// Rows in the current row group.
    buffered: usize,
    row_group_rows: usize,
}

impl Encoder {
    fn new(
        file: File,
        schema: &SchemaRef,
        properties: WriterProperties,
    ) -> std::result::Result<Self, ParquetError> {
        let row_group_rows = properties
            .max_row_group_row_count()
            .unwrap_or(usize::MAX)
            .max(1);
        // ArrowWriter lays out the file (schema, the Arrow schema in its metadata) and hands
        // over the parts that let columns be encoded apart.
        let (file, factory) = ArrowWriter::try_new(file, Arc::clone(schema), Some(properties))?
            .into_serialized_writer()?;
        Ok(Encoder {
            file,
            factory,
            schema: Arc::clone(schema),
            columns: Vec::new(),
            buffered: 0,
            row_group_rows,
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> std::result::Result<(), ParquetError> {
        let mut rest = batch.clone();
        while rest.num_rows() > 0 {
            let take = (self.row_group_rows - self.buffered).min(rest.num_rows());
            let part = rest.slice(0, take);
            rest = rest.slice(take, rest.num_rows() - take);
            if self.columns.is_empty() {
                let index = self.file.flushed_row_groups().len();
                self.columns = self.factory.create_column_writers(index)?;
            }
            let mut leaves = Vec::with_capacity(self.columns.len());
            for (field, column) in self.schema.fields().iter().zip(part.columns()) {
                leaves.extend(compute_leaves(field, column)?);
            }
            let pairs: Vec<(&mut ArrowColumnWriter, ArrowLeafColumn)> =
                self.columns.iter_mut().zip(leaves).collect();
            in_parallel(pairs, |(writer, leaf)| writer.write(&leaf))?;
            self.buffered += take;
            if self.buffered >= self.row_group_rows {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Closes the current row group's columns (their last pages compress in parallel too) and
    /// appends them to the file in column order.
    fn flush(&mut self) -> std::result::Result<(), ParquetError> {
        if self.columns.is_empty() {
            return Ok(());
        }
        let columns = std::mem::take(&mut self.columns);
        let chunks: Vec<ArrowColumnChunk> = match crate::threads::pool() {
            Some(pool) => pool.install(|| {
                columns
                    .into_par_iter()
                    .map(|w| w.close())
                    .collect::<std::result::Result<_, _>>()
            })?,
            None => columns
                .into_iter()
                .map(|w| w.close())
                .collect::<std::result::Result<_, _>>()?,
        };
        let mut row_group = self.file.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
        self.buffered = 0;
        Ok(())
    }

    /// Writes the last row group and the footer.
    fn finish(mut self) -> std::result::Result<File, ParquetError> {
        self.flush()?;
        self.file.into_inner()
    }
}

/// An [`Encoder`] on a thread of its own, up to a batch behind the pipeline: while it encodes
/// one batch, the pipeline parses and transforms the next ones.
struct Background {
    batches: Option<SyncSender<RecordBatch>>,
    aborted: Arc<AtomicBool>,
    thread: Option<JoinHandle<std::result::Result<File, ParquetError>>>,
}

impl Background {
    fn start(mut encoder: Encoder) -> std::io::Result<Self> {
        let (batches, queue) = sync_channel::<RecordBatch>(1);
        let aborted = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&aborted);
        let thread = std::thread::Builder::new()
            .name("parquet-encoder".to_owned())
            .spawn(move || {
                for batch in queue {
                    encoder.write(&batch)?;
                }
                if stop.load(Ordering::Relaxed) {
                    return Err(ParquetError::General("aborted".to_owned()));
                }
                encoder.finish()
            })?;
        Ok(Background {
            batches: Some(batches),
            aborted,
            thread: Some(thread),
        })
    }

    /// Queues `batch`, waiting while the encoder is a batch behind. An error means the encoder
    /// stopped on one; [`Background::finish`] says which.
    fn send(&mut self, batch: RecordBatch) -> std::result::Result<(), ()> {
        let batches = self.batches.as_ref().ok_or(())?;
        batches.send(batch).map_err(|_| ())
    }

    /// Waits for every queued batch, the last row group and the footer.
    fn finish(mut self) -> std::result::Result<File, ParquetError> {
        drop(self.batches.take());
        let thread = self.thread.take().expect("joined once");
        thread
            .join()
            .unwrap_or_else(|_| Err(ParquetError::General("the encoder panicked".to_owned())))
    }

    /// Stops without writing the rest of the file.
    fn abort(self) {
        self.aborted.store(true, Ordering::Relaxed);
        let _ = self.finish();
    }
}

/// Runs `work` on every item, on the engine's pool when it has one; the first error wins.
fn in_parallel<T: Send>(
    items: Vec<T>,
    work: impl Fn(T) -> std::result::Result<(), ParquetError> + Sync + Send,
) -> std::result::Result<(), ParquetError> {
    match crate::threads::pool() {
        Some(pool) => pool.install(|| items.into_par_iter().try_for_each(work)),
        None => items.into_iter().try_for_each(work),
    }
}

struct ParquetWriter {
    sink: String,
    writer: Option<Background>,
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
        let rows = projected.num_rows() as u64;
        let writer = self.writer.as_mut().expect("writer lives until commit");
        // The encoder may be a batch behind: wait for it off the async workers' backs.
        if tokio::task::block_in_place(|| writer.send(projected)).is_err() {
            let stopped = self.writer.take().expect("present above").finish();
            let why = stopped
                .err()
                .map_or_else(|| "it stopped".to_owned(), |err| err.to_string());
            return Err(self.failed(format!("cannot write Parquet: {why}")));
        }
        self.rows += rows;
        Ok(())
    }

    async fn commit(mut self: Box<Self>, _version: &CommittedVersion) -> Result<u64> {
        let Some(writer) = self.writer.take() else {
            let _ = std::fs::remove_file(&self.temp_path);
            return Err(self.failed("cannot commit after a failed write".to_owned()));
        };
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
                .finish()
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
        if let Some(writer) = self.writer.take() {
            tokio::task::block_in_place(|| writer.abort());
        }
        let _ = std::fs::remove_file(&self.temp_path);
    }
}
