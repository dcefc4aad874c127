//! Compiled plugins on disk. Compiling a component with Cranelift takes a good part of a second
//! or more; a cached artifact loads in milliseconds. The cache key is the module's content hash
//! and the engine's compatibility hash (wasmtime version and compiler settings), so a changed
//! plugin or a new engine build never loads a stale artifact. Files are written under a
//! temporary name and renamed, so a crash leaves no half-written artifact to trust.

use super::sandbox::runtime;
use std::hash::{Hash, Hasher};
use std::path::Path;
use wasmtime::component::Component;
use xxhash_rust::xxh3::{Xxh3, xxh3_128};

/// Loads the component at `module`, from `{state_dir}/plugin-cache/` when it was compiled
/// before.
pub fn load_component(module: &Path, state_dir: &Path) -> Result<Component, String> {
    let bytes = std::fs::read(module).map_err(|err| {
        format!("cannot read the plugin ({err}); check `module` in [[transforms]]")
    })?;
    let engine = &runtime().engine;
    let mut compatibility = Xxh3::new();
    engine
        .precompile_compatibility_hash()
        .hash(&mut compatibility);
    let folder = state_dir.join("plugin-cache");
    let cached = folder.join(format!(
        "{:032x}-{:016x}.cwasm",
        xxh3_128(&bytes),
        compatibility.finish()
    ));
    if cached.exists() {
        // SAFETY: the file was written by `Component::serialize` of this engine build (the
        // compatibility hash in its name says so) into the pipeline's own state_dir, and is
        // renamed into place only once complete.
        #[allow(unsafe_code)]
        let deserialized = unsafe { Component::deserialize_file(engine, &cached) };
        match deserialized {
            Ok(component) => return Ok(component),
            Err(err) => tracing::warn!(
                path = %cached.display(),
                "ignoring an unusable cached plugin: {err:#}"
            ),
        }
    }
    let started = std::time::Instant::now();
    let component = Component::new(engine, &bytes).map_err(|err| {
        if wasmparser_says_core_module(&bytes) {
            "this is a core WebAssembly module, not a component; build the plugin with \
             `cargo build --release --target wasm32-wasip2`"
                .to_owned()
        } else {
            format!("not a valid WebAssembly component: {err:#}")
        }
    })?;
    tracing::info!(
        module = %module.display(),
        secs = started.elapsed().as_secs_f64(),
        "compiled plugin"
    );
    if let Err(err) = store(&component, &folder, &cached) {
        tracing::warn!(
            "cannot cache the compiled plugin in {}: {err}",
            folder.display()
        );
    }
    Ok(component)
}

fn store(component: &Component, folder: &Path, path: &Path) -> std::io::Result<()> {
    let serialized = component.serialize().map_err(std::io::Error::other)?;
    std::fs::create_dir_all(folder)?;
    let temp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temp, serialized)?;
    std::fs::rename(&temp, path)
}

/// A core module starts with version 1 after the magic; a component with a different layer.
fn wasmparser_says_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}
