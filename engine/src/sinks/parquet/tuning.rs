//! How each column is encoded, from the hints its field carries (see [`crate::hints`]), never
//! from its name: a plugin that renames a column keeps its encoding, a sink knows no format.
//!
//! Every column is dictionary-encoded and keeps statistics unless its shape says otherwise:
//! - values sharing long prefixes (transaction numbers, order ids) store only their suffixes
//!   (`DELTA_BYTE_ARRAY`);
//! - random values (buyer ids, authorization numbers) compress better with their lengths stored
//!   apart from their bytes (`DELTA_LENGTH_BYTE_ARRAY`), and keep no statistics, which could
//!   never let a reader skip a row group;
//! - ascending values (timestamps, line numbers) store their small differences
//!   (`DELTA_BINARY_PACKED`);
//! - a value constant over the unit keeps its dictionary but no statistics.
//!
//! These are the encodings that measured smallest and fastest on realistic Toss data
//! (`bench/README.md`); zstd then compresses every page.

use crate::hints::{Shape, shape};
use arrow::datatypes::Schema;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

/// The writer properties for a file of `schema`.
pub fn properties(schema: &Schema, level: ZstdLevel, row_group_rows: usize) -> WriterProperties {
    builder(schema, level, row_group_rows).build()
}

/// The zstd level and row group size a sink's pipeline file gives, checked: the level as
/// Parquet takes it, or an error naming the key (`[[sinks]] NAME zstd_level`).
pub fn checked(
    sink: &str,
    zstd_level: i32,
    row_group_rows: usize,
) -> crate::error::Result<ZstdLevel> {
    use crate::error::Error;
    let level = Some(zstd_level)
        .filter(|level| (1..=22).contains(level))
        .and_then(|level| ZstdLevel::try_new(level).ok())
        .ok_or_else(|| {
            Error::config(
                format!("[[sinks]] {sink} zstd_level"),
                format!("{zstd_level} is not a zstd level; use 1 to 22"),
            )
        })?;
    if row_group_rows == 0 {
        return Err(Error::config(
            format!("[[sinks]] {sink} row_group_rows"),
            "row_group_rows must be at least 1",
        ));
    }
    Ok(level)
}

/// [`properties`], still open to a caller's own column settings (the Delta sink keeps the
/// statistics of the column it finds units by).
pub fn builder(
    schema: &Schema,
    level: ZstdLevel,
    row_group_rows: usize,
) -> parquet::file::properties::WriterPropertiesBuilder {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_row_count(Some(row_group_rows))
        .set_dictionary_enabled(true);
    for field in schema.fields() {
        let Some(shape) = shape(field) else {
            continue;
        };
        let column = ColumnPath::from(field.name().as_str());
        let encoding = match shape {
            Shape::SharedPrefixes => Some(Encoding::DELTA_BYTE_ARRAY),
            Shape::Random => Some(Encoding::DELTA_LENGTH_BYTE_ARRAY),
            Shape::Ascending => Some(Encoding::DELTA_BINARY_PACKED),
            Shape::ConstantPerUnit => None,
        };
        if let Some(encoding) = encoding {
            builder = builder
                .set_column_dictionary_enabled(column.clone(), false)
                .set_column_encoding(column.clone(), encoding);
        }
        if matches!(shape, Shape::Random | Shape::ConstantPerUnit) {
            builder = builder.set_column_statistics_enabled(column, EnabledStatistics::None);
        }
    }
    builder
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hints::with_shape;
    use arrow::datatypes::{DataType, Field};

    #[test]
    fn encodings_follow_the_hints_not_the_names() {
        let schema = Schema::new(vec![
            with_shape(
                Field::new("renamed_oid", DataType::Utf8, false),
                Shape::SharedPrefixes,
            ),
            with_shape(Field::new("b", DataType::Utf8, true), Shape::Random),
            with_shape(Field::new("t", DataType::Int64, false), Shape::Ascending),
            with_shape(
                Field::new("f", DataType::Utf8, false),
                Shape::ConstantPerUnit,
            ),
            Field::new("oid", DataType::Utf8, false),
        ]);
        let props = properties(&schema, ZstdLevel::default(), 100);
        let path = |name: &str| ColumnPath::from(name);
        assert_eq!(
            props.encoding(&path("renamed_oid")),
            Some(Encoding::DELTA_BYTE_ARRAY)
        );
        assert!(!props.dictionary_enabled(&path("renamed_oid")));
        assert_eq!(
            props.encoding(&path("b")),
            Some(Encoding::DELTA_LENGTH_BYTE_ARRAY)
        );
        assert_eq!(
            props.statistics_enabled(&path("b")),
            EnabledStatistics::None
        );
        assert_eq!(
            props.encoding(&path("t")),
            Some(Encoding::DELTA_BINARY_PACKED)
        );
        assert!(props.dictionary_enabled(&path("f")));
        assert_eq!(
            props.statistics_enabled(&path("f")),
            EnabledStatistics::None
        );
        // A column without a hint gets the defaults, whatever its name.
        assert!(props.dictionary_enabled(&path("oid")));
        assert_eq!(props.encoding(&path("oid")), None);
    }
}
