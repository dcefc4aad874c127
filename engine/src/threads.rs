//! How many cores the engine may keep busy, and the pool that CPU-heavy sink work runs on.
//!
//! A load is read, parsed and encoded at once, and the two costly steps each have a pool of one
//! thread per core: the parse pool turns segments of a file's lines into batches (see
//! [`crate::parser::toss::TossDecoder`]), and the encoding pool encodes and compresses a row group's
//! columns in parallel (see the Parquet sink). One thread per file reads, cuts and checks
//! duplicates in order, and the async side (sources, sinks' network I/O) runs on [`count`] Tokio
//! workers. The pools share the cores: whichever step has work uses them (`bench/README.md` has
//! what each step gained).
//! On a shared machine, or to compare with a single-threaded tool, `ENGINE_THREADS=1` makes the
//! engine use one async worker and no pools: a file is parsed on its reading thread and encoded
//! on one encoder thread beside it, so pin the process (`taskset -c 0`) to keep it on one core.
//! Unset, the engine uses every core it may run on.
//!
//! `ENGINE_THREADS` is bounded by [`MAX`], a fixed number rather than a multiple of the cores,
//! so that a value accepted on one machine is accepted on every other: each count starts that
//! many async workers and two pools of that many threads, and far more threads than cores only
//! costs memory (at 30000 the process ran out of it while starting them, and hung).

use std::num::NonZeroUsize;
use std::sync::OnceLock;

use crate::error::{Error, Result};

/// The environment variable that limits the engine's threads.
pub const ENV: &str = "ENGINE_THREADS";

/// The most threads `ENGINE_THREADS` may ask for: well above the cores of any machine the
/// engine runs on, well below what starting three sets of that many threads can fail on.
pub const MAX: usize = 256;

/// The thread count `ENGINE_THREADS` asks for, or every available core when it is unset.
pub fn from_env() -> Result<usize> {
    match std::env::var(ENV) {
        Ok(text) => parse(&text),
        Err(std::env::VarError::NotPresent) => Ok(available()),
        Err(std::env::VarError::NotUnicode(_)) => Err(invalid("its value is not text")),
    }
}

/// Reads a thread count: a whole number from 1 to [`MAX`].
fn parse(text: &str) -> Result<usize> {
    text.trim()
        .parse::<NonZeroUsize>()
        .ok()
        .map(NonZeroUsize::get)
        .filter(|&count| count <= MAX)
        .ok_or_else(|| {
            invalid(&format!(
                "{text:?} is not a number of threads from 1 to {MAX}"
            ))
        })
}

fn invalid(why: &str) -> Error {
    Error::config(
        ENV,
        format!("{why}; set it to 1 to {MAX}, or unset it to use every core"),
    )
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

/// Asks the C allocator to give every block of 4 MiB or more its own mapping, returned to the
/// system when freed. glibc's default threshold rises with the largest block freed so far, after
/// which a batch's largest buffers come from per-thread heaps that fragment: with lines parsed
/// on one thread and freed on another, a load's resident memory crept up with every batch. A
/// fixed threshold keeps it flat whatever the file's size; a much lower one costs more in page
/// faults than it saves (`bench/README.md` has the measurements). Call once, in `main`, before
/// other threads start.
pub fn bound_allocator_heaps() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: mallopt only sets a tuning parameter of glibc's allocator; it is called before
    // any other thread exists, and any value is valid for M_MMAP_THRESHOLD up to 32 MiB.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
    }
}

/// The pool that parses segments of a file's lines (see [`crate::parser::toss::TossDecoder`]): one
/// thread per core. `None` on one core (or `ENGINE_THREADS=1`), and files are parsed on their
/// reading thread.
pub fn parse_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| start_pool("parse")).as_ref()
}

/// The pool for CPU-heavy work that splits into independent parts (a row group's columns): one
/// thread per core. `None` on one core (or `ENGINE_THREADS=1`), and such work runs on the
/// caller's thread.
pub fn pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| start_pool("encode")).as_ref()
}

/// A pool of one thread per core named `{name}-{i}`, or `None` when there is one core.
fn start_pool(name: &'static str) -> Option<rayon::ThreadPool> {
    let threads = count();
    if threads < 2 {
        return None;
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("{name}-{i}"))
        .build()
        .inspect_err(|err| {
            tracing::warn!("cannot start the {name} threads ({err}); working on one instead")
        })
        .ok()
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_counts_are_whole_numbers_from_one() {
        assert_eq!(parse("1").unwrap(), 1);
        assert_eq!(parse(" 8 ").unwrap(), 8);
        assert_eq!(parse("256").unwrap(), MAX);
        for bad in [
            "0",
            "-1",
            "two",
            "",
            "1.5",
            "257",
            "30000",
            "99999999999999999999999",
        ] {
            let err = parse(bad).unwrap_err();
            let message = err.to_string();
            assert!(message.contains(ENV), "{bad}: {message}");
            assert!(message.contains("1 to 256"), "{bad}: {message}");
            assert_eq!(err.exit_code(), 2);
        }
    }
}
