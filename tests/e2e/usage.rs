//! The command line's guard rails: what the environment and the arguments may ask for, checked
//! before anything runs, and what `inspect` shows a terminal of a file it did not write.

use crate::support::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the engine in `cwd`, killing it if it has not finished within a minute (a hang fails the
/// test instead of stalling the suite).
fn engine_within_a_minute(engine: &Path, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(engine);
    command
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("engine starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("engine {args:?} with {env:?} did not finish within a minute");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn engine_threads_out_of_bounds_is_a_usage_error_for_every_command() {
    let workspace = Workspace::new();
    std::fs::write(
        workspace.inbox("toss_AUTH_20070706.dat"),
        toss_file(3, "10"),
    )
    .unwrap();
    let pipeline = workspace.default_pipeline("");
    let pipeline = pipeline.to_str().unwrap();
    for threads in ["30000", "257", "0", "many"] {
        for command in ["run", "validate"] {
            let run = engine_within_a_minute(
                Path::new(&*ENGINE),
                workspace.dir.path(),
                &[command, pipeline],
                &[("ENGINE_THREADS", threads)],
            );
            assert_eq!(run.code, 2, "{command} {threads}: {}", run.all_output());
            assert!(
                run.stderr.contains("ENGINE_THREADS") && run.stderr.contains("1 to 256"),
                "{command} {threads}: {}",
                run.stderr
            );
            assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        }
    }
    assert!(workspace.lake_files().is_empty(), "nothing ran");
    let run = workspace.engine_with_env(&["run", pipeline], &[("ENGINE_THREADS", "256")]);
    assert_eq!(run.code, 0, "{}", run.all_output());
}

#[test]
fn validate_refuses_a_schedule_as_watch_does() {
    let workspace = Workspace::new();
    let pipeline = workspace.pipeline(
        "pipeline.toml",
        "[pipeline]\nname = \"test\"\nschedule = \"every minute\"\n\n[source]\ntype = \"dir\"\n\
         path = \"inbox\"\n\n[[sinks]]\ntype = \"parquet\"\npath = \"lake\"\n",
    );
    let pipeline = pipeline.to_str().unwrap();
    let watch = engine_within_a_minute(
        Path::new(&*ENGINE),
        workspace.dir.path(),
        &["watch", pipeline],
        &[],
    );
    assert_eq!(watch.code, 2, "{}", watch.all_output());
    let validate = workspace.engine(&["validate", pipeline]);
    assert_eq!(validate.code, 2, "{}", validate.all_output());
    assert!(
        validate
            .stderr
            .contains("\"every minute\" is not a cron expression"),
        "{}",
        validate.stderr
    );
    assert_eq!(validate.stderr, watch.stderr);
}

#[test]
fn inspect_shows_control_characters_escaped() {
    let workspace = Workspace::new();
    let folder = workspace.path("in\x1b]0;title\x07box");
    std::fs::create_dir(&folder).unwrap();
    let file = folder.join("toss_AUTH_20070706.dat");
    let good = toss_line(1, 1000, "10").replace("buyer1", "buyer\x1b[2J\x1b[31m1");
    let bad = "toss;SC0010;\x1b[31mbroken\x1b[0m\r";
    std::fs::write(&file, format!("{good}\n{bad}\n")).unwrap();
    let run = workspace.engine(&["inspect", file.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(
        !run.stdout.contains(['\x1b', '\x07', '\r']),
        "raw control characters reached the terminal: {:?}",
        run.stdout
    );
    assert!(
        run.stdout.contains("in\\u{1b}]0;title\\u{7}box"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("buyer\\u{1b}[2J\\u{1b}[31m1"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("\\u{1b}[31mbroken\\u{1b}[0m"),
        "{}",
        run.stdout
    );

    // A file inspect cannot place names itself escaped in the error too.
    let unnamed = folder.join("not\x1b[2Jtoss.dat");
    std::fs::write(&unnamed, format!("{good}\n")).unwrap();
    let run = workspace.engine(&["inspect", unnamed.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.all_output());
    assert!(!run.stderr.contains('\x1b'), "{:?}", run.stderr);
    assert!(
        run.stderr.contains("not\\u{1b}[2Jtoss.dat"),
        "{}",
        run.stderr
    );
}

/// `plugin new` run by an engine copied out of its checkout: the SDK is looked for above the
/// current folder too, and without one the user is told to pass `--sdk`; `--sdk` must be the
/// SDK.
#[test]
fn plugin_new_finds_the_sdk_or_asks_for_it_and_checks_it() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let sdk = repo.join("sdk").canonicalize().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let engine = elsewhere.path().join("engine");
    std::fs::copy(&*ENGINE, &engine).unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let new = |args: &[&str], cwd: &Path| {
        let mut all = vec!["plugin", "new"];
        all.extend_from_slice(args);
        engine_within_a_minute(&engine, cwd, &all, &[])
    };

    let lost = new(&["lost"], cwd.path());
    assert_eq!(lost.code, 2, "{}", lost.all_output());
    assert!(
        lost.stderr.contains("pass --sdk") && lost.stderr.contains("toss-etl-sdk"),
        "{}",
        lost.stderr
    );
    assert!(!cwd.path().join("lost").exists());

    let empty = cwd.path().join("random");
    std::fs::create_dir(&empty).unwrap();
    for (label, folder) in [
        ("missing", cwd.path().join("nowhere")),
        ("empty", empty),
        ("engine crate", repo.join("engine")),
    ] {
        let run = new(&["p", "--sdk", folder.to_str().unwrap()], cwd.path());
        assert_eq!(run.code, 2, "{label}: {}", run.all_output());
        assert!(
            run.stderr.contains("--sdk") && run.stderr.contains("toss-etl-sdk"),
            "{label}: {}",
            run.stderr
        );
        assert!(!cwd.path().join("p").exists(), "{label}");
    }

    let given = new(&["given", "--sdk", sdk.to_str().unwrap()], cwd.path());
    assert_eq!(given.code, 0, "{}", given.all_output());
    let manifest = std::fs::read_to_string(cwd.path().join("given/Cargo.toml")).unwrap();
    assert!(manifest.contains(&sdk.display().to_string()), "{manifest}");

    // Run from inside a checkout, the checkout's SDK is found.
    let inside = new(
        &["found", "--dir", cwd.path().to_str().unwrap()],
        &repo.join("engine/src"),
    );
    assert_eq!(inside.code, 0, "{}", inside.all_output());
    let manifest = std::fs::read_to_string(cwd.path().join("found/Cargo.toml")).unwrap();
    assert!(manifest.contains(&sdk.display().to_string()), "{manifest}");
}
