//! The parsing side of a load: a blocking thread reads the unit through the format's decoder,
//! writes its rejects as they come and hands batches to the async side through a channel of two
//! batches, so reading, parsing and encoding overlap and memory stays bounded by the batch size.

use crate::error::Error;
use crate::parser::{BatchReader, Decoded, Decoder, ParseStats};
use crate::rejects::RejectsFile;
use arrow::array::RecordBatch;
use indicatif::ProgressBar;
use std::io::Read;
use tokio::sync::mpsc;

/// Everything the parsing thread needs; it owns the rejects file while it runs.
pub(super) struct ParseJob {
    pub reader: Box<dyn Read + Send>,
    pub decoder: Box<dyn Decoder>,
    /// Where the unit's records came from, as named in messages.
    pub origin: String,
    pub rejects: RejectsFile,
    pub max_rejects: u64,
    pub progress: ProgressBar,
}

/// A unit read to its end.
pub(super) struct Parsed {
    pub stats: ParseStats,
    pub content_hash: String,
    pub rejects: RejectsFile,
    pub encoding: Option<&'static str>,
}

/// Why a unit could not be read to its end.
pub(super) struct ParseFailure {
    pub error: Error,
    pub stats: ParseStats,
    /// The rejects written so far, when they are worth keeping: with too many rejected lines,
    /// the user must see what is wrong with the file.
    pub rejects: Option<RejectsFile>,
}

impl ParseJob {
    pub(super) fn run(
        self,
        batches: mpsc::Sender<RecordBatch>,
    ) -> Result<Parsed, Box<ParseFailure>> {
        let ParseJob {
            reader,
            decoder,
            origin,
            mut rejects,
            max_rejects,
            progress,
        } = self;
        let mut reader = BatchReader::new(reader, decoder, origin.clone())
            .on_read(move |bytes| progress.inc(bytes));
        let mut first_reject: Option<String> = None;
        while let Some(decoded) = reader.next() {
            let failed = |error, rejects: Option<RejectsFile>, reader: &BatchReader<_>| {
                Err(Box::new(ParseFailure {
                    error,
                    stats: reader.stats().clone(),
                    rejects,
                }))
            };
            match decoded {
                Err(error) => {
                    rejects.discard();
                    return failed(error, None, &reader);
                }
                Ok(Decoded::Rejects(lines)) => {
                    for reject in lines {
                        if first_reject.is_none() {
                            first_reject = Some(format!("line {}: {}", reject.line, reject.reason));
                        }
                        if let Err(error) = rejects.write(&reject) {
                            rejects.discard();
                            return failed(error, None, &reader);
                        }
                        if rejects.count() > max_rejects {
                            let error = Error::Input {
                                file: origin.clone(),
                                message: format!(
                                    "more than {max_rejects} lines rejected (first: {}); nothing \
                                     of this file was loaded. The rejected lines are in {}; fix \
                                     the file, or raise max_rejects in [parser] if they are \
                                     expected",
                                    first_reject.as_deref().unwrap_or("?"),
                                    rejects.failed_path().display()
                                ),
                            };
                            return failed(error, Some(rejects), &reader);
                        }
                    }
                }
                Ok(Decoded::Batch(batch)) => {
                    if batches.blocking_send(batch).is_err() {
                        // The receiving side stopped (a sink failed); it reports why.
                        rejects.discard();
                        let error = Error::sink("pipeline", "stopped while parsing");
                        return failed(error, None, &reader);
                    }
                }
            }
        }
        let stats = reader.stats();
        if stats.rejected > stats.rows {
            let error = Error::Input {
                file: origin.clone(),
                message: format!(
                    "{} of its {} lines were rejected and only {} became rows (first: {}); a \
                     file that is mostly rejected is damaged or not in this format, so nothing of \
                     it was loaded. The rejected lines are in {}",
                    stats.rejected,
                    stats.lines - stats.blank,
                    stats.rows,
                    first_reject.as_deref().unwrap_or("?"),
                    rejects.failed_path().display()
                ),
            };
            return Err(Box::new(ParseFailure {
                error,
                stats: stats.clone(),
                rejects: Some(rejects),
            }));
        }
        Ok(Parsed {
            stats: reader.stats().clone(),
            content_hash: reader.content_hash(),
            rejects,
            encoding: reader.detected().encoding,
        })
    }
}
