//! The webhook sink against a local receiver that verifies every
//! signature, counts deliveries per Idempotency-Key and fails on request. Standard Webhooks
//! signatures are checked by the `standardwebhooks` Python library as well, as a receiver would.

use crate::support::http_server::{HttpServer, Reply, Response};
use crate::support::receiver::{Answer, Receiver, Seen, verify_with_library};
use crate::support::secrets::{base64, shown_form_of};
use crate::support::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `whsec_` + base64 of 32 bytes, as Standard Webhooks secrets are written.
const SECRET: &str = "whsec_dG9zcy1ldGwtZTJlLXdlYmhvb2stc2VjcmV0LTAwMDE=";
/// The secret a rotation moves to, and one the sink never signs with.
const NEW_SECRET: &str = "whsec_dG9zcy1ldGwtZTJlLXdlYmhvb2stc2VjcmV0LTAwMDI=";
const WRONG_SECRET: &str = "whsec_dG9zcy1ldGwtZTJlLXdlYmhvb2stc2VjcmV0LTk5OTk=";
const TOKEN: &str = "tok_Receiver-51e2d8";
const REV: &str = "toss_REV_20070706.dat";

/// inbox → parquet + webhook, with short timeouts and pauses; `extra` goes into the webhook's
/// table, `parser` into `[parser]`.
fn webhook_pipeline(
    workspace: &Workspace,
    receiver: &Receiver,
    extra: &str,
    parser: &str,
) -> PathBuf {
    workspace.inbox_pipeline(
        "pipeline.toml",
        "test",
        parser,
        "",
        &format!(
            r#"[[sinks]]
type = "parquet"
path = "lake"

[[sinks]]
type = "webhook"
url = "{}"
secret = "${{TEST_WEBHOOK_SECRET}}"
timeout_secs = 1
retries = 2
retry_base_ms = 50
{extra}

[sinks.headers]
Authorization = "Bearer ${{TEST_WEBHOOK_TOKEN}}"
"#,
            receiver.url()
        ),
    )
}

fn run(workspace: &Workspace, pipeline: &Path, args: &[&str]) -> Run {
    let mut all = vec!["run", pipeline.to_str().unwrap()];
    all.extend_from_slice(args);
    workspace.engine_with_env(
        &all,
        &[
            ("TEST_WEBHOOK_SECRET", SECRET),
            ("TEST_WEBHOOK_TOKEN", TOKEN),
        ],
    )
}

fn copy_samples(workspace: &Workspace) {
    for name in ["toss_AUTH_20070706.dat", "toss_REV_20070706.dat"] {
        std::fs::copy(sample(name), workspace.inbox(name)).unwrap();
    }
}

/// The rows written to `rows written` for `sink` in the summary.
fn sink_rows(run: &Run, sink: &str) -> u64 {
    run.stdout
        .lines()
        .find_map(|line| {
            let cells: Vec<&str> = line
                .split(['│', '┆'])
                .map(str::trim)
                .filter(|cell| !cell.is_empty())
                .collect();
            (cells.len() == 2 && cells[0] == sink).then(|| cells[1].parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no row for {sink} in\n{}", run.stdout))
}

/// (transaction, status) of each record, sorted, as the receiver holds them.
fn transactions(records: &[serde_json::Value]) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = records
        .iter()
        .map(|record| {
            (
                record["transaction"].as_str().unwrap().to_owned(),
                record["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    found.sort();
    found
}

/// (transaction, status) of each line of a Toss file of `toss_line`s.
fn file_transactions(text: &str) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = text
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(';').collect();
            (fields[2].to_owned(), fields[11].to_owned())
        })
        .collect();
    found.sort();
    found
}

fn lines(numbers: impl IntoIterator<Item = u64>, status: &str) -> String {
    numbers
        .into_iter()
        .map(|n| toss_line(n, 1000 + n, status) + "\n")
        .collect()
}

/// Every file the runs left behind, as bytes.
fn everything_written(workspace: &Workspace) -> Vec<u8> {
    fn walk(dir: &Path, into: &mut Vec<u8>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, into);
            } else {
                into.extend(std::fs::read(&path).unwrap_or_default());
            }
        }
    }
    let mut bytes = Vec::new();
    walk(workspace.dir.path(), &mut bytes);
    bytes
}

fn assert_no_secret(workspace: &Workspace, runs: &[&Run]) {
    let written = everything_written(workspace);
    for secret in [SECRET, TOKEN] {
        for run in runs {
            let output = run.all_output();
            assert!(!output.contains(secret), "{secret} leaked: {output}");
        }
        assert!(
            !written
                .windows(secret.len())
                .any(|window| window == secret.as_bytes()),
            "{secret} written to disk"
        );
    }
}

#[test]
fn first_load_sends_every_record_signed_and_an_unchanged_rerun_sends_nothing() {
    let receiver = Receiver::start(SECRET);
    let workspace = Workspace::new();
    copy_samples(&workspace);
    let pipeline = webhook_pipeline(&workspace, &receiver, "", "");
    let first = run(&workspace, &pipeline, &["-vv"]);
    assert_eq!(first.code, 0, "{}", first.all_output());
    receiver.assert_every_request_signed();

    // One batch per file, AUTH first (files load in name order).
    let seen = receiver.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen.iter()
            .all(|request| request.headers["authorization"] == format!("Bearer {TOKEN}"))
    );
    assert!(seen[0].headers["user-agent"].starts_with("toss-etl/"));
    let auth = seen[0].json();
    assert_eq!(auth.as_object().unwrap().len(), 4, "{auth}");
    assert_eq!(auth["pipeline"], "test");
    assert_eq!(auth["source_file"], "toss_AUTH_20070706.dat");
    let records = auth["records"].as_array().unwrap();
    assert_eq!(records.len(), 4);
    assert_eq!(
        records[0],
        serde_json::json!({
            "record_kind": "AUTH",
            "trxdate": "2007-07-06",
            "mid": "toss",
            "paytype": "SC0010",
            "transaction": "toss2007070623592792192",
            "oid": "Toss_20070706235709_uytr120",
            "financecode": "11100",
            "financename": "국민",
            "buyerid": "uytr120",
            "amount": 15000,
            "useescrow": false,
            "occurred_at": "2007-07-06T23:59:27+09:00",
            "authnumber": "30017594",
            "status": "10",
            "source_file": "toss_AUTH_20070706.dat",
            "source_line": 1
        })
    );
    // The body is sent as the engine wrote it: keys in the documented order.
    assert!(
        seen[0].body.starts_with(
            b"{\"pipeline\":\"test\",\"source_file\":\"toss_AUTH_20070706.dat\",\"batch_id\":\""
        ),
        "{}",
        String::from_utf8_lossy(&seen[0].body)
    );
    // The REV sample's rejected line is not sent.
    let rev = seen[1].json();
    assert_eq!(rev["source_file"], REV);
    let lines: Vec<i64> = rev["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|record| record["source_line"].as_i64().unwrap())
        .collect();
    assert_eq!(lines, [1, 2, 4]);
    assert_eq!(sink_rows(&first, "webhook"), 7);
    assert_eq!(sink_rows(&first, "parquet"), 7);

    let again = run(&workspace, &pipeline, &["-vv"]);
    assert_eq!(again.code, 0, "{}", again.all_output());
    assert!(
        again.stdout.contains("0 loaded, 2 skipped"),
        "{}",
        again.stdout
    );
    assert_eq!(receiver.seen().len(), 2, "an unchanged rerun sends nothing");
    assert_eq!(sink_rows(&again, "webhook"), 0);
    assert_no_secret(&workspace, &[&first, &again]);
}

#[test]
fn a_longer_version_sends_only_the_new_and_the_changed_records() {
    let receiver = Receiver::start(SECRET);
    let workspace = Workspace::new();
    let pipeline = webhook_pipeline(&workspace, &receiver, "batch_rows = 2", "");
    let file = workspace.inbox(REV);
    let first = format!(
        "{}{}{}",
        toss_line(1, 5000, "20") + "\n",
        toss_line(2, 7000, "21") + "\n",
        toss_line(3, 9000, "20") + "\n"
    );
    std::fs::write(&file, &first).unwrap();
    let loaded = run(&workspace, &pipeline, &[]);
    assert_eq!(loaded.code, 0, "{}", loaded.all_output());
    assert_eq!(receiver.seen().len(), 2, "3 records in batches of 2");
    assert_eq!(receiver.deduplicated_records().len(), 3);

    // 20 minutes later: cancel 2 succeeded, cancels 4 (no buyer id) and 5 came, and 4 sorts
    // first, so every old record moved down a line (which does not make it "changed").
    let second = format!(
        "{}{}{}{}{}",
        toss_line(4, 4000, "20").replace(";buyer4;", ";;") + "\n",
        toss_line(1, 5000, "20") + "\n",
        toss_line(2, 7000, "20") + "\n",
        toss_line(3, 9000, "20") + "\n",
        toss_line(5, 6000, "20") + "\n"
    );
    std::fs::write(&file, &second).unwrap();
    let reloaded = run(&workspace, &pipeline, &[]);
    assert_eq!(reloaded.code, 0, "{}", reloaded.all_output());
    receiver.assert_every_request_signed();
    let sent: Vec<serde_json::Value> = receiver.seen()[2..]
        .iter()
        .flat_map(|seen| seen.json()["records"].as_array().unwrap().clone())
        .collect();
    let sent_lines: Vec<(i64, &str)> = sent
        .iter()
        .map(|record| {
            (
                record["source_line"].as_i64().unwrap(),
                record["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(sent_lines, [(1, "20"), (3, "20"), (5, "20")], "{sent:?}");
    assert_eq!(sent[0]["buyerid"], serde_json::Value::Null);
    assert_eq!(sent[0]["financename"], "국민");
    assert_eq!(sink_rows(&reloaded, "webhook"), 3);
    assert_eq!(sink_rows(&reloaded, "parquet"), 5);

    // The receiver, upserting by transaction, now holds the final file.
    let mut latest = BTreeMap::new();
    for record in receiver.deduplicated_records() {
        latest.insert(
            record["transaction"].as_str().unwrap().to_owned(),
            record["status"].as_str().unwrap().to_owned(),
        );
    }
    assert_eq!(
        latest.into_iter().collect::<Vec<_>>(),
        file_transactions(&second)
    );
}

#[test]
fn server_errors_are_retried_with_the_same_idempotency_key() {
    let receiver = Receiver::start(SECRET);
    receiver.plan(vec![Answer::Status(500), Answer::Status(503)]);
    let workspace = Workspace::new();
    std::fs::copy(
        sample("toss_AUTH_20070706.dat"),
        workspace.inbox("toss_AUTH_20070706.dat"),
    )
    .unwrap();
    let pipeline = webhook_pipeline(&workspace, &receiver, "", "");
    let result = run(&workspace, &pipeline, &[]);
    assert_eq!(result.code, 0, "{}", result.all_output());
    receiver.assert_every_request_signed();
    let seen = receiver.seen();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|request| request.key() == seen[0].key()));
    assert!(
        seen.iter()
            .all(|request| request.headers["webhook-id"] == seen[0].key()),
        "a retry carries the same webhook-id"
    );
    assert!(seen.iter().all(|request| request.body == seen[0].body));
    assert_eq!(receiver.kept().len(), 1);
    assert_eq!(receiver.deduplicated_records().len(), 4);
    assert!(result.stderr.contains("HTTP 500"), "{}", result.stderr);
}

/// The AUTH sample through the webhook sink, with `secret` replaced by `secret_line` and the
/// environment `env` added; returns the run.
fn run_auth_with(
    workspace: &Workspace,
    receiver: &Receiver,
    secret_line: &str,
    extra: &str,
    env: &[(&str, &str)],
) -> Run {
    std::fs::copy(
        sample("toss_AUTH_20070706.dat"),
        workspace.inbox("toss_AUTH_20070706.dat"),
    )
    .unwrap();
    let pipeline = webhook_pipeline(workspace, receiver, extra, "");
    let text = std::fs::read_to_string(&pipeline).unwrap().replacen(
        "secret = \"${TEST_WEBHOOK_SECRET}\"",
        secret_line,
        1,
    );
    std::fs::write(&pipeline, text).unwrap();
    let mut all_env = vec![("TEST_WEBHOOK_TOKEN", TOKEN)];
    all_env.extend_from_slice(env);
    workspace.engine_with_env(&["run", pipeline.to_str().unwrap()], &all_env)
}

/// The AUTH sample through the webhook sink signing with `secret` (`secret = "${…}"`).
fn run_auth(workspace: &Workspace, receiver: &Receiver, secret: &str, extra: &str) -> Run {
    let line = "secret = \"${TEST_WEBHOOK_SECRET}\"";
    run_auth_with(
        workspace,
        receiver,
        line,
        extra,
        &[("TEST_WEBHOOK_SECRET", secret)],
    )
}

/// `secrets = [new, old]` signs every request with both, so a receiver that knows either one
/// accepts it while it moves over; a third secret verifies nothing.
#[test]
fn a_rotation_signs_with_every_secret_so_either_one_verifies() {
    let receiver = Receiver::start(SECRET);
    let workspace = Workspace::new();
    let result = run_auth_with(
        &workspace,
        &receiver,
        "secrets = [\"${TEST_WEBHOOK_SECRET_NEW}\", \"${TEST_WEBHOOK_SECRET}\"]",
        "",
        &[
            ("TEST_WEBHOOK_SECRET", SECRET),
            ("TEST_WEBHOOK_SECRET_NEW", NEW_SECRET),
        ],
    );
    assert_eq!(result.code, 0, "{}", result.all_output());
    receiver.assert_every_request_signed();
    let seen = receiver.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].headers["webhook-signature"].split(' ').count(),
        2,
        "{:?}",
        seen[0].headers
    );
    assert_eq!(verify_with_library(NEW_SECRET, &seen), ["ok"]);
    assert_eq!(verify_with_library(SECRET, &seen), ["ok"]);
    let wrong = verify_with_library(WRONG_SECRET, &seen);
    assert!(
        wrong[0].starts_with("WebhookVerificationError"),
        "{wrong:?}"
    );
    for secret in [SECRET, NEW_SECRET] {
        assert!(!result.all_output().contains(secret), "{secret} shown");
    }
}

/// The library refuses what it should: the sink's signature is what it checks, not a lookalike
/// that any request would pass.
#[test]
fn the_library_refuses_a_tampered_body_an_old_timestamp_and_a_wrong_secret() {
    let receiver = Receiver::start(SECRET);
    let workspace = Workspace::new();
    let result = run_auth(&workspace, &receiver, SECRET, "");
    assert_eq!(result.code, 0, "{}", result.all_output());
    let delivered: Seen = receiver.seen().remove(0);

    let mut tampered = delivered.clone();
    tampered.body = String::from_utf8(tampered.body)
        .unwrap()
        .replacen("\"amount\":15000", "\"amount\":15001", 1)
        .into_bytes();
    assert_ne!(tampered.body, delivered.body);
    let mut old = delivered.clone();
    let signed_at: u64 = old.headers["webhook-timestamp"].parse().unwrap();
    old.headers
        .insert("webhook-timestamp".into(), (signed_at - 3600).to_string());

    let verdicts = verify_with_library(SECRET, &[delivered.clone(), tampered, old]);
    assert_eq!(verdicts[0], "ok", "{verdicts:?}");
    assert!(
        verdicts[1].contains("No matching signature"),
        "{verdicts:?}"
    );
    assert!(verdicts[2].contains("too old"), "{verdicts:?}");
    let wrong = verify_with_library(WRONG_SECRET, &[delivered]);
    assert!(wrong[0].contains("No matching signature"), "{wrong:?}");
}

/// `signature = "toss-etl"` keeps the first format for receivers that check it; without it an
/// old-style secret is refused at its line, with both ways forward.
#[test]
fn the_first_format_stays_available_and_an_old_secret_alone_is_refused_at_its_line() {
    const PLAIN: &str = "plain-old-secret-7f3a9c";
    let receiver = Receiver::start(PLAIN);
    let workspace = Workspace::new();
    let result = run_auth(&workspace, &receiver, PLAIN, "signature = \"toss-etl\"");
    assert_eq!(result.code, 0, "{}", result.all_output());
    receiver.assert_every_request_signed();
    let seen = receiver.seen();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].headers.contains_key("x-toss-etl-signature"));
    assert!(!seen[0].headers.contains_key("webhook-signature"));

    let workspace = Workspace::new();
    let refused = run_auth(&workspace, &receiver, PLAIN, "");
    assert_eq!(refused.code, 2, "{}", refused.all_output());
    let said = refused.all_output();
    assert!(said.contains("pipeline.toml:"), "{said}");
    assert!(
        said.contains("`secret`") || said.contains("webhook secret"),
        "{said}"
    );
    assert!(said.contains("whsec_"), "{said}");
    assert!(said.contains("signature = \"toss-etl\""), "{said}");
    assert!(!said.contains(PLAIN), "{said}");
    assert_eq!(receiver.seen().len(), 1, "nothing more was sent");
}

#[test]
fn too_many_requests_waits_as_long_as_retry_after_says() {
    let receiver = Receiver::start(SECRET);
    receiver.plan(vec![Answer::TooManyRequests {
        retry_after_secs: 1,
    }]);
    let workspace = Workspace::new();
    std::fs::write(workspace.inbox(REV), lines(1..=3, "20")).unwrap();
    let pipeline = webhook_pipeline(&workspace, &receiver, "", "");
    let result = run(&workspace, &pipeline, &[]);
    assert_eq!(result.code, 0, "{}", result.all_output());
    receiver.assert_every_request_signed();
    let seen = receiver.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].key(), seen[1].key());
    // retry_base_ms is 50: only Retry-After explains a pause of a second.
    let pause = seen[1].at - seen[0].at;
    assert!(pause >= Duration::from_millis(950), "{pause:?}");
    assert_eq!(receiver.deduplicated_records().len(), 3);
}

#[test]
fn a_lost_answer_times_out_and_the_retry_is_deduplicated_by_its_key() {
    let receiver = Receiver::start(SECRET);
    // The receiver keeps the batch but its answer never comes (timeout_secs = 1).
    receiver.plan(vec![Answer::AcceptThenHang(Duration::from_secs(3))]);
    let workspace = Workspace::new();
    std::fs::write(workspace.inbox(REV), lines(1..=3, "20")).unwrap();
    let pipeline = webhook_pipeline(&workspace, &receiver, "", "");
    let result = run(&workspace, &pipeline, &[]);
    assert_eq!(result.code, 0, "{}", result.all_output());
    receiver.assert_every_request_signed();
    assert!(result.stderr.contains("timed out"), "{}", result.stderr);
    let kept = receiver.kept();
    assert_eq!(kept.len(), 2, "delivered twice");
    assert_eq!(kept[0].key(), kept[1].key());
    assert_eq!(
        transactions(&receiver.deduplicated_records()),
        file_transactions(&lines(1..=3, "20")),
        "once after deduplication"
    );
}

#[test]
fn hangs_and_resets_are_retried() {
    let receiver = Receiver::start(SECRET);
    receiver.plan(vec![Answer::Reset, Answer::Hang(Duration::from_secs(3))]);
    let workspace = Workspace::new();
    std::fs::write(workspace.inbox(REV), lines(1..=3, "20")).unwrap();
    let pipeline = webhook_pipeline(&workspace, &receiver, "", "");
    let result = run(&workspace, &pipeline, &[]);
    assert_eq!(result.code, 0, "{}", result.all_output());
    receiver.assert_every_request_signed();
    let seen = receiver.seen();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|request| request.key() == seen[0].key()));
    assert_eq!(receiver.kept().len(), 1);
    assert_eq!(receiver.deduplicated_records().len(), 3);
}

#[test]
fn when_retries_run_out_the_run_fails_and_the_rerun_sends_only_the_rest() {
    let receiver = Receiver::start(SECRET);
    let workspace = Workspace::new();
    let pipeline = webhook_pipeline(&workspace, &receiver, "batch_rows = 10", "");
    let file = workspace.inbox(REV);
    std::fs::write(&file, lines(1..=25, "20")).unwrap();
    // Batch 1 is accepted; batch 2 reaches the receiver but its answer is lost, then 500s
    // until the engine's 3 attempts are spent.
    receiver.plan(vec![
        Answer::Accept,
        Answer::AcceptThenHang(Duration::from_secs(3)),
        Answer::Status(500),
        Answer::Status(500),
    ]);
    let failed = run(&workspace, &pipeline, &[]);
    assert_eq!(failed.code, 1, "{}", failed.all_output());
    let message = failed.all_output();
    for part in [
        "sink `webhook`",
        "batch 2 of 3 (10 records",
        "HTTP 500",
        "gave up after 3 attempts",
        "the 10 records accepted before it are remembered, the next run sends the other 15",
    ] {
        assert!(message.contains(part), "{part:?} missing from {message}");
    }
    let first_run = receiver.seen();
    assert_eq!(first_run.len(), 4);
    let batch_two = first_run[1].key().to_owned();
    assert!(first_run[1..].iter().all(|seen| seen.key() == batch_two));

    // Toss re-sent the day with five more cancels before the rerun.
    std::fs::write(&file, lines(1..=30, "20")).unwrap();
    let rerun = run(&workspace, &pipeline, &[]);
    assert_eq!(rerun.code, 0, "{}", rerun.all_output());
    receiver.assert_every_request_signed();
    let second_run = &receiver.seen()[4..];
    assert_eq!(second_run.len(), 2, "batch 1 is not sent again");
    assert_eq!(
        second_run[0].key(),
        batch_two,
        "the unacknowledged batch comes again with the same key"
    );
    assert_eq!(sink_rows(&rerun, "webhook"), 20);
    assert_eq!(receiver.kept().len(), 4, "batch 2 arrived twice");
    assert_eq!(
        transactions(&receiver.deduplicated_records()),
        file_transactions(&lines(1..=30, "20")),
        "every record of the final file exactly once after deduplication"
    );

    let unchanged = run(&workspace, &pipeline, &[]);
    assert_eq!(unchanged.code, 0, "{}", unchanged.all_output());
    assert_eq!(receiver.seen().len(), 6, "an unchanged rerun sends nothing");
}

#[test]
fn a_refused_batch_fails_at_once_and_no_secret_shows() {
    let receiver = Receiver::start(SECRET);
    let workspace = Workspace::new();
    std::fs::write(workspace.inbox(REV), lines(1..=3, "20")).unwrap();
    let pipeline = webhook_pipeline(&workspace, &receiver, "", "");
    let mut runs = Vec::new();
    for (status, meaning) in [(400, "retrying would not help"), (401, "check `secret`")] {
        let before = receiver.seen().len();
        receiver.plan(vec![Answer::Status(status)]);
        let refused = run(&workspace, &pipeline, &["-vv"]);
        assert_eq!(refused.code, 1, "{}", refused.all_output());
        assert_eq!(receiver.seen().len(), before + 1, "{status} is not retried");
        let output = refused.all_output();
        assert!(output.contains(&format!("HTTP {status}")), "{output}");
        assert!(output.contains(meaning), "{output}");
        assert!(output.contains("not retried"), "{output}");
        assert!(output.contains("refused by the test receiver"), "{output}");
        runs.push(refused);
    }
    let healed = run(&workspace, &pipeline, &["-vv"]);
    assert_eq!(healed.code, 0, "{}", healed.all_output());
    receiver.assert_every_request_signed();
    assert_eq!(receiver.deduplicated_records().len(), 3);
    runs.push(healed);
    assert_no_secret(&workspace, &runs.iter().collect::<Vec<_>>());
}

#[test]
fn a_file_that_fails_after_streaming_sends_nothing() {
    let receiver = Receiver::start(SECRET);
    let workspace = Workspace::new();
    copy_samples(&workspace);
    // The REV sample has one rejected line, more than max_rejects = 0 allows.
    let pipeline = webhook_pipeline(&workspace, &receiver, "", "max_rejects = 0");
    let result = run(&workspace, &pipeline, &[]);
    assert_eq!(result.code, 1, "{}", result.all_output());
    let seen = receiver.seen();
    receiver.assert_every_request_signed();
    assert_eq!(seen.len(), 1, "only the AUTH file is sent");
    assert_eq!(seen[0].json()["source_file"], "toss_AUTH_20070706.dat");
}

#[test]
fn bad_webhook_settings_fail_validation_with_the_key_named() {
    let receiver = Receiver::start(SECRET);
    let workspace = Workspace::new();
    let env = [
        ("TEST_WEBHOOK_SECRET", SECRET),
        ("TEST_WEBHOOK_TOKEN", TOKEN),
    ];
    for (extra, named) in [
        ("batch_rows = 0", "batch_rows"),
        ("batch_rowz = 10", "unknown field `batch_rowz`"),
        ("url = \"ftp://127.0.0.1/x\"", "url"),
    ] {
        let text = std::fs::read_to_string(webhook_pipeline(&workspace, &receiver, "", ""))
            .unwrap()
            .replacen("timeout_secs = 1", &format!("timeout_secs = 1\n{extra}"), 1);
        let text = if extra.starts_with("url") {
            text.replacen(&format!("url = \"{}\"", receiver.url()), "", 1)
        } else {
            text
        };
        let pipeline = workspace.pipeline("bad.toml", &text);
        let result = workspace.engine_with_env(&["validate", pipeline.to_str().unwrap()], &env);
        assert_eq!(result.code, 2, "{extra}: {}", result.all_output());
        assert!(
            result.all_output().contains(named),
            "{extra}: {}",
            result.all_output()
        );
    }
    let missing = workspace.engine_with_env(
        &[
            "validate",
            webhook_pipeline(&workspace, &receiver, "", "")
                .to_str()
                .unwrap(),
        ],
        &[("TEST_WEBHOOK_TOKEN", TOKEN)],
    );
    assert_eq!(missing.code, 2);
    assert!(
        missing
            .all_output()
            .contains("`TEST_WEBHOOK_SECRET` is not set"),
        "{}",
        missing.all_output()
    );
    assert!(receiver.seen().is_empty(), "validate moves no data");
}

/// Sinks are named by their type, numbered from the second of a type on: two Parquet lakes and
/// a webhook are `parquet`, `parquet#2` and `webhook`, in the run's summary and in
/// `engine status --json` alike.
#[test]
fn sinks_are_named_by_type_and_numbered_when_a_type_repeats() {
    let receiver = Receiver::start(SECRET);
    let workspace = Workspace::new();
    copy_samples(&workspace);
    let pipeline = workspace.inbox_pipeline(
        "pipeline.toml",
        "test",
        "",
        "",
        &format!(
            r#"[[sinks]]
type = "parquet"
path = "lake"

[[sinks]]
type = "parquet"
path = "lake2"

[[sinks]]
type = "webhook"
url = "{}"
secret = "${{TEST_WEBHOOK_SECRET}}"
timeout_secs = 5
"#,
            receiver.url()
        ),
    );
    let first = run(&workspace, &pipeline, &[]);
    assert_eq!(first.code, 0, "{}", first.all_output());
    assert_eq!(sink_rows(&first, "parquet"), 7);
    assert_eq!(sink_rows(&first, "parquet#2"), 7);
    assert_eq!(sink_rows(&first, "webhook"), 7);
    assert!(
        workspace.path("lake2").is_dir(),
        "parquet#2 writes its own lake"
    );

    let status = workspace.engine_with_env(
        &["status", pipeline.to_str().unwrap(), "--json"],
        &[("TEST_WEBHOOK_SECRET", SECRET)],
    );
    assert_eq!(status.code, 0, "{}", status.all_output());
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(
        status["sinks"],
        serde_json::json!(["parquet", "parquet#2", "webhook"])
    );
    let files = status["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{status:#}");
    for file in files {
        assert_eq!(
            file["sinks"],
            serde_json::json!({"parquet": true, "parquet#2": true, "webhook": true}),
            "{file:#}"
        );
    }
}

/// A receiver behind a proxy that echoes the request in its error page: the token in the URL's
/// query, the `Authorization` header, and both again upper-cased and base64-encoded.
#[test]
fn a_receiver_echoing_the_request_never_gets_a_token_shown_or_stored() {
    const URL_TOKEN: &str = "qs-Token-93kd71";
    let echoing = HttpServer::start(|request| {
        let mut echo = format!("{} {} HTTP/1.1\n", request.method, request.target);
        for (name, value) in &request.headers {
            echo.push_str(&format!("{name}: {value}\n"));
        }
        echo.push_str(&format!(
            "token {} bearer {} ({}, {})",
            URL_TOKEN.to_uppercase(),
            TOKEN.to_uppercase(),
            base64(URL_TOKEN.as_bytes()),
            base64(TOKEN.as_bytes())
        ));
        Reply::Send(Response::new(400, "Bad Request", echo).header("Connection", "close"))
    });
    let workspace = Workspace::new();
    std::fs::write(workspace.inbox(REV), lines(1..=3, "20")).unwrap();
    let url = echoing.url(&format!("/hook?token={URL_TOKEN}"));
    let receiver = Receiver::start(SECRET);
    let text = std::fs::read_to_string(webhook_pipeline(&workspace, &receiver, "", ""))
        .unwrap()
        .replace(&receiver.url(), &url);
    let pipeline = workspace.pipeline("echo.toml", &text);
    let result = run(&workspace, &pipeline, &[]);
    assert_eq!(result.code, 1, "{}", result.all_output());
    assert_eq!(echoing.requests().len(), 1, "a 400 is not retried");
    let status = workspace.engine_with_env(
        &["status", pipeline.to_str().unwrap(), "--json"],
        &[
            ("TEST_WEBHOOK_SECRET", SECRET),
            ("TEST_WEBHOOK_TOKEN", TOKEN),
        ],
    );
    assert_eq!(status.code, 0, "{}", status.all_output());
    let stored = String::from_utf8_lossy(&everything_written(&workspace))
        .replace(&format!("?token={URL_TOKEN}"), "");
    for secret in [URL_TOKEN, TOKEN, SECRET] {
        for (place, text) in [
            ("the output", result.all_output()),
            ("status --json", status.all_output()),
            ("the files written (but the pipeline file)", stored.clone()),
        ] {
            if let Some(form) = shown_form_of(secret, &text) {
                panic!("{place} shows {form:?} of {secret:?}:\n{text}");
            }
        }
    }
    // What the receiver said is still shown, with the tokens blanked out.
    assert!(result.stderr.contains("token=***"), "{}", result.stderr);
}
