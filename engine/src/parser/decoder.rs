//! The push decoder: bytes in, batches and rejects out.

use std::collections::VecDeque;
use std::mem;

use arrow::datatypes::Date32Type;
use arrow::record_batch::RecordBatch;
use memchr::{memchr, memchr_iter};

use super::columns::{Columns, FileColumns};
use super::dedup::{KeySet, Seen};
use super::fields::{FIELD_COUNT, FIELD_NAMES, parse_record, split_fields};
use super::text::{FieldDecoder, InvalidText, TextEncoding, decode_lossy};
use super::{
    Delimiter, Encoding, FileContext, ParseStats, ParserOptions, RecordKind, Reject, toss_schema,
};

/// The longest line the decoder reads. A Toss record is a few hundred bytes at most; a longer
/// line means the input is not a Toss file (or has lost its line ends), and is rejected with its
/// first `MAX_LINE_BYTES` bytes as its text, so that such input can't exhaust memory.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// The UTF-8 byte-order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Rows the first batch's builders are sized for: a day's REV file may have a handful of rows,
/// and there is no point reserving for 65 536 of them until a file proves to be large.
const INITIAL_ROWS: usize = 1024;

/// Why the decoder reads the file in the encoding it uses; part of the reason for lines that
/// are invalid in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EncodingOrigin {
    Told,
    ByteOrderMark,
    FirstNonAscii { line: u64 },
}

/// Streams a Toss file into Arrow record batches of [`toss_schema`] and [`Reject`]s.
///
/// Feed bytes with [`decode`](Self::decode) in any chunking, call [`finish`](Self::finish) at
/// the end of the input, and drain [`next_batch`](Self::next_batch) and
/// [`take_rejects`](Self::take_rejects) as you go: the output does not depend on how the input
/// was cut. Batches and rejects wait inside the decoder until taken, so a caller that keeps
/// memory bounded feeds modest chunks and drains after each.
///
/// # Lines
/// Lines end at `\n`; a `\r` before it is dropped. A last line without a line end is a line
/// too. Blank and whitespace-only lines are skipped (counted in [`ParseStats::blank`]). A UTF-8
/// byte-order mark at the very start is dropped, and with [`Encoding::Auto`] makes the file
/// UTF-8. Line numbers are physical: 1-based, blank lines included.
///
/// # Detection
/// With [`Encoding::Auto`] the first line holding a non-ASCII byte decides: valid UTF-8 makes
/// the file UTF-8, anything else EUC-KR (CP949). With [`Delimiter::Auto`] the first non-blank
/// line decides: `;` if it splits that line into exactly 12 fields, else `,` if that does, else
/// whichever of the two occurs more often in it (`;` on a tie).
///
/// # Empty input
/// A file with no rows (empty, or only blank or rejected lines) yields no batch at all:
/// [`next_batch`](Self::next_batch) returns `None` straight away.
#[derive(Debug)]
pub struct TossDecoder {
    kind: RecordKind,
    batch_rows: usize,
    file: FileColumns,
    delimiter: Option<u8>,
    encoding: Option<TextEncoding>,
    encoding_origin: EncodingOrigin,
    /// The start of a line whose end has not arrived yet (at most `MAX_LINE_BYTES + 1` bytes).
    pending: Vec<u8>,
    line: u64,
    finished: bool,
    columns: Columns,
    ready: VecDeque<RecordBatch>,
    rejects: Vec<Reject>,
    stats: ParseStats,
    keys: KeySet,
    fields: FieldDecoder,
}

impl TossDecoder {
    /// A decoder for one file of kind `ctx.record_kind` and business date `ctx.trxdate`.
    pub fn new(options: ParserOptions, ctx: FileContext) -> Self {
        let batch_rows = options.batch_rows.max(1);
        let encoding = TextEncoding::told(options.encoding);
        TossDecoder {
            kind: ctx.record_kind,
            batch_rows,
            file: FileColumns {
                schema: toss_schema(),
                record_kind: ctx.record_kind,
                trxdate: Date32Type::from_naive_date(ctx.trxdate),
                source_file: ctx.source_file,
            },
            delimiter: options.delimiter.byte(),
            encoding,
            encoding_origin: EncodingOrigin::Told,
            pending: Vec::new(),
            line: 0,
            finished: false,
            columns: Columns::with_capacity(batch_rows.min(INITIAL_ROWS)),
            ready: VecDeque::new(),
            rejects: Vec::new(),
            stats: ParseStats::default(),
            keys: KeySet::default(),
            fields: FieldDecoder::default(),
        }
    }

    /// The same decoder with room for only `keys` keys in memory, so that tests reach the
    /// duplicate check's temporary file with a few lines.
    #[cfg(test)]
    pub(crate) fn with_recent_keys(mut self, keys: usize) -> Self {
        self.keys = KeySet::with_capacity(keys);
        self
    }

    /// Reads all of `chunk`. Complete lines are parsed now; an incomplete last line waits for
    /// the next chunk or [`finish`](Self::finish).
    ///
    /// # Panics
    /// If called after [`finish`](Self::finish): the bytes would belong to no line.
    pub fn decode(&mut self, chunk: &[u8]) {
        assert!(!self.finished, "TossDecoder::decode called after finish");
        let mut rest = chunk;
        if !self.pending.is_empty() {
            let Some(end) = memchr(b'\n', rest) else {
                self.buffer(rest);
                return;
            };
            self.buffer(&rest[..end]);
            let mut line = mem::take(&mut self.pending);
            self.read_physical_line(&line, false);
            line.clear();
            self.pending = line;
            rest = &rest[end + 1..];
        }
        let mut start = 0;
        for end in memchr_iter(b'\n', rest) {
            self.read_physical_line(&rest[start..end], false);
            start = end + 1;
        }
        self.buffer(&rest[start..]);
    }

    /// Marks the end of the input: the last line, if it had no line end, is parsed, and the
    /// rows not yet in a full batch become the last batch. Calling it again does nothing.
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        let last = mem::take(&mut self.pending);
        if !last.is_empty() {
            self.read_physical_line(&last, true);
        }
        if self.columns.len() > 0 {
            let batch = self.columns.finish(&self.file);
            self.ready.push_back(batch);
        }
    }

    /// The next batch: one of `batch_rows` rows as soon as that many are parsed; after
    /// [`finish`](Self::finish), also the shorter remainder. `None` when nothing is ready.
    pub fn next_batch(&mut self) -> Option<RecordBatch> {
        self.ready.pop_front()
    }

    /// The lines rejected since the last call, in line order.
    pub fn take_rejects(&mut self) -> Vec<Reject> {
        mem::take(&mut self.rejects)
    }

    /// What the decoder has seen so far.
    pub fn stats(&self) -> &ParseStats {
        &self.stats
    }

    /// The encoding in use: the one told, or the detected one once a line decided it (`None`
    /// while the file has been all ASCII under [`Encoding::Auto`]).
    pub fn detected_encoding(&self) -> Option<Encoding> {
        self.encoding.map(Encoding::from)
    }

    /// The delimiter in use: the one told, or the detected one after the first non-blank line.
    pub fn detected_delimiter(&self) -> Option<Delimiter> {
        self.delimiter.map(|d| {
            if d == b',' {
                Delimiter::Comma
            } else {
                Delimiter::Semicolon
            }
        })
    }

    /// An I/O error of the duplicate-key check's temporary file (see the `dedup` module), taken
    /// once. After one, a duplicate may have gone unnoticed: the file must not be loaded.
    pub fn take_io_error(&mut self) -> Option<std::io::Error> {
        self.keys.take_failure()
    }

    /// Whether [`finish`](Self::finish) has been called.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Keeps the start of a line that has not ended yet, up to one byte past the limit (enough
    /// to know that it is too long).
    fn buffer(&mut self, bytes: &[u8]) {
        let room = (MAX_LINE_BYTES + 1).saturating_sub(self.pending.len());
        self.pending
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// One line as it was between line ends (possibly truncated to `MAX_LINE_BYTES + 1` bytes
    /// if it came in pieces). `unterminated`: the last line of the input, with no line end.
    fn read_physical_line(&mut self, raw: &[u8], unterminated: bool) {
        self.line += 1;
        self.stats.lines += 1;
        let line_no = self.line;
        let too_long = raw.len() > MAX_LINE_BYTES;
        let mut line = &raw[..raw.len().min(MAX_LINE_BYTES)];
        if line_no == 1
            && let Some(rest) = line.strip_prefix(BOM)
        {
            line = rest;
            if self.encoding.is_none() {
                self.encoding = Some(TextEncoding::Utf8);
                self.encoding_origin = EncodingOrigin::ByteOrderMark;
            }
        }
        if too_long {
            let reason = format!(
                "line is longer than {MAX_LINE_BYTES} bytes (a Toss record is a few hundred): \
                 this does not look like a Toss file, or its line ends are missing"
            );
            self.reject(line_no, line, reason);
            return;
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            self.stats.blank += 1;
            return;
        }
        self.settle_encoding(line, line_no);
        let delimiter = *self.delimiter.get_or_insert_with(|| detect_delimiter(line));
        if let Err(reason) = self.read_record(line, line_no, delimiter, unterminated) {
            self.reject(line_no, line, reason);
        }
    }

    /// Under [`Encoding::Auto`], lets the first line with a non-ASCII byte decide.
    fn settle_encoding(&mut self, line: &[u8], line_no: u64) {
        if self.encoding.is_none() && !line.is_ascii() {
            self.encoding = Some(TextEncoding::detect(line));
            self.encoding_origin = EncodingOrigin::FirstNonAscii { line: line_no };
        }
    }

    /// Parses a non-blank line into the current batch, or says why it can't be a row.
    fn read_record(
        &mut self,
        line: &[u8],
        line_no: u64,
        delimiter: u8,
        unterminated: bool,
    ) -> Result<(), String> {
        let ranges = split_fields(line, delimiter)
            .map_err(|found| field_count_reason(line, delimiter, found, unterminated))?;
        let key_hash = self.keys.prefetch(line, &ranges);
        let origin = self.encoding_origin;
        let texts = self
            .fields
            .decode(line, &ranges, delimiter, self.encoding)
            .map_err(|invalid| invalid_text_reason(invalid, origin))?;
        let record = parse_record(&texts, self.kind)?;
        // The hash from the raw bytes is the key's when its text is those very bytes.
        let key_text = [record.mid, record.paytype, record.transaction, record.oid];
        let key_from_line = key_text
            .iter()
            .zip(&ranges)
            .all(|(text, &(start, end))| std::ptr::eq(text.as_bytes(), &line[start..end]));
        match self
            .keys
            .check(&record, line_no, key_from_line.then_some(key_hash))
        {
            Seen::New => {
                self.columns.push(&record, line_no);
                self.stats.rows += 1;
                if self.columns.len() >= self.batch_rows {
                    let mut full =
                        mem::replace(&mut self.columns, Columns::with_capacity(self.batch_rows));
                    self.ready.push_back(full.finish(&self.file));
                }
                Ok(())
            }
            Seen::ExactDuplicate => {
                self.stats.duplicates += 1;
                Ok(())
            }
            Seen::Conflict { first_line } => Err(format!(
                "duplicate record key (first seen on line {first_line}); this engine keeps the first"
            )),
        }
    }

    fn reject(&mut self, line: u64, bytes: &[u8], reason: String) {
        self.stats.rejected += 1;
        self.rejects.push(Reject {
            line,
            raw: decode_lossy(bytes, self.encoding),
            reason,
        });
    }
}

/// The delimiter of a file, from its first non-blank line.
fn detect_delimiter(line: &[u8]) -> u8 {
    let semicolons = memchr_iter(b';', line).count();
    let commas = memchr_iter(b',', line).count();
    let twelve_fields = FIELD_COUNT - 1;
    if semicolons == twelve_fields {
        b';'
    } else if commas == twelve_fields || commas > semicolons {
        b','
    } else {
        b';'
    }
}

fn field_count_reason(line: &[u8], delimiter: u8, found: usize, unterminated: bool) -> String {
    let mut reason = format!(
        "expected {FIELD_COUNT} fields separated by '{}', found {found}",
        char::from(delimiter)
    );
    let other = if delimiter == b';' { b',' } else { b';' };
    if unterminated && found < FIELD_COUNT {
        reason.push_str(
            "; this last line has no line end, so the file was probably cut off while it was \
             being written: it loads in full from the next, longer version of the file",
        );
    } else if found == 1 && memchr(other, line).is_some() {
        reason.push_str(&format!(
            "; the line is separated by '{}': set delimiter = \"{}\" in [parser]",
            char::from(other),
            char::from(other)
        ));
    }
    reason
}

fn invalid_text_reason(invalid: InvalidText, origin: EncodingOrigin) -> String {
    let name = invalid.encoding.name();
    let why = match origin {
        EncodingOrigin::Told => format!("the file is read as {name} because [parser] says so"),
        EncodingOrigin::ByteOrderMark => "the file starts with a UTF-8 byte-order mark".to_owned(),
        EncodingOrigin::FirstNonAscii { line } => format!(
            "the file was detected as {name} from line {line}, its first line with non-ASCII text"
        ),
    };
    let other = match invalid.encoding {
        TextEncoding::Utf8 => "euc-kr",
        TextEncoding::EucKr => "utf-8",
    };
    format!(
        "invalid {name} bytes in field {} ({}); {why}: if the file is in another encoding, \
         set encoding = \"{other}\" in [parser]",
        invalid.field + 1,
        FIELD_NAMES[invalid.field],
    )
}
