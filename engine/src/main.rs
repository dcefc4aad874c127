//! The `engine` command. This is the only place where errors become messages and exit codes:
//! 0 success, 1 the run failed, 2 bad usage or a bad pipeline file.

use clap::{Args, Parser, Subcommand};
use engine::config::PipelineConfig;
use engine::dates::{DatesSpec, korea_today, parse_date};
use engine::parser::{
    Delimiter, Encoding, FileContext, ParserOptions, RecordKind, TossDecoder, toss_schema,
};
use engine::pipeline::Pipeline;
use engine::sources::TossFileName;
use engine::{Error, Result};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Loads Toss Payments transaction files (AUTH approvals, REV cancels) into your own systems.
#[derive(Parser)]
#[command(name = "engine", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// More log output (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Only warnings and errors in the log.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the pipeline once for the business dates given (default: the file's `dates`).
    Run {
        pipeline: PathBuf,
        #[command(flatten)]
        dates: DateArgs,
    },
    /// Keeps running, loading each new version of today's (and yesterday's) files on Toss's
    /// schedule; stops cleanly on SIGINT / SIGTERM.
    Watch {
        pipeline: PathBuf,
        /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9898).
        #[arg(long, value_name = "ADDR")]
        metrics_addr: Option<std::net::SocketAddr>,
    },
    /// Checks the pipeline file and the environment variables it names, without moving data.
    Validate { pipeline: PathBuf },
    /// Shows what the pipeline has loaded: each file's version, and the last run's outcome.
    Status {
        pipeline: PathBuf,
        /// Print JSON, for machines.
        #[arg(long)]
        json: bool,
    },
    /// Reads one Toss file and shows its rows, encoding, delimiter and rejected lines.
    Inspect(InspectArgs),
    /// Plugin tools.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Creates a plugin crate that builds and runs as it is, to change into your own mapping.
    New {
        /// The crate's name (lowercase letters, digits, '-', '_').
        name: String,
        /// The folder to create it in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The SDK's folder (default: the sdk/ folder of the checkout this engine runs from).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
}

#[derive(Args)]
struct DateArgs {
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

#[derive(Args)]
struct InspectArgs {
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
}

fn parse_encoding(text: &str) -> std::result::Result<Encoding, String> {
    text.parse().map_err(|err| format!("{err}"))
}

fn parse_delimiter(text: &str) -> std::result::Result<Delimiter, String> {
    text.parse().map_err(|err| format!("{err}"))
}

fn main() -> ExitCode {
    engine::threads::bound_allocator_heaps();
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    let outcome = match cli.command {
        Command::Run { pipeline, dates } => run(&pipeline, &dates),
        Command::Watch {
            pipeline,
            metrics_addr,
        } => watch(&pipeline, metrics_addr),
        Command::Validate { pipeline } => validate(&pipeline),
        Command::Status { pipeline, json } => status(&pipeline, json),
        Command::Inspect(args) => inspect(&args),
        Command::Plugin(PluginCommand::New { name, dir, sdk }) => {
            engine::scaffold::new_plugin(&name, &dir, sdk.as_deref()).map(|folder| {
                println!(
                    "created {0}\n  cd {0} && cargo build --release --target wasm32-wasip2",
                    folder.display()
                );
                ExitCode::SUCCESS
            })
        }
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            let mut cause = std::error::Error::source(&err);
            while let Some(inner) = cause {
                eprintln!("  caused by: {inner}");
                cause = inner.source();
            }
            ExitCode::from(err.exit_code() as u8)
        }
    }
}

fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .finish()
        // The FTP client library traces every command it sends, the password's `PASS` included:
        // those lines never reach the log, whatever the level.
        .with(tracing_subscriber::filter::filter_fn(|meta| {
            !(meta.target().starts_with("suppaftp") && *meta.level() == tracing::Level::TRACE)
        }))
        .init();
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(engine::threads::from_env()?)
        .enable_all()
        .build()
        .map_err(|err| Error::io("cannot start the async runtime", err))
}

fn run(path: &Path, args: &DateArgs) -> Result<ExitCode> {
    let config = PipelineConfig::load(path)?;
    let spec = match (args.date, args.from, args.to) {
        (Some(day), _, _) => DatesSpec::Range { from: day, to: day },
        (None, Some(from), Some(to)) if from <= to => DatesSpec::Range { from, to },
        (None, Some(_), Some(_)) => {
            return Err(Error::config(
                "--from/--to",
                "--from must not be after --to",
            ));
        }
        _ => config.pipeline.dates.clone(),
    };
    let dates = spec.resolve(korea_today());
    let mut pipeline = Pipeline::build(&config)?;
    let summary = runtime()?.block_on(async {
        let stop = stop_on_signals()?;
        pipeline.run(dates, &stop).await
    })?;
    print!("{summary}");
    if summary.interrupted {
        eprintln!("error: interrupted; the file in flight was rolled back, rerun to complete");
        return Ok(ExitCode::from(130));
    }
    Ok(if summary.succeeded() {
        ExitCode::SUCCESS
    } else {
        for failed in summary.failed_files() {
            if let engine::summary::FileOutcome::Failed(message) = &failed.outcome {
                eprintln!("error: {}: {message}", failed.name);
            }
        }
        ExitCode::from(1)
    })
}

/// A token cancelled by the first SIGINT or SIGTERM.
fn stop_on_signals() -> Result<tokio_util::sync::CancellationToken> {
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

fn watch(path: &Path, metrics_addr: Option<std::net::SocketAddr>) -> Result<ExitCode> {
    let config = PipelineConfig::load(path)?;
    let schedule = engine::schedule::Schedule::from_config(&config.pipeline)?;
    let pipeline = Pipeline::build(&config)?;
    let metrics = engine::metrics::Metrics::new(pipeline.name());
    runtime()?.block_on(async {
        let stop = stop_on_signals()?;
        if let Some(addr) = metrics_addr {
            engine::metrics::serve(addr, std::sync::Arc::clone(&metrics), stop.clone()).await?;
        }
        engine::watch::Watch {
            pipeline,
            schedule,
            state_dir: config.pipeline.state_dir.to_path(),
            metrics,
        }
        .run(&stop)
        .await
    })?;
    eprintln!("engine watch stopped");
    Ok(ExitCode::SUCCESS)
}

fn validate(path: &Path) -> Result<ExitCode> {
    let config = PipelineConfig::load(path)?;
    let pipeline = Pipeline::build(&config)?;
    let transforms = pipeline.transform_names();
    println!(
        "{}: pipeline `{}` is valid ({} source, {} transform{}{}, {} sink{}); dates = {:?}",
        path.display(),
        pipeline.name(),
        pipeline.source_description(),
        transforms.len(),
        if transforms.len() == 1 { "" } else { "s" },
        if transforms.is_empty() {
            String::new()
        } else {
            format!(" {}", transforms.join(" → "))
        },
        config.sinks.len(),
        if config.sinks.len() == 1 { "" } else { "s" },
        config.pipeline.dates
    );
    Ok(ExitCode::SUCCESS)
}

fn status(path: &Path, json: bool) -> Result<ExitCode> {
    let config = PipelineConfig::load_for_status(path)?;
    let name = config.pipeline.name.to_string();
    let state_dir = config.pipeline.state_dir.to_path();
    let sink_names = engine::sinks::names(&config.sinks);
    let (last_run, files, sink_files, watcher) = if state_dir.join("state.sqlite").exists() {
        let store = engine::state::StateStore::open(&state_dir)?;
        (
            store.last_run(&name)?,
            store.loaded_files(&name)?,
            store.sink_files(&name)?,
            store.watcher(&name)?,
        )
    } else {
        (None, Vec::new(), Vec::new(), None)
    };
    let watcher = watcher.filter(|watcher| process_alive(watcher.pid));
    // Per file and sink: whether the sink holds the version the state store says is loaded.
    let holds = |file: &engine::state::LoadedFile, sink: &str| -> &'static str {
        let committed = sink_files
            .iter()
            .find(|held| held.sink == sink && held.source_file == file.source_file);
        match (committed, &file.content_hash) {
            (Some(held), Some(hash)) if &held.content_hash == hash => "yes",
            (Some(_), _) => "older version",
            (None, _) => "no",
        }
    };
    if json {
        let files_json: Vec<serde_json::Value> = files
            .iter()
            .map(|file| {
                let sinks: serde_json::Map<String, serde_json::Value> = sink_names
                    .iter()
                    .map(|sink| (sink.clone(), serde_json::json!(holds(file, sink) == "yes")))
                    .collect();
                let mut value = serde_json::to_value(file).unwrap_or_default();
                value["sinks"] = serde_json::Value::Object(sinks);
                value
            })
            .collect();
        let document = serde_json::json!({
            "pipeline": name,
            "state_dir": state_dir,
            "sinks": sink_names,
            "last_run": last_run,
            "next_wake": watcher.as_ref().and_then(|watcher| watcher.next_wake.clone()),
            "watcher_pid": watcher.as_ref().map(|watcher| watcher.pid),
            "files": files_json,
        });
        println!("{document:#}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("pipeline {name} · state in {}", state_dir.display());
    match &watcher {
        Some(watcher) => println!(
            "engine watch running (pid {}) since {} · next wake {}",
            watcher.pid,
            watcher.started_at,
            watcher.next_wake.as_deref().unwrap_or("now")
        ),
        None => println!("engine watch: not running"),
    }
    match &last_run {
        None => println!("last run: never"),
        Some(run) => {
            println!(
                "last run: {} · {} → {} · {} · {} loaded, {} skipped, {} deferred, {} failed · {} rows",
                run.outcome,
                run.started_at,
                run.finished_at,
                run.dates,
                run.loaded,
                run.skipped,
                run.deferred,
                run.failed,
                run.rows
            );
            for line in run.message.lines() {
                println!("  failed: {line}");
            }
        }
    }
    if files.is_empty() {
        println!("no file loaded yet");
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = comfy_table::Table::new();
    let mut header = vec!["file", "bytes", "rows", "rejected", "loaded at"];
    header.extend(sink_names.iter().map(String::as_str));
    table
        .load_style(comfy_table::presets::UTF8_FULL_CONDENSED)
        .set_header(header);
    for file in &files {
        let mut row = vec![
            file.source_file.clone(),
            file.size.map_or("-".to_owned(), |size| size.to_string()),
            file.rows.to_string(),
            file.rejected.to_string(),
            file.loaded_at.clone(),
        ];
        row.extend(sink_names.iter().map(|sink| holds(file, sink).to_owned()));
        table.add_row(row);
    }
    println!("{table}");
    Ok(ExitCode::SUCCESS)
}

/// Whether a process of this id still runs (a watcher killed with SIGKILL leaves its row).
fn process_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

fn inspect(args: &InspectArgs) -> Result<ExitCode> {
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
    let mut file = std::fs::File::open(&args.file)
        .map_err(|err| Error::io(format!("cannot open {}", args.file.display()), err))?;
    let mut decoder = TossDecoder::new(
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
    let mut shown = Vec::new();
    let mut shown_rows = 0;
    let mut rejects = Vec::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file
            .read(&mut buffer)
            .map_err(|err| Error::io(format!("cannot read {}", args.file.display()), err))?;
        if read == 0 {
            decoder.finish();
        } else {
            decoder.decode(&buffer[..read]);
        }
        rejects.extend(decoder.take_rejects());
        while let Some(batch) = decoder.next_batch() {
            if shown_rows < args.limit {
                let take = (args.limit - shown_rows).min(batch.num_rows());
                shown.push(batch.slice(0, take));
                shown_rows += take;
            }
        }
        if read == 0 {
            break;
        }
    }
    let stats = decoder.stats();
    println!("file:      {}", args.file.display());
    println!("kind:      {} · business date {trxdate}", kind.as_str());
    println!(
        "encoding:  {}",
        decoder
            .detected_encoding()
            .map_or("ascii only (either)", |encoding| encoding.as_str())
    );
    println!(
        "delimiter: {}",
        decoder
            .detected_delimiter()
            .map_or("none found", |delimiter| delimiter.as_str())
    );
    println!(
        "lines:     {} ({} rows, {} rejected, {} duplicates, {} blank)",
        stats.lines, stats.rows, stats.rejected, stats.duplicates, stats.blank
    );
    if shown.is_empty() {
        let _ = toss_schema();
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
