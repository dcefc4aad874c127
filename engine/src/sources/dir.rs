//! `type = "dir"`: a local folder, for an engine that runs on the FTP host itself (Toss writes
//! into the merchant's FTP home) or on a folder something else mirrors.
//!
//! Toss rewrites each day's file every 20 minutes, so a file may be mid-upload when it is
//! listed. A file modified within the last `settle_secs` is looked at twice, `settle_secs`
//! apart, and deferred to a later run if it changed in between; after reading, the file is
//! checked once more, and a load of a file that changed meanwhile is discarded.
//!
//! The inbox is a folder other people and programs write to, so what its names point at is not
//! trusted: a symbolic link is followed only when it leads to a file inside the inbox. A link
//! named like a Toss file that leads elsewhere (`/etc/shadow`) would otherwise have its lines
//! copied into the rejects file; it is skipped with a warning instead.

use super::{
    AfterRead, BuildSource, Deferred, Fetched, FileFilter, Listing, Source, TossFileName,
    toss_file_unit,
};
use crate::dates::DateSelection;
use crate::env::{EnvString, deserialize_kinds};
use crate::error::{Error, Result};
use crate::toss::RecordKind;
use crate::unit::{FileVersion, LoadUnit};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// `[source]` with `type = "dir"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirSourceConfig {
    /// The folder holding `{mid}_{AUTH|REV}_{yyyymmdd}.dat`.
    pub path: EnvString,
    /// Load only these merchant ids (default: all).
    #[serde(default, deserialize_with = "super::deserialize_mids")]
    pub mids: Option<Vec<EnvString>>,
    /// Load only these kinds (default: both).
    #[serde(default, deserialize_with = "deserialize_kinds")]
    pub kinds: Option<Vec<RecordKind>>,
    /// A file must stay unchanged this long before it is read (default 2 s).
    #[serde(default = "default_settle_secs")]
    pub settle_secs: f64,
}

fn default_settle_secs() -> f64 {
    2.0
}

impl BuildSource for DirSourceConfig {
    fn build(&self) -> Result<Arc<dyn Source>> {
        if !(0.0..=3600.0).contains(&self.settle_secs) {
            return Err(Error::config(
                "[source] settle_secs",
                "settle_secs must be between 0 and 3600 seconds",
            ));
        }
        Ok(Arc::new(DirSource {
            folder: self.path.to_path(),
            filter: FileFilter::from_keys(&self.mids, &self.kinds),
            settle: Duration::from_secs_f64(self.settle_secs),
        }))
    }
}

struct DirSource {
    folder: PathBuf,
    filter: FileFilter,
    settle: Duration,
}

impl DirSource {
    fn failed(&self, message: String, cause: std::io::Error) -> Error {
        Error::Source {
            source_name: self.describe(),
            message,
            cause: Some(Box::new(cause)),
        }
    }

    fn version_of(&self, name: &str) -> Result<FileVersion> {
        let path = self.folder.join(name);
        let metadata = std::fs::metadata(&path)
            .map_err(|err| self.failed(format!("cannot read the size of {name}"), err))?;
        Ok(FileVersion {
            size: Some(metadata.len()),
            modified_ns: metadata.modified().ok().map(nanos_since_epoch),
            content_hash: None,
        })
    }

    fn list_now(&self, dates: &DateSelection) -> Result<Vec<LoadUnit>> {
        let entries = std::fs::read_dir(&self.folder).map_err(|err| {
            self.failed(
                "cannot list the folder; check `path` in [source] and that the engine may read it"
                    .into(),
                err,
            )
        })?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|err| self.failed("cannot list the folder".into(), err))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let Some(parsed) = TossFileName::parse(&name) else {
                continue;
            };
            if !self.filter.accepts(&parsed, dates) || !is_regular_file(&entry.path()) {
                continue;
            }
            if let Err(outside) = self.inside_inbox(&name) {
                tracing::warn!(
                    file = %name,
                    "skipped: it is a symbolic link to {outside}, outside the inbox {}; the engine \
                     reads only files inside the inbox, so copy the file in (or point `path` in \
                     [source] at the folder that holds it)",
                    self.folder.display()
                );
                continue;
            }
            let version = self.version_of(&name)?;
            files.push((parsed, name, version));
        }
        files.sort_by(|(a, ..), (b, ..)| {
            (a.trxdate, &a.mid, a.kind.as_str()).cmp(&(b.trxdate, &b.mid, b.kind.as_str()))
        });
        Ok(files
            .into_iter()
            .map(|(parsed, name, version)| toss_file_unit(&parsed, name, version))
            .collect())
    }

    /// The real path of the inbox's file `name`, or where it leads when that is outside the
    /// inbox (a symbolic link out of it).
    fn inside_inbox(&self, name: &str) -> std::result::Result<PathBuf, String> {
        let path = self.folder.join(name);
        let (Ok(inbox), Ok(real)) = (
            std::fs::canonicalize(&self.folder),
            std::fs::canonicalize(&path),
        ) else {
            // Gone or unreadable: opening it reports why.
            return Ok(path);
        };
        if real.starts_with(&inbox) {
            Ok(real)
        } else {
            Err(real.display().to_string())
        }
    }

    fn recently_modified(&self, file: &LoadUnit) -> bool {
        let now = nanos_since_epoch(SystemTime::now());
        file.version
            .modified_ns
            .is_some_and(|modified| now.saturating_sub(modified) < self.settle.as_nanos() as i64)
    }
}

#[async_trait::async_trait]
impl Source for DirSource {
    async fn list(&self, dates: &DateSelection) -> Result<Listing> {
        let files = self.list_now(dates)?;
        if !files.iter().any(|file| self.recently_modified(file)) {
            return Ok(Listing {
                units: files,
                deferred: Vec::new(),
            });
        }
        // Something was written moments ago: look again once it had time to settle.
        tokio::time::sleep(self.settle).await;
        let mut listing = Listing::default();
        for file in files {
            if !self.recently_modified(&file) {
                listing.units.push(file);
                continue;
            }
            let now = self.version_of(&file.name)?;
            if now == file.version {
                listing.units.push(file);
            } else {
                listing.deferred.push(Deferred {
                    name: file.name,
                    reason: format!(
                        "still being written (it changed within {:.1} s); a later run loads it",
                        self.settle.as_secs_f64()
                    ),
                });
            }
        }
        Ok(listing)
    }

    async fn fetch(&self, file: &LoadUnit) -> Result<Fetched> {
        let path = self.inside_inbox(&file.name).map_err(|outside| Error::Source {
            source_name: self.describe(),
            message: format!(
                "{} became a symbolic link to {outside}, outside the inbox, after it was listed; \
                 it is not read",
                file.name
            ),
            cause: None,
        })?;
        let handle = open_no_follow(&path)
            .map_err(|err| self.failed(format!("cannot open {}", file.name), err))?;
        Ok(Fetched::local(Box::new(handle)))
    }

    async fn after_read(&self, file: &LoadUnit) -> Result<AfterRead> {
        let now = self.version_of(&file.name)?;
        Ok(if now == file.version {
            AfterRead::Unchanged
        } else {
            AfterRead::Changed(format!(
                "{} changed while it was read (size {} → {} bytes); a later run loads it",
                file.name,
                file.version.size.unwrap_or(0),
                now.size.unwrap_or(0)
            ))
        })
    }

    fn describe(&self) -> String {
        format!("dir {}", self.folder.display())
    }
}

/// Opens `path`, refusing a symbolic link in its last component: the path was resolved just
/// before, and a link put there since is not followed.
fn open_no_follow(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
    options.open(path)
}

fn is_regular_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|metadata| metadata.is_file())
}

fn nanos_since_epoch(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos() as i64)
        .unwrap_or(0)
}
