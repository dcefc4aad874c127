//! The spool: the records one source file will send, kept in an unnamed temporary file under
//! `state_dir` from the first batch until commit, so that a file which fails on the way sends
//! nothing and a large file is not held in memory.
//!
//! Per record: its key hash (16 bytes, big-endian), its content hash (16, big-endian), the
//! length of its JSON (u32, little-endian), its JSON. The writer and the reader of that format
//! sit side by side here.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::Path;

/// The writing side, while the file streams.
pub(super) struct SpoolWriter(BufWriter<File>);

impl SpoolWriter {
    /// A new, empty spool in `dir`; the file has no name and vanishes when dropped.
    pub(super) fn create(dir: &Path) -> std::io::Result<Self> {
        Ok(SpoolWriter(BufWriter::new(tempfile::tempfile_in(dir)?)))
    }

    /// Appends one record.
    pub(super) fn push(&mut self, key: u128, content: u128, json: &[u8]) -> std::io::Result<()> {
        write_record(&mut self.0, key, content, json)
    }

    /// Everything written so far, to be read from the start.
    pub(super) fn into_reader(self) -> std::io::Result<SpoolReader> {
        let mut file = self.0.into_inner().map_err(|err| err.into_error())?;
        file.rewind()?;
        Ok(SpoolReader(BufReader::new(file)))
    }
}

/// The reading side, at commit.
pub(super) struct SpoolReader(BufReader<File>);

impl SpoolReader {
    /// The next batch of at most `limit` records; empty at the end.
    pub(super) fn next_batch(&mut self, limit: usize) -> std::io::Result<SpooledBatch> {
        read_batch(&mut self.0, limit)
    }
}

fn write_record(
    spool: &mut impl Write,
    key: u128,
    content: u128,
    json: &[u8],
) -> std::io::Result<()> {
    let len = u32::try_from(json.len()).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a record of 4 GiB or more cannot be spooled",
        )
    })?;
    spool.write_all(&key.to_be_bytes())?;
    spool.write_all(&content.to_be_bytes())?;
    spool.write_all(&len.to_le_bytes())?;
    spool.write_all(json)
}

/// Records read back from the spool: their (key, content) hashes and their JSON, in order.
#[derive(Default)]
pub(super) struct SpooledBatch {
    pub(super) hashes: Vec<(u128, u128)>,
    pub(super) records: Vec<Vec<u8>>,
}

/// The next batch of at most `limit` records from the spool.
fn read_batch(spool: &mut impl Read, limit: usize) -> std::io::Result<SpooledBatch> {
    let mut batch = SpooledBatch::default();
    while batch.records.len() < limit {
        let mut head = [0u8; 36];
        match spool.read_exact(&mut head) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(err) => return Err(err),
        }
        let key = u128::from_be_bytes(head[0..16].try_into().expect("16 bytes"));
        let content = u128::from_be_bytes(head[16..32].try_into().expect("16 bytes"));
        let len = u32::from_le_bytes(head[32..36].try_into().expect("4 bytes")) as usize;
        let mut json = vec![0u8; len];
        spool.read_exact(&mut json)?;
        batch.hashes.push((key, content));
        batch.records.push(json);
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_as_written_in_batches() {
        let mut spool = Vec::new();
        let records: [(u128, u128, &[u8]); 3] = [
            (1, u128::MAX, br#"{"a":1}"#),
            (u128::MAX - 1, 2, b""),
            (3, 30, "{\"b\":\"국민\"}".as_bytes()),
        ];
        for (key, content, json) in records {
            write_record(&mut spool, key, content, json).unwrap();
        }
        let mut reader = spool.as_slice();
        let first = read_batch(&mut reader, 2).unwrap();
        assert_eq!(first.hashes, [(1, u128::MAX), (u128::MAX - 1, 2)]);
        assert_eq!(first.records, [br#"{"a":1}"#.to_vec(), Vec::new()]);
        let second = read_batch(&mut reader, 2).unwrap();
        assert_eq!(second.hashes, [(3, 30)]);
        assert_eq!(second.records, ["{\"b\":\"국민\"}".as_bytes().to_vec()]);
        assert!(read_batch(&mut reader, 2).unwrap().records.is_empty());
    }

    #[test]
    fn a_spool_file_reads_back_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = SpoolWriter::create(dir.path()).unwrap();
        spool.push(7, 70, b"{}").unwrap();
        let mut reader = spool.into_reader().unwrap();
        assert_eq!(reader.next_batch(10).unwrap().hashes, [(7, 70)]);
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "no named file"
        );
    }
}
