//! End-to-end tests: the real `engine` binary on a fresh temporary folder per test, its output
//! read back with the `parquet` crate, never through the engine's internals.
//!
//! `support/` holds the scaffolding (workspace, engine runs, the servers the engine talks to);
//! every other module is one feature's tests.

mod day;
mod delta;
mod deploy;
mod foundation;
mod ftp;
mod hostile_input;
mod http;
mod object_store;
mod pipeline_file;
mod plugins;
mod plugins_ts;
mod postgres;
mod reconcile;
mod reload;
mod support;
mod toss_api;
mod toss_api_server;
mod usage;
mod watch;
mod webhook;
