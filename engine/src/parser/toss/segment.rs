//! A segment: a run of whole lines, cut from a file in order and parsed on its own.
//!
//! Once a file's delimiter and encoding are settled, a line becomes a row (or a reject) without
//! looking at any other line: splitting, decoding, checking and appending to the Arrow builders
//! need only the line. That was three fifths of a load's time on one thread, so segments are
//! parsed on worker threads at once (see `workers.rs`). Only the duplicate check needs every
//! earlier key, and runs in line order afterwards (see `decoder.rs`); so a parsed segment keeps
//! each row's key and row hashes for it, computed here in parallel, and where each row's line is,
//! for the reject should the check turn it down.
//!
//! A segment carries everything its lines need from the rest of the file: its first line's
//! number, the delimiter, the encoding, the line from which that encoding applies, and why that
//! encoding (for the reason of a line that is invalid in it).

use arrow::record_batch::RecordBatch;
use memchr::{memchr, memchr_iter};

use super::columns::{Columns, FileColumns};
use super::dedup::record_hashes;
use super::fields::{FIELD_COUNT, FIELD_NAMES, parse_record, split_fields};
use super::text::{FieldDecoder, InvalidText, TextEncoding, decode_lossy};
use super::{MAX_LINE_BYTES, ParseStats, Reject};

/// The UTF-8 byte-order mark.
pub(crate) const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Why the file is read in the encoding it is read in; part of the reason for lines that are
/// invalid in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EncodingOrigin {
    Told,
    ByteOrderMark,
    FirstNonAscii { line: u64 },
}

/// The delimiter and encoding a segment is read with, as settled by the lines before it and its
/// own (see [`Settled::settle`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settled {
    pub delimiter: Option<u8>,
    pub encoding: Option<TextEncoding>,
    /// The line from which `encoding` applies: lines before it are ASCII, read before the
    /// encoding was known.
    pub encoding_from: u64,
    pub encoding_origin: EncodingOrigin,
}

impl Settled {
    /// The settings before any line: what the options told.
    pub(crate) fn told(delimiter: Option<u8>, encoding: Option<TextEncoding>) -> Self {
        Settled {
            delimiter,
            encoding,
            encoding_from: 0,
            encoding_origin: EncodingOrigin::Told,
        }
    }

    /// Whether no later line can change these settings.
    fn is_final(&self) -> bool {
        self.delimiter.is_some() && self.encoding.is_some()
    }

    /// The encoding line `line` is read in: `None` before the encoding was settled.
    pub(crate) fn encoding_at(&self, line: u64) -> Option<TextEncoding> {
        if line >= self.encoding_from {
            self.encoding
        } else {
            None
        }
    }

    /// Lets the lines of `segment` settle what is still open, by the rules of
    /// [`super::TossDecoder`]: a byte-order mark on line 1 or the first line holding a non-ASCII
    /// byte decide the encoding, the first non-blank line the delimiter. Lines too long to read
    /// decide nothing.
    pub(crate) fn settle(&mut self, segment: &Segment) {
        if self.is_final() || (self.delimiter.is_some() && segment.bytes.is_ascii()) {
            return;
        }
        for (line_no, raw, _) in segment.lines() {
            let (line, too_long) = readable(raw, line_no);
            if line_no == 1 && raw.starts_with(BOM) && self.encoding.is_none() {
                self.set_encoding(TextEncoding::Utf8, 1, EncodingOrigin::ByteOrderMark);
            }
            if too_long {
                continue;
            }
            let line = strip_cr(line);
            if is_blank(line) {
                continue;
            }
            if self.encoding.is_none() && !line.is_ascii() {
                let origin = EncodingOrigin::FirstNonAscii { line: line_no };
                self.set_encoding(TextEncoding::detect(line), line_no, origin);
            }
            if self.delimiter.is_none() {
                self.delimiter = Some(detect_delimiter(line));
            }
            if self.is_final() {
                return;
            }
        }
    }

    fn set_encoding(&mut self, encoding: TextEncoding, from: u64, origin: EncodingOrigin) {
        self.encoding = Some(encoding);
        self.encoding_from = from;
        self.encoding_origin = origin;
    }
}

/// Whole lines of a file, in order.
#[derive(Debug)]
pub(crate) struct Segment {
    /// The lines, each ending in `\n` except the last when `unterminated`. A line longer than
    /// [`MAX_LINE_BYTES`] may have been cut to one byte more than that (enough to reject it).
    pub bytes: Vec<u8>,
    /// The number of the first line (1-based).
    pub first_line: u64,
    /// How many lines `bytes` holds.
    pub lines: usize,
    /// The last line is the end of the input without a line end.
    pub unterminated: bool,
    pub settled: Settled,
}

impl Segment {
    /// Each line with its number, its bytes without the line end, and its offset in `bytes`.
    fn lines(&self) -> impl Iterator<Item = (u64, &[u8], usize)> {
        let bytes = &self.bytes;
        let mut start = 0;
        let ends = memchr_iter(b'\n', bytes).chain(self.unterminated.then_some(bytes.len()));
        ends.zip(self.first_line..).map(move |(end, line_no)| {
            let line = (line_no, &bytes[start..end], start);
            start = end + 1;
            line
        })
    }
}

/// A row as the ordered duplicate check needs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowKey {
    pub key: u128,
    pub row_hash: u64,
    pub line: u64,
    /// The line's text in the segment's bytes (after a byte-order mark, before `\r\n`).
    pub start: usize,
    pub end: usize,
}

/// What a segment's lines became, before the duplicate check.
#[derive(Debug)]
pub(crate) struct ParsedSegment {
    /// The rows, in line order; `None` when there are none.
    pub batch: Option<RecordBatch>,
    /// One per row of `batch`.
    pub rows: Vec<RowKey>,
    /// The lines rejected, in line order.
    pub rejects: Vec<Reject>,
    /// Lines, rows, rejected and blank lines (duplicates are the ordered check's to count).
    pub stats: ParseStats,
    /// The segment itself, for the text of a row the duplicate check rejects.
    pub segment: Segment,
}

/// Parses every line of `segment` into rows of `file`'s schema and rejects.
pub(crate) fn parse(segment: Segment, file: &FileColumns) -> ParsedSegment {
    let mut parser = LineParser {
        file,
        settled: segment.settled,
        columns: Columns::with_capacity(segment.lines),
        rows: Vec::with_capacity(segment.lines),
        rejects: Vec::new(),
        stats: ParseStats::default(),
        fields: FieldDecoder::default(),
        hash_input: Vec::with_capacity(256),
    };
    let last = segment.first_line + segment.lines as u64 - 1;
    // Validated once for the whole segment, which is much cheaper than line by line; a segment
    // that is not all UTF-8 (EUC-KR, or a damaged line) is validated line by line.
    let text = std::str::from_utf8(&segment.bytes).ok();
    for (line_no, raw, offset) in segment.lines() {
        let unterminated = segment.unterminated && line_no == last;
        parser.read_physical_line(raw, text, line_no, offset, unterminated);
    }
    let LineParser {
        mut columns,
        rows,
        rejects,
        stats,
        ..
    } = parser;
    let batch = (columns.len() > 0).then(|| columns.finish(file));
    ParsedSegment {
        batch,
        rows,
        rejects,
        stats,
        segment,
    }
}

/// The state of parsing one segment.
struct LineParser<'a> {
    file: &'a FileColumns,
    settled: Settled,
    columns: Columns,
    rows: Vec<RowKey>,
    rejects: Vec<Reject>,
    stats: ParseStats,
    fields: FieldDecoder,
    hash_input: Vec<u8>,
}

impl LineParser<'_> {
    /// One line as it was between line ends (possibly cut to `MAX_LINE_BYTES + 1` bytes),
    /// starting at `offset` in the segment. `segment_text`: the whole segment, when it is valid
    /// UTF-8. `unterminated`: the last line of the input, with no line end.
    fn read_physical_line(
        &mut self,
        raw: &[u8],
        segment_text: Option<&str>,
        line_no: u64,
        offset: usize,
        unterminated: bool,
    ) {
        self.stats.lines += 1;
        let (line, too_long) = readable(raw, line_no);
        if too_long {
            let reason = format!(
                "line is longer than {MAX_LINE_BYTES} bytes (a Toss record is a few hundred): \
                 this does not look like a Toss file, or its line ends are missing; the text \
                 shown is the line's first {MAX_LINE_BYTES} bytes"
            );
            return self.reject(line_no, line, reason);
        }
        let start = offset + (raw.len() - line.len());
        let line = strip_cr(line);
        if is_blank(line) {
            self.stats.blank += 1;
            return;
        }
        let text = segment_text.and_then(|text| text.get(start..start + line.len()));
        match self.read_record(line, text, line_no, unterminated) {
            Ok((key, row_hash)) => {
                self.stats.rows += 1;
                self.rows.push(RowKey {
                    key,
                    row_hash,
                    line: line_no,
                    start,
                    end: start + line.len(),
                });
            }
            Err(reason) => self.reject(line_no, line, reason),
        }
    }

    /// Parses a non-blank line into the batch and returns its hashes, or says why it can't be a
    /// row.
    fn read_record(
        &mut self,
        line: &[u8],
        text: Option<&str>,
        line_no: u64,
        unterminated: bool,
    ) -> Result<(u128, u64), String> {
        // A line that is not blank comes after the delimiter was settled.
        let delimiter = self.settled.delimiter.unwrap_or(b';');
        if let Some(at) = first_control_byte(line) {
            return Err(control_reason(line, at, delimiter));
        }
        let encoding = self.settled.encoding_at(line_no);
        let ranges = split_fields(line, delimiter)
            .map_err(|found| field_count_reason(line, delimiter, found, unterminated))?;
        let origin = self.settled.encoding_origin;
        let texts = self
            .fields
            .decode(line, text, &ranges, delimiter, encoding)
            .map_err(|invalid| invalid_text_reason(invalid, origin))?;
        let record = parse_record(&texts, self.file.record_kind)?;
        self.columns.push(&record, line_no);
        Ok(record_hashes(&mut self.hash_input, &record))
    }

    fn reject(&mut self, line_no: u64, bytes: &[u8], reason: String) {
        self.stats.rejected += 1;
        self.rejects.push(Reject {
            line: line_no,
            raw: decode_lossy(bytes, self.settled.encoding_at(line_no)),
            reason,
        });
    }
}

/// The line as read: at most [`MAX_LINE_BYTES`] of it, without a byte-order mark on line 1;
/// and whether it was longer than that (then it is rejected, whatever it holds).
fn readable(raw: &[u8], line_no: u64) -> (&[u8], bool) {
    let too_long = raw.len() > MAX_LINE_BYTES;
    let line = &raw[..raw.len().min(MAX_LINE_BYTES)];
    if line_no == 1 {
        return (line.strip_prefix(BOM).unwrap_or(line), too_long);
    }
    (line, too_long)
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
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

/// Where `line` holds a control character (a byte below 0x20 other than tab): no Toss field
/// holds one, and some (NUL) no database text column accepts, so a line with one is rejected
/// here rather than loaded into one sink and refused by another on every rerun. The bytes of
/// both encodings read (UTF-8, EUC-KR) are below 0x20 only when they are those characters.
fn first_control_byte(line: &[u8]) -> Option<usize> {
    // The branch-free pass vectorises; the search runs only on the rare line that has one.
    let any = line.iter().fold(false, |found, &byte| {
        found | ((byte < 0x20) & (byte != b'\t'))
    });
    any.then(|| line.iter().position(|&byte| byte < 0x20 && byte != b'\t'))
        .flatten()
}

fn control_reason(line: &[u8], at: usize, delimiter: u8) -> String {
    let byte = line[at];
    let name = match byte {
        0x00 => " (NUL)",
        0x07 => " (BEL)",
        0x08 => " (backspace)",
        0x0A => " (line feed)",
        0x0D => " (carriage return)",
        0x1B => " (ESC)",
        _ => "",
    };
    let field = memchr_iter(delimiter, &line[..at]).count();
    let field_name = FIELD_NAMES
        .get(field)
        .copied()
        .unwrap_or("beyond the last field");
    format!(
        "control character U+{byte:04X}{name} in field {} ({field_name}) at byte {}: no Toss \
         field holds one, so the file is damaged or not a Toss file",
        field + 1,
        at + 1
    )
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
