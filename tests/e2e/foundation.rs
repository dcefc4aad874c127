//! A folder of Toss files into a Parquet lake — correct, streaming, incremental.

use crate::support::*;
use arrow::datatypes::{DataType, TimeUnit};
use chrono::TimeZone;
use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

const AUTH_FILE: &str = "record_kind=AUTH/trxdate=2007-07-06/toss_AUTH_20070706.parquet";
const REV_FILE: &str = "record_kind=REV/trxdate=2007-07-06/toss_REV_20070706.parquet";

fn copy_samples(workspace: &Workspace) {
    for name in ["toss_AUTH_20070706.dat", "toss_REV_20070706.dat"] {
        std::fs::copy(sample(name), workspace.inbox(name)).unwrap();
    }
}

fn korea_micros(text: &str) -> i64 {
    let local = chrono::NaiveDateTime::parse_from_str(text, "%Y%m%d%H%M%S").unwrap();
    chrono::FixedOffset::east_opt(9 * 3600)
        .unwrap()
        .from_local_datetime(&local)
        .unwrap()
        .timestamp_micros()
}

#[test]
fn samples_load_into_hive_partitions_with_the_documented_types_and_values() {
    let workspace = Workspace::new();
    copy_samples(&workspace);
    let pipeline = workspace.default_pipeline("");
    let run = workspace.engine(&["run", pipeline.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert_eq!(workspace.lake_files(), vec![AUTH_FILE, REV_FILE]);

    // The AUTH sample is EUC-KR with CRLF line ends: it must come out as UTF-8.
    let auth = workspace.read_lake(AUTH_FILE);
    assert_eq!(total_rows(&auth), 4);
    let schema = auth[0].schema();
    assert!(
        schema.field_with_name("record_kind").is_err(),
        "partition columns live in the path"
    );
    assert!(schema.field_with_name("trxdate").is_err());
    assert_eq!(
        schema.field_with_name("amount").unwrap().data_type(),
        &DataType::Int64
    );
    assert_eq!(
        schema.field_with_name("useescrow").unwrap().data_type(),
        &DataType::Boolean
    );
    assert_eq!(
        schema.field_with_name("occurred_at").unwrap().data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("+09:00".into()))
    );
    assert_eq!(
        strings(&auth, "financename"),
        ["국민", "비씨", "신한", "광주"].map(|name| Some(name.to_owned()))
    );
    assert_eq!(int64s(&auth, "amount"), [15000, 35000, 319000, 91000]);
    assert_eq!(strings(&auth, "authnumber")[2].as_deref(), Some("0"));
    assert_eq!(
        timestamps(&auth, "occurred_at")[0],
        korea_micros("20070706235927")
    );
    assert_eq!(int64s(&auth, "source_line"), [1, 2, 3, 4]);
    assert_eq!(
        strings(&auth, "source_file")[0].as_deref(),
        Some("toss_AUTH_20070706.dat")
    );

    // The REV sample's third line has an empty status: rejected, the others load.
    let rev = workspace.read_lake(REV_FILE);
    assert_eq!(int64s(&rev, "source_line"), [1, 2, 4]);
    assert_eq!(strings(&rev, "authnumber")[0].as_deref(), Some("00176594"));
    assert_eq!(
        strings(&rev, "status"),
        ["20", "20", "20"].map(|status| Some(status.to_owned()))
    );
    let rejects =
        std::fs::read_to_string(workspace.path(".engine/rejects/test/toss_REV_20070706.jsonl"))
            .unwrap();
    let lines: Vec<serde_json::Value> = rejects
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["file"], "toss_REV_20070706.dat");
    assert_eq!(lines[0]["line"], 3);
    assert!(
        lines[0]["raw"]
            .as_str()
            .unwrap()
            .contains("toss2007070400463873636")
    );
    assert!(lines[0]["reason"].as_str().unwrap().contains("status"));
    assert!(
        run.stdout.contains("7 rows loaded, 1 rejected"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_rerun_over_the_same_files_changes_nothing() {
    let workspace = Workspace::new();
    copy_samples(&workspace);
    let pipeline = workspace.default_pipeline("");
    assert_eq!(
        workspace.engine(&["run", pipeline.to_str().unwrap()]).code,
        0
    );
    let before: Vec<_> = workspace
        .lake_files()
        .iter()
        .map(|file| {
            let path = workspace.path("lake").join(file);
            (
                std::fs::read(&path).unwrap(),
                std::fs::metadata(&path).unwrap().modified().unwrap(),
            )
        })
        .collect();

    let rerun = workspace.engine(&["run", pipeline.to_str().unwrap()]);
    assert_eq!(rerun.code, 0, "{}", rerun.all_output());
    assert!(
        rerun.stdout.contains("0 loaded, 2 skipped"),
        "{}",
        rerun.stdout
    );
    let after: Vec<_> = workspace
        .lake_files()
        .iter()
        .map(|file| {
            let path = workspace.path("lake").join(file);
            (
                std::fs::read(&path).unwrap(),
                std::fs::metadata(&path).unwrap().modified().unwrap(),
            )
        })
        .collect();
    assert_eq!(before, after, "an unchanged file must not be rewritten");
}

#[test]
fn a_longer_version_of_a_day_holds_each_record_once_in_its_latest_version() {
    let workspace = Workspace::new();
    let pipeline = workspace.default_pipeline("");
    let file = workspace.inbox("toss_REV_20070706.dat");
    let first = format!(
        "{}\n{}\n",
        toss_line(1, 5000, "20"),
        toss_line(2, 7000, "21")
    );
    std::fs::write(&file, first).unwrap();
    assert_eq!(
        workspace.engine(&["run", pipeline.to_str().unwrap()]).code,
        0
    );

    // 20 minutes later Toss re-sends the day: the failed cancel succeeded, and a new one came.
    let second = format!(
        "{}\n{}\n{}\n",
        toss_line(1, 5000, "20"),
        toss_line(2, 7000, "20"),
        toss_line(3, 9000, "20")
    );
    std::fs::write(&file, second).unwrap();
    let run = workspace.engine(&["run", pipeline.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert_eq!(workspace.lake_files(), vec![REV_FILE]);
    let rev = workspace.read_lake(REV_FILE);
    assert_eq!(int64s(&rev, "amount"), [5000, 7000, 9000]);
    assert_eq!(
        strings(&rev, "status"),
        ["20", "20", "20"].map(|status| Some(status.to_owned()))
    );
}

#[test]
fn a_file_with_too_many_rejects_fails_the_run_and_leaves_no_output_of_it() {
    let workspace = Workspace::new();
    let pipeline = workspace.default_pipeline("max_rejects = 2");
    let bad = format!(
        "{}\ntoss;SC0010;only;four\ntoss;SC0010;x;y;1;국민;b;not-a-number;N;20070706120000;1;10\n{}\ntoss;SC0010;z;w;1;국민;b;100;N;20070230120000;1;10\n",
        toss_line(1, 1000, "10"),
        toss_line(2, 2000, "10")
    );
    std::fs::write(workspace.inbox("toss_AUTH_20070706.dat"), bad).unwrap();
    std::fs::write(
        workspace.inbox("toss_AUTH_20070707.dat"),
        toss_file(3, "10"),
    )
    .unwrap();

    let run = workspace.engine(&["run", pipeline.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert!(
        run.stderr.contains("toss_AUTH_20070706.dat"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("more than 2 lines rejected"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("max_rejects"), "{}", run.stderr);
    // The other file of the run still loads; the failed one left nothing, not even a temp file.
    assert_eq!(
        workspace.lake_files(),
        vec!["record_kind=AUTH/trxdate=2007-07-07/toss_AUTH_20070707.parquet"]
    );
    let rejects = std::fs::read_to_string(
        workspace.path(".engine/rejects/test/toss_AUTH_20070706.failed.jsonl"),
    )
    .unwrap();
    let reasons: Vec<String> = rejects
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["reason"].to_string())
        .collect();
    assert_eq!(reasons.len(), 3, "{rejects}");
    assert!(reasons[0].contains("12"), "{}", reasons[0]);
    assert!(reasons[1].contains("not-a-number"), "{}", reasons[1]);
    assert!(reasons[2].contains("20070230"), "{}", reasons[2]);

    // Nothing was recorded as loaded: the next run fails the same way instead of skipping.
    let again = workspace.engine(&["run", pipeline.to_str().unwrap()]);
    assert_eq!(again.code, 1, "{}", again.all_output());
}

#[test]
fn a_missing_environment_variable_is_named_with_its_line_and_exit_2() {
    let workspace = Workspace::new();
    let pipeline = workspace.pipeline(
        "pipeline.toml",
        "[pipeline]\nname = \"test\"\n\n[source]\ntype = \"dir\"\npath = \"inbox\"\n\n[[sinks]]\ntype = \"parquet\"\npath = \"${E2E_SURELY_MISSING_LAKE}\"\n",
    );
    let run = workspace.engine(&["run", pipeline.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.all_output());
    assert!(run.stderr.contains("pipeline.toml:10:"), "{}", run.stderr);
    assert!(
        run.stderr.contains("`E2E_SURELY_MISSING_LAKE` is not set"),
        "{}",
        run.stderr
    );
    assert!(
        !workspace.path(".engine").exists(),
        "a bad file must not start a run"
    );

    let with_var = workspace.engine_with_env(
        &["run", pipeline.to_str().unwrap()],
        &[("E2E_SURELY_MISSING_LAKE", "lake")],
    );
    assert_eq!(with_var.code, 0, "{}", with_var.all_output());
}

#[test]
fn an_unknown_key_is_named_with_its_line_and_what_is_allowed() {
    let workspace = Workspace::new();
    let pipeline = workspace.pipeline(
        "pipeline.toml",
        "[pipeline]\nname = \"test\"\n\n[source]\ntype = \"dir\"\npath = \"inbox\"\nmid = [\"toss\"]\n\n[[sinks]]\ntype = \"parquet\"\npath = \"lake\"\n",
    );
    for command in ["run", "validate"] {
        let run = workspace.engine(&[command, pipeline.to_str().unwrap()]);
        assert_eq!(run.code, 2, "{}", run.all_output());
        assert!(run.stderr.contains("pipeline.toml:7:"), "{}", run.stderr);
        assert!(run.stderr.contains("unknown field `mid`"), "{}", run.stderr);
        assert!(
            run.stderr.contains("`mids`"),
            "the allowed keys are listed: {}",
            run.stderr
        );
    }
}

#[test]
fn validate_accepts_the_shipped_pipeline() {
    // The shipped pipeline names its paths from the repository root, as the README runs it;
    // only the state folder (for the compiled-plugin cache) goes to a temporary place.
    let workspace = Workspace::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("pipelines/daily.toml"))
        .unwrap()
        .replace(
            "state_dir = \".engine\"",
            &format!("state_dir = {:?}", workspace.path("state")),
        );
    let pipeline = workspace.pipeline("daily.toml", &text);
    let output = Command::new(&*ENGINE)
        .args(["validate", pipeline.to_str().unwrap()])
        .current_dir(&root)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("is valid"), "{stdout}");
    assert!(stdout.contains("mapping → mask-pii"), "{stdout}");
    assert!(
        !workspace.path("state/rejects").exists(),
        "validate moves no data"
    );
}

#[test]
fn dates_select_files_and_other_files_are_left_alone() {
    let workspace = Workspace::new();
    for day in ["20070705", "20070706", "20070707"] {
        std::fs::write(
            workspace.inbox(&format!("toss_AUTH_{day}.dat")),
            toss_file(2, "10"),
        )
        .unwrap();
    }
    for other in [
        "README.txt",
        "toss_SETTLE_20070706.dat",
        "toss_AUTH_20070706.dat.part",
    ] {
        std::fs::write(workspace.inbox(other), "not a Toss file").unwrap();
    }
    let pipeline = workspace.default_pipeline("");
    let run = workspace.engine(&["run", pipeline.to_str().unwrap(), "--date", "2007-07-06"]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert_eq!(
        workspace.lake_files(),
        vec!["record_kind=AUTH/trxdate=2007-07-06/toss_AUTH_20070706.parquet"]
    );
    let run = workspace.engine(&[
        "run",
        pipeline.to_str().unwrap(),
        "--from",
        "2007-07-05",
        "--to",
        "2007-07-07",
    ]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(run.stdout.contains("2 loaded, 1 skipped"), "{}", run.stdout);
    assert_eq!(workspace.lake_files().len(), 3);
    assert_eq!(
        std::fs::read_to_string(workspace.inbox("README.txt")).unwrap(),
        "not a Toss file"
    );

    let usage = workspace.engine(&["run", pipeline.to_str().unwrap(), "--from", "2007-07-05"]);
    assert_eq!(usage.code, 2, "--from without --to is bad usage");
}

/// The dir source looks twice, `settle_secs` apart, at a file modified within `settle_secs` of
/// the listing, and defers it if it changed in between. The writer here appends a line every
/// 10 ms from before the engine starts until after it has exited, so whenever the engine lists
/// the file and looks again, the file is both fresh and changed; no race against the engine's
/// start-up decides the outcome. Then the upload completes: the file gets its final 30 lines and
/// a modification time an hour old, so the next run finds it settled without waiting.
#[test]
fn a_file_still_being_written_is_deferred_to_the_next_run() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let workspace = Workspace::new();
    let pipeline = workspace.pipeline(
        "pipeline.toml",
        "[pipeline]\nname = \"test\"\ndates = \"all\"\n\n[source]\ntype = \"dir\"\npath = \"inbox\"\nsettle_secs = 1\n\n[[sinks]]\ntype = \"parquet\"\npath = \"lake\"\n",
    );
    let file = workspace.inbox("toss_AUTH_20070706.dat");
    std::fs::write(&file, "").unwrap();
    let uploading = Arc::new(AtomicBool::new(true));
    let writer = {
        let path = file.clone();
        let uploading = Arc::clone(&uploading);
        std::thread::spawn(move || {
            use std::io::Write;
            let mut out = std::fs::OpenOptions::new().append(true).open(path).unwrap();
            let mut n = 0;
            while uploading.load(Ordering::SeqCst) {
                n += 1;
                writeln!(out, "{}", toss_line(n, 1000, "10")).unwrap();
                out.flush().unwrap();
                std::thread::sleep(Duration::from_millis(10));
            }
            n
        })
    };
    while std::fs::metadata(&file).unwrap().len() == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let run = workspace.engine(&["run", pipeline.to_str().unwrap()]);
    uploading.store(false, Ordering::SeqCst);
    let appended = writer.join().unwrap();
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(run.stdout.contains("deferred"), "{}", run.stdout);
    assert!(
        workspace.lake_files().is_empty(),
        "a half-written file must not load"
    );
    assert!(appended > 1, "the file grew during the run");

    let whole: String = (1..=30)
        .map(|n| format!("{}\n", toss_line(n, 1000, "10")))
        .collect();
    std::fs::write(&file, whole).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    let run = workspace.engine(&["run", pipeline.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let batches =
        workspace.read_lake("record_kind=AUTH/trxdate=2007-07-06/toss_AUTH_20070706.parquet");
    assert_eq!(total_rows(&batches), 30);
}

/// The parse pool and the encoding pool change which thread does the work, never the result:
/// one file cut into 30 batches and 8 row groups gives the same Parquet bytes with one engine
/// thread (no pools) and with two.
#[test]
fn one_or_two_engine_threads_write_byte_identical_parquet() {
    const AUTH_FILE: &str = "record_kind=AUTH/trxdate=2007-07-06/toss_AUTH_20070706.parquet";
    let text = toss_file(30_000, "10");
    let mut lakes = Vec::new();
    for threads in ["1", "2"] {
        let workspace = Workspace::new();
        std::fs::write(workspace.inbox("toss_AUTH_20070706.dat"), &text).unwrap();
        let pipeline = workspace.inbox_pipeline(
            "pipeline.toml",
            "test",
            "batch_rows = 1000",
            "",
            "[[sinks]]\ntype = \"parquet\"\npath = \"lake\"\nrow_group_rows = 4000\n",
        );
        let run = workspace.engine_with_env(
            &["run", pipeline.to_str().unwrap()],
            &[("ENGINE_THREADS", threads)],
        );
        assert_eq!(
            run.code,
            0,
            "ENGINE_THREADS={threads}: {}",
            run.all_output()
        );
        assert_eq!(workspace.lake_files(), vec![AUTH_FILE.to_owned()]);
        let path = workspace.path("lake").join(AUTH_FILE);
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(&path).unwrap(),
        )
        .unwrap();
        assert_eq!(
            reader.metadata().num_row_groups(),
            8,
            "ENGINE_THREADS={threads}"
        );
        assert_eq!(total_rows(&workspace.read_lake(AUTH_FILE)), 30_000);
        lakes.push(std::fs::read(&path).unwrap());
    }
    assert!(
        lakes[0] == lakes[1],
        "ENGINE_THREADS=1 wrote {} bytes, ENGINE_THREADS=2 {} bytes, and they differ",
        lakes[0].len(),
        lakes[1].len()
    );
}

#[test]
fn inspect_shows_encoding_delimiter_rows_and_rejects() {
    let workspace = Workspace::new();
    let auth = workspace.engine(&[
        "inspect",
        sample("toss_AUTH_20070706.dat").to_str().unwrap(),
    ]);
    assert_eq!(auth.code, 0, "{}", auth.all_output());
    assert!(auth.stdout.contains("encoding:  euc-kr"), "{}", auth.stdout);
    assert!(auth.stdout.contains("delimiter: ;"), "{}", auth.stdout);
    assert!(auth.stdout.contains("국민"), "{}", auth.stdout);
    assert!(
        auth.stdout.contains("4 rows, 0 rejected"),
        "{}",
        auth.stdout
    );

    let rev = workspace.engine(&["inspect", sample("toss_REV_20070706.dat").to_str().unwrap()]);
    assert_eq!(rev.code, 0, "{}", rev.all_output());
    assert!(rev.stdout.contains("encoding:  utf-8"), "{}", rev.stdout);
    assert!(rev.stdout.contains("line 3:"), "{}", rev.stdout);
    assert!(
        rev.stdout.contains("toss2007070400463873636"),
        "{}",
        rev.stdout
    );
}

/// Kills the engine with SIGKILL at several moments of loading growing versions of a large file;
/// after every kill the lake holds a whole version or nothing, and the final rerun holds each
/// record of the latest version exactly once.
#[test]
fn kill_9_at_any_moment_then_rerun_neither_loses_nor_duplicates() {
    let workspace = Workspace::new();
    let pipeline = workspace.default_pipeline("batch_rows = 8192");
    let file = workspace.inbox("toss_AUTH_20070706.dat");
    let visible = "record_kind=AUTH/trxdate=2007-07-06/toss_AUTH_20070706.parquet";
    let temp = workspace
        .path("lake/record_kind=AUTH/trxdate=2007-07-06/.toss_AUTH_20070706.parquet.inprogress");

    let mut loaded_rows: Option<usize> = None;
    let mut rows = 200_000;
    let mut killed_mid_write = false;
    for delay_ms in [0, 30, 120, 250, 400, 700] {
        rows += 10_000;
        std::fs::write(&file, toss_file(rows as u64, "10")).unwrap();
        let mut child = Command::new(&*ENGINE)
            .args(["run", pipeline.to_str().unwrap(), "-q"])
            .current_dir(workspace.dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        if delay_ms == 0 {
            // The surest mid-load moment: as soon as the Parquet temp file exists.
            let deadline = Instant::now() + Duration::from_secs(30);
            while !temp.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            killed_mid_write = temp.exists();
        } else {
            std::thread::sleep(Duration::from_millis(delay_ms));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        if workspace.lake_files().contains(&visible.to_owned()) {
            let now = total_rows(&workspace.read_lake(visible));
            assert!(
                Some(now) == loaded_rows || now == rows,
                "after a kill the lake holds {now} rows: neither the old version ({loaded_rows:?}) nor the new ({rows})"
            );
            loaded_rows = Some(now);
        } else {
            assert_eq!(
                loaded_rows, None,
                "a loaded version disappeared after a kill"
            );
        }
    }
    assert!(
        killed_mid_write,
        "the first kill should land while Parquet was being written"
    );

    let rerun = workspace.engine(&["run", pipeline.to_str().unwrap()]);
    assert_eq!(rerun.code, 0, "{}", rerun.all_output());
    assert_eq!(workspace.lake_files(), vec![visible.to_owned()]);
    let batches = workspace.read_lake(visible);
    assert_eq!(total_rows(&batches), rows);
    let transactions: HashSet<_> = strings(&batches, "transaction").into_iter().collect();
    assert_eq!(transactions.len(), rows, "every record exactly once");
    let again = workspace.engine(&["run", pipeline.to_str().unwrap()]);
    assert!(again.stdout.contains("1 skipped"), "{}", again.stdout);
}

#[test]
fn status_shows_what_was_loaded_and_how_the_last_run_went() {
    let workspace = Workspace::new();
    let pipeline = workspace.default_pipeline("max_rejects = 0");
    let never = workspace.engine(&["status", pipeline.to_str().unwrap()]);
    assert_eq!(never.code, 0, "{}", never.all_output());
    assert!(never.stdout.contains("last run: never"), "{}", never.stdout);
    assert!(
        !workspace.path(".engine").exists(),
        "status creates nothing"
    );

    copy_samples(&workspace);
    // The REV sample has one rejected line, more than max_rejects = 0 allows.
    assert_eq!(
        workspace.engine(&["run", pipeline.to_str().unwrap()]).code,
        1
    );
    let text = workspace.engine(&["status", pipeline.to_str().unwrap()]);
    assert_eq!(text.code, 0, "{}", text.all_output());
    assert!(text.stdout.contains("last run: failed"), "{}", text.stdout);
    assert!(
        text.stdout.contains("failed: toss_REV_20070706.dat"),
        "{}",
        text.stdout
    );

    let json = workspace.engine(&["status", pipeline.to_str().unwrap(), "--json"]);
    assert_eq!(json.code, 0, "{}", json.all_output());
    let document: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(document["pipeline"], "test");
    assert_eq!(document["last_run"]["outcome"], "failed");
    assert_eq!(document["last_run"]["loaded"], 1);
    assert_eq!(document["last_run"]["failed"], 1);
    let files = document["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "only the AUTH file is loaded: {files:?}");
    assert_eq!(files[0]["source_file"], "toss_AUTH_20070706.dat");
    assert_eq!(files[0]["rows"], 4);
}
