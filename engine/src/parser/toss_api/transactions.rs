//! A row of `GET /v1/transactions` as a record of
//! [`toss_etl_sdk::toss_api::transactions_schema`].
//!
//! Every field but `transactionKey` may be missing or null (Toss adds and drops fields between
//! API versions, and its own examples leave some out); unknown fields and enum values are kept
//! or ignored, never refused. A row without a `transactionKey`, or with an amount or a time that
//! cannot be read, cannot become a record and is rejected.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use serde::Deserialize;
use toss_etl_sdk::toss::KOREA_TIME_ZONE;
use toss_etl_sdk::toss_api::{MONEY_PRECISION, MONEY_SCALE, transactions_schema};

use super::rows::{Day, RowFormat};
use super::values::{Money, Text, korea_time_micros, text};

/// The fields read from a transaction row; the rest are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    #[serde(default)]
    transaction_key: Option<Text>,
    #[serde(default)]
    payment_key: Option<Text>,
    #[serde(default)]
    order_id: Option<Text>,
    #[serde(default, rename = "mId")]
    m_id: Option<Text>,
    #[serde(default)]
    method: Option<Text>,
    #[serde(default)]
    status: Option<Text>,
    #[serde(default)]
    transaction_at: Option<Text>,
    #[serde(default)]
    currency: Option<Text>,
    #[serde(default)]
    amount: Option<Money>,
    #[serde(default)]
    use_escrow: Option<bool>,
    #[serde(default)]
    customer_key: Option<Text>,
    #[serde(default)]
    receipt_url: Option<Text>,
}

pub(crate) struct Transaction {
    key: String,
    payment_key: Option<String>,
    order_id: Option<String>,
    m_id: Option<String>,
    method: Option<String>,
    status: Option<String>,
    transaction_at: Option<i64>,
    currency: Option<String>,
    amount: Option<i128>,
    use_escrow: Option<bool>,
    customer_key: Option<String>,
    receipt_url: Option<String>,
}

pub(crate) struct Columns {
    transaction_date: Date32Builder,
    transaction_key: StringBuilder,
    payment_key: StringBuilder,
    order_id: StringBuilder,
    m_id: StringBuilder,
    method: StringBuilder,
    status: StringBuilder,
    transaction_at: TimestampMicrosecondBuilder,
    currency: StringBuilder,
    amount: Decimal128Builder,
    use_escrow: BooleanBuilder,
    customer_key: StringBuilder,
    receipt_url: StringBuilder,
    load_unit: StringBuilder,
}

/// The transactions dataset.
pub(crate) struct Transactions;

impl RowFormat for Transactions {
    type Record = Transaction;
    type Columns = Columns;

    fn schema() -> SchemaRef {
        transactions_schema()
    }

    fn columns(capacity: usize) -> Columns {
        Columns {
            transaction_date: Date32Builder::with_capacity(capacity),
            transaction_key: StringBuilder::new(),
            payment_key: StringBuilder::new(),
            order_id: StringBuilder::new(),
            m_id: StringBuilder::new(),
            method: StringBuilder::new(),
            status: StringBuilder::new(),
            transaction_at: TimestampMicrosecondBuilder::with_capacity(capacity),
            currency: StringBuilder::new(),
            amount: Decimal128Builder::with_capacity(capacity),
            use_escrow: BooleanBuilder::with_capacity(capacity),
            customer_key: StringBuilder::new(),
            receipt_url: StringBuilder::new(),
            load_unit: StringBuilder::new(),
        }
    }

    fn parse(json: &str, _day: &Day) -> Result<Transaction, String> {
        let row: Row =
            serde_json::from_str(json).map_err(|err| format!("not a transaction: {err}"))?;
        let key = text(&row.transaction_key)
            .ok_or("transactionKey is missing: a transaction without one cannot be identified")?
            .to_owned();
        let amount = row
            .amount
            .as_ref()
            .map(Money::units)
            .transpose()
            .map_err(|why| format!("amount: {why}"))?;
        let transaction_at = text(&row.transaction_at)
            .map(korea_time_micros)
            .transpose()
            .map_err(|why| format!("transactionAt: {why}"))?;
        let owned = |field: &Option<Text>| text(field).map(str::to_owned);
        Ok(Transaction {
            key,
            payment_key: owned(&row.payment_key),
            order_id: owned(&row.order_id),
            m_id: owned(&row.m_id),
            method: owned(&row.method),
            status: owned(&row.status),
            transaction_at,
            currency: owned(&row.currency),
            amount,
            use_escrow: row.use_escrow,
            customer_key: owned(&row.customer_key),
            receipt_url: owned(&row.receipt_url),
        })
    }

    fn key(record: &Transaction) -> String {
        record.key.clone()
    }

    fn append(columns: &mut Columns, record: Transaction, day: &Day) {
        columns.transaction_date.append_value(day.date);
        columns.transaction_key.append_value(&record.key);
        columns.payment_key.append_option(record.payment_key);
        columns.order_id.append_option(record.order_id);
        columns.m_id.append_option(record.m_id);
        columns.method.append_option(record.method);
        columns.status.append_option(record.status);
        columns.transaction_at.append_option(record.transaction_at);
        columns.currency.append_option(record.currency);
        columns.amount.append_option(record.amount);
        columns.use_escrow.append_option(record.use_escrow);
        columns.customer_key.append_option(record.customer_key);
        columns.receipt_url.append_option(record.receipt_url);
        columns.load_unit.append_value(&day.unit);
    }

    fn finish(columns: &mut Columns) -> RecordBatch {
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(columns.transaction_date.finish()),
            Arc::new(columns.transaction_key.finish()),
            Arc::new(columns.payment_key.finish()),
            Arc::new(columns.order_id.finish()),
            Arc::new(columns.m_id.finish()),
            Arc::new(columns.method.finish()),
            Arc::new(columns.status.finish()),
            Arc::new(
                columns
                    .transaction_at
                    .finish()
                    .with_timezone(KOREA_TIME_ZONE),
            ),
            Arc::new(columns.currency.finish()),
            Arc::new(
                columns
                    .amount
                    .finish()
                    .with_precision_and_scale(MONEY_PRECISION, MONEY_SCALE)
                    .expect("the schema's precision and scale are valid"),
            ),
            Arc::new(columns.use_escrow.finish()),
            Arc::new(columns.customer_key.finish()),
            Arc::new(columns.receipt_url.finish()),
            Arc::new(columns.load_unit.finish()),
        ];
        RecordBatch::try_new(Self::schema(), arrays).expect("columns follow the schema")
    }
}
