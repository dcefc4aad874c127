//! The `ftp` source against a real FTP(S) server: libunftp, started inside the test process on
//! 127.0.0.1, serving a temporary folder through a storage wrapper that counts RETRs and can
//! misbehave on request (a file that grows while it is downloaded, a data connection that drops).

use crate::support::*;
use libunftp::ServerBuilder;
use std::fmt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, ReadBuf};
use unftp_core::auth::{AuthenticationError, Authenticator, Credentials, DefaultUser, Principal};
use unftp_core::storage::{Fileinfo, StorageBackend};
use unftp_sbe_fs::{Filesystem, Meta};

const USER: &str = "toss";
/// What the server accepts.
const SERVER_PASSWORD: &str = "right-pw-4711";
/// A distinctive wrong password, to be looked for in everything the engine prints.
const WRONG_PASSWORD: &str = "S3cr3t-pw-xyz";

const AUTH: &str = "toss_AUTH_20070706.dat";
const REV: &str = "toss_REV_20070706.dat";
const AUTH_FILE: &str = "record_kind=AUTH/trxdate=2007-07-06/toss_AUTH_20070706.parquet";
const REV_FILE: &str = "record_kind=REV/trxdate=2007-07-06/toss_REV_20070706.parquet";

/// What the server does wrong, set by a test.
#[derive(Default)]
struct Faults {
    /// RETRs the server received.
    retrs: AtomicUsize,
    /// On the first RETR of this file, append this text to it before sending it.
    grow_once: Mutex<Option<(String, String)>>,
    /// The next `n` RETRs drop the data connection after this many bytes.
    drop_after: Mutex<Option<(u64, usize)>>,
}

struct Storage {
    inner: Filesystem,
    root: PathBuf,
    faults: Arc<Faults>,
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage").field("root", &self.root).finish()
    }
}

#[async_trait::async_trait]
impl StorageBackend<DefaultUser> for Storage {
    type Metadata = Meta;

    fn enter(&mut self, user: &DefaultUser) -> std::io::Result<()> {
        StorageBackend::<DefaultUser>::enter(&mut self.inner, user)
    }

    fn supported_features(&self) -> u32 {
        StorageBackend::<DefaultUser>::supported_features(&self.inner)
    }

    async fn metadata<P: AsRef<Path> + Send + fmt::Debug>(
        &self,
        user: &DefaultUser,
        path: P,
    ) -> unftp_core::storage::Result<Meta> {
        self.inner.metadata(user, path).await
    }

    async fn list<P: AsRef<Path> + Send + fmt::Debug>(
        &self,
        user: &DefaultUser,
        path: P,
    ) -> unftp_core::storage::Result<Vec<Fileinfo<PathBuf, Meta>>> {
        self.inner.list(user, path).await
    }

    async fn get<P: AsRef<Path> + Send + fmt::Debug>(
        &self,
        user: &DefaultUser,
        path: P,
        start_pos: u64,
    ) -> unftp_core::storage::Result<Box<dyn AsyncRead + Send + Sync + Unpin>> {
        self.faults.retrs.fetch_add(1, Ordering::SeqCst);
        let name = path
            .as_ref()
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let grow = {
            let mut grow_once = self.faults.grow_once.lock().unwrap();
            match grow_once.as_ref() {
                Some((file, _)) if *file == name => grow_once.take(),
                _ => None,
            }
        };
        if let Some((file, more)) = grow {
            use std::io::Write;
            let mut handle = std::fs::OpenOptions::new()
                .append(true)
                .open(self.root.join(file))
                .unwrap();
            handle.write_all(more.as_bytes()).unwrap();
        }
        let reader = self.inner.get(user, path, start_pos).await?;
        let drop_after = {
            let mut drop_after = self.faults.drop_after.lock().unwrap();
            match drop_after.as_mut() {
                Some((bytes, times)) if *times > 0 => {
                    *times -= 1;
                    Some(*bytes)
                }
                _ => None,
            }
        };
        Ok(match drop_after {
            Some(left) => Box::new(DroppingReader {
                inner: reader,
                left,
            }),
            None => reader,
        })
    }

    async fn put<
        P: AsRef<Path> + Send + fmt::Debug,
        R: AsyncRead + Send + Sync + Unpin + 'static,
    >(
        &self,
        user: &DefaultUser,
        input: R,
        path: P,
        start_pos: u64,
    ) -> unftp_core::storage::Result<u64> {
        self.inner.put(user, input, path, start_pos).await
    }

    async fn del<P: AsRef<Path> + Send + fmt::Debug>(
        &self,
        user: &DefaultUser,
        path: P,
    ) -> unftp_core::storage::Result<()> {
        self.inner.del(user, path).await
    }

    async fn mkd<P: AsRef<Path> + Send + fmt::Debug>(
        &self,
        user: &DefaultUser,
        path: P,
    ) -> unftp_core::storage::Result<()> {
        self.inner.mkd(user, path).await
    }

    async fn rename<P: AsRef<Path> + Send + fmt::Debug>(
        &self,
        user: &DefaultUser,
        from: P,
        to: P,
    ) -> unftp_core::storage::Result<()> {
        self.inner.rename(user, from, to).await
    }

    async fn rmd<P: AsRef<Path> + Send + fmt::Debug>(
        &self,
        user: &DefaultUser,
        path: P,
    ) -> unftp_core::storage::Result<()> {
        self.inner.rmd(user, path).await
    }

    async fn cwd<P: AsRef<Path> + Send + fmt::Debug>(
        &self,
        user: &DefaultUser,
        path: P,
    ) -> unftp_core::storage::Result<()> {
        self.inner.cwd(user, path).await
    }
}

/// Passes `left` bytes, then fails as a dropped connection does.
struct DroppingReader {
    inner: Box<dyn AsyncRead + Send + Sync + Unpin>,
    left: u64,
}

impl AsyncRead for DroppingReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.left == 0 {
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "test: the connection dropped",
            )));
        }
        let max = (self.left as usize).min(buf.remaining());
        let mut limited = ReadBuf::new(&mut buf.initialize_unfilled()[..max]);
        match Pin::new(&mut self.inner).poll_read(cx, &mut limited) {
            Poll::Ready(Ok(())) => {
                let read = limited.filled().len();
                buf.advance(read);
                self.left -= read as u64;
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

#[derive(Debug)]
struct OneUser;

#[async_trait::async_trait]
impl Authenticator for OneUser {
    async fn authenticate(
        &self,
        username: &str,
        creds: &Credentials,
    ) -> Result<Principal, AuthenticationError> {
        if username != USER {
            return Err(AuthenticationError::BadUser);
        }
        if creds.password.as_deref() != Some(SERVER_PASSWORD) {
            return Err(AuthenticationError::BadPassword);
        }
        Ok(Principal {
            username: username.to_owned(),
        })
    }
}

/// A running libunftp server on 127.0.0.1, stopped when dropped.
struct FtpServer {
    port: u16,
    root: tempfile::TempDir,
    faults: Arc<Faults>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FtpServer {
    fn start() -> Self {
        Self::start_with(None)
    }

    fn start_with(pki: Option<&TestPki>) -> Self {
        let root = tempfile::tempdir().unwrap();
        let faults = Arc::new(Faults::default());
        let port = free_port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, is_ready) = std::sync::mpsc::channel::<()>();
        let serve_root = root.path().to_path_buf();
        let serve_faults = Arc::clone(&faults);
        let tls = pki.map(|pki| (pki.path("server.pem"), pki.path("server.key")));
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let storage_root = serve_root.clone();
                let mut builder = ServerBuilder::with_authenticator(
                    Box::new(move || Storage {
                        inner: Filesystem::new(storage_root.clone()).unwrap(),
                        root: storage_root.clone(),
                        faults: Arc::clone(&serve_faults),
                    }),
                    Arc::new(OneUser),
                )
                .greeting("engine test server");
                if let Some((cert, key)) = tls {
                    builder = builder.ftps(cert, key);
                }
                let server = builder.build().unwrap();
                let _ = ready.send(());
                tokio::select! {
                    result = server.listen(format!("127.0.0.1:{port}")) => {
                        result.expect("the test FTP server runs");
                    }
                    _ = stopped => {}
                }
            });
        });
        is_ready.recv().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the test FTP server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        FtpServer {
            port,
            root,
            faults,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn put(&self, name: &str, content: &[u8]) {
        std::fs::write(self.root.path().join(name), content).unwrap();
    }

    fn put_samples(&self) {
        for name in [AUTH, REV] {
            self.put(name, &std::fs::read(sample(name)).unwrap());
        }
    }

    fn retrs(&self) -> usize {
        self.faults.retrs.load(Ordering::SeqCst)
    }
}

impl Drop for FtpServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

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
