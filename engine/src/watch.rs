//! `engine watch`: the pipeline left running beside Toss's uploads. Each wake loads whatever is
//! new for today and, until the previous day's full 00:05 file has been loaded, for yesterday
//! (a source whose past days keep changing, the REST API, names its own window instead);
//! between wakes it sleeps.
//!
//! What keeps a watcher trustworthy is how it fails. A cycle that fails because something
//! outside is down (the FTP server, the database, the webhook receiver) is logged and tried
//! again — sooner than the next wake, with backoff, never later — and the watcher lives on. A
//! fault that no retry can mend (a plugin that traps, a bad configuration) stops it with the
//! error, so a supervisor (systemd) shows it instead of a log filling with the same failure.
//! A stop signal rolls back the file in flight and ends the watcher with success.

use crate::dates::{DateSelection, kst};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::schedule::Schedule;
use crate::state::{StateStore, Watcher};
use crate::summary::FileOutcome;
use chrono::{DateTime, FixedOffset, NaiveDate};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The first retry after a failed cycle; doubled each further failure, capped by the next wake.
const RETRY_BASE: Duration = Duration::from_secs(30);

pub struct Watch {
    pub pipeline: Pipeline,
    pub schedule: Schedule,
    pub state_dir: PathBuf,
    pub metrics: Arc<Metrics>,
    /// A reconcile to run after each successful cycle (`engine watch --reconcile`).
    pub reconcile: Option<crate::reconcile::ReconcileConfig>,
}

fn now() -> DateTime<FixedOffset> {
    chrono::Utc::now().with_timezone(&kst())
}

fn stamp(at: DateTime<FixedOffset>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Watch {
    /// Runs until `stop` is cancelled (Ok) or a fault that retrying cannot mend (Err).
    pub async fn run(mut self, stop: &CancellationToken) -> Result<()> {
        let name = self.pipeline.name().to_owned();
        std::fs::create_dir_all(&self.state_dir).map_err(|err| {
            Error::io(
                format!("cannot create state_dir {}", self.state_dir.display()),
                err,
            )
        })?;
        let store = StateStore::open(&self.state_dir)?;
        let mut watcher = Watcher {
            pid: std::process::id(),
            started_at: stamp(now()),
            next_wake: None,
        };
        tracing::info!(pipeline = %name, "watching; the first cycle runs now");
        let outcome = self.cycles(&store, &mut watcher, stop).await;
        if let Err(err) = store.forget_watcher(&name) {
            tracing::warn!("{err}");
        }
        outcome
    }

    /// Runs the reconcile, if there is one, and publishes what it found. A reconcile that
    /// fails (a database down) is logged and counted, and loading goes on.
    async fn reconcile_after_cycle(&self) {
        let Some(config) = &self.reconcile else {
            return;
        };
        let name = config.reconcile.name.to_string();
        match crate::reconcile::run(config, &crate::reconcile::RunOptions::default()).await {
            Ok(outcome) => {
                tracing::info!(
                    reconcile = %name,
                    from = %outcome.from,
                    to = %outcome.to,
                    discrepancies = outcome.discrepancies.len(),
                    report = %outcome.report.display(),
                    "reconciled"
                );
                let counts = outcome
                    .checks
                    .iter()
                    .filter(|check| check.skipped.is_none())
                    .map(|check| (check.kind.clone(), check.count))
                    .collect();
                self.metrics.observe_reconcile(&name, Some(counts));
            }
            Err(err) => {
                tracing::error!(reconcile = %name, "reconcile failed: {err}");
                self.metrics.observe_reconcile(&name, None);
            }
        }
    }

    async fn cycles(
        &mut self,
        store: &StateStore,
        watcher: &mut Watcher,
        stop: &CancellationToken,
    ) -> Result<()> {
        let name = self.pipeline.name().to_owned();
        // The latest day whose full file is known to be loaded; yesterday is looked at until
        // then (after a restart, once more: an unchanged file costs only a listing).
        let mut closed: Option<NaiveDate> = None;
        let mut failures: u32 = 0;
        let mut wake = now();
        loop {
            watcher.next_wake = Some(stamp(wake));
            store.record_watcher(&name, watcher)?;
            self.metrics.set_next_wake(wake.into());
            let pause = (wake - now()).to_std().unwrap_or(Duration::ZERO);
            if !pause.is_zero() {
                tracing::info!(pipeline = %name, next_wake = %stamp(wake), "sleeping");
            }
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = tokio::time::sleep(pause) => {}
            }

            let started = now();
            let today = started.date_naive();
            let yesterday = today.pred_opt().unwrap_or(today);
            let with_yesterday = closed.is_none_or(|day| day < yesterday);
            let from = match self.pipeline.watch_days() {
                // A source whose past days keep changing: its whole refresh window.
                Some(days) => today - chrono::Duration::days(i64::from(days)),
                None if with_yesterday => yesterday,
                None => today,
            };
            let dates = DateSelection::Range { from, to: today };
            tracing::info!(pipeline = %name, dates = %dates, "cycle");
            let succeeded = match self.pipeline.run(dates, stop).await {
                Ok(summary) => {
                    self.metrics.observe(&summary);
                    print!("{summary}");
                    if summary.interrupted {
                        return Ok(());
                    }
                    if let Some(fatal) = summary.files.iter().find(|file| file.fatal) {
                        let message = match &fatal.outcome {
                            FileOutcome::Failed(message) => message.clone(),
                            other => other.label().to_owned(),
                        };
                        return Err(Error::WatchStopped {
                            file: fatal.name.clone(),
                            message,
                        });
                    }
                    summary.succeeded()
                }
                Err(err) if err.is_fatal() => return Err(err),
                Err(err) => {
                    self.metrics.observe_failed_cycle();
                    tracing::error!(pipeline = %name, "cycle failed: {err}");
                    false
                }
            };
            let scheduled = self.schedule.next_after(now());
            if succeeded {
                self.reconcile_after_cycle().await;
                failures = 0;
                if with_yesterday && started >= self.schedule.yesterday_final_after(today) {
                    closed = Some(yesterday);
                }
                wake = scheduled;
            } else {
                failures += 1;
                let retry = now()
                    + chrono::Duration::from_std(crate::remote::retry::backoff(
                        RETRY_BASE,
                        failures - 1,
                    ))
                    .unwrap_or_default();
                wake = retry.min(scheduled);
                tracing::warn!(
                    pipeline = %name,
                    failures,
                    retry_at = %stamp(wake),
                    "the cycle did not load everything; trying again"
                );
            }
        }
    }
}
