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
            rows: self.loaded_rows(),
            message: self
                .failed_files()
                .map(|file| format!("{}: {}", file.name, file.outcome.note()))
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    /// Rows of the files loaded in this run; rows of a file that failed or was deferred were
    /// read but are in no sink.
    pub fn loaded_rows(&self) -> u64 {
        self.loaded_files().map(|file| file.stats.rows).sum()
    }

    fn loaded_files(&self) -> impl Iterator<Item = &FileReport> {
        self.files
            .iter()
            .filter(|file| file.outcome == FileOutcome::Loaded)
    }

    fn count(&self, label: &str) -> usize {
        self.files
            .iter()
            .filter(|file| file.outcome.label() == label)
            .count()
    }
}

/// The most of a file or sink name a table cell shows.
const MAX_NAME_CHARS: usize = 80;
/// The most of a note a table cell shows; a failure's whole message follows the table on
/// stderr. Laying out a table costs more than linear time in its cells' length, so an
/// unbounded cell (a server's answer, a long path) would keep a finished run busy for minutes.
const MAX_NOTE_CHARS: usize = 240;

/// `text` as a table cell: control characters shown escaped (a file or a server may hold
/// terminal escape sequences), cut to `max` characters with `…` where it was cut.
fn cell(text: &str, max: usize) -> String {
    let mut shown = String::with_capacity(text.len().min(max * 4));
    for (count, ch) in text.chars().enumerate() {
        if count == max {
            shown.push('…');
            break;
        }
        if ch.is_control() && ch != '\n' {
            shown.extend(ch.escape_default());
        } else {
            shown.push(ch);
        }
    }
    shown
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
            let loaded = if file.outcome == FileOutcome::Loaded {
                stats.rows.to_string()
            } else {
                "-".to_owned()
            };
            files.add_row(vec![
                cell(&file.name, MAX_NAME_CHARS),
                file.outcome.label().to_owned(),
                (stats.lines - stats.blank).to_string(),
                loaded,
                stats.rejected.to_string(),
                stats.duplicates.to_string(),
                format!("{:.2}", file.elapsed.as_secs_f64()),
                cell(file.outcome.note(), MAX_NOTE_CHARS),
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
            sinks.add_row(vec![cell(sink, MAX_NAME_CHARS), rows.to_string()]);
        }

        writeln!(f, "pipeline {} · {}", self.pipeline, self.dates)?;
        if self.files.is_empty() {
            writeln!(f, "no Toss files found for {}", self.dates)?;
        } else {
            writeln!(f, "{files}")?;
        }
        writeln!(f, "{sinks}")?;
        let rows = self.loaded_rows();
        let rejected: u64 = self.loaded_files().map(|file| file.stats.rejected).sum();
        write!(
            f,
            "{}: {} loaded, {} skipped, {} deferred, {} failed · {rows} rows loaded, {rejected} \
             rejected",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dates::DateSelection;

    fn summary(files: Vec<FileReport>) -> RunSummary {
        let mut summary = RunSummary::new("p", DateSelection::All, &[]);
        summary.files = files;
        summary
    }

    fn report(name: &str, outcome: FileOutcome, rows: u64) -> FileReport {
        let mut report = FileReport::new(name.to_owned(), outcome);
        report.stats.lines = rows;
        report.stats.rows = rows;
        report
    }

    #[test]
    fn rows_of_failed_and_deferred_files_are_not_counted_as_loaded() {
        let summary = summary(vec![
            report("a.dat", FileOutcome::Loaded, 5),
            report("b.dat", FileOutcome::Failed("broke".into()), 7),
            report("c.dat", FileOutcome::Deferred("later".into()), 11),
        ]);
        assert_eq!(summary.loaded_rows(), 5);
        assert_eq!(summary.to_record(String::new(), String::new()).rows, 5);
        let shown = summary.to_string();
        assert!(shown.contains("· 5 rows loaded"), "{shown}");
        let failed_line = shown.lines().find(|line| line.contains("b.dat")).unwrap();
        let cells: Vec<&str> = failed_line.split('┆').map(str::trim).collect();
        assert_eq!(cells[2..4], ["7", "-"], "{failed_line}");
    }

    #[test]
    fn long_cells_are_cut_and_escape_sequences_escaped() {
        let long_note = format!("\u{1b}[31m{}", "x".repeat(1_000_000));
        let summary = summary(vec![report("a.dat", FileOutcome::Failed(long_note), 0)]);
        let shown = summary.to_string();
        assert!(shown.len() < 10_000, "{} bytes", shown.len());
        assert!(!shown.contains('\u{1b}'), "{shown}");
        assert!(shown.contains("\\u{1b}[31m"), "{shown}");
        assert!(shown.contains('…'), "{shown}");
    }
}
