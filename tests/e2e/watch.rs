//! `engine watch` — left running, it loads each new version, survives failed cycles,
//! stops on faults retrying cannot mend, and stops cleanly on a signal.

use crate::support::pg::PgServer;
use crate::support::*;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Today in Korea time, as Toss names files (`yyyymmdd`).
fn korea_today() -> String {
    (chrono::Utc::now() + chrono::Duration::hours(9))
        .format("%Y%m%d")
        .to_string()
}

/// A watch pipeline waking every second, into the lake and `extra` tables.
fn watch_pipeline(workspace: &Workspace, extra: &str) -> PathBuf {
    workspace.pipeline(
        "watch.toml",
        &format!(
            r#"[pipeline]
name = "watched"
schedule = "* * * * * *"

[source]
type = "dir"
path = "inbox"
settle_secs = 0

[[sinks]]
type = "parquet"
path = "lake"

{extra}
"#
        ),
    )
}

struct Watcher {
    child: Child,
}

impl Watcher {
    fn start(workspace: &Workspace, pipeline: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(&*ENGINE);
        command
            .arg("watch")
            .arg(pipeline)
            .args(args)
            .current_dir(workspace.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        Watcher {
            child: command.spawn().expect("engine watch starts"),
        }
    }

    fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Waits for the watcher to exit; its exit code and everything it printed.
    fn finish(mut self, within: Duration) -> (Option<i32>, String) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut output = String::new();
                self.child
                    .stdout
                    .take()
                    .unwrap()
                    .read_to_string(&mut output)
                    .unwrap();
                self.child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut output)
                    .unwrap();
                return (status.code(), output);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("engine watch did not stop within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `condition` until it holds, failing the test after `within`.
fn wait_until(within: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn status_json(workspace: &Workspace, pipeline: &Path) -> serde_json::Value {
    status_json_with(workspace, pipeline, &[])
}

/// `engine status --json`, with the environment the pipeline file names.
fn status_json_with(
    workspace: &Workspace,
    pipeline: &Path,
    env: &[(&str, &str)],
) -> serde_json::Value {
    let run = workspace.engine_with_env(&["status", pipeline.to_str().unwrap(), "--json"], env);
    assert_eq!(run.code, 0, "{}", run.all_output());
    serde_json::from_str(&run.stdout).unwrap()
}

fn loaded_rows(status: &serde_json::Value, file: &str) -> Option<u64> {
    status["files"]
        .as_array()?
        .iter()
        .find(|entry| entry["source_file"] == file)?
        .get("rows")?
        .as_u64()
}

/// What the metrics endpoint serves (empty while the watcher is not listening yet).
fn metrics(port: u16) -> String {
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

#[test]
fn watch_loads_each_new_version_and_stops_cleanly_on_sigterm() {
    let workspace = Workspace::new();
    let name = format!("toss_AUTH_{}.dat", korea_today());
    std::fs::write(workspace.inbox(&name), toss_file(3, "10")).unwrap();
    let pipeline = watch_pipeline(&workspace, "");
    let port = free_port();
    let mut watcher = Watcher::start(
        &workspace,
        &pipeline,
        &["--metrics-addr", &format!("127.0.0.1:{port}")],
        &[],
    );
    wait_until(Duration::from_secs(60), "the first version", || {
        loaded_rows(&status_json(&workspace, &pipeline), &name) == Some(3)
    });

    // The next version (Toss re-sends the day, longer) is picked up by a later wake.
    std::fs::write(workspace.inbox(&name), toss_file(5, "10")).unwrap();
    wait_until(Duration::from_secs(60), "the second version", || {
        loaded_rows(&status_json(&workspace, &pipeline), &name) == Some(5)
    });
    assert!(watcher.running());
    let status = status_json(&workspace, &pipeline);
    assert_eq!(status["files"][0]["sinks"]["parquet"], true, "{status:#}");
    assert!(status["next_wake"].is_string(), "{status:#}");
    let lake = workspace.read_lake(&format!(
        "record_kind=AUTH/trxdate={}/{}",
        {
            let day = korea_today();
            format!("{}-{}-{}", &day[..4], &day[4..6], &day[6..])
        },
        name.replace(".dat", ".parquet")
    ));
    assert_eq!(total_rows(&lake), 5);

    let scraped = metrics(port);
    assert!(scraped.starts_with("HTTP/1.1 200 OK"), "{scraped}");
    assert!(
        scraped.contains("engine_files_total{pipeline=\"watched\",outcome=\"loaded\"} 2"),
        "{scraped}"
    );
    assert!(
        scraped.contains("engine_rows_written_total{pipeline=\"watched\",sink=\"parquet\"} 8"),
        "{scraped}"
    );
    assert!(scraped.contains("engine_last_success_timestamp_seconds{pipeline=\"watched\"}"));

    watcher.signal("TERM");
    let (code, output) = watcher.finish(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("engine watch stopped"), "{output}");
    let after = status_json(&workspace, &pipeline);
    assert!(after["next_wake"].is_null(), "{after:#}");
}

#[test]
fn a_signal_mid_load_rolls_the_file_back_and_exits_zero() {
    let workspace = Workspace::new();
    let name = format!("toss_AUTH_{}.dat", korea_today());
    std::fs::write(workspace.inbox(&name), toss_file(600_000, "10")).unwrap();
    let pipeline = watch_pipeline(&workspace, "");
    let watcher = Watcher::start(&workspace, &pipeline, &[], &[]);
    // The Parquet file is being written under its hidden temporary name: the load is in flight.
    wait_until(Duration::from_secs(60), "the load to start", || {
        walk(&workspace.path("lake"))
            .iter()
            .any(|path| path.ends_with(".inprogress"))
    });
    watcher.signal("INT");
    let (code, output) = watcher.finish(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("interrupted"), "{output}");
    assert!(
        walk(&workspace.path("lake")).is_empty(),
        "nothing of the file may stay: {:?}",
        walk(&workspace.path("lake"))
    );
    assert_eq!(
        loaded_rows(&status_json(&workspace, &pipeline), &name),
        None
    );

    // The next run loads it whole.
    let run = workspace.engine(&["run", pipeline.to_str().unwrap(), "--date", &{
        let day = korea_today();
        format!("{}-{}-{}", &day[..4], &day[4..6], &day[6..])
    }]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert_eq!(
        loaded_rows(&status_json(&workspace, &pipeline), &name),
        Some(600_000)
    );
}

/// Every file under `folder`, hidden ones included.
fn walk(folder: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(folder) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path.display().to_string());
        }
    }
    found
}

#[test]
fn a_failed_cycle_is_retried_and_the_watcher_lives_on() {
    let server = PgServer::start();
    let url = server.create_database("merchant");
    server.stop_immediately();
    let workspace = Workspace::new();
    let name = format!("toss_AUTH_{}.dat", korea_today());
    std::fs::write(workspace.inbox(&name), toss_file(4, "10")).unwrap();
    let pipeline = watch_pipeline(
        &workspace,
        "[[sinks]]\ntype = \"postgres\"\nurl = \"${DATABASE_URL}\"\ntable = \"toss\"\nconnect_timeout_secs = 2",
    );
    let env = [("DATABASE_URL", url.as_str())];
    let port = free_port();
    let mut watcher = Watcher::start(
        &workspace,
        &pipeline,
        &["--metrics-addr", &format!("127.0.0.1:{port}")],
        &env,
    );
    wait_until(Duration::from_secs(60), "two failed cycles", || {
        metrics(port).contains("engine_consecutive_failed_runs{pipeline=\"watched\"} 2")
    });
    assert!(
        watcher.running(),
        "a sink that is down must not stop the watcher"
    );
    // Looking at the state needs none of the pipeline's secrets.
    assert_eq!(
        loaded_rows(&status_json(&workspace, &pipeline), &name),
        None
    );

    server.start_again();
    wait_until(
        Duration::from_secs(60),
        "the load after the database came back",
        || loaded_rows(&status_json_with(&workspace, &pipeline, &env), &name) == Some(4),
    );
    assert_eq!(
        server.value("merchant", "SELECT count(*) FROM toss"),
        Some("4".into())
    );
    let status = status_json_with(&workspace, &pipeline, &env);
    assert_eq!(status["files"][0]["sinks"]["postgres"], true, "{status:#}");
    assert!(metrics(port).contains("engine_consecutive_failed_runs{pipeline=\"watched\"} 0"));
    watcher.signal("TERM");
    assert_eq!(watcher.finish(Duration::from_secs(30)).0, Some(0));
}

#[test]
fn a_plugin_trap_stops_the_watcher_with_the_error() {
    let workspace = Workspace::new();
    let name = format!("toss_AUTH_{}.dat", korea_today());
    std::fs::write(workspace.inbox(&name), toss_file(2, "10")).unwrap();
    let plugin = format!(
        "[[transforms]]\ntype = \"wasm\"\nname = \"hostile\"\nmodule = \"{}/hostile.wasm\"\n\
         [transforms.config]\nbehave = \"panic\"\n",
        env!("ENGINE_PLUGIN_DIR")
    );
    let text = std::fs::read_to_string(watch_pipeline(&workspace, "")).unwrap();
    let pipeline = workspace.pipeline(
        "watch.toml",
        &text.replace("[[sinks]]", &format!("{plugin}\n[[sinks]]")),
    );
    let watcher = Watcher::start(&workspace, &pipeline, &[], &[]);
    let (code, output) = watcher.finish(Duration::from_secs(60));
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("plugin `hostile`"), "{output}");
    assert!(
        output.contains("engine watch stopped: retrying cannot help"),
        "{output}"
    );
    assert!(walk(&workspace.path("lake")).is_empty());
}

#[test]
fn watch_reconciles_after_each_cycle_and_publishes_the_discrepancy_counts() {
    let workspace = Workspace::new();
    let today = korea_today();
    let day = format!("{}-{}-{}", &today[..4], &today[4..6], &today[6..]);
    std::fs::write(
        workspace.inbox(&format!("toss_AUTH_{today}.dat")),
        toss_file(3, "10"),
    )
    .unwrap();
    // The shop has the three orders Toss approved, and one Toss never saw.
    let mut orders = String::from("order_id,amount,status,paid_at\n");
    for n in 1..=3 {
        orders.push_str(&format!(
            "Toss_order_{n},{},paid,{day} 12:00:00\n",
            1000 + n
        ));
    }
    orders.push_str(&format!("ghost-1,5000,paid,{day} 13:00:00\n"));
    std::fs::write(workspace.path("orders.csv"), orders).unwrap();
    let books = workspace.pipeline(
        "books.toml",
        &format!(
            "[reconcile]\nname = \"books\"\ndates = \"{day}\"\n[inputs.feed]\npath = \"lake\"\n\
             [inputs.orders]\npath = \"orders.csv\"\n"
        ),
    );
    let pipeline = watch_pipeline(&workspace, "");
    let port = free_port();
    let watcher = Watcher::start(
        &workspace,
        &pipeline,
        &[
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
            "--reconcile",
            books.to_str().unwrap(),
        ],
        &[],
    );
    let found = "engine_reconcile_discrepancies{reconcile=\"books\",kind=\"order_not_approved\"} 1";
    wait_until(Duration::from_secs(60), "a reconcile after a cycle", || {
        metrics(port).contains(found)
    });
    let scraped = metrics(port);
    assert!(
        scraped.contains(
            "engine_reconcile_discrepancies{reconcile=\"books\",kind=\"approval_without_order\"} 0"
        ),
        "{scraped}"
    );
    assert!(
        !scraped.contains(
            "engine_reconcile_runs_total{reconcile=\"books\",outcome=\"discrepancies\"} 0"
        ),
        "{scraped}"
    );
    assert!(
        workspace
            .path(&format!("reports/books_{day}_{day}.html"))
            .exists()
    );
    watcher.signal("TERM");
    let (code, output) = watcher.finish(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("reconciled"), "{output}");
}
