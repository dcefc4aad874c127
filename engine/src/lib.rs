//! The engine: loads Toss Payments transaction files (approvals `AUTH`, cancels `REV`) into
//! a merchant's own systems, over Arrow record batches.
//!
//! A run is: a [`sources::Source`] lists the load units of the selected days (a Toss file each),
//! the [`parser`] turns each into record batches and rejected lines, [`transforms`] reshape the
//! batches, and every [`sinks::Sink`] receives them; the [`state`] store remembers which version
//! of each unit every sink holds, so reruns and newer versions load each record exactly once.
//!
//! # Layers
//! Each module imports only from its own layer or the ones below it, never from above, and no
//! two modules import each other (`shared/tools/modcycles.py engine/src` checks the cycles):
//!
//! ```text
//! CLI            main.rs: one command per function, errors become messages and exit codes
//!   ↑
//! orchestration  config (the pipeline file) · pipeline (a run) · watch · schedule · metrics ·
//!                reconcile (do the books equal Toss's?)
//!   ↑
//! bookkeeping    state (what was loaded, in SQLite) · rejects · summary
//!   ↑
//! components     parser (formats) · sources · transforms (WebAssembly plugins) · sinks · scaffold
//!   ↑
//! vocabulary     unit (the load unit) · toss (Toss file facts) · hints (column hints) · env
//!   ↑
//! infrastructure error · dates · threads · private (files for the engine's user only) · sqlite
//!                (the state file) · remote (retries, HTTP client, TLS, scrubbing secrets)
//! ```
//!
//! - [`unit`](mod@unit): the load unit a source hands over and a sink replaces whole, and its version.
//! - [`toss`]: what a Toss file is (its kinds, its name) for the stages that read one.
//! - [`hints`]: what a format knows about its columns, carried in the fields' metadata to sinks.
//! - [`env`](mod@env): pipeline-file strings with `${NAME}`, and secrets.
//! - [`parser`]: the formats, each a push decoder from bytes to Arrow batches and rejects, chosen
//!   by `[parser] type`, with one pull reader on top.
//! - [`sources`]: where units come from (`dir`, `ftp`, `http`), one file or folder per type.
//! - [`transforms`]: merchants' own mappings, as sandboxed WebAssembly plugins (`wasm`).
//! - [`sinks`]: where records go (`parquet`, `postgres`, `webhook`), one file or folder per type.
//! - [`scaffold`]: `engine plugin new`, a plugin crate to start from.
//! - [`state`]: what each pipeline loaded, in SQLite; the per-pipeline run lock.
//! - [`rejects`]: the JSON Lines file of lines that could not become rows.
//! - [`summary`]: what a run did, as a table for people and a verdict for the exit code.
//! - [`config`]: the pipeline file, its keys and its error messages.
//! - [`pipeline`]: builds the stages from a config and runs them in the order that makes
//!   re-loads exact.
//! - [`watch`], [`schedule`], [`metrics`]: `engine watch` on Toss's upload times, and its
//!   Prometheus metrics.
//! - [`reconcile`]: `engine reconcile`, SQL checks (DataFusion) of the loaded data against the
//!   shop's orders and the bank's payouts, a report, discrepancies through the sinks.
//! - [`dates`]: business dates in Korea time; what `dates`, `--date`, `--from/--to` select.
//! - [`private`]: files and folders readable by the engine's user only.
//! - [`threads`]: how many cores a load keeps busy (`ENGINE_THREADS`), and the pools.
//! - [`remote`]: what every remote party shares: the retry policy and loop, `Retry-After`, the
//!   HTTP client, verified TLS, and the scrubbing of secrets out of what servers answer.
//! - [`error`]: the error type and its exit codes.

pub mod config;
pub mod dates;
pub mod env;
pub mod error;
pub mod hints;
pub mod lake;
pub mod metrics;
pub mod parser;
pub mod pipeline;
pub mod private;
pub mod reconcile;
pub mod rejects;
pub mod remote;
pub mod scaffold;
pub mod schedule;
pub mod sinks;
pub mod sources;
pub mod sqlite;
pub mod state;
pub mod summary;
pub mod threads;
pub mod toss;
pub mod transforms;
pub mod unit;
pub mod watch;

pub use error::{Error, Result};
