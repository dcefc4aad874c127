//! Health for operators of `engine watch`: Prometheus metrics over HTTP (`--metrics-addr`).
//! Prometheus's text format is what monitoring stacks already scrape (and Grafana Agent,
//! Datadog and VictoriaMetrics read it too), so nothing new has to be learnt to alert on
//! "no successful load for an hour" or "rejects are rising".
//!
//! The server answers `GET /metrics` and nothing else; it needs no framework.

use crate::error::{Error, Result};
use crate::summary::{FileOutcome, RunSummary};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// Counters and gauges of one watched pipeline.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    pipeline: String,
    runs: BTreeMap<&'static str, u64>,
    files: BTreeMap<String, u64>,
    rows: BTreeMap<String, u64>,
    rejected: u64,
    last_run: Option<f64>,
    last_success: Option<f64>,
    next_wake: Option<f64>,
    consecutive_failures: u64,
    reconcile: Option<ReconcileGauges>,
}

/// What the last reconcile after a cycle found.
#[derive(Debug, Default)]
struct ReconcileGauges {
    name: String,
    /// Discrepancies per check that ran (0 included), from the last run that finished.
    counts: BTreeMap<String, u64>,
    runs: BTreeMap<&'static str, u64>,
    last_run: Option<f64>,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs_f64())
        .unwrap_or_default()
}

impl Metrics {
    pub fn new(pipeline: &str) -> Arc<Metrics> {
        Arc::new(Metrics {
            inner: Mutex::new(Counters {
                pipeline: pipeline.to_owned(),
                ..Counters::default()
            }),
        })
    }

    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a finished run.
    pub fn observe(&self, summary: &RunSummary) {
        let mut counters = self.counters();
        let outcome = if summary.interrupted {
            "interrupted"
        } else if summary.succeeded() {
            "succeeded"
        } else {
            "failed"
        };
        *counters.runs.entry(outcome).or_default() += 1;
        for file in &summary.files {
            *counters
                .files
                .entry(file.outcome.label().to_ascii_lowercase())
                .or_default() += 1;
            if matches!(file.outcome, FileOutcome::Loaded) {
                counters.rejected += file.stats.rejected;
            }
        }
        for (sink, rows) in &summary.sink_rows {
            *counters.rows.entry(sink.clone()).or_default() += rows;
        }
        let now = unix_now();
        counters.last_run = Some(now);
        if outcome == "succeeded" {
            counters.last_success = Some(now);
            counters.consecutive_failures = 0;
        } else if outcome == "failed" {
            counters.consecutive_failures += 1;
        }
    }

    /// Counts a cycle that failed before it could load anything (the source unreachable).
    pub fn observe_failed_cycle(&self) {
        let mut counters = self.counters();
        *counters.runs.entry("failed").or_default() += 1;
        counters.last_run = Some(unix_now());
        counters.consecutive_failures += 1;
    }

    /// Records a reconcile run after a cycle: `found` is each check's discrepancy count, or
    /// `None` when the reconcile failed (the counts of the last finished run stay).
    pub fn observe_reconcile(&self, name: &str, found: Option<Vec<(String, u64)>>) {
        let mut counters = self.counters();
        let gauges = counters
            .reconcile
            .get_or_insert_with(ReconcileGauges::default);
        gauges.name = name.to_owned();
        gauges.last_run = Some(unix_now());
        let outcome = match found {
            None => "failed",
            Some(counts) => {
                let balanced = counts.iter().all(|(_, count)| *count == 0);
                gauges.counts = counts.into_iter().collect();
                if balanced {
                    "balanced"
                } else {
                    "discrepancies"
                }
            }
        };
        *gauges.runs.entry(outcome).or_default() += 1;
    }

    pub fn set_next_wake(&self, at: SystemTime) {
        self.counters().next_wake = at
            .duration_since(UNIX_EPOCH)
            .ok()
            .map(|elapsed| elapsed.as_secs_f64());
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let counters = self.counters();
        let pipeline = escape(&counters.pipeline);
        let mut out = String::new();
        family(
            &mut out,
            "engine_build_info",
            "gauge",
            "The engine's version.",
        );
        let _ = writeln!(
            out,
            "engine_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        outcome_counter(
            &mut out,
            &pipeline,
            "engine_runs_total",
            "Runs (watch cycles) by outcome: succeeded, failed, interrupted.",
            &["succeeded", "failed", "interrupted"],
            |outcome| counters.runs.get(outcome).copied(),
        );
        outcome_counter(
            &mut out,
            &pipeline,
            "engine_files_total",
            "Source files by outcome: loaded, skipped, deferred, failed.",
            &["loaded", "skipped", "deferred", "failed"],
            |outcome| counters.files.get(outcome).copied(),
        );
        family(
            &mut out,
            "engine_rows_written_total",
            "counter",
            "Rows each sink committed (for Postgres and webhooks: new or changed rows).",
        );
        for (sink, rows) in &counters.rows {
            let _ = writeln!(
                out,
                "engine_rows_written_total{{pipeline=\"{pipeline}\",sink=\"{}\"}} {rows}",
                escape(sink)
            );
        }
        family(
            &mut out,
            "engine_rows_rejected_total",
            "counter",
            "Lines rejected in loaded file versions.",
        );
        let _ = writeln!(
            out,
            "engine_rows_rejected_total{{pipeline=\"{pipeline}\"}} {}",
            counters.rejected
        );
        family(
            &mut out,
            "engine_consecutive_failed_runs",
            "gauge",
            "Runs that failed in a row; 0 after a success.",
        );
        let _ = writeln!(
            out,
            "engine_consecutive_failed_runs{{pipeline=\"{pipeline}\"}} {}",
            counters.consecutive_failures
        );
        for (name, help, value) in [
            (
                "engine_last_run_timestamp_seconds",
                "When the last run ended (Unix time).",
                counters.last_run,
            ),
            (
                "engine_last_success_timestamp_seconds",
                "When the last fully successful run ended (Unix time).",
                counters.last_success,
            ),
            (
                "engine_next_wake_timestamp_seconds",
                "When the watcher wakes next (Unix time).",
                counters.next_wake,
            ),
        ] {
            family(&mut out, name, "gauge", help);
            if let Some(value) = value {
                let _ = writeln!(out, "{name}{{pipeline=\"{pipeline}\"}} {value:.3}");
            }
        }
        if let Some(gauges) = &counters.reconcile {
            render_reconcile(&mut out, gauges);
        }
        out
    }
}

/// A counter family with one series per outcome, zero for the outcomes not seen yet.
/// The reconcile's metrics: discrepancies per check, runs by outcome, the last run's time.
fn render_reconcile(out: &mut String, gauges: &ReconcileGauges) {
    let name = escape(&gauges.name);
    family(
        out,
        "engine_reconcile_discrepancies",
        "gauge",
        "Discrepancies the last reconcile found, per check (0 when balanced).",
    );
    for (kind, count) in &gauges.counts {
        let _ = writeln!(
            out,
            "engine_reconcile_discrepancies{{reconcile=\"{name}\",kind=\"{}\"}} {count}",
            escape(kind)
        );
    }
    family(
        out,
        "engine_reconcile_runs_total",
        "counter",
        "Reconciles after watch cycles by outcome: balanced, discrepancies, failed.",
    );
    for outcome in ["balanced", "discrepancies", "failed"] {
        let _ = writeln!(
            out,
            "engine_reconcile_runs_total{{reconcile=\"{name}\",outcome=\"{outcome}\"}} {}",
            gauges.runs.get(outcome).copied().unwrap_or(0)
        );
    }
    family(
        out,
        "engine_reconcile_last_run_timestamp_seconds",
        "gauge",
        "When the last reconcile ended (Unix time).",
    );
    if let Some(at) = gauges.last_run {
        let _ = writeln!(
            out,
            "engine_reconcile_last_run_timestamp_seconds{{reconcile=\"{name}\"}} {at:.3}"
        );
    }
}

fn outcome_counter(
    out: &mut String,
    pipeline: &str,
    name: &str,
    help: &str,
    outcomes: &[&str],
    count: impl Fn(&str) -> Option<u64>,
) {
    family(out, name, "counter", help);
    for outcome in outcomes {
        let count = count(outcome).unwrap_or(0);
        let _ = writeln!(
            out,
            "{name}{{pipeline=\"{pipeline}\",outcome=\"{outcome}\"}} {count}"
        );
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Binds `addr` now (so a taken port is an error at start) and serves `/metrics` until `stop`.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|err| {
        Error::config(
            "--metrics-addr",
            format!("cannot listen on {addr}: {err}; choose another address or port"),
        )
    })?;
    tracing::info!(
        "metrics on http://{}/metrics",
        listener.local_addr().unwrap_or(addr)
    );
    Ok(tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = stop.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let Ok((stream, _)) = accepted else { continue };
            let metrics = Arc::clone(&metrics);
            tokio::spawn(async move {
                let _ = answer(stream, &metrics).await;
            });
        }
    }))
}

async fn answer(mut stream: tokio::net::TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let mut request = Vec::with_capacity(1024);
    let mut buffer = [0u8; 1024];
    while !request.windows(4).any(|window| window == b"\r\n\r\n") && request.len() < 16 * 1024 {
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buffer))
                .await
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        if read == 0 {
            break;
        }
        request.extend_from_slice(&buffer[..read]);
    }
    let line = request
        .split(|&byte| byte == b'\r')
        .next()
        .unwrap_or_default();
    let mut parts = line.split(|&byte| byte == b' ');
    let (method, path) = (parts.next(), parts.next());
    let (status, content_type, body) = match (method, path) {
        (Some(b"GET"), Some(path)) if path == b"/metrics" || path.starts_with(b"/metrics?") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(),
        ),
        (Some(b"GET"), _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "metrics are at /metrics\n".to_owned(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET /metrics\n".to_owned(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dates::DateSelection;
    use crate::summary::FileReport;

    #[test]
    fn a_run_is_counted_by_outcome_sink_and_rejects() {
        let metrics = Metrics::new("daily");
        let mut summary = RunSummary {
            pipeline: "daily".into(),
            dates: DateSelection::All,
            files: Vec::new(),
            sink_rows: vec![("parquet".into(), 7), ("postgres".into(), 3)],
            rejects_dir: None,
            elapsed: std::time::Duration::ZERO,
            interrupted: false,
        };
        let mut loaded = FileReport::new("toss_REV_20070706.dat".into(), FileOutcome::Loaded);
        loaded.stats.rejected = 1;
        summary.files.push(loaded);
        metrics.observe(&summary);
        let text = metrics.render();
        for line in [
            "engine_runs_total{pipeline=\"daily\",outcome=\"succeeded\"} 1",
            "engine_runs_total{pipeline=\"daily\",outcome=\"failed\"} 0",
            "engine_files_total{pipeline=\"daily\",outcome=\"loaded\"} 1",
            "engine_rows_written_total{pipeline=\"daily\",sink=\"postgres\"} 3",
            "engine_rows_rejected_total{pipeline=\"daily\"} 1",
            "engine_consecutive_failed_runs{pipeline=\"daily\"} 0",
            "# TYPE engine_last_success_timestamp_seconds gauge",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(text.contains("engine_last_success_timestamp_seconds{pipeline=\"daily\"} "));

        metrics.observe_failed_cycle();
        let text = metrics.render();
        assert!(text.contains("engine_runs_total{pipeline=\"daily\",outcome=\"failed\"} 1"));
        assert!(text.contains("engine_consecutive_failed_runs{pipeline=\"daily\"} 1"));
    }
}
