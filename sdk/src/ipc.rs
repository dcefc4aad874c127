//! Arrow IPC streams as the contract carries them: one schema message followed by exactly one
//! record batch message, uncompressed.
//!
//! The export glue uses these to talk to the engine; in native tests they let you run a plugin
//! on exactly the bytes the engine would send.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::buffer::Buffer;
use arrow::datatypes::Schema;
use arrow::ipc::reader::StreamDecoder;
use arrow::ipc::writer::{IpcWriteOptions, StreamWriter};

use crate::Error;

/// Encodes `batch` as an uncompressed Arrow IPC stream: schema, the batch, end-of-stream marker.
pub fn encode(batch: &RecordBatch) -> Result<Vec<u8>, Error> {
    let fail = |e: arrow::error::ArrowError| {
        Error::other(format!("cannot encode the output batch as Arrow IPC: {e}"))
    };
    // The default options write IPC format V5, 64-byte aligned, without compression.
    let options = IpcWriteOptions::default();
    // Sized by the bytes the batch really spans: a decoded batch shares one input buffer among
    // its arrays, so `get_array_memory_size` would count that buffer once per column.
    let capacity = encoded_size_hint(batch);
    let mut writer =
        StreamWriter::try_new_with_options(Vec::with_capacity(capacity), &batch.schema(), options)
            .map_err(fail)?;
    writer.write(batch).map_err(fail)?;
    writer.finish().map_err(fail)?;
    writer.into_inner().map_err(fail)
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
    decode_buffer(Buffer::from(bytes))
}

/// Decodes an Arrow IPC stream holding exactly one record batch, taking ownership of the bytes:
/// array buffers that are suitably aligned in them are used in place, without a copy.
pub fn decode_owned(bytes: Vec<u8>) -> Result<RecordBatch, Error> {
    decode_buffer(Buffer::from_vec(bytes))
}

fn decode_buffer(mut buffer: Buffer) -> Result<RecordBatch, Error> {
    let fail = |e: arrow::error::ArrowError| {
        Error::other(format!("the input is not a valid Arrow IPC stream: {e}"))
    };
    let mut decoder = StreamDecoder::new();
    let mut batch = None;
    while !buffer.is_empty() {
        if let Some(next) = decoder.decode(&mut buffer).map_err(fail)? {
            if batch.is_some() {
                return Err(Error::other(
                    "the input Arrow IPC stream holds more than one record batch; \
                     the contract allows exactly one",
                ));
            }
            batch = Some(next);
        }
    }
    decoder.finish().map_err(fail)?;
    match batch {
        Some(batch) => Ok(batch),
        None => Err(Error::other(match decoder.schema() {
            Some(_) => "the input Arrow IPC stream holds a schema but no record batch; \
                        the contract requires exactly one"
                .to_string(),
            None => "the input is empty or not an Arrow IPC stream".to_string(),
        })),
    }
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

        let mut writer = StreamWriter::try_new(Vec::new(), &b.schema()).unwrap();
        writer.finish().unwrap();
        let none = writer.into_inner().unwrap();
        assert!(
            decode(&none)
                .unwrap_err()
                .message()
                .contains("no record batch")
        );
    }
}
