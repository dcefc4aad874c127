//! The `toss-api` source against a local server speaking Toss Payments' v1 REST API: what it
//! loads, how a day's pull replaces the day, and every way the API fails.

use crate::support::pg::{PASSWORD, PgServer};
use crate::support::secrets::shown_form_of;
use crate::support::toss_api::{
    Answer, SETTLEMENTS, Scope, TRANSACTIONS, TossApi, cancel_of, cancel_settlement, settlement,
    transaction,
};
use crate::support::*;
use chrono::{Duration as Days, NaiveDate};
use serde_json::json;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

const KEY: &str = "test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R";
const DB: &str = "merchant";

/// A day `back` days before today in Korea, so that a test's days are always recent enough to
/// be pulled again (they are within `refresh_days`).
fn day(back: i64) -> NaiveDate {
    let korea = chrono::FixedOffset::east_opt(9 * 3600).unwrap();
    chrono::Utc::now().with_timezone(&korea).date_naive() - Days::days(back)
}

fn ymd(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

/// A day's name for `Scope::Day`, which wants a `'static` path.
fn scope(path: &'static str, day: NaiveDate) -> Scope {
    Scope::Day(path, day)
}

/// A pipeline of `dataset` from `api` into the lake, with `source_keys` added to `[source]`
/// and `sinks` after the lake.
fn api_pipeline(
    workspace: &Workspace,
    api: &TossApi,
    dataset: &str,
    source_keys: &str,
    sinks: &str,
) -> PathBuf {
    workspace.pipeline(
        "pipeline.toml",
        &format!(
            r#"[pipeline]
name = "api"

[source]
type = "toss-api"
dataset = "{dataset}"
secret_key = "${{TOSS_SECRET_KEY}}"
endpoint = "{endpoint}"
retry_base_ms = 10
{source_keys}

[[sinks]]
type = "parquet"
path = "lake"
{sinks}
"#,
            endpoint = api.base_url()
        ),
    )
}

fn run(
    workspace: &Workspace,
    pipeline: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Run {
    let mut all = vec!["run", pipeline.to_str().unwrap()];
    all.extend_from_slice(args);
    let mut env = env.to_vec();
    if !env.iter().any(|(name, _)| *name == "TOSS_SECRET_KEY") {
        env.push(("TOSS_SECRET_KEY", KEY));
    }
    let run = workspace.engine_with_env(&all, &env);
    assert_eq!(
        shown_form_of(KEY, &run.all_output()),
        None,
        "{}",
        run.all_output()
    );
    run
}

fn range(from: NaiveDate, to: NaiveDate) -> [String; 4] {
    ["--from".into(), ymd(from), "--to".into(), ymd(to)]
}

fn lake_rows(
    workspace: &Workspace,
    partition: &str,
    unit: &str,
) -> Vec<arrow::record_batch::RecordBatch> {
    workspace.read_lake(&format!("{partition}/{unit}.parquet"))
}

#[test]
fn the_shipped_transactions_pipeline_loads_the_servers_records_and_a_rerun_is_a_no_op() {
    let api = TossApi::start(KEY);
    let (first, empty, last) = (day(3), day(2), day(1));
    for n in 1..=6 {
        api.put_transaction(transaction(first, n, "DONE", 1000 * i64::from(n)));
    }
    for n in 1..=7 {
        api.put_transaction(transaction(last, n, "DONE", 500 * i64::from(n)));
    }
    let server = PgServer::start();
    let url = server.create_database(DB);
    let workspace = Workspace::new();
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../pipelines/toss-api-transactions.toml"),
    )
    .unwrap();
    let pipeline = workspace.pipeline("toss-api-transactions.toml", &text);
    let env = [
        ("TOSS_API_ENDPOINT", api.base_url()),
        ("DATABASE_URL", url.clone()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let dates = range(first, last);
    let args: Vec<&str> = dates.iter().map(String::as_str).collect();

    let loaded = run(&workspace, &pipeline, &args, &env);
    assert_eq!(loaded.code, 0, "{}", loaded.all_output());
    assert!(loaded.stdout.contains("3 loaded"), "{}", loaded.stdout);
    let lake = |day: NaiveDate| {
        let unit = format!("transactions_{}", ymd(day));
        workspace.read_lake(&format!(
            "toss-api/transactions/transaction_date={}/{unit}.parquet",
            ymd(day)
        ))
    };
    assert_eq!(total_rows(&lake(first)), 6);
    assert_eq!(total_rows(&lake(last)), 7);
    assert!(
        !workspace
            .path(&format!(
                "lake/toss-api/transactions/transaction_date={}",
                ymd(empty)
            ))
            .join(format!("transactions_{}.parquet", ymd(empty)))
            .exists()
            || total_rows(&lake(empty)) == 0
    );
    let count = "SELECT count(*) FROM toss_api_transactions";
    assert_eq!(server.value(DB, count), Some("13".into()));
    let versions = "SELECT transaction_key, xmin::text FROM toss_api_transactions ORDER BY 1";
    let before = server.query(DB, versions);

    // Again: every day is pulled (all are recent), none changed, nothing is written.
    let again = run(&workspace, &pipeline, &args, &env);
    assert_eq!(again.code, 0, "{}", again.all_output());
    assert!(
        again.stdout.contains("0 loaded, 3 skipped"),
        "{}",
        again.stdout
    );
    assert_eq!(server.query(DB, versions), before);

    // A late cancel shows up in a later pull of the first day, and one record is gone: the day
    // is replaced in both sinks.
    let original = transaction(first, 2, "DONE", 2000);
    api.put_transaction(cancel_of(&original, first, 7, 2000));
    let gone = crate::support::toss_api::transaction_key(first, 5);
    api.remove_transaction(&gone);
    let changed = run(&workspace, &pipeline, &args, &env);
    assert_eq!(changed.code, 0, "{}", changed.all_output());
    assert!(
        changed.stdout.contains("1 loaded, 2 skipped"),
        "{}",
        changed.stdout
    );
    assert_eq!(total_rows(&lake(first)), 6);
    assert_eq!(server.value(DB, count), Some("13".into()));
    assert_eq!(
        server.value(
            DB,
            &format!("SELECT count(*) FROM toss_api_transactions WHERE transaction_key = '{gone}'")
        ),
        Some("0".into())
    );
    assert!(!changed.all_output().contains(PASSWORD));
}

#[test]
fn paging_crosses_exact_multiples_of_the_page_size_and_an_empty_day_loads_nothing() {
    let api = TossApi::start(KEY);
    let (full, empty) = (day(2), day(1));
    for n in 1..=6 {
        api.put_transaction(transaction(full, n, "DONE", 100));
    }
    let workspace = Workspace::new();
    let pipeline = api_pipeline(&workspace, &api, "transactions", "page_size = 3", "");
    let dates = range(full, empty);
    let args: Vec<&str> = dates.iter().map(String::as_str).collect();
    let loaded = run(&workspace, &pipeline, &args, &[]);
    assert_eq!(loaded.code, 0, "{}", loaded.all_output());
    let unit = format!("transactions_{}", ymd(full));
    let rows = lake_rows(
        &workspace,
        &format!("transaction_date={}", ymd(full)),
        &unit,
    );
    assert_eq!(total_rows(&rows), 6);
    let keys: Vec<String> = strings(&rows, "transaction_key")
        .into_iter()
        .flatten()
        .collect();
    let mut unique = keys.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 6, "{keys:?}");

    // Pages of 3, 3 and 0 for the full day, each after the last key of the one before.
    let requests: Vec<_> = api
        .seen_at(TRANSACTIONS)
        .into_iter()
        .filter(|seen| {
            seen.param("startDate")
                .is_some_and(|start| start.starts_with(&ymd(full)))
        })
        .collect();
    assert_eq!(requests.len(), 3, "{requests:?}");
    assert_eq!(requests[0].param("startingAfter"), None);
    assert_eq!(requests[1].param("startingAfter"), Some(keys[2].as_str()));
    assert_eq!(requests[2].param("startingAfter"), Some(keys[5].as_str()));
    for request in &requests {
        assert_eq!(request.param("limit"), Some("3"));
        assert_eq!(
            request.param("endDate"),
            Some(format!("{}T23:59:59.999", ymd(full)).as_str())
        );
    }
}

#[test]
fn settlements_in_every_known_shape_load_signed_and_late_rows_replace_the_day() {
    let api = TossApi::start(KEY);
    let sold = day(4);
    let paid = transaction(sold, 1, "DONE", 99_800);
    let cancel = cancel_of(&paid, sold, 2, 99_800);
    api.put_settlement(settlement(&paid, sold));
    api.put_settlement(cancel_settlement(&paid, &cancel, sold));
    // Drift: `suppliedAmount`, `fee` as a string with no `fees[]`, a virtual account's 0 row,
    // fields nobody documented.
    let mut drifted = settlement(&transaction(sold, 3, "DONE", 64_601), sold);
    let object = drifted.as_object_mut().unwrap();
    let supply = object.remove("supplyAmount").unwrap();
    object.insert("suppliedAmount".into(), supply);
    object.remove("fees");
    object.insert("fee".into(), json!("1492"));
    object.insert("somethingNew".into(), json!({"nested": true}));
    api.put_settlement(drifted);
    api.put_settlement(settlement(
        &transaction(sold, 4, "WAITING_FOR_DEPOSIT", 0),
        sold,
    ));

    let workspace = Workspace::new();
    let pipeline = api_pipeline(&workspace, &api, "settlements", "page_size = 2", "");
    let args = ["--date", &ymd(sold)];
    let loaded = run(&workspace, &pipeline, &args, &[]);
    assert_eq!(loaded.code, 0, "{}", loaded.all_output());
    let unit = format!("settlements_{}", ymd(sold));
    let partition = format!("sold_date={}", ymd(sold));
    let rows = lake_rows(&workspace, &partition, &unit);
    assert_eq!(total_rows(&rows), 4);
    let decimal = |column: &str| -> Vec<String> {
        use arrow::array::{Array, AsArray};
        rows.iter()
            .flat_map(|batch| {
                let array = batch
                    .column_by_name(column)
                    .unwrap()
                    .as_primitive::<arrow::datatypes::Decimal128Type>()
                    .clone();
                (0..array.len())
                    .map(|i| {
                        if array.is_null(i) {
                            "null".to_owned()
                        } else {
                            array.value_as_string(i)
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let amounts = decimal("amount");
    assert!(amounts.contains(&"99800.0000".to_owned()), "{amounts:?}");
    assert!(amounts.contains(&"-99800.0000".to_owned()), "{amounts:?}");
    assert!(amounts.contains(&"0.0000".to_owned()), "{amounts:?}");
    assert!(decimal("fee").contains(&"1492.0000".to_owned()));
    assert!(!decimal("supply_amount").contains(&"null".to_owned()));

    // A settlement row for the day arrives days later: the next pull replaces the day.
    api.put_settlement(settlement(&transaction(sold, 5, "DONE", 10_000), sold));
    let later = run(&workspace, &pipeline, &args, &[]);
    assert_eq!(later.code, 0, "{}", later.all_output());
    assert!(later.stdout.contains("1 loaded"), "{}", later.stdout);
    assert_eq!(total_rows(&lake_rows(&workspace, &partition, &unit)), 5);
    // Pages of 2: the settlements were asked for by page number and size.
    let pages: Vec<Option<String>> = api
        .seen_at(SETTLEMENTS)
        .iter()
        .map(|seen| seen.param("page").map(str::to_owned))
        .collect();
    assert_eq!(
        pages[..3],
        [Some("1".into()), Some("2".into()), Some("3".into())]
    );
}

#[test]
fn a_refused_key_fails_at_once_says_which_mode_and_asks_nothing_more() {
    let api = TossApi::start(KEY);
    let workspace = Workspace::new();
    let pipeline = api_pipeline(&workspace, &api, "transactions", "", "");
    let wrong = "test_sk_wrongWrongWrong12345";
    let dates = range(day(3), day(1));
    let args: Vec<&str> = dates.iter().map(String::as_str).collect();
    let refused = run(&workspace, &pipeline, &args, &[("TOSS_SECRET_KEY", wrong)]);
    assert_eq!(refused.code, 1, "{}", refused.all_output());
    assert!(
        refused.stderr.contains("refused the secret key"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("a test key"), "{}", refused.stderr);
    assert_eq!(
        shown_form_of(wrong, &refused.all_output()),
        None,
        "{}",
        refused.all_output()
    );
    assert_eq!(
        api.seen().len(),
        1,
        "one refusal is enough: {:?}",
        api.seen()
    );
    assert!(workspace.lake_files().is_empty());
}

#[test]
fn throttling_server_errors_slow_and_broken_answers_are_retried_until_the_day_loads() {
    let api = TossApi::start(KEY);
    let target = day(2);
    for n in 1..=4 {
        api.put_transaction(transaction(target, n, "DONE", 100));
    }
    api.plan(
        scope(TRANSACTIONS, target),
        vec![
            Answer::TooManyRequests {
                retry_after_secs: Some(1),
            },
            Answer::TooManyRequests {
                retry_after_secs: None,
            },
            Answer::Status(500),
            Answer::Slow(Duration::from_millis(2500)),
            Answer::ResetMidBody,
        ],
    );
    let workspace = Workspace::new();
    let pipeline = api_pipeline(&workspace, &api, "transactions", "timeout_secs = 1", "");
    let started = std::time::Instant::now();
    let loaded = run(&workspace, &pipeline, &["--date", &ymd(target)], &[]);
    assert_eq!(loaded.code, 0, "{}", loaded.all_output());
    // Retry-After: 1 was waited.
    assert!(started.elapsed() >= Duration::from_secs(1));
    for said in ["429", "500", "timed out", "broke off"] {
        assert!(loaded.stderr.contains(said), "{said}: {}", loaded.stderr);
    }
    let unit = format!("transactions_{}", ymd(target));
    let rows = lake_rows(
        &workspace,
        &format!("transaction_date={}", ymd(target)),
        &unit,
    );
    assert_eq!(total_rows(&rows), 4);
    assert_eq!(api.seen_at(TRANSACTIONS).len(), 6);
}

#[test]
fn a_refused_paging_key_pages_the_day_again_once_then_fails_naming_the_code() {
    let api = TossApi::start(KEY);
    let (once, twice, fine) = (day(3), day(2), day(1));
    for day in [once, twice, fine] {
        for n in 1..=5 {
            api.put_transaction(transaction(day, n, "DONE", 100));
        }
    }
    api.plan(
        scope(TRANSACTIONS, once),
        vec![Answer::InvalidTransactionKey],
    );
    api.plan(
        scope(TRANSACTIONS, twice),
        vec![Answer::InvalidTransactionKey, Answer::InvalidTransactionKey],
    );
    let workspace = Workspace::new();
    let pipeline = api_pipeline(&workspace, &api, "transactions", "page_size = 2", "");
    let dates = range(once, fine);
    let args: Vec<&str> = dates.iter().map(String::as_str).collect();
    let result = run(&workspace, &pipeline, &args, &[]);
    assert_eq!(result.code, 1, "{}", result.all_output());
    assert!(
        result.stderr.contains("INVALID_TRANSACTION_KEY"),
        "{}",
        result.stderr
    );
    assert!(
        result
            .stderr
            .contains(&format!("transactions_{}", ymd(twice))),
        "{}",
        result.stderr
    );
    assert!(result.stdout.contains("2 loaded"), "{}", result.stdout);
    for day in [once, fine] {
        let unit = format!("transactions_{}", ymd(day));
        let rows = lake_rows(&workspace, &format!("transaction_date={}", ymd(day)), &unit);
        assert_eq!(total_rows(&rows), 5, "{unit}");
    }
    assert!(
        !workspace
            .path(&format!("lake/transaction_date={}", ymd(twice)))
            .exists()
    );
}

#[test]
fn an_html_page_with_status_200_fails_the_day_and_leaves_every_sink_as_it_was() {
    let api = TossApi::start(KEY);
    let (broken, fine) = (day(2), day(1));
    for day in [broken, fine] {
        for n in 1..=3 {
            api.put_transaction(transaction(day, n, "DONE", 100));
        }
    }
    let workspace = Workspace::new();
    let pipeline = api_pipeline(&workspace, &api, "transactions", "", "");
    let dates = range(broken, fine);
    let args: Vec<&str> = dates.iter().map(String::as_str).collect();
    assert_eq!(run(&workspace, &pipeline, &args, &[]).code, 0);
    let unit = format!("transactions_{}", ymd(broken));
    let partition = format!("transaction_date={}", ymd(broken));
    let before =
        std::fs::read(workspace.path(&format!("lake/{partition}/{unit}.parquet"))).unwrap();

    api.put_transaction(transaction(broken, 4, "DONE", 100));
    api.put_transaction(transaction(fine, 4, "DONE", 100));
    api.always(scope(TRANSACTIONS, broken), Answer::HtmlMaintenance);
    let result = run(&workspace, &pipeline, &args, &[]);
    assert_eq!(result.code, 1, "{}", result.all_output());
    assert!(result.stderr.contains("an HTML page"), "{}", result.stderr);
    assert!(result.stderr.contains("점검 중"), "{}", result.stderr);
    assert_eq!(
        std::fs::read(workspace.path(&format!("lake/{partition}/{unit}.parquet"))).unwrap(),
        before
    );
    let fine_unit = format!("transactions_{}", ymd(fine));
    let rows = lake_rows(
        &workspace,
        &format!("transaction_date={}", ymd(fine)),
        &fine_unit,
    );
    assert_eq!(total_rows(&rows), 4);
}

#[test]
fn the_secret_key_is_in_no_output_log_state_or_lake_file_even_when_echoed() {
    let api = TossApi::start(KEY);
    let target = day(1);
    api.put_transaction(transaction(target, 1, "DONE", 100));
    api.plan(scope(TRANSACTIONS, target), vec![Answer::EchoRequest]);
    let workspace = Workspace::new();
    let pipeline = api_pipeline(&workspace, &api, "transactions", "", "");
    let result = run(&workspace, &pipeline, &["--date", &ymd(target), "-vv"], &[]);
    assert_eq!(result.code, 0, "{}", result.all_output());
    assert!(result.stderr.contains("500"), "{}", result.stderr);
    let status = workspace.engine_with_env(
        &["status", pipeline.to_str().unwrap(), "--json"],
        &[("TOSS_SECRET_KEY", KEY)],
    );
    let mut written = String::new();
    let mut stack = vec![workspace.path("")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_none_or(|ext| ext != "toml") {
                written.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
            }
        }
    }
    for text in [&result.all_output(), &status.all_output(), &written] {
        assert_eq!(shown_form_of(KEY, text), None);
    }
}

#[test]
fn sigkill_during_a_multi_page_day_then_a_rerun_leaves_each_sink_equal_to_the_server() {
    let api = TossApi::start(KEY);
    let target = day(1);
    for n in 1..=200 {
        api.put_transaction(transaction(target, n, "DONE", i64::from(n)));
    }
    // Every page takes a while, so the kill lands mid-day.
    api.always(
        scope(TRANSACTIONS, target),
        Answer::Slow(Duration::from_millis(150)),
    );
    let server = PgServer::start();
    let url = server.create_database(DB);
    let workspace = Workspace::new();
    let pipeline = api_pipeline(
        &workspace,
        &api,
        "transactions",
        "page_size = 20",
        "[[sinks]]\ntype = \"postgres\"\nurl = \"${DATABASE_URL}\"\ntable = \"api\"\n",
    );
    for kill_after_ms in [400u64, 1200] {
        let mut child = Command::new(&*ENGINE)
            .args(["run", pipeline.to_str().unwrap(), "--date", &ymd(target)])
            .current_dir(workspace.path(""))
            .env("TOSS_SECRET_KEY", KEY)
            .env("DATABASE_URL", &url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(kill_after_ms));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    api.heal();
    let rerun = run(
        &workspace,
        &pipeline,
        &["--date", &ymd(target)],
        &[("DATABASE_URL", &url)],
    );
    assert_eq!(rerun.code, 0, "{}", rerun.all_output());
    let unit = format!("transactions_{}", ymd(target));
    let rows = lake_rows(
        &workspace,
        &format!("transaction_date={}", ymd(target)),
        &unit,
    );
    assert_eq!(total_rows(&rows), 200);
    assert_eq!(
        server.value(DB, "SELECT count(*) FROM api"),
        Some("200".into())
    );
    assert_eq!(
        server.value(DB, "SELECT count(DISTINCT transaction_key) FROM api"),
        Some("200".into())
    );
}

#[test]
fn engine_watch_pulls_the_whole_refresh_window_on_its_schedule() {
    let api = TossApi::start(KEY);
    api.put_transaction(transaction(day(2), 1, "DONE", 100));
    api.put_transaction(transaction(day(0), 1, "DONE", 100));
    let workspace = Workspace::new();
    let pipeline = api_pipeline(&workspace, &api, "transactions", "refresh_days = 2", "");
    let text = std::fs::read_to_string(&pipeline).unwrap().replace(
        "name = \"api\"",
        "name = \"api\"\nschedule = \"* * * * * *\"",
    );
    std::fs::write(&pipeline, text).unwrap();
    let mut watcher = Command::new(&*ENGINE)
        .args(["watch", pipeline.to_str().unwrap()])
        .current_dir(workspace.path(""))
        .env("TOSS_SECRET_KEY", KEY)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let wanted = [day(2), day(1), day(0)].map(|day| format!("transactions_{}", ymd(day)));
    let parquet = |unit: &String| {
        let date = unit.trim_start_matches("transactions_");
        workspace.path(&format!("lake/transaction_date={date}/{unit}.parquet"))
    };
    while std::time::Instant::now() < deadline
        && !(parquet(&wanted[0]).exists() && parquet(&wanted[2]).exists())
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    // Two cycles at least: every cycle asks for each day of the window.
    std::thread::sleep(Duration::from_millis(1500));
    Command::new("kill")
        .args(["-TERM", &watcher.id().to_string()])
        .status()
        .unwrap();
    let status = watcher.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(parquet(&wanted[0]).exists() && parquet(&wanted[2]).exists());
    let asked: Vec<String> = api
        .seen_at(TRANSACTIONS)
        .iter()
        .filter_map(|seen| seen.param("startDate").map(|start| start[..10].to_owned()))
        .collect();
    for day in [day(2), day(1), day(0)] {
        let times = asked.iter().filter(|asked| **asked == ymd(day)).count();
        assert!(times >= 2, "{} asked {times} times: {asked:?}", ymd(day));
    }
    assert!(!asked.contains(&ymd(day(3))), "{asked:?}");
}

#[test]
fn settlements_reach_postgres_and_a_webhook_exactly_once_through_a_plugin() {
    use crate::support::receiver::Receiver;
    let api = TossApi::start(KEY);
    let sold = day(3);
    let paid = transaction(sold, 1, "DONE", 50_000);
    api.put_settlement(settlement(&paid, sold));
    api.put_settlement(cancel_settlement(
        &paid,
        &cancel_of(&paid, sold, 2, 50_000),
        sold,
    ));
    api.put_settlement(settlement(&transaction(sold, 3, "DONE", 726), sold));
    let receiver = Receiver::start("whsec_dG9zcy1ldGwtZTJlLXRvc3MtYXBpLWhvb2sta2V5ISE=");
    let server = PgServer::start();
    let url = server.create_database(DB);
    let workspace = Workspace::new();
    let identity = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/plugins/wasm32-wasip2/release/identity.wasm");
    let sinks = format!(
        "[[sinks]]\ntype = \"postgres\"\nurl = \"${{DATABASE_URL}}\"\ntable = \"settlements\"\n\n\
         [[sinks]]\ntype = \"webhook\"\nurl = \"{}\"\nsecret = \"${{HOOK_SECRET}}\"\n\n\
         [[transforms]]\ntype = \"wasm\"\nname = \"identity\"\nmodule = \"{}\"\n",
        receiver.url(),
        identity.display()
    );
    let pipeline = api_pipeline(&workspace, &api, "settlements", "", &sinks);
    let env = [
        ("DATABASE_URL", url.as_str()),
        (
            "HOOK_SECRET",
            "whsec_dG9zcy1ldGwtZTJlLXRvc3MtYXBpLWhvb2sta2V5ISE=",
        ),
    ];
    let args = ["--date", &ymd(sold)];
    let first = run(&workspace, &pipeline, &args, &env);
    assert_eq!(first.code, 0, "{}", first.all_output());
    assert_eq!(
        server.value(DB, "SELECT count(*) FROM settlements"),
        Some("3".into())
    );
    assert_eq!(
        server.value(DB, "SELECT sum(amount)::text FROM settlements"),
        Some("726.0000".into())
    );
    assert_eq!(
        server.value(
            DB,
            "SELECT count(*) FROM settlements WHERE is_cancel AND pay_out_amount < 0"
        ),
        Some("1".into())
    );
    receiver.assert_every_request_signed();
    assert_eq!(receiver.deduplicated_records().len(), 3);

    // A corrected row: the pull changes, one row is updated everywhere, nothing is doubled.
    let mut corrected = settlement(&transaction(sold, 3, "DONE", 726), sold);
    corrected["payOutAmount"] = json!(700);
    api.put_settlement(corrected);
    let second = run(&workspace, &pipeline, &args, &env);
    assert_eq!(second.code, 0, "{}", second.all_output());
    assert_eq!(
        server.value(DB, "SELECT count(*) FROM settlements"),
        Some("3".into())
    );
    assert_eq!(
        server.value(
            DB,
            "SELECT count(*) FROM settlements WHERE pay_out_amount = 700"
        ),
        Some("1".into())
    );
    let sent: usize = receiver
        .seen()
        .iter()
        .map(|request| request.json()["records"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(sent, 4, "3 records, then only the changed one");
    // Unchanged now: nothing more anywhere.
    let third = run(&workspace, &pipeline, &args, &env);
    assert!(third.stdout.contains("1 skipped"), "{}", third.stdout);
    assert_eq!(receiver.seen().len(), 2);
}

#[test]
fn paging_that_would_go_round_forever_fails_the_day_for_both_datasets() {
    use crate::support::http_server::{HttpServer, Reply, Response};
    // A broken API: whatever is asked, the same two full rows.
    let looping = HttpServer::start(|_request| {
        let page = r#"[{"transactionKey":"A","soldDate":"2026-11-01"},{"transactionKey":"B","soldDate":"2026-11-01"}]"#;
        Reply::Send(Response::new(200, "OK", page).header("Content-Type", "application/json"))
    });
    for (dataset, said) in [
        ("transactions", "transactionKey B again"),
        ("settlements", "is the same as page 1"),
    ] {
        let workspace = Workspace::new();
        let pipeline = workspace.pipeline(
            "pipeline.toml",
            &format!(
                "[pipeline]\nname = \"api\"\n\n[source]\ntype = \"toss-api\"\ndataset = \"{dataset}\"\n\
                 secret_key = \"${{TOSS_SECRET_KEY}}\"\nendpoint = \"{}\"\npage_size = 2\n\n\
                 [[sinks]]\ntype = \"parquet\"\npath = \"lake\"\n",
                looping.url("")
            ),
        );
        let result = run(&workspace, &pipeline, &["--date", &ymd(day(1))], &[]);
        assert_eq!(result.code, 1, "{}", result.all_output());
        assert!(result.stderr.contains(said), "{dataset}: {}", result.stderr);
        assert!(
            result.stderr.contains("go round forever"),
            "{}",
            result.stderr
        );
        assert!(workspace.lake_files().is_empty());
    }
}

#[test]
fn settlements_by_paid_out_date_are_asked_and_laid_out_by_it() {
    let api = TossApi::start(KEY);
    let (sold, paid_out) = (day(5), day(3));
    api.put_settlement(settlement(&transaction(sold, 1, "DONE", 1000), sold));
    let workspace = Workspace::new();
    let pipeline = api_pipeline(
        &workspace,
        &api,
        "settlements",
        "date_type = \"paidOutDate\"",
        "",
    );
    let result = run(&workspace, &pipeline, &["--date", &ymd(paid_out)], &[]);
    assert_eq!(result.code, 0, "{}", result.all_output());
    let asked = api.seen_at(SETTLEMENTS);
    assert_eq!(asked[0].param("dateType"), Some("paidOutDate"));
    assert_eq!(asked[0].param("startDate"), Some(ymd(paid_out).as_str()));
    let unit = format!("settlements-paid-out_{}", ymd(paid_out));
    let rows = lake_rows(
        &workspace,
        &format!("paid_out_date={}", ymd(paid_out)),
        &unit,
    );
    assert_eq!(total_rows(&rows), 1);
}

#[test]
fn inspect_shows_a_saved_api_answer_with_its_rejects() {
    let workspace = Workspace::new();
    let answer = json!([
        settlement(&transaction(day(1), 1, "DONE", 34000), day(1)),
        {"paymentKey": "no-key", "amount": 5},
    ]);
    std::fs::write(workspace.path("answer.json"), answer.to_string()).unwrap();
    let shown = workspace.engine(&["inspect", "answer.json", "--format", "toss-api-settlements"]);
    assert_eq!(shown.code, 0, "{}", shown.all_output());
    assert!(
        shown.stdout.contains("1 records, 1 rejected"),
        "{}",
        shown.stdout
    );
    assert!(shown.stdout.contains("34000.0000"), "{}", shown.stdout);
    assert!(
        shown.stdout.contains("transactionKey is missing"),
        "{}",
        shown.stdout
    );
    let wrong = workspace.engine(&["inspect", "answer.json", "--format", "csv"]);
    assert_eq!(wrong.code, 2, "{}", wrong.all_output());
}
