//! Column hints: what a format knows about a column's values that helps a sink store them well,
//! carried in the Arrow field's metadata so that it travels with the column — through a plugin
//! that keeps the field, to every sink — and not with its name. A sink that renames nothing and
//! knows no format can still pick a column's encoding; a plugin that makes a new column gets
//! the sink's defaults for it unless it copies or sets the hint.
//!
//! The hints describe the values, not a storage format: the Parquet sink maps them to
//! encodings, another sink may ignore them. Sinks drop the metadata from what they write.

use arrow::datatypes::{Field, Schema};
use std::collections::HashMap;

/// The field metadata key of a column's [`Shape`]; the SDK names it too, for plugin authors.
pub const SHAPE_KEY: &str = toss_etl_sdk::toss::SHAPE_KEY;

/// The field metadata key that marks a column as the row's position in its unit (a line
/// number): where a record sat, not what it says.
pub const POSITION_KEY: &str = toss_etl_sdk::toss::POSITION_KEY;

/// What a column's values look like, beyond their type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Mostly distinct values that share long prefixes with the value before (transaction
    /// numbers, order ids).
    SharedPrefixes,
    /// Mostly distinct values in no order (buyer ids, authorization numbers): a dictionary only
    /// costs time, and min/max statistics could never let a reader skip anything.
    Random,
    /// Values that grow row by row (timestamps, line numbers): their differences are small.
    Ascending,
    /// One value for the whole load unit (the source file's name): statistics say nothing.
    ConstantPerUnit,
}

impl Shape {
    fn as_str(self) -> &'static str {
        match self {
            Shape::SharedPrefixes => "shared-prefixes",
            Shape::Random => "random",
            Shape::Ascending => "ascending",
            Shape::ConstantPerUnit => "constant-per-unit",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [
            Shape::SharedPrefixes,
            Shape::Random,
            Shape::Ascending,
            Shape::ConstantPerUnit,
        ]
        .into_iter()
        .find(|shape| shape.as_str() == text)
    }
}

/// `field` with its values' shape noted.
pub fn with_shape(field: Field, shape: Shape) -> Field {
    let mut metadata = field.metadata().clone();
    metadata.insert(SHAPE_KEY.to_owned(), shape.as_str().to_owned());
    field.with_metadata(metadata)
}

/// The shape noted on `field`, if any (an unknown value reads as none).
pub fn shape(field: &Field) -> Option<Shape> {
    field
        .metadata()
        .get(SHAPE_KEY)
        .and_then(|text| Shape::parse(text))
}

/// Whether `field` holds the row's position in its unit.
pub fn is_position(field: &Field) -> bool {
    field
        .metadata()
        .get(POSITION_KEY)
        .is_some_and(|value| value == "true")
}

/// `schema` without the engine's hints, as a sink writes it.
pub fn without_hints(schema: &Schema) -> Schema {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| {
            let metadata: HashMap<String, String> = field
                .metadata()
                .iter()
                .filter(|(key, _)| key.as_str() != SHAPE_KEY && key.as_str() != POSITION_KEY)
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect();
            field.as_ref().clone().with_metadata(metadata)
        })
        .collect();
    Schema::new_with_metadata(fields, schema.metadata().clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::DataType;

    #[test]
    fn a_shape_travels_with_the_field_and_is_dropped_for_writing() {
        let field = with_shape(
            Field::new("oid", DataType::Utf8, false),
            Shape::SharedPrefixes,
        );
        assert_eq!(shape(&field), Some(Shape::SharedPrefixes));
        let renamed = field.clone().with_name("order_id");
        assert_eq!(shape(&renamed), Some(Shape::SharedPrefixes));
        let plain = Field::new("n", DataType::Int64, false);
        assert_eq!(shape(&plain), None);
        let schema = Schema::new(vec![field, plain.clone()]);
        let written = without_hints(&schema);
        assert!(written.field(0).metadata().is_empty());
        assert_eq!(written.field(1), &plain);
    }

    #[test]
    fn the_sdks_toss_schema_carries_shapes_the_engine_reads() {
        let schema = toss_etl_sdk::toss::schema();
        let shape_of = |name: &str| shape(schema.field_with_name(name).unwrap());
        assert_eq!(shape_of("transaction"), Some(Shape::SharedPrefixes));
        assert_eq!(shape_of("buyerid"), Some(Shape::Random));
        assert_eq!(shape_of("occurred_at"), Some(Shape::Ascending));
        assert_eq!(shape_of("source_file"), Some(Shape::ConstantPerUnit));
        assert_eq!(shape_of("amount"), None);
        assert!(is_position(schema.field_with_name("source_line").unwrap()));
        assert!(!is_position(schema.field_with_name("amount").unwrap()));
        let unread: Vec<&String> = schema
            .fields()
            .iter()
            .filter(|field| field.metadata().contains_key(SHAPE_KEY) && shape(field).is_none())
            .map(|field| field.name())
            .collect();
        assert!(
            unread.is_empty(),
            "hints the engine cannot read: {unread:?}"
        );
    }

    #[test]
    fn every_shape_reads_back() {
        for shape_ in [
            Shape::SharedPrefixes,
            Shape::Random,
            Shape::Ascending,
            Shape::ConstantPerUnit,
        ] {
            let field = with_shape(Field::new("c", DataType::Utf8, true), shape_);
            assert_eq!(shape(&field), Some(shape_));
        }
    }
}
