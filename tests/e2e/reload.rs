//! When a sink lost what it committed (files deleted by hand): `status --verify` finds it, and
//! `run --force` loads it again.

use crate::support::{Workspace, sample, total_rows};

const AUTH: &str = "toss_AUTH_20070706.dat";
const AUTH_PARQUET: &str = "record_kind=AUTH/trxdate=2007-07-06/toss_AUTH_20070706.parquet";
const REV_PARQUET: &str = "record_kind=REV/trxdate=2007-07-06/toss_REV_20070706.parquet";

#[test]
fn status_verify_finds_a_deleted_file_and_run_force_loads_it_again() {
    let workspace = Workspace::new();
    for name in [AUTH, "toss_REV_20070706.dat"] {
        std::fs::copy(sample(name), workspace.inbox(name)).unwrap();
    }
    let pipeline = workspace.default_pipeline("");
    let pipeline = pipeline.to_str().unwrap();
    assert_eq!(workspace.engine(&["run", pipeline]).code, 0);
    let verified = workspace.engine(&["status", pipeline, "--verify"]);
    assert_eq!(verified.code, 0, "{}", verified.all_output());
    assert!(
        verified.stdout.contains("every sink holds"),
        "{}",
        verified.stdout
    );

    std::fs::remove_file(workspace.path(&format!("lake/{AUTH_PARQUET}"))).unwrap();
    // Plain status trusts the state; --verify looks.
    let trusting = workspace.engine(&["status", pipeline]);
    assert_eq!(trusting.code, 0, "{}", trusting.all_output());
    assert!(!trusting.stdout.contains("LOST"), "{}", trusting.stdout);
    let verified = workspace.engine(&["status", pipeline, "--verify"]);
    assert_eq!(verified.code, 1, "{}", verified.all_output());
    assert!(
        verified.stdout.contains("LOST in parquet"),
        "{}",
        verified.stdout
    );
    assert!(verified.stdout.contains("is gone"), "{}", verified.stdout);
    assert!(
        verified.stdout.contains(&format!("--force --file {AUTH}")),
        "{}",
        verified.stdout
    );
    let json = workspace.engine(&["status", pipeline, "--verify", "--json"]);
    assert_eq!(json.code, 1, "{}", json.all_output());
    let document: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let auth = document["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|file| file["source_file"] == AUTH)
        .unwrap();
    assert!(
        auth["lost"]["parquet"]
            .as_str()
            .unwrap()
            .contains("is gone"),
        "{auth:#}"
    );

    // A plain run trusts the state and skips it; --force --file loads that one file again.
    let skipped = workspace.engine(&["run", pipeline]);
    assert!(skipped.stdout.contains("2 skipped"), "{}", skipped.stdout);
    assert!(workspace.lake_files() == [REV_PARQUET]);
    let forced = workspace.engine(&["run", pipeline, "--force", "--file", AUTH]);
    assert_eq!(forced.code, 0, "{}", forced.all_output());
    assert!(
        forced.stdout.contains("1 loaded, 0 skipped"),
        "{}",
        forced.stdout
    );
    assert_eq!(workspace.lake_files(), [AUTH_PARQUET, REV_PARQUET]);
    assert_eq!(total_rows(&workspace.read_lake(AUTH_PARQUET)), 4);
    assert_eq!(workspace.engine(&["status", pipeline, "--verify"]).code, 0);

    // --force alone reloads every selected file; a name the source does not list fails.
    let all = workspace.engine(&["run", pipeline, "--force"]);
    assert!(all.stdout.contains("2 loaded"), "{}", all.stdout);
    let unknown = workspace.engine(&[
        "run",
        pipeline,
        "--force",
        "--file",
        "toss_AUTH_20070707.dat",
    ]);
    assert_eq!(unknown.code, 1, "{}", unknown.all_output());
    assert!(
        unknown.stderr.contains("lists no such file"),
        "{}",
        unknown.stderr
    );
}
