//! The HTTP source against a local `trxdown.jsp` and its failures.

use crate::support::http_server::{HttpServer, Reply, Response};
use crate::support::secrets::{base64, percent_all, shown_form_of};
use crate::support::trxdown::{Answer, Trxdown};
use crate::support::*;
use std::time::Duration;

const MERTKEY: &str = "mk-Secret-4242";
const AUTH: &str = "record_kind=AUTH/trxdate=2007-07-06/toss_AUTH_20070706.parquet";
const REV: &str = "record_kind=REV/trxdate=2007-07-06/toss_REV_20070706.parquet";

fn euc_kr(text: &str) -> Vec<u8> {
    encoding_rs::EUC_KR.encode(text).0.into_owned()
}

/// The server with the shipped sample records of 2007-07-06, in EUC-KR as Toss sends them.
fn server_with_samples() -> Trxdown {
    let server = Trxdown::start(MERTKEY);
    server.set_body(
        "toss",
        "TRX",
        "20070706",
        std::fs::read(sample("toss_AUTH_20070706.dat")).unwrap(),
    );
    let rev = std::fs::read_to_string(sample("toss_REV_20070706.dat")).unwrap();
    server.set_body(
        "toss",
        "REV",
        "20070706",
        euc_kr(&rev.replace('\n', "\r\n")),
    );
    server
}

fn http_pipeline(workspace: &Workspace, server: &Trxdown, extra: &str) -> std::path::PathBuf {
    http_pipeline_at(workspace, &server.url(), extra)
}

/// The test pipeline downloading from `url`, with `extra` keys in `[source]`.
fn http_pipeline_at(workspace: &Workspace, url: &str, extra: &str) -> std::path::PathBuf {
    workspace.pipeline(
        "pipeline.toml",
        &format!(
            r#"[pipeline]
name = "test"
dates = "2007-07-06"

[source]
type = "http"
url = "{url}"
mertkey = "${{TEST_MERTKEY}}"
mids = ["toss"]
timeout_secs = 2
retries = 2
retry_base_ms = 50
{extra}

[[sinks]]
type = "parquet"
path = "lake"
"#
        ),
    )
}

fn run(workspace: &Workspace, pipeline: &std::path::Path, args: &[&str]) -> Run {
    let mut all = vec!["run", pipeline.to_str().unwrap()];
    all.extend_from_slice(args);
    workspace.engine_with_env(&all, &[("TEST_MERTKEY", MERTKEY)])
}

fn key() -> String {
    use md5::{Digest, Md5};
    Md5::digest(format!("toss{MERTKEY}"))
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Every file the run left behind, as bytes.
fn everything_written(workspace: &Workspace) -> Vec<u8> {
    fn walk(dir: &std::path::Path, into: &mut Vec<u8>) {
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

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[test]
fn loads_euc_kr_bodies_and_the_key_never_shows() {
    let server = server_with_samples();
    let workspace = Workspace::new();
    let pipeline = http_pipeline(&workspace, &server, "");
    let first = run(&workspace, &pipeline, &[]);
    assert_eq!(first.code, 0, "{}", first.all_output());

    let auth = workspace.read_lake(AUTH);
    assert_eq!(total_rows(&auth), 4);
    assert_eq!(strings(&auth, "financename")[0].as_deref(), Some("국민"));
    let origin = strings(&auth, "source_file")[0].clone().unwrap();
    assert_eq!(
        origin,
        format!(
            "{}?mertid=toss&servicecode=TRX&trxdate=20070706",
            server.url()
        )
    );
    assert_eq!(total_rows(&workspace.read_lake(REV)), 3);
    // The server saw the right key; nobody else ever does.
    assert!(server.seen().iter().all(|seen| seen.query["key"] == key()));
    let output = first.all_output();
    for secret in [key().as_str(), MERTKEY] {
        assert!(!output.contains(secret), "{secret} leaked: {output}");
        assert!(
            !contains(&everything_written(&workspace), secret),
            "{secret} written to disk"
        );
    }

    // The day is long closed, so its loaded files are final: a rerun asks the server nothing.
    let requests = server.seen().len();
    let again = run(&workspace, &pipeline, &[]);
    assert_eq!(again.code, 0, "{}", again.all_output());
    assert!(again.stdout.contains("2 skipped"), "{}", again.stdout);
    assert_eq!(server.seen().len(), requests);
}

#[test]
fn server_errors_are_retried_until_the_records_come() {
    let server = server_with_samples();
    server.plan("20070706", vec![Answer::Status(500), Answer::Status(503)]);
    let workspace = Workspace::new();
    let pipeline = http_pipeline(&workspace, &server, "kinds = [\"AUTH\"]");
    let result = run(&workspace, &pipeline, &[]);
    assert_eq!(result.code, 0, "{}", result.all_output());
    assert_eq!(total_rows(&workspace.read_lake(AUTH)), 4);
    assert_eq!(server.requests_for("20070706").len(), 3);
}

#[test]
fn too_many_requests_waits_as_long_as_retry_after_says() {
    let server = server_with_samples();
    server.plan(
        "20070706",
        vec![Answer::TooManyRequests {
            retry_after_secs: 1,
        }],
    );
    let workspace = Workspace::new();
    let pipeline = http_pipeline(&workspace, &server, "kinds = [\"AUTH\"]");
    let result = run(&workspace, &pipeline, &[]);
    assert_eq!(result.code, 0, "{}", result.all_output());
    let seen = server.requests_for("20070706");
    assert_eq!(seen.len(), 2);
    assert!(seen[1].at - seen[0].at >= Duration::from_millis(950));
}

#[test]
fn a_response_slower_than_the_timeout_fails_after_its_retries() {
    let server = server_with_samples();
    server.always("20070706", Answer::Slow(Duration::from_secs(4)));
    let workspace = Workspace::new();
    let pipeline = http_pipeline(&workspace, &server, "kinds = [\"AUTH\"]\nretries = 1")
        .to_str()
        .unwrap()
        .to_owned();
    let text = std::fs::read_to_string(&pipeline)
        .unwrap()
        .replace("retries = 2\n", "")
        .replace("timeout_secs = 2", "timeout_secs = 1");
    std::fs::write(&pipeline, text).unwrap();
    let result = run(&workspace, std::path::Path::new(&pipeline), &[]);
    assert_eq!(result.code, 1, "{}", result.all_output());
    assert!(result.stderr.contains("timed out"), "{}", result.stderr);
    assert!(
        result.stderr.contains("gave up after 2 attempts"),
        "{}",
        result.stderr
    );
    assert!(workspace.lake_files().is_empty());
}

#[test]
fn an_html_error_page_with_status_200_is_an_error_not_a_file_of_rejects() {
    let server = server_with_samples();
    server.always("20070706", Answer::HtmlError);
    let workspace = Workspace::new();
    let pipeline = http_pipeline(&workspace, &server, "kinds = [\"AUTH\"]");
    let result = run(&workspace, &pipeline, &[]);
    assert_eq!(result.code, 1, "{}", result.all_output());
    assert!(
        result
            .stderr
            .contains("answered an HTML page (title: \"system error\")"),
        "{}",
        result.stderr
    );
    assert!(workspace.lake_files().is_empty());
    assert!(
        !workspace
            .path(".engine/rejects/test/toss_AUTH_20070706.jsonl")
            .exists()
    );
}

#[test]
fn a_connection_reset_mid_body_is_retried_and_never_loads_half() {
    let server = server_with_samples();
    server.plan("20070706", vec![Answer::ResetMidBody]);
    let workspace = Workspace::new();
    let pipeline = http_pipeline(&workspace, &server, "kinds = [\"AUTH\"]");
    let result = run(&workspace, &pipeline, &[]);
    assert_eq!(result.code, 0, "{}", result.all_output());
    assert_eq!(total_rows(&workspace.read_lake(AUTH)), 4);

    let broken = server_with_samples();
    broken.always("20070706", Answer::ResetMidBody);
    let workspace = Workspace::new();
    let pipeline = http_pipeline(&workspace, &broken, "kinds = [\"AUTH\"]");
    let result = run(&workspace, &pipeline, &[]);
    assert_eq!(result.code, 1, "{}", result.all_output());
    assert!(
        workspace.lake_files().is_empty(),
        "{:?}",
        workspace.lake_files()
    );
}

#[test]
fn a_wrong_mertkey_fails_with_what_the_server_said() {
    let server = server_with_samples();
    let workspace = Workspace::new();
    let pipeline = http_pipeline(&workspace, &server, "kinds = [\"AUTH\"]");
    let result = workspace.engine_with_env(
        &["run", pipeline.to_str().unwrap()],
        &[("TEST_MERTKEY", "not-the-key-7731")],
    );
    assert_eq!(result.code, 1, "{}", result.all_output());
    assert!(
        result.stderr.contains("ERROR: invalid key"),
        "{}",
        result.stderr
    );
    assert!(!result.all_output().contains("not-the-key-7731"));
    assert!(workspace.lake_files().is_empty());
}

#[test]
fn an_empty_body_is_a_day_without_records() {
    let server = Trxdown::start(MERTKEY);
    let workspace = Workspace::new();
    let pipeline = http_pipeline(&workspace, &server, "kinds = [\"REV\"]");
    let result = run(&workspace, &pipeline, &[]);
    assert_eq!(result.code, 0, "{}", result.all_output());
    assert_eq!(total_rows(&workspace.read_lake(REV)), 0);
}

#[test]
fn a_31_day_backfill_with_one_failing_date_loads_the_other_30_and_names_it() {
    let server = Trxdown::start(MERTKEY);
    for day in 1..=31 {
        let body = toss_file(3, "10").replace('\n', "\r\n");
        server.set_body("toss", "TRX", &format!("200707{day:02}"), euc_kr(&body));
    }
    server.always("20070715", Answer::Status(500));
    let workspace = Workspace::new();
    let pipeline = http_pipeline(&workspace, &server, "kinds = [\"AUTH\"]\nconcurrency = 4");
    let result = run(
        &workspace,
        &pipeline,
        &["--from", "2007-07-01", "--to", "2007-07-31"],
    );
    assert_eq!(result.code, 1, "{}", result.all_output());
    assert_eq!(workspace.lake_files().len(), 30);
    assert!(
        result.stderr.contains("error: toss_AUTH_20070715.dat"),
        "{}",
        result.stderr
    );
    assert!(result.stdout.contains("30 loaded"), "{}", result.stdout);

    // The server recovers: the rerun fetches exactly the date that failed.
    server.heal("20070715");
    let before = server.seen().len();
    let rerun = run(
        &workspace,
        &pipeline,
        &["--from", "2007-07-01", "--to", "2007-07-31"],
    );
    assert_eq!(rerun.code, 0, "{}", rerun.all_output());
    let asked: Vec<String> = server.seen()[before..]
        .iter()
        .map(|seen| seen.query["trxdate"].clone())
        .collect();
    assert_eq!(asked, vec!["20070715".to_owned()]);
    assert_eq!(workspace.lake_files().len(), 31);
}

/// A server that answers with what it was sent, as a misconfigured server or a proxy's error
/// page does, and with the secrets in the forms such pages use: per trxdate, the request line
/// and headers with a 500, the request line with a 200, the key and mertkey upper-cased,
/// percent-encoded, base64-encoded, and with their first and last characters cut.
fn echoing_server() -> HttpServer {
    HttpServer::start(|request| {
        let key = key();
        let mut echo = format!("{} {} HTTP/1.1\r\n", request.method, request.target);
        for (name, value) in &request.headers {
            echo.push_str(&format!("{name}: {value}\r\n"));
        }
        let trxdate = request.query().get("trxdate").cloned().unwrap_or_default();
        let (status, body) = match trxdate.as_str() {
            "20070701" => (500, echo),
            "20070702" => (200, echo),
            "20070703" => (
                200,
                format!(
                    "ERROR: key {} does not match mertkey {}",
                    key.to_uppercase(),
                    MERTKEY.to_uppercase()
                ),
            ),
            "20070704" => (
                403,
                format!(
                    "<html><head><title>denied {}</title></head><body>{}</body></html>",
                    percent_all(&key),
                    percent_all(MERTKEY)
                ),
            ),
            "20070705" => (
                200,
                format!(
                    "<html><head><title>{} {}</title></head></html>",
                    base64(key.as_bytes()),
                    base64(MERTKEY.as_bytes())
                ),
            ),
            _ => (
                502,
                format!(
                    "Bad gateway for key={} mertkey={}",
                    &key[1..key.len() - 1],
                    &MERTKEY[1..MERTKEY.len() - 1]
                ),
            ),
        };
        Reply::Send(Response::new(status, "Echo", body).header("Connection", "close"))
    })
}

#[test]
fn a_server_echoing_the_request_never_gets_the_key_shown_or_stored() {
    let server = echoing_server();
    let workspace = Workspace::new();
    let url = server.url("/pg/wmp/outerpage/trxdown.jsp");
    let pipeline = http_pipeline_at(&workspace, &url, "kinds = [\"AUTH\"]");
    let result = run(
        &workspace,
        &pipeline,
        &["--from", "2007-07-01", "--to", "2007-07-06"],
    );
    assert_eq!(result.code, 1, "{}", result.all_output());
    // Each date failed with what its server said, secrets blanked out.
    for date in [
        "20070701", "20070702", "20070703", "20070704", "20070705", "20070706",
    ] {
        assert!(
            result.stderr.contains(&format!("toss_AUTH_{date}.dat")),
            "{}",
            result.stderr
        );
    }
    let status = workspace.engine_with_env(
        &["status", pipeline.to_str().unwrap(), "--json"],
        &[("TEST_MERTKEY", MERTKEY)],
    );
    assert_eq!(status.code, 0, "{}", status.all_output());
    let stored = String::from_utf8_lossy(&everything_written(&workspace)).into_owned();
    assert!(
        workspace.path(".engine/state.sqlite").exists(),
        "the run was recorded"
    );
    for secret in [key().as_str(), MERTKEY] {
        for (place, text) in [
            ("the output", result.all_output()),
            ("status --json", status.all_output()),
            ("the files written", stored.clone()),
        ] {
            if let Some(form) = shown_form_of(secret, &text) {
                panic!("{place} shows {form:?} of {secret:?}:\n{text}");
            }
        }
    }
    // What the servers said is still shown, with the secrets blanked out.
    assert!(result.stderr.contains("key=***"), "{}", result.stderr);
    assert!(status.stdout.contains("***"), "{}", status.stdout);
}

#[test]
fn a_redirect_is_refused_with_its_target_and_the_target_gets_nothing() {
    let target = server_with_samples();
    let target_url = target.url();
    let redirecting = HttpServer::start(move |request| {
        let query = request
            .target
            .split_once('?')
            .map_or("", |(_, query)| query);
        Reply::Send(
            Response::new(302, "Found", "")
                .header("Location", &format!("{target_url}?{query}"))
                .header("Connection", "close"),
        )
    });
    let workspace = Workspace::new();
    let url = redirecting.url("/pg/wmp/outerpage/trxdown.jsp");
    let pipeline = http_pipeline_at(&workspace, &url, "kinds = [\"AUTH\"]");
    let result = run(&workspace, &pipeline, &[]);
    assert_eq!(result.code, 1, "{}", result.all_output());
    assert_eq!(redirecting.requests().len(), 1);
    assert!(target.seen().is_empty(), "the redirect was followed");
    for expected in [
        "HTTP 302",
        "does not follow redirects",
        &target.url(),
        "put the final address in `url`",
    ] {
        assert!(
            result.stderr.contains(expected),
            "{expected:?} missing: {}",
            result.stderr
        );
    }
    assert!(!result.all_output().contains(&key()), "{}", result.stderr);
    assert!(workspace.lake_files().is_empty());
    let status = workspace.engine_with_env(
        &["status", pipeline.to_str().unwrap(), "--json"],
        &[("TEST_MERTKEY", MERTKEY)],
    );
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(status["files"], serde_json::json!([]), "{status:#}");
}

#[test]
fn refetch_downloads_a_closed_day_again_and_loads_only_what_changed() {
    let server = server_with_samples();
    let workspace = Workspace::new();
    let pipeline = http_pipeline(&workspace, &server, "");
    let first = run(&workspace, &pipeline, &[]);
    assert_eq!(first.code, 0, "{}", first.all_output());
    let after_first = server.seen().len();

    // Toss corrects the closed day; a plain run trusts what it loaded and asks nothing.
    let corrected = toss_file(5, "10").replace('\n', "\r\n");
    server.set_body("toss", "TRX", "20070706", euc_kr(&corrected));
    let plain = run(&workspace, &pipeline, &[]);
    assert_eq!(plain.code, 0, "{}", plain.all_output());
    assert_eq!(server.seen().len(), after_first);
    assert_eq!(total_rows(&workspace.read_lake(AUTH)), 4);

    // --refetch downloads both files again: the corrected one is loaded, the other one is
    // recognised by its content and skipped.
    let refetched = run(&workspace, &pipeline, &["--refetch"]);
    assert_eq!(refetched.code, 0, "{}", refetched.all_output());
    assert_eq!(server.seen().len(), after_first + 2);
    assert!(
        refetched.stdout.contains("1 loaded, 1 skipped"),
        "{}",
        refetched.stdout
    );
    assert_eq!(total_rows(&workspace.read_lake(AUTH)), 5);
    assert_eq!(total_rows(&workspace.read_lake(REV)), 3);
}
