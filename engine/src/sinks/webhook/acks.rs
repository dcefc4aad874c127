//! What the receiver acknowledged (answered 2xx), per sink and unit: the hash of each record's
//! key and of its content as it was sent, kept in the webhook's own table of the state file
//! (see [`crate::sinks::SinkMemory`]). A re-load sends only records whose key is missing here or
//! whose content hash differs.

use crate::error::Result;
use crate::sinks::SinkMemory;
use crate::sqlite::StateFile;
use rusqlite::params;
use std::collections::HashMap;

/// The webhook's acknowledgements table.
pub(super) struct Acknowledgements {
    file: StateFile,
    table: String,
}

impl Acknowledgements {
    /// Opens the table, creating it when needed.
    pub(super) fn open(memory: &SinkMemory) -> Result<Self> {
        let file = memory.open()?;
        let table = memory.table("sent");
        file.connection
            .execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS {table} (
                     sink_id     TEXT NOT NULL,
                     source_file TEXT NOT NULL,
                     key_hash    BLOB NOT NULL,
                     row_hash    BLOB NOT NULL,
                     PRIMARY KEY (sink_id, source_file, key_hash)
                 ) WITHOUT ROWID;"
            ))
            .map_err(|err| file.failed(err))?;
        Ok(Acknowledgements { file, table })
    }

    /// Every acknowledged record of `unit` for the webhook sink `sink_id`: key hash → content
    /// hash.
    pub(super) fn sent(&self, sink_id: &str, unit: &str) -> Result<HashMap<u128, u128>> {
        let failed = |err| self.file.failed(err);
        let mut statement = self
            .file
            .connection
            .prepare(&format!(
                "SELECT key_hash, row_hash FROM {} WHERE sink_id = ?1 AND source_file = ?2",
                self.table
            ))
            .map_err(failed)?;
        let rows = statement
            .query_map(params![sink_id, unit], |row| {
                Ok((hash_from_blob(row.get(0)?), hash_from_blob(row.get(1)?)))
            })
            .map_err(failed)?;
        let mut sent = HashMap::new();
        for row in rows {
            let (key, content) = row.map_err(failed)?;
            // A blob of another length (written by hand) is ignored: that record is sent again.
            if let (Some(key), Some(content)) = (key, content) {
                sent.insert(key, content);
            }
        }
        Ok(sent)
    }

    /// Records, in one transaction, that the receiver acknowledged these (key hash, content
    /// hash) pairs of `unit`.
    pub(super) fn record(&self, sink_id: &str, unit: &str, sent: &[(u128, u128)]) -> Result<()> {
        let failed = |err| self.file.failed(err);
        let transaction = self
            .file
            .connection
            .unchecked_transaction()
            .map_err(failed)?;
        {
            let mut statement = transaction
                .prepare_cached(&format!(
                    "INSERT INTO {} (sink_id, source_file, key_hash, row_hash)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (sink_id, source_file, key_hash)
                     DO UPDATE SET row_hash = excluded.row_hash",
                    self.table
                ))
                .map_err(failed)?;
            for (key, content) in sent {
                statement
                    .execute(params![
                        sink_id,
                        unit,
                        &key.to_be_bytes()[..],
                        &content.to_be_bytes()[..]
                    ])
                    .map_err(failed)?;
            }
        }
        transaction.commit().map_err(failed)
    }
}

fn hash_from_blob(blob: Vec<u8>) -> Option<u128> {
    <[u8; 16]>::try_from(blob.as_slice())
        .ok()
        .map(u128::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::SinkContext;

    fn open(dir: &std::path::Path) -> Acknowledgements {
        let context = SinkContext {
            pipeline: "daily",
            state_dir: dir,
            record_key: &[],
        };
        Acknowledgements::open(&context.memory("webhook")).unwrap()
    }

    #[test]
    fn acknowledgements_are_kept_per_sink_and_unit_and_updated() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        store
            .record("daily:a", "f.dat", &[(1, 10), (2, 20)])
            .unwrap();
        store
            .record("daily:a", "f.dat", &[(2, 21), (u128::MAX, 3)])
            .unwrap();
        store.record("daily:b", "f.dat", &[(1, 99)]).unwrap();
        let sent = store.sent("daily:a", "f.dat").unwrap();
        assert_eq!(sent.len(), 3);
        assert_eq!((sent[&1], sent[&2], sent[&u128::MAX]), (10, 21, 3));
        // Another connection to the same file sees them, under the webhook's own table.
        let again = open(dir.path());
        assert_eq!(again.sent("daily:b", "f.dat").unwrap()[&1], 99);
        assert!(again.sent("daily:a", "g.dat").unwrap().is_empty());
        assert_eq!(again.table, "webhook_sent");
    }
}
