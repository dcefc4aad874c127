//! `engine inspect`: one Toss file's detected encoding and delimiter, first rows and rejects.

use super::InspectArgs;
use engine::parser::toss::{FileContext, ParserOptions, TossDecoder};
use engine::parser::{BatchReader, Decoded};
use engine::sources::TossFileName;
use engine::toss::RecordKind;
use engine::{Error, Result};
use std::process::ExitCode;

pub(crate) fn inspect(args: &InspectArgs) -> Result<ExitCode> {
    let file_name = args
        .file
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let from_name = TossFileName::parse(&file_name);
    let kind = match (&args.kind, &from_name) {
        (Some(kind), _) => kind.parse::<RecordKind>().map_err(|_| {
            Error::config("--kind", format!("unknown kind {kind:?}; use AUTH or REV"))
        })?,
        (None, Some(name)) => name.kind,
        (None, None) => {
            return Err(Error::config(
                "--kind",
                format!(
                    "{file_name} is not named {{mid}}_{{AUTH|REV}}_{{yyyymmdd}}.dat; say --kind AUTH or --kind REV"
                ),
            ));
        }
    };
    let trxdate = args
        .date
        .or(from_name.as_ref().map(|name| name.trxdate))
        .unwrap_or_default();
    let file = std::fs::File::open(&args.file)
        .map_err(|err| Error::io(format!("cannot open {}", args.file.display()), err))?;
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
    let mut reader = BatchReader::new(file, Box::new(decoder), args.file.display().to_string());
    let mut shown = Vec::new();
    let mut shown_rows = 0;
    let mut rejects = Vec::new();
    for decoded in reader.by_ref() {
        match decoded? {
            Decoded::Rejects(more) => rejects.extend(more),
            Decoded::Batch(batch) => {
                if shown_rows < args.limit {
                    let take = (args.limit - shown_rows).min(batch.num_rows());
                    shown.push(batch.slice(0, take));
                    shown_rows += take;
                }
            }
        }
    }
    let stats = reader.stats();
    let detected = reader.detected();
    println!("file:      {}", args.file.display());
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
                reject.line, reject.reason, reject.raw
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
