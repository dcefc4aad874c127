//! `type = "ftp"`: the merchant's FTP server that Toss pushes its files to, read as an FTP (or
//! FTPS) client.
//!
//! The listing says each file's size and modification time (MLSD where the server has it, else
//! NLST with SIZE and MDTM), so a file whose version was loaded before costs one listing line and
//! no download. A file is downloaded into an anonymous temporary file and handed over only when
//! the bytes received, the server's size after the download and the listing agree: Toss rewrites
//! each day's file every 20 minutes, and a file that moves while it is downloaded is looked at
//! once more after a short pause and otherwise deferred to a later run, never loaded half. A
//! connection that drops is retried with exponential backoff; a refused login or an untrusted
//! certificate is not (retrying cannot fix it).
//!
//! Remote names are never used as local paths: only names [`TossFileName::parse`] accepts are
//! looked at, and the download goes to an unnamed temporary file. The password never reaches a
//! log line or an error: it is held in a type that prints `***`, and every server reply or
//! library error shown to the user has it replaced by `***` first.

use super::{
    AfterRead, BuildSource, Fetched, FileFilter, Listing, Source, TossFileName, toss_file_unit,
};
use crate::config::{EnvString, Secret, deserialize_kinds};
use crate::dates::DateSelection;
use crate::error::{Error, Result};
use crate::toss::RecordKind;
use crate::retry::backoff;
use crate::unit::{FileVersion, LoadUnit};
use serde::Deserialize;
use std::future::Future;
use std::io::{Seek, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use suppaftp::tokio::{AsyncRustlsConnector, AsyncRustlsFtpStream};
use suppaftp::tokio_rustls::TlsConnector;
use suppaftp::tokio_rustls::rustls;
use suppaftp::types::FileType;
use suppaftp::{FtpError, Status};
use tokio::io::AsyncReadExt;
use xxhash_rust::xxh3::Xxh3;

/// `[source]` with `type = "ftp"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FtpSourceConfig {
    /// The FTP server's host name or address.
    pub host: EnvString,
    /// Default 21, or 990 with `tls = "implicit"`.
    #[serde(default)]
    pub port: Option<u16>,
    pub user: EnvString,
    /// From the environment: `password = "${FTP_PASSWORD}"`.
    pub password: Secret,
    /// The folder on the server holding `{mid}_{AUTH|REV}_{yyyymmdd}.dat` (default "/").
    #[serde(default)]
    pub dir: Option<EnvString>,
    #[serde(default)]
    pub tls: TlsMode,
    /// Skip certificate verification (a warning is logged on every run).
    #[serde(default)]
    pub tls_insecure: bool,
    /// A PEM file with the certificate authority (or the self-signed certificate) to trust besides
    /// the system's roots.
    #[serde(default)]
    pub ca_file: Option<EnvString>,
    /// Passive mode (the default; the client opens the data connections).
    #[serde(default = "default_true")]
    pub passive: bool,
    /// How long to wait for the server to connect, answer a command or send more data.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// How often a dropped connection or transfer is tried again.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// The first retry waits this long, each later one twice as long (±25 %).
    #[serde(default = "default_retry_base_ms")]
    pub retry_base_ms: u64,
    /// Load only these merchant ids (default: all).
    #[serde(default)]
    pub mids: Option<Vec<EnvString>>,
    /// Load only these kinds (default: both).
    #[serde(default, deserialize_with = "deserialize_kinds")]
    pub kinds: Option<Vec<RecordKind>>,
}

/// `tls = "none" | "explicit" | "implicit"`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain FTP: the password crosses the network readable.
    #[default]
    None,
    /// `AUTH TLS` on the normal port, before logging in (FTPES).
    Explicit,
    /// TLS from the first byte, usually on port 990.
    Implicit,
}

fn default_true() -> bool {
    true
}

fn default_timeout_secs() -> u64 {
    30
}

fn default_retries() -> u32 {
    3
}

fn default_retry_base_ms() -> u64 {
    500
}

/// How long a file whose size moved during its download is left alone before one more look.
const SETTLE_PAUSE: Duration = Duration::from_secs(1);

/// Bytes read from the data connection at a time.
const READ_CHUNK: usize = 64 * 1024;

impl BuildSource for FtpSourceConfig {
    fn build(&self) -> Result<Arc<dyn Source>> {
        let at = |key: &str| format!("[source] {key}");
        if self.host.trim().is_empty() {
            return Err(Error::config(
                at("host"),
                "host is empty; name the FTP server",
            ));
        }
        if self.user.is_empty() {
            return Err(Error::config(at("user"), "user is empty"));
        }
        if self.dir.as_ref().is_some_and(|dir| dir.trim().is_empty()) {
            return Err(Error::config(
                at("dir"),
                "dir is empty; leave it out for the login folder \"/\"",
            ));
        }
        if self.port == Some(0) {
            return Err(Error::config(at("port"), "port must be 1 to 65535"));
        }
        if !(1..=3600).contains(&self.timeout_secs) {
            return Err(Error::config(
                at("timeout_secs"),
                "timeout_secs must be between 1 and 3600 seconds",
            ));
        }
        if self.retries > 20 {
            return Err(Error::config(at("retries"), "retries must be 0 to 20"));
        }
        if self.retry_base_ms > 60_000 {
            return Err(Error::config(
                at("retry_base_ms"),
                "retry_base_ms must be at most 60000",
            ));
        }
        if self.tls == TlsMode::None && (self.tls_insecure || self.ca_file.is_some()) {
            let key = if self.tls_insecure {
                "tls_insecure"
            } else {
                "ca_file"
            };
            return Err(Error::config(
                at(key),
                format!("{key} only applies to FTPS; set tls = \"explicit\" or \"implicit\""),
            ));
        }
        if self.tls_insecure && self.ca_file.is_some() {
            return Err(Error::config(
                at("tls_insecure"),
                "tls_insecure skips verification, so ca_file would be ignored; keep one of them",
            ));
        }
        let tls = match self.tls {
            TlsMode::None => None,
            _ => Some(crate::tls::client_config(
                "[source]",
                self.ca_file.as_ref().map(|path| path.to_path()),
                self.tls_insecure,
            )?),
        };
        let port = self.port.unwrap_or(match self.tls {
            TlsMode::Implicit => 990,
            _ => 21,
        });
        Ok(Arc::new(FtpSource {
            host: self.host.trim().to_owned(),
            port,
            user: self.user.to_string(),
            password: self.password.clone(),
            dir: self
                .dir
                .as_ref()
                .map_or_else(|| "/".to_owned(), |dir| dir.to_string()),
            tls_mode: self.tls,
            tls,
            tls_insecure: self.tls_insecure,
            passive: self.passive,
            timeout: Duration::from_secs(self.timeout_secs),
            retries: self.retries,
            backoff: Duration::from_millis(self.retry_base_ms),
            filter: FileFilter::from_keys(&self.mids, &self.kinds),
            idle: Mutex::new(None),
        }))
    }
}

struct FtpSource {
    host: String,
    port: u16,
    user: String,
    password: Secret,
    dir: String,
    tls_mode: TlsMode,
    tls: Option<Arc<rustls::ClientConfig>>,
    tls_insecure: bool,
    passive: bool,
    timeout: Duration,
    retries: u32,
    backoff: Duration,
    filter: FileFilter,
    /// A logged-in session between operations; checked with NOOP before it is used again, since
    /// servers close idle control connections.
    idle: Mutex<Option<Session>>,
}

/// A logged-in control connection in `dir`, and what the server said it can do.
struct Session {
    ftp: AsyncRustlsFtpStream,
    mlsd: bool,
}

/// Why an attempt failed: worth another try (a connection broke), or not (the server refused).
enum Failure {
    Retry(String),
    Stop(Error),
}

/// A finished download, before it is checked against the listing.
struct Download {
    file: std::fs::File,
    bytes: u64,
    hash: u128,
    size_now: Option<u64>,
    modified_now: Option<i64>,
}

impl FtpSource {
    fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// `text` with the password replaced by `***`: for everything a server or a library says.
    fn scrub(&self, text: &str) -> String {
        let password = self.password.expose();
        if password.is_empty() {
            text.to_owned()
        } else {
            text.replace(password, "***")
        }
    }

    /// A library error in words, password removed.
    fn explain(&self, err: &FtpError) -> String {
        let text = match err {
            FtpError::UnexpectedResponse(response) => {
                let body = String::from_utf8_lossy(&response.body);
                format!("the server answered {}", body.trim())
            }
            other => other.to_string(),
        };
        self.scrub(&text)
    }

    fn error(&self, message: String) -> Error {
        Error::Source {
            source_name: self.describe(),
            message,
            cause: None,
        }
    }

    fn stop(&self, message: String) -> Failure {
        Failure::Stop(self.error(message))
    }

    /// Runs one step of the conversation with the server, giving up after `timeout`.
    async fn timed<T>(
        &self,
        doing: &str,
        step: impl Future<Output = std::result::Result<T, FtpError>>,
    ) -> std::result::Result<std::result::Result<T, FtpError>, Failure> {
        tokio::time::timeout(self.timeout, step).await.map_err(|_| {
            Failure::Retry(format!(
                "no answer from {} within {} s while {doing}",
                self.address(),
                self.timeout.as_secs()
            ))
        })
    }

    /// Connects, secures, logs in and changes to `dir`.
    async fn connect(&self) -> std::result::Result<Session, Failure> {
        let address = self.address();
        let connecting = async {
            match (self.tls_mode, &self.tls) {
                (TlsMode::Implicit, Some(config)) => {
                    let connector =
                        AsyncRustlsConnector::from(TlsConnector::from(Arc::clone(config)));
                    AsyncRustlsFtpStream::connect_secure_implicit(
                        (self.host.as_str(), self.port),
                        connector,
                        &self.host,
                    )
                    .await
                }
                _ => {
                    let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                        .await
                        .map_err(FtpError::ConnectionError)?;
                    AsyncRustlsFtpStream::connect_with_stream(stream).await
                }
            }
        };
        let mut ftp = match self.timed("connecting", connecting).await? {
            Ok(ftp) => ftp,
            Err(FtpError::SecureError(err)) => return Err(self.tls_failure(&err)),
            Err(err) => {
                return Err(Failure::Retry(format!(
                    "cannot connect to {address}: {}",
                    self.explain(&err)
                )));
            }
        };
        if self.tls_mode == TlsMode::Explicit
            && let Some(config) = &self.tls
        {
            if self.tls_insecure {
                tracing::warn!(
                    host = %self.host,
                    "tls_insecure = true: the FTP server's certificate is NOT verified"
                );
            }
            let connector = AsyncRustlsConnector::from(TlsConnector::from(Arc::clone(config)));
            ftp = match self
                .timed("starting TLS", ftp.into_secure(connector, &self.host))
                .await?
            {
                Ok(ftp) => ftp,
                Err(FtpError::SecureError(err)) => return Err(self.tls_failure(&err)),
                Err(FtpError::UnexpectedResponse(response)) => {
                    return Err(self.stop(format!(
                        "{address} refused FTPS (AUTH TLS): {}; is tls = \"explicit\" right for this server?",
                        self.scrub(String::from_utf8_lossy(&response.body).trim())
                    )));
                }
                Err(err) => {
                    return Err(Failure::Retry(format!(
                        "TLS with {address} failed: {}",
                        self.explain(&err)
                    )));
                }
            };
        } else if self.tls_insecure {
            tracing::warn!(
                host = %self.host,
                "tls_insecure = true: the FTP server's certificate is NOT verified"
            );
        }
        ftp.set_passive_nat_workaround(true);
        if !self.passive {
            ftp = ftp.active_mode(self.timeout);
        }
        let password = self.password.expose();
        match self
            .timed("logging in", ftp.login(self.user.as_str(), password))
            .await?
        {
            Ok(()) => {}
            Err(FtpError::UnexpectedResponse(response))
                if response.status.code() >= 500 || response.status == Status::NotLoggedIn =>
            {
                return Err(self.stop(format!(
                    "login failed on {address} as user `{}`: the server answered {}; check `user` and `password` in [source]",
                    self.user,
                    self.scrub(String::from_utf8_lossy(&response.body).trim())
                )));
            }
            Err(err) => {
                return Err(Failure::Retry(format!(
                    "login on {address} did not complete: {}",
                    self.explain(&err)
                )));
            }
        }
        match self
            .timed(
                "switching to binary mode",
                ftp.transfer_type(FileType::Binary),
            )
            .await?
        {
            Ok(()) => {}
            Err(err) => {
                return Err(Failure::Retry(format!(
                    "TYPE I (binary transfers) failed on {address}: {}",
                    self.explain(&err)
                )));
            }
        }
        match self.timed("changing folder", ftp.cwd(&self.dir)).await? {
            Ok(()) => {}
            Err(FtpError::UnexpectedResponse(response)) if response.status.code() >= 500 => {
                return Err(self.stop(format!(
                    "cannot open the folder `{}` on {address}: the server answered {}; check `dir` in [source]",
                    self.dir,
                    self.scrub(String::from_utf8_lossy(&response.body).trim())
                )));
            }
            Err(err) => {
                return Err(Failure::Retry(format!(
                    "changing to `{}` on {address} failed: {}",
                    self.dir,
                    self.explain(&err)
                )));
            }
        }
        let mlsd = match self.timed("asking for features", ftp.feat()).await {
            Ok(Ok(features)) => features.keys().any(|key| key.eq_ignore_ascii_case("MLSD")),
            // FEAT is optional (RFC 2389); a server without it lists the old way.
            _ => false,
        };
        tracing::debug!(server = %address, mlsd, "logged in");
        Ok(Session { ftp, mlsd })
    }

    /// A failed TLS handshake: an untrusted certificate is final, anything else may be the
    /// network and is tried again.
    fn tls_failure(&self, err: &str) -> Failure {
        let err = self.scrub(err);
        let message = format!("TLS with {} failed: {err}", self.address());
        if !err.contains("certificate") {
            return Failure::Retry(message);
        }
        if self.tls_insecure {
            return self.stop(message);
        }
        self.stop(format!(
            "{message}; the server's certificate is not trusted by the system's roots or \
             `ca_file`: name the certificate authority that signed it in ca_file = \"….pem\""
        ))
    }

    /// The idle session if it still answers, else a new one.
    async fn session(&self) -> std::result::Result<Session, Failure> {
        let idle = self.idle.lock().map(|mut idle| idle.take()).unwrap_or(None);
        if let Some(mut session) = idle {
            match tokio::time::timeout(self.timeout, session.ftp.noop()).await {
                Ok(Ok(())) => return Ok(session),
                _ => {
                    tracing::debug!(server = %self.address(), "idle FTP session was closed; reconnecting")
                }
            }
        }
        self.connect().await
    }

    /// Keeps a session that ended an operation cleanly for the next one.
    fn keep(&self, session: Session) {
        if let Ok(mut idle) = self.idle.lock() {
            *idle = Some(session);
        }
    }

    /// Runs `attempt` until it succeeds, fails for good, or `retries` more tries failed, waiting
    /// `backoff × 2^n ± 25 %` between tries.
    async fn retrying<T, F, Fut>(&self, what: &str, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, Failure>>,
    {
        let mut failed = 0u32;
        loop {
            match attempt().await {
                Ok(value) => return Ok(value),
                Err(Failure::Stop(err)) => return Err(err),
                Err(Failure::Retry(reason)) => {
                    failed += 1;
                    if failed > self.retries {
                        let tries = if failed == 1 {
                            "1 try".to_owned()
                        } else {
                            format!("{failed} tries")
                        };
                        return Err(self.error(format!("{what} failed after {tries}: {reason}")));
                    }
                    let wait = backoff(self.backoff, failed - 1);
                    tracing::warn!(
                        server = %self.address(),
                        "{what}: {reason}; trying again in {} ms ({failed} of {} retries)",
                        wait.as_millis(),
                        self.retries
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn list_once(
        &self,
        dates: &DateSelection,
    ) -> std::result::Result<Vec<LoadUnit>, Failure> {
        let mut session = self.session().await?;
        let mut files = Vec::new();
        let mut listed = false;
        if session.mlsd {
            match self.timed("listing (MLSD)", session.ftp.mlsd(None)).await? {
                Ok(lines) => {
                    for line in lines {
                        let Some(entry) = parse_mlsd_line(&line) else {
                            continue;
                        };
                        if let Some(file) =
                            self.accept(&entry.name, dates, entry.size, entry.modified_ns)
                        {
                            files.push(file);
                        }
                    }
                    listed = true;
                }
                Err(FtpError::UnexpectedResponse(response)) if response.status.code() >= 500 => {
                    tracing::debug!(server = %self.address(), "MLSD refused; listing with NLST");
                }
                Err(err) => {
                    return Err(Failure::Retry(format!(
                        "listing `{}` failed: {}",
                        self.dir,
                        self.explain(&err)
                    )));
                }
            }
        }
        if !listed {
            let names = match self.timed("listing (NLST)", session.ftp.nlst(None)).await? {
                Ok(names) => names,
                // An empty folder: some servers answer 450 or 550 "no files found".
                Err(FtpError::UnexpectedResponse(response))
                    if matches!(response.status.code(), 450 | 550) =>
                {
                    Vec::new()
                }
                Err(err) => {
                    return Err(Failure::Retry(format!(
                        "listing `{}` failed: {}",
                        self.dir,
                        self.explain(&err)
                    )));
                }
            };
            for name in names {
                let name = name.trim_end_matches(['\r', '\n']);
                if self.accept(name, dates, None, None).is_none() {
                    continue;
                }
                let size = self.size_of(&mut session, name).await?;
                let modified = self.modified_of(&mut session, name).await?;
                files.extend(self.accept(name, dates, size, modified));
            }
        }
        self.keep(session);
        files.sort_by(|a, b| {
            (a.trxdate, &a.mid, a.kind.as_str()).cmp(&(b.trxdate, &b.mid, b.kind.as_str()))
        });
        Ok(files)
    }

    /// A listed name as a Toss file of the selected dates, or `None` for anything else (other
    /// files, folders' names, names with `/`, `..` or odd characters, other dates).
    fn accept(
        &self,
        name: &str,
        dates: &DateSelection,
        size: Option<u64>,
        modified_ns: Option<i64>,
    ) -> Option<LoadUnit> {
        let parsed = TossFileName::parse(name)?;
        if !self.filter.accepts(&parsed, dates) {
            return None;
        }
        let version = FileVersion {
            size,
            modified_ns,
            content_hash: None,
        };
        Some(toss_file_unit(&parsed, name.to_owned(), version))
    }

    /// SIZE: `None` when the server does not say (the command is optional).
    async fn size_of(
        &self,
        session: &mut Session,
        name: &str,
    ) -> std::result::Result<Option<u64>, Failure> {
        match self
            .timed("asking a size (SIZE)", session.ftp.size(name))
            .await?
        {
            Ok(size) => Ok(Some(size as u64)),
            Err(FtpError::UnexpectedResponse(_) | FtpError::BadResponse) => Ok(None),
            Err(err) => Err(Failure::Retry(format!(
                "SIZE {name} failed: {}",
                self.explain(&err)
            ))),
        }
    }

    /// MDTM, in nanoseconds since the epoch: `None` when the server does not say.
    async fn modified_of(
        &self,
        session: &mut Session,
        name: &str,
    ) -> std::result::Result<Option<i64>, Failure> {
        match self
            .timed("asking a modification time (MDTM)", session.ftp.mdtm(name))
            .await?
        {
            Ok(time) => Ok(time.and_utc().timestamp_nanos_opt()),
            Err(FtpError::UnexpectedResponse(_) | FtpError::BadResponse) => Ok(None),
            Err(err) => Err(Failure::Retry(format!(
                "MDTM {name} failed: {}",
                self.explain(&err)
            ))),
        }
    }

    /// One RETR into a fresh anonymous temporary file, then the server's size and time of the
    /// file as they are now. A partial download is dropped with its temporary file.
    async fn download_once(&self, file: &LoadUnit) -> std::result::Result<Download, Failure> {
        let name = file.name.as_str();
        let mut session = self.session().await?;
        let mut local = tempfile::tempfile().map_err(|err| {
            Failure::Stop(Error::io(
                format!("cannot create a temporary file for {name}"),
                err,
            ))
        })?;
        let mut transfer = match self
            .timed(
                "starting a download (RETR)",
                session.ftp.retr_as_stream(name),
            )
            .await?
        {
            Ok(transfer) => transfer,
            Err(FtpError::UnexpectedResponse(response)) if response.status.code() >= 500 => {
                return Err(self.stop(format!(
                    "the server refused to send {name}: {}",
                    self.scrub(String::from_utf8_lossy(&response.body).trim())
                )));
            }
            Err(err) => {
                return Err(Failure::Retry(format!(
                    "cannot start downloading {name}: {}",
                    self.explain(&err)
                )));
            }
        };
        let mut buffer = vec![0u8; READ_CHUNK];
        let mut hasher = Xxh3::new();
        let mut bytes = 0u64;
        loop {
            let read = match tokio::time::timeout(self.timeout, transfer.read(&mut buffer)).await {
                Err(_) => {
                    return Err(Failure::Retry(format!(
                        "the download of {name} stalled after {bytes} bytes (nothing for {} s)",
                        self.timeout.as_secs()
                    )));
                }
                Ok(Err(err)) => {
                    return Err(Failure::Retry(format!(
                        "the connection dropped after {bytes} bytes of {name}: {}",
                        self.scrub(&err.to_string())
                    )));
                }
                Ok(Ok(0)) => break,
                Ok(Ok(read)) => read,
            };
            hasher.update(&buffer[..read]);
            local.write_all(&buffer[..read]).map_err(|err| {
                Failure::Stop(Error::io(
                    format!("cannot write the download of {name} to a temporary file"),
                    err,
                ))
            })?;
            bytes += read as u64;
        }
        match self
            .timed("finishing a download", transfer.finish())
            .await?
        {
            Ok(()) => {}
            Err(err) => {
                return Err(Failure::Retry(format!(
                    "the download of {name} broke off after {bytes} bytes: {}",
                    self.explain(&err)
                )));
            }
        }
        let size_now = self.size_of(&mut session, name).await?;
        let modified_now = match file.version.modified_ns {
            Some(_) => self.modified_of(&mut session, name).await?,
            None => None,
        };
        self.keep(session);
        Ok(Download {
            file: local,
            bytes,
            hash: hasher.digest128(),
            size_now,
            modified_now,
        })
    }
}

impl Download {
    /// Why this download is not the version listed, if it is not.
    fn moved(&self, listed: &FileVersion) -> Option<String> {
        if let Some(size) = listed.size
            && self.bytes != size
        {
            return Some(format!(
                "listed with {size} bytes, {} bytes arrived",
                self.bytes
            ));
        }
        if let Some(now) = self.size_now
            && now != self.bytes
        {
            return Some(format!(
                "{} bytes arrived, the server now says {now}",
                self.bytes
            ));
        }
        // MDTM has whole seconds; MLSD may say more.
        const SECOND: i64 = 1_000_000_000;
        if let (Some(listed), Some(now)) = (listed.modified_ns, self.modified_now)
            && listed.div_euclid(SECOND) != now.div_euclid(SECOND)
        {
            return Some("its modification time changed".to_owned());
        }
        None
    }
}

#[async_trait::async_trait]
impl Source for FtpSource {
    async fn list(&self, dates: &DateSelection) -> Result<Listing> {
        let files = self
            .retrying(&format!("listing `{}`", self.dir), || self.list_once(dates))
            .await?;
        Ok(Listing {
            units: files,
            deferred: Vec::new(),
        })
    }

    async fn fetch(&self, file: &LoadUnit) -> Result<Fetched> {
        let mut looked_again = false;
        loop {
            let download = self
                .retrying(&format!("downloading {}", file.name), || {
                    self.download_once(file)
                })
                .await?;
            let Some(moved) = download.moved(&file.version) else {
                let mut local = download.file;
                local.rewind().map_err(|err| {
                    Error::io(
                        format!("cannot read back the download of {}", file.name),
                        err,
                    )
                })?;
                tracing::debug!(file = %file.name, bytes = download.bytes, "downloaded");
                return Ok(Fetched {
                    reader: Box::new(local),
                    content_hash: Some(format!("{:032x}", download.hash)),
                });
            };
            if looked_again {
                return Err(Error::Deferred {
                    file: file.name.clone(),
                    reason: format!(
                        "changed during download ({moved}); Toss is still writing it, a later run loads it"
                    ),
                });
            }
            tracing::info!(
                file = %file.name,
                "changed during download ({moved}); looking again in {} s",
                SETTLE_PAUSE.as_secs()
            );
            looked_again = true;
            tokio::time::sleep(SETTLE_PAUSE).await;
        }
    }

    async fn after_read(&self, _file: &LoadUnit) -> Result<AfterRead> {
        // What was read is the local temporary copy, checked against the listing when it was
        // downloaded; it cannot change afterwards.
        Ok(AfterRead::Unchanged)
    }

    fn describe(&self) -> String {
        let dir = self.dir.trim_start_matches('/');
        format!("ftp {}/{dir}", self.address())
    }
}

/// `base × 2^n`, ±25 % so that many clients do not come back in step.
/// One entry of an MLSD listing that is a plain file.
#[derive(Debug, PartialEq, Eq)]
struct MlsdEntry {
    name: String,
    size: Option<u64>,
    modified_ns: Option<i64>,
}

/// Reads `fact=value;fact=value; name` (RFC 3659 §7). Folders, links and malformed lines are
/// `None`; the name is returned exactly as the server wrote it, to be judged by
/// [`TossFileName::parse`].
fn parse_mlsd_line(line: &str) -> Option<MlsdEntry> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (facts, name) = line.split_once(' ')?;
    let mut is_file = false;
    let mut size = None;
    let mut modified_ns = None;
    for fact in facts.split(';') {
        let Some((key, value)) = fact.split_once('=') else {
            continue;
        };
        match key.to_ascii_lowercase().as_str() {
            "type" => is_file = value.eq_ignore_ascii_case("file"),
            "size" => size = value.parse().ok(),
            "modify" => modified_ns = parse_mlsd_time(value),
            _ => {}
        }
    }
    (is_file && !name.is_empty()).then(|| MlsdEntry {
        name: name.to_owned(),
        size,
        modified_ns,
    })
}

/// `YYYYMMDDHHMMSS[.sss]`, UTC, as nanoseconds since the epoch.
fn parse_mlsd_time(value: &str) -> Option<i64> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    let time = chrono::NaiveDateTime::parse_from_str(whole, "%Y%m%d%H%M%S").ok()?;
    let mut nanos = time.and_utc().timestamp_nanos_opt()?;
    if !fraction.is_empty() {
        if !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let digits: String = fraction
            .chars()
            .chain("000000000".chars())
            .take(9)
            .collect();
        nanos += digits.parse::<i64>().ok()?;
    }
    Some(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(password: &str) -> FtpSource {
        let config: FtpSourceConfig = toml::from_str(&format!(
            "host = \"ftp.example\"\nuser = \"toss\"\npassword = \"{password}\"\ndir = \"/in\"\nmids = [\"toss\"]"
        ))
        .unwrap();
        FtpSource {
            host: config.host.to_string(),
            port: 21,
            user: config.user.to_string(),
            password: config.password.clone(),
            dir: config.dir.as_ref().unwrap().to_string(),
            tls_mode: TlsMode::None,
            tls: None,
            tls_insecure: false,
            passive: true,
            timeout: Duration::from_secs(1),
            retries: 0,
            backoff: Duration::ZERO,
            filter: FileFilter {
                mids: Some(vec!["toss".into()]),
                kinds: None,
            },
            idle: Mutex::new(None),
        }
    }

    #[test]
    fn config_defaults_and_the_password_never_prints() {
        let config: FtpSourceConfig =
            toml::from_str("host = \"ftp.example\"\nuser = \"toss\"\npassword = \"S3cr3t-pw-xyz\"")
                .unwrap();
        assert!(config.dir.is_none());
        assert_eq!(config.tls, TlsMode::None);
        assert!(config.passive);
        assert_eq!((config.timeout_secs, config.retries), (30, 3));
        assert!(!format!("{config:?}").contains("S3cr3t"));
        let source = config.build().unwrap();
        assert_eq!(source.describe(), "ftp ftp.example:21/");
        assert_eq!(source.fetch_ahead(), 1);

        let implicit: FtpSourceConfig = toml::from_str(
            "host = \"h\"\nuser = \"u\"\npassword = \"p\"\ntls = \"implicit\"\ntls_insecure = true\ndir = \"/toss\"",
        )
        .unwrap();
        assert_eq!(implicit.build().unwrap().describe(), "ftp h:990/toss");
    }

    #[test]
    fn config_refuses_typos_and_tls_options_without_tls() {
        let typo = toml::from_str::<FtpSourceConfig>(
            "host = \"h\"\nuser = \"u\"\npassword = \"p\"\npasive = false",
        );
        assert!(typo.is_err());
        let bad_tls = toml::from_str::<FtpSourceConfig>(
            "host = \"h\"\nuser = \"u\"\npassword = \"p\"\ntls = \"yes\"",
        );
        assert!(bad_tls.is_err());
        let insecure_plain: FtpSourceConfig =
            toml::from_str("host = \"h\"\nuser = \"u\"\npassword = \"p\"\ntls_insecure = true")
                .unwrap();
        let err = insecure_plain.build().err().unwrap().to_string();
        assert!(err.contains("tls_insecure"), "{err}");
        let missing_ca: FtpSourceConfig = toml::from_str(
            "host = \"h\"\nuser = \"u\"\npassword = \"p\"\ntls = \"explicit\"\nca_file = \"/nonexistent/ca.pem\"",
        )
        .unwrap();
        let err = missing_ca.build().err().unwrap().to_string();
        assert!(
            err.contains("ca_file") && err.contains("/nonexistent/ca.pem"),
            "{err}"
        );
    }

    #[test]
    fn scrubs_the_password_from_anything_shown() {
        let source = source("S3cr3t-pw-xyz");
        let reply = FtpError::UnexpectedResponse(suppaftp::types::Response::new(
            Status::NotLoggedIn,
            b"530 user toss with password S3cr3t-pw-xyz refused".to_vec(),
        ));
        let text = source.explain(&reply);
        assert!(!text.contains("S3cr3t"), "{text}");
        assert!(text.contains("530") && text.contains("***"), "{text}");
        assert_eq!(source.describe(), "ftp ftp.example:21/in");
    }

    #[test]
    fn reads_mlsd_lines() {
        assert_eq!(
            parse_mlsd_line("type=file;size=1234;modify=20070706235927; toss_AUTH_20070706.dat\r"),
            Some(MlsdEntry {
                name: "toss_AUTH_20070706.dat".into(),
                size: Some(1234),
                modified_ns: Some(1_183_766_367_000_000_000),
            })
        );
        let fraction = parse_mlsd_line("Type=File;Modify=20070706235927.5;Size=1; a b").unwrap();
        assert_eq!(fraction.name, "a b");
        assert_eq!(fraction.modified_ns, Some(1_183_766_367_500_000_000));
        assert_eq!(
            parse_mlsd_line("type=dir;modify=20070706235927; toss_AUTH_20070706.dat"),
            None
        );
        assert_eq!(parse_mlsd_line("type=cdir; ."), None);
        assert_eq!(parse_mlsd_line("garbage"), None);
    }

    #[test]
    fn listed_names_that_are_not_plain_toss_files_are_ignored() {
        let source = source("p");
        let all = DateSelection::All;
        for hostile in [
            "../toss_AUTH_20070706.dat",
            "../../etc/toss_AUTH_20070706.dat",
            "/etc/toss_AUTH_20070706.dat",
            "sub/toss_AUTH_20070706.dat",
            "toss\\x_AUTH_20070706.dat",
            "toss_AUTH_20070706.dat/",
            " toss_AUTH_20070706.dat",
            "toss_AUTH_20070706.dat ",
            "to ss_AUTH_20070706.dat",
            "toss;rm_AUTH_20070706.dat",
            "toss\0_AUTH_20070706.dat",
            "toss_AUTH_20070706.dat.part",
            "..",
            ".",
            "",
            "shop_AUTH_20070706.dat", // not in mids
        ] {
            assert!(
                source.accept(hostile, &all, Some(1), Some(1)).is_none(),
                "{hostile:?} must be ignored"
            );
            let line = format!("type=file;size=1;modify=20070706235927; {hostile}");
            let accepted = parse_mlsd_line(&line)
                .and_then(|entry| source.accept(&entry.name, &all, entry.size, entry.modified_ns));
            assert!(accepted.is_none(), "{hostile:?} from MLSD must be ignored");
        }
        let file = source
            .accept("toss_REV_20070706.dat", &all, Some(10), Some(5))
            .unwrap();
        assert_eq!(
            (file.name.as_str(), file.origin.as_str()),
            ("toss_REV_20070706.dat", "toss_REV_20070706.dat")
        );
        assert_eq!(file.version.size, Some(10));
    }

    #[test]
    fn a_download_must_match_the_listing() {
        let listed = FileVersion {
            size: Some(100),
            modified_ns: Some(5_000_000_000),
            content_hash: None,
        };
        let download = |bytes, size_now, modified_now| Download {
            file: tempfile::tempfile().unwrap(),
            bytes,
            hash: 0,
            size_now,
            modified_now,
        };
        assert_eq!(
            download(100, Some(100), Some(5_000_000_000)).moved(&listed),
            None
        );
        assert_eq!(download(100, None, None).moved(&listed), None);
        assert!(
            download(120, Some(120), Some(5_000_000_000))
                .moved(&listed)
                .is_some()
        );
        assert!(
            download(100, Some(130), Some(5_000_000_000))
                .moved(&listed)
                .is_some()
        );
        assert!(
            download(100, Some(100), Some(9_000_000_000))
                .moved(&listed)
                .is_some()
        );
    }
}
