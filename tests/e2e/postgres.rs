//! The Postgres sink, against a real PostgreSQL server per test.

use crate::support::pg::{PASSWORD, PgServer};
use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The back office's webhook secret, in the Standard Webhooks form.
const HOOK_SECRET: &str = "whsec_dG9zcy1ldGwtZTJlLXBvc3RncmVzLWhvb2sta2V5ISE=";
const DB: &str = "merchant";

/// inbox → `transforms` → lake and Postgres (`url` from DATABASE_URL), plus `sink_keys`.
fn pipeline(workspace: &Workspace, transforms: &str, sink_keys: &str) -> PathBuf {
    workspace.inbox_pipeline(
        "pipeline.toml",
        "pg",
        "",
        transforms,
        &format!(
            "[[sinks]]\ntype = \"parquet\"\npath = \"lake\"\n\n[[sinks]]\ntype = \"postgres\"\n\
             url = \"${{DATABASE_URL}}\"\ntable = \"toss_transactions\"\n{sink_keys}\n"
        ),
    )
}

fn run(workspace: &Workspace, pipeline: &Path, url: &str) -> Run {
    let run = workspace.engine_with_env(
        &["run", pipeline.to_str().unwrap()],
        &[("DATABASE_URL", url)],
    );
    assert!(
        !run.all_output().contains(PASSWORD),
        "the database password leaked:\n{}",
        run.all_output()
    );
    run
}

fn write_inbox(workspace: &Workspace, name: &str, text: &str) {
    std::fs::write(workspace.inbox(name), text).unwrap();
}

/// A REV line, as toss_line writes AUTH ones.
fn rev_line(n: u64, status: &str) -> String {
    toss_line(n, 500 + n, status)
}

/// (transaction, amount, status) of every row, ordered.
fn rows(server: &PgServer) -> Vec<(String, String, String)> {
    server
        .query(
            DB,
            "SELECT transaction, amount, status FROM toss_transactions ORDER BY record_kind, transaction",
        )
        .into_iter()
        .map(|row| {
            let value = |index: usize| row[index].clone().unwrap_or_default();
            (value(0), value(1), value(2))
        })
        .collect()
}

#[test]
fn creates_the_table_with_typed_columns_and_loads_every_record() {
    let server = PgServer::start();
    let url = server.create_database(DB);
    let workspace = Workspace::new();
    write_inbox(&workspace, "toss_AUTH_20070706.dat", &toss_file(3, "10"));
    let pipeline = pipeline(&workspace, "", "");

    let first = run(&workspace, &pipeline, &url);
    assert_eq!(first.code, 0, "{}", first.all_output());

    let types = server.query(
        DB,
        "SELECT column_name, data_type FROM information_schema.columns \
         WHERE table_name = 'toss_transactions' ORDER BY ordinal_position",
    );
    let types: Vec<(String, String)> = types
        .into_iter()
        .map(|row| (row[0].clone().unwrap(), row[1].clone().unwrap()))
        .collect();
    let expect = |column: &str, data_type: &str| {
        assert!(
            types.contains(&(column.to_owned(), data_type.to_owned())),
            "{column} should be {data_type}: {types:?}"
        )
    };
    expect("record_kind", "text");
    expect("trxdate", "date");
    expect("amount", "bigint");
    expect("useescrow", "boolean");
    expect("occurred_at", "timestamp with time zone");
    expect("financename", "text");
    expect("source_line", "bigint");
    assert_eq!(types.len(), 16, "{types:?}");

    let key = server.query(
        DB,
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid \
         AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'toss_transactions'::regclass \
         AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)",
    );
    let key: Vec<String> = key.into_iter().map(|row| row[0].clone().unwrap()).collect();
    assert_eq!(
        key,
        [
            "record_kind",
            "trxdate",
            "mid",
            "paytype",
            "transaction",
            "oid"
        ]
    );

    let loaded = server.query(
        DB,
        "SELECT record_kind, trxdate, mid, amount, useescrow, occurred_at, authnumber, \
         financename, source_line FROM toss_transactions ORDER BY source_line",
    );
    assert_eq!(loaded.len(), 3);
    assert_eq!(
        loaded[0],
        [
            "AUTH",
            "2007-07-06",
            "toss",
            "1001",
            "f",
            "2007-07-06 12:00:00+09",
            "00000001",
            "국민",
            "1"
        ]
        .map(|value| Some(value.to_owned()))
    );
    assert_eq!(
        server.query(
            DB,
            "SELECT pipeline, target_table, source_file, rows FROM engine_loads"
        ),
        vec![
            ["pg", "toss_transactions", "toss_AUTH_20070706.dat", "3"].map(|v| Some(v.to_owned()))
        ]
    );
}

#[test]
fn reloading_the_same_file_rewrites_no_row() {
    let server = PgServer::start();
    let url = server.create_database(DB);
    let workspace = Workspace::new();
    write_inbox(&workspace, "toss_AUTH_20070706.dat", &toss_file(4, "10"));
    let pipeline = pipeline(&workspace, "", "");
    assert_eq!(run(&workspace, &pipeline, &url).code, 0);
    let versions = "SELECT transaction, xmin::text FROM toss_transactions ORDER BY transaction";
    let before = server.query(DB, versions);

    // The state store forgets the file: the engine loads it again, and the upsert finds every
    // row unchanged, so not one row gets a new version.
    std::fs::remove_dir_all(workspace.path(".engine")).unwrap();
    let again = run(&workspace, &pipeline, &url);
    assert_eq!(again.code, 0, "{}", again.all_output());
    assert_eq!(server.query(DB, versions), before);
    assert_eq!(
        server.value(DB, "SELECT count(*) FROM toss_transactions"),
        Some("4".into())
    );

    // With the state kept, the unchanged file is not even read.
    let third = run(&workspace, &pipeline, &url);
    assert_eq!(third.code, 0);
    assert!(third.stdout.contains("skipped"), "{}", third.stdout);
    assert_eq!(server.query(DB, versions), before);
}

#[test]
fn status_verify_counts_the_table_rows_and_run_force_puts_them_back() {
    let server = PgServer::start();
    let url = server.create_database(DB);
    let workspace = Workspace::new();
    write_inbox(&workspace, "toss_AUTH_20070706.dat", &toss_file(4, "10"));
    let pipeline = pipeline(&workspace, "", "");
    assert_eq!(run(&workspace, &pipeline, &url).code, 0);
    let path = pipeline.to_str().unwrap();
    let env = [("DATABASE_URL", url.as_str())];
    let verified = workspace.engine_with_env(&["status", path, "--verify"], &env);
    assert_eq!(verified.code, 0, "{}", verified.all_output());

    server.execute(
        DB,
        "DELETE FROM toss_transactions WHERE transaction LIKE '%2'",
    );
    let verified = workspace.engine_with_env(&["status", path, "--verify"], &env);
    assert_eq!(verified.code, 1, "{}", verified.all_output());
    assert!(
        verified.stdout.contains("holds 3 of the 4 rows committed"),
        "{}",
        verified.stdout
    );
    assert!(
        !verified.all_output().contains(PASSWORD),
        "{}",
        verified.all_output()
    );

    let forced = workspace.engine_with_env(&["run", path, "--force"], &env);
    assert_eq!(forced.code, 0, "{}", forced.all_output());
    assert_eq!(
        server.value(DB, "SELECT count(*) FROM toss_transactions"),
        Some("4".into())
    );
    let verified = workspace.engine_with_env(&["status", path, "--verify"], &env);
    assert_eq!(verified.code, 0, "{}", verified.all_output());
}

#[test]
fn a_longer_version_adds_new_records_and_updates_a_changed_cancel_in_place() {
    let server = PgServer::start();
    let url = server.create_database(DB);
    let workspace = Workspace::new();
    let name = "toss_REV_20070706.dat";
    let first: Vec<String> = (1..=3).map(|n| rev_line(n, "21")).collect();
    write_inbox(&workspace, name, &(first.join("\n") + "\n"));
    let pipeline = pipeline(&workspace, "", "");
    assert_eq!(run(&workspace, &pipeline, &url).code, 0);
    let xmin = |transaction: &str| {
        server.value(
            DB,
            &format!(
                "SELECT xmin::text FROM toss_transactions WHERE transaction = '{transaction}'"
            ),
        )
    };
    let untouched_before = xmin("toss0000000000000000001");

    // The next version: the second cancel now succeeded, two new cancels came.
    let second: Vec<String> = (1..=5)
        .map(|n| rev_line(n, if n == 2 { "20" } else { "21" }))
        .collect();
    write_inbox(&workspace, name, &(second.join("\n") + "\n"));
    let rerun = run(&workspace, &pipeline, &url);
    assert_eq!(rerun.code, 0, "{}", rerun.all_output());

    let expected: Vec<(String, String, String)> = (1..=5)
        .map(|n| {
            (
                format!("toss{n:019}"),
                (500 + n).to_string(),
                if n == 2 { "20" } else { "21" }.to_owned(),
            )
        })
        .collect();
    assert_eq!(rows(&server), expected);
    assert_eq!(xmin("toss0000000000000000001"), untouched_before);
    assert_eq!(
        server.value(
            DB,
            "SELECT rows FROM engine_loads WHERE source_file = 'toss_REV_20070706.dat'"
        ),
        Some("5".into())
    );
}

#[test]
fn a_record_missing_from_the_newer_version_leaves_the_table() {
    let server = PgServer::start();
    let url = server.create_database(DB);
    let workspace = Workspace::new();
    let name = "toss_AUTH_20070706.dat";
    write_inbox(&workspace, name, &toss_file(3, "10"));
    let pipeline = pipeline(&workspace, "", "");
    assert_eq!(run(&workspace, &pipeline, &url).code, 0);
    let without_second = format!(
        "{}\n{}\n",
        toss_line(1, 1001, "10"),
        toss_line(3, 1003, "10")
    );
    write_inbox(&workspace, name, &without_second);
    assert_eq!(run(&workspace, &pipeline, &url).code, 0);
    let transactions: Vec<String> = rows(&server).into_iter().map(|row| row.0).collect();
    assert_eq!(
        transactions,
        ["toss0000000000000000001", "toss0000000000000000003"]
    );
}

#[test]
fn columns_from_merchant_mapping_arrive_typed() {
    let server = PgServer::start();
    let url = server.create_database(DB);
    let workspace = Workspace::new();
    for name in ["toss_AUTH_20070706.dat", "toss_REV_20070706.dat"] {
        std::fs::copy(sample(name), workspace.inbox(name)).unwrap();
    }
    let mapping = format!(
        "[[transforms]]\ntype = \"wasm\"\nname = \"mapping\"\nmodule = \"{}/merchant_mapping.wasm\"\n\
         [transforms.config]\nfee_rate = 0.025\n",
        env!("ENGINE_PLUGIN_DIR")
    );
    let pipeline = pipeline(&workspace, &mapping, "");
    let loaded = run(&workspace, &pipeline, &url);
    assert_eq!(loaded.code, 0, "{}", loaded.all_output());

    let types: Vec<Vec<Option<String>>> = server.query(
        DB,
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = \
         'toss_transactions' AND column_name IN ('method', 'issuer', 'signed_amount', 'fee', \
         'net_amount') ORDER BY column_name",
    );
    assert_eq!(
        types,
        [
            ["fee", "bigint"],
            ["issuer", "text"],
            ["method", "text"],
            ["net_amount", "bigint"],
            ["signed_amount", "bigint"]
        ]
        .map(|row| row.map(|v| Some(v.to_owned())).to_vec())
    );
    // A cancel's signed amount is negative; the lake and the table agree on every value.
    let negative = server.value(
        DB,
        "SELECT count(*) FROM toss_transactions WHERE record_kind = 'REV' AND signed_amount < 0",
    );
    let rev_rows = server.value(
        DB,
        "SELECT count(*) FROM toss_transactions WHERE record_kind = 'REV'",
    );
    assert_eq!(negative, rev_rows);
    let lake =
        workspace.read_lake("record_kind=AUTH/trxdate=2007-07-06/toss_AUTH_20070706.parquet");
    let mut lake_fees = int64s(&lake, "fee");
    lake_fees.sort();
    let mut table_fees: Vec<i64> = server
        .query(
            DB,
            "SELECT fee FROM toss_transactions WHERE record_kind = 'AUTH'",
        )
        .into_iter()
        .map(|row| row[0].as_deref().unwrap().parse().unwrap())
        .collect();
    table_fees.sort();
    assert_eq!(table_fees, lake_fees);
    assert!(!lake_fees.is_empty());
}

#[test]
fn a_column_of_the_wrong_type_is_named_and_nothing_loads() {
    let server = PgServer::start();
    let url = server.create_database(DB);
    server.execute(
        DB,
        "CREATE TABLE toss_transactions (record_kind text, trxdate date, mid text, paytype text, \
         transaction text, oid text, financecode text, financename text, buyerid text, \
         amount integer, useescrow boolean, occurred_at timestamptz, authnumber text, \
         status text, source_file text, source_line bigint, \
         PRIMARY KEY (record_kind, trxdate, mid, paytype, transaction, oid))",
    );
    let workspace = Workspace::new();
    write_inbox(&workspace, "toss_AUTH_20070706.dat", &toss_file(2, "10"));
    let pipeline = pipeline(&workspace, "", "");
    let failed = run(&workspace, &pipeline, &url);
    assert_eq!(failed.code, 1);
    let output = failed.all_output();
    assert!(
        output.contains("amount is integer in the table but bigint"),
        "{output}"
    );
    assert!(output.contains("ALTER TABLE"), "{output}");
    assert_eq!(
        server.value(DB, "SELECT count(*) FROM toss_transactions"),
        Some("0".into())
    );
    assert!(
        workspace.lake_files().is_empty(),
        "{:?}",
        workspace.lake_files()
    );

    // Widened as the message says, the rerun loads the file.
    server.execute(
        DB,
        "ALTER TABLE toss_transactions ALTER COLUMN amount TYPE bigint",
    );
    let rerun = run(&workspace, &pipeline, &url);
    assert_eq!(rerun.code, 0, "{}", rerun.all_output());
    assert_eq!(
        server.value(DB, "SELECT count(*) FROM toss_transactions"),
        Some("2".into())
    );
}

#[test]
fn a_missing_column_is_named_or_added_when_allowed() {
    let server = PgServer::start();
    let url = server.create_database(DB);
    server.execute(
        DB,
        "CREATE TABLE toss_transactions (record_kind text, trxdate date, mid text, paytype text, \
         transaction text, oid text, amount numeric(20,0), status text, \
         PRIMARY KEY (record_kind, trxdate, mid, paytype, transaction, oid))",
    );
    let workspace = Workspace::new();
    write_inbox(&workspace, "toss_AUTH_20070706.dat", &toss_file(2, "10"));
    let strict = pipeline(&workspace, "", "");
    let failed = run(&workspace, &strict, &url);
    assert_eq!(failed.code, 1);
    let output = failed.all_output();
    assert!(
        output.contains("has no column financecode, financename, buyerid, useescrow"),
        "{output}"
    );
    assert!(output.contains("add_columns = true"), "{output}");

    let lenient = pipeline(&workspace, "", "add_columns = true");
    let loaded = run(&workspace, &lenient, &url);
    assert_eq!(loaded.code, 0, "{}", loaded.all_output());
    assert_eq!(
        server.query(
            DB,
            "SELECT amount, occurred_at, source_line FROM toss_transactions ORDER BY source_line"
        ),
        vec![
            ["1001", "2007-07-06 12:00:00+09", "1"]
                .map(|v| Some(v.to_owned()))
                .to_vec(),
            ["1002", "2007-07-06 12:00:00+09", "2"]
                .map(|v| Some(v.to_owned()))
                .to_vec(),
        ]
    );
}

#[test]
fn refused_connections_and_wrong_passwords_are_clear_and_leak_nothing() {
    let server = PgServer::start();
    let url = server.create_database(DB);
    let workspace = Workspace::new();
    write_inbox(&workspace, "toss_AUTH_20070706.dat", &toss_file(2, "10"));
    let pipeline = pipeline(&workspace, "", "connect_timeout_secs = 5");

    let wrong_password = url.replace(PASSWORD, "not-the-password-9");
    let refused = run(&workspace, &pipeline, &wrong_password);
    assert_eq!(refused.code, 1);
    let output = refused.all_output();
    assert!(
        output.contains(&format!(
            "cannot connect to 127.0.0.1:{}/{DB} as postgres",
            server.port
        )),
        "{output}"
    );
    assert!(
        output.contains("password authentication failed"),
        "{output}"
    );
    assert!(!output.contains("not-the-password-9"), "{output}");

    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let nobody = url.replace(&format!(":{}/", server.port), &format!(":{closed_port}/"));
    let nothing = run(&workspace, &pipeline, &nobody);
    assert_eq!(nothing.code, 1);
    let output = nothing.all_output();
    assert!(output.contains("cannot connect"), "{output}");
    assert!(output.to_lowercase().contains("refused"), "{output}");
    assert!(workspace.lake_files().is_empty());
}

#[test]
fn a_server_lost_mid_load_leaves_the_old_version_and_the_rerun_completes_it() {
    let server = PgServer::start();
    let url = server.create_database(DB);
    let workspace = Workspace::new();
    let name = "toss_AUTH_20070706.dat";
    write_inbox(&workspace, name, &toss_file(1_000, "10"));
    let pipeline = pipeline(&workspace, "", "");
    assert_eq!(run(&workspace, &pipeline, &url).code, 0);

    // A much longer version, where every earlier record failed after all: big enough that the
    // load is still in its transaction when the server goes.
    let rows = 400_000;
    write_inbox(&workspace, name, &toss_file(rows, "11"));
    let mut engine = Command::new(&*ENGINE)
        .args(["run", pipeline.to_str().unwrap()])
        .current_dir(workspace.dir.path())
        .env("DATABASE_URL", &url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let loading = server.value(
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'toss-etl' \
             AND xact_start IS NOT NULL",
        );
        if loading.as_deref() == Some("1") {
            break;
        }
        assert!(Instant::now() < deadline, "the load never started");
        assert!(
            engine.try_wait().unwrap().is_none(),
            "the load ended before the server stopped"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server.stop_immediately();
    let output = engine.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("postgres"), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");

    server.start_again();
    let statuses = "SELECT status, count(*) FROM toss_transactions GROUP BY status ORDER BY status";
    assert_eq!(
        server.query(DB, statuses),
        vec![vec![Some("10".to_owned()), Some("1000".to_owned())]],
        "the table holds the old version, whole"
    );

    let rerun = run(&workspace, &pipeline, &url);
    assert_eq!(rerun.code, 0, "{}", rerun.all_output());
    assert_eq!(
        server.query(DB, statuses),
        vec![vec![Some("11".to_owned()), Some(rows.to_string())]]
    );
    assert_eq!(
        server.value(
            DB,
            "SELECT count(DISTINCT transaction) = count(*) AND min(source_line) = 1 \
             AND max(source_line) = 400000 FROM toss_transactions"
        ),
        Some("t".into())
    );
}

#[test]
fn tls_is_verified_against_the_trusted_certificates() {
    let pki = TestPki::new();
    let server = PgServer::start_with_tls(&pki);
    let url = server.create_database(DB);
    let workspace = Workspace::new();
    write_inbox(&workspace, "toss_AUTH_20070706.dat", &toss_file(2, "10"));

    // The server's certificate is signed by a CA the system does not know: refused.
    let untrusted = pipeline(&workspace, "", "sslmode = \"require\"");
    let refused = run(&workspace, &untrusted, &url);
    assert_eq!(refused.code, 1);
    let output = refused.all_output();
    assert!(output.contains("cannot connect"), "{output}");
    assert!(output.to_lowercase().contains("certificate"), "{output}");
    assert_eq!(
        server.value(DB, "SELECT to_regclass('toss_transactions') IS NULL"),
        Some("t".into())
    );

    // Trusting that CA, the load goes over TLS.
    let trusted = pipeline(
        &workspace,
        "",
        &format!(
            "sslmode = \"verify-full\"\nca_file = \"{}\"",
            pki.path("ca.pem").display()
        ),
    );
    let loaded = run(&workspace, &trusted, &url);
    assert_eq!(loaded.code, 0, "{}", loaded.all_output());
    assert_eq!(
        server.value(DB, "SELECT count(*) FROM toss_transactions"),
        Some("2".into())
    );
}

#[test]
fn the_shipped_back_office_pipeline_fills_the_lake_the_table_and_the_webhook() {
    let server = PgServer::start();
    let url = server.create_database(DB);
    let receiver = crate::support::receiver::Receiver::start(HOOK_SECRET);
    let workspace = Workspace::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let shipped = std::fs::read_to_string(root.join("pipelines/back-office.toml")).unwrap();
    for name in ["toss_AUTH_20070706.dat", "toss_REV_20070706.dat"] {
        std::fs::copy(sample(name), workspace.inbox(name)).unwrap();
    }
    let text = shipped
        .replace("path = \"pipelines/inbox\"", "path = \"inbox\"")
        .replace(
            "target/plugins/wasm32-wasip2/release",
            env!("ENGINE_PLUGIN_DIR"),
        );
    let pipeline = workspace.pipeline("back-office.toml", &text);
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("WEBHOOK_URL", &receiver.url()),
        ("WEBHOOK_SECRET", HOOK_SECRET),
        ("BUYER_HASH_KEY", "test-key"),
    ];
    let first = workspace.engine_with_env(&["run", pipeline.to_str().unwrap()], &env);
    assert_eq!(first.code, 0, "{}", first.all_output());
    for secret in [PASSWORD, HOOK_SECRET, "test-key"] {
        assert!(!first.all_output().contains(secret), "{secret} leaked");
    }

    // 4 AUTH and 3 REV records (one sample line is rejected) in each of the three sinks.
    let lake_rows: usize = workspace
        .lake_files()
        .iter()
        .map(|file| total_rows(&workspace.read_lake(file)))
        .sum();
    assert_eq!(lake_rows, 7);
    assert_eq!(
        server.value(
            DB,
            "SELECT count(*) FROM toss_transactions WHERE fee IS NOT NULL"
        ),
        Some("7".into())
    );
    receiver.assert_every_request_signed();
    let delivered = receiver.deduplicated_records();
    assert_eq!(delivered.len(), 7);
    assert!(
        delivered
            .iter()
            .all(|record| record.get("net_amount").is_some())
    );

    // Run again: nothing changes anywhere, and the receiver hears nothing.
    let requests = receiver.seen().len();
    let again = workspace.engine_with_env(&["run", pipeline.to_str().unwrap()], &env);
    assert_eq!(again.code, 0, "{}", again.all_output());
    assert_eq!(receiver.seen().len(), requests);
    assert_eq!(
        server.value(DB, "SELECT count(*) FROM toss_transactions"),
        Some("7".into())
    );
}

/// `run` with the engine's info log on, whatever RUST_LOG the tests were started with: the
/// sink says there which way a file went into the table.
fn run_logged(workspace: &Workspace, pipeline: &Path, url: &str) -> Run {
    let run = workspace.engine_with_env(
        &["run", pipeline.to_str().unwrap()],
        &[("DATABASE_URL", url), ("RUST_LOG", "info")],
    );
    assert!(!run.all_output().contains(PASSWORD), "{}", run.all_output());
    run
}

/// (transaction, amount, status, source_file) of every row, ordered.
fn rows_with_file(server: &PgServer) -> Vec<[String; 4]> {
    server
        .query(
            DB,
            "SELECT transaction, amount, status, source_file FROM toss_transactions \
             ORDER BY transaction",
        )
        .into_iter()
        .map(|row| std::array::from_fn(|index| row[index].clone().unwrap_or_default()))
        .collect()
}

fn expected_row(n: u64, amount: u64, status: &str, file: &str) -> [String; 4] {
    [
        format!("toss{n:019}"),
        amount.to_string(),
        status.to_owned(),
        file.to_owned(),
    ]
}

#[test]
fn a_new_file_is_copied_straight_in_and_its_next_version_upserted() {
    let server = PgServer::start();
    let url = server.create_database(DB);
    let workspace = Workspace::new();
    let name = "toss_AUTH_20070706.dat";
    write_inbox(&workspace, name, &toss_file(3, "10"));
    let pipeline = pipeline(&workspace, "", "");

    let first = run_logged(&workspace, &pipeline, &url);
    assert_eq!(first.code, 0, "{}", first.all_output());
    assert!(
        first.stderr.contains("copied straight into the table")
            && first.stderr.contains("copied=3"),
        "a file new to the table skips staging:\n{}",
        first.stderr
    );
    assert!(!first.stderr.contains("upserted"), "{}", first.stderr);
    assert_eq!(
        rows_with_file(&server),
        (1..=3)
            .map(|n| expected_row(n, 1000 + n, "10", name))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        server.query(DB, "SELECT source_file, rows FROM engine_loads"),
        vec![vec![Some(name.to_owned()), Some("3".to_owned())]]
    );

    // The next version: record 2 vanished, record 3 failed after all, record 4 is new. The
    // table holds the file now, so the upsert merges it and removes record 2.
    let next = format!(
        "{}\n{}\n{}\n",
        toss_line(1, 1001, "10"),
        toss_line(3, 1003, "11"),
        toss_line(4, 1004, "10")
    );
    write_inbox(&workspace, name, &next);
    let second = run_logged(&workspace, &pipeline, &url);
    assert_eq!(second.code, 0, "{}", second.all_output());
    assert!(
        second.stderr.contains("upserted") && second.stderr.contains("deleted=1"),
        "{}",
        second.stderr
    );
    assert!(
        !second.stderr.contains("copied straight into the table"),
        "{}",
        second.stderr
    );
    assert_eq!(
        rows_with_file(&server),
        vec![
            expected_row(1, 1001, "10", name),
            expected_row(3, 1003, "11", name),
            expected_row(4, 1004, "10", name),
        ]
    );
    assert_eq!(
        server.value(DB, "SELECT rows FROM engine_loads"),
        Some("3".into())
    );
}

#[test]
fn a_new_file_whose_keys_another_file_holds_is_upserted_as_before() {
    let server = PgServer::start();
    let url = server.create_database(DB);
    let workspace = Workspace::new();
    let first_name = "toss_AUTH_20070706.dat";
    write_inbox(&workspace, first_name, &toss_file(3, "10"));
    let pipeline = pipeline(&workspace, "", "");
    assert_eq!(run(&workspace, &pipeline, &url).code, 0);

    // Another file of the same day and kind, new to the table, with records 2 and 3 again
    // (changed) and a new record 4: the COPY straight in meets keys the table holds, so the
    // file is loaded through staging after all, and the upsert moves 2 and 3 to it.
    let other_name = "other_AUTH_20070706.dat";
    let other = format!(
        "{}\n{}\n{}\n",
        toss_line(2, 2002, "11"),
        toss_line(3, 2003, "10"),
        toss_line(4, 2004, "10")
    );
    write_inbox(&workspace, other_name, &other);
    let second = run_logged(&workspace, &pipeline, &url);
    assert_eq!(second.code, 0, "{}", second.all_output());
    assert!(
        second.stderr.contains("loading through staging after all")
            && second.stderr.contains("23505"),
        "the unique violation sends the file through staging:\n{}",
        second.stderr
    );
    assert!(
        second.stderr.contains("upserted") && second.stderr.contains("changed=3"),
        "{}",
        second.stderr
    );
    assert_eq!(
        rows_with_file(&server),
        vec![
            expected_row(1, 1001, "10", first_name),
            expected_row(2, 2002, "11", other_name),
            expected_row(3, 2003, "10", other_name),
            expected_row(4, 2004, "10", other_name),
        ]
    );
    assert_eq!(
        server.query(
            DB,
            "SELECT source_file, rows FROM engine_loads ORDER BY source_file"
        ),
        vec![
            vec![Some(other_name.to_owned()), Some("3".to_owned())],
            vec![Some(first_name.to_owned()), Some("3".to_owned())],
        ]
    );
}

#[test]
fn a_table_without_a_unique_index_on_the_key_fails_the_first_load_as_before() {
    let server = PgServer::start();
    let url = server.create_database(DB);
    server.execute(
        DB,
        "CREATE TABLE toss_transactions (record_kind text, trxdate date, mid text, paytype text, \
         transaction text, oid text, financecode text, financename text, buyerid text, \
         amount bigint, useescrow boolean, occurred_at timestamptz, authnumber text, \
         status text, source_file text, source_line bigint)",
    );
    let workspace = Workspace::new();
    write_inbox(&workspace, "toss_AUTH_20070706.dat", &toss_file(2, "10"));
    let pipeline = pipeline(&workspace, "", "");
    let failed = run_logged(&workspace, &pipeline, &url);
    assert_eq!(failed.code, 1, "{}", failed.all_output());
    assert!(
        failed
            .all_output()
            .contains("needs a primary key or unique index on (record_kind, trxdate"),
        "{}",
        failed.all_output()
    );
    assert!(
        !failed.stderr.contains("copied straight into the table"),
        "{}",
        failed.stderr
    );
    assert_eq!(
        server.value(DB, "SELECT count(*) FROM toss_transactions"),
        Some("0".into())
    );
    assert_eq!(
        server.value(DB, "SELECT count(*) FROM engine_loads"),
        Some("0".into())
    );
}

#[test]
fn an_engine_killed_mid_copy_straight_in_leaves_nothing_and_the_rerun_loads_every_record() {
    let server = PgServer::start();
    let url = server.create_database(DB);
    let workspace = Workspace::new();
    let rows = 400_000;
    write_inbox(&workspace, "toss_AUTH_20070706.dat", &toss_file(rows, "10"));
    let pipeline = pipeline(&workspace, "", "");
    let mut engine = Command::new(&*ENGINE)
        .args(["run", pipeline.to_str().unwrap()])
        .current_dir(workspace.dir.path())
        .env("DATABASE_URL", &url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let copying = server.value(
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'toss-etl' \
             AND state = 'active' AND query LIKE 'COPY \"toss_transactions\"%'",
        );
        if copying.as_deref() == Some("1") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the COPY straight in never started"
        );
        assert!(
            engine.try_wait().unwrap().is_none(),
            "the load ended before the engine was killed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    engine.kill().unwrap();
    engine.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while server
        .value(
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'toss-etl'",
        )
        .as_deref()
        != Some("0")
    {
        assert!(
            Instant::now() < deadline,
            "the engine's session never ended"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        server.value(DB, "SELECT count(*) FROM toss_transactions"),
        Some("0".into()),
        "nothing of the killed load is in the table"
    );
    assert_eq!(
        server.value(DB, "SELECT count(*) FROM engine_loads"),
        Some("0".into())
    );

    let rerun = run_logged(&workspace, &pipeline, &url);
    assert_eq!(rerun.code, 0, "{}", rerun.all_output());
    assert!(
        rerun.stderr.contains(&format!("copied={rows}")),
        "{}",
        rerun.stderr
    );
    assert_eq!(
        server.value(
            DB,
            "SELECT count(*) = 400000 AND count(DISTINCT transaction) = count(*) AND \
             min(source_line) = 1 AND max(source_line) = 400000 FROM toss_transactions"
        ),
        Some("t".into())
    );
    assert_eq!(
        server.value(DB, "SELECT rows FROM engine_loads"),
        Some(rows.to_string())
    );
}
