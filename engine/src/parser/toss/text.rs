//! Turning a line's field bytes into UTF-8 text.
//!
//! Most fields of a Toss record are ASCII (ids, codes, digits), and ASCII is the same bytes in
//! UTF-8 and EUC-KR. So an ASCII line is borrowed as it is and a UTF-8 line only validated; an
//! EUC-KR line with Korean text (typically its `financename`) goes through `encoding_rs` in one
//! call, into one buffer reused for every line, and is split again there (its delimiters are
//! ASCII, which no EUC-KR character contains). Decoding field by field instead cost a call per
//! field and line, which the profile showed as a quarter of the EUC-KR overhead. Only a line
//! that does not decode is looked at field by field, to name the field that is wrong.

use encoding_rs::{DecoderResult, EUC_KR};

use super::Encoding;
use super::fields::{FIELD_COUNT, FieldRanges, split_fields};

/// An encoding the decoder has settled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextEncoding {
    Utf8,
    EucKr,
}

impl TextEncoding {
    /// The encoding told by the options, `None` for [`Encoding::Auto`].
    pub(crate) fn told(encoding: Encoding) -> Option<Self> {
        match encoding {
            Encoding::Auto => None,
            Encoding::Utf8 => Some(TextEncoding::Utf8),
            Encoding::EucKr => Some(TextEncoding::EucKr),
        }
    }

    /// The encoding of the first line that holds a non-ASCII byte: UTF-8 when it is valid
    /// UTF-8 (EUC-KR text practically never is), EUC-KR otherwise.
    pub(crate) fn detect(line: &[u8]) -> Self {
        if std::str::from_utf8(line).is_ok() {
            TextEncoding::Utf8
        } else {
            TextEncoding::EucKr
        }
    }

    /// The name a merchant would use.
    pub(crate) fn name(self) -> &'static str {
        match self {
            TextEncoding::Utf8 => "UTF-8",
            TextEncoding::EucKr => "EUC-KR",
        }
    }
}

impl From<TextEncoding> for Encoding {
    fn from(encoding: TextEncoding) -> Self {
        match encoding {
            TextEncoding::Utf8 => Encoding::Utf8,
            TextEncoding::EucKr => Encoding::EucKr,
        }
    }
}

/// Decodes `bytes` for display in a reject, replacing what is invalid. Before the encoding is
/// known the line is ASCII (a non-ASCII line decides it), so UTF-8 is right then.
pub(crate) fn decode_lossy(bytes: &[u8], encoding: Option<TextEncoding>) -> String {
    match encoding {
        Some(TextEncoding::EucKr) => EUC_KR.decode_without_bom_handling(bytes).0.into_owned(),
        Some(TextEncoding::Utf8) | None => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// A field whose bytes are not valid in the file's encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidText {
    pub encoding: TextEncoding,
    /// 0-based field index.
    pub field: usize,
}

/// Where a field's text of an EUC-KR line lives once decoded.
#[derive(Debug, Clone, Copy)]
enum Span {
    /// In the line itself (ASCII).
    Line(usize, usize),
    /// In the decoder's buffer (decoded from EUC-KR).
    Decoded(usize, usize),
}

/// Decodes fields, reusing one buffer so that no line allocates once it has warmed up.
#[derive(Debug, Default)]
pub(crate) struct FieldDecoder {
    decoded: String,
}

impl FieldDecoder {
    /// The text of each field of `line`. `encoding` is `None` only while the file has been all
    /// ASCII, in which case so is `line`. `valid_utf8` is `line` itself when it is already
    /// known to be UTF-8, so it is not validated again.
    pub(crate) fn decode<'a>(
        &'a mut self,
        line: &'a [u8],
        valid_utf8: Option<&'a str>,
        ranges: &FieldRanges,
        delimiter: u8,
        encoding: Option<TextEncoding>,
    ) -> Result<[&'a str; FIELD_COUNT], InvalidText> {
        if encoding == Some(TextEncoding::EucKr) && !line.is_ascii() {
            self.decoded.clear();
            let whole = decode_euc_kr(line, &mut self.decoded)
                .and_then(|()| split_fields(self.decoded.as_bytes(), delimiter).ok());
            return match whole {
                Some(decoded_ranges) => {
                    let decoded = self.decoded.as_str();
                    // The ranges end next to ASCII bytes or the ends, so they are boundaries.
                    Ok(decoded_ranges.map(|(start, end)| &decoded[start..end]))
                }
                None => self.decode_euc_kr_fields(line, ranges),
            };
        }
        // UTF-8, or ASCII (which is also UTF-8): validate the line once and slice it.
        let invalid = |at: usize| InvalidText {
            encoding: encoding.unwrap_or(TextEncoding::Utf8),
            field: ranges.iter().position(|&(_, end)| at < end).unwrap_or(0),
        };
        let text = match valid_utf8 {
            Some(text) => text,
            None => std::str::from_utf8(line).map_err(|e| invalid(e.valid_up_to()))?,
        };
        let mut texts = [""; FIELD_COUNT];
        for (text_of_field, &(start, end)) in texts.iter_mut().zip(ranges) {
            // Fields start and end next to ASCII bytes (delimiters, spaces) or at the line's
            // ends, so these are always character boundaries.
            *text_of_field = text.get(start..end).ok_or_else(|| invalid(start))?;
        }
        Ok(texts)
    }

    /// An EUC-KR line that did not decode as a whole, field by field: its ASCII fields are
    /// borrowed as they are, the others decoded into the reused buffer, until the field that
    /// is invalid.
    fn decode_euc_kr_fields<'a>(
        &'a mut self,
        line: &'a [u8],
        ranges: &FieldRanges,
    ) -> Result<[&'a str; FIELD_COUNT], InvalidText> {
        let invalid = |field| InvalidText {
            encoding: TextEncoding::EucKr,
            field,
        };
        let mut spans = [Span::Line(0, 0); FIELD_COUNT];
        self.decoded.clear();
        for (field, (span, &(start, end))) in spans.iter_mut().zip(ranges).enumerate() {
            let bytes = &line[start..end];
            *span = if bytes.is_ascii() {
                Span::Line(start, end)
            } else {
                let from = self.decoded.len();
                decode_euc_kr(bytes, &mut self.decoded).ok_or(invalid(field))?;
                Span::Decoded(from, self.decoded.len())
            };
        }
        let mut texts = [""; FIELD_COUNT];
        for (field, (text, span)) in texts.iter_mut().zip(spans).enumerate() {
            *text = match span {
                Span::Decoded(from, to) => &self.decoded[from..to],
                // ASCII, so this cannot fail.
                Span::Line(start, end) => {
                    std::str::from_utf8(&line[start..end]).map_err(|_| invalid(field))?
                }
            };
        }
        Ok(texts)
    }
}

/// Appends the EUC-KR (CP949) `bytes` to `out` as UTF-8; `None` if they are not valid.
fn decode_euc_kr(bytes: &[u8], out: &mut String) -> Option<()> {
    let mut decoder = EUC_KR.new_decoder_without_bom_handling();
    let room = decoder
        .max_utf8_buffer_length_without_replacement(bytes.len())
        .unwrap_or(bytes.len() * 3);
    out.reserve(room);
    let (result, _read) = decoder.decode_to_string_without_replacement(bytes, out, true);
    matches!(result, DecoderResult::InputEmpty).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::toss::fields::split_fields;

    const EUC_KR_LINE: &[u8] =
        b"toss;SC0010;t;o;11100;\xb1\xb9\xb9\xce;u;15000;N;20070706235927;30017594;10";
    const UTF8_LINE: &str = "toss;SC0010;t;o;11100;국민;u;15000;N;20070706235927;30017594;10";

    #[test]
    fn detection() {
        assert_eq!(TextEncoding::detect(EUC_KR_LINE), TextEncoding::EucKr);
        assert_eq!(
            TextEncoding::detect(UTF8_LINE.as_bytes()),
            TextEncoding::Utf8
        );
    }

    #[test]
    fn euc_kr_fields_decode_to_the_same_text_as_utf8() {
        let mut decoder = FieldDecoder::default();
        let ranges = split_fields(EUC_KR_LINE, b';').unwrap();
        let euc = decoder
            .decode(EUC_KR_LINE, None, &ranges, b';', Some(TextEncoding::EucKr))
            .unwrap()
            .map(str::to_owned);
        let ranges = split_fields(UTF8_LINE.as_bytes(), b';').unwrap();
        let utf = decoder
            .decode(
                UTF8_LINE.as_bytes(),
                Some(UTF8_LINE),
                &ranges,
                b';',
                Some(TextEncoding::Utf8),
            )
            .unwrap()
            .map(str::to_owned);
        assert_eq!(euc[5], "국민");
        assert_eq!(euc, utf);
    }

    #[test]
    fn invalid_bytes_name_the_encoding_and_field() {
        let mut decoder = FieldDecoder::default();
        let ranges = split_fields(EUC_KR_LINE, b';').unwrap();
        assert_eq!(
            decoder.decode(EUC_KR_LINE, None, &ranges, b';', Some(TextEncoding::Utf8)),
            Err(InvalidText {
                encoding: TextEncoding::Utf8,
                field: 5
            })
        );
        let bad = b"a;b;c;d;e;f;g;h;i;j;k;\xff\xfe";
        let ranges = split_fields(bad, b';').unwrap();
        assert_eq!(
            decoder.decode(bad, None, &ranges, b';', Some(TextEncoding::EucKr)),
            Err(InvalidText {
                encoding: TextEncoding::EucKr,
                field: 11
            })
        );
    }

    #[test]
    fn lossy_decoding_for_rejects() {
        assert_eq!(
            decode_lossy(b"\xb1\xb9\xb9\xce;x", Some(TextEncoding::EucKr)),
            "국민;x"
        );
        assert_eq!(
            decode_lossy(b"a\xffb", Some(TextEncoding::Utf8)),
            "a\u{fffd}b"
        );
        assert_eq!(decode_lossy(b"plain", None), "plain");
    }
}
