//! The Arrow builders of one batch.
//!
//! Values go from the parsed line straight into the builders. The three columns that are the
//! same for every row of a file (record_kind, trxdate, source_file) are not built per row: they
//! are built once per file, as long as a whole batch, and every batch holds a slice of them
//! (they were a sixth of a batch's memory, built anew for each).

use std::iter::repeat_n;
use std::sync::{Arc, OnceLock};

use arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Date32Array, Int64Builder, StringArray, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::fields::Record;
use super::{KOREA_TIME_ZONE, RecordKind};

/// What every row of the file shares.
#[derive(Debug)]
pub(crate) struct FileColumns {
    pub schema: SchemaRef,
    pub record_kind: RecordKind,
    /// Days since 1970-01-01.
    pub trxdate: i32,
    pub source_file: String,
    /// The most rows a batch of this file holds.
    pub batch_rows: usize,
    /// record_kind, trxdate and source_file for `batch_rows` rows, once a full batch needed them.
    shared: OnceLock<[ArrayRef; 3]>,
}

impl FileColumns {
    pub(crate) fn new(
        schema: SchemaRef,
        record_kind: RecordKind,
        trxdate: i32,
        source_file: String,
        batch_rows: usize,
    ) -> Self {
        FileColumns {
            schema,
            record_kind,
            trxdate,
            source_file,
            batch_rows,
            shared: OnceLock::new(),
        }
    }

    /// record_kind, trxdate and source_file for `rows` rows: slices of the shared columns, or,
    /// for a batch shorter than a full one while those do not exist yet (a small file's only
    /// batch, say), columns of its own.
    fn constant_columns(&self, rows: usize) -> [ArrayRef; 3] {
        let shared = if rows < self.batch_rows {
            self.shared.get()
        } else {
            Some(
                self.shared
                    .get_or_init(|| self.build_constant_columns(self.batch_rows)),
            )
        };
        match shared {
            Some(shared) if rows <= self.batch_rows => shared.clone().map(|c| c.slice(0, rows)),
            _ => self.build_constant_columns(rows),
        }
    }

    fn build_constant_columns(&self, rows: usize) -> [ArrayRef; 3] {
        [
            Arc::new(StringArray::from_iter_values(repeat_n(
                self.record_kind.as_str(),
                rows,
            ))),
            Arc::new(Date32Array::from_value(self.trxdate, rows)),
            Arc::new(StringArray::from_iter_values(repeat_n(
                self.source_file.as_str(),
                rows,
            ))),
        ]
    }
}

/// Builders for the per-row columns of [`super::toss_schema`].
#[derive(Debug)]
pub(crate) struct Columns {
    mid: StringBuilder,
    paytype: StringBuilder,
    transaction: StringBuilder,
    oid: StringBuilder,
    financecode: StringBuilder,
    financename: StringBuilder,
    buyerid: StringBuilder,
    amount: Int64Builder,
    useescrow: BooleanBuilder,
    occurred_at: TimestampMicrosecondBuilder,
    authnumber: StringBuilder,
    status: StringBuilder,
    source_line: Int64Builder,
}

/// A builder for `rows` strings of about `width` bytes.
fn text(rows: usize, width: usize) -> StringBuilder {
    StringBuilder::with_capacity(rows, rows.saturating_mul(width))
}

impl Columns {
    /// Builders with room for `rows` rows of typical Toss widths.
    pub(crate) fn with_capacity(rows: usize) -> Self {
        Columns {
            mid: text(rows, 8),
            paytype: text(rows, 6),
            transaction: text(rows, 24),
            oid: text(rows, 32),
            financecode: text(rows, 5),
            financename: text(rows, 6),
            buyerid: text(rows, 12),
            amount: Int64Builder::with_capacity(rows),
            useescrow: BooleanBuilder::with_capacity(rows),
            occurred_at: TimestampMicrosecondBuilder::with_capacity(rows)
                .with_timezone(KOREA_TIME_ZONE),
            authnumber: text(rows, 8),
            status: text(rows, 2),
            source_line: Int64Builder::with_capacity(rows),
        }
    }

    /// Rows appended since the last [`Columns::finish`].
    pub(crate) fn len(&self) -> usize {
        self.source_line.len()
    }

    /// Appends one row, read from physical line `line`.
    pub(crate) fn push(&mut self, record: &Record<'_>, line: u64) {
        self.mid.append_value(record.mid);
        self.paytype.append_value(record.paytype);
        self.transaction.append_value(record.transaction);
        self.oid.append_value(record.oid);
        append_nullable(&mut self.financecode, record.financecode);
        append_nullable(&mut self.financename, record.financename);
        append_nullable(&mut self.buyerid, record.buyerid);
        self.amount.append_value(record.amount);
        self.useescrow.append_value(record.useescrow);
        self.occurred_at.append_value(record.occurred_at);
        self.authnumber.append_value(record.authnumber);
        self.status.append_value(record.status);
        self.source_line
            .append_value(i64::try_from(line).unwrap_or(i64::MAX));
    }

    /// The rows appended so far as a batch; the builders start over empty.
    pub(crate) fn finish(&mut self, file: &FileColumns) -> RecordBatch {
        let [record_kind, trxdate, source_file] = file.constant_columns(self.len());
        let columns: Vec<ArrayRef> = vec![
            record_kind,
            trxdate,
            Arc::new(self.mid.finish()),
            Arc::new(self.paytype.finish()),
            Arc::new(self.transaction.finish()),
            Arc::new(self.oid.finish()),
            Arc::new(self.financecode.finish()),
            Arc::new(self.financename.finish()),
            Arc::new(self.buyerid.finish()),
            Arc::new(self.amount.finish()),
            Arc::new(self.useescrow.finish()),
            Arc::new(self.occurred_at.finish()),
            Arc::new(self.authnumber.finish()),
            Arc::new(self.status.finish()),
            source_file,
            Arc::new(self.source_line.finish()),
        ];
        RecordBatch::try_new(Arc::clone(&file.schema), columns)
            .expect("the builders match toss_schema column for column")
    }
}

/// Empty text is null in the optional columns.
fn append_nullable(builder: &mut StringBuilder, value: &str) {
    if value.is_empty() {
        builder.append_null();
    } else {
        builder.append_value(value);
    }
}
