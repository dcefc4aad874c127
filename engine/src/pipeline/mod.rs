//! A pipeline run: list the source's load units, and for each unit not loaded in this version
//! yet, stream it through the parser and the transforms into every sink, then record it as
//! loaded (`load.rs` has the order of commits that makes re-loads exact, `parse.rs` the parsing
//! thread).
//!
//! Nothing here knows a format, a source or a sink by name: the source says what a unit is and
//! when it is final, the `[parser]` format how its bytes read and which columns identify a
//! record, and each sink how it stores what it gets.

mod load;
mod parse;

use crate::config::PipelineConfig;
use crate::dates::DateSelection;
use crate::error::{Error, Result};
use crate::parser::ParserConfig;
use crate::rejects::RejectsFile;
use crate::sinks::{Held, Holding, Sink, SinkContext};
use crate::sources::Source;
use crate::state::{LoadedVersion, PipelineLock, StateStore};
use crate::summary::{FileOutcome, FileReport, RunSummary};
use crate::transforms::{Transform, TransformContext};
use crate::unit::LoadUnit;
use futures::StreamExt;
use load::LoadContext;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

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
    /// Builds every stage of `config`; an error in the file names its key's line.
    pub fn build(config: &PipelineConfig) -> Result<Self> {
        Self::build_stages(config).map_err(|err| config.locate(err))
    }

    fn build_stages(config: &PipelineConfig) -> Result<Self> {
        let state_dir = config.pipeline.state_dir.to_path();
        let context = TransformContext {
            state_dir: &state_dir,
        };
        let transforms = config
            .transforms
            .iter()
            .map(|transform| transform.build(&context))
            .collect::<Result<Vec<_>>>()?;
        let record_key = config.parser.format().record_key();
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
                    record_key: &record_key,
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

    /// See [`Source::watch_days`].
    pub fn watch_days(&self) -> Option<u32> {
        self.source.watch_days()
    }

    /// Loads every new or changed unit of the selected dates. When `stop` is cancelled the unit
    /// in flight is rolled back in every sink, no further unit starts, and the summary says
    /// `interrupted`; commits already under way finish first.
    pub async fn run(
        &mut self,
        dates: DateSelection,
        stop: &CancellationToken,
    ) -> Result<RunSummary> {
        self.run_with(dates, &RunOptions::default(), stop).await
    }

    /// [`run`](Self::run), limited to some units or loading them again (see [`RunOptions`]).
    pub async fn run_with(
        &mut self,
        dates: DateSelection,
        options: &RunOptions,
        stop: &CancellationToken,
    ) -> Result<RunSummary> {
        let started = Instant::now();
        let started_at = korea_now();
        crate::private::create_dir_all(&self.state_dir).map_err(|err| {
            Error::io(
                format!("cannot create state_dir {}", self.state_dir.display()),
                err,
            )
        })?;
        let _lock = PipelineLock::acquire(&self.state_dir, &self.name)?;
        let store = StateStore::open(&self.state_dir)?;
        let mut listing = self.source.list(&dates).await?;
        if let Some(only) = &options.only {
            listing.units.retain(|unit| only.contains(&unit.name));
            listing
                .deferred
                .retain(|deferred| only.contains(&deferred.name));
        }
        tracing::info!(
            pipeline = %self.name,
            source = %self.source.describe(),
            dates = %dates,
            files = listing.units.len(),
            "listed"
        );
        let mut summary = RunSummary::new(&self.name, dates, &self.sinks);
        if let Some(only) = &options.only {
            let listed = |name: &String| {
                listing.units.iter().any(|unit| &unit.name == name)
                    || listing
                        .deferred
                        .iter()
                        .any(|deferred| &deferred.name == name)
            };
            for missing in only.iter().filter(|name| !listed(name)) {
                summary.files.push(FileReport::new(
                    missing.clone(),
                    FileOutcome::Failed(format!(
                        "{} lists no such file for {}; check the name (and --date)",
                        self.source.describe(),
                        summary.dates
                    )),
                ));
            }
        }
        for deferred in listing.deferred {
            summary.files.push(FileReport::new(
                deferred.name,
                FileOutcome::Deferred(deferred.reason),
            ));
        }
        // Units whose listed version was loaded before cost nothing more; the rest are fetched,
        // several ahead when the source allows, and loaded one after another in order.
        let mut to_fetch = Vec::new();
        for unit in listing.units {
            match store.loaded(&self.name, &unit.name) {
                Ok(Some(previous))
                    if !options.force && self.is_unchanged(&previous, &unit, options) =>
                {
                    let report = FileReport::new(unit.name.clone(), skipped(&previous));
                    log_report(&report);
                    summary.files.push(report);
                }
                Ok(previous) => to_fetch.push((unit, previous)),
                Err(err) => summary.files.push(FileReport::new(
                    unit.name.clone(),
                    FileOutcome::Failed(err.with_causes()),
                )),
            }
        }
        let source = Arc::clone(&self.source);
        let mut fetches = futures::stream::iter(to_fetch)
            .map(|(unit, previous)| {
                let source = Arc::clone(&source);
                async move {
                    let started = Instant::now();
                    let fetched = source.fetch(&unit).await;
                    (unit, previous, fetched, started)
                }
            })
            .buffered(source.fetch_ahead().max(1));
        let mut loads = LoadContext {
            pipeline: &self.name,
            state_dir: &self.state_dir,
            store: &store,
            source: self.source.as_ref(),
            format: self.parser.format(),
            transforms: &mut self.transforms,
            sinks: &self.sinks,
            stop,
        };
        loop {
            let next = tokio::select! {
                biased;
                _ = stop.cancelled() => None,
                next = fetches.next() => next,
            };
            let Some((unit, previous, fetched, started)) = next else {
                break;
            };
            let mut report = match fetched {
                Err(Error::Deferred { reason, .. }) => {
                    FileReport::new(unit.name.clone(), FileOutcome::Deferred(reason))
                }
                Err(err) => {
                    let mut report =
                        FileReport::new(unit.name.clone(), FileOutcome::Failed(err.with_causes()));
                    report.retryable = err.is_retryable();
                    report.fatal = err.is_fatal();
                    report
                }
                Ok(fetched) => match &previous {
                    Some(previous)
                        if !options.force
                            && fetched.content_hash.is_some()
                            && fetched.content_hash == previous.version.content_hash =>
                    {
                        FileReport::new(unit.name.clone(), skipped(previous))
                    }
                    _ => loads.load(&unit, fetched, &mut summary.sink_rows).await,
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

    /// Whether every sink still holds what the state store says it committed, unit by unit
    /// (`engine status --verify`).
    pub async fn verify_sinks(&self) -> Result<Vec<Verification>> {
        let store = StateStore::open(&self.state_dir)?;
        let loaded = store.loaded_files(&self.name)?;
        let committed = store.sink_files(&self.name)?;
        let mut found = Vec::new();
        for file in &loaded {
            for sink in &self.sinks {
                let Some(held) = committed.iter().find(|held| {
                    held.sink == sink.name()
                        && held.source_file == file.source_file
                        && Some(&held.content_hash) == file.content_hash.as_ref()
                }) else {
                    continue;
                };
                let holding = sink
                    .verify(&Held {
                        unit: held.source_file.clone(),
                        rows: held.rows,
                        location: held.location.clone(),
                    })
                    .await?;
                found.push(Verification {
                    unit: file.source_file.clone(),
                    sink: sink.name().to_owned(),
                    holding,
                });
            }
        }
        Ok(found)
    }

    /// Whether a unit needs no fetch at all: the listing shows the version loaded before, or
    /// the source says what was loaded then is final (unless told to fetch that again).
    fn is_unchanged(
        &self,
        previous: &LoadedVersion,
        unit: &LoadUnit,
        options: &RunOptions,
    ) -> bool {
        if previous.version.same_as(&unit.version) {
            return true;
        }
        !options.refetch
            && chrono::DateTime::parse_from_rfc3339(&previous.loaded_at)
                .is_ok_and(|loaded_at| self.source.is_final(unit, loaded_at))
    }
}

/// Which units a run takes, beyond the dates.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Load the units again even where the state store says this version is loaded (or the
    /// source says it is final): for sinks whose data was deleted or damaged by hand.
    pub force: bool,
    /// Fetch again what the source says is final (`engine run --refetch`; a fetch with the
    /// content loaded before is still skipped): for a day the source corrected after it closed.
    pub refetch: bool,
    /// Only these units (by name); a name the source does not list fails the run.
    pub only: Option<BTreeSet<String>>,
}

/// What [`Pipeline::verify_sinks`] found for one unit in one sink.
#[derive(Debug, Clone)]
pub struct Verification {
    pub unit: String,
    pub sink: String,
    pub holding: Holding,
}

/// Now, as RFC 3339 in Korea time: how the state store writes times.
fn korea_now() -> String {
    chrono::Utc::now()
        .with_timezone(&crate::dates::kst())
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
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
