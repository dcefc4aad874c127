//! The pipeline file's promises: `${NAME}` in every string value, errors at the key's line that
//! quote the file as written, documented ranges, and a warning for a secret written into it.

use crate::support::*;

fn sinks_after(workspace: &Workspace, sinks: &str) -> std::path::PathBuf {
    workspace.inbox_pipeline("pipeline.toml", "test", "", "", sinks)
}

#[test]
fn a_value_out_of_its_range_is_refused_at_its_line() {
    let workspace = Workspace::new();
    // Line 17 of the standard pipeline is the sink's first key after `[[sinks]]`.
    let pipeline = sinks_after(
        &workspace,
        "[[sinks]]\ntype = \"parquet\"\npath = \"lake\"\nzstd_level = 0\n",
    );
    let text = std::fs::read_to_string(&pipeline).unwrap();
    let line = text
        .lines()
        .position(|line| line.starts_with("zstd_level"))
        .unwrap()
        + 1;
    for command in ["validate", "run"] {
        let run = workspace.engine(&[command, pipeline.to_str().unwrap()]);
        assert_eq!(run.code, 2, "{command}: {}", run.all_output());
        assert!(
            run.stderr.contains(&format!(
                "pipeline.toml:{line}:1: [[sinks]] parquet zstd_level"
            )),
            "{command}: {}",
            run.stderr
        );
        assert!(run.stderr.contains("use 1 to 22"), "{}", run.stderr);
    }
    assert!(workspace.lake_files().is_empty());

    let settle = workspace.pipeline(
        "settle.toml",
        &text
            .replace("zstd_level = 0\n", "")
            .replace("settle_secs = 0", "settle_secs = 99999"),
    );
    let run = workspace.engine(&["validate", settle.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.all_output());
    assert!(
        run.stderr.contains("settle.toml:8:1: [source] settle_secs"),
        "{}",
        run.stderr
    );

    let no_mids = workspace.pipeline(
        "mids.toml",
        &text
            .replace("zstd_level = 0\n", "")
            .replace("settle_secs = 0", "mids = []"),
    );
    let run = workspace.engine(&["validate", no_mids.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.all_output());
    assert!(run.stderr.contains("mids.toml:8:1:"), "{}", run.stderr);
    assert!(run.stderr.contains("remove the key"), "{}", run.stderr);
}

#[test]
fn dates_expand_variables_and_a_wrong_value_is_quoted_as_written() {
    let workspace = Workspace::new();
    std::fs::write(
        workspace.inbox("toss_AUTH_20070706.dat"),
        toss_file(3, "10"),
    )
    .unwrap();
    std::fs::write(
        workspace.inbox("toss_AUTH_20070707.dat"),
        toss_file(2, "10"),
    )
    .unwrap();
    let text = std::fs::read_to_string(workspace.default_pipeline(""))
        .unwrap()
        .replace("dates = \"all\"", "dates = \"${E2E_DATES}\"")
        .replace(
            "type = \"toss\"",
            "type = \"toss\"\nencoding = \"${E2E_ENCODING:-utf-8}\"",
        );
    let pipeline = workspace.pipeline("pipeline.toml", &text);
    let pipeline = pipeline.to_str().unwrap();

    let wrong = workspace.engine_with_env(&["run", pipeline], &[("E2E_DATES", "s3cr3t-ish")]);
    assert_eq!(wrong.code, 2, "{}", wrong.all_output());
    assert!(
        wrong.stderr.contains("pipeline.toml:3:"),
        "{}",
        wrong.stderr
    );
    assert!(
        wrong.stderr.contains("\"${E2E_DATES}\""),
        "{}",
        wrong.stderr
    );
    assert!(!wrong.stderr.contains("s3cr3t-ish"), "{}", wrong.stderr);

    let run = workspace.engine_with_env(&["run", pipeline], &[("E2E_DATES", "2007-07-06")]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert_eq!(
        workspace.lake_files().len(),
        1,
        "only 2007-07-06: {:?}",
        workspace.lake_files()
    );
}

#[test]
fn a_secret_written_in_the_file_is_warned_about_with_its_key_and_line() {
    let workspace = Workspace::new();
    let sink = "[[sinks]]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\nsecret = \"hunter2-literal\"\nsignature = \"toss-etl\"\n";
    let pipeline = sinks_after(&workspace, sink);
    let text = std::fs::read_to_string(&pipeline).unwrap();
    let line = text
        .lines()
        .position(|line| line.starts_with("secret"))
        .unwrap()
        + 1;
    let run = workspace.engine(&["validate", pipeline.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(
        run.stderr
            .contains(&format!("pipeline.toml:{line}: `secret`")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("${SECRET}"), "{}", run.stderr);
    assert!(run.stderr.contains("WARN"), "{}", run.stderr);
    assert!(!run.all_output().contains("hunter2-literal"));

    let from_env = workspace.pipeline(
        "env.toml",
        &text.replace("\"hunter2-literal\"", "\"${E2E_WEBHOOK_SECRET}\""),
    );
    let run = workspace.engine_with_env(
        &["validate", from_env.to_str().unwrap()],
        &[("E2E_WEBHOOK_SECRET", "hunter2-literal")],
    );
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(!run.stderr.contains("WARN"), "{}", run.stderr);
}
