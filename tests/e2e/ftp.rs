//! The `ftp` source against a real FTP(S) server (`support::ftp_server`): listing, incremental
//! loads, files that grow while downloaded, dropped data connections, wrong passwords and FTPS;
//! and against `support::mini_ftp` for what libunftp cannot do: a server without MLSD, implicit
//! FTPS, and active mode.

use crate::support::ftp_server::{FtpServer, SERVER_PASSWORD, USER};
use crate::support::mini_ftp::{self, MiniFtp};
use crate::support::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
/// A distinctive wrong password, to be looked for in everything the engine prints.
const WRONG_PASSWORD: &str = "S3cr3t-pw-xyz";

const AUTH: &str = "toss_AUTH_20070706.dat";
const AUTH_FILE: &str = "record_kind=AUTH/trxdate=2007-07-06/toss_AUTH_20070706.parquet";
const REV_FILE: &str = "record_kind=REV/trxdate=2007-07-06/toss_REV_20070706.parquet";

/// An FTP pipeline into `lake/`; `source` adds keys to `[source]`.
fn ftp_pipeline(workspace: &Workspace, port: u16, source: &str) -> PathBuf {
    workspace.pipeline(
        "pipeline.toml",
        &format!(
            r#"[pipeline]
name = "test"
dates = "all"

[source]
type = "ftp"
host = "127.0.0.1"
port = {port}
user = "{USER}"
password = "${{FTP_PASSWORD}}"
timeout_secs = 5
{source}

[[sinks]]
type = "parquet"
path = "lake"
"#
        ),
    )
}

const FAST_RETRIES: &str = "retries = 2\nretry_base_ms = 20";

fn run_with(workspace: &Workspace, pipeline: &Path, password: &str, extra: &[&str]) -> Run {
    let mut args = vec!["run", pipeline.to_str().unwrap()];
    args.extend_from_slice(extra);
    workspace.engine_with_env(&args, &[("FTP_PASSWORD", password)])
}

fn run(workspace: &Workspace, pipeline: &Path) -> Run {
    run_with(workspace, pipeline, SERVER_PASSWORD, &[])
}

#[test]
fn lists_and_loads_toss_files_and_ignores_every_other_name() {
    let server = FtpServer::start();
    server.put_samples();
    // Names that are not plain Toss files, on the server beside them.
    server.put("README.txt", b"not a Toss file");
    server.put("toss_AUTH_20070706.dat.part", b"half an upload");
    server.put("to ss_AUTH_20070707.dat", b"a space in the mid");
    server.put("toss;x_REV_20070707.dat", b"odd characters");
    std::fs::create_dir(server.root.path().join("toss_REV_20070708.dat")).unwrap();
    let workspace = Workspace::new();
    let pipeline = ftp_pipeline(&workspace, server.port, FAST_RETRIES);

    let first = run(&workspace, &pipeline);
    assert_eq!(first.code, 0, "{}", first.all_output());
    assert_eq!(workspace.lake_files(), vec![AUTH_FILE, REV_FILE]);
    let auth = workspace.read_lake(AUTH_FILE);
    assert_eq!(total_rows(&auth), 4);
    assert_eq!(int64s(&auth, "amount"), [15000, 35000, 319000, 91000]);
    assert_eq!(
        strings(&auth, "financename"),
        ["국민", "비씨", "신한", "광주"].map(|name| Some(name.to_owned())),
        "the EUC-KR sample arrives byte-exact (binary transfer)"
    );
    assert_eq!(strings(&auth, "source_file")[0].as_deref(), Some(AUTH));
    let rev = workspace.read_lake(REV_FILE);
    assert_eq!(int64s(&rev, "source_line"), [1, 2, 4]);
    assert_eq!(server.retrs(), 2, "only the two Toss files were downloaded");
    // Nothing was created locally under a remote name.
    let mut top: Vec<String> = std::fs::read_dir(workspace.dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, [".engine", "inbox", "lake", "pipeline.toml"]);
    assert!(
        !first.all_output().contains(SERVER_PASSWORD),
        "{}",
        first.all_output()
    );
}

#[test]
fn an_unchanged_file_costs_a_listing_line_and_no_download() {
    let server = FtpServer::start();
    server.put_samples();
    let workspace = Workspace::new();
    let pipeline = ftp_pipeline(&workspace, server.port, FAST_RETRIES);
    assert_eq!(run(&workspace, &pipeline).code, 0);
    assert_eq!(server.retrs(), 2);

    let second = run(&workspace, &pipeline);
    assert_eq!(second.code, 0, "{}", second.all_output());
    assert!(
        second.stdout.contains("0 loaded, 2 skipped"),
        "{}",
        second.stdout
    );
    assert_eq!(server.retrs(), 2, "the second run downloaded nothing");
}

#[test]
fn a_longer_new_version_replaces_the_old_one() {
    let server = FtpServer::start();
    server.put(AUTH, toss_file(3, "10").as_bytes());
    let workspace = Workspace::new();
    let pipeline = ftp_pipeline(&workspace, server.port, FAST_RETRIES);
    assert_eq!(run(&workspace, &pipeline).code, 0);
    assert_eq!(total_rows(&workspace.read_lake(AUTH_FILE)), 3);

    server.put(AUTH, toss_file(5, "10").as_bytes());
    let again = run(&workspace, &pipeline);
    assert_eq!(again.code, 0, "{}", again.all_output());
    assert!(again.stdout.contains("1 loaded"), "{}", again.stdout);
    assert_eq!(workspace.lake_files(), vec![AUTH_FILE]);
    let auth = workspace.read_lake(AUTH_FILE);
    assert_eq!(total_rows(&auth), 5);
    let mut transactions = strings(&auth, "transaction");
    transactions.sort();
    transactions.dedup();
    assert_eq!(transactions.len(), 5, "each record once");
}

#[test]
fn a_file_that_grows_while_it_is_downloaded_is_deferred_never_loaded_half() {
    let server = FtpServer::start();
    server.put(AUTH, toss_file(3, "10").as_bytes());
    let full = toss_file(5, "10");
    *server.faults.grow_once.lock().unwrap() =
        Some((AUTH.to_owned(), full[toss_file(3, "10").len()..].to_owned()));
    let workspace = Workspace::new();
    let pipeline = ftp_pipeline(&workspace, server.port, FAST_RETRIES);

    let first = run(&workspace, &pipeline);
    assert_eq!(
        first.code,
        0,
        "a deferral is not a failure: {}",
        first.all_output()
    );
    assert!(first.stdout.contains("deferred"), "{}", first.stdout);
    assert!(
        first.all_output().contains("changed during download"),
        "{}",
        first.all_output()
    );
    assert_eq!(
        workspace.lake_files(),
        Vec::<String>::new(),
        "nothing half-loaded"
    );
    assert_eq!(server.retrs(), 2, "looked at once more after a pause");

    let later = run(&workspace, &pipeline);
    assert_eq!(later.code, 0, "{}", later.all_output());
    assert!(later.stdout.contains("1 loaded"), "{}", later.stdout);
    assert_eq!(total_rows(&workspace.read_lake(AUTH_FILE)), 5);
}

#[test]
fn a_wrong_password_fails_the_login_and_is_never_shown() {
    let server = FtpServer::start();
    server.put_samples();
    let workspace = Workspace::new();
    let pipeline = ftp_pipeline(&workspace, server.port, FAST_RETRIES);
    // -vv: even the most detailed log must not carry it.
    let run = run_with(&workspace, &pipeline, WRONG_PASSWORD, &["-vv"]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    let address = format!("127.0.0.1:{}", server.port);
    assert!(run.stderr.contains(&address), "{}", run.stderr);
    assert!(run.stderr.contains("login failed"), "{}", run.stderr);
    assert!(!run.stdout.contains(WRONG_PASSWORD), "{}", run.stdout);
    assert!(!run.stderr.contains(WRONG_PASSWORD), "{}", run.stderr);
    assert_eq!(server.retrs(), 0);
    assert_eq!(workspace.lake_files(), Vec::<String>::new());
}

#[test]
fn a_dropped_data_connection_is_retried_and_the_file_loads_once() {
    let server = FtpServer::start();
    let content = toss_file(50, "10");
    server.put(AUTH, content.as_bytes());
    *server.faults.drop_after.lock().unwrap() = Some((700, 1));
    let workspace = Workspace::new();
    let pipeline = ftp_pipeline(&workspace, server.port, FAST_RETRIES);
    let run = run(&workspace, &pipeline);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert_eq!(server.retrs(), 2, "one broken download, one whole one");
    assert!(run.stdout.contains("1 loaded"), "{}", run.stdout);
    let auth = workspace.read_lake(AUTH_FILE);
    assert_eq!(total_rows(&auth), 50);
    assert_eq!(int64s(&auth, "source_line"), (1..=50).collect::<Vec<i64>>());
}

#[test]
fn a_data_connection_that_always_drops_fails_clearly_with_nothing_loaded() {
    let server = FtpServer::start();
    server.put(AUTH, toss_file(50, "10").as_bytes());
    *server.faults.drop_after.lock().unwrap() = Some((700, usize::MAX));
    let workspace = Workspace::new();
    let pipeline = ftp_pipeline(&workspace, server.port, FAST_RETRIES);
    let run = run(&workspace, &pipeline);
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert_eq!(server.retrs(), 3, "the first try and two retries");
    let output = run.all_output();
    assert!(output.contains(AUTH), "{output}");
    assert!(
        output.contains(&format!("127.0.0.1:{}", server.port)),
        "{output}"
    );
    assert!(output.contains("after 3 tries"), "{output}");
    assert!(output.contains("FAILED"), "{output}");
    assert_eq!(workspace.lake_files(), Vec::<String>::new());
}

#[test]
fn a_server_that_is_down_or_silent_fails_quickly_naming_it() {
    let workspace = Workspace::new();
    let port = free_port();
    let pipeline = ftp_pipeline(&workspace, port, "retries = 1\nretry_base_ms = 20");
    let started = Instant::now();
    let down = run(&workspace, &pipeline);
    assert_eq!(down.code, 1, "{}", down.all_output());
    assert!(
        down.stderr.contains(&format!("127.0.0.1:{port}")),
        "{}",
        down.stderr
    );
    assert!(down.stderr.contains("cannot connect"), "{}", down.stderr);
    assert!(started.elapsed() < Duration::from_secs(10));

    // Accepts the connection but never greets: the timeout ends the wait.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let keep = std::thread::spawn(move || {
        let held: Vec<_> = silent.incoming().take(1).collect();
        std::thread::sleep(Duration::from_secs(3));
        drop(held);
    });
    let workspace = Workspace::new();
    let pipeline = workspace.pipeline(
        "pipeline.toml",
        &std::fs::read_to_string(ftp_pipeline(&workspace, port, "retries = 0"))
            .unwrap()
            .replace("timeout_secs = 5", "timeout_secs = 1"),
    );
    let started = Instant::now();
    let silent = run(&workspace, &pipeline);
    assert_eq!(silent.code, 1, "{}", silent.all_output());
    assert!(
        silent
            .stderr
            .contains(&format!("no answer from 127.0.0.1:{port} within 1 s")),
        "{}",
        silent.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    keep.join().unwrap();
}

#[test]
fn ftps_verifies_the_server_certificate() {
    let pki = TestPki::new();
    let server = FtpServer::start_with(Some(&pki));
    server.put_samples();

    // Trusted through ca_file: loads.
    let workspace = Workspace::new();
    let pipeline = ftp_pipeline(
        &workspace,
        server.port,
        &format!(
            "tls = \"explicit\"\nca_file = \"{}\"\n{FAST_RETRIES}",
            pki.path("ca.pem").display()
        ),
    );
    let trusted = run(&workspace, &pipeline);
    assert_eq!(trusted.code, 0, "{}", trusted.all_output());
    assert_eq!(workspace.lake_files(), vec![AUTH_FILE, REV_FILE]);
    assert_eq!(total_rows(&workspace.read_lake(AUTH_FILE)), 4);

    // Not trusted, and verification not switched off: refused, nothing loaded.
    let workspace = Workspace::new();
    let pipeline = ftp_pipeline(
        &workspace,
        server.port,
        &format!("tls = \"explicit\"\n{FAST_RETRIES}"),
    );
    let untrusted = run(&workspace, &pipeline);
    assert_eq!(untrusted.code, 1, "{}", untrusted.all_output());
    assert!(
        untrusted.stderr.contains("certificate"),
        "{}",
        untrusted.stderr
    );
    assert!(untrusted.stderr.contains("ca_file"), "{}", untrusted.stderr);
    assert!(
        untrusted
            .stderr
            .contains(&format!("127.0.0.1:{}", server.port)),
        "{}",
        untrusted.stderr
    );
    assert_eq!(workspace.lake_files(), Vec::<String>::new());

    // Switched off in writing: loads, with a warning.
    let workspace = Workspace::new();
    let pipeline = ftp_pipeline(
        &workspace,
        server.port,
        &format!("tls = \"explicit\"\ntls_insecure = true\n{FAST_RETRIES}"),
    );
    let insecure = run(&workspace, &pipeline);
    assert_eq!(insecure.code, 0, "{}", insecure.all_output());
    assert!(
        insecure.stderr.contains("NOT verified"),
        "{}",
        insecure.stderr
    );
    assert_eq!(workspace.lake_files(), vec![AUTH_FILE, REV_FILE]);
}

#[test]
fn the_shipped_ftp_pipeline_loads_over_ftps_through_the_plugins() {
    let pki = TestPki::new();
    let server = FtpServer::start_with(Some(&pki));
    server.put_samples();
    let workspace = Workspace::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let shipped = std::fs::read_to_string(root.join("pipelines/ftp.toml")).unwrap();
    let ca_line = "# ca_file = \"/etc/engine/ftp-ca.pem\"";
    assert!(shipped.contains(ca_line) && shipped.contains("port = 21"));
    let text = shipped
        .replace("dates = \"yesterday\"", "dates = \"all\"")
        .replace("port = 21", &format!("port = {}", server.port))
        .replace(
            ca_line,
            &format!("ca_file = \"{}\"", pki.path("ca.pem").display()),
        )
        .replace(
            "target/plugins/wasm32-wasip2/release",
            env!("ENGINE_PLUGIN_DIR"),
        );
    let pipeline = workspace.pipeline("ftp.toml", &text);
    let run = workspace.engine_with_env(
        &["run", pipeline.to_str().unwrap()],
        &[
            ("FTP_HOST", "127.0.0.1"),
            ("FTP_USER", USER),
            ("FTP_PASSWORD", SERVER_PASSWORD),
            ("BUYER_HASH_KEY", "test-key"),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all_output());
    let auth = read_parquet(&workspace.path("lake/toss").join(AUTH_FILE));
    assert_eq!(total_rows(&auth), 4);
    assert_eq!(
        strings(&auth, "method"),
        ["카드", "카드", "계좌이체", "계좌이체"].map(|m| Some(m.to_owned()))
    );
    let rev = read_parquet(&workspace.path("lake/toss").join(REV_FILE));
    assert_eq!(total_rows(&rev), 3);
    assert!(!run.all_output().contains(SERVER_PASSWORD));
}

/// The [`MiniFtp`] server with the two shipped samples, modified at noon on 2007-07-06.
fn mini_server_with_samples(pki: Option<&TestPki>) -> MiniFtp {
    let server = MiniFtp::start(pki);
    for name in [AUTH, "toss_REV_20070706.dat"] {
        server.put(
            name,
            &std::fs::read(sample(name)).unwrap(),
            "20070706120000",
        );
    }
    server
}

fn count(commands: &[String], verb: &str) -> usize {
    commands.iter().filter(|command| *command == verb).count()
}

fn run_mini(workspace: &Workspace, pipeline: &Path) -> Run {
    run_with(workspace, pipeline, mini_ftp::PASSWORD, &[])
}

#[test]
fn without_mlsd_the_listing_uses_nlst_size_and_mdtm() {
    let server = mini_server_with_samples(None);
    let workspace = Workspace::new();
    let pipeline = ftp_pipeline(&workspace, server.port, FAST_RETRIES);
    let pipeline = pipeline.as_path();
    let first = run_mini(&workspace, pipeline);
    assert_eq!(first.code, 0, "{}", first.all_output());
    assert_eq!(workspace.lake_files(), vec![AUTH_FILE, REV_FILE]);
    assert_eq!(total_rows(&workspace.read_lake(AUTH_FILE)), 4);
    let commands = server.commands();
    assert_eq!(count(&commands, "MLSD"), 0, "{commands:?}");
    assert!(count(&commands, "NLST") >= 1, "{commands:?}");
    assert!(count(&commands, "SIZE") >= 2, "{commands:?}");
    assert!(count(&commands, "MDTM") >= 2, "{commands:?}");
    assert_eq!(count(&commands, "RETR"), 2, "{commands:?}");

    // The versions came from SIZE and MDTM: an unchanged folder downloads nothing.
    let second = run_mini(&workspace, pipeline);
    assert_eq!(second.code, 0, "{}", second.all_output());
    assert!(
        second.stdout.contains("0 loaded, 2 skipped"),
        "{}",
        second.stdout
    );
    assert_eq!(count(&server.commands(), "RETR"), 2);

    // A new version (longer, later) is seen through them too, and replaces the old one.
    server.put(AUTH, toss_file(5, "10").as_bytes(), "20070706124500");
    let third = run_mini(&workspace, pipeline);
    assert_eq!(third.code, 0, "{}", third.all_output());
    assert!(third.stdout.contains("1 loaded"), "{}", third.stdout);
    assert_eq!(total_rows(&workspace.read_lake(AUTH_FILE)), 5);
}

#[test]
fn implicit_ftps_speaks_tls_from_the_first_byte() {
    let pki = TestPki::new();
    let server = mini_server_with_samples(Some(&pki));
    let workspace = Workspace::new();
    let pipeline = ftp_pipeline(
        &workspace,
        server.port,
        &format!(
            "tls = \"implicit\"\nca_file = \"{}\"\n{FAST_RETRIES}",
            pki.path("ca.pem").display()
        ),
    );
    let trusted = run_mini(&workspace, &pipeline);
    assert_eq!(trusted.code, 0, "{}", trusted.all_output());
    assert_eq!(workspace.lake_files(), vec![AUTH_FILE, REV_FILE]);
    assert_eq!(total_rows(&workspace.read_lake(AUTH_FILE)), 4);
    let commands = server.commands();
    assert_eq!(count(&commands, "RETR"), 2, "{commands:?}");
    assert_eq!(count(&commands, "AUTH"), 0, "no AUTH TLS: {commands:?}");

    // The TLS is real: without the CA the certificate is refused and nothing is loaded.
    let workspace = Workspace::new();
    let pipeline = ftp_pipeline(
        &workspace,
        server.port,
        &format!("tls = \"implicit\"\n{FAST_RETRIES}"),
    );
    let untrusted = run_mini(&workspace, &pipeline);
    assert_eq!(untrusted.code, 1, "{}", untrusted.all_output());
    assert!(
        untrusted.stderr.contains("certificate"),
        "{}",
        untrusted.stderr
    );
    assert!(workspace.lake_files().is_empty());
}

#[test]
fn active_mode_lets_the_server_open_the_data_connections() {
    let server = mini_server_with_samples(None);
    let workspace = Workspace::new();
    let pipeline = ftp_pipeline(
        &workspace,
        server.port,
        &format!("passive = false\n{FAST_RETRIES}"),
    );
    let result = run_mini(&workspace, &pipeline);
    assert_eq!(result.code, 0, "{}", result.all_output());
    assert_eq!(workspace.lake_files(), vec![AUTH_FILE, REV_FILE]);
    assert_eq!(total_rows(&workspace.read_lake(AUTH_FILE)), 4);
    let commands = server.commands();
    assert_eq!(
        count(&commands, "PASV") + count(&commands, "EPSV"),
        0,
        "{commands:?}"
    );
    // One data connection for the listing and one per file, each announced by PORT.
    assert_eq!(count(&commands, "PORT"), 3, "{commands:?}");
}
