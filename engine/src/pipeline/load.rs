//! One unit's load, from the sinks' `begin` to their commits.
//!
//! The order of commits is the whole of the re-load guarantee. Sinks write under temporary
//! names (or in open transactions) while the unit streams; the load then checks that the source
//! did not change while it was read, commits every sink, then the rejects, and only then records
//! the version in the state store. A crash anywhere before that record makes the next run load
//! the unit again, which replaces what a sink may already hold; a crash after it finds the unit
//! loaded. Either way each record ends up once in every sink.
//!
//! A [`Writers`] value owns the sinks' writers of a load in flight: every way a load can end
//! early gives them up through [`Writers::abort`], so no path forgets one.

use super::parse::{ParseFailure, ParseJob};
use crate::error::{Error, Result};
use crate::parser::{BuildDecoder, ParseStats};
use crate::rejects::RejectsFile;
use crate::sinks::{CommittedVersion, Sink, SinkWriter};
use crate::sources::{AfterRead, Fetched, Source};
use crate::state::{LoadedVersion, SinkFile, StateStore};
use crate::summary::{FileOutcome, FileReport};
use crate::transforms::Transform;
use crate::unit::LoadUnit;
use arrow::array::RecordBatch;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Rows a plugin gets per call. A plugin's WebAssembly memory grows to hold its largest call
/// (the batch in, the plugin's own copy of it, the batch out) and never shrinks, so calls smaller
/// than the parser's batches keep a plugin pipeline's memory near the engine's own
/// (`bench/README.md` has the measurements). The calls of one parser batch are handed to a
/// transform together, so that a stateless plugin can answer several at once.
const PLUGIN_CALL_ROWS: usize = 4096;

/// What a load works with, borrowed from the pipeline.
pub(super) struct LoadContext<'a> {
    pub pipeline: &'a str,
    pub state_dir: &'a std::path::Path,
    pub store: &'a StateStore,
    pub source: &'a dyn Source,
    pub format: &'a dyn BuildDecoder,
    pub transforms: &'a mut [Box<dyn Transform>],
    pub sinks: &'a [Box<dyn Sink>],
    pub stop: &'a CancellationToken,
}

/// A load that did not complete: why, and what was parsed before it stopped.
type Failed = (Error, ParseStats);

/// The sinks' writers of one load in flight.
struct Writers(Vec<Box<dyn SinkWriter>>);

impl Writers {
    /// Begins the unit in every sink; if one refuses, the others are given up again.
    async fn begin(
        sinks: &[Box<dyn Sink>],
        unit: &LoadUnit,
        schema: &arrow::datatypes::SchemaRef,
    ) -> Result<Self> {
        let mut writers = Writers(Vec::with_capacity(sinks.len()));
        for sink in sinks {
            match sink.begin(unit, schema.clone()).await {
                Ok(writer) => writers.0.push(writer),
                Err(err) => {
                    writers.abort().await;
                    return Err(err);
                }
            }
        }
        Ok(writers)
    }

    async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        for writer in &mut self.0 {
            writer.write(batch).await?;
        }
        Ok(())
    }

    /// Discards whatever every writer received.
    async fn abort(self) {
        for writer in self.0 {
            writer.abort().await;
        }
    }
}

impl LoadContext<'_> {
    /// Loads a fetched unit whose version is new, and reports how it went.
    pub(super) async fn load(
        &mut self,
        unit: &LoadUnit,
        fetched: Fetched,
        sink_rows: &mut [(String, u64)],
    ) -> FileReport {
        match self.load_new_version(unit, fetched, sink_rows).await {
            Ok(report) => report,
            Err((err, stats)) => {
                let mut report =
                    FileReport::new(unit.name.clone(), FileOutcome::Failed(err.with_causes()));
                report.stats = stats;
                report.retryable = err.is_retryable();
                report.fatal = err.is_fatal();
                report
            }
        }
    }

    async fn load_new_version(
        &mut self,
        unit: &LoadUnit,
        fetched: Fetched,
        sink_rows: &mut [(String, u64)],
    ) -> std::result::Result<FileReport, Failed> {
        let no_stats = |err| (err, ParseStats::default());
        let mut schema = self.format.schema();
        for transform in self.transforms.iter_mut() {
            schema = tokio::task::block_in_place(|| transform.output_schema(&schema)).map_err(
                |failure| {
                    no_stats(Error::Plugin {
                        plugin: transform.name().to_owned(),
                        context: format!(
                            "failed on {} while announcing its output schema",
                            unit.name
                        ),
                        message: failure.0,
                    })
                },
            )?;
        }
        let decoder = self.format.decoder(unit).map_err(no_stats)?;
        let rejects =
            RejectsFile::create(self.state_dir, self.pipeline, &unit.name).map_err(no_stats)?;
        let mut writers = match Writers::begin(self.sinks, unit, &schema).await {
            Ok(writers) => writers,
            Err(err) => {
                rejects.discard();
                return Err(no_stats(err));
            }
        };

        let progress = unit_progress(unit);
        let (batches_out, mut batches_in) = mpsc::channel::<RecordBatch>(2);
        let job = ParseJob {
            reader: fetched.reader,
            decoder,
            origin: unit.origin.clone(),
            rejects,
            max_rejects: self.format.max_rejects(),
            progress: progress.clone(),
        };
        let parsing = tokio::task::spawn_blocking(move || job.run(batches_out));

        let mut failure: Option<Error> = None;
        let mut batch_number = 0u64;
        'batches: loop {
            let next = tokio::select! {
                biased;
                _ = self.stop.cancelled() => {
                    failure = Some(Error::Interrupted);
                    break 'batches;
                }
                next = batches_in.recv() => next,
            };
            let Some(batch) = next else {
                break 'batches;
            };
            let mut pieces = if self.transforms.is_empty() {
                vec![batch]
            } else {
                slices(&batch, PLUGIN_CALL_ROWS)
            };
            let first_number = batch_number + 1;
            batch_number += pieces.len() as u64;
            for transform in self.transforms.iter_mut() {
                match tokio::task::block_in_place(|| transform.transform_all(pieces)) {
                    Ok(next) => pieces = next,
                    Err((at, plugin_failure)) => {
                        failure = Some(Error::Plugin {
                            plugin: transform.name().to_owned(),
                            context: format!(
                                "failed on {}, batch {}",
                                unit.name,
                                first_number + at as u64
                            ),
                            message: plugin_failure.0,
                        });
                        break 'batches;
                    }
                }
            }
            for piece in &pieces {
                if let Err(err) = writers.write(piece).await {
                    failure = Some(err);
                    break 'batches;
                }
            }
        }
        drop(batches_in);
        progress.finish_and_clear();

        let parsed = match parsing.await {
            Ok(parsed) => parsed,
            Err(join_error) => Err(Box::new(ParseFailure {
                error: Error::Input {
                    file: unit.name.clone(),
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
                writers.abort().await;
                return Err((err, parsed.stats));
            }
            (Err(failed), sink_error) => {
                writers.abort().await;
                // Too many rejects: keep them apart from the loaded version's, so the user can
                // see what is wrong with the file.
                if let Some(rejects) = failed.rejects
                    && let Err(err) = rejects.commit_failed()
                {
                    tracing::warn!("{err}");
                }
                // A sink error makes the parser stop early; report the sink's error then.
                let error = sink_error.unwrap_or(failed.error);
                return Err((error, failed.stats));
            }
        };

        let changed = match self.source.after_read(unit).await {
            Ok(AfterRead::Unchanged) => None,
            Ok(AfterRead::Changed(reason)) => Some(Ok(reason)),
            Err(err) => Some(Err(err)),
        };
        if let Some(changed) = changed {
            writers.abort().await;
            parsed.rejects.discard();
            return match changed {
                Ok(reason) => {
                    let mut report =
                        FileReport::new(unit.name.clone(), FileOutcome::Deferred(reason));
                    report.stats = parsed.stats;
                    Ok(report)
                }
                Err(err) => Err((err, parsed.stats)),
            };
        }

        let stats = parsed.stats;
        let fail = |err| (err, stats.clone());
        let committed = CommittedVersion {
            content_hash: parsed.content_hash.clone(),
            rows: stats.rows,
        };
        let mut written = Vec::with_capacity(writers.0.len());
        let mut pending = writers.0.into_iter();
        let mut sinks = self.sinks.iter();
        while let (Some(writer), Some(sink)) = (pending.next(), sinks.next()) {
            let location = writer.location();
            match writer.commit(&committed).await {
                Ok(rows) => {
                    written.push(rows);
                    self.store
                        .record_sink_commit(
                            self.pipeline,
                            &SinkFile {
                                sink: sink.name().to_owned(),
                                source_file: unit.name.clone(),
                                content_hash: committed.content_hash.clone(),
                                rows,
                                committed_at: super::korea_now(),
                                location,
                            },
                        )
                        .map_err(fail)?;
                }
                Err(err) => {
                    Writers(pending.collect()).abort().await;
                    return Err(fail(err));
                }
            }
        }
        // The rejects describe the version the sinks now hold: they are replaced only once every
        // sink took it, and before the state records it (a crash in between reloads the unit).
        parsed.rejects.commit().map_err(fail)?;
        let mut version = unit.version.clone();
        version.content_hash = Some(parsed.content_hash);
        self.store
            .record_loaded(
                self.pipeline,
                &unit.name,
                &LoadedVersion {
                    version,
                    rows: stats.rows,
                    rejected: stats.rejected,
                    loaded_at: super::korea_now(),
                },
            )
            .map_err(fail)?;
        for (sink_rows, rows) in sink_rows.iter_mut().zip(written) {
            sink_rows.1 += rows;
        }
        let mut report = FileReport::new(unit.name.clone(), FileOutcome::Loaded);
        report.stats = stats;
        report.encoding = parsed.encoding;
        Ok(report)
    }
}

/// A progress bar over the unit's bytes, drawn only on a terminal.
fn unit_progress(unit: &LoadUnit) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        unit.version.size,
        indicatif::ProgressDrawTarget::stderr_with_hz(10),
    );
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:30} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("the template is valid")
        .progress_chars("=> "),
    );
    bar.set_message(unit.name.clone());
    bar
}

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
