//! `type = "wasm"`: a merchant's own transform, as a WebAssembly component built against
//! `wit/transform.wit` (the contract at the top of the repository, which the SDK reads too) and
//! run by wasmtime.
//!
//! A plugin is someone else's code inside the merchant's data path, so the engine treats it as
//! untrusted: each plugin runs in its own store with no filesystem, network, environment or
//! clock unless the pipeline grants them ([`sandbox`]), a memory limit, and a CPU deadline per
//! batch enforced by epoch interruption. Whatever goes wrong inside — a trap, a panic, an endless
//! loop, an allocation storm, garbage instead of Arrow IPC — becomes a [`TransformFailure`] in
//! words, the file's load is aborted by the pipeline, and the engine carries on. After a trap
//! the instance is thrown away and a fresh one (re-initialised with the same config) serves the
//! next file.
//!
//! Compiling a component takes a while, so the compiled artifact is cached on disk ([`cache`]),
//! and run from there only once it proves to be this engine's own compilation of this module.

mod cache;
#[cfg(test)]
mod contract_tests;
mod ipc;
mod parallel;
mod sandbox;

use super::{BuildTransform, Transform, TransformContext, TransformFailure};
use crate::env::{EnvString, expand_env_in};
use crate::error::{Error, Result};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use sandbox::{Grants, Sandbox};
use serde::Deserialize;
use std::time::Duration;
use wasmtime::component::Component;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "transform",
    });
}

use bindings::toss_etl::transform::types::PluginError;

/// `[[transforms]]` with `type = "wasm"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmTransformConfig {
    /// Names the transform in the summary and in errors.
    pub name: EnvString,
    /// Path of the plugin's `.wasm` component.
    pub module: EnvString,
    /// Handed to the plugin's `init` as a JSON object; `${NAME}` is expanded in its strings.
    #[serde(default)]
    pub config: toml::Table,
    /// Memory the plugin may use, in MiB (default 256).
    #[serde(default = "default_memory_limit_mb")]
    pub memory_limit_mb: u64,
    /// CPU time one batch may take, in milliseconds (default 10000).
    #[serde(default = "default_deadline_ms")]
    pub deadline_ms: u64,
    /// Let the plugin read the real clock (default: it sees a clock stopped at the Unix epoch).
    #[serde(default)]
    pub allow_clock: bool,
    /// Environment variables the plugin may read (default none).
    #[serde(default, deserialize_with = "crate::env::expanded_list")]
    pub allow_env: Vec<String>,
    /// Bytes of stdout and of stderr a plugin may write per call, in KiB (default 64); more
    /// fails the batch.
    #[serde(default = "default_log_limit_kb")]
    pub log_limit_kb: usize,
    /// The plugin keeps nothing from one call to the next (its answer depends on the batch and
    /// its config alone), so the engine may call one instance of it per core at once, each with
    /// its own memory; the sinks still get the records in the file's order. Default false: one
    /// instance, called batch after batch.
    #[serde(default)]
    pub stateless: bool,
}

fn default_memory_limit_mb() -> u64 {
    256
}
fn default_deadline_ms() -> u64 {
    10_000
}
fn default_log_limit_kb() -> usize {
    64
}

impl BuildTransform for WasmTransformConfig {
    fn build(&self, context: &TransformContext<'_>) -> Result<Box<dyn Transform>> {
        let name = self.name.to_string();
        let at = |key: &str| format!("[[transforms]] {name} {key}");
        if self.memory_limit_mb == 0 || self.memory_limit_mb > 4096 {
            return Err(Error::config(
                at("memory_limit_mb"),
                "memory_limit_mb must be between 1 and 4096",
            ));
        }
        if self.deadline_ms == 0 {
            return Err(Error::config(
                at("deadline_ms"),
                "deadline_ms must be at least 1",
            ));
        }
        let config_json =
            config_to_json(&self.config).map_err(|message| Error::config(at("config"), message))?;
        let module_path = self.module.to_path();
        let loaded = cache::load_component(&module_path, context.state_dir).map_err(|why| {
            Error::config(at("module"), format!("{}: {why}", self.module.as_written()))
        })?;
        tracing::debug!(
            module = %module_path.display(),
            from_cache = loaded.from_cache,
            "loaded plugin"
        );
        let component = loaded.component;
        let grants = Grants {
            memory_limit_bytes: (self.memory_limit_mb as usize) << 20,
            deadline: Duration::from_millis(self.deadline_ms),
            clock: self.allow_clock,
            env: self
                .allow_env
                .iter()
                .filter_map(|key| std::env::var(key).ok().map(|value| (key.clone(), value)))
                .collect(),
            log_limit_bytes: self.log_limit_kb << 10,
        };
        let mut transform = WasmTransform {
            name: name.clone(),
            plugin: Plugin {
                component,
                config_json,
                grants,
            },
            instances: vec![Instance::default()],
            at_once: if self.stateless {
                crate::threads::count()
            } else {
                1
            },
            output_schema: None,
        };
        // Start one instance now, so a plugin that rejects its config fails `engine validate`
        // and the run before any data moves.
        transform.instances[0]
            .live(&transform.plugin)
            .map_err(|failure| Error::config(at("config"), failure.0))?;
        Ok(Box::new(transform))
    }
}

/// The `[transforms.config]` table as a JSON object, with `${NAME}` expanded in every string.
fn config_to_json(table: &toml::Table) -> std::result::Result<String, String> {
    fn convert(value: &toml::Value, path: &str) -> std::result::Result<serde_json::Value, String> {
        Ok(match value {
            toml::Value::String(text) => serde_json::Value::String(
                expand_env_in(text).map_err(|why| format!("{path}: {why}"))?,
            ),
            toml::Value::Integer(number) => serde_json::Value::from(*number),
            toml::Value::Float(number) => serde_json::Value::from(*number),
            toml::Value::Boolean(flag) => serde_json::Value::Bool(*flag),
            toml::Value::Datetime(datetime) => serde_json::Value::String(datetime.to_string()),
            toml::Value::Array(items) => serde_json::Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| convert(item, &format!("{path}[{index}]")))
                    .collect::<std::result::Result<_, _>>()?,
            ),
            toml::Value::Table(table) => serde_json::Value::Object(
                table
                    .iter()
                    .map(|(key, item)| Ok((key.clone(), convert(item, &format!("{path}.{key}"))?)))
                    .collect::<std::result::Result<_, String>>()?,
            ),
        })
    }
    let object = convert(&toml::Value::Table(table.clone()), "config")?;
    Ok(object.to_string())
}

/// What every instance of one plugin is made from.
struct Plugin {
    component: Component,
    config_json: String,
    grants: Grants,
}

/// One instance of a plugin, started when first called.
#[derive(Default)]
struct Instance {
    /// The instance serving calls; `None` before the first call, and after a trap until the next
    /// call makes a fresh one.
    live: Option<Sandbox<bindings::Transform>>,
    /// The IPC bytes of the batch being sent, kept from call to call.
    input: Vec<u8>,
}

impl Instance {
    /// The live instance, making (and initialising) one when there is none.
    fn live(
        &mut self,
        plugin: &Plugin,
    ) -> std::result::Result<&mut Sandbox<bindings::Transform>, TransformFailure> {
        if self.live.is_none() {
            let mut sandbox = Sandbox::instantiate(
                &plugin.component,
                &plugin.grants,
                |store, component, linker| {
                    bindings::Transform::instantiate(store, component, linker)
                },
            )
            .map_err(|err| TransformFailure(format!("cannot start the plugin: {err:#}")))?;
            let answer =
                sandbox.call(|bindings, store| bindings.call_init(store, &plugin.config_json));
            match answer {
                Ok(Ok(())) => {}
                Ok(Err(refusal)) => {
                    return Err(TransformFailure(format!(
                        "rejected its [transforms.config]: {}",
                        describe_refusal(&refusal)
                    )));
                }
                Err(trap) => return Err(TransformFailure(format!("failed in init: {trap}"))),
            }
            self.live = Some(sandbox);
        }
        Ok(self.live.as_mut().expect("made above"))
    }

    /// One call of the plugin's `transform` on IPC bytes; a trap retires the instance.
    fn call_transform(
        &mut self,
        plugin: &Plugin,
        input: &[u8],
    ) -> std::result::Result<Vec<u8>, TransformFailure> {
        let sandbox = self.live(plugin)?;
        let answer = sandbox.call(|bindings, store| bindings.call_transform(store, input));
        match answer {
            Ok(Ok(output)) => Ok(output),
            Ok(Err(refusal)) => Err(TransformFailure(format!(
                "refused the batch: {}",
                describe_refusal(&refusal)
            ))),
            Err(trap) => {
                self.live = None;
                Err(TransformFailure(trap.to_string()))
            }
        }
    }

    fn run(
        &mut self,
        plugin: &Plugin,
        batch: &RecordBatch,
    ) -> std::result::Result<RecordBatch, TransformFailure> {
        let mut input = std::mem::take(&mut self.input);
        ipc::encode_into(batch, &mut input).map_err(|err| {
            TransformFailure(format!("cannot encode the batch as Arrow IPC: {err}"))
        })?;
        let output = self.call_transform(plugin, &input);
        self.input = input;
        ipc::decode(output?).map_err(TransformFailure)
    }

    /// [`run`](Self::run), refusing an answer whose schema is not the announced `expected`.
    fn run_checked(
        &mut self,
        plugin: &Plugin,
        batch: &RecordBatch,
        expected: &SchemaRef,
    ) -> std::result::Result<RecordBatch, TransformFailure> {
        let output = self.run(plugin, batch)?;
        if output.schema().fields() != expected.fields() {
            return Err(TransformFailure(format!(
                "returned a batch whose schema differs from the one it announced; expected {}, got {}",
                ipc::describe_fields(expected),
                ipc::describe_fields(&output.schema())
            )));
        }
        Ok(output)
    }
}

/// One plugin with its instances.
struct WasmTransform {
    name: String,
    plugin: Plugin,
    /// The first serves every call, and for a stateless plugin the others join it on calls
    /// made at once; started as they are first needed, at most `at_once`.
    instances: Vec<Instance>,
    /// How many instances may run at once: one per core for a stateless plugin, else one.
    at_once: usize,
    /// What the plugin announced for the current input schema.
    output_schema: Option<(SchemaRef, SchemaRef)>,
}

fn describe_refusal(refusal: &PluginError) -> String {
    match refusal {
        PluginError::Config(message) => format!("configuration: {message}"),
        PluginError::Data(message) => format!("data: {message}"),
        PluginError::Other(message) => message.clone(),
    }
}

impl Transform for WasmTransform {
    fn name(&self) -> &str {
        &self.name
    }

    fn output_schema(
        &mut self,
        input: &SchemaRef,
    ) -> std::result::Result<SchemaRef, TransformFailure> {
        if let Some((known_input, output)) = &self.output_schema
            && known_input == input
        {
            return Ok(output.clone());
        }
        let probe = self.instances[0].run(&self.plugin, &RecordBatch::new_empty(input.clone()))?;
        let output = probe.schema();
        self.output_schema = Some((input.clone(), output.clone()));
        Ok(output)
    }

    fn transform(
        &mut self,
        batch: RecordBatch,
    ) -> std::result::Result<RecordBatch, TransformFailure> {
        let expected = self.output_schema(&batch.schema())?;
        self.instances[0].run_checked(&self.plugin, &batch, &expected)
    }

    fn transform_all(
        &mut self,
        batches: Vec<RecordBatch>,
    ) -> std::result::Result<Vec<RecordBatch>, (usize, TransformFailure)> {
        let mut expected = Vec::with_capacity(batches.len());
        for (at, batch) in batches.iter().enumerate() {
            expected.push(
                self.output_schema(&batch.schema())
                    .map_err(|failure| (at, failure))?,
            );
        }
        let at_once = self.at_once.min(batches.len()).max(1);
        if self.instances.len() < at_once {
            self.instances.resize_with(at_once, Instance::default);
        }
        parallel::run_in_order(
            &self.plugin,
            &mut self.instances[..at_once],
            &batches,
            &expected,
        )
    }
}
