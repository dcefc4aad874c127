//! One whole business day as Toss delivers it — the previous day's full file at 00:05,
//! then 72 cumulative versions of the day's AUTH and REV files, one every 20 minutes — loaded
//! after each version into the lake, a real PostgreSQL and a webhook receiver, with the engine
//! killed (SIGKILL) at three random moments. At the end every sink must equal the final files.

use crate::support::pg::PgServer;
use crate::support::receiver::Receiver;
use crate::support::*;
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::Duration;

const DAY: &str = "20260302";
const DAY_BEFORE: &str = "20260301";
const VERSIONS: usize = 72;
const APPROVALS: usize = 3_000;
const CANCELS: usize = 150;
const SECRET: &str = "whsec_dG9zcy1ldGwtZTJlLWRheS13ZWJob29rLXNlY3JldCE=";
const MALFORMED: &str =
    "toss;SC0010;tossbad;Toss_bad;11100;국민;buyerbad;12a00;N;20260302100000;00000000;10";

/// A small deterministic generator (the simulation must be the same on every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

/// One Toss line for transaction `n` of `day` (`yyyymmdd`), dated `second` seconds into
/// `when` (the payment's day for AUTH, the refund's for REV).
fn toss_record(
    day: &str,
    n: usize,
    amount: u64,
    when: &str,
    second: usize,
    status: &str,
) -> String {
    let time = format!(
        "{when}{:02}{:02}{:02}",
        second / 3600,
        second / 60 % 60,
        second % 60
    );
    format!(
        "toss;SC0010;toss{day}{n:06};Toss_{day}_{n};11100;국민;buyer{n};{amount};N;{time};{:08};{status}",
        n * 7 % 100_000_000
    )
}

fn line(day: &str, n: usize, amount: u64, second: usize, status: &str) -> String {
    toss_record(day, n, amount, day, second, status)
}

/// A cancel of approval `n` of `day`, written at `second` of the business day.
struct Cancel {
    day: &'static str,
    n: usize,
    amount: u64,
    /// Version in which it first appears (status 21: the cancel failed, for now)…
    appears: usize,
    /// …and the version from which its status is 20 (succeeded), if ever.
    succeeds: Option<usize>,
}

struct Day {
    approvals: Vec<(usize, u64)>,
    cancels: Vec<Cancel>,
}

impl Day {
    fn new() -> Day {
        let mut random = Lcg(20_260_302);
        let approvals = (0..APPROVALS)
            .map(|n| (n, 1_000 + random.next(2_000_000)))
            .collect::<Vec<_>>();
        let mut cancelled = BTreeSet::new();
        let cancels = (0..CANCELS)
            .map(|index| {
                let appears = 1 + random.next(VERSIONS as u64 - 10) as usize;
                let succeeds = (index % 2 == 0)
                    .then(|| appears + 1 + random.next((VERSIONS - appears - 1) as u64) as usize);
                if index % 10 == 0 {
                    // A cancel of yesterday's approval.
                    Cancel {
                        day: DAY_BEFORE,
                        n: index,
                        amount: 5_000,
                        appears,
                        succeeds,
                    }
                } else {
                    // A same-day cancel: its approval is in today's AUTH file too.
                    // One cancel per approval, of one already approved by then.
                    let mut n = (appears * APPROVALS / VERSIONS).saturating_sub(1 + index % 7);
                    while !cancelled.insert(n) {
                        n -= 1;
                    }
                    Cancel {
                        day: DAY,
                        n,
                        amount: approvals[n].1,
                        appears,
                        succeeds,
                    }
                }
            })
            .collect();
        Day { approvals, cancels }
    }

    /// The AUTH file as Toss writes it at version `v` (0-based): every approval so far, and the
    /// malformed line from version 30 on, where it was written.
    fn auth(&self, v: usize) -> String {
        let upto = (v + 1) * APPROVALS / VERSIONS;
        let mut text = String::new();
        for &(n, amount) in &self.approvals[..upto] {
            if v >= 30 && n == 30 * APPROVALS / VERSIONS {
                text.push_str(MALFORMED);
                text.push('\n');
            }
            text.push_str(&line(DAY, n, amount, n * 86_000 / APPROVALS, "10"));
            text.push('\n');
        }
        text
    }

    /// The REV file at version `v`: each cancel once it appeared, with its status then.
    fn rev(&self, v: usize) -> String {
        let mut text = String::new();
        let mut shown: Vec<&Cancel> = self.cancels.iter().filter(|c| c.appears <= v).collect();
        shown.sort_by_key(|cancel| (cancel.appears, cancel.day, cancel.n));
        for cancel in shown {
            let status = match cancel.succeeds {
                Some(at) if at <= v => "20",
                _ => "21",
            };
            // The refund happened today, whichever day the approval was.
            let cancelled = toss_record(
                cancel.day,
                cancel.n,
                cancel.amount,
                DAY,
                cancel.appears * 1_200,
                status,
            );
            text.push_str(&cancelled);
            text.push('\n');
        }
        text
    }

    /// Every record of the final files: (kind, trxdate, transaction) → (amount, status).
    fn final_records(
        &self,
        day_before_auth: &str,
    ) -> BTreeMap<(String, String, String), (i64, String)> {
        let mut records = BTreeMap::new();
        let mut add = |kind: &str, date: &str, text: &str| {
            for line in text.lines().filter(|line| *line != MALFORMED) {
                let fields: Vec<&str> = line.split(';').collect();
                records.insert(
                    (kind.to_owned(), date.to_owned(), fields[2].to_owned()),
                    (fields[7].parse().unwrap(), fields[11].to_owned()),
                );
            }
        };
        add("AUTH", "2026-03-01", day_before_auth);
        add("AUTH", "2026-03-02", &self.auth(VERSIONS - 1));
        add("REV", "2026-03-02", &self.rev(VERSIONS - 1));
        records
    }
}

/// The day before: 200 approvals; a partial version before midnight, the full one at 00:05.
fn day_before_auth(full: bool) -> String {
    let count = if full { 200 } else { 150 };
    (0..count)
        .map(|n| line(DAY_BEFORE, n, 10_000 + n as u64, n * 400, "10") + "\n")
        .collect()
}

fn pipeline(workspace: &Workspace) -> std::path::PathBuf {
    workspace.inbox_pipeline(
        "day.toml",
        "day",
        "",
        "",
        r#"[[sinks]]
type = "parquet"
path = "lake"

[[sinks]]
type = "postgres"
url = "${DATABASE_URL}"
table = "toss_transactions"

[[sinks]]
type = "webhook"
url = "${WEBHOOK_URL}"
secret = "${WEBHOOK_SECRET}"
batch_rows = 200
timeout_secs = 5
retry_base_ms = 50
"#,
    )
}

/// Writes a file as a whole new version (as Toss's upload replaces it).
fn deliver(workspace: &Workspace, name: &str, text: &str) {
    let temporary = workspace.path(&format!("{name}.uploading"));
    std::fs::write(&temporary, text).unwrap();
    std::fs::rename(&temporary, workspace.inbox(name)).unwrap();
}

fn lake_records(workspace: &Workspace) -> BTreeMap<(String, String, String), (i64, String)> {
    let mut records = BTreeMap::new();
    for file in workspace.lake_files() {
        let kind = if file.contains("record_kind=AUTH") {
            "AUTH"
        } else {
            "REV"
        };
        let date = file.split("trxdate=").nth(1).unwrap()[..10].to_owned();
        let batches = workspace.read_lake(&file);
        let transactions = strings(&batches, "transaction");
        let amounts = int64s(&batches, "amount");
        let statuses = strings(&batches, "status");
        for ((transaction, amount), status) in transactions.into_iter().zip(amounts).zip(statuses) {
            let previous = records.insert(
                (kind.to_owned(), date.clone(), transaction.unwrap()),
                (amount, status.unwrap()),
            );
            assert!(previous.is_none(), "a record twice in the lake");
        }
    }
    records
}

#[test]
fn a_whole_day_with_three_crashes_ends_with_every_sink_equal_to_the_final_files() {
    let server = PgServer::start();
    let url = server.create_database("merchant");
    let receiver = Receiver::start(SECRET);
    let workspace = Workspace::new();
    let pipeline = pipeline(&workspace);
    let receiver_url = receiver.url();
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("WEBHOOK_URL", receiver_url.as_str()),
        ("WEBHOOK_SECRET", SECRET),
    ];
    let run = |label: &str| {
        let run = workspace.engine_with_env(&["run", pipeline.to_str().unwrap()], &env);
        assert_eq!(run.code, 0, "{label}: {}", run.all_output());
    };
    let day = Day::new();

    // Before midnight: a partial version of the day before was loaded.
    deliver(
        &workspace,
        &format!("toss_AUTH_{DAY_BEFORE}.dat"),
        &day_before_auth(false),
    );
    run("the day before, partial");
    // 00:05: the day before in full.
    deliver(
        &workspace,
        &format!("toss_AUTH_{DAY_BEFORE}.dat"),
        &day_before_auth(true),
    );
    run("the day before, final");

    let mut random = Lcg(7);
    let mut kill_at = BTreeSet::new();
    while kill_at.len() < 3 {
        kill_at.insert(2 + random.next(VERSIONS as u64 - 4) as usize);
    }
    let mut kills = 0;
    for v in 0..VERSIONS {
        deliver(&workspace, &format!("toss_AUTH_{DAY}.dat"), &day.auth(v));
        deliver(&workspace, &format!("toss_REV_{DAY}.dat"), &day.rev(v));
        if kill_at.contains(&v) {
            let mut command = Command::new(&*ENGINE);
            command
                .args(["run", pipeline.to_str().unwrap()])
                .current_dir(workspace.dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            for (key, value) in env {
                command.env(key, value);
            }
            let mut engine = command.spawn().unwrap();
            std::thread::sleep(Duration::from_millis(10 + random.next(250)));
            if engine.try_wait().unwrap().is_none() {
                kills += 1;
            }
            let _ = engine.kill(); // SIGKILL
            let _ = engine.wait();
        } else {
            run(&format!("version {v}"));
        }
    }
    assert!(kills >= 1, "no run was killed while it ran");
    // The last version was loaded whole; one more run finds nothing to do.
    run("after the day");

    let expected = day.final_records(&day_before_auth(true));
    assert_eq!(expected.len(), 200 + APPROVALS + CANCELS);
    assert!(expected.values().any(|(_, status)| status == "20"));
    assert!(expected.values().any(|(_, status)| status == "21"));

    // The lake: every record once, in its final version, nothing else.
    assert_eq!(lake_records(&workspace), expected);

    // Postgres: the same.
    let table: BTreeMap<(String, String, String), (i64, String)> = server
        .query(
            "merchant",
            "SELECT record_kind, trxdate, transaction, amount, status FROM toss_transactions",
        )
        .into_iter()
        .map(|row| {
            let value = |index: usize| row[index].clone().unwrap();
            (
                (value(0), value(1), value(2)),
                (value(3).parse().unwrap(), value(4)),
            )
        })
        .collect();
    assert_eq!(
        table.len(),
        expected.len(),
        "a record missing or doubled in Postgres"
    );
    assert_eq!(table, expected);

    // The webhook: after dropping repeated idempotency keys, the last delivery of each record
    // is its final version, and every record was delivered.
    receiver.assert_every_request_signed();
    let mut delivered = BTreeMap::new();
    for record in receiver.deduplicated_records() {
        let text = |name: &str| record[name].as_str().unwrap().to_owned();
        delivered.insert(
            (text("record_kind"), text("trxdate"), text("transaction")),
            (record["amount"].as_i64().unwrap(), text("status")),
        );
    }
    assert_eq!(delivered, expected);

    // The malformed line is in the rejects once: the rejects file describes the latest version.
    let rejects = std::fs::read_to_string(
        workspace.path(&format!(".engine/rejects/day/toss_AUTH_{DAY}.jsonl")),
    )
    .unwrap();
    assert_eq!(rejects.lines().count(), 1, "{rejects}");
    assert!(rejects.contains("tossbad"), "{rejects}");

    // engine status agrees: each file's final version, in every sink.
    let status = workspace.engine_with_env(&["status", pipeline.to_str().unwrap(), "--json"], &env);
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let files = status["files"].as_array().unwrap();
    let rows_of = |name: &str| {
        files
            .iter()
            .find(|file| file["source_file"] == name)
            .unwrap_or_else(|| panic!("{name} not in status: {status:#}"))
    };
    for (name, rows, rejected) in [
        (format!("toss_AUTH_{DAY_BEFORE}.dat"), 200, 0),
        (format!("toss_AUTH_{DAY}.dat"), APPROVALS as u64, 1),
        (format!("toss_REV_{DAY}.dat"), CANCELS as u64, 0),
    ] {
        let file = rows_of(&name);
        assert_eq!(file["rows"], rows, "{name}: {file:#}");
        assert_eq!(file["rejected"], rejected, "{name}: {file:#}");
        for sink in ["parquet", "postgres", "webhook"] {
            assert_eq!(file["sinks"][sink], true, "{name} not in {sink}: {file:#}");
        }
    }
    assert_eq!(status["last_run"]["outcome"], "succeeded");
}
