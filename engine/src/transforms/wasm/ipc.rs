//! Record batches across the plugin boundary: one Arrow IPC stream each way, uncompressed, with
//! exactly one batch. Anything else a plugin returns is described in words, not passed on.

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use arrow::error::ArrowError;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;

/// Encodes one batch as an IPC stream (schema message + batch message).
pub fn encode(batch: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
    // Sized by the bytes the arrays span, not their allocations: a batch decoded from IPC shares
    // one buffer among its columns, which `get_array_memory_size` counts once per column.
    let data: usize = batch
        .columns()
        .iter()
        .map(|column| column.to_data().get_slice_memory_size().unwrap_or(0))
        .sum();
    let mut out = Vec::with_capacity(data + 8 * 1024);
    let mut writer = StreamWriter::try_new(&mut out, &batch.schema())?;
    writer.write(batch)?;
    writer.finish()?;
    drop(writer);
    Ok(out)
}

/// Decodes a plugin's answer, which must hold exactly one batch.
pub fn decode(bytes: &[u8]) -> Result<RecordBatch, String> {
    let invalid = |err: ArrowError| {
        let text = err.to_string();
        if text.to_lowercase().contains("compress") {
            format!(
                "returned compressed Arrow IPC ({text}); plugins must answer uncompressed IPC \
                 (the SDK does)"
            )
        } else {
            format!("returned bytes that are not a valid Arrow IPC stream: {text}")
        }
    };
    let reader = StreamReader::try_new(bytes, None).map_err(invalid)?;
    let mut batches = Vec::with_capacity(1);
    for batch in reader {
        batches.push(batch.map_err(invalid)?);
        if batches.len() > 1 {
            return Err(
                "returned more than one batch in one IPC stream; exactly one is required".into(),
            );
        }
    }
    batches.pop().ok_or_else(|| {
        "returned an IPC stream with no batch in it; exactly one is required".to_owned()
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
    use std::sync::Arc;

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
        assert_eq!(decode(&encode(&original).unwrap()).unwrap(), original);
    }

    #[test]
    fn garbage_and_extra_batches_are_described() {
        assert!(
            decode(b"not arrow")
                .unwrap_err()
                .contains("not a valid Arrow IPC")
        );
        let mut two = Vec::new();
        let mut writer = StreamWriter::try_new(&mut two, &batch().schema()).unwrap();
        writer.write(&batch()).unwrap();
        writer.write(&batch()).unwrap();
        writer.finish().unwrap();
        drop(writer);
        assert!(decode(&two).unwrap_err().contains("more than one batch"));
    }
}
