//! Where a unit's records land in the lake: Hive-style partitions
//! `{column}={value}/…/{unit stem}.parquet` that DuckDB, Spark, Trino and pyarrow read as they
//! are. The partition comes from the load unit (for a Toss file, `record_kind=AUTH/
//! trxdate=2007-07-06`), and its columns live in the path, not in the file, as Hive-style readers
//! expect. One file per unit is what makes re-loads exact: a newer version of a unit replaces
//! exactly one file.

use crate::unit::LoadUnit;
use arrow::datatypes::Schema;

/// Where one unit's file goes and which columns it leaves to the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The file's path below the lake's root, `/`-separated.
    pub path: String,
    /// Indices of the columns the file holds: all but the partition columns.
    pub kept: Vec<usize>,
}

/// The placement of `unit`'s records of `schema`.
pub fn place(unit: &LoadUnit, schema: &Schema) -> Placement {
    let mut path = String::new();
    for (column, value) in &unit.partition {
        path.push_str(&format!("{column}={}/", escape(value)));
    }
    path.push_str(&format!("{}.parquet", unit.stem()));
    let kept = (0..schema.fields().len())
        .filter(|&index| {
            let name = schema.field(index).name();
            !unit.partition.iter().any(|(column, _)| column == name)
        })
        .collect();
    Placement { path, kept }
}

/// A partition value as Hive writes it in a path: characters that would break the path or its
/// `column=value` reading are percent-encoded.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        let safe = byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b' ');
        if safe {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toss::TossFileName;
    use arrow::datatypes::{DataType, Field};

    #[test]
    fn a_toss_file_lands_in_its_kind_and_date_partition_without_those_columns() {
        let name = TossFileName::parse("toss_REV_20070706.dat").unwrap();
        let unit = crate::sources::toss_file_unit(&name, name.file_name(), Default::default());
        let schema = Schema::new(vec![
            Field::new("record_kind", DataType::Utf8, false),
            Field::new("trxdate", DataType::Date32, false),
            Field::new("mid", DataType::Utf8, false),
        ]);
        let placement = place(&unit, &schema);
        assert_eq!(
            placement.path,
            "record_kind=REV/trxdate=2007-07-06/toss_REV_20070706.parquet"
        );
        assert_eq!(placement.kept, [2]);
    }

    #[test]
    fn odd_partition_values_are_escaped() {
        assert_eq!(escape("2026-12-01"), "2026-12-01");
        assert_eq!(escape("a/b=c"), "a%2Fb%3Dc");
        assert_eq!(escape(".."), "..");
        assert_eq!(escape("%"), "%25");
    }
}
