//! The Parquet encoder: a file written row group by row group, the columns of each encoded in
//! parallel, on a thread of its own beside the pipeline.
//!
//! Encoding and compressing are most of a load's CPU time, so each column of a row group is
//! encoded by its own [`ArrowColumnWriter`] and the columns of a batch are written in parallel on
//! the engine's pool ([`crate::threads`]); the chunks are then appended to the file in column
//! order, so the file is the same whatever the thread count. The encoder writes to any
//! `Write + Send` target and knows nothing of where the bytes end up.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowLeafColumn, ArrowRowGroupWriterFactory,
    compute_leaves,
};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use rayon::prelude::*;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Writes a Parquet file row group by row group, encoding the columns of each in parallel.
pub(super) struct Encoder<W: Write + Send> {
    file: SerializedFileWriter<W>,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    /// The current row group's column writers; empty between row groups.
    columns: Vec<ArrowColumnWriter>,
    /// Rows in the current row group.
    buffered: usize,
    row_group_rows: usize,
}

impl<W: Write + Send> Encoder<W> {
    pub(super) fn new(
        file: W,
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
    pub(super) fn finish(mut self) -> std::result::Result<W, ParquetError> {
        self.flush()?;
        self.file.into_inner()
    }
}

/// An [`Encoder`] on a thread of its own, up to a batch behind the pipeline: while it encodes
/// one batch, the pipeline parses and transforms the next ones.
pub(super) struct Background<W> {
    batches: Option<SyncSender<RecordBatch>>,
    aborted: Arc<AtomicBool>,
    thread: Option<JoinHandle<std::result::Result<W, ParquetError>>>,
}

impl<W: Write + Send + 'static> Background<W> {
    pub(super) fn start(mut encoder: Encoder<W>) -> std::io::Result<Self> {
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
    pub(super) fn send(&mut self, batch: RecordBatch) -> std::result::Result<(), ()> {
        let batches = self.batches.as_ref().ok_or(())?;
        batches.send(batch).map_err(|_| ())
    }

    /// Waits for every queued batch, the last row group and the footer.
    pub(super) fn finish(mut self) -> std::result::Result<W, ParquetError> {
        drop(self.batches.take());
        let thread = self.thread.take().expect("joined once");
        thread
            .join()
            .unwrap_or_else(|_| Err(ParquetError::General("the encoder panicked".to_owned())))
    }

    /// Stops without writing the rest of the file.
    pub(super) fn abort(self) {
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
