//! Plugins written in TypeScript: the SDK in `sdk-js/` built to components by its own build
//! command, run by the real engine. The same sandbox promises hold for a plugin that carries a
//! whole JS engine (memory, deadline, no way out), a JS exception reads as a sentence, and the
//! TS port of `mask-pii` writes exactly what the Rust one writes.
//!
//! The components come from `scripts/ensure-ts-plugins.sh` (npm ci + `npm run build`), which
//! `scripts/test.sh` runs first; the engine's cargo build does not need Node. A test that finds
//! a component missing or older than its sources fails saying to run that script, rather than
//! testing a stale build or skipping. A TS component is ~16 MiB and takes several seconds to
//! compile, so the first test compiles them all once into a plugin cache that every test's
//! workspace starts from (the cache is keyed by module hash, so nothing stale can be served).

use crate::support::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// (folder, component) of each TS plugin the tests use.
const TS_PLUGINS: [(&str, &str); 3] = [
    ("plugins-ts/mask-pii", "mask_pii_ts.wasm"),
    ("plugins-ts/shop-mapping", "shop_mapping_ts.wasm"),
    ("tests/plugins/hostile-ts", "hostile_ts.wasm"),
];

/// The newest modification time of the files under `path`.
fn newest(path: &Path) -> std::time::SystemTime {
    let meta = std::fs::metadata(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    if !meta.is_dir() {
        return meta.modified().unwrap();
    }
    std::fs::read_dir(path)
        .unwrap()
        .map(|entry| newest(&entry.unwrap().path()))
        .max()
        .unwrap_or(std::time::UNIX_EPOCH)
}

/// The built component of the TS plugin in `folder`; panics with how to build it when it is
/// missing or older than what it is built from.
fn ts_plugin(component: &str) -> PathBuf {
    let (folder, _) = TS_PLUGINS
        .iter()
        .find(|(_, name)| *name == component)
        .expect("a known TS plugin");
    let folder = repo().join(folder);
    let wasm = folder.join("dist").join(component);
    let fix = "run scripts/ensure-ts-plugins.sh (npm ci + npm run build; needs Node 20+ and the \
               npm registry) — scripts/test.sh does it before the tests";
    let built = std::fs::metadata(&wasm)
        .and_then(|meta| meta.modified())
        .unwrap_or_else(|err| {
            panic!(
                "the TS plugin {} is not built ({err}): {fix}",
                wasm.display()
            )
        });
    for source in [
        folder.join("src"),
        repo().join("sdk-js/src"),
        repo().join("sdk-js/bin"),
        repo().join("wit"),
        repo().join("package-lock.json"),
    ] {
        assert!(
            newest(&source) <= built,
            "the TS plugin {} is older than {}: {fix}",
            wasm.display(),
            source.display()
        );
    }
    wasm
}

/// A workspace whose plugin cache already holds every TS plugin, compiled once per test run.
fn warm_workspace() -> Workspace {
    static WARM: OnceLock<Workspace> = OnceLock::new();
    let warm = WARM.get_or_init(|| {
        let warm = Workspace::new();
        let transforms: String = [
            ts_wasm(
                "mask",
                "mask_pii_ts.wasm",
                "[transforms.config]\nkey = \"k\"\n",
            ),
            ts_wasm("shop", "shop_mapping_ts.wasm", ""),
            ts_wasm(
                "hostile",
                "hostile_ts.wasm",
                "[transforms.config]\nbehave = \"ok\"\n",
            ),
        ]
        .concat();
        let pipeline = warm.dir_pipeline("", &transforms);
        let run = warm.engine(&["validate", pipeline.to_str().unwrap()]);
        assert_eq!(run.code, 0, "{}", run.all_output());
        warm
    });
    let workspace = Workspace::new();
    let from = warm.path(".engine/plugin-cache");
    let to = workspace.path(".engine/plugin-cache");
    std::fs::create_dir_all(&to).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o700)).unwrap();
    for entry in std::fs::read_dir(&from).unwrap() {
        let entry = entry.unwrap();
        // fs::copy keeps the mode: the key stays private, as the cache requires.
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    workspace
}

fn ts_wasm(name: &str, component: &str, extra: &str) -> String {
    format!(
        "[[transforms]]\ntype = \"wasm\"\nname = \"{name}\"\nmodule = \"{}\"\n{extra}\n",
        ts_plugin(component).display()
    )
}

fn with_samples(workspace: &Workspace) {
    for name in ["toss_AUTH_20070706.dat", "toss_REV_20070706.dat"] {
        std::fs::copy(sample(name), workspace.inbox(name)).unwrap();
    }
}

const AUTH: &str = "record_kind=AUTH/trxdate=2007-07-06/toss_AUTH_20070706.parquet";
const REV: &str = "record_kind=REV/trxdate=2007-07-06/toss_REV_20070706.parquet";

/// The TS port of mask-pii and the Rust original give the same lake, value for value and byte
/// for byte, on the sample files and on a generated file of 100,000 rows.
#[test]
fn the_ts_mask_pii_writes_exactly_what_the_rust_one_writes() {
    let inputs = |workspace: &Workspace| {
        with_samples(workspace);
        std::fs::write(
            workspace.inbox("toss_AUTH_20070707.dat"),
            toss_file(100_000, "10"),
        )
        .unwrap();
    };
    let rust = Workspace::new();
    inputs(&rust);
    let rust_module = PathBuf::from(env!("ENGINE_PLUGIN_DIR")).join("mask_pii.wasm");
    let rust_pipeline = rust.dir_pipeline(
        "",
        &format!(
            "[[transforms]]\ntype = \"wasm\"\nname = \"mask\"\nmodule = \"{}\"\n\
             [transforms.config]\nkey = \"${{MASK_KEY}}\"\n",
            rust_module.display()
        ),
    );
    let ts = warm_workspace();
    inputs(&ts);
    // A JS engine interprets the HMAC: give a 64k-row batch room on a busy machine.
    let ts_pipeline = ts.dir_pipeline(
        "",
        &ts_wasm(
            "mask",
            "mask_pii_ts.wasm",
            "deadline_ms = 300000\n[transforms.config]\nkey = \"${MASK_KEY}\"\n",
        ),
    );
    let env = [("MASK_KEY", "a key with 한글 in it")];
    for (workspace, pipeline) in [(&rust, &rust_pipeline), (&ts, &ts_pipeline)] {
        let run = workspace.engine_with_env(&["run", pipeline.to_str().unwrap()], &env);
        assert_eq!(run.code, 0, "{}", run.all_output());
    }
    let files = rust.lake_files();
    assert_eq!(ts.lake_files(), files);
    let big = "record_kind=AUTH/trxdate=2007-07-07/toss_AUTH_20070707.parquet";
    assert!(files.iter().any(|file| file == big), "{files:?}");
    assert_eq!(total_rows(&ts.read_lake(big)), 100_000);
    for file in &files {
        let (rust_batches, ts_batches) = (rust.read_lake(file), ts.read_lake(file));
        // Schema (with field metadata) and every value.
        assert_eq!(ts_batches, rust_batches, "{file}");
        // And the files themselves.
        let bytes =
            |workspace: &Workspace| std::fs::read(workspace.path("lake").join(file)).unwrap();
        assert!(
            bytes(&ts) == bytes(&rust),
            "{file}: the Parquet files differ"
        );
    }
    // The masks are real masks: 64 hex digits, not the buyer ids.
    let masked = strings(&ts.read_lake(AUTH), "buyerid");
    assert_eq!(masked.len(), 4);
    for mask in masked {
        let mask = mask.expect("the samples' AUTH buyers are all set");
        assert_eq!(mask.len(), 64);
        assert!(mask.chars().all(|c| c.is_ascii_hexdigit()), "{mask}");
    }
}

#[test]
fn the_ts_shop_mapping_example_adds_its_columns() {
    let workspace = warm_workspace();
    with_samples(&workspace);
    let pipeline = workspace.dir_pipeline(
        "",
        &ts_wasm(
            "shop",
            "shop_mapping_ts.wasm",
            "[transforms.config]\nreview_from = 100000\n[transforms.config.channels]\ntoss = \"web\"\n",
        ),
    );
    let run = workspace.engine(&["run", pipeline.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let auth = workspace.read_lake(AUTH);
    assert_eq!(strings(&auth, "channel"), vec![Some("web".to_owned()); 4]);
    assert_eq!(
        strings(&auth, "method"),
        ["카드", "카드", "계좌이체", "계좌이체"].map(|m| Some(m.to_owned()))
    );
    assert_eq!(
        int64s(&auth, "signed_amount"),
        [15000, 35000, 319000, 91000]
    );
    let review = |batches: &[arrow::array::RecordBatch]| -> Vec<bool> {
        batches
            .iter()
            .flat_map(|batch| {
                let column = batch.column_by_name("review").expect("the plugin's column");
                arrow::array::AsArray::as_boolean(column.as_ref())
                    .values()
                    .iter()
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    assert_eq!(review(&auth), [false, false, true, false]);
    let rev = workspace.read_lake(REV);
    assert_eq!(int64s(&rev, "signed_amount"), [-115000, -97000, -16000]);
    assert_eq!(review(&rev), [true, false, false]);
    // The parser's columns come first, as they were (the lake keeps record_kind and trxdate in
    // the partition path, not in the file).
    let names: Vec<String> = auth[0]
        .schema()
        .fields()
        .iter()
        .map(|field| field.name().clone())
        .collect();
    assert_eq!(names[..2], ["mid", "paytype"]);
    assert_eq!(
        names[names.len() - 4..],
        ["channel", "method", "signed_amount", "review"]
    );
}

/// Runs the hostile TS plugin with `behave` and checks the run failed cleanly, as the Rust
/// hostile plugin's tests do: exit 1, the error naming the plugin, the file, the batch and
/// `cause`, nothing of the file in the lake. Returns the engine's stderr.
fn assert_hostile_ts_fails(
    behave: &str,
    extra: &str,
    config: &str,
    env: &[(&str, &str)],
    cause: &str,
) -> String {
    let workspace = warm_workspace();
    with_samples(&workspace);
    let pipeline = workspace.dir_pipeline(
        "",
        &ts_wasm(
            "hostile-ts",
            "hostile_ts.wasm",
            &format!("{extra}\n[transforms.config]\nbehave = \"{behave}\"\n{config}"),
        ),
    );
    let run = workspace.engine_with_env(&["run", pipeline.to_str().unwrap()], env);
    assert_eq!(run.code, 1, "{behave}: {}", run.all_output());
    assert!(
        run.stderr
            .contains("plugin `hostile-ts` failed on toss_AUTH_20070706.dat, batch 1"),
        "{behave}: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains(cause),
        "{behave}: expected {cause:?} in {}",
        run.stderr
    );
    workspace.assert_no_parquet_left(behave);
    run.stderr
}

#[test]
fn a_ts_plugin_in_an_endless_loop_is_stopped_at_the_deadline() {
    assert_hostile_ts_fails(
        "spin",
        "deadline_ms = 300",
        "",
        &[],
        "CPU deadline of 300 ms",
    );
}

#[test]
fn a_ts_memory_bomb_is_stopped_at_the_memory_limit() {
    assert_hostile_ts_fails(
        "memory-bomb",
        "memory_limit_mb = 64",
        "",
        &[],
        "memory limit of 64 MiB",
    );
}

/// A plain JS exception (a bug, not a `PluginError`) reads as the exception and where it was
/// thrown, not as an abort.
#[test]
fn a_js_exception_is_shown_in_its_own_words() {
    let stderr = assert_hostile_ts_fails(
        "throw",
        "",
        "",
        &[],
        "refused the batch: TypeError: can't access property \"field\"",
    );
    assert!(!stderr.contains("panicked or aborted"), "{stderr}");
}

/// The build leaves a TS plugin no network: the http feature is off, so the component imports
/// no wasi:http and `fetch` is a stub that aborts; nothing reaches a server on this machine.
#[test]
fn a_ts_plugin_cannot_reach_the_network() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = format!("http://{}/", listener.local_addr().unwrap());
    let stderr = assert_hostile_ts_fails(
        "network",
        "",
        &format!("address = \"{address}\"\n"),
        &[],
        "hostile-ts",
    );
    // The runtime's fetch stub aborts the component (or, in a runtime without one, the plugin
    // says there is none); it never returns.
    assert!(
        stderr.contains("panicked or aborted") || stderr.contains("this runtime has no fetch"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("returned"),
        "the fetch went through: {stderr}"
    );
    match listener.accept() {
        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the plugin reached {address}: {other:?}"),
    }
}

/// Neither the engine's environment nor its files are visible to a TS plugin: the ways Node
/// code would look (`process.env`, `require("fs")`) find nothing.
#[test]
fn a_ts_plugin_sees_no_environment_and_no_files() {
    let stderr = assert_hostile_ts_fails(
        "snoop",
        "allow_env = []",
        "",
        &[("TS_PLUGIN_SECRET", "s3cret-value")],
        "refused the batch: data: snoop: found {}",
    );
    assert!(!stderr.contains("s3cret-value"), "{stderr}");
}

#[test]
fn a_ts_plugin_config_error_surfaces_at_validate() {
    let workspace = warm_workspace();
    let pipeline = workspace.dir_pipeline(
        "",
        &ts_wasm(
            "hostile-ts",
            "hostile_ts.wasm",
            "[transforms.config]\nbehave = \"config-error\"\n",
        ),
    );
    let run = workspace.engine(&["validate", pipeline.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.all_output());
    assert!(
        run.stderr.contains(
            "rejected its [transforms.config]: configuration: behave=config-error: this plugin refuses its config"
        ),
        "{}",
        run.stderr
    );
}

/// Runs `program args` in `dir`, failing the test with its output when it fails.
fn run_in(dir: &Path, program: &str, args: &[&str]) -> String {
    let output = std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|err| {
            panic!(
                "cannot run {program} ({err}); scripts/ensure-ts-plugins.sh installs Node and npm"
            )
        });
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "{program} {args:?} failed:\n{text}"
    );
    text
}

/// `engine plugin new NAME --lang ts` gives an npm package whose own scripts test and build it
/// (linked to this checkout's SDK, whose tools `npm ci` installed), and the component runs in a
/// pipeline as it is.
#[test]
fn a_scaffolded_ts_plugin_tests_builds_and_runs() {
    // The checkout's Node packages are installed (and the TS plugins built) before this test.
    ts_plugin("mask_pii_ts.wasm");
    let workspace = Workspace::new();
    let made = workspace.engine(&["plugin", "new", "flag-large", "--lang", "ts", "--dir", "."]);
    assert_eq!(made.code, 0, "{}", made.all_output());
    assert!(made.stdout.contains("npm install"), "{}", made.stdout);
    let project = workspace.path("flag-large");
    run_in(
        &project,
        "npm",
        &["install", "--prefer-offline", "--no-audit", "--no-fund"],
    );
    let tested = run_in(&project, "npm", &["test"]);
    assert!(tested.contains("# pass 2"), "{tested}");
    assert!(tested.contains("# fail 0"), "{tested}");
    run_in(&project, "npm", &["run", "build"]);
    let module = project.join("dist/flag_large.wasm");
    assert!(module.is_file(), "{} was not built", module.display());

    with_samples(&workspace);
    let pipeline = workspace.dir_pipeline(
        "",
        &format!(
            "[[transforms]]\ntype = \"wasm\"\nname = \"flag-large\"\nmodule = \"{}\"\n\
             [transforms.config]\nthreshold = 35000\n",
            module.display()
        ),
    );
    let run = workspace.engine(&["run", pipeline.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let large: Vec<Option<bool>> = workspace
        .read_lake(AUTH)
        .iter()
        .flat_map(|batch| {
            let column = batch.column_by_name("large").expect("the plugin's column");
            arrow::array::AsArray::as_boolean(column.as_ref())
                .iter()
                .collect::<Vec<_>>()
        })
        .collect();
    // Amounts 15000, 35000, 319000, 91000 against a threshold of 35000.
    assert_eq!(large, [Some(false), Some(true), Some(true), Some(true)]);
}

/// apache-arrow writes a table without batches as a schema alone; the engine (contract 1.0)
/// takes that answer as an empty batch of that schema: every row dropped, the file loaded.
#[test]
fn an_answer_with_a_schema_and_no_batch_is_an_empty_batch() {
    let workspace = warm_workspace();
    with_samples(&workspace);
    let pipeline = workspace.dir_pipeline(
        "",
        &ts_wasm(
            "hostile-ts",
            "hostile_ts.wasm",
            "[transforms.config]\nbehave = \"schema-only\"\n",
        ),
    );
    let run = workspace.engine(&["run", pipeline.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(run.stdout.contains("2 loaded"), "{}", run.all_output());
    assert_eq!(total_rows(&workspace.read_lake(AUTH)), 0);
    // The empty file has the columns the plugin announced: the parser's, as without a plugin.
    let schema = |workspace: &Workspace| {
        let file = std::fs::File::open(workspace.path("lake").join(AUTH)).unwrap();
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .schema()
            .clone()
    };
    let plain = Workspace::new();
    with_samples(&plain);
    let plain_run = plain.engine(&["run", plain.default_pipeline("").to_str().unwrap()]);
    assert_eq!(plain_run.code, 0, "{}", plain_run.all_output());
    assert_eq!(schema(&workspace), schema(&plain));
}

/// The TS SDK's `toss.schema()` is the schema of the batches the engine's parser hands the first
/// plugin (names, types, nullability, field metadata): the TS side of `contract_tests`.
#[test]
fn the_ts_sdks_toss_schema_is_the_parsers() {
    let check = ts_wasm(
        "schema",
        "hostile_ts.wasm",
        "[transforms.config]\nbehave = \"toss-schema\"\n",
    );
    let workspace = warm_workspace();
    with_samples(&workspace);
    let pipeline = workspace.dir_pipeline("", &check);
    let run = workspace.engine(&["run", pipeline.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    // The check does fail on another schema: after a plugin that adds columns.
    let after_mapping = warm_workspace();
    with_samples(&after_mapping);
    let transforms = format!("{}{check}", ts_wasm("shop", "shop_mapping_ts.wasm", ""));
    let pipeline = after_mapping.dir_pipeline("", &transforms);
    let run = after_mapping.engine(&["run", pipeline.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert!(
        run.stderr.contains("toss-schema: the engine sent"),
        "{}",
        run.stderr
    );
}
