//! `engine inspect`: one Toss file's detected encoding and delimiter, first rows and rejects.
//!
//! The file is not ours: its bytes, and its name, may hold terminal escape sequences that would
//! recolour, retitle or clear the terminal it is inspected on. Every value shown passes through
//! [`escaped`] first, control characters written as `\u{1b}`.

use super::InspectArgs;
use arrow::array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use engine::parser::toss::{FileContext, ParserOptions, TossDecoder};
use engine::parser::{BatchReader, Decoded};
use engine::sources::TossFileName;
use engine::toss::RecordKind;
use engine::{Error, Result};
use std::borrow::Cow;
use std::process::ExitCode;
use std::sync::Arc;

pub(crate) fn inspect(args: &InspectArgs) -> Result<ExitCode> {
    if let Some(format) = &args.format {
        return inspect_api_answer(args, format);
    }
    let file_name = args
        .file
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let shown_path = escaped(&args.file.display().to_string()).into_owned();
    let from_name = TossFileName::parse(&file_name);
    let kind = match (&args.kind, &from_name) {
        (Some(kind), _) => kind.parse::<RecordKind>().map_err(|_| {
            Error::config(
                "--kind",
                format!("unknown kind \"{}\"; use AUTH or REV", escaped(kind)),
            )
        })?,
        (None, Some(name)) => name.kind,
        (None, None) => {
            return Err(Error::config(
                "--kind",
                format!(
                    "{} is not named {{mid}}_{{AUTH|REV}}_{{yyyymmdd}}.dat; say --kind AUTH or --kind REV",
                    escaped(&file_name)
                ),
            ));
        }
    };
    let trxdate = args
        .date
        .or(from_name.as_ref().map(|name| name.trxdate))
        .unwrap_or_default();
    let file = std::fs::File::open(&args.file)
        .map_err(|err| Error::io(format!("cannot open {shown_path}"), err))?;
    let decoder = TossDecoder::new(
        ParserOptions {
            delimiter: args.delimiter,
            encoding: args.encoding,
            batch_rows: ParserOptions::DEFAULT_BATCH_ROWS,
        },
        FileContext {
            record_kind: kind,
            trxdate,
            source_file: file_name.clone(),
        },
    );
    let mut reader = BatchReader::new(file, Box::new(decoder), shown_path.clone());
    let (shown, shown_rows, rejects) = read_to_end(&mut reader, args.limit)?;
    let stats = reader.stats();
    let detected = reader.detected();
    println!("file:      {shown_path}");
    println!("kind:      {} · business date {trxdate}", kind.as_str());
    println!(
        "encoding:  {}",
        detected.encoding.unwrap_or("ascii only (either)")
    );
    println!("delimiter: {}", detected.delimiter.unwrap_or("none found"));
    println!(
        "lines:     {} ({} rows, {} rejected, {} duplicates, {} blank)",
        stats.lines, stats.rows, stats.rejected, stats.duplicates, stats.blank
    );
    if shown.is_empty() {
        println!("\nno rows");
    } else {
        let table = arrow::util::pretty::pretty_format_batches(&shown)
            .map_err(|err| Error::io("cannot format rows", std::io::Error::other(err)))?;
        println!("\nfirst {shown_rows} of {} rows:\n{table}", stats.rows);
    }
    if !rejects.is_empty() {
        println!("\nrejected lines:");
        for reject in &rejects {
            println!(
                "  line {}: {}\n    {}",
                reject.line,
                escaped(&reject.reason),
                escaped(&reject.raw)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A saved answer of Toss's REST API: its rows read as `format` reads a day's pull.
fn inspect_api_answer(args: &InspectArgs, format: &str) -> Result<ExitCode> {
    let shown_path = escaped(&args.file.display().to_string()).into_owned();
    if !format.starts_with("toss-api-") {
        return Err(Error::config(
            "--format",
            format!(
                "{:?} is not an API format; use toss-api-transactions or toss-api-settlements",
                escaped(format)
            ),
        ));
    }
    let parser = engine::parser::ParserConfig::for_source(None, format).map_err(|_| {
        Error::config(
            "--format",
            "use toss-api-transactions or toss-api-settlements",
        )
    })?;
    let text = std::fs::read(&args.file)
        .map_err(|err| Error::io(format!("cannot open {shown_path}"), err))?;
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&text).map_err(|err| Error::Input {
            file: shown_path.clone(),
            message: format!("not a JSON list of rows as Toss's API answers: {err}"),
        })?;
    let lines: String = rows.iter().map(|row| format!("1\t{row}\n")).collect();
    let day = args.date.unwrap_or_default();
    let unit = engine::unit::LoadUnit {
        name: shown_path.clone(),
        origin: shown_path.clone(),
        business_date: day,
        labels: Default::default(),
        partition: Vec::new(),
        version: Default::default(),
    };
    let decoder = parser.format().decoder(&unit)?;
    let mut reader = BatchReader::new(lines.as_bytes(), decoder, shown_path.clone());
    let (shown, shown_rows, rejects) = read_to_end(&mut reader, args.limit)?;
    let stats = reader.stats();
    println!("file:      {shown_path}");
    println!("format:    {format} · day {day}");
    println!(
        "rows:      {} ({} records, {} rejected, {} duplicates)",
        stats.lines, stats.rows, stats.rejected, stats.duplicates
    );
    if shown.is_empty() {
        println!("\nno records");
    } else {
        let table = arrow::util::pretty::pretty_format_batches(&shown)
            .map_err(|err| Error::io("cannot format rows", std::io::Error::other(err)))?;
        println!("\nfirst {shown_rows} of {} records:\n{table}", stats.rows);
    }
    for reject in &rejects {
        println!(
            "  row {}: {}\n    {}",
            reject.line,
            escaped(&reject.reason),
            escaped(&reject.raw)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads `reader` to its end: the first `limit` rows (escaped, as the table shows them), how
/// many those are, and every rejected line.
fn read_to_end<R: std::io::Read>(
    reader: &mut BatchReader<R>,
    limit: usize,
) -> Result<(Vec<RecordBatch>, usize, Vec<engine::parser::Reject>)> {
    let mut shown = Vec::new();
    let mut shown_rows = 0;
    let mut rejects = Vec::new();
    for decoded in reader.by_ref() {
        match decoded? {
            Decoded::Rejects(more) => rejects.extend(more),
            Decoded::Batch(batch) => {
                if shown_rows < limit {
                    let take = (limit - shown_rows).min(batch.num_rows());
                    shown.push(escaped_batch(&batch.slice(0, take))?);
                    shown_rows += take;
                }
            }
        }
    }
    Ok((shown, shown_rows, rejects))
}

/// `text` with every control character written as Rust writes it escaped (`\u{1b}`, `\r`),
/// so that it shows on a terminal instead of acting on it.
fn escaped(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_debug().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// `batch` with every column as the text the table shows, escaped.
fn escaped_batch(batch: &RecordBatch) -> Result<RecordBatch> {
    let failed =
        |err: arrow::error::ArrowError| Error::io("cannot format rows", std::io::Error::other(err));
    let options = FormatOptions::default();
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let formatter = ArrayFormatter::try_new(column.as_ref(), &options).map_err(failed)?;
        let text: StringArray = (0..column.len())
            .map(|row| {
                (!column.is_null(row))
                    .then(|| escaped(&formatter.value(row).to_string()).into_owned())
            })
            .collect();
        fields.push(Field::new(
            escaped(field.name()).into_owned(),
            DataType::Utf8,
            true,
        ));
        columns.push(Arc::new(text));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_other_text_is_kept() {
        assert_eq!(escaped("국민 카드; ok"), "국민 카드; ok");
        assert_eq!(
            escaped("a\x1b[2J\x07\r\n\tb\u{9b}"),
            "a\\u{1b}[2J\\u{7}\\r\\n\\tb\\u{9b}"
        );
    }
}
