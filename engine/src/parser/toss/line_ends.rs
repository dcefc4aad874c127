//! Which byte ends a line in this file: `\n` (with or without a `\r` before it), or a lone `\r`.
//!
//! Toss writes `\r\n` or `\n`, but a file that passed through an old Mac tool or a careless
//! conversion may end its lines with `\r` alone. Read as `\n` lines, such a file is one huge
//! line: rejected, and every record in it lost. So the first line end of a file decides, the way
//! its first non-blank line decides the delimiter: if it is a `\r` not followed by `\n`, every
//! `\r` of the file ends a line. Deciding once for the whole file (rather than treating any lone
//! `\r` as a line end) keeps a stray `\r` inside a field of a `\n` file what it is: a control
//! character, which rejects its line with that reason instead of silently splitting a record in
//! two.

use std::borrow::Cow;
use std::mem;

use memchr::memchr2;

use super::MAX_LINE_BYTES;

/// The line-end convention of one file, decided by its first line end.
#[derive(Debug)]
pub(crate) enum LineEnds {
    /// No line end seen yet: the bytes so far wait here (at most a line's worth, plus a chunk).
    Undecided(Vec<u8>),
    /// Lines end at `\n`; the decoder drops a `\r` before it.
    Newline,
    /// Lines end at `\r` alone; each is handed on as `\n`.
    CarriageReturn,
}

impl Default for LineEnds {
    fn default() -> Self {
        LineEnds::Undecided(Vec::new())
    }
}

impl LineEnds {
    /// The bytes of `chunk` with `\n` line ends, for the decoder to cut into lines: nothing while
    /// the convention is undecided (the bytes wait), then the waiting bytes and `chunk`.
    /// `at_end`: there is no more input, so what is undecided is decided now.
    pub(crate) fn convert<'a>(&mut self, chunk: &'a [u8], at_end: bool) -> Cow<'a, [u8]> {
        match self {
            LineEnds::Newline => Cow::Borrowed(chunk),
            LineEnds::CarriageReturn => carriage_returns_as_newlines(Cow::Borrowed(chunk)),
            LineEnds::Undecided(waiting) => {
                waiting.extend_from_slice(chunk);
                let Some(decided) = decide(waiting, at_end) else {
                    return Cow::Borrowed(&[]);
                };
                let waiting = Cow::Owned(mem::take(waiting));
                *self = decided;
                match self {
                    LineEnds::CarriageReturn => carriage_returns_as_newlines(waiting),
                    _ => waiting,
                }
            }
        }
    }
}

/// The convention `bytes` (the start of a file) shows, if it shows one yet.
fn decide(bytes: &[u8], at_end: bool) -> Option<LineEnds> {
    let Some(at) = memchr2(b'\n', b'\r', bytes) else {
        // No line end within a line's length: whatever follows, this first line is too long to
        // read, and `\n` is as good a convention as any for the rest.
        return (at_end || bytes.len() > MAX_LINE_BYTES).then_some(LineEnds::Newline);
    };
    match (bytes[at], bytes.get(at + 1)) {
        (b'\n', _) | (b'\r', Some(b'\n')) => Some(LineEnds::Newline),
        (_, Some(_)) => Some(LineEnds::CarriageReturn),
        // A `\r` at the very end of what arrived: the next byte decides.
        (_, None) => at_end.then_some(LineEnds::CarriageReturn),
    }
}

fn carriage_returns_as_newlines(bytes: Cow<'_, [u8]>) -> Cow<'_, [u8]> {
    if memchr::memchr(b'\r', &bytes).is_none() {
        return bytes;
    }
    let mut bytes = bytes.into_owned();
    for byte in &mut bytes {
        if *byte == b'\r' {
            *byte = b'\n';
        }
    }
    Cow::Owned(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` one by one and returns what the decoder would cut into lines.
    fn convert_all(chunks: &[&[u8]]) -> Vec<u8> {
        let mut line_ends = LineEnds::default();
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend_from_slice(&line_ends.convert(chunk, false));
        }
        out.extend_from_slice(&line_ends.convert(&[], true));
        out
    }

    #[test]
    fn newline_files_pass_through_untouched() {
        assert_eq!(convert_all(&[b"a;b\r\nc;d\r\n"]), b"a;b\r\nc;d\r\n");
        assert_eq!(convert_all(&[b"a;b\nc\rd\n"]), b"a;b\nc\rd\n");
    }

    #[test]
    fn a_lone_carriage_return_first_makes_every_carriage_return_a_line_end() {
        assert_eq!(convert_all(&[b"a;b\rc;d\r"]), b"a;b\nc;d\n");
        assert_eq!(convert_all(&[b"a;b\rc;d"]), b"a;b\nc;d");
    }

    #[test]
    fn the_decision_waits_for_the_byte_after_a_carriage_return_across_chunks() {
        assert_eq!(convert_all(&[b"a;b\r", b"\nc;d\r\n"]), b"a;b\r\nc;d\r\n");
        assert_eq!(convert_all(&[b"a;", b"b\r", b"c;d\r"]), b"a;b\nc;d\n");
        assert_eq!(convert_all(&[b"a;b\r"]), b"a;b\n");
    }

    #[test]
    fn input_without_any_line_end_is_handed_on_once_longer_than_a_line() {
        let mut line_ends = LineEnds::default();
        let long = vec![b'x'; MAX_LINE_BYTES + 1];
        assert!(line_ends.convert(&long[..10], false).is_empty());
        assert_eq!(line_ends.convert(&long[10..], false).len(), long.len());
        assert!(matches!(line_ends, LineEnds::Newline));
    }
}
