//! Builds the WebAssembly plugins the pipelines and the tests use: the example plugins in
//! `plugins/` and the hostile test plugin in `tests/plugins/hostile/`, for `wasm32-wasip2`, into
//! `target/plugins/`. Doing it here means a plain `cargo run` or `cargo test` always has fresh
//! `.wasm` files and no test is ever skipped for want of one.
//!
//! Set `ENGINE_SKIP_PLUGIN_BUILD=1` to build the engine alone (the tests then need the `.wasm`
//! files from an earlier build).

use std::path::{Path, PathBuf};
use std::process::Command;

const PLUGIN_WORKSPACES: [&str; 2] = ["plugins", "tests/plugins/hostile"];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .parent()
        .expect("the engine lives in the workspace");
    let target_dir = root.join("target").join("plugins");
    let wasm_dir = target_dir.join("wasm32-wasip2").join("release");
    println!("cargo:rustc-env=ENGINE_PLUGIN_DIR={}", wasm_dir.display());
    println!("cargo:rerun-if-env-changed=ENGINE_SKIP_PLUGIN_BUILD");
    // The plugin cache binds each compiled plugin to the wasmtime that compiled it.
    let lock = root.join("Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    println!(
        "cargo:rustc-env=ENGINE_WASMTIME_VERSION={}",
        locked_version(&lock, "wasmtime").unwrap_or_else(|| "unknown".to_owned())
    );
    for watched in ["wit", "sdk/src", "sdk/Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    for workspace in PLUGIN_WORKSPACES {
        watch_sources(&root.join(workspace));
    }
    if std::env::var_os("ENGINE_SKIP_PLUGIN_BUILD").is_some() {
        return;
    }
    ensure_wasm_target();
    for workspace in PLUGIN_WORKSPACES {
        build_plugins(&root.join(workspace).join("Cargo.toml"), &target_dir);
    }
}

/// The version of `package` in the lock file, if it holds exactly one.
fn locked_version(lock: &Path, package: &str) -> Option<String> {
    let text = std::fs::read_to_string(lock).ok()?;
    let name_line = format!("name = \"{package}\"");
    let mut versions = text.split("[[package]]").filter_map(|entry| {
        let mut lines = entry.lines().map(str::trim);
        lines.any(|line| line == name_line).then_some(())?;
        let version = lines.next()?.strip_prefix("version = \"")?;
        Some(version.trim_end_matches('"').to_owned())
    });
    let version = versions.next()?;
    versions.next().is_none().then_some(version)
}

/// Adds the `wasm32-wasip2` standard library through rustup when it is missing, so that a fresh
/// clone builds with nothing but `cargo`.
fn ensure_wasm_target() {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let installed = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", "wasm32-wasip2"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()))
        .is_some_and(|libdir| libdir.is_dir());
    if installed {
        return;
    }
    println!("cargo:warning=installing the wasm32-wasip2 target with rustup to build the plugins");
    let added = Command::new("rustup")
        .args(["target", "add", "wasm32-wasip2"])
        .status();
    if !added.is_ok_and(|status| status.success()) {
        panic!(
            "the wasm32-wasip2 target is missing and `rustup target add wasm32-wasip2` failed; \
             install it by hand, or set ENGINE_SKIP_PLUGIN_BUILD=1 to build the engine alone"
        );
    }
}

/// Every Cargo.toml and source file of a plugin workspace (not its Cargo.lock, which the nested
/// build may touch).
fn watch_sources(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            if name != "target" {
                watch_sources(&path);
            }
        } else if name == "Cargo.toml" || path.extension().is_some_and(|ext| ext == "rs") {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

fn build_plugins(manifest: &Path, target_dir: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(manifest)
        .env("CARGO_TARGET_DIR", target_dir);
    // What cargo sets for this build script must not leak into the nested build.
    for variable in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        command.env_remove(variable);
    }
    let status = command
        .status()
        .unwrap_or_else(|err| panic!("cannot run cargo to build {}: {err}", manifest.display()));
    if !status.success() {
        panic!(
            "building the plugins in {} for wasm32-wasip2 failed (see above). Is the target \
             installed? `rustup target add wasm32-wasip2`. To build the engine alone, set \
             ENGINE_SKIP_PLUGIN_BUILD=1.",
            manifest.display()
        );
    }
}
