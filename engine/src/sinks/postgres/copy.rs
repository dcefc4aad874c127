//! PostgreSQL's binary `COPY` format, written straight from Arrow arrays. Binary COPY is the
//! fastest way into the server (no text parsing there), and writing it column-typed from the
//! arrays costs one pass over each batch with no per-value allocation.
//!
//! Format: a fixed header, then per row a 16-bit field count and per field a 32-bit length
//! (-1 for NULL) and the value in network byte order; a 16-bit -1 ends the data. Timestamps are
//! microseconds and dates days since 2000-01-01.

use super::types::{PgType, micros_per};
use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Date32Array, Float32Array, Float64Array,
    Int16Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use arrow::datatypes::Int64Type;
use arrow::datatypes::{DataType, Date32Type, Float32Type, Float64Type, Int16Type, Int32Type};
use bytes::{BufMut, BytesMut};

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
/// 2000-01-01T00:00:00Z in microseconds since the Unix epoch.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// 2000-01-01 in days since the Unix epoch.
const PG_EPOCH_DAYS: i32 = 10_957;

/// Writes the header that starts a binary COPY stream.
pub fn write_header(out: &mut BytesMut) {
    out.put_slice(SIGNATURE);
    out.put_i32(0); // flags
    out.put_i32(0); // header extension length
}

/// Writes the trailer that ends a binary COPY stream.
pub fn write_trailer(out: &mut BytesMut) {
    out.put_i16(-1);
}

/// One column of a batch, converted once to the array type its values are written from.
enum Column {
    Text(StringArray),
    Int2(Int16Array),
    Int4(Int32Array),
    Int8(Int64Array),
    Float4(Float32Array),
    Float8(Float64Array),
    Bool(BooleanArray),
    /// Values and the (multiplier, divisor) that make them microseconds.
    Timestamp(Int64Array, (i64, i64)),
    Date(Date32Array),
    Bytea(BinaryArray),
}

impl Column {
    fn new(array: &ArrayRef, pg_type: PgType) -> Result<Column, String> {
        let to = |data_type: &DataType| -> Result<ArrayRef, String> {
            if array.data_type() == data_type {
                Ok(array.clone())
            } else {
                arrow::compute::cast(array, data_type)
                    .map_err(|err| format!("cannot convert {} values: {err}", array.data_type()))
            }
        };
        Ok(match pg_type {
            PgType::Text | PgType::Numeric => {
                Column::Text(to(&DataType::Utf8)?.as_string().clone())
            }
            PgType::Int2 => Column::Int2(to(&DataType::Int16)?.as_primitive::<Int16Type>().clone()),
            PgType::Int4 => Column::Int4(to(&DataType::Int32)?.as_primitive::<Int32Type>().clone()),
            PgType::Int8 => Column::Int8(to(&DataType::Int64)?.as_primitive::<Int64Type>().clone()),
            PgType::Float4 => Column::Float4(
                to(&DataType::Float32)?
                    .as_primitive::<Float32Type>()
                    .clone(),
            ),
            PgType::Float8 => Column::Float8(
                to(&DataType::Float64)?
                    .as_primitive::<Float64Type>()
                    .clone(),
            ),
            PgType::Bool => Column::Bool(to(&DataType::Boolean)?.as_boolean().clone()),
            PgType::Timestamp | PgType::TimestampTz => {
                let DataType::Timestamp(unit, _) = array.data_type() else {
                    return Err(format!("{} is not a timestamp", array.data_type()));
                };
                let scale = micros_per(unit);
                let values = to(&DataType::Int64)?.as_primitive::<Int64Type>().clone();
                Column::Timestamp(values, scale)
            }
            PgType::Date => {
                Column::Date(to(&DataType::Date32)?.as_primitive::<Date32Type>().clone())
            }
            PgType::Bytea => Column::Bytea(to(&DataType::Binary)?.as_binary::<i32>().clone()),
        })
    }

    fn write(&self, row: usize, out: &mut BytesMut) {
        macro_rules! fixed {
            ($array:expr, $put:ident, $len:expr, $value:expr) => {
                if $array.is_null(row) {
                    out.put_i32(-1);
                } else {
                    out.put_i32($len);
                    out.$put($value);
                }
            };
        }
        match self {
            Column::Text(array) => fixed!(
                array,
                put_slice,
                array.value(row).len() as i32,
                array.value(row).as_bytes()
            ),
            Column::Bytea(array) => {
                fixed!(
                    array,
                    put_slice,
                    array.value(row).len() as i32,
                    array.value(row)
                )
            }
            Column::Int2(array) => fixed!(array, put_i16, 2, array.value(row)),
            Column::Int4(array) => fixed!(array, put_i32, 4, array.value(row)),
            Column::Int8(array) => fixed!(array, put_i64, 8, array.value(row)),
            Column::Float4(array) => fixed!(array, put_f32, 4, array.value(row)),
            Column::Float8(array) => fixed!(array, put_f64, 8, array.value(row)),
            Column::Bool(array) => fixed!(array, put_u8, 1, u8::from(array.value(row))),
            Column::Timestamp(array, (multiplier, divisor)) => fixed!(
                array,
                put_i64,
                8,
                array.value(row).saturating_mul(*multiplier) / divisor - PG_EPOCH_MICROS
            ),
            Column::Date(array) => fixed!(array, put_i32, 4, array.value(row) - PG_EPOCH_DAYS),
        }
    }
}

/// Appends every row of `batch` (its columns in the order and types given) to `out`.
pub fn write_batch(
    batch: &RecordBatch,
    columns: &[(usize, PgType)],
    out: &mut BytesMut,
) -> Result<(), String> {
    let converted = columns
        .iter()
        .map(|&(index, pg_type)| Column::new(batch.column(index), pg_type))
        .collect::<Result<Vec<_>, _>>()?;
    let field_count = i16::try_from(converted.len()).map_err(|_| "too many columns".to_owned())?;
    out.reserve(batch.num_rows() * (2 + converted.len() * 12));
    for row in 0..batch.num_rows() {
        out.put_i16(field_count);
        for column in &converted {
            column.write(row, out);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::TimestampMicrosecondArray;
    use arrow::datatypes::{Field, Schema, TimeUnit};
    use std::sync::Arc;

    #[test]
    fn rows_are_written_in_network_order_with_nulls_as_minus_one() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("mid", DataType::Utf8, true),
            Field::new("amount", DataType::Int64, false),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("+09:00".into())),
                false,
            ),
            Field::new("day", DataType::Date32, false),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![None::<&str>])),
                Arc::new(Int64Array::from(vec![1004])),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![PG_EPOCH_MICROS + 5])
                        .with_timezone("+09:00"),
                ),
                Arc::new(Date32Array::from(vec![PG_EPOCH_DAYS + 1])),
            ],
        )
        .unwrap();
        let mut out = BytesMut::new();
        let columns = [
            (0, PgType::Text),
            (1, PgType::Int8),
            (2, PgType::TimestampTz),
            (3, PgType::Date),
        ];
        write_batch(&batch, &columns, &mut out).unwrap();
        let mut expected = Vec::new();
        expected.extend(4i16.to_be_bytes());
        expected.extend((-1i32).to_be_bytes());
        expected.extend(8i32.to_be_bytes());
        expected.extend(1004i64.to_be_bytes());
        expected.extend(8i32.to_be_bytes());
        expected.extend(5i64.to_be_bytes());
        expected.extend(4i32.to_be_bytes());
        expected.extend(1i32.to_be_bytes());
        assert_eq!(out.as_ref(), expected.as_slice());
    }

    #[test]
    fn decimals_travel_as_their_exact_text() {
        let array: ArrayRef = Arc::new(
            arrow::array::Decimal128Array::from(vec![12345])
                .with_precision_and_scale(18, 2)
                .unwrap(),
        );
        let schema = Arc::new(Schema::new(vec![Field::new(
            "fee",
            array.data_type().clone(),
            false,
        )]));
        let batch = RecordBatch::try_new(schema, vec![array]).unwrap();
        let mut out = BytesMut::new();
        write_batch(&batch, &[(0, PgType::Numeric)], &mut out).unwrap();
        assert_eq!(&out[6..], b"123.45");
    }
}
