//! One line's 12 fields: where they are, and what their values are.
//!
//! Splitting works on bytes, before any text decoding. That is sound for both encodings: the
//! delimiters, spaces and tabs are ASCII, and neither UTF-8 nor EUC-KR/CP949 ever uses an ASCII
//! byte inside a multi-byte character (CP949 trail bytes start at 0x41, above `;`, `,`, space and
//! tab). Values are read by hand rather than through `str::parse` or chrono because this is the
//! hot path and the formats are fixed; the reasons they give are for a merchant to read.

use super::RecordKind;

/// Fields in every Toss record.
pub(crate) const FIELD_COUNT: usize = 12;

/// Toss's names of the fields, in order (field 10 is `paydate` in AUTH, `refunddate` in REV).
pub(crate) const FIELD_NAMES: [&str; FIELD_COUNT] = [
    "mid",
    "paytype",
    "transaction",
    "oid",
    "financecode",
    "financename",
    "buyerid",
    "amount",
    "useescrow",
    "paydate/refunddate",
    "authnumber",
    "status",
];

/// The fields that make the record key: they must not be empty.
const KEY_FIELDS: [usize; 4] = [0, 1, 2, 3];

/// Byte range `start..end` of each field in its line, spaces and tabs around it trimmed.
pub(crate) type FieldRanges = [(usize, usize); FIELD_COUNT];

/// Splits `line` on `delimiter` into exactly [`FIELD_COUNT`] trimmed fields. An empty last field
/// is a field. On a wrong count, returns how many fields the line has.
pub(crate) fn split_fields(line: &[u8], delimiter: u8) -> Result<FieldRanges, usize> {
    let mut ends = [0; FIELD_COUNT - 1];
    let mut found = 0;
    for_each_byte(line, delimiter, |at| {
        if let Some(end) = ends.get_mut(found) {
            *end = at;
        }
        found += 1;
    });
    if found != FIELD_COUNT - 1 {
        return Err(found + 1);
    }
    let mut ranges = [(0, 0); FIELD_COUNT];
    let mut start = 0;
    for (range, &end) in ranges.iter_mut().zip(&ends) {
        *range = trim(line, start, end);
        start = end + 1;
    }
    ranges[FIELD_COUNT - 1] = trim(line, start, line.len());
    Ok(ranges)
}

/// Calls `found` with the position of every `byte` in `line`, in order.
///
/// A Toss line is about 120 bytes with a delimiter every ten: `memchr` pays its start-up for
/// every field (a tenth of a load's CPU time in the profile), while this looks at eight bytes
/// at once in a `u64` and visits only the matches.
fn for_each_byte(line: &[u8], byte: u8, mut found: impl FnMut(usize)) {
    const LOW_BITS: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    let pattern = u64::from_le_bytes([byte; 8]);
    let mut words = line.chunks_exact(8);
    let mut base = 0;
    for word in words.by_ref() {
        let word = u64::from_le_bytes(word.try_into().expect("chunks of eight bytes"));
        let zeros = word ^ pattern;
        // The high bit of each byte that was zero, and of no other (no carry crosses bytes).
        let mut matches = !(((zeros & LOW_BITS) + LOW_BITS) | zeros | LOW_BITS);
        while matches != 0 {
            found(base + (matches.trailing_zeros() / 8) as usize);
            matches &= matches - 1;
        }
        base += 8;
    }
    for (at, &b) in words.remainder().iter().enumerate() {
        if b == byte {
            found(base + at);
        }
    }
}

/// Narrows `start..end` to exclude spaces and tabs on either side.
fn trim(line: &[u8], mut start: usize, mut end: usize) -> (usize, usize) {
    while start < end && matches!(line[start], b' ' | b'\t') {
        start += 1;
    }
    while end > start && matches!(line[end - 1], b' ' | b'\t') {
        end -= 1;
    }
    (start, end)
}

/// A line's values, ready for the Arrow builders. Text borrows from the line (or the decoded
/// copy of its non-ASCII fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Record<'a> {
    pub mid: &'a str,
    pub paytype: &'a str,
    pub transaction: &'a str,
    pub oid: &'a str,
    /// Empty means null.
    pub financecode: &'a str,
    /// Empty means null.
    pub financename: &'a str,
    /// Empty means null.
    pub buyerid: &'a str,
    pub amount: i64,
    pub useescrow: bool,
    /// UTC epoch microseconds.
    pub occurred_at: i64,
    pub authnumber: &'a str,
    pub status: &'a str,
}

/// Reads a record from its 12 (trimmed, decoded) fields. On failure the reason lists every
/// problem of the line, so one fix covers them all.
pub(crate) fn parse_record<'a>(
    fields: &[&'a str; FIELD_COUNT],
    kind: RecordKind,
) -> Result<Record<'a>, String> {
    let amount = parse_amount(fields[7]);
    let useescrow = parse_useescrow(fields[8]);
    let occurred_at = parse_occurred_at(fields[9], kind);
    let status = check_status(fields[11], kind);
    let key_complete = KEY_FIELDS.iter().all(|&i| !fields[i].is_empty());
    if let (true, Ok(amount), Ok(useescrow), Ok(occurred_at), Ok(())) =
        (key_complete, &amount, &useescrow, &occurred_at, &status)
    {
        return Ok(Record {
            mid: fields[0],
            paytype: fields[1],
            transaction: fields[2],
            oid: fields[3],
            financecode: fields[4],
            financename: fields[5],
            buyerid: fields[6],
            amount: *amount,
            useescrow: *useescrow,
            occurred_at: *occurred_at,
            authnumber: fields[10],
            status: fields[11],
        });
    }
    let missing = KEY_FIELDS
        .iter()
        .filter(|&&i| fields[i].is_empty())
        .map(|&i| {
            format!(
                "{} (field {}) is empty; it is part of the record key",
                FIELD_NAMES[i],
                i + 1
            )
        });
    let invalid = [
        amount.err(),
        useescrow.err(),
        occurred_at.err(),
        status.err(),
    ];
    Err(missing
        .chain(invalid.into_iter().flatten())
        .collect::<Vec<_>>()
        .join("; "))
}

/// Field 8: whole won, optionally negative.
pub(crate) fn parse_amount(text: &str) -> Result<i64, String> {
    let bytes = text.as_bytes();
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    if text.is_empty() {
        return Err("amount is empty; expected a whole number of won".to_owned());
    }
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(format!("amount '{text}' is not a whole number of won"));
    }
    // Accumulate towards the sign so that i64::MIN is readable too.
    let mut value: i64 = 0;
    for &digit in digits {
        let digit = i64::from(digit - b'0');
        value = value
            .checked_mul(10)
            .and_then(|v| {
                if negative {
                    v.checked_sub(digit)
                } else {
                    v.checked_add(digit)
                }
            })
            .ok_or_else(|| format!("amount '{text}' is too large for a 64-bit whole number"))?;
    }
    Ok(value)
}

/// Field 9: `Y` or `N` (either case).
pub(crate) fn parse_useescrow(text: &str) -> Result<bool, String> {
    match text {
        "Y" | "y" => Ok(true),
        "N" | "n" => Ok(false),
        _ => Err(format!("useescrow '{text}' must be Y or N")),
    }
}

/// Seconds Korea time is ahead of UTC (no daylight saving).
const KOREA_OFFSET_SECS: i64 = 9 * 3600;

/// Field 10: `yyyyMMddHHmmss` or `YYYY-MM-DD HH:MM:SS`, Korea time, as UTC epoch microseconds.
pub(crate) fn parse_occurred_at(text: &str, kind: RecordKind) -> Result<i64, String> {
    let name = kind.date_field_name();
    let Some([year, month, day, hour, minute, second]) = date_time_parts(text.as_bytes()) else {
        return Err(if text.is_empty() {
            format!("{name} is empty; expected yyyyMMddHHmmss (e.g. 20070706235927)")
        } else {
            format!(
                "{name} '{text}' is not a date and time: expected yyyyMMddHHmmss \
                 (e.g. 20070706235927) or YYYY-MM-DD HH:MM:SS"
            )
        });
    };
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    if !valid {
        return Err(format!(
            "impossible date '{text}' in {name}: no such day or time of day in the calendar"
        ));
    }
    let days = days_from_civil(i64::from(year), month, day);
    let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    Ok((seconds - KOREA_OFFSET_SECS) * 1_000_000)
}

/// Year, month, day, hour, minute and second of either accepted layout, unchecked.
fn date_time_parts(bytes: &[u8]) -> Option<[u32; 6]> {
    // Start offset and width of each part in the two layouts.
    const COMPACT: [(usize, usize); 6] = [(0, 4), (4, 2), (6, 2), (8, 2), (10, 2), (12, 2)];
    const SPACED: [(usize, usize); 6] = [(0, 4), (5, 2), (8, 2), (11, 2), (14, 2), (17, 2)];
    let layout = match bytes.len() {
        14 => &COMPACT,
        19 if bytes[4] == b'-'
            && bytes[7] == b'-'
            && bytes[10] == b' '
            && bytes[13] == b':'
            && bytes[16] == b':' =>
        {
            &SPACED
        }
        _ => return None,
    };
    let mut parts = [0; 6];
    for (part, &(start, len)) in parts.iter_mut().zip(layout) {
        *part = digits(&bytes[start..start + len])?;
    }
    Some(parts)
}

/// The value of a run of ASCII digits, `None` if any byte is not a digit.
fn digits(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0, |value, &b| {
        b.is_ascii_digit().then(|| value * 10 + u32::from(b - b'0'))
    })
}

fn is_leap_year(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Field 12: a status this kind of file may carry. An empty or unknown status can't be
/// classified, so the row is not loaded rather than guessed.
pub(crate) fn check_status(text: &str, kind: RecordKind) -> Result<(), String> {
    let allowed = kind.allowed_statuses();
    if allowed.iter().any(|&(code, _)| code == text) {
        return Ok(());
    }
    let expected = allowed
        .iter()
        .map(|(code, meaning)| format!("{code} ({meaning})"))
        .collect::<Vec<_>>()
        .join(" or ");
    Err(if text.is_empty() {
        format!(
            "status is empty; {kind} rows must have status {expected}, \
             so this row can't be classified and is not loaded"
        )
    } else {
        format!("status '{text}' is not valid for {kind} rows: expected {expected}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, NaiveDateTime};

    fn fields_of(line: &str, delimiter: u8) -> Vec<&str> {
        let ranges = split_fields(line.as_bytes(), delimiter).expect("12 fields");
        ranges.iter().map(|&(s, e)| &line[s..e]).collect()
    }

    #[test]
    fn split_keeps_an_empty_last_field() {
        let fields = fields_of("a;b;c;d;e;f;g;h;i;j;k;", b';');
        assert_eq!(fields.len(), 12);
        assert_eq!(fields[10], "k");
        assert_eq!(fields[11], "");
    }

    #[test]
    fn split_trims_spaces_and_tabs_only_around_fields() {
        let fields = fields_of(" a ;\tb c\t;;d;e;f;g;h;i;j;k;  l  ", b';');
        assert_eq!(&fields[..4], ["a", "b c", "", "d"]);
        assert_eq!(fields[11], "l");
    }

    #[test]
    fn every_delimiter_is_found_wherever_it_falls_in_the_eight_byte_words() {
        // Lines of every length around the word size, with delimiters and bytes that differ
        // from the delimiter in one bit or are above 0x7F (where a carry could go wrong).
        let alphabet = [b';', b':', b'\xBB', b'\x3B' ^ 0x80, b'a', b',', 0];
        for len in 0..40 {
            for seed in 0..50_usize {
                let line: Vec<u8> = (0..len)
                    .map(|i| alphabet[(i * 7 + seed * 13 + i * i * seed) % alphabet.len()])
                    .collect();
                let mut seen = Vec::new();
                for_each_byte(&line, b';', |at| seen.push(at));
                let expected: Vec<usize> = (0..len).filter(|&i| line[i] == b';').collect();
                assert_eq!(seen, expected, "{line:?}");
            }
        }
    }

    #[test]
    fn split_counts_fields_on_a_wrong_count() {
        assert_eq!(split_fields(b"a;b;c", b';'), Err(3));
        assert_eq!(split_fields(b"", b';'), Err(1));
        assert_eq!(split_fields(b"a;b;c;d;e;f;g;h;i;j;k;l;m", b';'), Err(13));
        assert_eq!(split_fields(b";;;;;;;;;;;;;;;;;;;", b';'), Err(20));
        assert_eq!(split_fields(b"a,b,c,d,e,f,g,h,i,j,k,l", b';'), Err(1));
    }

    #[test]
    fn amounts() {
        assert_eq!(parse_amount("15000"), Ok(15_000));
        assert_eq!(parse_amount("-300"), Ok(-300));
        assert_eq!(parse_amount("007"), Ok(7));
        assert_eq!(parse_amount("9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_amount("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(
            parse_amount("abc"),
            Err("amount 'abc' is not a whole number of won".to_owned())
        );
        for bad in ["-", "+5", "1.5", "15,000", "1 000", "１２"] {
            assert!(
                parse_amount(bad)
                    .unwrap_err()
                    .contains("not a whole number"),
                "{bad}"
            );
        }
        assert!(parse_amount("").unwrap_err().contains("amount is empty"));
        assert!(
            parse_amount("9223372036854775808")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn useescrow_values() {
        assert_eq!(parse_useescrow("Y"), Ok(true));
        assert_eq!(parse_useescrow("y"), Ok(true));
        assert_eq!(parse_useescrow("N"), Ok(false));
        assert_eq!(parse_useescrow("n"), Ok(false));
        assert_eq!(
            parse_useescrow("X"),
            Err("useescrow 'X' must be Y or N".to_owned())
        );
        assert!(parse_useescrow("").is_err());
    }

    fn chrono_micros(text: &str, format: &str) -> i64 {
        let local = NaiveDateTime::parse_from_str(text, format).expect("valid");
        (local - chrono::TimeDelta::hours(9))
            .and_utc()
            .timestamp_micros()
    }

    #[test]
    fn both_date_layouts_are_korea_time() {
        let compact = parse_occurred_at("20070706235927", RecordKind::Auth).unwrap();
        let spaced = parse_occurred_at("2007-07-06 23:59:27", RecordKind::Auth).unwrap();
        assert_eq!(compact, spaced);
        // 23:59:27 KST is 14:59:27 UTC.
        let utc = NaiveDate::from_ymd_opt(2007, 7, 6)
            .unwrap()
            .and_hms_opt(14, 59, 27)
            .unwrap()
            .and_utc();
        assert_eq!(compact, utc.timestamp_micros());
    }

    #[test]
    fn dates_agree_with_chrono_across_the_calendar() {
        let mut date = NaiveDate::from_ymd_opt(1899, 12, 25).unwrap();
        let end = NaiveDate::from_ymd_opt(2101, 3, 5).unwrap();
        while date <= end {
            let text = format!("{}013059", date.format("%Y%m%d"));
            assert_eq!(
                parse_occurred_at(&text, RecordKind::Rev),
                Ok(chrono_micros(&text, "%Y%m%d%H%M%S")),
                "{text}"
            );
            date = date.succ_opt().unwrap();
        }
        for text in [
            "0000-01-01 00:00:00",
            "9999-12-31 23:59:59",
            "2000-02-29 12:00:00",
        ] {
            assert_eq!(
                parse_occurred_at(text, RecordKind::Auth),
                Ok(chrono_micros(text, "%Y-%m-%d %H:%M:%S")),
                "{text}"
            );
        }
    }

    #[test]
    fn impossible_dates_are_named() {
        for text in [
            "20070230120000",
            "20071301120000",
            "20070001120000",
            "20070700120000",
            "20070706240000",
            "20070706236000",
            "20070706235960",
            "19000229000000",
            "2007-02-30 12:00:00",
            "2007-07-06 24:00:00",
        ] {
            let reason = parse_occurred_at(text, RecordKind::Auth).unwrap_err();
            assert_eq!(
                reason,
                format!(
                    "impossible date '{text}' in paydate: no such day or time of day in the calendar"
                )
            );
        }
        assert!(parse_occurred_at("20080229000000", RecordKind::Auth).is_ok());
    }

    #[test]
    fn malformed_dates_say_the_expected_layout() {
        for text in [
            "2007070623592",
            "200707062359277",
            "2007-07-06T23:59:27",
            "2007/07/06 23:59:27",
            "2007070623592a",
            "2007-07-06 23:59:2x",
            "+2007-7-6 23:59:27",
        ] {
            let reason = parse_occurred_at(text, RecordKind::Rev).unwrap_err();
            assert!(
                reason.starts_with(&format!("refunddate '{text}' is not a date and time")),
                "{reason}"
            );
        }
        assert!(
            parse_occurred_at("", RecordKind::Rev)
                .unwrap_err()
                .starts_with("refunddate is empty")
        );
    }

    #[test]
    fn status_depends_on_the_kind() {
        assert_eq!(check_status("10", RecordKind::Auth), Ok(()));
        assert_eq!(check_status("11", RecordKind::Auth), Ok(()));
        assert_eq!(check_status("20", RecordKind::Rev), Ok(()));
        assert_eq!(check_status("21", RecordKind::Rev), Ok(()));
        assert_eq!(
            check_status("20", RecordKind::Auth),
            Err(
                "status '20' is not valid for AUTH rows: expected 10 (success) or 11 (failure)"
                    .to_owned()
            )
        );
        let empty = check_status("", RecordKind::Rev).unwrap_err();
        assert!(empty.starts_with("status is empty; REV rows must have status 20"));
        assert!(empty.contains("21 (cancel/refund failed)"));
    }

    #[test]
    fn parse_record_lists_every_problem() {
        let fields = [
            "",
            "SC0010",
            "t1",
            "",
            "",
            "",
            "",
            "x",
            "Q",
            "20070230000000",
            "1",
            "",
        ];
        let reason = parse_record(&fields, RecordKind::Auth).unwrap_err();
        assert_eq!(
            reason,
            "mid (field 1) is empty; it is part of the record key; \
             oid (field 4) is empty; it is part of the record key; \
             amount 'x' is not a whole number of won; \
             useescrow 'Q' must be Y or N; \
             impossible date '20070230000000' in paydate: no such day or time of day in the calendar; \
             status is empty; AUTH rows must have status 10 (success) or 11 (failure), \
             so this row can't be classified and is not loaded"
        );
    }

    #[test]
    fn parse_record_reads_a_good_row() {
        let fields = [
            "toss",
            "SC0010",
            "t1",
            "o1",
            "",
            "국민",
            "b",
            "-5",
            "y",
            "20070706235927",
            "007",
            "10",
        ];
        let record = parse_record(&fields, RecordKind::Auth).unwrap();
        assert_eq!(record.financename, "국민");
        assert_eq!(record.amount, -5);
        assert!(record.useescrow);
        assert_eq!(record.authnumber, "007");
        assert_eq!(record.status, "10");
    }
}
