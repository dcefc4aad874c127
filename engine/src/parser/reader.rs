//! The pull side of a [`Decoder`]: reads a `Read` to its end and hands out what the decoder
//! produced, in order — the only read/decode/drain loop in the engine.
//!
//! Rejects come out before the batches of the same input: a caller that writes rejects as they
//! come and stops at a limit (`max_rejects`) stops before it passes on rows of a unit that will
//! not load. The reader also hashes the bytes it reads, so a unit's content hash costs no second
//! pass.

use super::{Decoder, Detected, ParseStats, Reject};
use crate::error::{Error, Result};
use arrow::record_batch::RecordBatch;
use std::io::Read;
use xxhash_rust::xxh3::Xxh3;

/// Bytes read at a time unless told otherwise.
const READ_CHUNK: usize = 1 << 20;

/// What a [`BatchReader`] hands out.
#[derive(Debug)]
pub enum Decoded {
    Batch(RecordBatch),
    /// Lines rejected, in line order; never empty.
    Rejects(Vec<Reject>),
}

/// Reads `input` through `decoder`; an iterator of [`Decoded`] items that ends after the last
/// one, or after the first error.
pub struct BatchReader<R> {
    input: R,
    decoder: Box<dyn Decoder>,
    /// The unit being read, as named in errors.
    what: String,
    buffer: Vec<u8>,
    finished: bool,
    hasher: Xxh3,
    on_read: Option<Box<dyn FnMut(u64) + Send>>,
}

impl<R: Read> BatchReader<R> {
    /// A reader of `input`, named `what` in errors.
    pub fn new(input: R, decoder: Box<dyn Decoder>, what: impl Into<String>) -> Self {
        BatchReader {
            input,
            decoder,
            what: what.into(),
            buffer: vec![0; READ_CHUNK],
            finished: false,
            hasher: Xxh3::new(),
            on_read: None,
        }
    }

    /// Reads at most `bytes` at a time (at least 1).
    pub fn with_chunk_size(mut self, bytes: usize) -> Self {
        self.buffer = vec![0; bytes.max(1)];
        self
    }

    /// Calls `progress` with the number of bytes of every read.
    pub fn on_read(mut self, progress: impl FnMut(u64) + Send + 'static) -> Self {
        self.on_read = Some(Box::new(progress));
        self
    }

    /// What the decoder has seen so far.
    pub fn stats(&self) -> &ParseStats {
        self.decoder.stats()
    }

    /// What the decoder found out about the text.
    pub fn detected(&self) -> Detected {
        self.decoder.detected()
    }

    /// The xxh3-128 hash (hex) of the bytes read so far: of the whole input once the reader
    /// has ended.
    pub fn content_hash(&self) -> String {
        format!("{:032x}", self.hasher.digest128())
    }

    /// Reads the next piece of input into the decoder, or tells it the input ended.
    fn fill(&mut self) -> Result<()> {
        let read = loop {
            match self.input.read(&mut self.buffer) {
                Ok(read) => break read,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(Error::io(format!("cannot read {}", self.what), err)),
            }
        };
        let decoded = if read == 0 {
            self.finished = true;
            self.decoder.finish()
        } else {
            let bytes = &self.buffer[..read];
            self.hasher.update(bytes);
            if let Some(progress) = &mut self.on_read {
                progress(read as u64);
            }
            self.decoder.decode(bytes)
        };
        decoded.map_err(|err| Error::io(format!("{}: cannot {}", self.what, err.doing), err.source))
    }
}

impl<R: Read> Iterator for BatchReader<R> {
    type Item = Result<Decoded>;

    fn next(&mut self) -> Option<Result<Decoded>> {
        loop {
            let rejects = self.decoder.take_rejects();
            if !rejects.is_empty() {
                return Some(Ok(Decoded::Rejects(rejects)));
            }
            if let Some(batch) = self.decoder.next_batch() {
                return Some(Ok(Decoded::Batch(batch)));
            }
            if self.finished {
                return None;
            }
            if let Err(err) = self.fill() {
                self.finished = true;
                return Some(Err(err));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::toss::{FileContext, ParserOptions, RecordKind, TossDecoder};

    fn decoder() -> Box<dyn Decoder> {
        Box::new(TossDecoder::new(
            ParserOptions::default(),
            FileContext {
                record_kind: RecordKind::Auth,
                trxdate: chrono::NaiveDate::from_ymd_opt(2007, 7, 6).unwrap(),
                source_file: "f.dat".into(),
            },
        ))
    }

    /// Gives `good` bytes, then fails.
    struct Failing<'a> {
        good: &'a [u8],
    }

    impl Read for Failing<'_> {
        fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
            if self.good.is_empty() {
                return Err(std::io::Error::other("the disk went away"));
            }
            let n = self.good.read(buffer)?;
            Ok(n)
        }
    }

    #[test]
    fn a_read_error_ends_the_reader_with_the_unit_named() {
        let line = b"toss;SC0010;t1;o1;;;;1000;N;20070706235927;1;10\n";
        let mut reader = BatchReader::new(Failing { good: line }, decoder(), "f.dat");
        let items: Vec<_> = reader.by_ref().collect();
        let last = items.last().expect("an item");
        let message = last.as_ref().expect_err("the error comes last").to_string();
        assert!(message.contains("cannot read f.dat"), "{message}");
        assert!(message.contains("the disk went away"), "{message}");
        assert!(reader.next().is_none(), "nothing after the error");
    }

    #[test]
    fn rejects_come_before_the_batch_of_the_same_input_and_the_hash_covers_every_byte() {
        let input = b"not a record\ntoss;SC0010;t1;o1;;;;1000;N;20070706235927;1;10\n";
        let mut reader = BatchReader::new(&input[..], decoder(), "f.dat").with_chunk_size(7);
        let kinds: Vec<&str> = reader
            .by_ref()
            .map(|item| match item.unwrap() {
                Decoded::Rejects(_) => "rejects",
                Decoded::Batch(_) => "batch",
            })
            .collect();
        assert_eq!(kinds, ["rejects", "batch"]);
        assert_eq!(reader.stats().rows, 1);
        assert_eq!(
            reader.content_hash(),
            format!("{:032x}", xxhash_rust::xxh3::xxh3_128(input))
        );
    }
}
