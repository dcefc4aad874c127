//! The box a plugin runs in: one wasmtime store per instance, holding a WASI context that grants
//! nothing by default (no preopened folders, no sockets, an empty environment, a clock stopped
//! at the Unix epoch), a memory cap, captured stdout/stderr with a size cap, and a CPU deadline
//! per call driven by a process-wide epoch ticker.
//!
//! Every way a call can go wrong comes back from [`Sandbox::call`] as a sentence that says what
//! the plugin did (ran past its deadline, used too much memory, overflowed its stack, panicked
//! with this message, wrote too much output, exited), because "wasm trap: unreachable" helps no
//! merchant. A guest that traps says why on stderr in its own way (Rust's panic message, a JS
//! engine's exception and stack); [`plugin_message`] keeps the plugin's words and drops the
//! runtime's noise around them, so the reason reads the same whatever the plugin's language.

use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store, Trap};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, I32Exit, WasiCtx, WasiCtxView, WasiView};

/// How often the epoch ticks; a deadline is rounded up to whole ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// What the pipeline file grants one plugin.
#[derive(Debug, Clone)]
pub struct Grants {
    pub memory_limit_bytes: usize,
    pub deadline: Duration,
    pub clock: bool,
    pub env: Vec<(String, String)>,
    pub log_limit_bytes: usize,
}

/// The wasmtime engine and linker every plugin shares. The engine is compiled for epoch
/// interruption; one thread ticks the epoch for the life of the process.
pub struct Runtime {
    pub engine: Engine,
    linker: Linker<HostState>,
}

pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        config.wasm_component_model(true);
        let engine = Engine::new(&config).expect("the plugin engine's configuration is valid");
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("WASI links into a fresh linker");
        let ticker = engine.weak();
        std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                while let Some(engine) = ticker.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .expect("the epoch thread starts");
        Runtime { engine, linker }
    })
}

/// What a store carries for its plugin.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    memory: MemoryCap,
    stdout: CapturedOutput,
    stderr: CapturedOutput,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// One instance of a plugin in its store.
pub struct Sandbox<B> {
    store: Store<HostState>,
    bindings: B,
    grants: Grants,
}

impl<B> Sandbox<B> {
    /// Makes a fresh store under `grants` and instantiates `component` in it.
    pub fn instantiate(
        component: &Component,
        grants: &Grants,
        make: impl FnOnce(&mut Store<HostState>, &Component, &Linker<HostState>) -> wasmtime::Result<B>,
    ) -> wasmtime::Result<Self> {
        let runtime = runtime();
        let stdout = CapturedOutput::new("stdout", grants.log_limit_bytes);
        let stderr = CapturedOutput::new("stderr", grants.log_limit_bytes);
        let mut wasi = WasiCtx::builder();
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        for (key, value) in &grants.env {
            wasi.env(key, value);
        }
        if !grants.clock {
            wasi.wall_clock(StoppedClock).monotonic_clock(StoppedClock);
        }
        let state = HostState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            memory: MemoryCap {
                limit: grants.memory_limit_bytes,
                exceeded: false,
            },
            stdout,
            stderr,
        };
        let mut store = Store::new(&runtime.engine, state);
        store.limiter(|state| &mut state.memory);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(deadline_ticks(grants.deadline));
        let bindings = make(&mut store, component, &runtime.linker)?;
        Ok(Sandbox {
            store,
            bindings,
            grants: grants.clone(),
        })
    }

    /// Calls into the plugin under its deadline, logs what it printed, and turns a failure into
    /// a sentence.
    pub fn call<R>(
        &mut self,
        call: impl FnOnce(&B, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, String> {
        self.store.data().stdout.clear();
        self.store.data().stderr.clear();
        self.store
            .set_epoch_deadline(deadline_ticks(self.grants.deadline));
        let outcome = call(&self.bindings, &mut self.store);
        let state = self.store.data();
        state.stdout.log(tracing::Level::INFO);
        state.stderr.log(tracing::Level::WARN);
        outcome.map_err(|err| self.explain(err))
    }

    fn explain(&self, err: wasmtime::Error) -> String {
        let state = self.store.data();
        if state.memory.exceeded {
            return format!(
                "used more than its memory limit of {} MiB; raise memory_limit_mb in \
                 [[transforms]] if it really needs more",
                self.grants.memory_limit_bytes >> 20
            );
        }
        for output in [&state.stdout, &state.stderr] {
            if output.overflowed() {
                return format!(
                    "wrote more than {} KiB to {} in one call (a flood of output); raise \
                     log_limit_kb in [[transforms]] or make the plugin quieter",
                    self.grants.log_limit_bytes >> 10,
                    output.name
                );
            }
        }
        if let Some(exit) = err.downcast_ref::<I32Exit>() {
            return format!(
                "exited the process with status {} instead of returning; plugins must return \
                 an error instead",
                exit.0
            );
        }
        let said = plugin_message(&state.stderr.text());
        let said = if said.is_empty() {
            String::new()
        } else {
            format!("; it said: {said}")
        };
        match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => format!(
                "ran past its CPU deadline of {} ms for one batch (an endless loop?); raise \
                 deadline_ms in [[transforms]] if a batch really needs longer",
                self.grants.deadline.as_millis()
            ),
            Some(Trap::StackOverflow) => {
                format!("overflowed its call stack (unbounded recursion?){said}")
            }
            // Rust and C keep their stack in linear memory below the data; overflowing it
            // runs off the start of memory.
            Some(Trap::MemoryOutOfBounds) => format!(
                "accessed memory out of bounds: most often its stack overflowed (unbounded \
                 recursion?), otherwise a memory bug in the plugin{said}"
            ),
            Some(Trap::UnreachableCodeReached) => {
                format!("panicked or aborted{said}")
            }
            Some(trap) => format!("trapped: {trap}{said}"),
            None => format!("failed: {err:#}{said}"),
        }
    }
}

/// How many lines of what a trapping plugin wrote to stderr its failure quotes.
const MESSAGE_LINES: usize = 3;

/// The plugin's own words in what it wrote to stderr before it trapped: the last few lines that
/// are not a stack frame or the runtime's boilerplate, joined with ` / `. A JS exception that
/// escaped componentize-js's glue (`invalid variant tag … (received `Error: msg`)`) is reduced
/// to the exception it carried.
pub fn plugin_message(stderr: &str) -> String {
    let noise = |line: &str| {
        line.is_empty()
            || line == "Stack:"
            // SpiderMonkey's stack frames: `function@file:line:column`.
            || (line.contains('@') && line.rsplit(':').take(2).all(|part| part.parse::<u32>().is_ok()))
            // V8-style frames, and Rust's backtrace hint.
            || line.starts_with("at ")
            || line.starts_with("note: run with `RUST_BACKTRACE")
            || line.starts_with("Redirecting call to abort()")
    };
    let lines: Vec<String> = stderr
        .lines()
        .map(str::trim)
        .filter(|line| !noise(line))
        .map(|line| {
            match line
                .split_once("(received `")
                .and_then(|(_, rest)| rest.split_once('`'))
            {
                Some((thrown, _)) if line.starts_with("invalid variant tag") => thrown.to_owned(),
                _ => line.to_owned(),
            }
        })
        .collect();
    lines[lines.len().saturating_sub(MESSAGE_LINES)..].join(" / ")
}

fn deadline_ticks(deadline: Duration) -> u64 {
    deadline.as_millis().div_ceil(EPOCH_TICK.as_millis()).max(1) as u64
}

/// Refuses memory growth past the plugin's limit, and remembers that it did.
struct MemoryCap {
    limit: usize,
    exceeded: bool,
}

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.exceeded = true;
            wasmtime::bail!("memory limit of {} MiB reached", self.limit >> 20);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// A clock that always says the Unix epoch: what a plugin sees unless `allow_clock = true`.
struct StoppedClock;

impl HostWallClock for StoppedClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for StoppedClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// A plugin's stdout or stderr: kept per call up to a limit, then logged. Writing past the limit
/// fails the call, so a flood can neither fill memory nor drown the engine's log.
#[derive(Clone)]
struct CapturedOutput {
    name: &'static str,
    limit: usize,
    inner: Arc<Mutex<Captured>>,
}

#[derive(Default)]
struct Captured {
    bytes: Vec<u8>,
    overflowed: bool,
}

impl CapturedOutput {
    fn new(name: &'static str, limit: usize) -> Self {
        CapturedOutput {
            name,
            limit,
            inner: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Captured> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn clear(&self) {
        let mut captured = self.lock();
        captured.bytes.clear();
        captured.overflowed = false;
    }

    fn overflowed(&self) -> bool {
        self.lock().overflowed
    }

    fn append(&self, bytes: &[u8]) -> Result<(), String> {
        let mut captured = self.lock();
        if captured.bytes.len() + bytes.len() > self.limit {
            captured.overflowed = true;
            return Err(format!(
                "plugin {} is over its limit of {} bytes",
                self.name, self.limit
            ));
        }
        captured.bytes.extend_from_slice(bytes);
        Ok(())
    }

    fn log(&self, level: tracing::Level) {
        let captured = self.lock();
        for line in String::from_utf8_lossy(&captured.bytes).lines() {
            if line.trim().is_empty() {
                continue;
            }
            match level {
                tracing::Level::WARN => tracing::warn!(stream = self.name, "plugin: {line}"),
                _ => tracing::info!(stream = self.name, "plugin: {line}"),
            }
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock().bytes).into_owned()
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for CapturedOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for CapturedOutput {
    fn write(&mut self, bytes: bytes::Bytes) -> Result<(), StreamError> {
        self.append(&bytes)
            .map_err(|why| StreamError::Trap(wasmtime::format_err!("{why}")))
    }
    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }
    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for CapturedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(
            self.append(buffer)
                .map(|()| buffer.len())
                .map_err(std::io::Error::other),
        )
    }
    fn poll_flush(self: Pin<&mut Self>, _context: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: Pin<&mut Self>,
        _context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::plugin_message;

    #[test]
    fn a_rust_panic_keeps_its_message() {
        let stderr = "thread '<unnamed>' panicked at src/lib.rs:148:29:\nbehave=panic: on purpose\n\
                      note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(
            plugin_message(stderr),
            "thread '<unnamed>' panicked at src/lib.rs:148:29: / behave=panic: on purpose"
        );
    }

    /// What componentize-js prints when a JS export throws an `Error` it cannot turn into the
    /// WIT error: the thrown error is the message, not the frames or the abort line.
    #[test]
    fn a_js_exception_is_reduced_to_the_error_it_threw() {
        let stderr = "invalid variant tag value `undefined` (received `TypeError: x is null`) \
                      specified for `PluginError`\nStack:\n  export_init@/tmp/a/initializer.js:172:17\n\
                      Redirecting call to abort() to mozalloc_abort\n";
        assert_eq!(plugin_message(stderr), "TypeError: x is null");
        let uncaught = "Error: no key\nStack:\n  transform@bundle.js:10:5\n  @bundle.js:1:1\n";
        assert_eq!(plugin_message(uncaught), "Error: no key");
    }

    #[test]
    fn only_the_last_lines_are_kept() {
        assert_eq!(plugin_message("a\nb\n\nc\nd\n"), "b / c / d");
        assert_eq!(plugin_message(""), "");
    }
}
