//! The `engine` command. This is the only place where errors become messages and exit codes:
//! 0 success, 1 the run failed, 2 bad usage or a bad pipeline file. Each command lives in
//! `cli/`, one file each.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Process-wide settings, made once before any other thread starts.
    engine::threads::bound_allocator_heaps();
    // One crypto provider for every TLS connection of the process (FTPS, HTTPS, PostgreSQL).
    // Installing fails only if one is installed already, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = cli::Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    match cli.command.run() {
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
