//! Compiled plugins on disk. Compiling a component with Cranelift takes a good part of a second
//! or more; a cached artifact loads in milliseconds.
//!
//! A cached artifact is native code: wasmtime maps it executable and runs it without any of the
//! checks a WebAssembly module goes through, which is why loading one is `unsafe`. So the engine
//! runs a cache entry only when it can tell that it wrote that entry itself, from these very
//! module bytes, with this very engine build:
//!
//! - The folder `{state_dir}/plugin-cache/` is the engine user's alone: created with mode 0700;
//!   one found open to group or others is closed (0700) before use; one owned by another user,
//!   or that is not a plain folder, is not used at all (the plugin is compiled in memory, with a
//!   warning).
//! - `plugin-cache/key` holds 32 random bytes, made on first use, mode 0600. A key file that is
//!   not a private file of the engine's user, or not 32 bytes, is replaced by a new key.
//! - An entry is `{module hash}-{engine build}.cwasm`: a header ([`MAGIC`], then an
//!   HMAC-SHA256 tag under the key) followed by what `Component::serialize` wrote. The tag covers
//!   the module's SHA-256, the engine build's fingerprint (engine version, wasmtime version and
//!   the compiler settings that decide compatibility) and the artifact bytes.
//! - Loading reads the whole entry into memory, checks the tag, and deserializes exactly the
//!   bytes it checked. Any mismatch — changed bytes, another plugin's entry copied over this
//!   one's name, an entry of another engine build — is logged as a warning and the plugin is
//!   compiled afresh (and the entry rewritten).
//! - Entries and the key are written under a temporary name and renamed into place, so a crash
//!   or a concurrent run never leaves a half-written file under a real name.
//!
//! What is trusted, then, is the owner of the cache folder (the engine's user, and root): whoever
//! can read the key can forge an entry, and whoever runs as that user can run code as it anyway.

use super::sandbox::runtime;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The first bytes of a cache entry, naming its layout: this, a 32-byte tag, the artifact.
const MAGIC: &[u8; 8] = b"TECWASM1";
/// Bytes of the HMAC-SHA256 tag.
const TAG_LEN: usize = 32;
/// Bytes of the cache key.
const KEY_LEN: usize = 32;
/// Put before what the tag covers, so that the key signs nothing else by accident.
const TAG_CONTEXT: &[u8] = b"toss-etl plugin cache entry v1\0";

/// A loaded plugin, and whether it came from the cache (`false`: compiled just now).
pub struct Loaded {
    pub component: Component,
    pub from_cache: bool,
}

/// Loads the component at `module`, from `{state_dir}/plugin-cache/` when a verified entry of
/// it is there; compiles it (and caches the result) otherwise.
pub fn load_component(module: &Path, state_dir: &Path) -> Result<Loaded, String> {
    let bytes = std::fs::read(module).map_err(|err| {
        format!("cannot read the plugin ({err}); check `module` in [[transforms]]")
    })?;
    let engine = &runtime().engine;
    load(
        engine,
        &bytes,
        module,
        &state_dir.join("plugin-cache"),
        &build_fingerprint(engine),
    )
}

/// What decides whether an artifact fits this engine: the engine's version, wasmtime's version,
/// and wasmtime's own compatibility hash of its compiler settings.
fn build_fingerprint(engine: &Engine) -> [u8; 32] {
    /// Feeds what `Hash` writes into SHA-256, so the fingerprint is stable across runs (std's
    /// default hasher is randomly keyed).
    struct Sha256Hasher(Sha256);
    impl Hasher for Sha256Hasher {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        fn finish(&self) -> u64 {
            unreachable!("only the digest is used")
        }
    }
    let mut hasher = Sha256Hasher(Sha256::new());
    hasher.0.update(b"engine ");
    hasher.0.update(env!("CARGO_PKG_VERSION"));
    hasher.0.update(b"\0wasmtime ");
    hasher.0.update(env!("ENGINE_WASMTIME_VERSION"));
    hasher.0.update(b"\0");
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.finalize().into()
}

fn load(
    engine: &Engine,
    bytes: &[u8],
    module: &Path,
    folder: &Path,
    fingerprint: &[u8; 32],
) -> Result<Loaded, String> {
    let module_hash: [u8; 32] = Sha256::digest(bytes).into();
    let cache = match open_cache(folder) {
        Ok(cache) => Some(cache),
        Err(why) => {
            tracing::warn!(
                folder = %folder.display(),
                "not using the plugin cache, compiling in memory: {why}"
            );
            None
        }
    };
    let entry = cache.as_ref().map(|cache| {
        let name = format!(
            "{}-{}.cwasm",
            hex::encode(&module_hash[..16]),
            hex::encode(&fingerprint[..8])
        );
        (cache, folder.join(name))
    });
    if let Some((cache, path)) = &entry
        && let Some(component) = cached(engine, cache, path, &module_hash, fingerprint)
    {
        return Ok(Loaded {
            component,
            from_cache: true,
        });
    }
    let started = std::time::Instant::now();
    let component = Component::new(engine, bytes).map_err(|err| {
        if wasmparser_says_core_module(bytes) {
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
    if let Some((cache, path)) = &entry
        && let Err(err) = store(&component, cache, path, &module_hash, fingerprint)
    {
        tracing::warn!(
            "cannot cache the compiled plugin in {}: {err}",
            folder.display()
        );
    }
    Ok(Loaded {
        component,
        from_cache: false,
    })
}

/// The component in the entry at `path`, if there is one and its tag proves it is this module
/// compiled by this engine build.
fn cached(
    engine: &Engine,
    cache: &Cache,
    path: &Path,
    module_hash: &[u8; 32],
    fingerprint: &[u8; 32],
) -> Option<Component> {
    let entry = match std::fs::read(path) {
        Ok(entry) => entry,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return None,
        Err(err) => {
            tracing::warn!(
                path = %path.display(),
                "cannot read a cached plugin, recompiling: {err}"
            );
            return None;
        }
    };
    let verified = entry
        .strip_prefix(MAGIC.as_slice())
        .filter(|rest| rest.len() > TAG_LEN)
        .map(|rest| rest.split_at(TAG_LEN))
        .and_then(|(tag, artifact)| {
            cache
                .mac(module_hash, fingerprint, artifact)
                .verify_slice(tag)
                .is_ok()
                .then_some(artifact)
        });
    let Some(artifact) = verified else {
        tracing::warn!(
            path = %path.display(),
            "a cached plugin does not verify (changed, copied from another plugin, or made by \
             another engine build or cache key); recompiling it instead of running it"
        );
        return None;
    };
    // SAFETY: `Component::deserialize` requires bytes that `Component::serialize` (or
    // `Engine::precompile_component`) produced: they become native code that runs unchecked.
    // These bytes are that: `store` wrote them from `Component::serialize` with a tag under the
    // cache key, and the tag was just verified over these very bytes in memory (no file is read
    // again, so nothing can change them between the check and the load). The tag also binds them
    // to this module's SHA-256 and this engine build's fingerprint. The key is a private file of
    // the engine's user in a folder only that user may write (`open_cache` checks both), so a
    // valid tag can only come from this engine running as that user, or from someone who can
    // already run code as that user. Whatever wasmtime can still check (its version, the
    // compiler settings) it checks itself and fails with an error.
    #[allow(unsafe_code)]
    let loaded = unsafe { Component::deserialize(engine, artifact) };
    match loaded {
        Ok(component) => Some(component),
        Err(err) => {
            tracing::warn!(
                path = %path.display(),
                "ignoring an unusable cached plugin, recompiling: {err:#}"
            );
            None
        }
    }
}

fn store(
    component: &Component,
    cache: &Cache,
    path: &Path,
    module_hash: &[u8; 32],
    fingerprint: &[u8; 32],
) -> std::io::Result<()> {
    let artifact = component.serialize().map_err(std::io::Error::other)?;
    let tag = cache
        .mac(module_hash, fingerprint, &artifact)
        .finalize()
        .into_bytes();
    let mut entry = Vec::with_capacity(MAGIC.len() + TAG_LEN + artifact.len());
    entry.extend_from_slice(MAGIC);
    entry.extend_from_slice(&tag);
    entry.extend_from_slice(&artifact);
    write_then_rename(path, &entry)
}

/// An open cache folder and its key.
struct Cache {
    key: [u8; KEY_LEN],
}

impl Cache {
    /// The HMAC over what an entry must be bound to, ready to finalize or verify.
    fn mac(&self, module_hash: &[u8; 32], fingerprint: &[u8; 32], artifact: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(TAG_CONTEXT);
        mac.update(module_hash);
        mac.update(fingerprint);
        mac.update(artifact);
        mac
    }
}

/// Makes sure `folder` is private to the engine's user and reads (or makes) its key.
#[cfg(unix)]
fn open_cache(folder: &Path) -> Result<Cache, String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let me = current_uid();
    match std::fs::DirBuilder::new().mode(0o700).create(folder) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(folder.parent().unwrap_or(folder))
                .and_then(|()| std::fs::DirBuilder::new().mode(0o700).create(folder))
                .map_err(|err| format!("cannot create it: {err}"))?;
        }
        Err(err) => return Err(format!("cannot create it: {err}")),
    }
    let meta = std::fs::symlink_metadata(folder).map_err(|err| format!("cannot read it: {err}"))?;
    if !meta.is_dir() {
        return Err("it is not a folder (a symbolic link or a file is not trusted)".to_owned());
    }
    if meta.uid() != me {
        return Err(format!(
            "it belongs to user {}, not to the engine's user {me}; compiled plugins are run \
             only from a folder of the engine's own user",
            meta.uid()
        ));
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o700))
            .map_err(|err| format!("it is open to other users and cannot be closed: {err}"))?;
        tracing::warn!(
            folder = %folder.display(),
            "the plugin cache folder was open to other users (mode {:o}); made it private (700)",
            meta.mode() & 0o777
        );
    }
    let key = read_or_make_key(&folder.join("key"), me)?;
    Ok(Cache { key })
}

/// Without Unix permissions the engine cannot make the folder private: no cache.
#[cfg(not(unix))]
fn open_cache(_folder: &Path) -> Result<Cache, String> {
    Err("the plugin cache needs Unix file permissions to keep its key private".to_owned())
}

#[cfg(unix)]
#[allow(unsafe_code)]
fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The key in `path` when it is a private 32-byte file of user `me`; a fresh one otherwise.
#[cfg(unix)]
fn read_or_make_key(path: &Path, me: u32) -> Result<[u8; KEY_LEN], String> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    // O_NOFOLLOW: a symbolic link named `key` is not a key. The checks below are on the opened
    // file itself, so the file read is the file checked.
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path);
    let why_new = match opened {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => Some(format!("cannot open it ({err})")),
        Ok(mut file) => {
            let meta = file.metadata().map_err(|err| err.to_string())?;
            let mut key = [0u8; KEY_LEN];
            if !meta.is_file() || meta.len() != KEY_LEN as u64 {
                Some("it is not a 32-byte file".to_owned())
            } else if meta.uid() != me || meta.mode() & 0o077 != 0 {
                Some(format!(
                    "it is not private to the engine's user (owner {}, mode {:o})",
                    meta.uid(),
                    meta.mode() & 0o777
                ))
            } else if let Err(err) = file.read_exact(&mut key) {
                Some(format!("cannot read it ({err})"))
            } else {
                return Ok(key);
            }
        }
    };
    if let Some(why) = &why_new {
        tracing::warn!(
            path = %path.display(),
            "replacing the plugin cache key, {why}; every cached plugin will be recompiled"
        );
    }
    let mut key = [0u8; KEY_LEN];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut key))
        .map_err(|err| format!("cannot read random bytes for its key: {err}"))?;
    if why_new.is_none() {
        // First use: put the key in place only if no concurrent run made one meanwhile; if one
        // did, use that one.
        let temp = temp_path(path);
        write_private(&temp, &key).map_err(|err| format!("cannot write its key: {err}"))?;
        let linked = std::fs::hard_link(&temp, path);
        let _ = std::fs::remove_file(&temp);
        return match linked {
            Ok(()) => Ok(key),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                read_existing_key(path, me)
            }
            Err(err) => Err(format!("cannot write its key: {err}")),
        };
    }
    write_then_rename(path, &key).map_err(|err| format!("cannot write its key: {err}"))?;
    Ok(key)
}

/// The key another run just put in place; it must pass the same checks.
#[cfg(unix)]
fn read_existing_key(path: &Path, me: u32) -> Result<[u8; KEY_LEN], String> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|err| format!("cannot open its key: {err}"))?;
    let meta = file.metadata().map_err(|err| err.to_string())?;
    if !meta.is_file()
        || meta.len() != KEY_LEN as u64
        || meta.uid() != me
        || meta.mode() & 0o077 != 0
    {
        return Err("its key is not a private 32-byte file of the engine's user".to_owned());
    }
    let mut key = [0u8; KEY_LEN];
    file.read_exact(&mut key)
        .map_err(|err| format!("cannot read its key: {err}"))?;
    Ok(key)
}

/// A name beside `path` that no other writer uses at the same time.
fn temp_path(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(
        ".tmp{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    path.with_file_name(name)
}

/// Creates `path` new, readable and writable by its owner only, holding `bytes`.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Writes `bytes` under a temporary name and renames it to `path`: readers see the old file or
/// the whole new one, never a part.
fn write_then_rename(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temp = temp_path(path);
    let written = write_private(&temp, bytes).and_then(|()| std::fs::rename(&temp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// A core module starts with version 1 after the magic; a component with a different layer.
fn wasmparser_says_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// An empty component with a custom section named `name`: valid, quick to compile, and a
    /// different module for each name.
    fn component(name: &str) -> Vec<u8> {
        let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
        let payload_len = 1 + name.len();
        assert!(payload_len < 128 && name.len() < 128);
        bytes.extend_from_slice(&[0, payload_len as u8, name.len() as u8]);
        bytes.extend_from_slice(name.as_bytes());
        bytes
    }

    struct Setup {
        _dir: tempfile::TempDir,
        folder: PathBuf,
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("plugin-cache");
        Setup { _dir: dir, folder }
    }

    fn engine() -> &'static Engine {
        &runtime().engine
    }

    /// Loads `bytes` with this build's fingerprint; whether it came from the cache.
    fn load_from(setup: &Setup, bytes: &[u8]) -> bool {
        load_as(setup, bytes, &build_fingerprint(engine()))
    }

    fn load_as(setup: &Setup, bytes: &[u8], fingerprint: &[u8; 32]) -> bool {
        load(
            engine(),
            bytes,
            Path::new("test.wasm"),
            &setup.folder,
            fingerprint,
        )
        .unwrap()
        .from_cache
    }

    fn entries(setup: &Setup) -> Vec<PathBuf> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&setup.folder)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "cwasm"))
            .collect();
        entries.sort();
        entries
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_good_entry_is_reused_from_a_private_folder() {
        let setup = setup();
        let a = component("a");
        assert!(!load_from(&setup, &a), "the first load compiles");
        assert!(load_from(&setup, &a), "the second load uses the cache");
        assert_eq!(entries(&setup).len(), 1);
        assert_eq!(mode(&setup.folder), 0o700);
        assert_eq!(mode(&setup.folder.join("key")), 0o600);
        assert_eq!(mode(&entries(&setup)[0]), 0o600);
        let leftovers: Vec<_> = std::fs::read_dir(&setup.folder)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .filter(|name| name.to_string_lossy().contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn an_altered_entry_is_recompiled_not_run() {
        let setup = setup();
        let a = component("a");
        assert!(!load_from(&setup, &a));
        let path = entries(&setup).remove(0);
        let good = std::fs::read(&path).unwrap();
        // One bit of the artifact, then one bit of the tag, then the header.
        for at in [good.len() - 1, MAGIC.len(), 0] {
            let mut bad = good.clone();
            bad[at] ^= 1;
            std::fs::write(&path, &bad).unwrap();
            assert!(!load_from(&setup, &a), "byte {at} altered");
            // The recompiled plugin replaced the entry with a good one.
            assert!(load_from(&setup, &a));
        }
        std::fs::write(&path, &good[..good.len() / 2]).unwrap();
        assert!(!load_from(&setup, &a), "truncated");
    }

    #[test]
    fn an_entry_copied_from_another_module_is_recompiled() {
        let setup = setup();
        let (a, b) = (component("a"), component("b"));
        assert!(!load_from(&setup, &a));
        let a_entry = entries(&setup).remove(0);
        assert!(!load_from(&setup, &b));
        let b_entry = entries(&setup)
            .into_iter()
            .find(|path| *path != a_entry)
            .unwrap();
        std::fs::copy(&b_entry, &a_entry).unwrap();
        assert!(!load_from(&setup, &a), "b's code under a's name");
        assert!(load_from(&setup, &a));
        assert!(load_from(&setup, &b));
    }

    #[test]
    fn an_entry_of_another_engine_build_is_recompiled() {
        let setup = setup();
        let a = component("a");
        let other_build = [7u8; 32];
        assert!(!load_as(&setup, &a, &other_build));
        let other_entry = entries(&setup).remove(0);
        assert!(!load_from(&setup, &a), "a separate entry for this build");
        let this_entry = entries(&setup)
            .into_iter()
            .find(|path| *path != other_entry)
            .unwrap();
        std::fs::copy(&other_entry, &this_entry).unwrap();
        assert!(
            !load_from(&setup, &a),
            "another build's entry under this build's name"
        );
    }

    #[test]
    fn entries_under_another_key_are_recompiled() {
        let setup = setup();
        let a = component("a");
        assert!(!load_from(&setup, &a));
        let key = setup.folder.join("key");
        let old_key = std::fs::read(&key).unwrap();
        std::fs::write(&key, [0u8; KEY_LEN]).unwrap();
        assert!(!load_from(&setup, &a), "signed with another key");
        // A key file others can read is replaced, and with it every entry's validity.
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(!load_from(&setup, &a));
        assert_eq!(mode(&key), 0o600);
        let new_key = std::fs::read(&key).unwrap();
        assert_eq!(new_key.len(), KEY_LEN);
        assert_ne!(new_key, [0u8; KEY_LEN]);
        assert_ne!(new_key, old_key);
        assert!(load_from(&setup, &a));
    }

    #[test]
    fn a_cache_folder_open_to_others_is_made_private() {
        let setup = setup();
        std::fs::create_dir(&setup.folder).unwrap();
        std::fs::set_permissions(&setup.folder, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(!load_from(&setup, &component("a")));
        assert_eq!(mode(&setup.folder), 0o700);
        assert!(load_from(&setup, &component("a")));
    }

    #[test]
    fn a_cache_folder_that_is_a_link_is_not_used() {
        let setup = setup();
        let elsewhere = setup.folder.with_file_name("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &setup.folder).unwrap();
        let a = component("a");
        assert!(!load_from(&setup, &a));
        assert!(!load_from(&setup, &a), "compiled in memory each time");
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    }
}
