//! Which PostgreSQL column type holds which Arrow type, both ways: the type a new table gets, and
//! whether an existing column can take the values. The rule is "no silent loss": a column may be
//! wider than the values (bigint into numeric), never narrower (bigint into integer), and a
//! mismatch is reported before any data moves.

use arrow::datatypes::{DataType, TimeUnit};

/// How one Arrow column travels: the type it is staged as in the binary COPY, and the type a
/// created table gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgType {
    Text,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Bool,
    Timestamp,
    TimestampTz,
    Date,
    /// Decimals are staged as text and cast, since their binary form is base-10000 digits.
    Numeric,
    Bytea,
}

impl PgType {
    /// The Arrow types the sink can load, and how.
    pub fn for_arrow(data_type: &DataType) -> Option<PgType> {
        Some(match data_type {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => PgType::Text,
            DataType::Int8 | DataType::Int16 | DataType::UInt8 => PgType::Int2,
            DataType::Int32 | DataType::UInt16 => PgType::Int4,
            DataType::Int64 | DataType::UInt32 => PgType::Int8,
            DataType::UInt64 => PgType::Numeric,
            DataType::Float16 | DataType::Float32 => PgType::Float4,
            DataType::Float64 => PgType::Float8,
            DataType::Boolean => PgType::Bool,
            DataType::Timestamp(_, None) => PgType::Timestamp,
            DataType::Timestamp(_, Some(_)) => PgType::TimestampTz,
            DataType::Date32 | DataType::Date64 => PgType::Date,
            DataType::Decimal32(..)
            | DataType::Decimal64(..)
            | DataType::Decimal128(..)
            | DataType::Decimal256(..) => PgType::Numeric,
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => PgType::Bytea,
            _ => return None,
        })
    }

    /// The type in the staging table, which the binary COPY writes.
    pub fn staging_sql(self) -> &'static str {
        match self {
            PgType::Text | PgType::Numeric => "text",
            PgType::Int2 => "smallint",
            PgType::Int4 => "integer",
            PgType::Int8 => "bigint",
            PgType::Float4 => "real",
            PgType::Float8 => "double precision",
            PgType::Bool => "boolean",
            PgType::Timestamp => "timestamp",
            PgType::TimestampTz => "timestamptz",
            PgType::Date => "date",
            PgType::Bytea => "bytea",
        }
    }

    /// The staging type's `pg_type.typname`.
    fn staging_typname(self) -> &'static str {
        match self {
            PgType::Text | PgType::Numeric => "text",
            PgType::Int2 => "int2",
            PgType::Int4 => "int4",
            PgType::Int8 => "int8",
            PgType::Float4 => "float4",
            PgType::Float8 => "float8",
            PgType::Bool => "bool",
            PgType::Timestamp => "timestamp",
            PgType::TimestampTz => "timestamptz",
            PgType::Date => "date",
            PgType::Bytea => "bytea",
        }
    }

    /// The `pg_type.typname` of a column the sink creates.
    pub fn created_typname(self) -> &'static str {
        match self {
            PgType::Numeric => "numeric",
            other => other.staging_typname(),
        }
    }

    /// `pg_type.typname`s of existing columns that hold these values without loss.
    fn accepted_typnames(self) -> &'static [&'static str] {
        match self {
            PgType::Text => &["text", "varchar", "bpchar", "citext"],
            PgType::Int2 => &["int2", "int4", "int8", "numeric"],
            PgType::Int4 => &["int4", "int8", "numeric"],
            PgType::Int8 => &["int8", "numeric"],
            PgType::Float4 => &["float4", "float8"],
            PgType::Float8 => &["float8"],
            PgType::Bool => &["bool"],
            PgType::Timestamp => &["timestamp"],
            PgType::TimestampTz => &["timestamptz"],
            PgType::Date => &["date"],
            PgType::Numeric => &["numeric"],
            PgType::Bytea => &["bytea"],
        }
    }

    /// Whether an existing column of type `typname` can take these values.
    pub fn fits_in(self, typname: &str) -> bool {
        self.accepted_typnames().contains(&typname)
    }

    /// Whether staged values must be cast on their way into a column of type `typname`.
    pub fn needs_cast_to(self, typname: &str) -> bool {
        self.staging_typname() != typname
    }
}

/// The column type a created table gives an Arrow column: the staging type, except decimals,
/// which keep their precision and scale.
pub fn column_sql(data_type: &DataType, pg_type: PgType) -> String {
    match (data_type, pg_type) {
        (
            DataType::Decimal32(precision, scale)
            | DataType::Decimal64(precision, scale)
            | DataType::Decimal128(precision, scale)
            | DataType::Decimal256(precision, scale),
            _,
        ) => format!("numeric({precision},{scale})"),
        (_, PgType::Numeric) => "numeric".to_owned(),
        _ => pg_type.staging_sql().to_owned(),
    }
}

/// Microseconds in one unit of an Arrow timestamp, as a multiplier or divisor.
pub fn micros_per(unit: &TimeUnit) -> (i64, i64) {
    match unit {
        TimeUnit::Second => (1_000_000, 1),
        TimeUnit::Millisecond => (1_000, 1),
        TimeUnit::Microsecond => (1, 1),
        TimeUnit::Nanosecond => (1, 1_000),
    }
}

/// `"name"` with inner quotes doubled: every identifier the sink writes is quoted, so that the
/// Arrow column names arrive exactly as written.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toss_columns_map_to_the_expected_types() {
        assert_eq!(PgType::for_arrow(&DataType::Utf8), Some(PgType::Text));
        assert_eq!(PgType::for_arrow(&DataType::Int64), Some(PgType::Int8));
        assert_eq!(
            PgType::for_arrow(&DataType::Timestamp(
                TimeUnit::Microsecond,
                Some("+09:00".into())
            )),
            Some(PgType::TimestampTz)
        );
        assert_eq!(PgType::for_arrow(&DataType::Date32), Some(PgType::Date));
        assert_eq!(
            column_sql(&DataType::Decimal128(18, 2), PgType::Numeric),
            "numeric(18,2)"
        );
        assert_eq!(
            PgType::for_arrow(&DataType::List(std::sync::Arc::new(
                arrow::datatypes::Field::new("x", DataType::Int32, true)
            ))),
            None
        );
    }

    #[test]
    fn existing_columns_may_be_wider_never_narrower() {
        assert!(PgType::Int8.fits_in("int8"));
        assert!(PgType::Int8.fits_in("numeric"));
        assert!(!PgType::Int8.fits_in("int4"));
        assert!(!PgType::Int8.fits_in("text"));
        assert!(PgType::Text.fits_in("varchar"));
        assert!(!PgType::TimestampTz.fits_in("timestamp"));
        assert!(PgType::Int8.needs_cast_to("numeric"));
        assert!(!PgType::Int8.needs_cast_to("int8"));
        assert!(PgType::Numeric.needs_cast_to("numeric"));
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("mid"), "\"mid\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
