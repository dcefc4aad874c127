//! The COPY stream of a unit that goes straight into the table, kept in an unlinked temporary
//! file while it is sent. The server only tells whether that COPY worked once all of it has
//! arrived — a key another unit already holds fails it at the end — and then the rows must go
//! the upsert's way after all: the kept stream is replayed into the staging table, byte for
//! byte (both COPYs take the same columns in the same types), and the unit's batches, long gone
//! from memory, are not needed again.
//!
//! A file and not memory, so that a load's memory stays that of one batch however large the
//! unit; the file is deleted when the load ends, usually before the kernel ever writes it out.

use bytes::{Bytes, BytesMut};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// Bytes read back per chunk when replaying.
const REPLAY_CHUNK: usize = 1 << 20;

/// A COPY stream as sent so far.
pub struct Spill {
    file: File,
}

impl Spill {
    /// An empty stream in a new temporary file (already unlinked; `TMPDIR` says where).
    pub fn new() -> io::Result<Spill> {
        Ok(Spill {
            file: tempfile::tempfile()?,
        })
    }

    /// Appends a chunk as it is sent.
    pub fn append(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.file.write_all(chunk)
    }

    /// The whole stream from its start, in chunks to send again.
    pub fn replay(mut self) -> io::Result<impl Iterator<Item = io::Result<Bytes>>> {
        self.file.seek(SeekFrom::Start(0))?;
        let mut file = self.file;
        Ok(std::iter::from_fn(move || {
            let mut chunk = BytesMut::zeroed(REPLAY_CHUNK);
            let mut filled = 0;
            while filled < REPLAY_CHUNK {
                match file.read(&mut chunk[filled..]) {
                    Ok(0) => break,
                    Ok(read) => filled += read,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(err) => return Some(Err(err)),
                }
            }
            (filled > 0).then(|| {
                chunk.truncate(filled);
                Ok(chunk.freeze())
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_comes_back_whole_and_in_order() {
        let mut spill = Spill::new().unwrap();
        let first: Vec<u8> = (0..REPLAY_CHUNK + 10).map(|n| (n % 251) as u8).collect();
        spill.append(&first).unwrap();
        spill.append(b"end").unwrap();
        let chunks: Vec<Bytes> = spill.replay().unwrap().map(Result::unwrap).collect();
        assert_eq!(
            chunks.len(),
            2,
            "{:?}",
            chunks.iter().map(Bytes::len).collect::<Vec<_>>()
        );
        let mut expected = first;
        expected.extend_from_slice(b"end");
        assert_eq!(chunks.concat(), expected);
    }

    #[test]
    fn an_empty_stream_replays_as_nothing() {
        let spill = Spill::new().unwrap();
        assert_eq!(spill.replay().unwrap().count(), 0);
    }
}
