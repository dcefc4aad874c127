//! What each pipeline has loaded, kept in one SQLite file under `state_dir`.
//!
//! The re-load rules hang on this: a file whose version (size and modification time, or content
//! hash) was loaded before is skipped, and a version is recorded only after every sink reported
//! the data durable. A crash between a sink's commit and this record therefore means the file is
//! loaded again on the next run, which the sinks absorb (Parquet replaces the file's output,
//! Postgres upserts): nothing lost, nothing doubled.
//!
//! Sinks that must remember what they delivered keep their own tables in the same file (see
//! [`crate::sinks::SinkMemory`]); this module knows none of them.
//!
//! SQLite (bundled, WAL, `synchronous=FULL`) is an embedded store that survives `kill -9` and a
//! power cut with its transactions intact, and that an operator can open with `sqlite3` to see
//! what was loaded.

use crate::error::{Error, Result};
use crate::sqlite::StateFile;
use rusqlite::{Connection, OptionalExtension, params};
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::unit::FileVersion;

/// A file version that every sink had when it was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedVersion {
    pub version: FileVersion,
    pub rows: u64,
    pub rejected: u64,
    /// RFC 3339 time of the load.
    pub loaded_at: String,
}

/// The state of every pipeline that uses one `state_dir`.
pub struct StateStore {
    connection: Connection,
    path: PathBuf,
}

impl StateStore {
    /// Opens (creating when needed) `{state_dir}/state.sqlite`.
    pub fn open(state_dir: &Path) -> Result<Self> {
        let StateFile { connection, path } = StateFile::open(state_dir)?;
        let store = StateStore { connection, path };
        store
            .connection
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS loaded_files (
                     pipeline     TEXT    NOT NULL,
                     source_file  TEXT    NOT NULL,
                     size         INTEGER,
                     modified_ns  INTEGER,
                     content_hash TEXT,
                     rows         INTEGER NOT NULL,
                     rejected     INTEGER NOT NULL,
                     loaded_at    TEXT    NOT NULL,
                     PRIMARY KEY (pipeline, source_file)
                 );
                 CREATE TABLE IF NOT EXISTS runs (
                     pipeline    TEXT    NOT NULL,
                     started_at  TEXT    NOT NULL,
                     finished_at TEXT    NOT NULL,
                     dates       TEXT    NOT NULL,
                     outcome     TEXT    NOT NULL,
                     loaded      INTEGER NOT NULL,
                     skipped     INTEGER NOT NULL,
                     deferred    INTEGER NOT NULL,
                     failed      INTEGER NOT NULL,
                     rows        INTEGER NOT NULL,
                     message     TEXT    NOT NULL
                 );
                 CREATE TABLE IF NOT EXISTS sink_files (
                     pipeline     TEXT    NOT NULL,
                     sink         TEXT    NOT NULL,
                     source_file  TEXT    NOT NULL,
                     content_hash TEXT    NOT NULL,
                     rows         INTEGER NOT NULL,
                     committed_at TEXT    NOT NULL,
                     location     TEXT,
                     PRIMARY KEY (pipeline, sink, source_file)
                 );
                 CREATE TABLE IF NOT EXISTS watchers (
                     pipeline   TEXT    NOT NULL PRIMARY KEY,
                     pid        INTEGER NOT NULL,
                     started_at TEXT    NOT NULL,
                     next_wake  TEXT
                 );",
            )
            .map_err(|err| store.failed(err))?;
        store.add_column_if_missing("sink_files", "location", "TEXT")?;
        Ok(store)
    }

    /// Adds a column a newer engine keeps to a table an older engine created. Two processes
    /// may open the file at once (`engine watch` and `engine status`), so the look and the
    /// change are one write transaction: the second waits, then finds the column.
    fn add_column_if_missing(&self, table: &str, column: &str, kind: &str) -> Result<()> {
        let present = || -> rusqlite::Result<bool> {
            self.connection.query_row(
                "SELECT count(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
                params![table, column],
                |row| row.get(0),
            )
        };
        if present().map_err(|err| self.failed(err))? {
            return Ok(());
        }
        let migrate = || -> rusqlite::Result<()> {
            self.connection.execute_batch("BEGIN IMMEDIATE")?;
            if !present()? {
                self.connection
                    .execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))?;
            }
            self.connection.execute_batch("COMMIT")
        };
        migrate().map_err(|err| {
            let _ = self.connection.execute_batch("ROLLBACK");
            self.failed(err)
        })
    }

    fn failed(&self, source: rusqlite::Error) -> Error {
        Error::State {
            path: self.path.clone(),
            source,
        }
    }

    /// The version of `source_file` last loaded by `pipeline`, if any.
    pub fn loaded(&self, pipeline: &str, source_file: &str) -> Result<Option<LoadedVersion>> {
        self.connection
            .query_row(
                "SELECT size, modified_ns, content_hash, rows, rejected, loaded_at
                   FROM loaded_files WHERE pipeline = ?1 AND source_file = ?2",
                params![pipeline, source_file],
                |row| {
                    Ok(LoadedVersion {
                        version: FileVersion {
                            size: row.get::<_, Option<i64>>(0)?.map(|size| size as u64),
                            modified_ns: row.get(1)?,
                            content_hash: row.get(2)?,
                        },
                        rows: row.get::<_, i64>(3)? as u64,
                        rejected: row.get::<_, i64>(4)? as u64,
                        loaded_at: row.get(5)?,
                    })
                },
            )
            .optional()
            .map_err(|err| self.failed(err))
    }

    /// Records that every sink of `pipeline` now holds this version of `source_file`.
    pub fn record_loaded(
        &self,
        pipeline: &str,
        source_file: &str,
        loaded: &LoadedVersion,
    ) -> Result<()> {
        self.connection
            .execute(
                "INSERT INTO loaded_files
                     (pipeline, source_file, size, modified_ns, content_hash, rows, rejected, loaded_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (pipeline, source_file) DO UPDATE SET
                     size = excluded.size, modified_ns = excluded.modified_ns,
                     content_hash = excluded.content_hash, rows = excluded.rows,
                     rejected = excluded.rejected, loaded_at = excluded.loaded_at",
                params![
                    pipeline,
                    source_file,
                    loaded.version.size.map(|size| size as i64),
                    loaded.version.modified_ns,
                    loaded.version.content_hash,
                    loaded.rows as i64,
                    loaded.rejected as i64,
                    loaded.loaded_at,
                ],
            )
            .map_err(|err| self.failed(err))?;
        Ok(())
    }
}

/// Which version of a source file one sink holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SinkFile {
    pub sink: String,
    pub source_file: String,
    pub content_hash: String,
    pub rows: u64,
    pub committed_at: String,
    /// Where the sink put it, when it said (a Parquet file's path in the lake).
    pub location: Option<String>,
}

/// A running `engine watch`, as it announced itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Watcher {
    pub pid: u32,
    pub started_at: String,
    pub next_wake: Option<String>,
}

/// One finished run, as `engine status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunRecord {
    pub started_at: String,
    pub finished_at: String,
    pub dates: String,
    /// `succeeded` or `failed`.
    pub outcome: String,
    pub loaded: u64,
    pub skipped: u64,
    pub deferred: u64,
    pub failed: u64,
    pub rows: u64,
    /// The failures, one per line (empty when none).
    pub message: String,
}

/// A loaded file, as `engine status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LoadedFile {
    pub source_file: String,
    pub size: Option<u64>,
    pub content_hash: Option<String>,
    pub rows: u64,
    pub rejected: u64,
    pub loaded_at: String,
}

impl StateStore {
    /// Records a finished run.
    pub fn record_run(&self, pipeline: &str, run: &RunRecord) -> Result<()> {
        self.connection
            .execute(
                "INSERT INTO runs (pipeline, started_at, finished_at, dates, outcome, loaded,
                                   skipped, deferred, failed, rows, message)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    pipeline,
                    run.started_at,
                    run.finished_at,
                    run.dates,
                    run.outcome,
                    run.loaded as i64,
                    run.skipped as i64,
                    run.deferred as i64,
                    run.failed as i64,
                    run.rows as i64,
                    run.message,
                ],
            )
            .map_err(|err| self.failed(err))?;
        Ok(())
    }

    /// The last finished run of `pipeline`.
    pub fn last_run(&self, pipeline: &str) -> Result<Option<RunRecord>> {
        self.connection
            .query_row(
                "SELECT started_at, finished_at, dates, outcome, loaded, skipped, deferred,
                        failed, rows, message
                   FROM runs WHERE pipeline = ?1 ORDER BY rowid DESC LIMIT 1",
                params![pipeline],
                |row| {
                    Ok(RunRecord {
                        started_at: row.get(0)?,
                        finished_at: row.get(1)?,
                        dates: row.get(2)?,
                        outcome: row.get(3)?,
                        loaded: row.get::<_, i64>(4)? as u64,
                        skipped: row.get::<_, i64>(5)? as u64,
                        deferred: row.get::<_, i64>(6)? as u64,
                        failed: row.get::<_, i64>(7)? as u64,
                        rows: row.get::<_, i64>(8)? as u64,
                        message: row.get(9)?,
                    })
                },
            )
            .optional()
            .map_err(|err| self.failed(err))
    }

    /// Records that a sink committed a version of a source file (its content hash).
    pub fn record_sink_commit(&self, pipeline: &str, commit: &SinkFile) -> Result<()> {
        self.connection
            .execute(
                "INSERT INTO sink_files (pipeline, sink, source_file, content_hash, rows,
                                         committed_at, location)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (pipeline, sink, source_file) DO UPDATE SET
                     content_hash = excluded.content_hash, rows = excluded.rows,
                     committed_at = excluded.committed_at, location = excluded.location",
                params![
                    pipeline,
                    commit.sink,
                    commit.source_file,
                    commit.content_hash,
                    commit.rows as i64,
                    commit.committed_at,
                    commit.location
                ],
            )
            .map_err(|err| self.failed(err))?;
        Ok(())
    }

    /// What every sink of `pipeline` committed, by sink and file.
    pub fn sink_files(&self, pipeline: &str) -> Result<Vec<SinkFile>> {
        let mut statement = self
            .connection
            .prepare(
                "SELECT sink, source_file, content_hash, rows, committed_at, location
                   FROM sink_files WHERE pipeline = ?1 ORDER BY source_file, sink",
            )
            .map_err(|err| self.failed(err))?;
        let files = statement
            .query_map(params![pipeline], |row| {
                Ok(SinkFile {
                    sink: row.get(0)?,
                    source_file: row.get(1)?,
                    content_hash: row.get(2)?,
                    rows: row.get::<_, i64>(3)? as u64,
                    committed_at: row.get(4)?,
                    location: row.get(5)?,
                })
            })
            .map_err(|err| self.failed(err))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|err| self.failed(err))?;
        Ok(files)
    }

    /// Announces a watcher of `pipeline` (or updates its next wake).
    pub fn record_watcher(&self, pipeline: &str, watcher: &Watcher) -> Result<()> {
        self.connection
            .execute(
                "INSERT INTO watchers (pipeline, pid, started_at, next_wake) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (pipeline) DO UPDATE SET pid = excluded.pid,
                     started_at = excluded.started_at, next_wake = excluded.next_wake",
                params![pipeline, watcher.pid, watcher.started_at, watcher.next_wake],
            )
            .map_err(|err| self.failed(err))?;
        Ok(())
    }

    /// Removes the watcher of `pipeline` when it stops.
    pub fn forget_watcher(&self, pipeline: &str) -> Result<()> {
        self.connection
            .execute(
                "DELETE FROM watchers WHERE pipeline = ?1",
                params![pipeline],
            )
            .map_err(|err| self.failed(err))?;
        Ok(())
    }

    /// The watcher of `pipeline` as last announced (it may have died since: see its pid).
    pub fn watcher(&self, pipeline: &str) -> Result<Option<Watcher>> {
        self.connection
            .query_row(
                "SELECT pid, started_at, next_wake FROM watchers WHERE pipeline = ?1",
                params![pipeline],
                |row| {
                    Ok(Watcher {
                        pid: row.get(0)?,
                        started_at: row.get(1)?,
                        next_wake: row.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(|err| self.failed(err))
    }

    /// Every file `pipeline` has loaded, by name.
    pub fn loaded_files(&self, pipeline: &str) -> Result<Vec<LoadedFile>> {
        let mut statement = self
            .connection
            .prepare(
                "SELECT source_file, size, rows, rejected, loaded_at, content_hash FROM loaded_files
                  WHERE pipeline = ?1 ORDER BY source_file",
            )
            .map_err(|err| self.failed(err))?;
        let files = statement
            .query_map(params![pipeline], |row| {
                Ok(LoadedFile {
                    source_file: row.get(0)?,
                    size: row.get::<_, Option<i64>>(1)?.map(|size| size as u64),
                    content_hash: row.get(5)?,
                    rows: row.get::<_, i64>(2)? as u64,
                    rejected: row.get::<_, i64>(3)? as u64,
                    loaded_at: row.get(4)?,
                })
            })
            .map_err(|err| self.failed(err))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|err| self.failed(err))?;
        Ok(files)
    }
}

/// Keeps two runs of one pipeline from interleaving their loads. Held for the life of the run;
/// the operating system releases it when the process ends, even after `kill -9`.
pub struct PipelineLock {
    _file: File,
}

impl PipelineLock {
    pub fn acquire(state_dir: &Path, pipeline: &str) -> Result<Self> {
        let path = state_dir.join(format!("{pipeline}.lock"));
        let file = crate::private::create_file(&path)
            .map_err(|err| Error::io(format!("cannot create {}", path.display()), err))?;
        match file.try_lock() {
            Ok(()) => Ok(PipelineLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::io(
                format!(
                    "pipeline `{pipeline}` is already running ({} is locked); wait for that run to end",
                    path.display()
                ),
                std::io::Error::from(std::io::ErrorKind::WouldBlock),
            )),
            Err(std::fs::TryLockError::Error(err)) => {
                Err(Error::io(format!("cannot lock {}", path.display()), err))
            }
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_state_file_of_an_older_engine_gets_the_columns_it_lacks() {
        let dir = tempfile::tempdir().unwrap();
        let old = rusqlite::Connection::open(dir.path().join("state.sqlite")).unwrap();
        old.execute_batch(
            "CREATE TABLE sink_files (pipeline TEXT NOT NULL, sink TEXT NOT NULL,
                 source_file TEXT NOT NULL, content_hash TEXT NOT NULL, rows INTEGER NOT NULL,
                 committed_at TEXT NOT NULL, PRIMARY KEY (pipeline, sink, source_file));
             INSERT INTO sink_files VALUES ('p', 'lake', 'a.dat', 'h', 3, 't');",
        )
        .unwrap();
        drop(old);
        // Twice: the second open finds the column there.
        for _ in 0..2 {
            let store = StateStore::open(dir.path()).unwrap();
            let files = store.sink_files("p").unwrap();
            assert_eq!(files.len(), 1);
            assert_eq!(files[0].location, None);
        }
    }

    use super::*;

    fn version(size: u64, modified_ns: i64) -> FileVersion {
        FileVersion {
            size: Some(size),
            modified_ns: Some(modified_ns),
            content_hash: None,
        }
    }

    #[test]
    fn a_recorded_version_is_found_again_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let loaded = LoadedVersion {
            version: version(120, 7),
            rows: 4,
            rejected: 1,
            loaded_at: "2026-11-27T10:00:00+09:00".into(),
        };
        StateStore::open(dir.path())
            .unwrap()
            .record_loaded("daily", "toss_AUTH_20070706.dat", &loaded)
            .unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        assert_eq!(
            store.loaded("daily", "toss_AUTH_20070706.dat").unwrap(),
            Some(loaded)
        );
        assert_eq!(
            store.loaded("other", "toss_AUTH_20070706.dat").unwrap(),
            None
        );
    }

    #[test]
    fn versions_compare_by_listing_or_by_content() {
        assert!(version(10, 1).same_as(&version(10, 1)));
        assert!(!version(10, 1).same_as(&version(11, 1)));
        assert!(!version(10, 1).same_as(&version(10, 2)));
        let hashed = |hash: &str| FileVersion {
            content_hash: Some(hash.into()),
            ..FileVersion::default()
        };
        assert!(hashed("ab").same_as(&hashed("ab")));
        assert!(!hashed("ab").same_as(&hashed("cd")));
    }

    #[test]
    fn a_second_run_of_the_same_pipeline_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _held = PipelineLock::acquire(dir.path(), "daily").unwrap();
        assert!(PipelineLock::acquire(dir.path(), "daily").is_err());
        assert!(PipelineLock::acquire(dir.path(), "other").is_ok());
    }
}
