//! What a careless or hostile inbox brings: files without usable line ends, control characters,
//! links out of the inbox, and what a failure at the very end of a load leaves behind.

use crate::support::{Workspace, toss_file, toss_line, total_rows};
use std::os::unix::fs::PermissionsExt;

const AUTH: &str = "toss_AUTH_20070706.dat";
const AUTH_PARQUET: &str = "record_kind=AUTH/trxdate=2007-07-06/toss_AUTH_20070706.parquet";

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn reject_reasons(workspace: &Workspace, file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(workspace.path(&format!(".engine/rejects/test/{file}")))
        .unwrap_or_else(|err| panic!("{file}: {err}"));
    text.lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            value["reason"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn records_separated_by_carriage_returns_alone_all_load() {
    let workspace = Workspace::new();
    let pipeline = workspace.default_pipeline("");
    std::fs::write(
        workspace.inbox(AUTH),
        toss_file(20_000, "10").replace('\n', "\r"),
    )
    .unwrap();

    let run = workspace.engine(&["run", pipeline.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert_eq!(total_rows(&workspace.read_lake(AUTH_PARQUET)), 20_000);
    assert!(
        run.stdout.contains("20000 rows loaded, 0 rejected"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_file_without_line_ends_fails_instead_of_loading_nothing() {
    let workspace = Workspace::new();
    let pipeline = workspace.default_pipeline("");
    // 2 MB of records glued together with no line end at all.
    let glued = toss_file(16_000, "10").replace('\n', "");
    std::fs::write(workspace.inbox(AUTH), &glued).unwrap();

    let run = workspace.engine(&["run", pipeline.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert!(run.stderr.contains(AUTH), "{}", run.stderr);
    assert!(run.stderr.contains("mostly rejected"), "{}", run.stderr);
    assert!(workspace.lake_files().is_empty());
    // The failed version's rejects say the line was cut.
    let reasons = reject_reasons(&workspace, "toss_AUTH_20070706.failed.jsonl");
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].contains("first 65536 bytes"), "{}", reasons[0]);

    // Not recorded as loaded: the next run fails the same way instead of skipping the file.
    let again = workspace.engine(&["run", pipeline.to_str().unwrap()]);
    assert_eq!(again.code, 1, "{}", again.all_output());
    assert!(again.stderr.contains("mostly rejected"), "{}", again.stderr);
}

#[test]
fn control_characters_in_a_field_are_rejected_with_the_line_and_the_rest_loads() {
    let workspace = Workspace::new();
    let pipeline = workspace.default_pipeline("");
    let mut text = toss_file(3, "10");
    text.push_str(&toss_line(4, 1004, "10").replace("buyer4", "buy\0er4"));
    text.push('\n');
    text.push_str(&toss_line(5, 1005, "10").replace("buyer5", "buy\u{1b}[2Jer5"));
    text.push('\n');
    std::fs::write(workspace.inbox(AUTH), text).unwrap();

    let run = workspace.engine(&["run", pipeline.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert_eq!(total_rows(&workspace.read_lake(AUTH_PARQUET)), 3);
    let reasons = reject_reasons(&workspace, "toss_AUTH_20070706.jsonl");
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons[0].starts_with("control character U+0000 (NUL) in field 7"),
        "{}",
        reasons[0]
    );
    assert!(
        reasons[1].starts_with("control character U+001B (ESC) in field 7"),
        "{}",
        reasons[1]
    );
}

#[test]
fn a_link_out_of_the_inbox_is_not_read_and_what_the_engine_keeps_is_private() {
    let workspace = Workspace::new();
    let pipeline = workspace.default_pipeline("");
    let secret = workspace.path("secret.txt");
    std::fs::write(&secret, "root:$6$not-a-toss-line:19000:0:99999:7:::\n").unwrap();
    std::os::unix::fs::symlink(&secret, workspace.inbox("toss_REV_20070706.dat")).unwrap();
    // A link that stays inside the inbox is followed.
    std::fs::write(workspace.inbox("auth-latest.txt"), toss_file(2, "10")).unwrap();
    std::os::unix::fs::symlink("auth-latest.txt", workspace.inbox(AUTH)).unwrap();

    let run = workspace.engine(&["run", pipeline.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(run.stderr.contains("outside the inbox"), "{}", run.stderr);
    assert_eq!(workspace.lake_files(), [AUTH_PARQUET]);
    let rejects = workspace.path(".engine/rejects/test");
    for entry in std::fs::read_dir(&rejects).into_iter().flatten() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!text.contains("not-a-toss-line"), "{text}");
    }

    // Rejects and state are the input's own text: readable by the engine's user only.
    std::fs::write(
        workspace.inbox(AUTH),
        "toss;only;three\n".to_owned() + &toss_file(2, "10"),
    )
    .unwrap();
    let run = workspace.engine(&["run", pipeline.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert_eq!(mode(&rejects.join("toss_AUTH_20070706.jsonl")), 0o600);
    assert_eq!(mode(&rejects), 0o700);
    assert_eq!(mode(&workspace.path(".engine/state.sqlite")), 0o600);
    assert_eq!(mode(&workspace.path(".engine")), 0o700);
}

#[test]
fn a_sink_failing_at_commit_leaves_the_rejects_of_the_version_it_still_holds() {
    let workspace = Workspace::new();
    let pipeline = workspace.default_pipeline("");
    let first = format!("toss;first;bad\n{}", toss_file(2, "10"));
    std::fs::write(workspace.inbox(AUTH), first).unwrap();
    let run = workspace.engine(&["run", pipeline.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let before =
        std::fs::read_to_string(workspace.path(".engine/rejects/test/toss_AUTH_20070706.jsonl"))
            .unwrap();

    // The next version cannot be put in place: a folder stands where its file goes.
    let final_path = workspace.path(&format!("lake/{AUTH_PARQUET}"));
    std::fs::remove_file(&final_path).unwrap();
    std::fs::create_dir_all(final_path.join("blocker")).unwrap();
    let second = format!("toss;second;bad;ly\n{}", toss_file(3, "10"));
    std::fs::write(workspace.inbox(AUTH), second).unwrap();
    let run = workspace.engine(&["run", pipeline.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    // The OS's reason is part of the message.
    assert!(run.stderr.contains("cannot put"), "{}", run.stderr);
    assert!(
        run.stderr.contains("directory") || run.stderr.contains("Directory"),
        "{}",
        run.stderr
    );
    let after =
        std::fs::read_to_string(workspace.path(".engine/rejects/test/toss_AUTH_20070706.jsonl"))
            .unwrap();
    assert_eq!(after, before);
    assert!(!run.stdout.contains("3 rows loaded"), "{}", run.stdout);
}
