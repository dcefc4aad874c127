//! The batches the engine's built-in Toss parser produces: their schema, and a builder for
//! test batches of that schema.
//!
//! The engine passes these columns, in this order, to the first transform of a pipeline:
//!
//! | column | Arrow type | nullable |
//! |---|---|---|
//! | record_kind | Utf8 (`AUTH` / `REV`) | no |
//! | trxdate | Date32 | no |
//! | mid, paytype, transaction, oid | Utf8 | no |
//! | financecode, financename, buyerid | Utf8 | yes |
//! | amount | Int64 (whole won) | no |
//! | useescrow | Boolean | no |
//! | occurred_at | Timestamp(Microsecond, "+09:00") | no |
//! | authnumber, status, source_file | Utf8 | no |
//! | source_line | Int64 | no |
//!
//! A record is identified by (record_kind, trxdate, mid, paytype, transaction, oid).
//!
//! Some fields carry a hint for the engine's sinks in their metadata, under [`SHAPE_KEY`]: what
//! the values look like (`shared-prefixes`, `random`, `ascending`, `constant-per-unit`), which
//! the Parquet sink turns into encodings and the Postgres sink uses to find the column that
//! names a row's file; `source_line` is marked under [`POSITION_KEY`] as the row's position, which
//! the webhook sink leaves out when it compares records. A plugin that keeps a field (or copies
//! its metadata) keeps its hints.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// The time zone of `occurred_at`: Korea time.
pub const KOREA_TIME_ZONE: &str = "+09:00";

/// The field metadata key of a column's shape hint (see the module docs).
pub const SHAPE_KEY: &str = "engine.shape";

/// The field metadata key that marks `source_line` as the row's position in its file: not part
/// of what the record says, so a record that only moved is not a changed record.
pub const POSITION_KEY: &str = "engine.position";

/// The schema of the batches the Toss parser produces. The engine's `parser::toss_schema()` is
/// this function, so plugins and the engine cannot disagree about it.
pub fn schema() -> SchemaRef {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    let shaped = |field: Field, shape: &str| {
        field.with_metadata(std::collections::HashMap::from([(
            SHAPE_KEY.to_owned(),
            shape.to_owned(),
        )]))
    };
    Arc::new(Schema::new(vec![
        text("record_kind", false),
        Field::new("trxdate", DataType::Date32, false),
        text("mid", false),
        text("paytype", false),
        shaped(text("transaction", false), "shared-prefixes"),
        shaped(text("oid", false), "shared-prefixes"),
        text("financecode", true),
        text("financename", true),
        shaped(text("buyerid", true), "random"),
        Field::new("amount", DataType::Int64, false),
        Field::new("useescrow", DataType::Boolean, false),
        shaped(
            Field::new(
                "occurred_at",
                DataType::Timestamp(TimeUnit::Microsecond, Some(KOREA_TIME_ZONE.into())),
                false,
            ),
            "ascending",
        ),
        shaped(text("authnumber", false), "random"),
        text("status", false),
        shaped(text("source_file", false), "constant-per-unit"),
        Field::new("source_line", DataType::Int64, false).with_metadata(
            std::collections::HashMap::from([
                (SHAPE_KEY.to_owned(), "ascending".to_owned()),
                (POSITION_KEY.to_owned(), "true".to_owned()),
            ]),
        ),
    ]))
}

/// One record as the Toss parser reads it, for building test batches with [`batch`].
///
/// ```
/// use toss_etl_sdk::toss::{self, Row};
/// let batch = toss::batch(&[
///     Row::auth("oid-1", 1000),
///     Row::rev("oid-2", 500).paytype("SC0030").financecode("088"),
/// ]);
/// assert_eq!(batch.num_rows(), 2);
/// assert_eq!(batch.schema(), toss::schema());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `AUTH` or `REV`.
    pub record_kind: String,
    /// The business date, `YYYY-MM-DD`.
    pub trxdate: String,
    pub mid: String,
    pub paytype: String,
    pub transaction: String,
    pub oid: String,
    pub financecode: Option<String>,
    pub financename: Option<String>,
    pub buyerid: Option<String>,
    pub amount: i64,
    pub useescrow: bool,
    /// Korea time, `YYYY-MM-DD HH:MM:SS`.
    pub occurred_at: String,
    pub authnumber: String,
    pub status: String,
    pub source_file: String,
    pub source_line: i64,
}

impl Row {
    /// A card approval (`AUTH`, SC0010, status 10) of `amount` won for order `oid`.
    pub fn auth(oid: &str, amount: i64) -> Self {
        Self {
            record_kind: "AUTH".into(),
            trxdate: "2007-07-06".into(),
            mid: "toss".into(),
            paytype: "SC0010".into(),
            transaction: format!("toss{oid}"),
            oid: oid.into(),
            financecode: Some("61100".into()),
            financename: Some("현대".into()),
            buyerid: Some("buyer".into()),
            amount,
            useescrow: false,
            occurred_at: "2007-07-06 23:53:55".into(),
            authnumber: "00176594".into(),
            status: "10".into(),
            source_file: "toss_AUTH_20070706.dat".into(),
            source_line: 1,
        }
    }

    /// A card cancel (`REV`, SC0010, status 20) of `amount` won for order `oid`.
    pub fn rev(oid: &str, amount: i64) -> Self {
        Self {
            record_kind: "REV".into(),
            status: "20".into(),
            source_file: "toss_REV_20070706.dat".into(),
            ..Self::auth(oid, amount)
        }
    }

    /// Sets `paytype`.
    pub fn paytype(mut self, paytype: &str) -> Self {
        self.paytype = paytype.into();
        self
    }

    /// Sets `financecode` (`""` means null, as the parser does).
    pub fn financecode(mut self, code: &str) -> Self {
        self.financecode = (!code.is_empty()).then(|| code.into());
        self
    }

    /// Sets `buyerid` (`None` for null).
    pub fn buyerid(mut self, buyerid: Option<&str>) -> Self {
        self.buyerid = buyerid.map(Into::into);
        self
    }

    /// Sets `source_line`.
    pub fn line(mut self, line: i64) -> Self {
        self.source_line = line;
        self
    }
}

/// A batch of [`schema`] holding `rows`. Panics on a malformed `trxdate` or `occurred_at`
/// (it is meant for tests).
pub fn batch(rows: &[Row]) -> RecordBatch {
    let text = |f: fn(&Row) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let opt = |f: fn(&Row) -> Option<&str>| -> ArrayRef {
        Arc::new(StringArray::from_iter(rows.iter().map(f)))
    };
    let columns: Vec<ArrayRef> = vec![
        text(|r| &r.record_kind),
        Arc::new(Date32Array::from_iter_values(
            rows.iter().map(|r| date_days(&r.trxdate)),
        )),
        text(|r| &r.mid),
        text(|r| &r.paytype),
        text(|r| &r.transaction),
        text(|r| &r.oid),
        opt(|r| r.financecode.as_deref()),
        opt(|r| r.financename.as_deref()),
        opt(|r| r.buyerid.as_deref()),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.amount))),
        Arc::new(BooleanArray::from_iter(
            rows.iter().map(|r| Some(r.useescrow)),
        )),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(
                rows.iter().map(|r| korea_time_micros(&r.occurred_at)),
            )
            .with_timezone(KOREA_TIME_ZONE),
        ),
        text(|r| &r.authnumber),
        text(|r| &r.status),
        text(|r| &r.source_file),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.source_line),
        )),
    ];
    RecordBatch::try_new(schema(), columns).expect("rows match the Toss schema")
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
fn date_days(date: &str) -> i32 {
    let bad = || panic!("not a YYYY-MM-DD date: {date:?}");
    let mut parts = date
        .splitn(3, '-')
        .map(|p| p.parse::<i64>().unwrap_or_else(|_| bad()));
    let (y, m, d) = (
        parts.next().unwrap_or_else(bad),
        parts.next().unwrap_or_else(bad),
        parts.next().unwrap_or_else(bad),
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        bad();
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) as i32
}

/// Microseconds since the Unix epoch of `YYYY-MM-DD HH:MM:SS` in Korea time (UTC+9).
fn korea_time_micros(time: &str) -> i64 {
    let (date, clock) = time
        .split_once(' ')
        .unwrap_or_else(|| panic!("not a YYYY-MM-DD HH:MM:SS time: {time:?}"));
    let hms: Vec<i64> = clock
        .split(':')
        .map(|p| p.parse().unwrap_or_else(|_| panic!("bad time {time:?}")))
        .collect();
    assert_eq!(hms.len(), 3, "not a YYYY-MM-DD HH:MM:SS time: {time:?}");
    let secs =
        i64::from(date_days(date)) * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2] - 9 * 3600;
    secs * 1_000_000
}

#[cfg(test)]
mod tests {
    use arrow::array::Array;

    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date_days("1970-01-01"), 0);
        assert_eq!(date_days("2007-07-06"), 13_700);
        assert_eq!(date_days("2000-03-01"), 11_017);
        assert_eq!(korea_time_micros("1970-01-01 09:00:00"), 0);
    }

    #[test]
    fn builds_the_toss_schema() {
        let b = batch(&[
            Row::auth("a", 1),
            Row::rev("b", 2).financecode("").buyerid(None),
        ]);
        assert_eq!(b.schema(), schema());
        assert_eq!(b.num_rows(), 2);
        assert!(b.column(6).is_null(1));
        assert!(b.column(8).is_null(1));
    }
}
