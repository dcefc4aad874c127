//! The Parquet lake on object storage, against a real S3 server (moto): multipart uploads that
//! show nothing until complete, replace the older object whole, and are aborted when a load
//! fails; a SIGKILL mid-upload and a rerun leave exactly the input.

use crate::support::s3::{S3Server, SECRET_KEY};
use crate::support::*;
use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::Duration;

const BUCKET: &str = "lake";
const AUTH: &str = "toss_AUTH_20070706.dat";
const KEY: &str = "toss/record_kind=AUTH/trxdate=2007-07-06/toss_AUTH_20070706.parquet";

fn s3_pipeline(workspace: &Workspace, extra_parser: &str) -> std::path::PathBuf {
    workspace.inbox_pipeline(
        "pipeline.toml",
        "test",
        extra_parser,
        "",
        "[[sinks]]\ntype = \"parquet\"\npath = \"s3://lake/toss\"\nendpoint = \"${S3_ENDPOINT}\"\n\
         allow_http = true\npart_size_mb = 5\n",
    )
}

fn run(workspace: &Workspace, s3: &S3Server, pipeline: &std::path::Path) -> Run {
    let env = s3.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = workspace.engine_with_env(&["run", pipeline.to_str().unwrap()], &env);
    assert!(
        !run.all_output().contains(SECRET_KEY),
        "{}",
        run.all_output()
    );
    run
}

/// A file of `rows` records whose Parquet output is several parts large: each record's
/// transaction and buyer are unique and hard to compress.
fn large_file(rows: u64, version: u64) -> String {
    let mut text = String::new();
    for n in 1..=rows {
        let noise = format!("{:x}", (n * 2_654_435_761 + version * 97) % 4_294_967_291);
        text.push_str(&format!(
            "toss;SC0010;toss{n:012}{noise};Toss_order_{noise}{n};11100;국민;b{noise}{n};{};N;20070706120000;{:08};10\n",
            1000 + n + version,
            n % 100_000_000
        ));
    }
    text
}

#[test]
fn the_lake_goes_to_s3_in_parts_and_a_new_version_replaces_the_object_whole() {
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let workspace = Workspace::new();
    let pipeline = s3_pipeline(&workspace, "");
    std::fs::write(workspace.inbox(AUTH), large_file(250_000, 1)).unwrap();

    let first = run(&workspace, &s3, &pipeline);
    assert_eq!(first.code, 0, "{}", first.all_output());
    let objects = s3.list(BUCKET, "toss");
    assert_eq!(objects.len(), 1, "{objects:?}");
    assert_eq!(objects[0].0, KEY);
    assert!(
        objects[0].1 > 5 * 1024 * 1024,
        "{} bytes: one part only",
        objects[0].1
    );
    assert_eq!(total_rows(&s3.read_parquet(BUCKET, KEY)), 250_000);

    // A longer version replaces it; status --verify reads its footer from the store.
    std::fs::write(workspace.inbox(AUTH), large_file(260_000, 2)).unwrap();
    let second = run(&workspace, &s3, &pipeline);
    assert_eq!(second.code, 0, "{}", second.all_output());
    assert_eq!(s3.list(BUCKET, "toss").len(), 1);
    let batches = s3.read_parquet(BUCKET, KEY);
    assert_eq!(total_rows(&batches), 260_000);
    assert_eq!(s3.unfinished_uploads(BUCKET), 0);
    let env = s3.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let verified =
        workspace.engine_with_env(&["status", pipeline.to_str().unwrap(), "--verify"], &env);
    assert_eq!(verified.code, 0, "{}", verified.all_output());
    assert!(
        verified.stdout.contains("every sink holds"),
        "{}",
        verified.stdout
    );
}

#[test]
fn a_load_that_fails_after_streaming_parts_aborts_its_upload_and_leaves_the_old_object() {
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let workspace = Workspace::new();
    let pipeline = s3_pipeline(&workspace, "max_rejects = 1000000");
    std::fs::write(workspace.inbox(AUTH), large_file(1_000, 1)).unwrap();
    assert_eq!(run(&workspace, &s3, &pipeline).code, 0);
    let before = s3.get(BUCKET, KEY);

    // Many good records (several parts' worth), then more rejected lines than rows: the file
    // fails once every record has been streamed to the store.
    let mut text = large_file(250_000, 2);
    text.push_str(&"toss;only;three\n".repeat(250_001));
    std::fs::write(workspace.inbox(AUTH), text).unwrap();
    let failed = run(&workspace, &s3, &pipeline);
    assert_eq!(failed.code, 1, "{}", failed.all_output());
    assert!(
        failed.stderr.contains("mostly rejected"),
        "{}",
        failed.stderr
    );
    assert_eq!(s3.get(BUCKET, KEY), before);
    assert_eq!(s3.list(BUCKET, "toss").len(), 1);
    assert_eq!(s3.unfinished_uploads(BUCKET), 0, "the upload was aborted");
}

#[test]
fn sigkill_during_an_upload_then_a_rerun_leaves_exactly_the_input() {
    let s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let workspace = Workspace::new();
    let pipeline = s3_pipeline(&workspace, "");
    std::fs::write(workspace.inbox(AUTH), large_file(400_000, 1)).unwrap();
    let env = s3.env();
    for kill_after_ms in [150u64, 350, 600, 900] {
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
        // Whatever the kill interrupted, no reader sees a partial object.
        for (key, _) in s3.list(BUCKET, "toss") {
            assert_eq!(key, KEY);
            assert_eq!(total_rows(&s3.read_parquet(BUCKET, &key)), 400_000);
        }
    }
    let rerun = run(&workspace, &s3, &pipeline);
    assert_eq!(rerun.code, 0, "{}", rerun.all_output());
    let batches = s3.read_parquet(BUCKET, KEY);
    assert_eq!(total_rows(&batches), 400_000);
    let keys: HashSet<Option<String>> = strings(&batches, "transaction").into_iter().collect();
    assert_eq!(keys.len(), 400_000);
}

#[test]
fn a_bad_object_store_path_is_refused_at_its_key() {
    let workspace = Workspace::new();
    let pipeline = workspace.inbox_pipeline(
        "pipeline.toml",
        "test",
        "",
        "",
        "[[sinks]]\ntype = \"parquet\"\npath = \"ftp://lake/toss\"\n",
    );
    let validate = workspace.engine(&["validate", pipeline.to_str().unwrap()]);
    assert_eq!(validate.code, 2, "{}", validate.all_output());
    assert!(validate.stderr.contains("path"), "{}", validate.stderr);
    assert!(
        validate.stderr.contains("s3://bucket/prefix"),
        "{}",
        validate.stderr
    );
}

#[test]
fn the_shipped_s3_pipeline_loads_the_samples_with_credentials_from_the_environment() {
    let s3 = S3Server::start();
    s3.create_bucket("shipped-lake");
    let workspace = Workspace::new();
    let pipeline = s3.shipped_pipeline(&workspace, "lake-s3.toml");
    let mut env = s3.env();
    env.push(("LAKE_BUCKET", "shipped-lake".to_owned()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = workspace.engine_with_env(&["run", pipeline.to_str().unwrap()], &env);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let objects: Vec<String> = s3
        .list("shipped-lake", "toss")
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    assert_eq!(
        objects,
        [
            "toss/record_kind=AUTH/trxdate=2007-07-06/toss_AUTH_20070706.parquet",
            "toss/record_kind=REV/trxdate=2007-07-06/toss_REV_20070706.parquet"
        ]
    );
    let auth = s3.read_parquet("shipped-lake", &objects[0]);
    assert_eq!(total_rows(&auth), 4);
}
