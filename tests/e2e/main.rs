//! End-to-end tests: the real `engine` binary on a fresh temporary folder per test, its output
//! read back with the `parquet` crate, never through the engine's internals.

mod day;
mod foundation;
mod ftp;
mod http;
mod pg;
mod plugins;
mod postgres;
mod receiver;
mod support;
mod trxdown;
mod watch;
mod webhook;
