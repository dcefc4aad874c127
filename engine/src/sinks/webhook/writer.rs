//! The [`SinkWriter`] of one source file: while the file streams, each batch is encoded as
//! JSON, judged against what the receiver acknowledged ([`super::changes`]) and what is to be
//! sent goes to the spool; at commit the spool is sent in batches of `batch_rows`, and each
//! batch is recorded as acknowledged in the state store right after the receiver accepted it.

use super::WebhookSink;
use super::acks::Acknowledgements;
use super::changes::{Changes, Verdict, content_columns, json_lines, lines, position_column};
use super::delivery::{Delivery, batch_id, describe, envelope};
use super::spool::{SpoolWriter, SpooledBatch};
use crate::error::{Error, Result};
use crate::sinks::{CommittedVersion, LoadUnit, SinkWriter};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, SchemaRef};
use bytes::Bytes;
use std::sync::Arc;
use xxhash_rust::xxh3::xxh3_128;

/// Receives one source file's records: keeps those to send in the spool until commit.
pub(super) struct WebhookWriter {
    delivery: Arc<Delivery>,
    sink_id: String,
    pipeline: String,
    source_file: String,
    batch_rows: usize,
    line_column: Option<usize>,
    key_columns: Vec<usize>,
    content_columns: Vec<usize>,
    store: Acknowledgements,
    /// What the receiver has of this file, and what this version held so far.
    changes: Changes,
    /// The records to send, until commit.
    spool: Option<SpoolWriter>,
    /// How many records the spool holds.
    pub(super) pending: u64,
}

impl WebhookSink {
    /// A writer for one source file, knowing what the receiver already acknowledged of it.
    pub(super) fn writer(&self, unit: &LoadUnit, schema: &SchemaRef) -> Result<WebhookWriter> {
        let key_columns = self.key_columns(schema)?;
        let content_columns = content_columns(schema);
        let store = Acknowledgements::open(&self.memory)?;
        let acknowledged = store.sent(&self.sink_id, &unit.name)?;
        let spool = SpoolWriter::create(&self.state_dir).map_err(|err| Error::Sink {
            sink: self.name.clone(),
            message: format!(
                "cannot create a temporary file in {}",
                self.state_dir.display()
            ),
            cause: Some(Box::new(err)),
        })?;
        Ok(WebhookWriter {
            delivery: Arc::clone(&self.delivery),
            sink_id: self.sink_id.clone(),
            pipeline: self.pipeline.clone(),
            source_file: unit.name.clone(),
            batch_rows: self.batch_rows,
            line_column: position_column(schema),
            key_columns,
            content_columns,
            store,
            changes: Changes::new(acknowledged),
            spool: Some(spool),
            pending: 0,
        })
    }
}

impl WebhookWriter {
    fn failed(&self, message: impl Into<String>) -> Error {
        Error::sink(&self.delivery.sink, message)
    }

    fn spool_failed(&self, err: std::io::Error) -> Error {
        Error::Sink {
            sink: self.delivery.sink.clone(),
            message: format!("cannot spool the records of {}", self.source_file),
            cause: Some(Box::new(err)),
        }
    }

    /// Spools the records of `batch` that the receiver does not have yet.
    pub(super) fn keep(&mut self, batch: &RecordBatch) -> Result<()> {
        let encoding = |err: String| {
            Error::sink(
                &self.delivery.sink,
                format!("cannot encode a batch as JSON: {err}"),
            )
        };
        let rows = batch.num_rows();
        let full = json_lines(batch, false).map_err(encoding)?;
        let keys = batch
            .project(&self.key_columns)
            .map_err(|err| encoding(err.to_string()))
            .and_then(|keys| json_lines(&keys, true).map_err(encoding))?;
        let content = match self.line_column {
            Some(_) => batch
                .project(&self.content_columns)
                .map_err(|err| encoding(err.to_string()))
                .and_then(|content| json_lines(&content, false).map_err(encoding))?,
            None => Vec::new(),
        };
        let full_lines = lines(&full, rows).map_err(encoding)?;
        let key_lines = lines(&keys, rows).map_err(encoding)?;
        let content_lines = match self.line_column {
            Some(_) => lines(&content, rows).map_err(encoding)?,
            None => full_lines.clone(),
        };
        let line_numbers = self
            .line_column
            .and_then(|index| batch.column(index).as_primitive_opt::<Int64Type>());
        for row in 0..rows {
            let key = xxh3_128(key_lines[row]);
            let content = xxh3_128(content_lines[row]);
            match self.changes.judge(key, content) {
                Verdict::Send => {}
                Verdict::Unchanged | Verdict::Repeated => continue,
                Verdict::Conflict => {
                    let line = line_numbers
                        .filter(|numbers| numbers.is_valid(row))
                        .map(|numbers| format!("line {}", numbers.value(row)))
                        .unwrap_or_else(|| "a record".to_owned());
                    return Err(self.failed(format!(
                        "{line} has the key {} of an earlier record but other content; set \
                         `key` to columns that identify one record",
                        String::from_utf8_lossy(key_lines[row]),
                    )));
                }
            }
            let spool = self.spool.as_mut().expect("the spool lives until commit");
            spool
                .push(key, content, full_lines[row])
                .map_err(|err| self.spool_failed(err))?;
            self.pending += 1;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl SinkWriter for WebhookWriter {
    async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        // Encoding and hashing are CPU work: keep them off the async workers' backs.
        tokio::task::block_in_place(|| self.keep(batch))
    }

    async fn commit(mut self: Box<Self>, _version: &CommittedVersion) -> Result<u64> {
        let spool = self.spool.take().expect("commit runs once");
        let mut spool = spool.into_reader().map_err(|err| self.spool_failed(err))?;
        let total = self.pending;
        let batches = total.div_ceil(self.batch_rows as u64);
        let mut sent = 0u64;
        let mut retries = 0u32;
        for number in 1..=batches {
            let SpooledBatch { hashes, records } = spool
                .next_batch(self.batch_rows)
                .map_err(|err| self.spool_failed(err))?;
            if records.is_empty() {
                return Err(self.failed(format!(
                    "the spool of {} ended after {sent} of {total} records",
                    self.source_file
                )));
            }
            let id = batch_id(&self.sink_id, &self.source_file, &hashes);
            let body = Bytes::from(envelope(&self.pipeline, &self.source_file, &id, &records));
            match self.delivery.deliver(&body, &id, &self.source_file).await {
                Ok(took) => retries += took,
                Err(undelivered) => {
                    let next = match sent {
                        0 => format!("the next run sends its {total} records again"),
                        _ => format!(
                            "the {sent} records accepted before it are remembered, the next \
                             run sends the other {}",
                            total - sent
                        ),
                    };
                    return Err(self.failed(format!(
                        "batch {number} of {batches} ({} records, Idempotency-Key {id}) was \
                         not accepted: {}; {next}",
                        records.len(),
                        describe(&undelivered),
                    )));
                }
            }
            self.store
                .record(&self.sink_id, &self.source_file, &hashes)?;
            sent += records.len() as u64;
        }
        tracing::info!(
            sink = %self.delivery.sink,
            file = %self.source_file,
            records = sent,
            unchanged = self.changes.unchanged,
            batches,
            retries,
            "webhook delivered"
        );
        Ok(sent)
    }

    async fn abort(mut self: Box<Self>) {
        // Nothing was sent; the unnamed spool file vanishes when dropped.
        drop(self.spool.take());
    }
}
