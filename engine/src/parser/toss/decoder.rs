//! The push decoder: bytes in, batches and rejects out.
//!
//! Three steps, so that the costly one runs on every core:
//! 1. *cutting* (here, in input order): bytes are gathered into segments of `batch_rows`
//!    lines, and the first lines settle the delimiter and encoding;
//! 2. *parsing* (`segment.rs`, on the parse pool): each segment's lines become one batch of rows,
//!    their key hashes and its rejects;
//! 3. *the duplicate check* (here, in line order): each row's key is looked up among all earlier
//!    ones; a repeat is dropped from its batch and, if its values differ, rejected.

use std::collections::VecDeque;
use std::mem;
use std::sync::Arc;

use arrow::array::BooleanArray;
use arrow::buffer::BooleanBuffer;
use arrow::compute::filter_record_batch;
use arrow::datatypes::Date32Type;
use arrow::record_batch::RecordBatch;
use memchr::{memchr, memchr_iter, memrchr};

use super::columns::FileColumns;
use super::dedup::{KeySet, Seen};
use super::line_ends::LineEnds;
use super::segment::{self, ParsedSegment, Segment, Settled};
use super::text::{TextEncoding, decode_lossy};
use super::workers::Workers;
use super::{
    DecodeError, Delimiter, Encoding, FileContext, ParseStats, ParserOptions, Reject, toss_schema,
};

/// The longest line the decoder reads. A Toss record is a few hundred bytes at most; a longer
/// line means the input is not a Toss file (or has lost its line ends), and is rejected with its
/// first `MAX_LINE_BYTES` bytes as its text, so that such input can't exhaust memory.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Buffers of checked segments kept for the next ones: reusing them spares the page faults of
/// fresh memory, and one or two are in use at a time.
const SPARE_BUFFERS: usize = 2;

/// How many rows ahead of the duplicate check their keys' filter blocks are fetched.
const PREFETCH_ROWS: usize = 8;

/// Streams a Toss file into Arrow record batches of [`toss_schema`] and [`Reject`]s.
///
/// Feed bytes with [`decode`](Self::decode) in any chunking, call [`finish`](Self::finish) at
/// the end of the input, and drain [`next_batch`](Self::next_batch) and
/// [`take_rejects`](Self::take_rejects) as you go: the output does not depend on how the input
/// was cut. Batches and rejects wait inside the decoder until taken, so a caller that keeps
/// memory bounded feeds modest chunks and drains after each.
///
/// # Batches
/// Every `batch_rows` lines of the file are parsed together, on the parse pool
/// ([`crate::threads::parse_pool`]) when there is one, and become one batch: `batch_rows` rows,
/// fewer when some of those lines are rejected, duplicate or blank (or end the file). A batch
/// and the rejects of its lines are ready once its last line has arrived and it is parsed;
/// [`finish`](Self::finish) waits for all of them.
///
/// # Lines
/// Lines end at `\n`, and a `\r` before it is dropped; but when the file's first line end is a
/// `\r` not followed by `\n`, every `\r` ends a line instead (see `line_ends.rs`). A last line
/// without a line end is a line too. Blank and whitespace-only lines are skipped (counted in [`ParseStats::blank`]). A UTF-8
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
    batch_rows: usize,
    file: Arc<FileColumns>,
    /// The delimiter and encoding as settled by the lines cut so far.
    settled: Settled,
    /// Whether lines end at `\n` or at a lone `\r`, once the first line end has shown it.
    line_ends: LineEnds,
    /// The segment being gathered.
    cut: Cut,
    /// The number of the first line of `cut`.
    next_line: u64,
    /// Buffers of segments already checked, for the next ones.
    spare: Vec<Vec<u8>>,
    workers: Workers,
    finished: bool,
    ready: VecDeque<RecordBatch>,
    rejects: Vec<Reject>,
    stats: ParseStats,
    keys: KeySet,
}

/// The lines gathered for the next segment.
#[derive(Debug, Default)]
struct Cut {
    bytes: Vec<u8>,
    /// Complete lines in `bytes`.
    lines: usize,
    /// Where the line that has not ended yet starts in `bytes`.
    open_line: usize,
}

impl Cut {
    /// Appends `bytes`, keeping at most `MAX_LINE_BYTES + 1` bytes of any line that is not
    /// complete within them (enough to know that it is too long), so that input without line
    /// ends can't exhaust memory.
    fn append(&mut self, bytes: &[u8]) {
        let first_end = memchr(b'\n', bytes);
        let head = &bytes[..first_end.unwrap_or(bytes.len())];
        self.append_open(head);
        let Some(first_end) = first_end else {
            return;
        };
        self.bytes.push(b'\n');
        let rest = &bytes[first_end + 1..];
        let whole = memrchr(b'\n', rest).map_or(0, |end| end + 1);
        self.bytes.extend_from_slice(&rest[..whole]);
        self.open_line = self.bytes.len();
        self.append_open(&rest[whole..]);
    }

    /// Appends bytes of the line that has not ended yet, up to the limit.
    fn append_open(&mut self, bytes: &[u8]) {
        let held = self.bytes.len() - self.open_line;
        let room = (MAX_LINE_BYTES + 1).saturating_sub(held);
        self.bytes
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

impl TossDecoder {
    /// A decoder for one file of kind `ctx.record_kind` and business date `ctx.trxdate`,
    /// parsing on the parse pool.
    pub fn new(options: ParserOptions, ctx: FileContext) -> Self {
        let batch_rows = options.batch_rows.max(1);
        TossDecoder {
            batch_rows,
            file: Arc::new(FileColumns::new(
                toss_schema(),
                ctx.record_kind,
                Date32Type::from_naive_date(ctx.trxdate),
                ctx.source_file,
                batch_rows,
            )),
            settled: Settled::told(
                options.delimiter.byte(),
                TextEncoding::told(options.encoding),
            ),
            line_ends: LineEnds::default(),
            cut: Cut::default(),
            next_line: 1,
            spare: Vec::new(),
            workers: Workers::new(crate::threads::parse_pool()),
            finished: false,
            ready: VecDeque::new(),
            rejects: Vec::new(),
            stats: ParseStats::default(),
            keys: KeySet::default(),
        }
    }

    /// The same decoder parsing on the caller's thread, so that batches are ready as soon as
    /// their lines are in (as on one core).
    #[cfg(test)]
    pub(crate) fn in_series(mut self) -> Self {
        self.workers = Workers::new(None);
        self
    }

    /// The same decoder with room for only `keys` keys in memory, so that tests reach the
    /// duplicate check's temporary file with a few lines.
    #[cfg(test)]
    pub(crate) fn with_recent_keys(mut self, keys: usize) -> Self {
        self.keys = KeySet::with_capacity(keys);
        self
    }

    /// Reads all of `chunk`. Every `batch_rows` complete lines go to be parsed; the lines after
    /// them wait for more input or [`finish`](Self::finish).
    ///
    /// # Panics
    /// If called after [`finish`](Self::finish): the bytes would belong to no line.
    pub fn decode(&mut self, chunk: &[u8]) {
        assert!(!self.finished, "TossDecoder::decode called after finish");
        let lines = self.line_ends.convert(chunk, false);
        self.cut_lines(&lines);
        self.check_parsed(false);
    }

    /// Gathers `bytes`, whose lines end at `\n`, into segments and submits each full one.
    fn cut_lines(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            let wanted = self.batch_rows - self.cut.lines;
            match nth_line_end(rest, wanted) {
                Ok(end) => {
                    self.cut.append(&rest[..=end]);
                    self.cut.lines += wanted;
                    rest = &rest[end + 1..];
                    self.submit_cut(false);
                }
                Err(ends) => {
                    self.cut.append(rest);
                    self.cut.lines += ends;
                    break;
                }
            }
        }
    }

    /// Marks the end of the input: the last line, if it had no line end, is a line too, and
    /// every batch is parsed and checked. Calling it again does nothing.
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        let lines = self.line_ends.convert(&[], true);
        self.cut_lines(&lines);
        if !self.cut.bytes.is_empty() {
            let unterminated = self.cut.bytes.len() > self.cut.open_line;
            self.submit_cut(unterminated);
        }
        self.check_parsed(true);
    }

    /// The next batch, once parsed and checked (see [Batches](Self#batches)). `None` when
    /// nothing is ready yet.
    pub fn next_batch(&mut self) -> Option<RecordBatch> {
        if self.ready.is_empty() {
            self.check_parsed(false);
        }
        self.ready.pop_front()
    }

    /// The lines rejected since the last call, in line order.
    pub fn take_rejects(&mut self) -> Vec<Reject> {
        self.check_parsed(false);
        mem::take(&mut self.rejects)
    }

    /// What the decoder has seen so far, up to the last batch checked.
    pub fn stats(&self) -> &ParseStats {
        &self.stats
    }

    /// The encoding in use: the one told, or the detected one once a line decided it (`None`
    /// while the file has been all ASCII under [`Encoding::Auto`]).
    pub fn detected_encoding(&self) -> Option<Encoding> {
        self.settled.encoding.map(Encoding::from)
    }

    /// The delimiter in use: the one told, or the detected one after the first non-blank line.
    pub fn detected_delimiter(&self) -> Option<Delimiter> {
        self.settled.delimiter.map(|d| {
            if d == b',' {
                Delimiter::Comma
            } else {
                Delimiter::Semicolon
            }
        })
    }

    /// Fails on an I/O error of the duplicate-key check's temporary file (see the `dedup`
    /// module): after one, a duplicate may have gone unnoticed, so the file must not be loaded.
    pub(super) fn check_keys(&mut self) -> Result<(), DecodeError> {
        match self.keys.take_failure() {
            None => Ok(()),
            Some(source) => Err(DecodeError {
                doing: "check for duplicates",
                source,
            }),
        }
    }

    /// Sends the gathered lines to be parsed, as a segment. `unterminated`: the last of them is
    /// the end of the input, without a line end.
    fn submit_cut(&mut self, unterminated: bool) {
        let buffer = self.spare.pop().unwrap_or_default();
        let cut = mem::replace(
            &mut self.cut,
            Cut {
                bytes: buffer,
                ..Cut::default()
            },
        );
        let lines = cut.lines + usize::from(unterminated);
        let mut segment = Segment {
            bytes: cut.bytes,
            first_line: self.next_line,
            lines,
            unterminated,
            settled: self.settled,
        };
        self.next_line += lines as u64;
        self.settled.settle(&segment);
        segment.settled = self.settled;
        if self.workers.is_full()
            && let Some(parsed) = self.workers.next(true)
        {
            self.check(parsed);
        }
        let file = Arc::clone(&self.file);
        self.workers.submit(move || segment::parse(segment, &file));
    }

    /// Checks the segments parsed so far, in order; with `wait`, every segment submitted.
    fn check_parsed(&mut self, wait: bool) {
        while let Some(parsed) = self.workers.next(wait) {
            self.check(parsed);
        }
    }

    /// The duplicate check of one parsed segment: rows whose key came earlier in the file are
    /// dropped from the batch, and rejected when their values differ from the first.
    fn check(&mut self, parsed: ParsedSegment) {
        let ParsedSegment {
            batch,
            rows,
            mut rejects,
            stats,
            segment,
        } = parsed;
        let mut keep: Option<Vec<bool>> = None;
        let mut conflicts = Vec::new();
        for (at, row) in rows.iter().enumerate() {
            if let Some(ahead) = rows.get(at + PREFETCH_ROWS) {
                self.keys.prefetch(ahead.key);
            }
            let seen = self.keys.check_hashed(row.key, row.row_hash, row.line);
            if seen == Seen::New {
                if let Some(keep) = &mut keep {
                    keep.push(true);
                }
                continue;
            }
            keep.get_or_insert_with(|| vec![true; at]).push(false);
            match seen {
                Seen::New => {}
                Seen::ExactDuplicate => self.stats.duplicates += 1,
                Seen::Conflict { first_line } => conflicts.push(Reject {
                    line: row.line,
                    raw: decode_lossy(
                        &segment.bytes[row.start..row.end],
                        segment.settled.encoding_at(row.line),
                    ),
                    reason: format!(
                        "duplicate record key (first seen on line {first_line}); this engine \
                         keeps the first"
                    ),
                }),
            }
        }
        let dropped = keep
            .as_ref()
            .map_or(0, |keep| keep.iter().filter(|&&k| !k).count());
        self.stats.lines += stats.lines;
        self.stats.blank += stats.blank;
        self.stats.rows += stats.rows - dropped as u64;
        self.stats.rejected += stats.rejected + conflicts.len() as u64;
        if !conflicts.is_empty() {
            rejects.extend(conflicts);
            rejects.sort_by_key(|reject| reject.line);
        }
        self.rejects.extend(rejects);
        if let Some(batch) = batch {
            let batch = match keep {
                None => batch,
                Some(keep) => {
                    let keep = BooleanArray::new(BooleanBuffer::from(keep), None);
                    filter_record_batch(&batch, &keep)
                        .expect("the mask has one value per row of the batch")
                }
            };
            if batch.num_rows() > 0 {
                self.ready.push_back(batch);
            }
        }
        if self.spare.len() < SPARE_BUFFERS {
            let mut buffer = segment.bytes;
            buffer.clear();
            self.spare.push(buffer);
        }
    }
}

/// The position of the `n`th line end in `bytes` (`n` ≥ 1), or how many there are if fewer.
fn nth_line_end(bytes: &[u8], n: usize) -> Result<usize, usize> {
    let mut seen = 0;
    for end in memchr_iter(b'\n', bytes) {
        seen += 1;
        if seen == n {
            return Ok(end);
        }
    }
    Err(seen)
}
