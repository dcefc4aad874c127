//! The push decoder both API datasets share: the `toss-api` source hands over a day's pull as
//! lines of `{page}\t{one row's JSON}`, and each line becomes a row of the dataset's schema or a
//! reject naming the page and saying why.
//!
//! Keeping the page beside each row is what lets a reject say where in Toss's answer the row
//! was; keeping the row's whole JSON is what lets the rejects file show it as Toss sent it.

use std::collections::{HashMap, VecDeque};
use std::mem;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use memchr::memchr;
use xxhash_rust::xxh3::xxh3_64;

use crate::parser::{DecodeError, Decoder, ParseStats, Reject};

/// What the decoder knows of the day it reads.
#[derive(Debug, Clone)]
pub(crate) struct Day {
    /// The unit's day, as days since the epoch.
    pub date: i32,
    /// The unit's name, copied into `load_unit`.
    pub unit: String,
    /// Settlements pulled by `soldDate` (not `paidOutDate`): a row without its own `soldDate`
    /// has the day's.
    pub by_sold_date: bool,
}

/// One dataset's rows: how a row's JSON becomes a typed record, and records columns.
pub(crate) trait RowFormat: Send + 'static {
    /// One row, read and checked.
    type Record;
    /// The columns being built.
    type Columns: Send;

    fn schema() -> SchemaRef;

    fn columns(capacity: usize) -> Self::Columns;

    /// Reads one row's JSON, or says why it cannot be a record.
    fn parse(json: &str, day: &Day) -> Result<Self::Record, String>;

    /// The record's key, as text (the columns of the dataset's record key).
    fn key(record: &Self::Record) -> String;

    fn append(columns: &mut Self::Columns, record: Self::Record, day: &Day);

    /// The rows appended so far, as a batch of [`Self::schema`], leaving the columns empty.
    fn finish(columns: &mut Self::Columns) -> RecordBatch;
}

/// The decoder of one day's pull of dataset `F`.
pub(crate) struct RowsDecoder<F: RowFormat> {
    day: Day,
    batch_rows: usize,
    columns: F::Columns,
    in_batch: usize,
    /// The bytes of a line not complete yet.
    pending: Vec<u8>,
    line: u64,
    /// Each key seen, with its row's hash and where it was, for repeats across pages.
    seen: HashMap<String, (u64, u64)>,
    ready: VecDeque<RecordBatch>,
    rejects: Vec<Reject>,
    stats: ParseStats,
}

impl<F: RowFormat> RowsDecoder<F> {
    pub(crate) fn new(day: Day, batch_rows: usize) -> Self {
        let batch_rows = batch_rows.max(1);
        RowsDecoder {
            day,
            batch_rows,
            columns: F::columns(batch_rows.min(8192)),
            in_batch: 0,
            pending: Vec::new(),
            line: 0,
            seen: HashMap::new(),
            ready: VecDeque::new(),
            rejects: Vec::new(),
            stats: ParseStats::default(),
        }
    }

    fn read_line(&mut self, line: &[u8]) {
        self.line += 1;
        self.stats.lines += 1;
        let text = String::from_utf8_lossy(line);
        let (page, json) = text.split_once('\t').unwrap_or(("?", &text));
        if json.trim().is_empty() {
            self.stats.blank += 1;
            return;
        }
        let record = match F::parse(json, &self.day) {
            Ok(record) => record,
            Err(reason) => return self.reject(json, format!("page {page}: {reason}")),
        };
        let key = F::key(&record);
        let hash = xxh3_64(json.as_bytes());
        if let Some(&(earlier_hash, earlier_line)) = self.seen.get(&key) {
            if earlier_hash == hash {
                self.stats.duplicates += 1;
            } else {
                self.reject(
                    json,
                    format!(
                        "page {page}: record key {key} came before (row {earlier_line}) with \
                         other values; the first one is kept"
                    ),
                );
            }
            return;
        }
        self.seen.insert(key, (hash, self.line));
        F::append(&mut self.columns, record, &self.day);
        self.stats.rows += 1;
        self.in_batch += 1;
        if self.in_batch == self.batch_rows {
            self.flush();
        }
    }

    fn reject(&mut self, json: &str, reason: String) {
        self.stats.rejected += 1;
        self.rejects.push(Reject {
            line: self.line,
            raw: json.to_owned(),
            reason,
        });
    }

    fn flush(&mut self) {
        if self.in_batch > 0 {
            self.ready.push_back(F::finish(&mut self.columns));
            self.in_batch = 0;
        }
    }
}

impl<F: RowFormat> Decoder for RowsDecoder<F> {
    fn decode(&mut self, chunk: &[u8]) -> Result<(), DecodeError> {
        let mut rest = chunk;
        while let Some(end) = memchr(b'\n', rest) {
            if self.pending.is_empty() {
                self.read_line(&rest[..end]);
            } else {
                self.pending.extend_from_slice(&rest[..end]);
                let line = mem::take(&mut self.pending);
                self.read_line(&line);
            }
            rest = &rest[end + 1..];
        }
        self.pending.extend_from_slice(rest);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), DecodeError> {
        if !self.pending.is_empty() {
            let line = mem::take(&mut self.pending);
            self.read_line(&line);
        }
        self.flush();
        Ok(())
    }

    fn next_batch(&mut self) -> Option<RecordBatch> {
        self.ready.pop_front()
    }

    fn take_rejects(&mut self) -> Vec<Reject> {
        mem::take(&mut self.rejects)
    }

    fn stats(&self) -> &ParseStats {
        &self.stats
    }
}
