//! WebAssembly plugins — merchants' own mappings, run safely.

use crate::support::*;
use std::path::PathBuf;

fn plugin(name: &str) -> PathBuf {
    PathBuf::from(env!("ENGINE_PLUGIN_DIR")).join(format!("{name}.wasm"))
}

/// A pipeline over the samples with the given `[[transforms]]` tables.
fn pipeline_with(workspace: &Workspace, transforms: &str) -> PathBuf {
    for name in ["toss_AUTH_20070706.dat", "toss_REV_20070706.dat"] {
        std::fs::copy(sample(name), workspace.inbox(name)).unwrap();
    }
    workspace.dir_pipeline("", transforms)
}

fn wasm(name: &str, plugin_file: &str, extra: &str) -> String {
    format!(
        "[[transforms]]\ntype = \"wasm\"\nname = \"{name}\"\nmodule = \"{}\"\n{extra}\n",
        plugin(plugin_file).display()
    )
}

const AUTH: &str = "record_kind=AUTH/trxdate=2007-07-06/toss_AUTH_20070706.parquet";
const REV: &str = "record_kind=REV/trxdate=2007-07-06/toss_REV_20070706.parquet";

#[test]
fn the_identity_plugin_changes_no_value_and_no_type() {
    let plain = Workspace::new();
    let plain_pipeline = pipeline_with(&plain, "");
    assert_eq!(
        plain
            .engine(&["run", plain_pipeline.to_str().unwrap()])
            .code,
        0
    );

    let through = Workspace::new();
    let through_pipeline = pipeline_with(&through, &wasm("identity", "identity", ""));
    let run = through.engine(&["run", through_pipeline.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    for file in [AUTH, REV] {
        let expected = plain.read_lake(file);
        let actual = through.read_lake(file);
        assert_eq!(actual, expected, "{file}");
    }
}

#[test]
fn a_compiled_plugin_is_cached_for_the_next_run() {
    let workspace = Workspace::new();
    let pipeline = pipeline_with(&workspace, &wasm("identity", "identity", ""));
    let first = workspace.engine(&["validate", pipeline.to_str().unwrap()]);
    assert_eq!(first.code, 0, "{}", first.all_output());
    assert!(first.stderr.contains("compiled plugin"), "{}", first.stderr);
    let folder = workspace.path(".engine/plugin-cache");
    let mut cached: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    cached.sort();
    // The compiled plugin, and the key its entry is signed with; both private to this user.
    assert_eq!(cached.len(), 2, "{cached:?}");
    assert!(cached[0].ends_with(".cwasm"), "{cached:?}");
    assert_eq!(cached[1], "key");
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&folder), 0o700);
    assert_eq!(mode(&folder.join("key")), 0o600);

    let second = workspace.engine(&["run", pipeline.to_str().unwrap()]);
    assert_eq!(second.code, 0, "{}", second.all_output());
    assert!(
        !second.stderr.contains("compiled plugin"),
        "{}",
        second.stderr
    );
}

/// Runs the hostile plugin with `behave` and checks the run failed cleanly: exit 1 (the engine
/// itself did not crash), an error naming the plugin, the file, the batch and `cause`, and no
/// output of the file in the lake.
fn assert_hostile_fails(behave: &str, extra: &str, cause: &str) {
    let workspace = Workspace::new();
    let pipeline = pipeline_with(
        &workspace,
        &wasm(
            "hostile",
            "hostile",
            &format!("{extra}\n[transforms.config]\nbehave = \"{behave}\"\n"),
        ),
    );
    let run = workspace.engine(&["run", pipeline.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{behave}: {}", run.all_output());
    assert!(
        run.stderr
            .contains("plugin `hostile` failed on toss_AUTH_20070706.dat, batch 1"),
        "{behave}: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains(cause),
        "{behave}: expected {cause:?} in {}",
        run.stderr
    );
    workspace.assert_no_parquet_left(behave);
}

#[test]
fn a_panicking_plugin_fails_the_file_with_its_panic_message() {
    assert_hostile_fails("panic", "", "panicked");
}

#[test]
fn an_endless_loop_is_stopped_at_the_deadline() {
    assert_hostile_fails("spin", "deadline_ms = 300", "CPU deadline of 300 ms");
}

#[test]
fn a_memory_bomb_is_stopped_at_the_memory_limit() {
    assert_hostile_fails(
        "memory-bomb",
        "memory_limit_mb = 64",
        "memory limit of 64 MiB",
    );
}

#[test]
fn unbounded_recursion_is_stopped() {
    assert_hostile_fails("recursion", "", "recursion?");
}

#[test]
fn bytes_that_are_not_arrow_ipc_are_refused() {
    assert_hostile_fails("bad-ipc", "", "not a valid Arrow IPC stream");
}

#[test]
fn compressed_arrow_ipc_is_refused() {
    assert_hostile_fails("compressed-ipc", "", "compressed");
}

#[test]
fn a_changed_output_schema_is_refused() {
    assert_hostile_fails(
        "wrong-schema",
        "",
        "schema differs from the one it announced",
    );
}

#[test]
fn a_flood_of_output_is_cut_off() {
    assert_hostile_fails("flood", "log_limit_kb = 16", "more than 16 KiB to stdout");
}

#[test]
fn a_plugin_that_exits_the_process_does_not_take_the_engine_down() {
    // WASI 0.2 carries only success or failure on exit, so status 3 arrives as 1.
    assert_hostile_fails("exit", "", "exited the process with status 1");
}

#[test]
fn a_data_error_from_the_plugin_is_shown_in_its_words() {
    assert_hostile_fails("data-error", "", "refused the batch: data:");
}

#[test]
fn a_plugin_config_error_surfaces_at_validate() {
    let workspace = Workspace::new();
    let pipeline = pipeline_with(
        &workspace,
        &wasm(
            "hostile",
            "hostile",
            "[transforms.config]\nbehave = \"config-error\"\n",
        ),
    );
    let run = workspace.engine(&["validate", pipeline.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.all_output());
    assert!(run.stderr.contains("hostile"), "{}", run.stderr);
    assert!(
        run.stderr.contains("rejected its [transforms.config]"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("refuses its config"), "{}", run.stderr);
}

#[test]
fn a_missing_plugin_file_is_a_configuration_error() {
    let workspace = Workspace::new();
    let pipeline = pipeline_with(
        &workspace,
        "[[transforms]]\ntype = \"wasm\"\nname = \"mapping\"\nmodule = \"nowhere/missing.wasm\"\n",
    );
    let run = workspace.engine(&["validate", pipeline.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.all_output());
    assert!(
        run.stderr.contains("nowhere/missing.wasm"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("cannot read the plugin"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_shipped_pipeline_writes_the_mapped_and_masked_columns() {
    let workspace = Workspace::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // The shipped pipeline names paths relative to the repository root: run it from a copy.
    let text = std::fs::read_to_string(root.join("pipelines/daily.toml"))
        .unwrap()
        .replace("path = \"pipelines/inbox\"", "path = \"inbox\"")
        .replace("path = \"lake/toss\"", "path = \"lake\"")
        .replace(
            "target/plugins/wasm32-wasip2/release",
            env!("ENGINE_PLUGIN_DIR"),
        );
    for name in ["toss_AUTH_20070706.dat", "toss_REV_20070706.dat"] {
        std::fs::copy(sample(name), workspace.inbox(name)).unwrap();
    }
    let pipeline = workspace.pipeline("daily.toml", &text);
    let run = workspace.engine_with_env(
        &["run", pipeline.to_str().unwrap()],
        &[("BUYER_HASH_KEY", "test-key")],
    );
    assert_eq!(run.code, 0, "{}", run.all_output());

    let auth = workspace.read_lake(AUTH);
    // financecode 11100 31000 88 34; paytypes SC0010 SC0010 SC0030 SC0030.
    assert_eq!(
        strings(&auth, "method"),
        ["카드", "카드", "계좌이체", "계좌이체"].map(|m| Some(m.to_owned()))
    );
    assert_eq!(
        strings(&auth, "issuer"),
        ["국민", "비씨", "신한", "광주"].map(|m| Some(m.to_owned()))
    );
    assert_eq!(
        int64s(&auth, "signed_amount"),
        [15000, 35000, 319000, 91000]
    );
    // 2.5 % on cards, 1.8 % on transfers, rounded half away from zero.
    assert_eq!(int64s(&auth, "fee"), [375, 875, 5742, 1638]);
    assert_eq!(int64s(&auth, "net_amount"), [14625, 34125, 313258, 89362]);

    let rev = workspace.read_lake(REV);
    // financecode 61100 31000 71100 (line 3 was rejected).
    assert_eq!(
        strings(&rev, "issuer"),
        ["현대", "비씨", "롯데"].map(|m| Some(m.to_owned()))
    );
    assert_eq!(int64s(&rev, "signed_amount"), [-115000, -97000, -16000]);
    assert_eq!(int64s(&rev, "fee"), [2875, 2425, 400]);
    assert_eq!(int64s(&rev, "net_amount"), [-112125, -94575, -15600]);

    // buyerid is the HMAC-SHA256 of the original under the key from the environment.
    use hmac::{KeyInit, Mac};
    let mask = |buyer: &str| {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"test-key").unwrap();
        mac.update(buyer.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    };
    assert_eq!(
        strings(&auth, "buyerid"),
        ["uytr120", "zzanghong1", "judy1876", "kihote128"].map(|buyer| Some(mask(buyer)))
    );
    // The record key columns are kept as they were.
    assert_eq!(
        strings(&rev, "transaction")[0].as_deref(),
        Some("toss2007070623455691939")
    );
}

/// Full-size batches (64k rows) must fit the default 256 MiB: a batch decoded from IPC shares one
/// buffer among its columns, and sizing the output by allocations rather than slices once asked
/// for 373 MB.
#[test]
fn full_size_batches_pass_through_a_plugin_within_the_default_memory_limit() {
    let workspace = Workspace::new();
    std::fs::write(
        workspace.inbox("toss_AUTH_20070706.dat"),
        toss_file(150_000, "10"),
    )
    .unwrap();
    let pipeline = workspace.dir_pipeline("", &wasm("identity", "identity", ""));
    let run = workspace.engine(&["run", pipeline.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert_eq!(total_rows(&workspace.read_lake(AUTH)), 150_000);
}

/// `engine plugin new` gives a crate that builds to a component and runs in a pipeline as it is.
#[test]
fn a_scaffolded_plugin_builds_and_runs() {
    let workspace = Workspace::new();
    let made = workspace.engine(&["plugin", "new", "flag-large", "--dir", "."]);
    assert_eq!(made.code, 0, "{}", made.all_output());
    // Build it beside the example plugins, whose dependencies are already compiled there.
    let target_dir = std::path::Path::new(env!("ENGINE_PLUGIN_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = std::process::Command::new(cargo)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .current_dir(workspace.path("flag-large"))
        .env("CARGO_TARGET_DIR", &target_dir)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let pipeline = pipeline_with(
        &workspace,
        &wasm(
            "flag-large",
            "flag_large",
            "[transforms.config]\nthreshold = 35000\n",
        ),
    );
    let run = workspace.engine(&["run", pipeline.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let auth = workspace.read_lake(AUTH);
    let large: Vec<Option<bool>> = auth
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

/// `stateless = true` calls a plugin on one instance per engine thread at once. The hostile
/// plugin numbers each instance's calls, so the numbers show which instance answered which
/// 4 096-row call: dealt in turn between two instances, one after another on one. Either way the
/// rows reach the lake in the file's order, with the same values.
#[test]
fn a_stateless_plugin_runs_on_an_instance_per_thread_and_keeps_the_order() {
    const AUTH_FILE: &str = "record_kind=AUTH/trxdate=2007-07-06/toss_AUTH_20070706.parquet";
    // Parser batches of 16 384 and 3 616 rows: four calls of 4 096 rows, then one of 3 616.
    let text = toss_file(20_000, "10");
    let load = |extra: &str, threads: &str| {
        let workspace = Workspace::new();
        std::fs::write(workspace.inbox("toss_AUTH_20070706.dat"), &text).unwrap();
        let transforms = wasm(
            "hostile",
            "hostile",
            &format!("{extra}\n[transforms.config]\nbehave = \"number-calls\"\n"),
        );
        let pipeline = workspace.dir_pipeline("batch_rows = 16384", &transforms);
        let run = workspace.engine_with_env(
            &["run", pipeline.to_str().unwrap()],
            &[("ENGINE_THREADS", threads)],
        );
        assert_eq!(run.code, 0, "{extra} {threads}: {}", run.all_output());
        let batches = workspace.read_lake(AUTH_FILE);
        let calls = int64s(&batches, "call");
        assert_eq!(calls.len(), 20_000);
        // The call number at the first row of every call.
        let per_call: Vec<i64> = calls.iter().step_by(4096).copied().collect();
        // Every other column, as one batch.
        let all = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
        let call = all.schema().index_of("call").unwrap();
        let mut others = all;
        others.remove_column(call);
        (per_call, others)
    };

    let (one_by_one, rows) = load("", "2");
    assert_eq!(one_by_one, [1, 2, 3, 4, 5]);
    assert_eq!(
        int64s(std::slice::from_ref(&rows), "source_line"),
        (1..=20_000).collect::<Vec<i64>>()
    );
    let (at_once, rows_at_once) = load("stateless = true", "2");
    assert_eq!(
        at_once,
        [1, 1, 2, 2, 3],
        "two instances, calls dealt in turn"
    );
    assert_eq!(rows_at_once, rows);
    let (single_thread, _) = load("stateless = true", "1");
    assert_eq!(single_thread, [1, 2, 3, 4, 5], "one thread, one instance");
}

/// A failure among calls made at once is reported as one call after another would report it:
/// the first failing call in the file's order, whichever instance failed first, and nothing of
/// the file reaches the lake.
#[test]
fn a_stateless_plugin_reports_the_first_failing_call_in_file_order() {
    // Calls of 4 096 rows; line 6 000 is in the 2nd call (the second instance's first), line
    // 9 000 in the 3rd (the first instance's second).
    let text = toss_file(20_000, "10");
    for (extra, threads) in [
        ("stateless = true", "2"),
        ("", "2"),
        ("stateless = true", "1"),
    ] {
        let workspace = Workspace::new();
        std::fs::write(workspace.inbox("toss_AUTH_20070706.dat"), &text).unwrap();
        let transforms = wasm(
            "hostile",
            "hostile",
            &format!(
                "{extra}\n[transforms.config]\nbehave = \"data-error\"\nlines = [9000, 6000]\n"
            ),
        );
        let pipeline = workspace.dir_pipeline("batch_rows = 16384", &transforms);
        let run = workspace.engine_with_env(
            &["run", pipeline.to_str().unwrap()],
            &[("ENGINE_THREADS", threads)],
        );
        assert_eq!(run.code, 1, "{extra} {threads}: {}", run.all_output());
        assert!(
            run.stderr.contains(
                "plugin `hostile` failed on toss_AUTH_20070706.dat, batch 2: refused the batch: \
                 data: behave=data-error: this plugin rejects the batch holding line 6000"
            ),
            "{extra} {threads}: {}",
            run.stderr
        );
        workspace.assert_no_parquet_left(&format!("{extra} {threads}"));
    }
}
