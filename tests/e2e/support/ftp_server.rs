//! A real FTP(S) server for the `ftp` source's tests: libunftp, started inside the test process
//! on 127.0.0.1, serving a temporary folder through a storage wrapper that counts RETRs and can
//! misbehave on request (a file that grows while it is downloaded, a data connection that drops).
//! It accepts one user, [`USER`] with [`SERVER_PASSWORD`], and stops when dropped.

use super::{TestPki, free_port, sample};
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

/// The one user the server knows.
pub const USER: &str = "toss";
/// What the server accepts.
pub const SERVER_PASSWORD: &str = "right-pw-4711";
/// The shipped sample files [`FtpServer::put_samples`] serves.
const SAMPLES: [&str; 2] = ["toss_AUTH_20070706.dat", "toss_REV_20070706.dat"];

/// What the server does wrong, set by a test.
#[derive(Default)]
pub struct Faults {
    /// RETRs the server received.
    pub retrs: AtomicUsize,
    /// On the first RETR of this file, append this text to it before sending it.
    pub grow_once: Mutex<Option<(String, String)>>,
    /// The next `n` RETRs drop the data connection after this many bytes.
    pub drop_after: Mutex<Option<(u64, usize)>>,
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
pub struct FtpServer {
    pub port: u16,
    pub root: tempfile::TempDir,
    pub faults: Arc<Faults>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FtpServer {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A server that offers FTPS with the certificate `pki` made, when given.
    pub fn start_with(pki: Option<&TestPki>) -> Self {
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

    /// Writes a file into the served folder.
    pub fn put(&self, name: &str, content: &[u8]) {
        std::fs::write(self.root.path().join(name), content).unwrap();
    }

    /// Serves the shipped sample files of 2007-07-06.
    pub fn put_samples(&self) {
        for name in SAMPLES {
            self.put(name, &std::fs::read(sample(name)).unwrap());
        }
    }

    /// RETRs the server received so far.
    pub fn retrs(&self) -> usize {
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
