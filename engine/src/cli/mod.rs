//! The command line: the arguments of every command, and one file per command that turns them
//! into a call of the library. Errors become messages and exit codes in `main` only.

mod inspect;
mod lake;
mod reconcile;
mod run;
mod status;
mod validate;
mod watch;

use clap::{Args, Parser, Subcommand};
use engine::dates::parse_date;
use engine::parser::toss::{Delimiter, Encoding};
use engine::{Error, Result};
use std::path::PathBuf;
use std::process::ExitCode;

/// Loads Toss Payments transaction files (AUTH approvals, REV cancels) into your own systems.
#[derive(Parser)]
#[command(name = "engine", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    /// More log output (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
    /// Only warnings and errors in the log.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Runs the pipeline once for the business dates given (default: the file's `dates`).
    Run {
        pipeline: PathBuf,
        #[command(flatten)]
        dates: DateArgs,
        #[command(flatten)]
        reload: ReloadArgs,
    },
    /// Keeps running, loading each new version of today's (and yesterday's) files on Toss's
    /// schedule; stops cleanly on SIGINT / SIGTERM.
    Watch {
        pipeline: PathBuf,
        /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9898).
        #[arg(long, value_name = "ADDR")]
        metrics_addr: Option<std::net::SocketAddr>,
        /// After each successful cycle, run this reconcile file (its own dates, default
        /// yesterday) and publish its discrepancy counts as metrics.
        #[arg(long, value_name = "RECONCILE.toml")]
        reconcile: Option<PathBuf>,
    },
    /// Checks whether the merchant's books equal Toss's: orders against transactions,
    /// transactions against settlements, the file feed against the API, payouts against the
    /// bank. Exits 0 when balanced, 3 when discrepancies were found.
    Reconcile {
        /// The reconcile file (see pipelines/reconcile.toml).
        reconcile: PathBuf,
        #[command(flatten)]
        dates: DateArgs,
        /// Print JSON, for machines.
        #[arg(long)]
        json: bool,
        /// Write the HTML report here instead of {report_dir}/{name}_{from}_{to}.html.
        #[arg(long, value_name = "PATH")]
        report: Option<PathBuf>,
    },
    /// Checks the pipeline file and the environment variables it names, without moving data.
    Validate { pipeline: PathBuf },
    /// Shows what the pipeline has loaded: each file's version, and the last run's outcome.
    Status {
        pipeline: PathBuf,
        /// Print JSON, for machines.
        #[arg(long)]
        json: bool,
        /// Also check that every sink still holds what it committed (Parquet files present
        /// with their rows, table rows present); exits 1 if one does not.
        #[arg(long)]
        verify: bool,
    },
    /// Reads one Toss file and shows its rows, encoding, delimiter and rejected lines.
    Inspect(InspectArgs),
    /// Plugin tools.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Maintenance of the pipeline's Delta tables.
    #[command(subcommand)]
    Lake(LakeCommand),
}

#[derive(Subcommand)]
pub(crate) enum LakeCommand {
    /// Merges each partition's small files into larger ones (one commit, no row changes), then
    /// writes a checkpoint.
    Optimize {
        pipeline: PathBuf,
        #[command(flatten)]
        table: LakeTable,
        /// The size to merge files up to, in MiB.
        #[arg(long, default_value_t = 128)]
        target_mb: u64,
    },
    /// Deletes files no table version of the last N hours needs (replaced versions, files a
    /// killed load left behind).
    Vacuum {
        pipeline: PathBuf,
        #[command(flatten)]
        table: LakeTable,
        /// Keep what the versions of the last N hours need (the table's default is 168).
        #[arg(long, value_name = "N")]
        retain_hours: u64,
        /// Only list what would be deleted.
        #[arg(long)]
        dry_run: bool,
        /// Allow less than the table's retention (7 days unless set): a reader of an older
        /// version may then fail.
        #[arg(long)]
        allow_short_retention: bool,
    },
}

#[derive(Args)]
pub(crate) struct LakeTable {
    /// Only this sink's table (delta, delta#2); default every Delta sink of the pipeline.
    #[arg(long)]
    sink: Option<String>,
    /// Print JSON, for machines.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
pub(crate) enum PluginCommand {
    /// Creates a plugin project that builds and runs as it is, to change into your own mapping.
    New {
        /// The plugin's name (lowercase letters, digits, '-', '_').
        name: String,
        /// The folder to create it in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The plugin's language: rust (a crate on sdk/) or ts (an npm package on sdk-js/;
        /// TypeScript, and JavaScript in it).
        #[arg(long, value_enum, default_value = "rust")]
        lang: PluginLang,
        /// The SDK's folder: for rust the one whose Cargo.toml is package toss-etl-sdk, for ts
        /// the one whose package.json is @toss-etl/sdk (default: sdk/ or sdk-js/ of the checkout
        /// this engine runs from, or else of the one the current folder is in).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
}

/// `engine plugin new --lang`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum PluginLang {
    Rust,
    Ts,
}

#[derive(Args)]
pub(crate) struct DateArgs {
    /// One business date (Korea time), YYYY-MM-DD.
    #[arg(long, value_parser = parse_date, conflicts_with_all = ["from", "to"])]
    date: Option<chrono::NaiveDate>,
    /// First business date of a range, YYYY-MM-DD (with --to).
    #[arg(long, value_parser = parse_date, requires = "to")]
    from: Option<chrono::NaiveDate>,
    /// Last business date of a range, YYYY-MM-DD (with --from).
    #[arg(long, value_parser = parse_date, requires = "from")]
    to: Option<chrono::NaiveDate>,
}

impl DateArgs {
    /// The days `--date` or `--from/--to` select; `None` when neither is given.
    pub(crate) fn spec(&self) -> Result<Option<engine::dates::DatesSpec>> {
        use engine::dates::DatesSpec;
        match (self.date, self.from, self.to) {
            (Some(day), _, _) => Ok(Some(DatesSpec::Range { from: day, to: day })),
            (None, Some(from), Some(to)) if from <= to => Ok(Some(DatesSpec::Range { from, to })),
            (None, Some(_), Some(_)) => Err(Error::config(
                "--from/--to",
                "--from must not be after --to",
            )),
            _ => Ok(None),
        }
    }
}

#[derive(Args)]
pub(crate) struct ReloadArgs {
    /// Load the selected files again even if this version was loaded before (after their data
    /// was deleted from a sink by hand, say); each sink replaces what it holds of them.
    #[arg(long)]
    force: bool,
    /// Download again what the source says is final (the http source's closed days), to pick
    /// up a file Toss corrected; unlike --force, a download with the content loaded before is
    /// still skipped.
    #[arg(long)]
    refetch: bool,
    /// Only this file (repeat for more), by name, e.g. toss_AUTH_20261201.dat; without --date
    /// or --from/--to, a Toss file name also selects its business date.
    #[arg(long = "file", value_name = "NAME")]
    files: Vec<String>,
}

#[derive(Args)]
pub(crate) struct InspectArgs {
    file: PathBuf,
    /// auto | utf-8 | euc-kr
    #[arg(long, default_value = "auto", value_parser = parse_encoding)]
    encoding: Encoding,
    /// auto | ";" | ","
    #[arg(long, default_value = "auto", value_parser = parse_delimiter)]
    delimiter: Delimiter,
    /// AUTH or REV, when the file name does not say.
    #[arg(long)]
    kind: Option<String>,
    /// The business date, when the file name does not say (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date)]
    date: Option<chrono::NaiveDate>,
    /// How many rows to show.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// The file is a saved answer of Toss's REST API (a JSON list of rows), read as this
    /// format: toss-api-transactions or toss-api-settlements.
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,
}

fn parse_encoding(text: &str) -> std::result::Result<Encoding, String> {
    text.parse().map_err(|err| format!("{err}"))
}

fn parse_delimiter(text: &str) -> std::result::Result<Delimiter, String> {
    text.parse().map_err(|err| format!("{err}"))
}

impl Command {
    /// Runs the command, once `ENGINE_THREADS` is known to be usable: an invalid value is a
    /// usage error before anything starts, whichever command it is.
    pub(crate) fn run(self) -> Result<ExitCode> {
        engine::threads::from_env()?;
        match self {
            Command::Run {
                pipeline,
                dates,
                reload,
            } => run::run(&pipeline, &dates, &reload),
            Command::Watch {
                pipeline,
                metrics_addr,
                reconcile,
            } => watch::watch(&pipeline, metrics_addr, reconcile.as_deref()),
            Command::Validate { pipeline } => validate::validate(&pipeline),
            Command::Reconcile {
                reconcile,
                dates,
                json,
                report,
            } => reconcile::reconcile(&reconcile, &dates, json, report),
            Command::Status {
                pipeline,
                json,
                verify,
            } => status::status(&pipeline, json, verify),
            Command::Inspect(args) => inspect::inspect(&args),
            Command::Lake(LakeCommand::Optimize {
                pipeline,
                table,
                target_mb,
            }) => lake::lake(
                &pipeline,
                table.sink.as_deref(),
                lake::Task::Optimize { target_mb },
                table.json,
            ),
            Command::Lake(LakeCommand::Vacuum {
                pipeline,
                table,
                retain_hours,
                dry_run,
                allow_short_retention,
            }) => lake::lake(
                &pipeline,
                table.sink.as_deref(),
                lake::Task::Vacuum {
                    retain_hours,
                    dry_run,
                    allow_short_retention,
                },
                table.json,
            ),
            Command::Plugin(PluginCommand::New {
                name,
                dir,
                lang,
                sdk,
            }) => {
                let lang = match lang {
                    PluginLang::Rust => engine::scaffold::Lang::Rust,
                    PluginLang::Ts => engine::scaffold::Lang::TypeScript,
                };
                engine::scaffold::new_plugin_in(&name, &dir, sdk.as_deref(), lang).map(|folder| {
                    match lang {
                        engine::scaffold::Lang::Rust => println!(
                            "created {0}\n  cd {0} && cargo build --release --target wasm32-wasip2",
                            folder.display()
                        ),
                        engine::scaffold::Lang::TypeScript => println!(
                            "created {0}\n  cd {0} && npm install && npm test && npm run build",
                            folder.display()
                        ),
                    }
                    ExitCode::SUCCESS
                })
            }
        }
    }
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(engine::threads::from_env()?)
        .enable_all()
        .build()
        .map_err(|err| Error::io("cannot start the async runtime", err))
}

/// A token cancelled by the first SIGINT or SIGTERM.
pub(crate) fn stop_on_signals() -> Result<tokio_util::sync::CancellationToken> {
    use tokio::signal::unix::{SignalKind, signal};
    let stop = tokio_util::sync::CancellationToken::new();
    let mut interrupt = signal(SignalKind::interrupt())
        .map_err(|err| Error::io("cannot listen for SIGINT", err))?;
    let mut terminate = signal(SignalKind::terminate())
        .map_err(|err| Error::io("cannot listen for SIGTERM", err))?;
    let token = stop.clone();
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        };
        tracing::info!("{name}: rolling back the file in flight and stopping");
        token.cancel();
    });
    Ok(stop)
}
