//! The engine: loads Toss Payments transaction files (approvals `AUTH`, cancels `REV`) into
//! a merchant's own systems, over Arrow record batches.
//!
//! A run is: a [`sources::Source`] lists the day's files, the [`parser`] turns each into
//! record batches and rejected lines, [`transforms`] reshape the batches, and every
//! [`sinks::Sink`] receives them; the [`state`] store remembers which version of each file every
//! sink holds, so reruns and newer versions load each record exactly once.
//!
//! # Layout
//! - [`config`]: the pipeline file, its keys and its error messages.
//! - [`dates`]: business dates in Korea time; what `dates`, `--date`, `--from/--to` select.
//! - [`sources`]: where files come from (`dir`, `ftp`, `http`), one module per source type.
//! - [`parser`]: the Toss record format, as a push decoder from bytes to Arrow batches.
//! - [`transforms`]: the step where merchants' own mappings run, as sandboxed WebAssembly
//!   plugins (`wasm`).
//! - [`sinks`]: where records go (`parquet`, `postgres`, `webhook`), one module per sink type.
//! - [`rejects`]: the JSON Lines file of lines that could not become rows.
//! - [`remote`]: what every remote party shares: the retry policy and loop, `Retry-After`, the
//!   HTTP client, verified TLS.
//! - [`scaffold`]: `engine plugin new`, a plugin crate to start from.
//! - [`state`]: what each pipeline loaded, in SQLite; the per-pipeline run lock.
//! - [`pipeline`]: builds the stages from a config and runs them in the order that makes
//!   re-loads exact.
//! - [`threads`]: how many cores a load keeps busy (`ENGINE_THREADS`), and the encoding pool.
//! - [`watch`], [`schedule`], [`metrics`]: `engine watch` on Toss's upload times, and its
//!   Prometheus metrics.
//! - [`summary`]: what a run did, as a table for people and a verdict for the exit code.
//! - [`error`]: the error type and its exit codes.

pub mod config;
pub mod dates;
pub mod error;
pub mod metrics;
pub mod parser;
pub mod pipeline;
pub mod rejects;
pub mod remote;
pub mod scaffold;
pub mod schedule;
pub mod sinks;
pub mod sources;
pub mod state;
pub mod summary;
pub mod threads;
pub mod transforms;
pub mod watch;

pub use error::{Error, Result};
