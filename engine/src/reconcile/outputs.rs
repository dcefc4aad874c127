//! The reconcile's outputs through the engine's own sinks: the discrepancies and the daily
//! summary, each business day one load unit. A unit replaces what a sink held of that day, so
//! a discrepancy that was resolved disappears from the table on the next run, and a webhook
//! (which remembers what its receiver acknowledged) sends each discrepancy once: its
//! `discrepancy_id` is the same on every run that finds it.

use super::checks::Discrepancy;
use crate::error::Result;
use crate::sinks::{CommittedVersion, LoadUnit, Sink, SinkConfig, SinkContext};
use crate::unit::FileVersion;
use arrow::array::{ArrayRef, Date32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use chrono::NaiveDate;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

/// The two datasets a reconcile writes.
#[derive(Debug, Clone, Copy)]
pub enum Dataset {
    Discrepancies,
    Summary,
}

impl Dataset {
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Discrepancies => "discrepancies",
            Dataset::Summary => "summary",
        }
    }

    fn key(self) -> Vec<String> {
        match self {
            Dataset::Discrepancies => vec!["discrepancy_id".to_owned()],
            Dataset::Summary => vec!["business_date".to_owned(), "method".to_owned()],
        }
    }
}

/// Rows one sink committed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Written {
    pub dataset: &'static str,
    pub sink: String,
    pub rows: u64,
}

/// The `load_unit` column: constant per unit, which is how the Postgres sink removes the rows
/// of a day that the newer run no longer has.
fn unit_field() -> Field {
    Field::new("load_unit", DataType::Utf8, false).with_metadata(HashMap::from([(
        toss_etl_sdk::toss::SHAPE_KEY.to_owned(),
        "constant-per-unit".to_owned(),
    )]))
}

/// The schema of the discrepancies outputs.
pub fn discrepancies_schema() -> SchemaRef {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        text("discrepancy_id", false),
        text("kind", false),
        Field::new("business_date", DataType::Date32, false),
        text("order_id", true),
        text("payment_key", true),
        text("transaction_key", true),
        text("expected", true),
        text("actual", true),
        text("message", false),
        text("reconcile", false),
        unit_field(),
    ]))
}

/// One day's discrepancies as a batch of [`discrepancies_schema`].
pub fn discrepancies_batch(
    reconcile: &str,
    unit: &str,
    day: NaiveDate,
    found: &[&Discrepancy],
) -> RecordBatch {
    let text = |value: &dyn Fn(&Discrepancy) -> Option<String>| -> ArrayRef {
        Arc::new(
            found
                .iter()
                .map(|item| value(item))
                .collect::<StringArray>(),
        )
    };
    let columns: Vec<ArrayRef> = vec![
        text(&|item| Some(item.id())),
        text(&|item| Some(item.kind.clone())),
        Arc::new(Date32Array::from(vec![
            crate::dates::days_since_epoch(day);
            found.len()
        ])),
        text(&|item| item.order_id.clone()),
        text(&|item| item.payment_key.clone()),
        text(&|item| item.transaction_key.clone()),
        text(&|item| item.expected.clone()),
        text(&|item| item.actual.clone()),
        text(&|item| Some(item.message.clone())),
        text(&|_| Some(reconcile.to_owned())),
        text(&|_| Some(unit.to_owned())),
    ];
    RecordBatch::try_new(discrepancies_schema(), columns).expect("columns match the schema")
}

/// Writes every day of `from..=to` to the dataset's sinks, one unit per day (an empty unit for
/// a day without rows, so what a sink held of it goes).
pub async fn write(
    configs: &[SinkConfig],
    dataset: Dataset,
    reconcile: &str,
    state_dir: &Path,
    days: &BTreeMap<NaiveDate, RecordBatch>,
    schema: SchemaRef,
) -> Result<Vec<Written>> {
    if configs.is_empty() {
        return Ok(Vec::new());
    }
    let record_key = dataset.key();
    let pipeline = format!("reconcile-{reconcile}");
    let names = crate::sinks::names(configs);
    let sinks: Vec<Box<dyn Sink>> = crate::sinks::build_all(
        configs,
        &SinkContext {
            pipeline: &pipeline,
            state_dir,
            record_key: &record_key,
        },
    )?;
    let mut written: Vec<Written> = names
        .into_iter()
        .map(|sink| Written {
            dataset: dataset.name(),
            sink: format!("{}.{sink}", dataset.name()),
            rows: 0,
        })
        .collect();
    for (day, batch) in days {
        let unit = unit_for(dataset, reconcile, *day);
        let version = CommittedVersion {
            content_hash: content_hash(batch)?,
            rows: batch.num_rows() as u64,
        };
        for (sink, count) in sinks.iter().zip(written.iter_mut()) {
            let mut writer = sink.begin(&unit, Arc::clone(&schema)).await?;
            if batch.num_rows() > 0
                && let Err(err) = writer.write(batch).await
            {
                writer.abort().await;
                return Err(err);
            }
            count.rows += writer.commit(&version).await?;
        }
    }
    Ok(written)
}

/// A hash of every value of `batch`, as a sink records which version of a unit it holds.
fn content_hash(batch: &RecordBatch) -> Result<String> {
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    let options = FormatOptions::default().with_null("\u{0}");
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let formatters = batch
        .columns()
        .iter()
        .map(|column| ArrayFormatter::try_new(column.as_ref(), &options))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|err| crate::error::Error::Reconcile {
            location: "an output".to_owned(),
            message: err.to_string(),
        })?;
    for row in 0..batch.num_rows() {
        for formatter in &formatters {
            hasher.update(formatter.value(row).to_string().as_bytes());
            hasher.update(&[0x1f]);
        }
        hasher.update(&[0x1e]);
    }
    Ok(format!("{:032x}", hasher.digest128()))
}

/// Every day of `from..=to`.
pub fn period(from: NaiveDate, to: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    from.iter_days().take_while(move |day| *day <= to)
}

/// The load unit of one day of a dataset.
fn unit_for(dataset: Dataset, reconcile: &str, day: NaiveDate) -> LoadUnit {
    LoadUnit {
        name: format!("{}_{day}", dataset.name()),
        origin: format!("reconcile {reconcile}"),
        business_date: day,
        labels: BTreeMap::new(),
        partition: vec![("business_date".to_owned(), day.to_string())],
        version: FileVersion::default(),
    }
}

/// The discrepancies grouped into one batch per day of `from..=to`.
pub fn discrepancies_by_day(
    reconcile: &str,
    from: NaiveDate,
    to: NaiveDate,
    found: &[Discrepancy],
) -> BTreeMap<NaiveDate, RecordBatch> {
    let mut by_day: BTreeMap<NaiveDate, Vec<&Discrepancy>> =
        period(from, to).map(|day| (day, Vec::new())).collect();
    for item in found {
        by_day.entry(item.business_date).or_default().push(item);
    }
    by_day
        .into_iter()
        .map(|(day, items)| {
            let unit = unit_for(Dataset::Discrepancies, reconcile, day).name;
            (day, discrepancies_batch(reconcile, &unit, day, &items))
        })
        .collect()
}

/// The summary rows grouped into one batch per day of `from..=to`, with `load_unit` added.
pub fn summary_by_day(
    reconcile: &str,
    from: NaiveDate,
    to: NaiveDate,
    batches: &[RecordBatch],
) -> Result<(SchemaRef, BTreeMap<NaiveDate, RecordBatch>)> {
    let base = match batches.first() {
        Some(batch) => batch.schema(),
        None => return Ok((Arc::new(Schema::empty()), BTreeMap::new())),
    };
    let mut fields: Vec<Field> = base
        .fields()
        .iter()
        .map(|field| field.as_ref().clone())
        .collect();
    if let Some(date) = fields
        .iter_mut()
        .find(|field| field.name() == "business_date")
    {
        *date = Field::new("business_date", DataType::Date32, false);
    }
    fields.push(Field::new("reconcile", DataType::Utf8, false));
    fields.push(unit_field());
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let failed = |err: arrow::error::ArrowError| crate::error::Error::Reconcile {
        location: "the daily summary".to_owned(),
        message: err.to_string(),
    };
    let all = arrow::compute::concat_batches(&base, batches).map_err(failed)?;
    let dates = all
        .column_by_name("business_date")
        .expect("summary column")
        .as_any()
        .downcast_ref::<Date32Array>()
        .expect("a date column")
        .clone();
    let mut by_day = BTreeMap::new();
    for day in period(from, to) {
        let wanted = crate::dates::days_since_epoch(day);
        let mask: arrow::array::BooleanArray = dates
            .iter()
            .map(|value| Some(value == Some(wanted)))
            .collect();
        let rows = arrow::compute::filter_record_batch(&all, &mask).map_err(failed)?;
        let unit = unit_for(Dataset::Summary, reconcile, day).name;
        let mut columns = rows.columns().to_vec();
        columns.push(Arc::new(StringArray::from(vec![
            reconcile;
            rows.num_rows()
        ])));
        columns.push(Arc::new(StringArray::from(vec![
            unit.as_str();
            rows.num_rows()
        ])));
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns).map_err(failed)?;
        by_day.insert(day, batch);
    }
    Ok((schema, by_day))
}
