//! What a run did, for a person at a glance (a table on stdout) and for the exit code.

use crate::dates::DateSelection;
use crate::parser::ParseStats;
use crate::sinks::Sink;
use comfy_table::{CellAlignment, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// What happened to one source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOutcome {
    /// Every sink has this version now.
    Loaded,
    /// This version was loaded before; nothing to do.
    Skipped(String),
    /// Not taken in this run (still being written); a later run takes it.
    Deferred(String),
    /// Not loaded; the message says why and what to do.
    Failed(String),
}

impl FileOutcome {
    pub fn label(&self) -> &'static str {
        match self {
            FileOutcome::Loaded => "loaded",
            FileOutcome::Skipped(_) => "skipped",
            FileOutcome::Deferred(_) => "deferred",
            FileOutcome::Failed(_) => "FAILED",
        }
    }

    fn note(&self) -> &str {
        match self {
            FileOutcome::Loaded => "",
            FileOutcome::Skipped(note)
            | FileOutcome::Deferred(note)
            | FileOutcome::Failed(note) => note,
        }
    }
}

/// One source file's line in the summary.
#[derive(Debug, Clone)]
pub struct FileReport {
    pub name: String,
    pub outcome: FileOutcome,
    pub stats: ParseStats,
    pub encoding: Option<&'static str>,
    pub elapsed: Duration,
    /// For a failure: whether a later run may succeed without changes.
    pub retryable: bool,
    /// For a failure: a plugin or configuration fault that no retry can mend; `engine watch`
    /// stops on it.
    pub fatal: bool,
}

impl FileReport {
    pub fn new(name: String, outcome: FileOutcome) -> Self {
        FileReport {
            name,
            outcome,
            stats: ParseStats::default(),
            encoding: None,
            elapsed: Duration::ZERO,
            retryable: false,
            fatal: false,
        }
    }
}

/// Everything one run did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub pipeline: String,
    pub dates: DateSelection,
    pub files: Vec<FileReport>,
    /// Rows each sink committed in this run, by sink name, in pipeline order.
    pub sink_rows: Vec<(String, u64)>,
    pub rejects_dir: Option<PathBuf>,
    pub elapsed: Duration,
    /// Stopped by a signal: the file in flight was rolled back, later files not started.
    pub interrupted: bool,
}

impl RunSummary {
    pub fn new(pipeline: &str, dates: DateSelection, sinks: &[Box<dyn Sink>]) -> Self {
        RunSummary {
            pipeline: pipeline.to_owned(),
            dates,
            files: Vec::new(),
            sink_rows: sinks
                .iter()
                .map(|sink| (sink.name().to_owned(), 0))
                .collect(),
            rejects_dir: None,
            elapsed: Duration::ZERO,
            interrupted: false,
        }
    }

    /// Whether every selected input is now in every sink (exit code 0).
    pub fn succeeded(&self) -> bool {
        !self.failed_files().any(|_| true)
    }

    pub fn failed_files(&self) -> impl Iterator<Item = &FileReport> {
        self.files
            .iter()
            .filter(|file| matches!(file.outcome, FileOutcome::Failed(_)))
    }

    /// This run as the state store keeps it.
    pub fn to_record(&self, started_at: String, finished_at: String) -> crate::state::RunRecord {
        crate::state::RunRecord {
            started_at,
            finished_at,
            dates: self.dates.to_string(),
            outcome: if self.succeeded() {
                "succeeded"
            } else {
                "failed"
            }
            .to_owned(),
            loaded: self.count("loaded") as u64,
            skipped: self.count("skipped") as u64,
            deferred: self.count("deferred") as u64,
            failed: self.count("FAILED") as u64,
            rows: self.files.iter().map(|file| file.stats.rows).sum(),
            message: self
                .failed_files()
                .map(|file| format!("{}: {}", file.name, file.outcome.note()))
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    fn count(&self, label: &str) -> usize {
        self.files
            .iter()
            .filter(|file| file.outcome.label() == label)
            .count()
    }
}

impl fmt::Display for RunSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut files = Table::new();
        files
            .load_style(UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(120)
            .set_header(vec![
                "file", "result", "lines", "loaded", "rejected", "dupes", "secs", "note",
            ]);
        for file in &self.files {
            let stats = &file.stats;
            files.add_row(vec![
                file.name.clone(),
                file.outcome.label().to_owned(),
                (stats.lines - stats.blank).to_string(),
                stats.rows.to_string(),
                stats.rejected.to_string(),
                stats.duplicates.to_string(),
                format!("{:.2}", file.elapsed.as_secs_f64()),
                file.outcome.note().to_owned(),
            ]);
        }
        for column in 2..7 {
            if let Some(column) = files.column_mut(column) {
                column.set_cell_alignment(CellAlignment::Right);
            }
        }
        let mut sinks = Table::new();
        sinks
            .load_style(UTF8_FULL_CONDENSED)
            .set_header(vec!["sink", "rows written"]);
        for (sink, rows) in &self.sink_rows {
            sinks.add_row(vec![sink.clone(), rows.to_string()]);
        }

        writeln!(f, "pipeline {} · {}", self.pipeline, self.dates)?;
        if self.files.is_empty() {
            writeln!(f, "no Toss files found for {}", self.dates)?;
        } else {
            writeln!(f, "{files}")?;
        }
        writeln!(f, "{sinks}")?;
        let rows: u64 = self.files.iter().map(|file| file.stats.rows).sum();
        let rejected: u64 = self.files.iter().map(|file| file.stats.rejected).sum();
        write!(
            f,
            "{}: {} loaded, {} skipped, {} deferred, {} failed · {rows} rows, {rejected} rejected",
            if self.succeeded() { "OK" } else { "FAILED" },
            self.count("loaded"),
            self.count("skipped"),
            self.count("deferred"),
            self.count("FAILED"),
        )?;
        if rejected > 0
            && let Some(dir) = &self.rejects_dir
        {
            write!(f, " (see {})", dir.display())?;
        }
        writeln!(f, " · {:.2} s", self.elapsed.as_secs_f64())
    }
}
