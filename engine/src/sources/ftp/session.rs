//! The control connection: connecting (plain, `AUTH TLS`, or TLS from the first byte), logging
//! in, binary mode, the folder, and whether the server lists with MLSD. A session that ended an
//! operation cleanly is kept for the next one, since logging in again for every file would cost
//! more than the files; servers close idle connections, so it is checked with NOOP first.
//!
//! What cannot be fixed by trying again (a refused login, an untrusted certificate, a missing
//! folder) fails at once; anything that may be the network is retried.

use super::{FtpSource, Step, TlsMode};
use crate::error::Error;
use crate::remote::retry::AttemptError;
use std::sync::Arc;
use suppaftp::tokio::{AsyncRustlsConnector, AsyncRustlsFtpStream};
use suppaftp::tokio_rustls::TlsConnector;
use suppaftp::types::FileType;
use suppaftp::{FtpError, Status};

/// A logged-in control connection in `dir`, and what the server said it can do.
pub(super) struct Session {
    pub(super) ftp: AsyncRustlsFtpStream,
    pub(super) mlsd: bool,
}

impl FtpSource {
    /// Connects, secures, logs in and changes to `dir`.
    async fn connect(&self) -> Step<Session> {
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
                return Err(AttemptError::Retry(format!(
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
                    return Err(AttemptError::Retry(format!(
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
            ftp = ftp.active_mode(self.timeout());
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
                return Err(AttemptError::Retry(format!(
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
                return Err(AttemptError::Retry(format!(
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
                return Err(AttemptError::Retry(format!(
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
    fn tls_failure(&self, err: &str) -> AttemptError<Error> {
        let err = self.scrub(err);
        let message = format!("TLS with {} failed: {err}", self.address());
        if !err.contains("certificate") {
            return AttemptError::Retry(message);
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
    pub(super) async fn session(&self) -> Step<Session> {
        let idle = self.idle.lock().map(|mut idle| idle.take()).unwrap_or(None);
        if let Some(mut session) = idle {
            match tokio::time::timeout(self.timeout(), session.ftp.noop()).await {
                Ok(Ok(())) => return Ok(session),
                _ => {
                    tracing::debug!(server = %self.address(), "idle FTP session was closed; reconnecting")
                }
            }
        }
        self.connect().await
    }

    /// Keeps a session that ended an operation cleanly for the next one.
    pub(super) fn keep(&self, session: Session) {
        if let Ok(mut idle) = self.idle.lock() {
            *idle = Some(session);
        }
    }

    /// SIZE: `None` when the server does not say (the command is optional).
    pub(super) async fn size_of(&self, session: &mut Session, name: &str) -> Step<Option<u64>> {
        match self
            .timed("asking a size (SIZE)", session.ftp.size(name))
            .await?
        {
            Ok(size) => Ok(Some(size as u64)),
            Err(FtpError::UnexpectedResponse(_) | FtpError::BadResponse) => Ok(None),
            Err(err) => Err(AttemptError::Retry(format!(
                "SIZE {name} failed: {}",
                self.explain(&err)
            ))),
        }
    }

    /// MDTM, in nanoseconds since the epoch: `None` when the server does not say.
    pub(super) async fn modified_of(&self, session: &mut Session, name: &str) -> Step<Option<i64>> {
        match self
            .timed("asking a modification time (MDTM)", session.ftp.mdtm(name))
            .await?
        {
            Ok(time) => Ok(time.and_utc().timestamp_nanos_opt()),
            Err(FtpError::UnexpectedResponse(_) | FtpError::BadResponse) => Ok(None),
            Err(err) => Err(AttemptError::Retry(format!(
                "MDTM {name} failed: {}",
                self.explain(&err)
            ))),
        }
    }
}
