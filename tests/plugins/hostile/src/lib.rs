//! A plugin that misbehaves on purpose, so the engine's tests can check that its sandbox holds.
//!
//! `[transforms.config]` keys:
//!
//! | key | meaning |
//! |---|---|
//! | `behave` | required; one of the behaviours below |
//! | `millis` | for `slow`: how long to busy-loop per batch (default 1000) |
//! | `flood_bytes` | for `flood`: how much to print (default 10 MiB = 10,485,760) |
//! | `stream` | for `flood`: `"stdout"` (default) or `"stderr"` |
//! | `lines` | for `data-error`: fail only the batches holding one of these `source_line`s (default: every batch with rows) |
//!
//! Every behaviour except `config-error` starts only on a batch with rows: the zero-row batch
//! the engine sends first to learn the output schema is answered like `ok`.
//!
//! | behave | on a batch with rows |
//! |---|---|
//! | `ok` | returns the batch unchanged |
//! | `panic` | panics (the component traps; the panic message goes to stderr) |
//! | `spin` | loops forever |
//! | `memory-bomb` | allocates and touches 1 MiB after 1 MiB until allocation fails (trap) |
//! | `recursion` | recurses without bound until the call stack is exhausted (trap) |
//! | `bad-ipc` | returns bytes that are not Arrow IPC |
//! | `compressed-ipc` | returns a valid Arrow IPC stream whose batch is LZ4_FRAME-compressed |
//! | `wrong-schema` | returns the batch without its last column (the probe got all of them) |
//! | `flood` | prints `flood_bytes` to stdout (1 KiB lines), then returns the batch |
//! | `data-error` | returns a `data` error |
//! | `exit` | calls `std::process::exit(3)` |
//! | `slow` | busy-loops for `millis`, then returns the batch |
//! | `number-calls` | returns the batch with a last column `call` (Int64): how many batches with rows this instance has been called with, this one included; the zero-row probe gets the column too |
//! | `config-error` | (in `init`) returns a `config` error |

use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use arrow_ipc::CompressionType;
use arrow_ipc::writer::{IpcWriteOptions, StreamWriter};
use toss_etl_sdk::{Config, Error, RawTransform, RecordBatch, ipc};

/// What the plugin does; see the crate docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behave {
    Ok,
    Panic,
    Spin,
    MemoryBomb,
    Recursion,
    BadIpc,
    CompressedIpc,
    WrongSchema,
    Flood,
    ConfigError,
    DataError,
    Exit,
    Slow,
    NumberCalls,
}

impl Behave {
    /// Every behaviour with its config name.
    pub const ALL: [(&'static str, Behave); 14] = [
        ("ok", Behave::Ok),
        ("panic", Behave::Panic),
        ("spin", Behave::Spin),
        ("memory-bomb", Behave::MemoryBomb),
        ("recursion", Behave::Recursion),
        ("bad-ipc", Behave::BadIpc),
        ("compressed-ipc", Behave::CompressedIpc),
        ("wrong-schema", Behave::WrongSchema),
        ("flood", Behave::Flood),
        ("config-error", Behave::ConfigError),
        ("data-error", Behave::DataError),
        ("exit", Behave::Exit),
        ("slow", Behave::Slow),
        ("number-calls", Behave::NumberCalls),
    ];

    fn parse(name: &str) -> Result<Self, Error> {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| *b)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|(n, _)| *n).collect();
                Error::config(format!(
                    "behave: unknown behaviour {name:?}; allowed: {}",
                    names.join(", ")
                ))
            })
    }
}

/// The hostile plugin.
#[derive(Debug)]
pub struct Hostile {
    behave: Behave,
    millis: u64,
    flood_bytes: u64,
    to_stderr: bool,
    /// Batches with rows this instance was called with.
    calls: i64,
    /// For `data-error`: the lines whose batches fail; empty for every batch.
    lines: Vec<i64>,
}

/// What `bad-ipc` answers.
pub const NOT_IPC: &[u8] = b"hostile: behave=bad-ipc, so this answer is not an Arrow IPC stream";

impl RawTransform for Hostile {
    fn init(config: &str) -> Result<Self, Error> {
        let config = Config::from_json(config)?;
        config.deny_unknown_keys(&["behave", "millis", "flood_bytes", "stream", "lines"])?;
        let behave = Behave::parse(config.require_str("behave")?)?;
        if behave == Behave::ConfigError {
            return Err(Error::config(
                "behave=config-error: this plugin refuses its config",
            ));
        }
        let millis = config.get_as::<u64>("millis")?.unwrap_or(1000);
        let flood_bytes = config.get_as::<u64>("flood_bytes")?.unwrap_or(10 << 20);
        let to_stderr = match config.get_str("stream")?.unwrap_or("stdout") {
            "stdout" => false,
            "stderr" => true,
            other => {
                return Err(Error::config(format!(
                    "stream: {other:?} is neither \"stdout\" nor \"stderr\""
                )));
            }
        };
        Ok(Self {
            behave,
            millis,
            flood_bytes,
            to_stderr,
            calls: 0,
            lines: config.get_as::<Vec<i64>>("lines")?.unwrap_or_default(),
        })
    }

    fn transform_ipc(&mut self, bytes: Vec<u8>) -> Result<Vec<u8>, Error> {
        let batch = ipc::decode_owned(bytes)?;
        if self.behave == Behave::NumberCalls {
            if batch.num_rows() > 0 {
                self.calls += 1;
            }
            return ipc::encode(&with_call_number(&batch, self.calls)?);
        }
        if batch.num_rows() == 0 {
            return ipc::encode(&batch);
        }
        match self.behave {
            Behave::Ok | Behave::ConfigError | Behave::NumberCalls => ipc::encode(&batch),
            Behave::Panic => panic!("behave=panic: this plugin panics on purpose"),
            Behave::Spin => spin(),
            Behave::MemoryBomb => memory_bomb(),
            Behave::Recursion => {
                let mixed = recurse(black_box(0));
                Err(Error::other(format!(
                    "recursion returned ({mixed}); it never should"
                )))
            }
            Behave::BadIpc => Ok(NOT_IPC.to_vec()),
            Behave::CompressedIpc => compressed(&batch),
            Behave::WrongSchema => {
                let keep: Vec<usize> = (0..batch.num_columns().saturating_sub(1)).collect();
                ipc::encode(&batch.project(&keep)?)
            }
            Behave::Flood => {
                flood(self.flood_bytes, self.to_stderr);
                ipc::encode(&batch)
            }
            Behave::DataError if self.lines.is_empty() => Err(Error::data(format!(
                "behave=data-error: this plugin rejects every batch with rows (this one has {})",
                batch.num_rows()
            ))),
            Behave::DataError => match held_line(&batch, &self.lines)? {
                Some(line) => Err(Error::data(format!(
                    "behave=data-error: this plugin rejects the batch holding line {line}"
                ))),
                None => ipc::encode(&batch),
            },
            Behave::Exit => std::process::exit(3),
            Behave::Slow => {
                busy_wait(Duration::from_millis(self.millis));
                ipc::encode(&batch)
            }
        }
    }
}

toss_etl_sdk::export_transform!(raw Hostile);

/// The first of `lines` that `batch` holds in its `source_line` column.
fn held_line(batch: &RecordBatch, lines: &[i64]) -> Result<Option<i64>, Error> {
    use toss_etl_sdk::arrow::array::{Array, Int64Array};

    let column = batch
        .column_by_name("source_line")
        .and_then(|column| column.as_any().downcast_ref::<Int64Array>())
        .ok_or_else(|| Error::data("behave=data-error with lines: no Int64 source_line column"))?;
    Ok(column
        .values()
        .iter()
        .copied()
        .find(|line| lines.contains(line)))
}

/// `batch` with a last column `call` holding `call` on every row.
fn with_call_number(batch: &RecordBatch, call: i64) -> Result<RecordBatch, Error> {
    use std::sync::Arc;
    use toss_etl_sdk::arrow::array::{ArrayRef, Int64Array};
    use toss_etl_sdk::arrow::datatypes::{DataType, Field, Schema};

    let schema = batch.schema();
    let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new("call", DataType::Int64, false)));
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    columns.push(Arc::new(Int64Array::from(vec![call; batch.num_rows()])));
    let schema = Schema::new_with_metadata(fields, schema.metadata().clone());
    Ok(RecordBatch::try_new(Arc::new(schema), columns)?)
}

fn spin() -> ! {
    let mut i: u64 = 0;
    loop {
        i = black_box(i.wrapping_add(1));
    }
}

fn memory_bomb() -> ! {
    const CHUNK: usize = 1 << 20;
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = vec![0u8; CHUNK];
        // Touch every 4 KiB so the memory is really committed, whatever the allocator does.
        for i in (0..CHUNK).step_by(4096) {
            chunk[i] = (hoard.len() as u8) | 1;
        }
        hoard.push(black_box(chunk));
        black_box(&hoard);
    }
}

/// Recurses until the call stack runs out. The frame lives in WebAssembly locals, not in linear
/// memory, so it is the engine's native stack limit that trips ("call stack exhausted"), not
/// the shadow stack in linear memory (which would be an out-of-bounds access). `black_box`
/// hides the depth, and the result is mixed in a way no accumulator rewrite can fold, so the
/// call can neither be removed nor turned into a loop.
#[inline(never)]
pub fn recurse(depth: u64) -> u64 {
    if black_box(depth) == u64::MAX {
        return 0;
    }
    let below = recurse(black_box(depth + 1));
    below.rotate_left((depth % 64) as u32) ^ depth
}

/// `batch` as an IPC stream with LZ4_FRAME body compression.
pub fn compressed(batch: &RecordBatch) -> Result<Vec<u8>, Error> {
    let options = IpcWriteOptions::default()
        .try_with_compression(Some(CompressionType::LZ4_FRAME))
        .map_err(Error::from)?;
    let mut writer = StreamWriter::try_new_with_options(Vec::new(), &batch.schema(), options)?;
    writer.write(batch)?;
    writer.finish()?;
    Ok(writer.into_inner()?)
}

fn flood(bytes: u64, to_stderr: bool) {
    let mut line = [b'x'; 1024];
    line[1023] = b'\n';
    let mut written = 0u64;
    let mut n = 0u64;
    let mut out: Box<dyn Write> = if to_stderr {
        Box::new(std::io::stderr().lock())
    } else {
        Box::new(std::io::stdout().lock())
    };
    while written < bytes {
        let prefix = format!("hostile flood line {n:08} ");
        line[..prefix.len()].copy_from_slice(prefix.as_bytes());
        let len = (bytes - written).min(line.len() as u64) as usize;
        // The host may refuse output past its cap: keep going, as a careless plugin would.
        let _ = out.write_all(&line[..len]);
        written += len as u64;
        n += 1;
    }
    let _ = out.flush();
}

/// Loops for `duration` by the monotonic clock. If the clock does not move (a host that
/// freezes it), falls back to counting loop turns: about 2,000,000 per millisecond, a rough
/// calibration.
fn busy_wait(duration: Duration) {
    const TURNS_PER_MS: u64 = 2_000_000;
    const FROZEN_AFTER: u64 = 50_000_000;
    let start = Instant::now();
    let mut turns: u64 = 0;
    loop {
        for _ in 0..10_000 {
            turns = black_box(turns + 1);
        }
        let elapsed = start.elapsed();
        if elapsed >= duration {
            return;
        }
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        if elapsed.is_zero()
            && turns >= FROZEN_AFTER
            && turns >= millis.saturating_mul(TURNS_PER_MS)
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use toss_etl_sdk::RawInstance;
    use toss_etl_sdk::toss::{self, Row};

    use super::*;

    fn instance(config: &str) -> RawInstance<Hostile> {
        let mut instance = RawInstance::new();
        instance.init(config).unwrap();
        instance
    }

    fn rows() -> Vec<u8> {
        ipc::encode(&toss::batch(&[Row::auth("a", 1), Row::rev("b", 2)])).unwrap()
    }

    fn probe() -> Vec<u8> {
        ipc::encode(&ipc::empty_batch(toss::schema())).unwrap()
    }

    #[test]
    fn config() {
        let mut i = RawInstance::<Hostile>::new();
        let err = i.init(r#"{"behave": "config-error"}"#).unwrap_err();
        assert_eq!(
            err,
            Error::Config("behave=config-error: this plugin refuses its config".into())
        );
        assert!(i.init("{}").unwrap_err().message().starts_with("behave: "));
        assert!(
            i.init(r#"{"behave": "nope"}"#)
                .unwrap_err()
                .message()
                .contains("memory-bomb")
        );
        assert!(i.init(r#"{"behave": "ok", "x": 1}"#).is_err());
        assert!(i.init(r#"{"behave": "flood", "stream": "file"}"#).is_err());
    }

    #[test]
    fn every_behaviour_passes_the_probe() {
        for (name, _) in Behave::ALL {
            if name == "config-error" {
                continue;
            }
            let mut i = instance(&format!(r#"{{"behave": "{name}", "millis": 0}}"#));
            let out = ipc::decode(&i.transform_ipc(probe()).unwrap()).unwrap();
            assert_eq!(out.schema(), toss::schema(), "{name}");
        }
    }

    #[test]
    fn harmless_behaviours() {
        let input = ipc::decode(&rows()).unwrap();
        let out = instance(r#"{"behave": "ok"}"#)
            .transform_ipc(rows())
            .unwrap();
        assert_eq!(ipc::decode(&out).unwrap(), input);

        let out = instance(r#"{"behave": "bad-ipc"}"#)
            .transform_ipc(rows())
            .unwrap();
        assert_eq!(out, NOT_IPC);
        assert!(ipc::decode(&out).is_err());

        let out = instance(r#"{"behave": "compressed-ipc"}"#)
            .transform_ipc(rows())
            .unwrap();
        assert!(
            ipc::decode(&out).is_ok(),
            "this crate enables lz4, so it reads back"
        );

        let out = instance(r#"{"behave": "wrong-schema"}"#)
            .transform_ipc(rows())
            .unwrap();
        let out = ipc::decode(&out).unwrap();
        assert_eq!(out.num_columns(), input.num_columns() - 1);

        let err = instance(r#"{"behave": "data-error"}"#)
            .transform_ipc(rows())
            .unwrap_err();
        assert_eq!(err.kind(), "data");

        let started = Instant::now();
        let out = instance(r#"{"behave": "slow", "millis": 50}"#)
            .transform_ipc(rows())
            .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert_eq!(ipc::decode(&out).unwrap(), input);

        let out = instance(r#"{"behave": "flood", "flood_bytes": 100, "stream": "stderr"}"#)
            .transform_ipc(rows())
            .unwrap();
        assert_eq!(ipc::decode(&out).unwrap(), input);
    }

    #[test]
    #[should_panic(expected = "behave=panic")]
    fn panics() {
        let _ = instance(r#"{"behave": "panic"}"#).transform_ipc(rows());
    }
}
