//! Typed access to a batch's columns by name, with errors that name the column.
//!
//! ```
//! # use toss_etl_sdk::{columns, Error};
//! # use toss_etl_sdk::arrow::array::RecordBatch;
//! fn total(batch: &RecordBatch) -> Result<i64, Error> {
//!     let amount = columns::int64(batch, "amount")?;
//!     Ok(amount.iter().flatten().sum())
//! }
//! ```
//!
//! A missing column or one of another type is an [`Error::Data`] such as
//! `column "amount" is missing; the batch has: mid, paytype, …` or
//! `column "amount" is Utf8, expected Int64`.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array,
    RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use crate::Error;

/// The column `name`, of any type.
pub fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, Error> {
    batch.column_by_name(name).ok_or_else(|| {
        let have: Vec<&str> = batch
            .schema_ref()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        Error::data(format!(
            "column \"{name}\" is missing; the batch has: {}",
            if have.is_empty() {
                "no columns".to_string()
            } else {
                have.join(", ")
            }
        ))
    })
}

fn typed<'a, T: 'static>(
    batch: &'a RecordBatch,
    name: &str,
    expected: &str,
    is: impl Fn(&DataType) -> bool,
    cast: impl Fn(&'a dyn Array) -> Option<&'a T>,
) -> Result<&'a T, Error> {
    let array = column(batch, name)?;
    if !is(array.data_type()) {
        return Err(Error::data(format!(
            "column \"{name}\" is {}, expected {expected}",
            array.data_type()
        )));
    }
    cast(array.as_ref()).ok_or_else(|| {
        Error::data(format!(
            "column \"{name}\" is {}, expected {expected}",
            array.data_type()
        ))
    })
}

/// The `Utf8` column `name`.
pub fn string<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a StringArray, Error> {
    typed(
        batch,
        name,
        "Utf8",
        |t| *t == DataType::Utf8,
        |a| a.as_string_opt::<i32>(),
    )
}

/// The `Int64` column `name`.
pub fn int64<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a Int64Array, Error> {
    typed(
        batch,
        name,
        "Int64",
        |t| *t == DataType::Int64,
        |a| a.as_any().downcast_ref(),
    )
}

/// The `Int32` column `name`.
pub fn int32<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a Int32Array, Error> {
    typed(
        batch,
        name,
        "Int32",
        |t| *t == DataType::Int32,
        |a| a.as_any().downcast_ref(),
    )
}

/// The `Float64` column `name`.
pub fn float64<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a Float64Array, Error> {
    typed(
        batch,
        name,
        "Float64",
        |t| *t == DataType::Float64,
        |a| a.as_any().downcast_ref(),
    )
}

/// The `Boolean` column `name`.
pub fn boolean<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a BooleanArray, Error> {
    typed(
        batch,
        name,
        "Boolean",
        |t| *t == DataType::Boolean,
        |a| a.as_boolean_opt(),
    )
}

/// The `Date32` column `name` (days since 1970-01-01).
pub fn date32<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a Date32Array, Error> {
    typed(
        batch,
        name,
        "Date32",
        |t| *t == DataType::Date32,
        |a| a.as_any().downcast_ref(),
    )
}

/// The `Timestamp(Microsecond, _)` column `name`, whatever its time zone (microseconds since
/// the Unix epoch; the time zone only says how to show them).
pub fn timestamp_us<'a>(
    batch: &'a RecordBatch,
    name: &str,
) -> Result<&'a TimestampMicrosecondArray, Error> {
    typed(
        batch,
        name,
        "Timestamp(Microsecond)",
        |t| matches!(t, DataType::Timestamp(TimeUnit::Microsecond, _)),
        |a| a.as_any().downcast_ref(),
    )
}

/// `batch` with `columns` appended after its own. Errors (as [`Error::Data`]) when a name is
/// already taken or a length differs.
pub fn append(
    batch: &RecordBatch,
    columns: impl IntoIterator<Item = (Field, ArrayRef)>,
) -> Result<RecordBatch, Error> {
    let schema = batch.schema();
    let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
    let mut arrays: Vec<ArrayRef> = batch.columns().to_vec();
    for (field, array) in columns {
        if schema.column_with_name(field.name()).is_some()
            || fields.iter().any(|f| f.name() == field.name())
        {
            return Err(Error::data(format!(
                "cannot add column \"{}\": the batch already has one of that name",
                field.name()
            )));
        }
        fields.push(Arc::new(field));
        arrays.push(array);
    }
    let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    Ok(RecordBatch::try_new(schema, arrays)?)
}

/// `batch` with column `name` replaced by `array` (same position; the field keeps its name and
/// takes the new array's type and `nullable`).
pub fn replace(
    batch: &RecordBatch,
    name: &str,
    array: ArrayRef,
    nullable: bool,
) -> Result<RecordBatch, Error> {
    let (index, _) = batch
        .schema_ref()
        .column_with_name(name)
        .ok_or_else(|| column(batch, name).unwrap_err())?;
    let schema = batch.schema();
    let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
    fields[index] = Arc::new(
        fields[index]
            .as_ref()
            .clone()
            .with_data_type(array.data_type().clone())
            .with_nullable(nullable),
    );
    let mut arrays: Vec<ArrayRef> = batch.columns().to_vec();
    arrays[index] = array;
    let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    Ok(RecordBatch::try_new(schema, arrays)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> RecordBatch {
        RecordBatch::try_from_iter(vec![
            ("s", Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef),
            ("n", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
        ])
        .unwrap()
    }

    #[test]
    fn typed_access() {
        let b = batch();
        assert_eq!(string(&b, "s").unwrap().value(1), "b");
        assert_eq!(int64(&b, "n").unwrap().value(0), 1);
        let missing = int64(&b, "amount").unwrap_err();
        assert_eq!(
            missing,
            Error::Data("column \"amount\" is missing; the batch has: s, n".into())
        );
        let wrong = int64(&b, "s").unwrap_err();
        assert_eq!(
            wrong,
            Error::Data("column \"s\" is Utf8, expected Int64".into())
        );
        assert!(boolean(&b, "n").is_err());
    }

    #[test]
    fn append_and_replace() {
        let b = batch();
        let extra = Arc::new(Int64Array::from(vec![10, 20])) as ArrayRef;
        let out = append(
            &b,
            [(Field::new("m", DataType::Int64, false), extra.clone())],
        )
        .unwrap();
        assert_eq!(out.num_columns(), 3);
        assert_eq!(out.schema().field(2).name(), "m");
        assert!(
            append(
                &b,
                [(Field::new("s", DataType::Int64, false), extra.clone())]
            )
            .is_err()
        );

        let out = replace(&b, "s", extra, true).unwrap();
        assert_eq!(out.schema().field(0).data_type(), &DataType::Int64);
        assert!(out.schema().field(0).is_nullable());
        assert!(replace(&b, "zz", out.column(1).clone(), true).is_err());
    }
}
