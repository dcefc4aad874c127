//! Reading the sides of a reconcile into one DataFusion session: the lake tables the pipelines
//! wrote (Parquet folders, Delta tables, on disk or in an object store) as they are, and the
//! merchant's own rows (orders, bank payouts) from a PostgreSQL query or a file, parsed into
//! fixed types here so that a check never has to guess a shop's column types.

use super::config::{QueryInput, ReconcileConfig, TableFormat, TableInput};
use crate::error::{Error, Result};
use crate::lake::store::{Location, StoreOptions};
use arrow::array::{
    Array, ArrayRef, Date32Builder, Decimal128Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::{CsvReadOptions, SessionContext};
use std::sync::Arc;

/// Scale and precision of every money column the checks see.
pub const MONEY: DataType = DataType::Decimal128(22, 4);

/// Columns that hold a day in the lake's Hive partitions (`trxdate=2026-12-01`).
const DATE_PARTITIONS: [&str; 5] = [
    "trxdate",
    "transaction_date",
    "sold_date",
    "paid_out_date",
    "business_date",
];

/// Registers the lake table `input` as `name`; returns where it was read, for the report.
pub async fn register_table(
    ctx: &SessionContext,
    config: &ReconcileConfig,
    name: &str,
    input: &TableInput,
) -> Result<String> {
    let key = format!("[inputs.{name}]");
    let at = |field: &str| format!("{key} {field}");
    let options = StoreOptions::from_keys(
        input.endpoint.as_ref(),
        input.allow_http,
        input.region.as_ref(),
    );
    let location = crate::lake::store::locate(&input.path, &options, at)
        .map_err(|err| relocate(config, err))?;
    let shown = match &location {
        Location::Local(folder) => folder.display().to_string(),
        Location::Object { url, .. } => crate::lake::store::shown(url),
    };
    let format = match input.format {
        TableFormat::Auto => detect_format(&location).await,
        format => format,
    };
    let failed = |message: String| Error::Reconcile {
        location: format!("{}: {key} path", config.path().display()),
        message,
    };
    match format {
        TableFormat::Delta => {
            let table = crate::lake::delta::open(&location)
                .await
                .map_err(|err| failed(format!("cannot open the Delta table {shown}: {err}")))?
                .ok_or_else(|| {
                    failed(format!(
                        "there is no Delta table at {shown}: run the pipeline that writes it \
                         first, or fix the path"
                    ))
                })?;
            table
                .update_datafusion_session(&ctx.state())
                .map_err(|err| failed(format!("cannot read {shown}: {err}")))?;
            let provider = table
                .table_provider()
                .await
                .map_err(|err| failed(format!("cannot read {shown}: {err}")))?;
            ctx.register_table(name, provider)
                .map_err(|err| failed(err.to_string()))?;
        }
        TableFormat::Csv => {
            let Location::Local(file) = &location else {
                return Err(failed("a CSV input must be a local file".to_owned()));
            };
            ctx.register_csv(name, &file.display().to_string(), CsvReadOptions::new())
                .await
                .map_err(|err| failed(format!("cannot read the CSV file {shown}: {err}")))?;
        }
        TableFormat::Parquet | TableFormat::Auto => {
            let table_url = match &location {
                Location::Local(folder) => {
                    if !folder.exists() {
                        return Err(failed(format!(
                            "{shown} does not exist: run the pipeline that writes it first, \
                             or fix the path"
                        )));
                    }
                    ListingTableUrl::parse(folder.display().to_string())
                }
                Location::Object { store, url } => {
                    let mut root = url.clone();
                    root.set_path("");
                    ctx.register_object_store(&root, Arc::clone(store));
                    let mut folder = url.to_string();
                    if !folder.ends_with('/') {
                        folder.push('/');
                    }
                    ListingTableUrl::parse(folder)
                }
            }
            .map_err(|err| failed(format!("{shown}: {err}")))?;
            let state = ctx.state();
            let listing = ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet");
            let partitions = listing
                .infer_partitions(&state, &table_url)
                .await
                .map_err(|err| failed(format!("cannot list {shown}: {err}")))?;
            let listing = listing.with_table_partition_cols(
                partitions
                    .into_iter()
                    .map(|column| {
                        let data_type = if DATE_PARTITIONS.contains(&column.as_str()) {
                            DataType::Date32
                        } else {
                            DataType::Utf8
                        };
                        (column, data_type)
                    })
                    .collect(),
            );
            let table_config = ListingTableConfig::new(table_url)
                .with_listing_options(listing)
                .infer_schema(&state)
                .await
                .map_err(|err| {
                    failed(format!(
                        "no Parquet files could be read under {shown} ({err}): run the \
                         pipeline that writes it first, or fix the path"
                    ))
                })?;
            let table = ListingTable::try_new(table_config)
                .map_err(|err| failed(format!("cannot read {shown}: {err}")))?;
            ctx.register_table(name, Arc::new(table))
                .map_err(|err| failed(err.to_string()))?;
        }
    }
    Ok(shown)
}

/// A config error from the lake's own checks, placed in the reconcile file.
fn relocate(config: &ReconcileConfig, err: Error) -> Error {
    match err {
        Error::Config { location, message } => config.error_at(&location, message),
        other => other,
    }
}

async fn detect_format(location: &Location) -> TableFormat {
    match location {
        Location::Local(path) => {
            if path.join("_delta_log").is_dir() {
                TableFormat::Delta
            } else if path
                .extension()
                .is_some_and(|extension| extension.eq_ignore_ascii_case("csv"))
            {
                TableFormat::Csv
            } else {
                TableFormat::Parquet
            }
        }
        Location::Object { store, url } => {
            let prefix = format!("{}/_delta_log", url.path().trim_matches('/'));
            let prefix = object_store::path::Path::from(prefix.trim_start_matches('/'));
            let mut listing = store.list(Some(&prefix));
            match futures::StreamExt::next(&mut listing).await {
                Some(Ok(_)) => TableFormat::Delta,
                _ => TableFormat::Parquet,
            }
        }
    }
}

/// What one of the merchant's own inputs is made of: its columns, required or not.
pub struct RowsShape {
    /// The input's name in the file (`orders`).
    pub name: &'static str,
    pub columns: &'static [(&'static str, Kind, bool)],
}

/// How a column of the merchant's rows is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Money,
    Time,
    Day,
}

/// The shop's orders, as the checks see them (`business_date` is added: the Korea-time day of
/// `paid_at`).
pub const ORDERS: RowsShape = RowsShape {
    name: "orders",
    columns: &[
        ("order_id", Kind::Text, true),
        ("amount", Kind::Money, true),
        ("status", Kind::Text, true),
        ("paid_at", Kind::Time, true),
        ("cancelled_at", Kind::Time, false),
        ("cancelled_amount", Kind::Money, false),
    ],
};

/// The deposits that reached the bank.
pub const PAYOUTS: RowsShape = RowsShape {
    name: "payouts",
    columns: &[
        ("paid_out_date", Kind::Day, true),
        ("amount", Kind::Money, true),
    ],
};

/// The statuses an order may have, with the spellings accepted for each.
const ORDER_STATUSES: [(&str, &[&str]); 3] = [
    ("paid", &["paid", "done", "approved"]),
    (
        "partially_cancelled",
        &[
            "partially_cancelled",
            "partially_canceled",
            "partial_cancelled",
            "partial_canceled",
        ],
    ),
    ("cancelled", &["cancelled", "canceled"]),
];

/// Reads the merchant's rows of `shape` and registers them as a table of that name.
pub async fn register_rows(
    ctx: &SessionContext,
    config: &ReconcileConfig,
    shape: &RowsShape,
    input: &QueryInput,
) -> Result<String> {
    let (rows, shown, present) = match (&input.url, &input.query, &input.path) {
        (Some(_), Some(_), _) => query_rows(config, shape, input).await?,
        (_, _, Some(path)) => file_rows(ctx, config, shape, path).await?,
        _ => unreachable!("the reconcile file's check demands url and query, or path"),
    };
    let batch = to_batch(config, shape, &present, &rows)?;
    let table =
        MemTable::try_new(batch.schema(), vec![vec![batch]]).map_err(|err| Error::Reconcile {
            location: format!("[inputs.{}]", shape.name),
            message: err.to_string(),
        })?;
    ctx.register_table(shape.name, Arc::new(table))
        .map_err(|err| Error::Reconcile {
            location: format!("[inputs.{}]", shape.name),
            message: err.to_string(),
        })?;
    Ok(shown)
}

type TextRows = Vec<Vec<Option<String>>>;

/// Runs the query, each column of `shape` it returns cast to text by PostgreSQL itself (times
/// with their offset, read in Korea time when the column has none).
async fn query_rows(
    config: &ReconcileConfig,
    shape: &RowsShape,
    input: &QueryInput,
) -> Result<(TextRows, String, Vec<bool>)> {
    let table = format!("[inputs.{}]", shape.name);
    let at = |key: &str| format!("{table} {key}").trim_end().to_owned();
    let url = input.url.as_ref().expect("checked with the file");
    let query = input.query.as_ref().expect("checked with the file");
    let settings = crate::sinks::ClientSettings {
        url,
        sslmode: input.sslmode,
        ca_file: input.ca_file.as_ref(),
        tls_insecure: false,
        connect_timeout_secs: input.connect_timeout_secs,
    };
    let (client, endpoint) = crate::sinks::connect_reader(&at, &settings)
        .await
        .map_err(|err| relocate(config, err))?;
    let wrong = |what: String| config.error_at(&at("query"), what);
    client
        .batch_execute("SET TIME ZONE 'Asia/Seoul'")
        .await
        .map_err(|err| wrong(crate::sinks::describe_error(&err)))?;
    let statement = client.prepare(query.as_str()).await.map_err(|err| {
        wrong(format!(
            "the {} query fails on {endpoint}: {}",
            shape.name,
            crate::sinks::describe_error(&err)
        ))
    })?;
    let returned: Vec<String> = statement
        .columns()
        .iter()
        .map(|column| column.name().to_owned())
        .collect();
    let present = check_columns(shape, &returned).map_err(wrong)?;
    let selected: Vec<String> = present_columns(shape, &present)
        .map(|(column, kind)| {
            let value = format!("q.\"{column}\"");
            match kind {
                Kind::Text | Kind::Money => format!("({value})::text"),
                Kind::Day => format!("({value})::date::text"),
                Kind::Time => format!(
                    "to_char(({value})::timestamptz, 'YYYY-MM-DD\"T\"HH24:MI:SS.USTZH:TZM')"
                ),
            }
        })
        .collect();
    let wrapped = format!(
        "SELECT {} FROM ({}) AS q",
        selected.join(", "),
        query.as_str().trim().trim_end_matches(';')
    );
    let rows = client.query(wrapped.as_str(), &[]).await.map_err(|err| {
        wrong(format!(
            "the {} query's columns cannot be read as the checks need them ({}); order_id \
             and status are text, amounts numbers, paid_at and cancelled_at timestamps, \
             paid_out_date a date",
            shape.name,
            crate::sinks::describe_error(&err)
        ))
    })?;
    let width = selected.len();
    let rows = rows
        .iter()
        .map(|row| {
            (0..width)
                .map(|index| row.get::<_, Option<String>>(index))
                .collect()
        })
        .collect();
    Ok((rows, format!("PostgreSQL query on {endpoint}"), present))
}

/// Reads a Parquet or CSV file of the merchant's rows, each column of `shape` as text.
async fn file_rows(
    ctx: &SessionContext,
    config: &ReconcileConfig,
    shape: &RowsShape,
    path: &crate::env::EnvString,
) -> Result<(TextRows, String, Vec<bool>)> {
    let key = format!("[inputs.{}] path", shape.name);
    let wrong = |what: String| config.error_at(&key, what);
    let raw = format!("{}_file", shape.name);
    let file = path.to_path();
    let shown = file.display().to_string();
    let is_csv = file
        .extension()
        .is_some_and(|extension| extension.eq_ignore_ascii_case("csv"));
    if is_csv {
        ctx.register_csv(&raw, &shown, CsvReadOptions::new())
            .await
            .map_err(|err| wrong(format!("cannot read {shown}: {err}")))?;
    } else {
        ctx.register_parquet(&raw, &shown, Default::default())
            .await
            .map_err(|err| wrong(format!("cannot read {shown}: {err}")))?;
    }
    let table = ctx
        .table(raw.as_str())
        .await
        .map_err(|err| wrong(err.to_string()))?;
    let returned: Vec<String> = table
        .schema()
        .fields()
        .iter()
        .map(|field| field.name().clone())
        .collect();
    let present = check_columns(shape, &returned).map_err(wrong)?;
    let selected: Vec<String> = present_columns(shape, &present)
        .map(|(column, _)| format!("CAST(\"{column}\" AS VARCHAR)"))
        .collect();
    let batches = ctx
        .sql(&format!("SELECT {} FROM \"{raw}\"", selected.join(", ")))
        .await
        .map_err(|err| wrong(err.to_string()))?
        .collect()
        .await
        .map_err(|err| wrong(format!("cannot read {shown}: {err}")))?;
    let mut rows = Vec::new();
    for batch in &batches {
        let columns: Vec<arrow::array::StringArray> = batch
            .columns()
            .iter()
            .map(text_column)
            .collect::<Result<_>>()?;
        for row in 0..batch.num_rows() {
            rows.push(
                columns
                    .iter()
                    .map(|column| (!column.is_null(row)).then(|| column.value(row).to_owned()))
                    .collect(),
            );
        }
    }
    ctx.deregister_table(raw.as_str())
        .map_err(|err| wrong(err.to_string()))?;
    Ok((rows, shown, present))
}

/// A text column as `Utf8`, whichever string type the engine that produced it chose
/// (DataFusion's `VARCHAR` is `Utf8View`).
pub fn text_column(column: &ArrayRef) -> Result<arrow::array::StringArray> {
    let cast = arrow::compute::cast(column, &DataType::Utf8).map_err(|err| Error::Reconcile {
        location: "a text column".to_owned(),
        message: err.to_string(),
    })?;
    Ok(cast
        .as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .expect("cast to Utf8")
        .clone())
}

/// The columns of `shape` that `present` marks, in order, with how each is read.
fn present_columns<'a>(
    shape: &'a RowsShape,
    present: &'a [bool],
) -> impl Iterator<Item = (&'static str, Kind)> + 'a {
    shape
        .columns
        .iter()
        .zip(present)
        .filter(|(_, present)| **present)
        .map(|((column, kind, _), _)| (*column, *kind))
}

/// Which of `shape`'s columns `returned` has; an error naming the missing required ones.
fn check_columns(shape: &RowsShape, returned: &[String]) -> std::result::Result<Vec<bool>, String> {
    let present: Vec<bool> = shape
        .columns
        .iter()
        .map(|(column, _, _)| returned.iter().any(|name| name == column))
        .collect();
    let missing: Vec<&str> = shape
        .columns
        .iter()
        .zip(&present)
        .filter(|((_, _, required), present)| *required && !**present)
        .map(|((column, _, _), _)| *column)
        .collect();
    if missing.is_empty() {
        return Ok(present);
    }
    let wanted: Vec<String> = shape
        .columns
        .iter()
        .map(|(column, _, required)| {
            if *required {
                (*column).to_owned()
            } else {
                format!("{column} (optional)")
            }
        })
        .collect();
    Err(format!(
        "the {} rows have no column {}; they have {}. Name the columns {} (SELECT your_id AS \
         order_id, …)",
        shape.name,
        missing.join(", "),
        if returned.is_empty() {
            "none".to_owned()
        } else {
            returned.join(", ")
        },
        wanted.join(", ")
    ))
}

/// The rows as the typed table the checks read.
fn to_batch(
    config: &ReconcileConfig,
    shape: &RowsShape,
    present: &[bool],
    rows: &TextRows,
) -> Result<RecordBatch> {
    let is_orders = shape.name == ORDERS.name;
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    let mut position = 0;
    let mut status_column = None;
    let mut amount_column = None;
    let mut paid_column = None;
    for ((column, kind, _), present) in shape.columns.iter().zip(present) {
        let index = present.then(|| {
            position += 1;
            position - 1
        });
        let value = |row: &Vec<Option<String>>| index.and_then(|index| row[index].clone());
        let bad = |row: usize, text: &str, want: &str| {
            config.error_at(
                &format!("[inputs.{}]", shape.name),
                format!(
                    "row {} of the {} rows: {column} {text:?} is not {want}",
                    row + 1,
                    shape.name
                ),
            )
        };
        let array: ArrayRef = match kind {
            Kind::Text => {
                let mut builder = StringBuilder::new();
                for (number, row) in rows.iter().enumerate() {
                    let text = value(row);
                    if *column == "status" && is_orders {
                        let text = text.unwrap_or_default();
                        let status = order_status(&text).ok_or_else(|| {
                            config.error_at(
                                "[inputs.orders]",
                                format!(
                                    "row {} of the orders: status {text:?} is none of paid, \
                                     partially_cancelled, cancelled; map the shop's statuses \
                                     in the query (CASE WHEN state = 'refunded' THEN \
                                     'cancelled' … END AS status) and leave unpaid orders out",
                                    number + 1
                                ),
                            )
                        })?;
                        builder.append_value(status);
                    } else {
                        builder.append_option(text);
                    }
                }
                Arc::new(builder.finish())
            }
            Kind::Money => {
                let mut builder = Decimal128Builder::new();
                for (number, row) in rows.iter().enumerate() {
                    match value(row) {
                        None => builder.append_null(),
                        Some(text) => {
                            let parsed = arrow::compute::kernels::cast_utils::parse_decimal::<
                                arrow::datatypes::Decimal128Type,
                            >(text.trim(), 22, 4)
                            .map_err(|_| bad(number, &text, "an amount"))?;
                            builder.append_value(parsed);
                        }
                    }
                }
                Arc::new(builder.finish().with_data_type(MONEY))
            }
            Kind::Time => {
                let mut builder = TimestampMicrosecondBuilder::new();
                for (number, row) in rows.iter().enumerate() {
                    match value(row) {
                        None => builder.append_null(),
                        Some(text) => builder.append_value(
                            parse_time(&text)
                                .ok_or_else(|| bad(number, &text, "a time"))?
                                .timestamp_micros(),
                        ),
                    }
                }
                Arc::new(builder.finish().with_timezone(crate::toss::KOREA_TIME_ZONE))
            }
            Kind::Day => {
                let mut builder = Date32Builder::new();
                for (number, row) in rows.iter().enumerate() {
                    match value(row) {
                        None => builder.append_null(),
                        Some(text) => {
                            let day = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
                                .map_err(|_| bad(number, &text, "a date (YYYY-MM-DD)"))?;
                            builder.append_value(crate::dates::days_since_epoch(day));
                        }
                    }
                }
                Arc::new(builder.finish())
            }
        };
        match *column {
            "status" => status_column = Some(columns.len()),
            "amount" => amount_column = Some(columns.len()),
            "paid_at" => paid_column = Some(columns.len()),
            _ => {}
        }
        fields.push(Field::new(*column, array.data_type().clone(), true));
        columns.push(array);
    }
    if is_orders {
        // What an order's cancellations took back, when the shop does not say: all of a
        // cancelled order, nothing of a paid one.
        let (status, amount, paid) = (
            status_column.expect("orders have a status"),
            amount_column.expect("orders have an amount"),
            paid_column.expect("orders have paid_at"),
        );
        let cancelled = fields
            .iter()
            .position(|field| field.name() == "cancelled_amount");
        let status = columns[status]
            .as_any()
            .downcast_ref::<arrow::array::StringArray>();
        let amount = columns[amount]
            .as_any()
            .downcast_ref::<arrow::array::Decimal128Array>();
        let (Some(status), Some(amount)) = (status, amount) else {
            unreachable!("built above")
        };
        let given = cancelled.map(|index| {
            columns[index]
                .as_any()
                .downcast_ref::<arrow::array::Decimal128Array>()
                .expect("built above")
                .clone()
        });
        let mut builder = Decimal128Builder::new();
        for row in 0..status.len() {
            match (status.value(row), &given) {
                (_, Some(given)) if !given.is_null(row) => builder.append_value(given.value(row)),
                ("cancelled", _) => {
                    builder.append_option((!amount.is_null(row)).then(|| amount.value(row)))
                }
                ("paid", _) => builder.append_value(0),
                _ => builder.append_null(),
            }
        }
        let settled: ArrayRef = Arc::new(builder.finish().with_data_type(MONEY));
        match cancelled {
            Some(index) => columns[index] = settled,
            None => {
                fields.push(Field::new("cancelled_amount", MONEY, true));
                columns.push(settled);
            }
        }
        // The business day of an order: the Korea-time day it was paid.
        let paid = columns[paid]
            .as_any()
            .downcast_ref::<arrow::array::TimestampMicrosecondArray>()
            .expect("built above")
            .clone();
        let mut days = Date32Builder::new();
        for row in 0..paid.len() {
            days.append_option((!paid.is_null(row)).then(|| {
                let at = DateTime::from_timestamp_micros(paid.value(row))
                    .expect("a time parsed above")
                    .with_timezone(&crate::dates::kst());
                crate::dates::days_since_epoch(at.date_naive())
            }));
        }
        fields.push(Field::new("business_date", DataType::Date32, true));
        columns.push(Arc::new(days.finish()));
        if !fields.iter().any(|field| field.name() == "cancelled_at") {
            fields.push(Field::new(
                "cancelled_at",
                DataType::Timestamp(
                    TimeUnit::Microsecond,
                    Some(crate::toss::KOREA_TIME_ZONE.into()),
                ),
                true,
            ));
            columns.push(arrow::array::new_null_array(
                &fields.last().expect("pushed").data_type().clone(),
                paid.len(),
            ));
        }
    }
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    RecordBatch::try_new(schema, columns).map_err(|err| Error::Reconcile {
        location: format!("[inputs.{}]", shape.name),
        message: err.to_string(),
    })
}

/// The status of an order as the checks name it.
fn order_status(text: &str) -> Option<&'static str> {
    let text = text.trim().to_ascii_lowercase();
    ORDER_STATUSES
        .iter()
        .find(|(_, spellings)| spellings.contains(&text.as_str()))
        .map(|(status, _)| *status)
}

/// A time with an offset (`2026-12-01T10:00:00+09:00`, as PostgreSQL and Arrow write them), or
/// without one (`2026-12-01 10:00:00`, read as Korea time).
fn parse_time(text: &str) -> Option<DateTime<FixedOffset>> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at);
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%#z",
    ] {
        if let Ok(at) = DateTime::parse_from_str(text, format) {
            return Some(at);
        }
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(at) = NaiveDateTime::parse_from_str(text, format) {
            return at.and_local_timezone(crate::dates::kst()).single();
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .and_then(|at| at.and_local_timezone(crate::dates::kst()).single())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_with_their_offset_or_as_korea_time() {
        let with = parse_time("2026-11-30T15:30:00.000000+00:00").unwrap();
        let without = parse_time("2026-12-01 00:30:00").unwrap();
        assert_eq!(with.timestamp(), without.timestamp());
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn statuses_have_their_spellings() {
        assert_eq!(order_status(" Canceled "), Some("cancelled"));
        assert_eq!(
            order_status("PARTIAL_CANCELED"),
            Some("partially_cancelled")
        );
        assert_eq!(order_status("shipped"), None);
    }

    #[test]
    fn missing_columns_are_named_with_what_is_there() {
        let err = check_columns(&ORDERS, &["id".into(), "amount".into()]).unwrap_err();
        assert!(err.contains("no column order_id, status, paid_at"), "{err}");
        assert!(err.contains("they have id, amount"), "{err}");
    }
}
