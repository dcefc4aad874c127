//! The decoder end to end: what real files bring besides well-formed lines (the cases listed in
//! `docs/toss-format.md`) that is the parser's to handle, and the real sample files in both
//! encodings.

use arrow::array::{
    Array, AsArray, BooleanArray, Date32Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, TimeUnit};
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;

use super::*;
use crate::parser::{BatchReader, Decoded};

const UTF8_AUTH: &[u8] = include_bytes!("testdata/utf-8/toss_AUTH_20070706.dat");
const UTF8_REV: &[u8] = include_bytes!("testdata/utf-8/toss_REV_20070706.dat");
const EUC_KR_AUTH: &[u8] = include_bytes!("testdata/euc-kr/toss_AUTH_20070706.dat");
const EUC_KR_REV: &[u8] = include_bytes!("testdata/euc-kr/toss_REV_20070706.dat");

/// Everything a decoder produced for one input.
#[derive(Debug, PartialEq)]
struct Output {
    batches: Vec<RecordBatch>,
    rejects: Vec<Reject>,
    stats: ParseStats,
    encoding: Option<Encoding>,
    delimiter: Option<Delimiter>,
}

impl Output {
    fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    fn batch_sizes(&self) -> Vec<usize> {
        self.batches.iter().map(RecordBatch::num_rows).collect()
    }

    /// A text column across all batches.
    fn text(&self, column: &str) -> Vec<Option<String>> {
        self.batches
            .iter()
            .flat_map(|b| {
                let array = b.column_by_name(column).unwrap().as_string::<i32>();
                array
                    .iter()
                    .map(|v| v.map(str::to_owned))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// A non-null text column across all batches.
    fn texts(&self, column: &str) -> Vec<String> {
        self.text(column).into_iter().map(Option::unwrap).collect()
    }

    fn int64(&self, column: &str) -> Vec<i64> {
        self.batches
            .iter()
            .flat_map(|b| {
                let array = b.column_by_name(column).unwrap();
                let array = array.as_any().downcast_ref::<Int64Array>().unwrap();
                array.values().to_vec()
            })
            .collect()
    }

    fn occurred_at(&self) -> Vec<i64> {
        self.batches
            .iter()
            .flat_map(|b| {
                let array = b.column_by_name("occurred_at").unwrap();
                let array = array
                    .as_any()
                    .downcast_ref::<TimestampMicrosecondArray>()
                    .unwrap();
                array.values().to_vec()
            })
            .collect()
    }

    fn reject_lines(&self) -> Vec<u64> {
        self.rejects.iter().map(|r| r.line).collect()
    }
}

fn date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2007, 7, 6).unwrap()
}

fn context(kind: RecordKind) -> FileContext {
    FileContext {
        record_kind: kind,
        trxdate: date(),
        source_file: format!("toss_{kind}_20070706.dat"),
    }
}

fn options() -> ParserOptions {
    ParserOptions::default()
}

/// Feeds `input` in chunks of `chunk` bytes, draining after each, then finishes; parsing on the
/// caller's thread, and again on the parse pool, which must give the very same output.
fn run_chunked(input: &[u8], kind: RecordKind, options: ParserOptions, chunk: usize) -> Output {
    let in_series = feed(
        TossDecoder::new(options, context(kind)).in_series(),
        input,
        chunk,
    );
    let on_pool = feed(TossDecoder::new(options, context(kind)), input, chunk);
    assert_eq!(on_pool, in_series, "parallel and serial parsing differ");
    in_series
}

fn feed(decoder: TossDecoder, input: &[u8], chunk: usize) -> Output {
    read_all(BatchReader::new(input, Box::new(decoder), "input").with_chunk_size(chunk))
}

/// Everything `reader` hands out, through the reader every caller of a decoder uses.
fn read_all(mut reader: BatchReader<&[u8]>) -> Output {
    let mut batches = Vec::new();
    let mut rejects = Vec::new();
    for decoded in reader.by_ref() {
        match decoded.expect("nothing fails reading from memory") {
            Decoded::Batch(batch) => batches.push(batch),
            Decoded::Rejects(more) => rejects.extend(more),
        }
    }
    let detected = reader.detected();
    Output {
        batches,
        rejects,
        stats: reader.stats().clone(),
        encoding: detected.encoding.map(|name| name.parse().unwrap()),
        delimiter: detected.delimiter.map(|name| name.parse().unwrap()),
    }
}

fn run_with(input: &[u8], kind: RecordKind, options: ParserOptions) -> Output {
    run_chunked(input, kind, options, input.len())
}

fn run(input: &[u8], kind: RecordKind) -> Output {
    run_with(input, kind, options())
}

/// A valid AUTH line whose key is made unique by `n`.
fn auth_line(n: u32) -> String {
    format!(
        "toss;SC0010;tx{n};oid{n};11100;국민;buyer{n};{amount};N;20070706235927;30017594;10",
        amount = 1000 + n
    )
}

fn auth_lines(ns: &[u32]) -> String {
    ns.iter().map(|&n| auth_line(n) + "\n").collect()
}

/// The sum that every physical line is accounted for.
fn assert_accounted(out: &Output) {
    let s = &out.stats;
    assert_eq!(
        s.lines,
        s.rows + s.rejected + s.duplicates + s.blank,
        "{s:?}"
    );
    assert_eq!(s.rows as usize, out.rows());
    assert_eq!(s.rejected as usize, out.rejects.len());
}

// ---- the sample files -------------------------------------------------------------------------

#[test]
fn sample_auth_files_give_identical_batches_in_both_encodings() {
    let utf8 = run(UTF8_AUTH, RecordKind::Auth);
    let euc_kr = run(EUC_KR_AUTH, RecordKind::Auth);
    assert_eq!(utf8.encoding, Some(Encoding::Utf8));
    assert_eq!(euc_kr.encoding, Some(Encoding::EucKr));
    assert_eq!(utf8.delimiter, Some(Delimiter::Semicolon));
    assert_eq!(euc_kr.delimiter, Some(Delimiter::Semicolon));
    assert_eq!(utf8.batches, euc_kr.batches);
    assert!(utf8.rejects.is_empty() && euc_kr.rejects.is_empty());
    assert_eq!(utf8.rows(), 4);
    assert_eq!(utf8.batches.len(), 1);
    assert_eq!(utf8.texts("financename"), ["국민", "비씨", "신한", "광주"]);
    assert_eq!(
        utf8.texts("transaction"),
        [
            "toss2007070623592792192",
            "toss2007070623571812279",
            "toss2007070623433532130",
            "toss2007070623383531154"
        ]
    );
    assert_eq!(utf8.int64("amount"), [15000, 35000, 319000, 91000]);
    assert_eq!(utf8.texts("authnumber"), ["30017594", "55185725", "0", "0"]);
    assert_eq!(utf8.texts("status"), ["10", "10", "10", "10"]);
    assert_eq!(
        utf8.texts("paytype"),
        ["SC0010", "SC0010", "SC0030", "SC0030"]
    );
    assert_eq!(utf8.int64("source_line"), [1, 2, 3, 4]);
    assert_accounted(&utf8);
    assert_accounted(&euc_kr);
}

#[test]
fn sample_rev_files_reject_the_empty_status_and_load_the_rest() {
    let utf8 = run(UTF8_REV, RecordKind::Rev);
    let euc_kr = run(EUC_KR_REV, RecordKind::Rev);
    assert_eq!(utf8.batches, euc_kr.batches);
    assert_eq!(utf8.rows(), 3);
    assert_eq!(utf8.texts("financename"), ["현대", "비씨", "롯데"]);
    assert_eq!(
        utf8.texts("authnumber"),
        ["00176594", "54955735", "33044999"]
    );
    assert_eq!(utf8.texts("status"), ["20", "20", "20"]);
    assert_eq!(utf8.texts("record_kind"), ["REV", "REV", "REV"]);
    assert_eq!(utf8.int64("source_line"), [1, 2, 4]);
    assert_eq!(utf8.int64("amount"), [115000, 97000, 16000]);

    for out in [&utf8, &euc_kr] {
        assert_eq!(out.rejects.len(), 1);
        let reject = &out.rejects[0];
        assert_eq!(reject.line, 3);
        assert_eq!(
            reject.raw,
            "toss;SC0010;toss2007070400463873636;Toss_20070704004518_sbchun80;71100;롯데;\
             sbchun80;29000;N;20070706230726;17634348;"
        );
        assert!(
            reject
                .reason
                .starts_with("status is empty; REV rows must have status 20"),
            "{}",
            reject.reason
        );
        assert_eq!(out.stats.rejected, 1);
        assert_accounted(out);
    }
}

// ---- line handling ----------------------------------------------------------------------------

#[test]
fn crlf_line_ends_are_stripped() {
    let input = auth_lines(&[1, 2]).replace('\n', "\r\n");
    let out = run(input.as_bytes(), RecordKind::Auth);
    assert_eq!(out.rows(), 2);
    assert!(out.rejects.is_empty());
    // The status is the last field: a kept '\r' would make it "10\r" and fail.
    assert_eq!(out.texts("status"), ["10", "10"]);
    assert_eq!(out.stats.lines, 2);
}

#[test]
fn carriage_returns_alone_end_lines_when_they_end_the_first_line() {
    let lf = auth_lines(&(1..=2_000).collect::<Vec<_>>());
    let cr = lf.replace('\n', "\r");
    let expected = run(lf.as_bytes(), RecordKind::Auth);
    assert_eq!(expected.rows(), 2_000);
    for chunk in [1, 7, 4096, cr.len()] {
        let out = run_chunked(cr.as_bytes(), RecordKind::Auth, options(), chunk);
        assert_eq!(out.batches, expected.batches, "chunk {chunk}");
        assert!(out.rejects.is_empty(), "chunk {chunk}: {:?}", out.rejects);
        assert_eq!(out.stats.lines, 2_000);
    }
    // Without a line end after the last record.
    let out = run(cr.trim_end_matches('\r').as_bytes(), RecordKind::Auth);
    assert_eq!(out.batches, expected.batches);
}

#[test]
fn control_characters_inside_fields_reject_their_line_with_the_field() {
    let good = auth_line(1);
    let mut input = String::new();
    for (n, control) in [(2, '\0'), (3, '\u{1b}'), (4, '\u{7}'), (5, '\r')] {
        let line = auth_line(n).replacen(&format!("buyer{n}"), &format!("buy{control}er{n}"), 1);
        input.push_str(&line);
        input.push('\n');
    }
    input.push_str(&good);
    input.push('\n');
    let out = run(input.as_bytes(), RecordKind::Auth);
    assert_eq!(out.rows(), 1);
    assert_eq!(out.reject_lines(), [1, 2, 3, 4]);
    for (reject, code) in out.rejects.iter().zip([
        "U+0000 (NUL)",
        "U+001B (ESC)",
        "U+0007 (BEL)",
        "U+000D (carriage return)",
    ]) {
        assert!(
            reject
                .reason
                .starts_with(&format!("control character {code} in field 7 (buyerid)")),
            "{}",
            reject.reason
        );
    }
    // The raw text keeps the character, for the rejects file to show it (escaped, as JSON does).
    assert!(out.rejects[0].raw.contains('\0'));
    assert_accounted(&out);
}

#[test]
fn final_line_with_or_without_newline_is_a_row() {
    let with = auth_lines(&[1, 2]);
    let without = with.trim_end_matches('\n');
    let crlf_without = with.replace('\n', "\r\n");
    let crlf_without = crlf_without.trim_end_matches("\r\n");
    let a = run(with.as_bytes(), RecordKind::Auth);
    let b = run(without.as_bytes(), RecordKind::Auth);
    let c = run(crlf_without.as_bytes(), RecordKind::Auth);
    assert_eq!(a.rows(), 2);
    assert_eq!(a.batches, b.batches);
    assert_eq!(a.batches, c.batches);
    assert_eq!(a.stats.lines, 2);
    assert_eq!(b.stats.lines, 2);
}

#[test]
fn blank_lines_are_skipped_and_counted_but_keep_line_numbers() {
    let input = format!(
        "\n{}  \t \r\n\n{}\r\n   ",
        auth_line(1) + "\n",
        auth_line(2)
    );
    let out = run(input.as_bytes(), RecordKind::Auth);
    assert_eq!(out.rows(), 2);
    assert!(out.rejects.is_empty());
    assert_eq!(out.stats.blank, 4);
    assert_eq!(out.stats.lines, 6);
    assert_eq!(out.int64("source_line"), [2, 5]);
    assert_accounted(&out);
}

#[test]
fn utf8_byte_order_mark_is_dropped_and_means_utf8() {
    let input = [
        b"\xEF\xBB\xBF".as_slice(),
        b"toss;SC0010;t;o;;;;1;N;20070706235927;1;10\n",
    ]
    .concat();
    let out = run(&input, RecordKind::Auth);
    assert_eq!(out.texts("mid"), ["toss"]);
    assert_eq!(out.encoding, Some(Encoding::Utf8));
    assert!(out.rejects.is_empty());

    // Only at the very start: a BOM-like sequence later is data (and here an invalid mid).
    let later = [
        b"\n\xEF\xBB\xBF".as_slice(),
        b"toss;SC0010;t;o;;;;1;N;20070706235927;1;10",
    ]
    .concat();
    let out = run(&later, RecordKind::Auth);
    assert_eq!(out.texts("mid"), ["\u{feff}toss"]);
}

#[test]
fn spaces_and_tabs_around_fields_are_trimmed() {
    let input = " toss ; SC0010 ;\ttx1\t; oid1 ;  ; 국민 ; ; 15000 ; Y ; 2007-07-06 23:59:27 ; 0017 ; 10 \n";
    let out = run(input.as_bytes(), RecordKind::Auth);
    assert!(out.rejects.is_empty(), "{:?}", out.rejects);
    assert_eq!(out.texts("mid"), ["toss"]);
    assert_eq!(out.texts("transaction"), ["tx1"]);
    assert_eq!(out.text("financecode"), [None]);
    assert_eq!(out.text("financename"), [Some("국민".to_owned())]);
    assert_eq!(out.text("buyerid"), [None]);
    assert_eq!(out.int64("amount"), [15000]);
    assert_eq!(out.texts("authnumber"), ["0017"]);
    assert_eq!(out.texts("status"), ["10"]);
}

#[test]
fn empty_input_gives_no_batch() {
    for input in [b"".as_slice(), b"\n\r\n  \n", b"\xEF\xBB\xBF"] {
        let mut decoder = TossDecoder::new(options(), context(RecordKind::Rev));
        decoder.decode(input);
        decoder.finish();
        assert!(decoder.next_batch().is_none());
        assert!(decoder.take_rejects().is_empty());
        assert_eq!(decoder.stats().rows, 0);
        assert_eq!(decoder.stats().rejected, 0);
        assert_eq!(decoder.stats().lines, decoder.stats().blank);
    }
    let out = run(b"", RecordKind::Rev);
    assert_eq!(out.stats, ParseStats::default());
    assert_eq!(out.encoding, None);
    assert_eq!(out.delimiter, None);
}

#[test]
fn truncated_last_line_is_rejected_and_says_so() {
    let input = auth_lines(&[1]) + "toss;SC0010;tx2;oid2;111";
    let out = run(input.as_bytes(), RecordKind::Auth);
    assert_eq!(out.rows(), 1);
    assert_eq!(out.reject_lines(), [2]);
    let reason = &out.rejects[0].reason;
    assert!(
        reason.starts_with(
            "expected 12 fields separated by ';', found 5; this last line has no line end"
        ),
        "{reason}"
    );
    assert_eq!(out.rejects[0].raw, "toss;SC0010;tx2;oid2;111");
}

#[test]
fn too_few_and_too_many_fields_are_rejected_with_the_count() {
    let input = format!(
        "{}\ntoss;SC0010;tx2;oid2;11100;국민;b;15000;N;20070706235927;1\n{};extra\n{}\n",
        auth_line(1),
        auth_line(3),
        auth_line(4)
    );
    let out = run(input.as_bytes(), RecordKind::Auth);
    assert_eq!(out.texts("transaction"), ["tx1", "tx4"]);
    assert_eq!(out.reject_lines(), [2, 3]);
    assert_eq!(
        out.rejects[0].reason,
        "expected 12 fields separated by ';', found 11"
    );
    assert_eq!(
        out.rejects[1].reason,
        "expected 12 fields separated by ';', found 13"
    );
    assert_accounted(&out);
}

#[test]
fn empty_key_fields_are_rejected_by_name() {
    let input =
        "toss;;tx1;oid1;;;;1;N;20070706235927;1;10\n;SC0010;tx2;;;;;1;N;20070706235927;1;10\n";
    let out = run(input.as_bytes(), RecordKind::Auth);
    assert_eq!(out.rows(), 0);
    assert_eq!(
        out.rejects[0].reason,
        "paytype (field 2) is empty; it is part of the record key"
    );
    assert_eq!(
        out.rejects[1].reason,
        "mid (field 1) is empty; it is part of the record key; \
         oid (field 4) is empty; it is part of the record key"
    );
}

// ---- values -----------------------------------------------------------------------------------

#[test]
fn non_numeric_amount_is_rejected() {
    let input = format!(
        "{}\ntoss;SC0010;tx2;oid2;;;;abc;N;20070706235927;1;10\ntoss;SC0010;tx3;oid3;;;;-2500;N;20070706235927;1;10\n",
        auth_line(1)
    );
    let out = run(input.as_bytes(), RecordKind::Auth);
    assert_eq!(out.reject_lines(), [2]);
    assert_eq!(
        out.rejects[0].reason,
        "amount 'abc' is not a whole number of won"
    );
    assert_eq!(out.int64("amount"), [1001, -2500]);
}

#[test]
fn amount_overflow_is_rejected() {
    let input = "toss;SC0010;tx2;oid2;;;;99999999999999999999;N;20070706235927;1;10";
    let out = run(input.as_bytes(), RecordKind::Auth);
    assert_eq!(out.rows(), 0);
    assert!(
        out.rejects[0].reason.contains("too large"),
        "{:?}",
        out.rejects
    );
}

#[test]
fn useescrow_reads_y_and_n_in_either_case() {
    let input = "a;SC0010;t1;o;;;;1;Y;20070706235927;1;10\n\
                 a;SC0010;t2;o;;;;1;n;20070706235927;1;10\n\
                 a;SC0010;t3;o;;;;1;y;20070706235927;1;10\n\
                 a;SC0010;t4;o;;;;1;X;20070706235927;1;10\n";
    let out = run(input.as_bytes(), RecordKind::Auth);
    let escrow = out.batches[0]
        .column_by_name("useescrow")
        .unwrap()
        .as_any()
        .downcast_ref::<BooleanArray>()
        .unwrap()
        .clone();
    assert_eq!(escrow, BooleanArray::from(vec![true, false, true]));
    assert_eq!(out.reject_lines(), [4]);
    assert_eq!(out.rejects[0].reason, "useescrow 'X' must be Y or N");
}

#[test]
fn impossible_date_is_rejected() {
    let input =
        "a;SC0010;t1;o;;;;1;N;20070230235927;1;20\na;SC0010;t2;o;;;;1;N;2007-13-01 00:00:00;1;20\n";
    let out = run(input.as_bytes(), RecordKind::Rev);
    assert_eq!(out.rows(), 0);
    assert_eq!(
        out.rejects[0].reason,
        "impossible date '20070230235927' in refunddate: no such day or time of day in the calendar"
    );
    assert!(
        out.rejects[1]
            .reason
            .starts_with("impossible date '2007-13-01 00:00:00'")
    );
}

#[test]
fn both_date_layouts_are_korea_time_in_a_plus_nine_column() {
    let input =
        "a;SC0010;t1;o;;;;1;N;20070706235927;1;10\na;SC0010;t2;o;;;;1;N;2007-07-06 23:59:27;1;10\n";
    let out = run(input.as_bytes(), RecordKind::Auth);
    let utc = NaiveDate::from_ymd_opt(2007, 7, 6)
        .unwrap()
        .and_hms_opt(14, 59, 27)
        .unwrap()
        .and_utc()
        .timestamp_micros();
    assert_eq!(out.occurred_at(), [utc, utc]);
    let column = out.batches[0].column_by_name("occurred_at").unwrap();
    assert_eq!(
        column.data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("+09:00".into()))
    );
    let shown = arrow::util::display::array_value_to_string(column, 0).unwrap();
    assert_eq!(shown, "2007-07-06T23:59:27+09:00");
}

#[test]
fn status_must_fit_the_kind() {
    let input =
        "a;SC0010;t1;o;;;;1;N;20070706235927;1;11\na;SC0010;t2;o;;;;1;N;20070706235927;1;20\n";
    let out = run(input.as_bytes(), RecordKind::Auth);
    assert_eq!(out.texts("status"), ["11"]);
    assert_eq!(
        out.rejects[0].reason,
        "status '20' is not valid for AUTH rows: expected 10 (success) or 11 (failure)"
    );
    let rev =
        "a;SC0010;t1;o;;;;1;N;20070706235927;1;21\na;SC0010;t2;o;;;;1;N;20070706235927;1;10\n";
    let out = run(rev.as_bytes(), RecordKind::Rev);
    assert_eq!(out.texts("status"), ["21"]);
    assert!(
        out.rejects[0]
            .reason
            .starts_with("status '10' is not valid for REV rows")
    );
}

#[test]
fn authnumber_keeps_leading_zeros_and_may_be_empty() {
    let input = "a;SC0010;t1;o;;;;1;N;20070706235927;00176594;20\na;SC0030;t2;o;;;;1;N;20070706235927;;20\n";
    let out = run(input.as_bytes(), RecordKind::Rev);
    assert_eq!(
        out.text("authnumber"),
        [Some("00176594".to_owned()), Some(String::new())]
    );
}

#[test]
fn empty_optional_fields_are_null() {
    let input = "a;SC0010;t1;o;;;;1;N;20070706235927;1;10\na;SC0010;t2;o;088;신한;kim;1;N;20070706235927;1;10\n";
    let out = run(input.as_bytes(), RecordKind::Auth);
    assert_eq!(out.text("financecode"), [None, Some("088".to_owned())]);
    assert_eq!(out.text("financename"), [None, Some("신한".to_owned())]);
    assert_eq!(out.text("buyerid"), [None, Some("kim".to_owned())]);
    let financecode = out.batches[0].column_by_name("financecode").unwrap();
    assert_eq!(financecode.null_count(), 1);
}

#[test]
fn unknown_paytype_is_kept() {
    let input = "a;SC9999;t1;o;;;;1;N;20070706235927;1;10\n";
    let out = run(input.as_bytes(), RecordKind::Auth);
    assert!(out.rejects.is_empty());
    assert_eq!(out.texts("paytype"), ["SC9999"]);
}

#[test]
fn file_columns_come_from_the_context() {
    let out = run(auth_lines(&[1, 2]).as_bytes(), RecordKind::Auth);
    let batch = &out.batches[0];
    assert_eq!(batch.schema(), toss_schema());
    assert_eq!(out.texts("record_kind"), ["AUTH", "AUTH"]);
    assert_eq!(out.texts("source_file"), ["toss_AUTH_20070706.dat"; 2]);
    let trxdate = batch
        .column_by_name("trxdate")
        .unwrap()
        .as_any()
        .downcast_ref::<Date32Array>()
        .unwrap();
    assert_eq!(trxdate.value_as_date(0), Some(date()));
    assert_eq!(trxdate.value_as_date(1), Some(date()));
    assert_eq!(trxdate.null_count(), 0);
}

#[test]
fn schema_names_types_and_nullability() {
    let schema = toss_schema();
    let fields: Vec<(&str, DataType, bool)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type().clone(), f.is_nullable()))
        .collect();
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("+09:00".into()));
    assert_eq!(
        fields,
        [
            ("record_kind", DataType::Utf8, false),
            ("trxdate", DataType::Date32, false),
            ("mid", DataType::Utf8, false),
            ("paytype", DataType::Utf8, false),
            ("transaction", DataType::Utf8, false),
            ("oid", DataType::Utf8, false),
            ("financecode", DataType::Utf8, true),
            ("financename", DataType::Utf8, true),
            ("buyerid", DataType::Utf8, true),
            ("amount", DataType::Int64, false),
            ("useescrow", DataType::Boolean, false),
            ("occurred_at", ts, false),
            ("authnumber", DataType::Utf8, false),
            ("status", DataType::Utf8, false),
            ("source_file", DataType::Utf8, false),
            ("source_line", DataType::Int64, false),
        ]
    );
}

// ---- duplicates -------------------------------------------------------------------------------

#[test]
fn exact_duplicate_is_counted_and_skipped() {
    let input = auth_lines(&[1, 2, 1]);
    let out = run(input.as_bytes(), RecordKind::Auth);
    assert_eq!(out.texts("transaction"), ["tx1", "tx2"]);
    assert_eq!(out.stats.duplicates, 1);
    assert!(out.rejects.is_empty());
    assert_accounted(&out);
}

#[test]
fn duplicate_after_normalisation_is_exact() {
    // Same values once trimmed and parsed: other spacing, escrow case and date layout.
    let input = "a;SC0010;t1;o;;;;1;N;20070706235927;1;10\n a ;SC0010;t1;o; ; ;;1;n;2007-07-06 23:59:27;1;10\n";
    let out = run(input.as_bytes(), RecordKind::Auth);
    assert_eq!(out.rows(), 1);
    assert_eq!(out.stats.duplicates, 1);
}

#[test]
fn conflicting_duplicate_is_rejected_and_the_first_kept() {
    let changed = auth_line(1).replace(";1001;", ";9999;");
    let input = format!("{}\n{}\n{changed}\n", auth_line(1), auth_line(2));
    let out = run(input.as_bytes(), RecordKind::Auth);
    assert_eq!(out.int64("amount"), [1001, 1002]);
    assert_eq!(out.reject_lines(), [3]);
    assert_eq!(
        out.rejects[0].reason,
        "duplicate record key (first seen on line 1); this engine keeps the first"
    );
    assert_eq!(out.rejects[0].raw, changed);
    assert_eq!(out.stats.duplicates, 0);
    assert_accounted(&out);
}

#[test]
fn a_rejected_line_does_not_claim_its_key() {
    let bad = auth_line(1).replace(";1001;", ";x;");
    let input = format!("{bad}\n{}\n", auth_line(1));
    let out = run(input.as_bytes(), RecordKind::Auth);
    assert_eq!(out.reject_lines(), [1]);
    assert_eq!(out.int64("source_line"), [2]);
}

#[test]
fn duplicates_of_keys_written_out_to_disk_are_found_as_in_memory() {
    // 300 distinct rows, then repeats of early and late ones, exact and conflicting, and a
    // conflict repeated: with room for 4 keys in memory, the first occurrences of most keys are
    // in the temporary file (74 runs) by the time they repeat.
    let mut input = auth_lines(&(1..=300).collect::<Vec<_>>());
    for n in [1, 150, 299, 2, 300, 1] {
        input.push_str(&(auth_line(n) + "\n"));
    }
    for n in [3, 200, 3] {
        input.push_str(&(auth_line(n).replace(";N;", ";Y;") + "\n"));
    }
    input.push_str(&auth_lines(&[301, 301]));
    let small = ParserOptions {
        batch_rows: 64,
        ..options()
    };
    let decoder = TossDecoder::new(small, context(RecordKind::Auth)).with_recent_keys(4);
    let spilled = feed(decoder, input.as_bytes(), input.len());
    let in_memory = run_with(input.as_bytes(), RecordKind::Auth, small);
    assert_eq!(spilled, in_memory);
    assert_eq!(spilled.rows(), 301);
    assert_eq!(spilled.stats.duplicates, 7);
    assert_eq!(spilled.reject_lines(), [307, 308, 309]);
    assert_eq!(
        spilled.rejects[1].reason,
        "duplicate record key (first seen on line 200); this engine keeps the first"
    );
    assert_accounted(&spilled);
}

// ---- delimiters -------------------------------------------------------------------------------

#[test]
fn comma_files_are_detected() {
    let input = auth_lines(&[1, 2]).replace(';', ",");
    let out = run(input.as_bytes(), RecordKind::Auth);
    assert_eq!(out.delimiter, Some(Delimiter::Comma));
    assert_eq!(out.rows(), 2);
    assert_eq!(out.texts("financename"), ["국민", "국민"]);
    let semicolons = run(auth_lines(&[1, 2]).as_bytes(), RecordKind::Auth);
    assert_eq!(semicolons.delimiter, Some(Delimiter::Semicolon));
    assert_eq!(out.batches, semicolons.batches);
}

#[test]
fn detection_prefers_twelve_fields_then_the_more_frequent_delimiter() {
    // Twelve fields by ';' although ',' is more frequent (commas inside a value).
    let line = "a;SC0010;t1;o,1,2,3,4,5,6,7,8,9,10,11,12;;;;1;N;20070706235927;1;10\n";
    let out = run(line.as_bytes(), RecordKind::Auth);
    assert_eq!(out.delimiter, Some(Delimiter::Semicolon));
    assert_eq!(out.texts("oid"), ["o,1,2,3,4,5,6,7,8,9,10,11,12"]);
    // Twelve fields by ',' with semicolons inside a value.
    let line = "a,SC0010,t1,o;1;2,,,,1,N,20070706235927,1,10\n";
    let out = run(line.as_bytes(), RecordKind::Auth);
    assert_eq!(out.delimiter, Some(Delimiter::Comma));
    assert_eq!(out.texts("oid"), ["o;1;2"]);
    // Neither gives twelve: the more frequent wins, ties go to ';'.
    assert_eq!(
        run(b"a,b,c;d", RecordKind::Auth).delimiter,
        Some(Delimiter::Comma)
    );
    assert_eq!(
        run(b"a,b;c", RecordKind::Auth).delimiter,
        Some(Delimiter::Semicolon)
    );
    assert_eq!(
        run(b"abc", RecordKind::Auth).delimiter,
        Some(Delimiter::Semicolon)
    );
    // Decided by the first non-blank line only.
    let input = format!("\n\n{}\n{}\n", auth_line(1).replace(';', ","), auth_line(2));
    let out = run(input.as_bytes(), RecordKind::Auth);
    assert_eq!(out.delimiter, Some(Delimiter::Comma));
    assert_eq!(out.reject_lines(), [4]);
    assert!(
        out.rejects[0].reason.starts_with(
            "expected 12 fields separated by ',', found 1; the line is separated by ';'"
        )
    );
}

#[test]
fn a_told_delimiter_is_used_as_is() {
    let input = auth_lines(&[1]);
    let told = ParserOptions {
        delimiter: Delimiter::Comma,
        ..options()
    };
    let mut decoder = TossDecoder::new(told, context(RecordKind::Auth));
    assert_eq!(decoder.detected_delimiter(), Some(Delimiter::Comma));
    decoder.decode(input.as_bytes());
    decoder.finish();
    assert!(decoder.next_batch().is_none());
    let rejects = decoder.take_rejects();
    assert_eq!(
        rejects[0].reason,
        "expected 12 fields separated by ',', found 1; the line is separated by ';': \
         set delimiter = \";\" in [parser]"
    );
    let told = ParserOptions {
        delimiter: Delimiter::Semicolon,
        ..options()
    };
    assert_eq!(run_with(input.as_bytes(), RecordKind::Auth, told).rows(), 1);
}

// ---- encodings --------------------------------------------------------------------------------

#[test]
fn encoding_stays_undecided_while_ascii() {
    // Lines settle the encoding as their batch is cut: here, every line.
    let single = ParserOptions {
        batch_rows: 1,
        ..options()
    };
    let mut decoder = TossDecoder::new(single, context(RecordKind::Auth));
    decoder.decode(b"a;SC0010;t1;o;;;;1;N;20070706235927;1;10\n");
    assert_eq!(decoder.detected_encoding(), None);
    decoder.decode(auth_line(2).as_bytes());
    decoder.decode(b"\n");
    assert_eq!(decoder.detected_encoding(), Some(Encoding::Utf8));
}

#[test]
fn a_told_encoding_is_reported_from_the_start() {
    let told = ParserOptions {
        encoding: Encoding::EucKr,
        ..options()
    };
    let decoder = TossDecoder::new(told, context(RecordKind::Auth));
    assert_eq!(decoder.detected_encoding(), Some(Encoding::EucKr));
}

#[test]
fn euc_kr_file_read_as_utf8_is_rejected_with_the_fix() {
    let told = ParserOptions {
        encoding: Encoding::Utf8,
        ..options()
    };
    let out = run_with(EUC_KR_AUTH, RecordKind::Auth, told);
    assert_eq!(out.rows(), 0);
    assert_eq!(out.rejects.len(), 4);
    let reason = &out.rejects[0].reason;
    assert_eq!(
        reason,
        "invalid UTF-8 bytes in field 6 (financename); the file is read as UTF-8 because \
         [parser] says so: if the file is in another encoding, set encoding = \"euc-kr\" in [parser]"
    );
    assert!(out.rejects[0].raw.contains('\u{fffd}'));
    assert!(!out.rejects[0].raw.ends_with('\r'));
}

#[test]
fn invalid_euc_kr_after_detection_is_rejected() {
    let input = [
        EUC_KR_AUTH,
        b"toss;SC0010;tx9;oid9;;\xff\xff;;1;N;20070706235927;1;10\r\n",
    ]
    .concat();
    let out = run(&input, RecordKind::Auth);
    assert_eq!(out.rows(), 4);
    assert_eq!(out.reject_lines(), [5]);
    assert_eq!(
        out.rejects[0].reason,
        "invalid EUC-KR bytes in field 6 (financename); the file was detected as EUC-KR from \
         line 1, its first line with non-ASCII text: if the file is in another encoding, set \
         encoding = \"utf-8\" in [parser]"
    );
    assert_eq!(
        out.rejects[0].raw,
        "toss;SC0010;tx9;oid9;;\u{fffd}\u{fffd};;1;N;20070706235927;1;10"
    );
}

#[test]
fn euc_kr_text_is_decoded_in_any_field() {
    // 홍길동 in EUC-KR as the buyer and the oid.
    let input = b"toss;SC0010;tx1;\xc8\xab;;;\xc8\xab\xb1\xe6\xb5\xbf;1;N;20070706235927;1;10\n";
    let out = run(input, RecordKind::Auth);
    assert_eq!(out.encoding, Some(Encoding::EucKr));
    assert_eq!(out.texts("oid"), ["홍"]);
    assert_eq!(out.text("buyerid"), [Some("홍길동".to_owned())]);
}

// ---- streaming --------------------------------------------------------------------------------

/// An input with a bit of everything: BOM, CRLF, blank lines, Korean UTF-8 text, a reject, an
/// exact and a conflicting duplicate, and no final line end.
fn messy_input() -> Vec<u8> {
    let mut input = b"\xEF\xBB\xBF".to_vec();
    input.extend_from_slice(auth_lines(&[1, 2]).replace('\n', "\r\n").as_bytes());
    input.extend_from_slice(b"\n   \r\n");
    input.extend_from_slice(auth_lines(&[3, 1, 4]).as_bytes());
    input.extend_from_slice(b"toss;SC0010;tx5;oid5;;;;abc;N;20070706235927;1;10\n");
    input.extend_from_slice(auth_line(2).replace(";1002;", ";7;").as_bytes());
    input.extend_from_slice(b"\n");
    input.extend_from_slice(auth_lines(&[6, 7]).as_bytes());
    input.extend_from_slice(auth_line(8).as_bytes());
    input
}

#[test]
fn output_does_not_depend_on_chunking() {
    let input = messy_input();
    let small = ParserOptions {
        batch_rows: 2,
        ..options()
    };
    let whole = run_with(&input, RecordKind::Auth, small);
    assert_eq!(whole.rows(), 7);
    // Each pair of lines is one batch: lines 3-4 are blank, 6 an exact duplicate, 8 and 9
    // rejected.
    assert_eq!(whole.batch_sizes(), [2, 1, 1, 1, 2]);
    assert_eq!(whole.reject_lines(), [8, 9]);
    assert_eq!(whole.stats.duplicates, 1);
    assert_eq!(whole.stats.blank, 2);
    assert_eq!(whole.stats.lines, 12);
    assert_eq!(whole.int64("source_line"), [1, 2, 5, 7, 10, 11, 12]);
    assert_accounted(&whole);

    let byte_by_byte = run_chunked(&input, RecordKind::Auth, small, 1);
    assert_eq!(byte_by_byte, whole);
    for chunk in [2, 3, 7, 64] {
        assert_eq!(
            run_chunked(&input, RecordKind::Auth, small, chunk),
            whole,
            "{chunk}"
        );
    }
    // Every single cut point, including inside the BOM, a CRLF and a multi-byte character.
    for cut in 0..=input.len() {
        let mut decoder = TossDecoder::new(small, context(RecordKind::Auth));
        decoder.decode(&input[..cut]);
        decoder.decode(&input[cut..]);
        decoder.finish();
        let batches: Vec<_> = std::iter::from_fn(|| decoder.next_batch()).collect();
        assert_eq!(batches, whole.batches, "cut at {cut}");
        assert_eq!(decoder.take_rejects(), whole.rejects, "cut at {cut}");
    }
}

#[test]
fn euc_kr_sample_fed_byte_by_byte_matches_the_whole() {
    let whole = run(EUC_KR_REV, RecordKind::Rev);
    let bytes = run_chunked(EUC_KR_REV, RecordKind::Rev, options(), 1);
    assert_eq!(bytes, whole);
}

#[test]
fn batch_rows_splits_rows_and_full_batches_come_before_finish() {
    let input = auth_lines(&[1, 2, 3, 4, 5]);
    let options = ParserOptions {
        batch_rows: 2,
        ..options()
    };
    let mut decoder = TossDecoder::new(options, context(RecordKind::Auth)).in_series();
    decoder.decode(input.as_bytes());
    let first = decoder.next_batch().expect("a full batch");
    let second = decoder.next_batch().expect("a second full batch");
    assert!(
        decoder.next_batch().is_none(),
        "the fifth row waits for finish"
    );
    decoder.finish();
    let last = decoder.next_batch().expect("the remainder");
    assert!(decoder.next_batch().is_none());
    assert_eq!(
        [first.num_rows(), second.num_rows(), last.num_rows()],
        [2, 2, 1]
    );
    let lines = last.column_by_name("source_line").unwrap();
    assert_eq!(
        lines
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(0),
        5
    );
    // finish twice is harmless.
    decoder.finish();
    assert!(decoder.next_batch().is_none());
}

#[test]
fn batch_rows_zero_means_one() {
    let options = ParserOptions {
        batch_rows: 0,
        ..options()
    };
    let out = run_with(auth_lines(&[1, 2]).as_bytes(), RecordKind::Auth, options);
    assert_eq!(out.batch_sizes(), [1, 1]);
}

#[test]
fn rejects_are_drained_in_line_order() {
    let input = "x\ny\n".to_owned() + &auth_line(1) + "\nz\n";
    let pairs = ParserOptions {
        batch_rows: 2,
        ..options()
    };
    let mut decoder = TossDecoder::new(pairs, context(RecordKind::Auth)).in_series();
    decoder.decode(input.as_bytes());
    let first: Vec<u64> = decoder.take_rejects().iter().map(|r| r.line).collect();
    assert_eq!(first, [1, 2, 4]);
    assert!(decoder.take_rejects().is_empty());
    decoder.decode(b"w");
    decoder.finish();
    let rest = decoder.take_rejects();
    assert_eq!(rest.len(), 1);
    assert_eq!((rest[0].line, rest[0].raw.as_str()), (5, "w"));
}

#[test]
fn overlong_lines_are_rejected_without_buffering_them_whole() {
    let mut input = vec![b'x'; MAX_LINE_BYTES * 3];
    input.push(b'\n');
    input.extend_from_slice(auth_line(1).as_bytes());
    let whole = run(&input, RecordKind::Auth);
    assert_eq!(whole.reject_lines(), [1]);
    assert_eq!(whole.rejects[0].raw.len(), MAX_LINE_BYTES);
    assert!(
        whole.rejects[0]
            .reason
            .starts_with("line is longer than 65536 bytes")
    );
    assert_eq!(whole.int64("source_line"), [2]);
    for chunk in [1000, 4096, MAX_LINE_BYTES + 1] {
        assert_eq!(
            run_chunked(&input, RecordKind::Auth, options(), chunk),
            whole
        );
    }
    // A line of exactly the limit is read normally (and here rejected for its fields).
    let limit = vec![b'y'; MAX_LINE_BYTES];
    let out = run(&limit, RecordKind::Auth);
    assert!(out.rejects[0].reason.starts_with("expected 12 fields"));
}

#[test]
#[should_panic(expected = "decode called after finish")]
fn decode_after_finish_panics() {
    let mut decoder = TossDecoder::new(options(), context(RecordKind::Auth));
    decoder.finish();
    decoder.decode(b"x");
}

// ---- options ----------------------------------------------------------------------------------

#[test]
fn options_read_from_the_pipeline_file_spellings() {
    #[derive(serde::Deserialize)]
    struct Parser {
        delimiter: Delimiter,
        encoding: Encoding,
    }
    let cases = [
        ("auto", "auto", Delimiter::Auto, Encoding::Auto),
        (";", "utf-8", Delimiter::Semicolon, Encoding::Utf8),
        (",", "euc-kr", Delimiter::Comma, Encoding::EucKr),
        (";", "UTF8", Delimiter::Semicolon, Encoding::Utf8),
        (";", "cp949", Delimiter::Semicolon, Encoding::EucKr),
        (";", "euckr", Delimiter::Semicolon, Encoding::EucKr),
    ];
    for (delimiter, encoding, d, e) in cases {
        let text = format!("delimiter = {delimiter:?}\nencoding = {encoding:?}\n");
        let parsed: Parser = toml::from_str(&text).unwrap();
        assert_eq!((parsed.delimiter, parsed.encoding), (d, e), "{text}");
    }
    let bad = toml::from_str::<Parser>("delimiter = \"|\"\nencoding = \"auto\"\n");
    let message = bad.err().unwrap().to_string();
    assert!(
        message.contains("unknown delimiter '|': expected \"auto\", \";\" or \",\""),
        "{message}"
    );
    assert!("latin1".parse::<Encoding>().is_err());
    assert_eq!(
        serde_json::to_string(&Encoding::EucKr).unwrap(),
        "\"euc-kr\""
    );
    assert_eq!(serde_json::to_string(&Delimiter::Comma).unwrap(), "\",\"");
}

#[test]
fn record_kind_names() {
    assert_eq!(RecordKind::Auth.as_str(), "AUTH");
    assert_eq!(RecordKind::Rev.as_str(), "REV");
    assert_eq!("AUTH".parse::<RecordKind>(), Ok(RecordKind::Auth));
    assert_eq!("REV".parse::<RecordKind>(), Ok(RecordKind::Rev));
    assert!("TRX".parse::<RecordKind>().is_err());
    assert!("auth".parse::<RecordKind>().is_err());
    assert_eq!(RecordKind::Rev.to_string(), "REV");
}

#[test]
fn defaults() {
    let options = ParserOptions::default();
    assert_eq!(options.batch_rows, 32_768);
    assert_eq!(options.delimiter, Delimiter::Auto);
    assert_eq!(options.encoding, Encoding::Auto);
}

#[test]
fn stats_and_rejects_serialize_for_the_rejects_file() {
    let reject = Reject {
        line: 3,
        raw: "a;b".to_owned(),
        reason: "why".to_owned(),
    };
    assert_eq!(
        serde_json::to_string(&reject).unwrap(),
        r#"{"line":3,"raw":"a;b","reason":"why"}"#
    );
    let out = run(UTF8_REV, RecordKind::Rev);
    let stats: serde_json::Value = serde_json::to_value(&out.stats).unwrap();
    assert_eq!(stats["rows"], 3);
    assert_eq!(stats["rejected"], 1);
    assert_eq!(stats["lines"], 4);
}

#[test]
fn text_columns_are_plain_string_arrays() {
    let out = run(auth_lines(&[1]).as_bytes(), RecordKind::Auth);
    let mid = out.batches[0].column_by_name("mid").unwrap();
    assert_eq!(
        mid.as_any().downcast_ref::<StringArray>().unwrap().value(0),
        "toss"
    );
}

/// A rough throughput figure for the hot path (not a benchmark harness): run with
/// `cargo test --release -p engine --lib parser::tests::throughput -- --ignored --nocapture`.
#[test]
#[ignore = "slow; prints MB/s"]
fn throughput() {
    let utf8: Vec<u8> = (0..1_000_000)
        .flat_map(|n| (auth_line(n) + "\r\n").into_bytes())
        .collect();
    let text = std::str::from_utf8(&utf8).unwrap();
    let euc_kr = encoding_rs::EUC_KR.encode(text).0.into_owned();
    for (name, data) in [("utf-8", &utf8), ("euc-kr", &euc_kr)] {
        let start = std::time::Instant::now();
        let mut decoder = TossDecoder::new(options(), context(RecordKind::Auth));
        let mut rows = 0;
        for chunk in data.chunks(1 << 20) {
            decoder.decode(chunk);
            rows += std::iter::from_fn(|| decoder.next_batch())
                .map(|b| b.num_rows())
                .sum::<usize>();
        }
        decoder.finish();
        rows += std::iter::from_fn(|| decoder.next_batch())
            .map(|b| b.num_rows())
            .sum::<usize>();
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(rows, 1_000_000);
        assert!(decoder.take_rejects().is_empty());
        eprintln!(
            "{name}: {:.0} MB/s, {:.2} M rows/s",
            data.len() as f64 / secs / 1e6,
            rows as f64 / secs / 1e6
        );
    }
}
