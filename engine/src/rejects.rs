//! The rejects file: every line that could not become a row, with its file, line number, raw text
//! and reason, as JSON Lines under `{state_dir}/rejects/{pipeline}/{source file}.jsonl`.
//!
//! It is written beside the sinks' output and follows the same rule: it describes the latest
//! loaded version of its source file, replaced whole (temporary name, then rename) in the same
//! commit that replaces the sinks' data, so reloading a file never lists a line twice and the
//! file always describes what the sinks hold. A version that fails for its rejected lines keeps
//! them apart, in `{source file}.failed.jsonl`, for the user to see what is wrong; the next
//! version that loads removes that file.
//!
//! Rejected lines are the file's own text, as sensitive as the data: the folder and the files are
//! readable by the engine's user only.

use crate::error::{Error, Result};
use crate::parser::Reject;
use serde::Serialize;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

#[derive(Serialize)]
struct RejectLine<'a> {
    file: &'a str,
    line: u64,
    raw: &'a str,
    reason: &'a str,
}

/// The rejects of one source file while it loads.
pub struct RejectsFile {
    source_file: String,
    temp_path: PathBuf,
    final_path: PathBuf,
    failed_path: PathBuf,
    out: BufWriter<File>,
    count: u64,
}

impl RejectsFile {
    /// The folder of a pipeline's rejects.
    pub fn folder(state_dir: &Path, pipeline: &str) -> PathBuf {
        state_dir.join("rejects").join(pipeline)
    }

    pub fn create(state_dir: &Path, pipeline: &str, source_file: &str) -> Result<Self> {
        let folder = Self::folder(state_dir, pipeline);
        crate::private::create_dir_all(&folder)
            .map_err(|err| Error::io(format!("cannot create {}", folder.display()), err))?;
        let stem = source_file.trim_end_matches(".dat");
        let temp_path = folder.join(format!(".{stem}.jsonl.inprogress"));
        let final_path = folder.join(format!("{stem}.jsonl"));
        let failed_path = folder.join(format!("{stem}.failed.jsonl"));
        let file = crate::private::create_file(&temp_path)
            .map_err(|err| Error::io(format!("cannot create {}", temp_path.display()), err))?;
        Ok(RejectsFile {
            source_file: source_file.to_owned(),
            temp_path,
            final_path,
            failed_path,
            out: BufWriter::new(file),
            count: 0,
        })
    }

    pub fn write(&mut self, reject: &Reject) -> Result<()> {
        let line = RejectLine {
            file: &self.source_file,
            line: reject.line,
            raw: &reject.raw,
            reason: &reject.reason,
        };
        serde_json::to_writer(&mut self.out, &line)
            .map_err(std::io::Error::other)
            .and_then(|()| self.out.write_all(b"\n"))
            .map_err(|err| Error::io(format!("cannot write {}", self.temp_path.display()), err))?;
        self.count += 1;
        Ok(())
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Where the rejects will be once committed.
    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    /// Where the rejects of a version that failed for them are kept (see [`Self::commit_failed`]).
    pub fn failed_path(&self) -> &Path {
        &self.failed_path
    }

    /// Puts the rejects in place of the previous version's. A version without rejects removes
    /// the old file, so the folder only lists lines of what is loaded now.
    pub fn commit(self) -> Result<Option<PathBuf>> {
        let RejectsFile {
            temp_path,
            final_path,
            failed_path,
            out,
            count,
            ..
        } = self;
        let _ = std::fs::remove_file(&failed_path);
        let failed = |err| Error::io(format!("cannot write {}", final_path.display()), err);
        let file = out.into_inner().map_err(|err| failed(err.into_error()))?;
        file.sync_all().map_err(failed)?;
        drop(file);
        if count == 0 {
            let _ = std::fs::remove_file(&temp_path);
            match std::fs::remove_file(&final_path) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(failed(err)),
            }
            return Ok(None);
        }
        std::fs::rename(&temp_path, &final_path).map_err(failed)?;
        Ok(Some(final_path))
    }

    /// Keeps the rejects of a version that failed because of them beside the loaded version's,
    /// under [`Self::failed_path`], leaving the loaded version's rejects as they are.
    pub fn commit_failed(self) -> Result<PathBuf> {
        let failed = |err| Error::io(format!("cannot write {}", self.failed_path.display()), err);
        let file = self
            .out
            .into_inner()
            .map_err(|err| failed(err.into_error()))?;
        file.sync_all().map_err(failed)?;
        drop(file);
        std::fs::rename(&self.temp_path, &self.failed_path).map_err(failed)?;
        Ok(self.failed_path)
    }

    pub fn discard(self) {
        drop(self.out);
        let _ = std::fs::remove_file(&self.temp_path);
    }
}
