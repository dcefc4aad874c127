//! A pipeline run: list the source, and for each file not loaded in this version yet, stream it
//! through the parser and the transforms into every sink, then record it as loaded.
//!
//! The order of commits is the whole of the re-load guarantee. Sinks write under temporary
//! names (or in open transactions) while the file streams; the run then checks that the source
//! file did not change while it was read, commits the rejects and every sink, and only then
//! records the version in the state store. A crash anywhere before that record makes the next
//! run load the file again, which replaces what a sink may already hold; a crash after it finds
//! the file loaded. Either way each record ends up once in every sink.
//!
//! Parsing runs on a blocking thread and hands batches to the sinks through a channel of two
//! batches, so reading, parsing and encoding overlap and memory stays bounded by the batch size.

use crate::config::{ParserConfig, PipelineConfig};
use crate::dates::DateSelection;
use crate::error::{Error, Result};
use crate::parser::{FileContext, ParseStats, ParserOptions, TossDecoder, toss_schema};
use crate::rejects::RejectsFile;
use crate::sinks::{CommittedVersion, LoadUnit, Sink, SinkContext, SinkWriter};
use crate::sources::{AfterRead, Fetched, Source, SourceFile};
use crate::state::{LoadedVersion, PipelineLock, StateStore};
use crate::summary::{FileOutcome, FileReport, RunSummary};
use crate::transforms::{Transform, TransformContext};
use arrow::array::RecordBatch;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use xxhash_rust::xxh3::Xxh3;

/// Bytes read from a source file at a time.
const READ_CHUNK: usize = 1 << 20;

/// A pipeline built from its file, ready to run.
pub struct Pipeline {
    name: String,
    state_dir: PathBuf,
    source: Arc<dyn Source>,
    parser: ParserConfig,
    transforms: Vec<Box<dyn Transform>>,
    sinks: Vec<Box<dyn Sink>>,
}

impl Pipeline {
    /// Builds every stage; configuration problems surface here, before any data moves.
    pub fn build(config: &PipelineConfig) -> Result<Self> {
        let state_dir = config.pipeline.state_dir.to_path();
        let context = TransformContext {
            state_dir: &state_dir,
        };
        let transforms = config
            .transforms
            .iter()
            .map(|transform| transform.build(&context))
            .collect::<Result<Vec<_>>>()?;
        Ok(Pipeline {
            name: config.pipeline.name.to_string(),
            source: config.source.build()?,
            parser: config.parser.clone(),
            transforms,
            sinks: crate::sinks::build_all(
                &config.sinks,
                &SinkContext {
                    pipeline: config.pipeline.name.as_str(),
                    state_dir: &state_dir,
                },
            )?,
            state_dir,
        })
    }

    /// The transforms' names, in order.
    pub fn transform_names(&self) -> Vec<String> {
        self.transforms
            .iter()
            .map(|t| t.name().to_owned())
            .collect()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The source, as named in messages.
    pub fn source_description(&self) -> String {
        self.source.describe()
    }

    /// Loads every new or changed file of the selected dates. When `stop` is cancelled the file
    /// in flight is rolled back in every sink, no further file starts, and the summary says
    /// `interrupted`; commits already under way finish first.
    pub async fn run(
        &mut self,
        dates: DateSelection,
        stop: &CancellationToken,
    ) -> Result<RunSummary> {
        let started = Instant::now();
        let started_at = korea_now();
        std::fs::create_dir_all(&self.state_dir).map_err(|err| {
            Error::io(
                format!("cannot create state_dir {}", self.state_dir.display()),
                err,
            )
        })?;
        let _lock = PipelineLock::acquire(&self.state_dir, &self.name)?;
        let store = StateStore::open(&self.state_dir)?;
        let listing = self.source.list(&dates).await?;
        tracing::info!(
            pipeline = %self.name,
            source = %self.source.describe(),
            dates = %dates,
            files = listing.files.len(),
            "listed"
        );
        let mut summary = RunSummary::new(&self.name, dates, &self.sinks);
        for deferred in listing.deferred {
            summary.files.push(FileReport::new(
                deferred.name,
                FileOutcome::Deferred(deferred.reason),
            ));
        }
        // Files whose listed version was loaded before cost nothing more; the rest are fetched,
        // several ahead when the source allows, and loaded one after another in order.
        let mut to_fetch = Vec::new();
        for file in listing.files {
            match store.loaded(&self.name, &file.name) {
                Ok(Some(previous)) if is_unchanged(&previous, &file) => {
                    let report = FileReport::new(file.name.clone(), skipped(&previous));
                    log_report(&report);
                    summary.files.push(report);
                }
                Ok(previous) => to_fetch.push((file, previous)),
                Err(err) => summary.files.push(FileReport::new(
                    file.name.clone(),
                    FileOutcome::Failed(err.to_string()),
                )),
            }
        }
        let source = Arc::clone(&self.source);
        let mut fetches = futures::stream::iter(to_fetch)
            .map(|(file, previous)| {
                let source = Arc::clone(&source);
                async move {
                    let started = Instant::now();
                    let fetched = source.fetch(&file).await;
                    (file, previous, fetched, started)
                }
            })
            .buffered(source.fetch_ahead().max(1));
        loop {
            let next = tokio::select! {
                biased;
                _ = stop.cancelled() => None,
                next = fetches.next() => next,
            };
            let Some((file, previous, fetched, started)) = next else {
                break;
            };
            let mut report = match fetched {
                Err(Error::Deferred { reason, .. }) => {
                    FileReport::new(file.name.clone(), FileOutcome::Deferred(reason))
                }
                Err(err) => {
                    let mut report =
                        FileReport::new(file.name.clone(), FileOutcome::Failed(err.to_string()));
                    report.retryable = err.is_retryable();
                    report.fatal = err.is_fatal();
                    report
                }
                Ok(fetched) => match &previous {
                    Some(previous)
                        if fetched.content_hash.is_some()
                            && fetched.content_hash == previous.version.content_hash =>
                    {
                        FileReport::new(file.name.clone(), skipped(previous))
                    }
                    _ => {
                        self.load_file(&store, &file, fetched, &mut summary, stop)
                            .await
                    }
                },
            };
            if matches!(&report.outcome, FileOutcome::Failed(_)) && stop.is_cancelled() {
                report.outcome = FileOutcome::Deferred(
                    "interrupted: rolled back in every sink; the next run loads it".to_owned(),
                );
            }
            report.elapsed = started.elapsed();
            log_report(&report);
            summary.files.push(report);
        }
        summary.interrupted = stop.is_cancelled();
        summary.rejects_dir = Some(RejectsFile::folder(&self.state_dir, &self.name));
        summary.elapsed = started.elapsed();
        store.record_run(&self.name, &summary.to_record(started_at, korea_now()))?;
        Ok(summary)
    }

    async fn load_file(
        &mut self,
        store: &StateStore,
        file: &SourceFile,
        fetched: Fetched,
        summary: &mut RunSummary,
        stop: &CancellationToken,
    ) -> FileReport {
        match self
            .load_new_version(store, file, fetched, summary, stop)
            .await
        {
            Ok(report) => report,
            Err((err, stats)) => {
                let mut report =
                    FileReport::new(file.name.clone(), FileOutcome::Failed(err.to_string()));
                report.stats = stats;
                report.retryable = err.is_retryable();
                report.fatal = err.is_fatal();
                report
            }
        }
    }

    async fn load_new_version(
        &mut self,
        store: &StateStore,
        file: &SourceFile,
        fetched: Fetched,
        summary: &mut RunSummary,
        stop: &CancellationToken,
    ) -> std::result::Result<FileReport, (Error, ParseStats)> {
        let no_stats = |err| (err, ParseStats::default());
        let unit = LoadUnit {
            pipeline: self.name.clone(),
            source_file: file.name.clone(),
            mid: file.mid.clone(),
            kind: file.kind,
            trxdate: file.trxdate,
        };
        let mut schema = toss_schema();
        for transform in &mut self.transforms {
            schema = tokio::task::block_in_place(|| transform.output_schema(&schema)).map_err(
                |failure| {
                    no_stats(Error::Plugin {
                        plugin: transform.name().to_owned(),
                        context: format!(
                            "failed on {} while announcing its output schema",
                            file.name
                        ),
                        message: failure.0,
                    })
                },
            )?;
        }
        let reader = fetched.reader;
        let rejects =
            RejectsFile::create(&self.state_dir, &self.name, &file.name).map_err(no_stats)?;

        let mut writers: Vec<Box<dyn SinkWriter>> = Vec::with_capacity(self.sinks.len());
        for sink in &self.sinks {
            match sink.begin(&unit, schema.clone()).await {
                Ok(writer) => writers.push(writer),
                Err(err) => {
                    abort_all(writers).await;
                    rejects.discard();
                    return Err(no_stats(err));
                }
            }
        }

        let progress = file_progress(file);
        let (batches_out, mut batches_in) = mpsc::channel::<RecordBatch>(2);
        let job = ParseJob {
            reader,
            options: ParserOptions {
                delimiter: self.parser.delimiter,
                encoding: self.parser.encoding,
                batch_rows: self.parser.batch_rows,
            },
            context: FileContext {
                record_kind: file.kind,
                trxdate: file.trxdate,
                source_file: file.origin.clone(),
            },
            rejects,
            max_rejects: self.parser.max_rejects,
            progress: progress.clone(),
        };
        let parsing = tokio::task::spawn_blocking(move || job.run(batches_out));

        let mut failure: Option<Error> = None;
        let mut batch_number = 0u64;
        'batches: loop {
            let next = tokio::select! {
                biased;
                _ = stop.cancelled() => {
                    failure = Some(Error::Interrupted);
                    break 'batches;
                }
                next = batches_in.recv() => next,
            };
            let Some(batch) = next else {
                break 'batches;
            };
            let pieces = if self.transforms.is_empty() {
                vec![batch]
            } else {
                slices(&batch, PLUGIN_CALL_ROWS)
            };
            for mut piece in pieces {
                batch_number += 1;
                for transform in &mut self.transforms {
                    match tokio::task::block_in_place(|| transform.transform(piece)) {
                        Ok(next) => piece = next,
                        Err(plugin_failure) => {
                            failure = Some(Error::Plugin {
                                plugin: transform.name().to_owned(),
                                context: format!("failed on {}, batch {batch_number}", file.name),
                                message: plugin_failure.0,
                            });
                            break 'batches;
                        }
                    }
                }
                for writer in &mut writers {
                    if let Err(err) = writer.write(&piece).await {
                        failure = Some(err);
                        break 'batches;
                    }
                }
            }
        }
        drop(batches_in);
        progress.finish_and_clear();

        let parsed = match parsing.await {
            Ok(parsed) => parsed,
            Err(join_error) => Err(Box::new(ParseFailure {
                error: Error::Input {
                    file: file.name.clone(),
                    message: format!("the parser stopped unexpectedly: {join_error}"),
                },
                stats: ParseStats::default(),
                rejects: None,
            })),
        };
        let parsed = match (parsed, failure) {
            (Ok(parsed), None) => parsed,
            (Ok(parsed), Some(err)) => {
                parsed.rejects.discard();
                abort_all(writers).await;
                return Err((err, parsed.stats));
            }
            (Err(failed), sink_error) => {
                abort_all(writers).await;
                // Too many rejects: keep them, so the user can see what is wrong with the file.
                if let Some(rejects) = failed.rejects {
                    let _ = rejects.commit();
                }
                // A sink error makes the parser stop early; report the sink's error then.
                let error = sink_error.unwrap_or(failed.error);
                return Err((error, failed.stats));
            }
        };

        match self.source.after_read(file).await {
            Ok(AfterRead::Unchanged) => {}
            Ok(AfterRead::Changed(reason)) => {
                abort_all(writers).await;
                parsed.rejects.discard();
                let mut report = FileReport::new(file.name.clone(), FileOutcome::Deferred(reason));
                report.stats = parsed.stats;
                return Ok(report);
            }
            Err(err) => {
                abort_all(writers).await;
                parsed.rejects.discard();
                return Err((err, parsed.stats));
            }
        }

        let stats = parsed.stats;
        let fail = |err| (err, stats.clone());
        parsed.rejects.commit().map_err(fail)?;
        let committed = CommittedVersion {
            content_hash: parsed.content_hash.clone(),
            rows: stats.rows,
        };
        let mut written = Vec::with_capacity(writers.len());
        let mut writers = writers.into_iter();
        let mut sinks = self.sinks.iter();
        while let (Some(writer), Some(sink)) = (writers.next(), sinks.next()) {
            match writer.commit(&committed).await {
                Ok(rows) => {
                    written.push(rows);
                    store
                        .record_sink_commit(
                            &self.name,
                            sink.name(),
                            &file.name,
                            &committed.content_hash,
                            rows,
                            &korea_now(),
                        )
                        .map_err(fail)?;
                }
                Err(err) => {
                    abort_all(writers.collect()).await;
                    return Err(fail(err));
                }
            }
        }
        let mut version = file.version.clone();
        version.content_hash = Some(parsed.content_hash);
        store
            .record_loaded(
                &self.name,
                &file.name,
                &LoadedVersion {
                    version,
                    rows: stats.rows,
                    rejected: stats.rejected,
                    loaded_at: korea_now(),
                },
            )
            .map_err(fail)?;
        for (sink_rows, rows) in summary.sink_rows.iter_mut().zip(written) {
            sink_rows.1 += rows;
        }
        let mut report = FileReport::new(file.name.clone(), FileOutcome::Loaded);
        report.stats = stats;
        report.encoding = parsed.encoding;
        Ok(report)
    }
}

/// Now, as RFC 3339 in Korea time: how the state store writes times.
fn korea_now() -> String {
    chrono::Utc::now()
        .with_timezone(&crate::dates::kst())
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Whether a file needs no fetch at all: the listing shows the version loaded before, or the
/// source cannot list versions (HTTP) and the file was loaded after its business day closed,
/// when Toss's data for that day is final.
fn is_unchanged(previous: &LoadedVersion, file: &SourceFile) -> bool {
    if previous.version.same_as(&file.version) {
        return true;
    }
    let listing_knows_nothing = file.version.size.is_none() && file.version.modified_ns.is_none();
    listing_knows_nothing && loaded_after_day_closed(previous, file.trxdate)
}

/// Toss writes the whole previous day at 00:05 KST; a load after 00:30 the next day saw it.
fn loaded_after_day_closed(previous: &LoadedVersion, trxdate: chrono::NaiveDate) -> bool {
    let Ok(loaded_at) = chrono::DateTime::parse_from_rfc3339(&previous.loaded_at) else {
        return false;
    };
    let closed = trxdate
        .succ_opt()
        .and_then(|next| next.and_hms_opt(0, 30, 0))
        .and_then(|close| close.and_local_timezone(crate::dates::kst()).single());
    closed.is_some_and(|closed| loaded_at >= closed)
}

fn skipped(previous: &LoadedVersion) -> FileOutcome {
    FileOutcome::Skipped(format!(
        "unchanged since its load at {} ({} rows)",
        previous
            .loaded_at
            .get(..16)
            .unwrap_or(&previous.loaded_at)
            .replace('T', " "),
        previous.rows
    ))
}

fn log_report(report: &FileReport) {
    match &report.outcome {
        FileOutcome::Failed(message) => tracing::error!(file = %report.name, "{message}"),
        outcome => tracing::info!(
            file = %report.name,
            rows = report.stats.rows,
            rejected = report.stats.rejected,
            "{}",
            outcome.label()
        ),
    }
}

async fn abort_all(writers: Vec<Box<dyn SinkWriter>>) {
    for writer in writers {
        writer.abort().await;
    }
}

/// A progress bar over the file's bytes, drawn only on a terminal.
fn file_progress(file: &SourceFile) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        file.version.size,
        indicatif::ProgressDrawTarget::stderr_with_hz(10),
    );
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:30} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("the template is valid")
        .progress_chars("=> "),
    );
    bar.set_message(file.name.clone());
    bar
}

/// Rows a plugin gets per call. A plugin's WebAssembly memory grows to hold its largest call
/// (the batch in, the plugin's own copy of it, the batch out) and never shrinks, so calls smaller
/// than the parser's batches keep a plugin pipeline's memory near the engine's own. Measured with
/// `merchant-mapping` on 5 million rows and 2 cores: peak RSS 288 MiB at 32 768 rows a call,
/// 223 at 16 384, 200 at 8 192 and 179 at 4 096, with no difference in time beyond the noise.
const PLUGIN_CALL_ROWS: usize = 4096;

/// `batch` as consecutive slices of at most `rows` rows (no data is copied).
fn slices(batch: &RecordBatch, rows: usize) -> Vec<RecordBatch> {
    let total = batch.num_rows();
    if total <= rows {
        return vec![batch.clone()];
    }
    (0..total)
        .step_by(rows)
        .map(|start| batch.slice(start, rows.min(total - start)))
        .collect()
}

/// Everything the parsing thread needs; it owns the rejects file while it runs.
struct ParseJob {
    reader: Box<dyn Read + Send>,
    options: ParserOptions,
    context: FileContext,
    rejects: RejectsFile,
    max_rejects: u64,
    progress: ProgressBar,
}

struct Parsed {
    stats: ParseStats,
    content_hash: String,
    rejects: RejectsFile,
    encoding: Option<&'static str>,
}

struct ParseFailure {
    error: Error,
    stats: ParseStats,
    rejects: Option<RejectsFile>,
}

impl ParseJob {
    fn run(
        self,
        batches: mpsc::Sender<RecordBatch>,
    ) -> std::result::Result<Parsed, Box<ParseFailure>> {
        let ParseJob {
            mut reader,
            options,
            context,
            mut rejects,
            max_rejects,
            progress,
        } = self;
        let source_file = context.source_file.clone();
        let mut decoder = TossDecoder::new(options, context);
        let mut hasher = Xxh3::new();
        let mut buffer = vec![0u8; READ_CHUNK];
        let mut first_reject: Option<String> = None;
        let mut finished = false;
        loop {
            let read = if finished {
                0
            } else {
                match reader.read(&mut buffer) {
                    Ok(read) => read,
                    Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(err) => {
                        return Err(Box::new(ParseFailure {
                            error: Error::io(format!("cannot read {source_file}"), err),
                            stats: decoder.stats().clone(),
                            rejects: {
                                rejects.discard();
                                None
                            },
                        }));
                    }
                }
            };
            if read == 0 {
                decoder.finish();
                finished = true;
            } else {
                hasher.update(&buffer[..read]);
                decoder.decode(&buffer[..read]);
                progress.inc(read as u64);
            }
            if let Some(err) = decoder.take_io_error() {
                rejects.discard();
                return Err(Box::new(ParseFailure {
                    error: Error::io(format!("cannot check {source_file} for duplicates"), err),
                    stats: decoder.stats().clone(),
                    rejects: None,
                }));
            }

            for reject in decoder.take_rejects() {
                if first_reject.is_none() {
                    first_reject = Some(format!("line {}: {}", reject.line, reject.reason));
                }
                let written = rejects.write(&reject);
                if let Err(error) = written {
                    rejects.discard();
                    return Err(Box::new(ParseFailure {
                        error,
                        stats: decoder.stats().clone(),
                        rejects: None,
                    }));
                }
                if rejects.count() > max_rejects {
                    let error = Error::Input {
                        file: source_file.clone(),
                        message: format!(
                            "more than {max_rejects} lines rejected (first: {}); nothing of this \
                             file was loaded. The rejected lines are in {}; fix the file, or raise \
                             max_rejects in [parser] if they are expected",
                            first_reject.as_deref().unwrap_or("?"),
                            rejects.final_path().display()
                        ),
                    };
                    return Err(Box::new(ParseFailure {
                        error,
                        stats: decoder.stats().clone(),
                        rejects: Some(rejects),
                    }));
                }
            }
            while let Some(batch) = decoder.next_batch() {
                if batches.blocking_send(batch).is_err() {
                    // The receiving side stopped (a sink failed); it reports why.
                    rejects.discard();
                    return Err(Box::new(ParseFailure {
                        error: Error::sink("pipeline", "stopped while parsing"),
                        stats: decoder.stats().clone(),
                        rejects: None,
                    }));
                }
            }
            if finished {
                break;
            }
        }
        Ok(Parsed {
            stats: decoder.stats().clone(),
            content_hash: format!("{:032x}", hasher.digest128()),
            rejects,
            encoding: decoder
                .detected_encoding()
                .map(|encoding| encoding.as_str()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Int64Array};
    use std::sync::Arc;

    #[test]
    fn plugin_slices_cover_the_batch_in_order() {
        let values = Int64Array::from_iter_values(0..20_000);
        let batch = RecordBatch::try_from_iter([("n", Arc::new(values) as _)]).unwrap();
        let pieces = slices(&batch, 8192);
        let sizes: Vec<usize> = pieces.iter().map(RecordBatch::num_rows).collect();
        assert_eq!(sizes, [8192, 8192, 3616]);
        let joined = arrow::compute::concat_batches(&batch.schema(), &pieces).unwrap();
        assert_eq!(joined, batch);
        let small = slices(&batch.slice(0, 10), 8192);
        assert_eq!(small.len(), 1);
        assert_eq!(small[0].column(0).len(), 10);
    }
}
