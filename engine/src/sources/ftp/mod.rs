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
//! Remote names are never used as local paths: only names [`super::TossFileName::parse`] accepts are
//! looked at, and the download goes to an unnamed temporary file. The password never reaches a
//! log line or an error: it is held in a type that prints `***`, and every server reply or
//! library error shown to the user goes through a [`Scrubber`] of it first (which also catches
//! it upper-cased, encoded or cut short).
//!
//! - this file: the `[source]` keys, and the [`Source`] the engine calls;
//! - [`session`]: connecting, TLS, logging in, and keeping a logged-in session between
//!   operations;
//! - [`listing`]: which of the server's files are Toss files of the selected dates, and their
//!   versions (MLSD, or NLST with SIZE and MDTM);
//! - [`download`]: one file into a temporary file, checked against its listing.

mod download;
mod listing;
mod session;

use super::{AfterRead, BuildSource, Fetched, FileFilter, Listing, Source};
use crate::dates::DateSelection;
use crate::env::{EnvString, Secret, deserialize_kinds};
use crate::error::{Error, Result};
use crate::remote::retry::{Attempt, AttemptError, Failed, RetryPolicy, retry};
use crate::remote::scrub::Scrubber;
use crate::toss::RecordKind;
use crate::unit::LoadUnit;
use serde::Deserialize;
use session::Session;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use suppaftp::FtpError;
use suppaftp::tokio_rustls::rustls;

/// One step of an attempt: its result, or whether the attempt is worth repeating.
type Step<T> = std::result::Result<T, AttemptError<Error>>;

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
    #[serde(default, deserialize_with = "crate::env::expanded")]
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
    #[serde(default, deserialize_with = "super::deserialize_mids")]
    pub mids: Option<Vec<EnvString>>,
    /// Load only these kinds (default: both).
    #[serde(default, deserialize_with = "deserialize_kinds")]
    pub kinds: Option<Vec<RecordKind>>,
}

/// `tls = "none" | "explicit" | "implicit"`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain FTP: the password crosses the network readable.
    #[default]
    None,
    /// `AUTH TLS` on the normal port, before logging in (FTPES).
    Explicit,
    /// TLS from the first byte, usually on port 990.
    Implicit,
}

impl std::str::FromStr for TlsMode {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        match text {
            "none" => Ok(TlsMode::None),
            "explicit" => Ok(TlsMode::Explicit),
            "implicit" => Ok(TlsMode::Implicit),
            _ => Err(format!(
                "unknown tls {text:?}; allowed: \"none\", \"explicit\", \"implicit\""
            )),
        }
    }
}

fn default_true() -> bool {
    true
}

/// `timeout_secs`, `retries` and `retry_base_ms` when the pipeline file leaves them out.
const RETRY_DEFAULTS: RetryPolicy = RetryPolicy {
    timeout_secs: 30,
    retries: 3,
    retry_base_ms: 500,
};

fn default_timeout_secs() -> u64 {
    RETRY_DEFAULTS.timeout_secs
}

fn default_retries() -> u32 {
    RETRY_DEFAULTS.retries
}

fn default_retry_base_ms() -> u64 {
    RETRY_DEFAULTS.retry_base_ms
}

impl FtpSourceConfig {
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            timeout_secs: self.timeout_secs,
            retries: self.retries,
            retry_base_ms: self.retry_base_ms,
        }
    }
}

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
        self.retry_policy().check("[source]")?;
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
            _ => Some(crate::remote::tls::client_config(
                "[source]",
                self.ca_file.as_ref().map(|path| path.to_path()),
                self.tls_insecure,
            )?),
        };
        let port = self.port.unwrap_or(match self.tls {
            TlsMode::Implicit => 990,
            _ => 21,
        });
        let mut scrubber = Scrubber::new();
        scrubber.add(self.password.expose());
        Ok(Arc::new(FtpSource {
            host: self.host.trim().to_owned(),
            port,
            user: self.user.to_string(),
            password: self.password.clone(),
            scrubber,
            dir: self
                .dir
                .as_ref()
                .map_or_else(|| "/".to_owned(), |dir| dir.to_string()),
            tls_mode: self.tls,
            tls,
            tls_insecure: self.tls_insecure,
            passive: self.passive,
            retry_policy: self.retry_policy(),
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
    /// The password, for everything the server or the FTP library says.
    scrubber: Scrubber,
    dir: String,
    tls_mode: TlsMode,
    tls: Option<Arc<rustls::ClientConfig>>,
    tls_insecure: bool,
    passive: bool,
    /// `timeout_secs` bounds every step of the conversation with the server.
    retry_policy: RetryPolicy,
    filter: FileFilter,
    /// A logged-in session between operations; checked with NOOP before it is used again, since
    /// servers close idle control connections.
    idle: Mutex<Option<Session>>,
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
        self.scrubber.scrub(text)
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

    fn stop(&self, message: String) -> AttemptError<Error> {
        AttemptError::Fail(self.error(message))
    }

    /// Runs one step of the conversation with the server, giving up after `timeout`.
    async fn timed<T>(
        &self,
        doing: &str,
        step: impl Future<Output = std::result::Result<T, FtpError>>,
    ) -> Step<std::result::Result<T, FtpError>> {
        tokio::time::timeout(self.timeout(), step)
            .await
            .map_err(|_| {
                AttemptError::Retry(format!(
                    "no answer from {} within {} s while {doing}",
                    self.address(),
                    self.timeout().as_secs()
                ))
            })
    }

    /// How long one step of the conversation with the server may take.
    fn timeout(&self) -> Duration {
        self.retry_policy.timeout()
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retries ran out; `what` names
    /// the operation in the log and in the error.
    async fn retrying<T, Fut>(&self, what: &str, mut attempt: impl FnMut() -> Fut) -> Result<T>
    where
        Fut: Future<Output = Step<T>>,
    {
        let label = format!("{what} on {}", self.address());
        let outcome = retry(&self.retry_policy, &label, || {
            let step = attempt();
            async move { Attempt::from(step.await) }
        })
        .await;
        match outcome {
            Ok(done) => Ok(done.value),
            Err(Failed::Refused { why, .. }) => Err(why),
            Err(Failed::Exhausted { why, attempts }) => {
                let tries = if attempts == 1 {
                    "1 try".to_owned()
                } else {
                    format!("{attempts} tries")
                };
                Err(self.error(format!("{what} failed after {tries}: {why}")))
            }
        }
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
        self.fetch_checked(file).await
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

/// A source for `ftp.example` that never connects in the tests that use it.
#[cfg(test)]
fn test_source(password: &str) -> FtpSource {
    let config: FtpSourceConfig = toml::from_str(&format!(
        "host = \"ftp.example\"\nuser = \"toss\"\npassword = \"{password}\"\ndir = \"/in\"\nmids = [\"toss\"]"
    ))
    .unwrap();
    FtpSource {
        host: config.host.to_string(),
        port: 21,
        user: config.user.to_string(),
        password: config.password.clone(),
        scrubber: {
            let mut scrubber = Scrubber::new();
            scrubber.add(password);
            scrubber
        },
        dir: config.dir.as_ref().unwrap().to_string(),
        tls_mode: TlsMode::None,
        tls: None,
        tls_insecure: false,
        passive: true,
        retry_policy: RetryPolicy {
            timeout_secs: 1,
            retries: 0,
            retry_base_ms: 0,
        },
        filter: FileFilter {
            mids: Some(vec!["toss".into()]),
            kinds: None,
        },
        idle: Mutex::new(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use suppaftp::Status;

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
        let source = test_source("S3cr3t-pw-xyz");
        let reply = FtpError::UnexpectedResponse(suppaftp::types::Response::new(
            Status::NotLoggedIn,
            b"530 user toss with password S3cr3t-pw-xyz refused (S3CR3T-PW-X)".to_vec(),
        ));
        let text = source.explain(&reply);
        assert!(!text.to_lowercase().contains("s3cr3t"), "{text}");
        assert!(text.contains("530") && text.contains("***"), "{text}");
        assert_eq!(source.describe(), "ftp ftp.example:21/in");
    }
}
