//! How many cores the engine may keep busy, and the pool that CPU-heavy sink work runs on.
//!
//! A load is read, parsed and encoded at once: one thread reads and parses each file while the
//! Parquet sink encodes and compresses its columns, and the async side (sources, sinks' network
//! I/O) runs on [`count`] Tokio workers. The parse thread is the longest stage (about three
//! fifths of a load's CPU time in the profile), so it gets a core of its own: the encoder uses
//! the others, on a pool of `count - 1` threads when there are at least two of them, else on
//! its own thread. (On the 2-core benchmark machine, a pool of 2 beside the parse thread
//! measured about 10 % slower than one encoder thread, median of three: three busy threads took
//! turns on two cores, the parse thread included.)
//! On a shared machine, or to compare with a single-threaded tool, `ENGINE_THREADS=1` makes the
//! engine use one async worker; the parse and encoder threads still run beside each other, so
//! pin the process (`taskset -c 0`) to keep it on one core. Unset, the engine uses every core it
//! may run on.

use std::num::NonZeroUsize;
use std::sync::OnceLock;

use crate::error::{Error, Result};

/// The environment variable that limits the engine's threads.
pub const ENV: &str = "ENGINE_THREADS";

/// The thread count `ENGINE_THREADS` asks for, or every available core when it is unset.
pub fn from_env() -> Result<usize> {
    match std::env::var(ENV) {
        Ok(text) => parse(&text),
        Err(std::env::VarError::NotPresent) => Ok(available()),
        Err(std::env::VarError::NotUnicode(_)) => Err(invalid("its value is not text")),
    }
}

/// Reads a thread count: a whole number from 1 up.
fn parse(text: &str) -> Result<usize> {
    text.trim()
        .parse::<NonZeroUsize>()
        .map(NonZeroUsize::get)
        .map_err(|_| {
            invalid(&format!(
                "{text:?} is not a whole number of threads from 1 up"
            ))
        })
}

fn invalid(why: &str) -> Error {
    Error::config(ENV, format!("{why}; unset it to use every core"))
}

fn available() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// The thread count of this process: [`from_env`], or every core if that is invalid (the CLI
/// reports an invalid value before anything runs).
pub fn count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| from_env().unwrap_or_else(|_| available()))
}

/// The pool for CPU-heavy work that splits into independent parts (a row group's columns):
/// every core but the parse thread's. `None` when that leaves fewer than two, and such work runs
/// on the caller's thread.
pub fn pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let threads = count().saturating_sub(1);
        if threads < 2 {
            return None;
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("encode-{i}"))
            .build()
            .inspect_err(|err| {
                tracing::warn!("cannot start the encoding threads ({err}); encoding on one")
            })
            .ok()
    })
    .as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_counts_are_whole_numbers_from_one() {
        assert_eq!(parse("1").unwrap(), 1);
        assert_eq!(parse(" 8 ").unwrap(), 8);
        for bad in ["0", "-1", "two", "", "1.5"] {
            let message = parse(bad).unwrap_err().to_string();
            assert!(message.contains(ENV), "{bad}: {message}");
        }
    }
}
