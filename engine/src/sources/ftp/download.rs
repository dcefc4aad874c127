//! One file from the server into an unnamed temporary file, handed over only when it is the
//! version that was listed: Toss rewrites each day's file every 20 minutes, so the bytes
//! received, the server's size after the download and the listing must agree. A file that moved
//! while it was downloaded is looked at once more after a short pause, and otherwise deferred to
//! a later run — never loaded half.

use super::{FtpSource, Step};
use crate::error::{Error, Result};
use crate::remote::retry::AttemptError;
use crate::sources::Fetched;
use crate::unit::{FileVersion, LoadUnit};
use std::io::{Seek, Write};
use std::time::Duration;
use suppaftp::FtpError;
use tokio::io::AsyncReadExt;
use xxhash_rust::xxh3::Xxh3;

/// How long a file whose size moved during its download is left alone before one more look.
const SETTLE_PAUSE: Duration = Duration::from_secs(1);

/// Bytes read from the data connection at a time.
const READ_CHUNK: usize = 64 * 1024;

/// A finished download, before it is checked against the listing.
struct Download {
    file: std::fs::File,
    bytes: u64,
    hash: u128,
    size_now: Option<u64>,
    modified_now: Option<i64>,
}

impl FtpSource {
    /// Downloads `file` and checks it against its listing, looking once more if it moved.
    pub(super) async fn fetch_checked(&self, file: &LoadUnit) -> Result<Fetched> {
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

    /// One RETR into a fresh anonymous temporary file, then the server's size and time of the
    /// file as they are now. A partial download is dropped with its temporary file.
    async fn download_once(&self, file: &LoadUnit) -> Step<Download> {
        let name = file.name.as_str();
        let mut session = self.session().await?;
        let mut local = tempfile::tempfile().map_err(|err| {
            AttemptError::Fail(Error::io(
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
                return Err(AttemptError::Retry(format!(
                    "cannot start downloading {name}: {}",
                    self.explain(&err)
                )));
            }
        };
        let mut buffer = vec![0u8; READ_CHUNK];
        let mut hasher = Xxh3::new();
        let mut bytes = 0u64;
        loop {
            let read = match tokio::time::timeout(self.timeout(), transfer.read(&mut buffer)).await
            {
                Err(_) => {
                    return Err(AttemptError::Retry(format!(
                        "the download of {name} stalled after {bytes} bytes (nothing for {} s)",
                        self.timeout().as_secs()
                    )));
                }
                Ok(Err(err)) => {
                    return Err(AttemptError::Retry(format!(
                        "the connection dropped after {bytes} bytes of {name}: {}",
                        self.scrub(&err.to_string())
                    )));
                }
                Ok(Ok(0)) => break,
                Ok(Ok(read)) => read,
            };
            hasher.update(&buffer[..read]);
            local.write_all(&buffer[..read]).map_err(|err| {
                AttemptError::Fail(Error::io(
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
                return Err(AttemptError::Retry(format!(
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

#[cfg(test)]
mod tests {
    use super::*;

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
