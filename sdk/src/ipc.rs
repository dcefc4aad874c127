//! Arrow IPC streams as the contract carries them: one schema message followed by exactly one
//! record batch message, uncompressed. A stream with a schema and no batch reads as an empty
//! batch of that schema: some Arrow libraries (apache-arrow for JavaScript among them) write an
//! empty table that way, and the contract says since 1.0 that it means exactly that.
//!
//! The export glue uses these to talk to the engine; in native tests they let you run a plugin
//! on exactly the bytes the engine would send. The engine frames its side of the boundary with
//! the same code ([`write_stream`], [`read_stream`]), so the two cannot drift apart.

use std::fmt;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::buffer::Buffer;
use arrow::datatypes::Schema;
use arrow::error::ArrowError;
use arrow::ipc::reader::StreamDecoder;
use arrow::ipc::writer::{IpcWriteOptions, StreamWriter};

use crate::Error;

/// Encodes `batch` as an uncompressed Arrow IPC stream: schema, the batch, end-of-stream marker.
pub fn encode(batch: &RecordBatch) -> Result<Vec<u8>, Error> {
    write_stream(batch)
        .map_err(|e| Error::other(format!("cannot encode the output batch as Arrow IPC: {e}")))
}

/// [`encode`] with Arrow's own error, for a caller that puts it into words itself (the engine
/// frames the batches it sends with this function).
pub fn write_stream(batch: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
    let mut stream = Vec::new();
    write_stream_into(batch, &mut stream)?;
    Ok(stream)
}

/// [`write_stream`] into `stream`, which is emptied first: a caller that frames batch after
/// batch keeps one buffer, and its memory is not fresh (page-faulted) at every call.
pub fn write_stream_into(batch: &RecordBatch, stream: &mut Vec<u8>) -> Result<(), ArrowError> {
    // The default options write IPC format V5, 64-byte aligned, without compression.
    let options = IpcWriteOptions::default();
    stream.clear();
    // Sized by the bytes the batch really spans: a decoded batch shares one input buffer among
    // its arrays, so `get_array_memory_size` would count that buffer once per column.
    stream.reserve(encoded_size_hint(batch));
    let mut writer = StreamWriter::try_new_with_options(stream, &batch.schema(), options)?;
    writer.write(batch)?;
    writer.finish()
}

/// Roughly the bytes `batch` takes as IPC: its arrays' slices, plus room for the messages.
pub fn encoded_size_hint(batch: &RecordBatch) -> usize {
    let data: usize = batch
        .columns()
        .iter()
        .map(|column| column.to_data().get_slice_memory_size().unwrap_or(0))
        .sum();
    data + 8 * 1024
}

/// Decodes an Arrow IPC stream holding exactly one record batch. Copies `bytes`; prefer
/// [`decode_owned`] when you own them.
pub fn decode(bytes: &[u8]) -> Result<RecordBatch, Error> {
    read_stream(Buffer::from(bytes)).map_err(StreamError::into_error)
}

/// Decodes an Arrow IPC stream holding exactly one record batch, taking ownership of the bytes:
/// array buffers that are suitably aligned in them are used in place, without a copy.
pub fn decode_owned(bytes: Vec<u8>) -> Result<RecordBatch, Error> {
    read_stream(Buffer::from_vec(bytes)).map_err(StreamError::into_error)
}

/// Why bytes are not the stream the contract carries, before anyone puts it into words: the SDK
/// describes it to the engine as an [`Error`], the engine describes a plugin's bad answer to the
/// merchant in its own words.
#[derive(Debug)]
#[non_exhaustive]
pub enum StreamError {
    /// No bytes at all, or none that start an IPC stream.
    Empty,
    /// Not an Arrow IPC stream, a damaged one, or one Arrow cannot read (compressed, say).
    Invalid(ArrowError),
    /// More than one record batch.
    MoreThanOneBatch,
}

impl StreamError {
    /// The SDK's own words for it, as an [`Error::Other`].
    fn into_error(self) -> Error {
        Error::other(match self {
            Self::Empty => "the input is empty or not an Arrow IPC stream".to_string(),
            Self::Invalid(e) => format!("the input is not a valid Arrow IPC stream: {e}"),
            Self::MoreThanOneBatch => "the input Arrow IPC stream holds more than one record \
                                       batch; the contract allows exactly one"
                .to_string(),
        })
    }
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "empty, or not an Arrow IPC stream"),
            Self::Invalid(e) => write!(f, "not a valid Arrow IPC stream: {e}"),
            Self::MoreThanOneBatch => {
                write!(f, "an Arrow IPC stream with more than one record batch")
            }
        }
    }
}

impl std::error::Error for StreamError {}

/// The framing both sides of the contract use: reads one Arrow IPC stream that must hold at most
/// one record batch, with the reason as data when it does not. A schema with no batch is an
/// empty batch of that schema. Array buffers suitably aligned in `buffer` are used in place.
pub fn read_stream(mut buffer: Buffer) -> Result<RecordBatch, StreamError> {
    refuse_compression(buffer.as_slice())?;
    let mut decoder = StreamDecoder::new();
    let mut batch = None;
    while !buffer.is_empty() {
        if let Some(next) = decoder.decode(&mut buffer).map_err(StreamError::Invalid)? {
            if batch.is_some() {
                return Err(StreamError::MoreThanOneBatch);
            }
            batch = Some(next);
        }
    }
    decoder.finish().map_err(StreamError::Invalid)?;
    match (batch, decoder.schema()) {
        (Some(batch), _) => Ok(batch),
        (None, Some(schema)) => Ok(RecordBatch::new_empty(schema)),
        (None, None) => Err(StreamError::Empty),
    }
}

/// Refuses a stream whose batches say they are compressed, before any is decoded. The contract
/// forbids compression, and a reader built with Arrow's codecs (the engine's, which its lake
/// needs) would otherwise trust the decompressed length a batch claims and allocate it. Only
/// the messages' headers are read; anything malformed is left for the decoder to name.
fn refuse_compression(bytes: &[u8]) -> Result<(), StreamError> {
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    let mut at = 0usize;
    while let Some(first) = word(at) {
        let (length, start) = if first == 0xFFFF_FFFF {
            match word(at + 4) {
                Some(length) => (length as usize, at + 8),
                None => return Ok(()),
            }
        } else {
            (first as usize, at + 4)
        };
        if length == 0 {
            return Ok(());
        }
        let Some(metadata) = bytes.get(start..start.saturating_add(length)) else {
            return Ok(());
        };
        let Ok(message) = arrow::ipc::root_as_message(metadata) else {
            return Ok(());
        };
        let compressed = match message.header_type() {
            arrow::ipc::MessageHeader::RecordBatch => message
                .header_as_record_batch()
                .is_some_and(|batch| batch.compression().is_some()),
            arrow::ipc::MessageHeader::DictionaryBatch => message
                .header_as_dictionary_batch()
                .and_then(|dictionary| dictionary.data())
                .is_some_and(|batch| batch.compression().is_some()),
            _ => false,
        };
        if compressed {
            return Err(StreamError::Invalid(arrow::error::ArrowError::IpcError(
                "a record batch is compressed, which the plugin contract does not allow".to_owned(),
            )));
        }
        let Ok(body) = usize::try_from(message.bodyLength()) else {
            return Ok(());
        };
        at = start.saturating_add(length).saturating_add(body);
    }
    Ok(())
}

/// A batch with `schema` and no rows: what the engine sends first to learn a plugin's output
/// schema.
pub fn empty_batch(schema: Arc<Schema>) -> RecordBatch {
    RecordBatch::new_empty(schema)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Utf8, true),
            Field::new("b", DataType::Int64, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![Some("x"), None])),
                Arc::new(Int64Array::from(vec![1, 2])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn round_trip() {
        let b = batch();
        let bytes = encode(&b).unwrap();
        assert_eq!(decode(&bytes).unwrap(), b);
        assert_eq!(decode_owned(bytes).unwrap(), b);
    }

    #[test]
    fn empty_round_trip() {
        let b = empty_batch(batch().schema());
        let back = decode(&encode(&b).unwrap()).unwrap();
        assert_eq!(back.num_rows(), 0);
        assert_eq!(back.schema(), b.schema());
    }

    #[test]
    fn rejects_garbage_and_two_batches() {
        assert_eq!(decode(b"").unwrap_err().kind(), "other");
        assert!(decode(b"definitely not arrow").is_err());
        let bytes = encode(&batch()).unwrap();
        assert!(decode(&bytes[..bytes.len() / 2]).is_err());

        let b = batch();
        let mut writer = StreamWriter::try_new(Vec::new(), &b.schema()).unwrap();
        writer.write(&b).unwrap();
        writer.write(&b).unwrap();
        writer.finish().unwrap();
        let two = writer.into_inner().unwrap();
        assert!(
            decode(&two)
                .unwrap_err()
                .message()
                .contains("more than one")
        );
    }

    /// A schema and no batch (apache-arrow's way of writing an empty table) is an empty batch of
    /// that schema, metadata and all.
    #[test]
    fn a_schema_without_a_batch_is_an_empty_batch() {
        let b = batch();
        let mut writer = StreamWriter::try_new(Vec::new(), &b.schema()).unwrap();
        writer.finish().unwrap();
        let none = writer.into_inner().unwrap();
        let empty = decode(&none).unwrap();
        assert_eq!(empty.num_rows(), 0);
        assert_eq!(empty.schema(), b.schema());
        assert_eq!(decode_owned(none).unwrap(), empty);
    }
}
