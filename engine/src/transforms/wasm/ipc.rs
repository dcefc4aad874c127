//! Record batches across the plugin boundary: one Arrow IPC stream each way, uncompressed, with
//! exactly one batch (an answer with a schema and no batch is an empty batch of that schema). The framing is the SDK's ([`toss_etl_sdk::ipc`]), so the engine and the
//! plugins built on the SDK read and write the same bytes; what stays here is the engine's side
//! of it: anything else a plugin returns is described to the merchant in words, not passed on.

use arrow::array::RecordBatch;
use arrow::buffer::Buffer;
use arrow::datatypes::Schema;
use arrow::error::ArrowError;
use toss_etl_sdk::ipc::{StreamError, read_stream, write_stream_into};

/// Encodes one batch as an IPC stream (schema message + batch message).
#[cfg(test)]
pub fn encode(batch: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
    toss_etl_sdk::ipc::write_stream(batch)
}

/// [`encode`] into `stream`, reused from call to call.
pub fn encode_into(batch: &RecordBatch, stream: &mut Vec<u8>) -> Result<(), ArrowError> {
    write_stream_into(batch, stream)
}

/// Decodes a plugin's answer, which must hold one batch, or a schema alone (an empty batch). The bytes are copied once into
/// an aligned buffer that the arrays then share: decoding in place from the plugin's own `Vec`
/// measured slower (`bench/README.md`), its buffers being unaligned more often than not.
pub fn decode(bytes: Vec<u8>) -> Result<RecordBatch, String> {
    read_stream(Buffer::from(bytes.as_slice())).map_err(|err| match err {
        StreamError::Invalid(err) => {
            let text = err.to_string();
            if text.to_lowercase().contains("compress") {
                format!(
                    "returned compressed Arrow IPC ({text}); plugins must answer uncompressed \
                     IPC (the SDK does)"
                )
            } else {
                format!("returned bytes that are not a valid Arrow IPC stream: {text}")
            }
        }
        StreamError::Empty => "returned bytes that are not a valid Arrow IPC stream: no IPC \
                               stream starts in them"
            .to_owned(),
        StreamError::MoreThanOneBatch => {
            "returned more than one batch in one IPC stream; exactly one is required".to_owned()
        }
        other => format!("returned an answer that is not one Arrow IPC stream: {other}"),
    })
}

/// `name: type` of each field, for schema mismatch messages.
pub fn describe_fields(schema: &Schema) -> String {
    let fields: Vec<String> = schema
        .fields()
        .iter()
        .map(|field| format!("{}: {}", field.name(), field.data_type()))
        .collect();
    format!("[{}]", fields.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::ipc::writer::StreamWriter;
    use std::sync::Arc;

    /// The engine links Arrow's codecs (its lake needs them), so a compressed answer would be
    /// decodable; the contract forbids it, and its claimed lengths are not trusted.
    #[test]
    fn a_compressed_answer_is_refused_before_decoding() {
        let options = arrow::ipc::writer::IpcWriteOptions::default()
            .try_with_compression(Some(arrow::ipc::CompressionType::ZSTD))
            .unwrap();
        let b = batch();
        let mut writer =
            StreamWriter::try_new_with_options(Vec::new(), &b.schema(), options).unwrap();
        writer.write(&b).unwrap();
        writer.finish().unwrap();
        let bytes = writer.into_inner().unwrap();
        let err = toss_etl_sdk::ipc::read_stream(Buffer::from(bytes.as_slice()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("compressed"), "{err}");
    }

    fn batch() -> RecordBatch {
        RecordBatch::try_from_iter([
            ("id", Arc::new(Int64Array::from(vec![1, 2])) as _),
            (
                "name",
                Arc::new(StringArray::from(vec![Some("국민"), None])) as _,
            ),
        ])
        .unwrap()
    }

    #[test]
    fn a_batch_survives_the_round_trip() {
        let original = batch();
        assert_eq!(decode(encode(&original).unwrap()).unwrap(), original);
    }

    #[test]
    fn garbage_and_extra_batches_are_described() {
        assert!(
            decode(b"not arrow".to_vec())
                .unwrap_err()
                .contains("not a valid Arrow IPC")
        );
        assert!(
            decode(Vec::new())
                .unwrap_err()
                .contains("not a valid Arrow IPC")
        );
        let mut two = Vec::new();
        let mut writer = StreamWriter::try_new(&mut two, &batch().schema()).unwrap();
        writer.write(&batch()).unwrap();
        writer.write(&batch()).unwrap();
        writer.finish().unwrap();
        drop(writer);
        assert!(decode(two).unwrap_err().contains("more than one batch"));
    }

    /// What apache-arrow for JavaScript writes for an empty table: the schema, no batch. The
    /// engine takes it as an empty batch of that schema (the WIT contract says so).
    #[test]
    fn a_schema_without_a_batch_is_an_empty_batch() {
        let mut none = Vec::new();
        let mut writer = StreamWriter::try_new(&mut none, &batch().schema()).unwrap();
        writer.finish().unwrap();
        drop(writer);
        let empty = decode(none).unwrap();
        assert_eq!(empty.num_rows(), 0);
        assert_eq!(empty.schema(), batch().schema());
    }
}
