//! The Delta Lake sink, against a real S3 server (moto) and local folders, read back by readers
//! no one here wrote (the `deltalake` Python package, DuckDB's delta extension): one table
//! version per unit, schema evolution, crash safety, many writers at once, and `engine lake`.

use crate::support::s3::{S3Server, SECRET_KEY};
use crate::support::*;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const BUCKET: &str = "lake";
const TABLE: &str = "s3://lake/delta";

fn python() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/moto-venv/bin/python");
    assert!(
        venv.exists(),
        "the tests' Python environment is missing: run scripts/ensure-python.sh"
    );
    venv
}

/// Runs `delta_read.py` with `args` (and the S3 server's environment when given).
fn reader(args: &[&str], s3: Option<&S3Server>) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/support/delta_read.py");
    let mut command = Command::new(python());
    command.arg(script).args(args);
    if let Some(s3) = s3 {
        for (key, value) in s3.env() {
            command.env(key, value);
        }
    }
    command.output().unwrap()
}

/// What `delta_read.py` with `args` prints, which it must.
fn read(args: &[&str], s3: Option<&S3Server>) -> Value {
    let output = reader(args, s3);
    assert!(
        output.status.success(),
        "delta_read.py {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A Toss file of `rows` records of merchant `mid`, version `version` (each record unique to its
/// version, so a mix of versions would show).
fn mid_file(mid: &str, rows: u64, version: u64) -> String {
    kind_file(mid, "10", rows, version)
}

/// [`mid_file`] of a kind: status `10` (approved) for AUTH, `20` (cancelled) for REV.
fn kind_file(mid: &str, status: &str, rows: u64, version: u64) -> String {
    let mut text = String::new();
    for n in 1..=rows {
        text.push_str(&format!(
            "{mid};SC0010;{mid}{version:04}{n:012};order_{mid}_{n};11100;국민;buyer{n};{};N;20070706120000;{:08};{status}\n",
            1000 + n,
            n % 100_000_000
        ));
    }
    text
}

fn s3_sinks() -> String {
    format!(
        "[[sinks]]\ntype = \"delta\"\npath = \"{TABLE}\"\nendpoint = \"${{S3_ENDPOINT}}\"\nallow_http = true\n"
    )
}

fn run_with(workspace: &Workspace, s3: &S3Server, args: &[&str]) -> Run {
    let env = s3.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = workspace.engine_with_env(args, &env);
    assert!(
        !run.all_output().contains(SECRET_KEY),
        "{}",
        run.all_output()
    );
    run
}

fn units(summary: &Value) -> BTreeMap<String, u64> {
    summary["units"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(unit, count)| (unit.clone(), count.as_u64().unwrap()))
        .collect()
}

#[test]
fn each_unit_is_one_commit_on_s3_and_a_new_version_replaces_its_rows_in_one() {
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let workspace = Workspace::new();
    let pipeline = workspace.inbox_pipeline("pipeline.toml", "test", "", "", &s3_sinks());
    std::fs::write(
        workspace.inbox("m1_AUTH_20070706.dat"),
        mid_file("m1", 300, 1),
    )
    .unwrap();
    std::fs::write(
        workspace.inbox("m1_REV_20070706.dat"),
        kind_file("m1", "20", 20, 1),
    )
    .unwrap();

    let first = run_with(&workspace, &s3, &["run", pipeline.to_str().unwrap()]);
    assert_eq!(first.code, 0, "{}", first.all_output());
    let seen = read(&["summary", TABLE], Some(&s3));
    assert_eq!(seen["rows"], 320);
    // Version 0 creates the table, then one version per unit.
    assert_eq!(seen["version"], 2, "{seen}");
    assert_eq!(
        units(&seen),
        BTreeMap::from([
            ("m1_AUTH_20070706.dat".to_owned(), 300),
            ("m1_REV_20070706.dat".to_owned(), 20)
        ])
    );

    // A newer AUTH: one more version, holding the new rows and none of the old.
    std::fs::write(
        workspace.inbox("m1_AUTH_20070706.dat"),
        mid_file("m1", 310, 2),
    )
    .unwrap();
    let second = run_with(&workspace, &s3, &["run", pipeline.to_str().unwrap()]);
    assert_eq!(second.code, 0, "{}", second.all_output());
    let seen = read(&["summary", TABLE], Some(&s3));
    assert_eq!(seen["version"], 3, "{seen}");
    assert_eq!(seen["rows"], 330);
    assert_eq!(units(&seen)["m1_AUTH_20070706.dat"], 310);
    // One live file per unit; the replaced one is only in the log's history.
    assert_eq!(seen["files"].as_array().unwrap().len(), 2, "{seen}");
    assert_eq!(s3.unfinished_uploads(BUCKET), 0);
}

#[test]
fn deltalake_and_duckdb_read_the_table_row_for_row_as_the_parquet_lake_holds_it() {
    let workspace = Workspace::new();
    let table = workspace.path("delta");
    let sinks = format!(
        "[[sinks]]\ntype = \"parquet\"\npath = \"lake\"\n\n[[sinks]]\ntype = \"delta\"\npath = {:?}\n",
        table.to_str().unwrap()
    );
    let pipeline = workspace.inbox_pipeline("pipeline.toml", "test", "", "", &sinks);
    for name in ["toss_AUTH_20070706.dat", "toss_REV_20070706.dat"] {
        std::fs::copy(sample(name), workspace.inbox(name)).unwrap();
    }
    let run = workspace.engine(&["run", pipeline.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let compared = read(
        &[
            "compare",
            table.to_str().unwrap(),
            workspace.path("lake").to_str().unwrap(),
        ],
        None,
    );
    assert!(compared["parquet_rows"].as_u64().unwrap() > 0, "{compared}");
    assert_eq!(compared["deltalake_equal"], true, "{compared}");
    assert_eq!(compared["duckdb_equal"], true, "{compared}");
}

#[test]
fn a_plugin_that_adds_columns_widens_the_table_and_older_rows_read_null() {
    let workspace = Workspace::new();
    let table = workspace.path("delta");
    let sink = format!(
        "[[sinks]]\ntype = \"delta\"\npath = {:?}\n",
        table.to_str().unwrap()
    );
    std::fs::write(
        workspace.inbox("m1_AUTH_20070706.dat"),
        mid_file("m1", 50, 1),
    )
    .unwrap();
    let plain = workspace.inbox_pipeline("plain.toml", "test", "", "", &sink);
    let run = workspace.engine(&["run", plain.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.all_output());

    let mapping = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/plugins/wasm32-wasip2/release/merchant_mapping.wasm");
    let transforms = format!(
        "[[transforms]]\nname = \"mapping\"\ntype = \"wasm\"\nmodule = {:?}\n[transforms.config]\nfee_rate = 0.03\n",
        mapping.to_str().unwrap()
    );
    std::fs::write(
        workspace.inbox("m2_AUTH_20070706.dat"),
        mid_file("m2", 40, 1),
    )
    .unwrap();
    let mapped = workspace.inbox_pipeline("mapped.toml", "mapped", "", &transforms, &sink);
    let run = workspace.engine(&[
        "run",
        mapped.to_str().unwrap(),
        "--file",
        "m2_AUTH_20070706.dat",
    ]);
    assert_eq!(run.code, 0, "{}", run.all_output());

    let seen = read(&["summary", table.to_str().unwrap()], None);
    let columns: Vec<&str> = seen["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for added in ["method", "issuer", "signed_amount", "fee", "net_amount"] {
        assert!(columns.contains(&added), "{columns:?}");
    }
    assert_eq!(seen["rows"], 90);
    let compared = Command::new(python())
        .args([
            "-c",
            "import sys; from deltalake import DeltaTable; t = DeltaTable(sys.argv[1]).to_pyarrow_table(); \
             import collections; c = collections.Counter((u, f is None) for u, f in zip(t['load_unit'].to_pylist(), t['fee'].to_pylist())); \
             print(sorted(c.items()))",
            table.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&compared.stdout);
    assert!(
        text.contains("(('m1_AUTH_20070706.dat', True), 50)")
            && text.contains("(('m2_AUTH_20070706.dat', False), 40)"),
        "{text}{}",
        String::from_utf8_lossy(&compared.stderr)
    );
}

#[test]
fn sigkill_during_uploads_and_commits_then_a_rerun_leaves_exactly_the_input() {
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let workspace = Workspace::new();
    let pipeline = workspace.inbox_pipeline("pipeline.toml", "test", "", "", &s3_sinks());
    let files: Vec<(String, u64)> = (1..=6)
        .map(|n| (format!("m{n}_AUTH_20070706.dat"), 20_000 + n * 1_000))
        .collect();
    for (name, rows) in &files {
        let mid = name.split('_').next().unwrap();
        std::fs::write(workspace.inbox(name), mid_file(mid, *rows, 1)).unwrap();
    }
    let env = s3.env();
    for kill_after_ms in [300u64, 700, 1200, 1800, 2500] {
        let mut command = Command::new(&*ENGINE);
        command
            .args(["run", pipeline.to_str().unwrap()])
            .current_dir(workspace.path(""))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (key, value) in &env {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(kill_after_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        // Whatever the kill interrupted, a reader sees whole units only.
        if let Some(seen) = try_summary(&s3) {
            for (unit, count) in units(&seen) {
                let expected = files.iter().find(|(name, _)| *name == unit).unwrap().1;
                assert_eq!(count, expected, "{unit} after a kill at {kill_after_ms} ms");
            }
        }
    }
    let rerun = run_with(&workspace, &s3, &["run", pipeline.to_str().unwrap()]);
    assert_eq!(rerun.code, 0, "{}", rerun.all_output());
    let seen = read(&["summary", TABLE], Some(&s3));
    let expected: BTreeMap<String, u64> = files.iter().cloned().collect();
    assert_eq!(units(&seen), expected);
    // Every file the log references exists; vacuum then removes the files killed loads left.
    let listed: HashSet<String> = s3
        .list(BUCKET, "delta")
        .into_iter()
        .map(|(key, _)| format!("s3://{BUCKET}/{key}"))
        .collect();
    for file in seen["files"].as_array().unwrap() {
        assert!(listed.contains(file.as_str().unwrap()), "{file} is missing");
    }
    let vacuum = run_with(
        &workspace,
        &s3,
        &[
            "lake",
            "vacuum",
            pipeline.to_str().unwrap(),
            "--retain-hours",
            "0",
            "--allow-short-retention",
        ],
    );
    assert_eq!(vacuum.code, 0, "{}", vacuum.all_output());
    let data_files: Vec<String> = s3
        .list(BUCKET, "delta")
        .into_iter()
        .map(|(key, _)| key)
        .filter(|key| key.ends_with(".parquet") && !key.contains("_delta_log"))
        .collect();
    assert_eq!(data_files.len(), files.len(), "{data_files:?}");
    assert_eq!(units(&read(&["summary", TABLE], Some(&s3))), expected);
}

fn try_summary(s3: &S3Server) -> Option<Value> {
    let output = reader(&["summary", TABLE], Some(s3));
    output
        .status
        .success()
        .then(|| serde_json::from_slice(&output.stdout).unwrap())
}

#[test]
fn engines_writing_one_table_at_once_lose_and_duplicate_nothing_and_readers_see_whole_units() {
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let versions = 6u64;
    let rows_of = |mid_index: u64, version: u64| 200 + mid_index * 10 + version * 7;
    // Two engines with MIDs of their own, and one file both load (a pipeline started twice).
    let engines: Vec<(Workspace, Vec<(String, u64)>)> = (0..2u64)
        .map(|engine| {
            let workspace = Workspace::new();
            let mids = vec![
                (format!("e{engine}a"), engine * 2),
                (format!("e{engine}b"), engine * 2 + 1),
                ("shared".to_owned(), 9),
            ];
            (workspace, mids)
        })
        .collect();
    let out = Workspace::new();
    let poll_out = out.path("polls.jsonl");
    let stop = out.path("stop");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/support/delta_read.py");
    let mut poller = Command::new(python());
    poller
        .arg(&script)
        .args([
            "poll",
            TABLE,
            poll_out.to_str().unwrap(),
            stop.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (key, value) in s3.env() {
        poller.env(key, value);
    }
    let mut poller = poller.spawn().unwrap();

    std::thread::scope(|scope| {
        for (workspace, mids) in &engines {
            let s3 = &s3;
            scope.spawn(move || {
                let pipeline =
                    workspace.inbox_pipeline("pipeline.toml", "test", "", "", &s3_sinks());
                for version in 1..=versions {
                    for (mid, index) in mids {
                        for kind in ["AUTH", "REV"] {
                            let name = format!("{mid}_{kind}_20070706.dat");
                            let rows = rows_of(*index, version) + u64::from(kind == "REV");
                            let status = if kind == "AUTH" { "10" } else { "20" };
                            let text = kind_file(mid, status, rows, version);
                            std::fs::write(workspace.inbox(&name), text).unwrap();
                        }
                    }
                    let run = run_with(workspace, s3, &["run", pipeline.to_str().unwrap()]);
                    assert_eq!(run.code, 0, "{}", run.all_output());
                }
            });
        }
    });
    std::fs::write(&stop, "").unwrap();
    poller.wait().unwrap();

    // The table is the union of the final files, each once.
    let seen = read(&["summary", TABLE], Some(&s3));
    let mut expected = BTreeMap::new();
    let mut valid: HashMap<String, HashSet<u64>> = HashMap::new();
    for (_, mids) in &engines {
        for (mid, index) in mids {
            for kind in ["AUTH", "REV"] {
                let unit = format!("{mid}_{kind}_20070706.dat");
                let extra = u64::from(kind == "REV");
                expected.insert(unit.clone(), rows_of(*index, versions) + extra);
                valid
                    .entry(unit)
                    .or_default()
                    .extend((1..=versions).map(|v| rows_of(*index, v) + extra));
            }
        }
    }
    assert_eq!(units(&seen), expected);

    // Every read during the run saw each unit as one whole version.
    let polls = std::fs::read_to_string(&poll_out).unwrap();
    let mut reads = 0;
    for line in polls.lines() {
        let poll: Value = serde_json::from_str(line).unwrap();
        if poll.get("error").is_some() {
            continue;
        }
        reads += 1;
        for (unit, count) in units(&poll) {
            assert!(
                valid[&unit].contains(&count),
                "a reader at version {} saw {count} rows of {unit}: not a whole version",
                poll["version"]
            );
        }
    }
    assert!(reads >= 3, "the reader read only {reads} times:\n{polls}");
}

#[test]
fn optimize_merges_units_and_a_later_version_still_replaces_only_its_own_rows() {
    let workspace = Workspace::new();
    let table = workspace.path("delta");
    let sink = format!(
        "[[sinks]]\ntype = \"delta\"\npath = {:?}\n",
        table.to_str().unwrap()
    );
    let pipeline = workspace.inbox_pipeline("pipeline.toml", "test", "", "", &sink);
    for n in 1..=5u64 {
        std::fs::write(
            workspace.inbox(&format!("m{n}_AUTH_20070706.dat")),
            mid_file(&format!("m{n}"), 100 + n, 1),
        )
        .unwrap();
    }
    let run = workspace.engine(&["run", pipeline.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let before = read(&["summary", table.to_str().unwrap()], None);
    assert_eq!(before["files"].as_array().unwrap().len(), 5);

    let optimize = workspace.engine(&["lake", "optimize", pipeline.to_str().unwrap()]);
    assert_eq!(optimize.code, 0, "{}", optimize.all_output());
    assert!(
        optimize.stdout.contains("merged 5 files into 1"),
        "{}",
        optimize.stdout
    );
    let merged = read(&["summary", table.to_str().unwrap()], None);
    assert_eq!(merged["files"].as_array().unwrap().len(), 1);
    assert_eq!(units(&merged), units(&before));

    // m3's next version: its rows leave the merged file, the others' stay.
    std::fs::write(
        workspace.inbox("m3_AUTH_20070706.dat"),
        mid_file("m3", 150, 2),
    )
    .unwrap();
    let run = workspace.engine(&["run", pipeline.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let after = read(&["summary", table.to_str().unwrap()], None);
    let mut expected = units(&before);
    expected.insert("m3_AUTH_20070706.dat".to_owned(), 150);
    assert_eq!(units(&after), expected);
}

#[test]
fn lake_commands_name_the_pipeline_without_a_delta_sink() {
    let workspace = Workspace::new();
    let pipeline = workspace.default_pipeline("");
    let run = workspace.engine(&["lake", "optimize", pipeline.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.all_output());
    assert!(run.stderr.contains("type = \"delta\""), "{}", run.stderr);
}

#[test]
fn the_shipped_delta_pipeline_loads_the_samples_with_credentials_from_the_environment() {
    let s3 = S3Server::start();
    s3.create_bucket("shipped-lake");
    let workspace = Workspace::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let pipeline = s3.shipped_pipeline(&workspace, "lake-delta.toml");
    let mut env = s3.env();
    env.push(("LAKE_BUCKET", "shipped-lake".to_owned()));
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = workspace.engine_with_env(&["run", pipeline.to_str().unwrap()], &env_refs);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(!run.all_output().contains(SECRET_KEY));
    let inbox: Vec<String> = std::fs::read_dir(root.join("pipelines/inbox"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".dat"))
        .collect();
    let seen = read(&["summary", "s3://shipped-lake/toss-delta"], Some(&s3));
    let loaded = units(&seen);
    assert!(!loaded.is_empty());
    for unit in loaded.keys() {
        assert!(
            inbox.contains(unit),
            "{unit} is not a file of the inbox {inbox:?}"
        );
    }
    let optimize =
        workspace.engine_with_env(&["lake", "optimize", pipeline.to_str().unwrap()], &env_refs);
    assert_eq!(optimize.code, 0, "{}", optimize.all_output());
}
