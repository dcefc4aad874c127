//! The one way the engine opens its state file, `{state_dir}/state.sqlite`: the run
//! bookkeeping ([`crate::state`]) and sinks that remember what they delivered (through
//! [`crate::sinks::SinkMemory`]) share the file, so they share its settings.
//!
//! SQLite (bundled, WAL, `synchronous=FULL`) is an embedded store that survives `kill -9` and a
//! power cut with its transactions intact, and that an operator can open with `sqlite3`.

use crate::error::{Error, Result};
use rusqlite::Connection;
use std::path::{Path, PathBuf};

/// A connection to the state file, with its path for messages.
pub struct StateFile {
    pub connection: Connection,
    pub path: PathBuf,
}

impl StateFile {
    /// Opens (creating when needed) `{state_dir}/state.sqlite`.
    pub fn open(state_dir: &Path) -> Result<Self> {
        crate::private::create_dir_all(state_dir).map_err(|err| {
            Error::io(
                format!("cannot create state_dir {}", state_dir.display()),
                err,
            )
        })?;
        let path = state_dir.join("state.sqlite");
        crate::private::touch_file(&path)
            .map_err(|err| Error::io(format!("cannot create {}", path.display()), err))?;
        let connection = Connection::open(&path).map_err(|source| Error::State {
            path: path.clone(),
            source,
        })?;
        let file = StateFile { connection, path };
        file.connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = FULL;
                 PRAGMA busy_timeout = 5000;",
            )
            .map_err(|err| file.failed(err))?;
        Ok(file)
    }

    /// A SQLite error of this file, as the engine reports it.
    pub fn failed(&self, source: rusqlite::Error) -> Error {
        Error::State {
            path: self.path.clone(),
            source,
        }
    }
}
