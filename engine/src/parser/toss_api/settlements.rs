//! A row of `GET /v1/settlements` as a record of
//! [`toss_etl_sdk::toss_api::settlements_schema`].
//!
//! Settlement rows drift the most between API versions and merchants: the fee's supply value is
//! `supplyAmount` or `suppliedAmount`; `fee` is a number, a string, or missing beside `fees[]`;
//! `fees[]` may be missing beside `fee`; a cancel is its own row with negative amounts. All of
//! it is read. The total fee is `fee` when given, else the sum of `fees[]`; each fee type's sum
//! has its own column. A row without a `transactionKey` (also looked for in `cancel`) or with an
//! amount or date that cannot be read is rejected.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use serde::Deserialize;
use toss_etl_sdk::toss::KOREA_TIME_ZONE;
use toss_etl_sdk::toss_api::{MONEY_PRECISION, MONEY_SCALE, settlements_schema};

use super::rows::{Day, RowFormat};
use super::values::{Money, Text, day, korea_time_micros, text};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    #[serde(default, rename = "mId")]
    m_id: Option<Text>,
    #[serde(default)]
    payment_key: Option<Text>,
    #[serde(default)]
    transaction_key: Option<Text>,
    #[serde(default)]
    order_id: Option<Text>,
    #[serde(default)]
    currency: Option<Text>,
    #[serde(default)]
    method: Option<Text>,
    #[serde(default)]
    amount: Option<Money>,
    #[serde(default)]
    interest_fee: Option<Money>,
    #[serde(default)]
    fees: Option<Vec<FeeItem>>,
    #[serde(default)]
    fee: Option<Money>,
    #[serde(default, alias = "suppliedAmount")]
    supply_amount: Option<Money>,
    #[serde(default)]
    vat: Option<Money>,
    #[serde(default)]
    pay_out_amount: Option<Money>,
    #[serde(default)]
    approved_at: Option<Text>,
    #[serde(default)]
    sold_date: Option<Text>,
    #[serde(default)]
    paid_out_date: Option<Text>,
    #[serde(default)]
    cancel: Option<Cancel>,
}

#[derive(Debug, Deserialize)]
struct FeeItem {
    #[serde(default, rename = "type")]
    kind: Option<Text>,
    #[serde(default)]
    fee: Option<Money>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cancel {
    #[serde(default)]
    cancel_amount: Option<Money>,
    #[serde(default)]
    canceled_at: Option<Text>,
    #[serde(default)]
    transaction_key: Option<Text>,
}

/// The fee types Toss names, each with its column; any other type is summed in `fee_other`.
const FEE_TYPES: [&str; 5] = [
    "BASE",
    "INSTALLMENT_DISCOUNT",
    "INSTALLMENT",
    "POINT_SAVING",
    "ETC",
];

pub(crate) struct Settlement {
    key: String,
    sold_date: i32,
    paid_out_date: Option<i32>,
    payment_key: Option<String>,
    order_id: Option<String>,
    m_id: Option<String>,
    method: Option<String>,
    currency: Option<String>,
    approved_at: Option<i64>,
    /// amount, fee, supply_amount, vat, pay_out_amount, interest_fee.
    money: [Option<i128>; 6],
    /// By [`FEE_TYPES`], then other types.
    fees: [Option<i128>; 6],
    is_cancel: bool,
    cancel_amount: Option<i128>,
    canceled_at: Option<i64>,
}

pub(crate) struct Columns {
    sold_date: Date32Builder,
    paid_out_date: Date32Builder,
    transaction_key: StringBuilder,
    payment_key: StringBuilder,
    order_id: StringBuilder,
    m_id: StringBuilder,
    method: StringBuilder,
    currency: StringBuilder,
    approved_at: TimestampMicrosecondBuilder,
    money: [Decimal128Builder; 6],
    fees: [Decimal128Builder; 6],
    is_cancel: BooleanBuilder,
    cancel_amount: Decimal128Builder,
    canceled_at: TimestampMicrosecondBuilder,
    load_unit: StringBuilder,
}

/// The settlements dataset.
pub(crate) struct Settlements;

fn money(field: &Option<Money>, name: &str) -> Result<Option<i128>, String> {
    field
        .as_ref()
        .map(Money::units)
        .transpose()
        .map_err(|why| format!("{name}: {why}"))
}

fn decimal(builder: &mut Decimal128Builder) -> ArrayRef {
    Arc::new(
        builder
            .finish()
            .with_precision_and_scale(MONEY_PRECISION, MONEY_SCALE)
            .expect("the schema's precision and scale are valid"),
    )
}

impl RowFormat for Settlements {
    type Record = Settlement;
    type Columns = Columns;

    fn schema() -> SchemaRef {
        settlements_schema()
    }

    fn columns(capacity: usize) -> Columns {
        let decimals = || std::array::from_fn(|_| Decimal128Builder::with_capacity(capacity));
        Columns {
            sold_date: Date32Builder::with_capacity(capacity),
            paid_out_date: Date32Builder::with_capacity(capacity),
            transaction_key: StringBuilder::new(),
            payment_key: StringBuilder::new(),
            order_id: StringBuilder::new(),
            m_id: StringBuilder::new(),
            method: StringBuilder::new(),
            currency: StringBuilder::new(),
            approved_at: TimestampMicrosecondBuilder::with_capacity(capacity),
            money: decimals(),
            fees: decimals(),
            is_cancel: BooleanBuilder::with_capacity(capacity),
            cancel_amount: Decimal128Builder::with_capacity(capacity),
            canceled_at: TimestampMicrosecondBuilder::with_capacity(capacity),
            load_unit: StringBuilder::new(),
        }
    }

    fn parse(json: &str, day_pulled: &Day) -> Result<Settlement, String> {
        let row: Row =
            serde_json::from_str(json).map_err(|err| format!("not a settlement row: {err}"))?;
        let cancel_key = row
            .cancel
            .as_ref()
            .and_then(|cancel| text(&cancel.transaction_key));
        let key = text(&row.transaction_key)
            .or(cancel_key)
            .ok_or("transactionKey is missing: a settlement row without one cannot be identified")?
            .to_owned();
        let sold_date = match text(&row.sold_date) {
            Some(sold) => day(sold).map_err(|why| format!("soldDate: {why}"))?,
            None if day_pulled.by_sold_date => day_pulled.date,
            None => return Err("soldDate is missing".to_owned()),
        };
        let paid_out_date = text(&row.paid_out_date)
            .map(day)
            .transpose()
            .map_err(|why| format!("paidOutDate: {why}"))?;
        let amount = money(&row.amount, "amount")?;
        let mut fees: [Option<i128>; 6] = [None; 6];
        for item in row.fees.iter().flatten() {
            let Some(fee) = money(&item.fee, "fees[].fee")? else {
                continue;
            };
            let kind = text(&item.kind).unwrap_or("");
            let slot = FEE_TYPES
                .iter()
                .position(|known| *known == kind)
                .unwrap_or(FEE_TYPES.len());
            fees[slot] = Some(fees[slot].unwrap_or(0) + fee);
        }
        let fee = match money(&row.fee, "fee")? {
            Some(fee) => Some(fee),
            None if row.fees.is_some() => Some(fees.iter().flatten().sum()),
            None => None,
        };
        let cancel = row.cancel.as_ref();
        let cancel_amount = cancel
            .map(|cancel| money(&cancel.cancel_amount, "cancel.cancelAmount"))
            .transpose()?
            .flatten();
        let canceled_at = cancel
            .and_then(|cancel| text(&cancel.canceled_at))
            .map(korea_time_micros)
            .transpose()
            .map_err(|why| format!("cancel.canceledAt: {why}"))?;
        let approved_at = text(&row.approved_at)
            .map(korea_time_micros)
            .transpose()
            .map_err(|why| format!("approvedAt: {why}"))?;
        let owned = |field: &Option<Text>| text(field).map(str::to_owned);
        Ok(Settlement {
            key,
            sold_date,
            paid_out_date,
            payment_key: owned(&row.payment_key),
            order_id: owned(&row.order_id),
            m_id: owned(&row.m_id),
            method: owned(&row.method),
            currency: owned(&row.currency),
            approved_at,
            money: [
                amount,
                fee,
                money(&row.supply_amount, "supplyAmount")?,
                money(&row.vat, "vat")?,
                money(&row.pay_out_amount, "payOutAmount")?,
                money(&row.interest_fee, "interestFee")?,
            ],
            fees,
            is_cancel: cancel.is_some() || amount.is_some_and(|amount| amount < 0),
            cancel_amount,
            canceled_at,
        })
    }

    fn key(record: &Settlement) -> String {
        format!("({}, {})", record.key, record.sold_date)
    }

    fn append(columns: &mut Columns, record: Settlement, day: &Day) {
        columns.sold_date.append_value(record.sold_date);
        columns.paid_out_date.append_option(record.paid_out_date);
        columns.transaction_key.append_value(&record.key);
        columns.payment_key.append_option(record.payment_key);
        columns.order_id.append_option(record.order_id);
        columns.m_id.append_option(record.m_id);
        columns.method.append_option(record.method);
        columns.currency.append_option(record.currency);
        columns.approved_at.append_option(record.approved_at);
        for (builder, value) in columns.money.iter_mut().zip(record.money) {
            builder.append_option(value);
        }
        for (builder, value) in columns.fees.iter_mut().zip(record.fees) {
            builder.append_option(value);
        }
        columns.is_cancel.append_value(record.is_cancel);
        columns.cancel_amount.append_option(record.cancel_amount);
        columns.canceled_at.append_option(record.canceled_at);
        columns.load_unit.append_value(&day.unit);
    }

    fn finish(columns: &mut Columns) -> RecordBatch {
        let mut arrays: Vec<ArrayRef> = vec![
            Arc::new(columns.sold_date.finish()),
            Arc::new(columns.paid_out_date.finish()),
            Arc::new(columns.transaction_key.finish()),
            Arc::new(columns.payment_key.finish()),
            Arc::new(columns.order_id.finish()),
            Arc::new(columns.m_id.finish()),
            Arc::new(columns.method.finish()),
            Arc::new(columns.currency.finish()),
            Arc::new(columns.approved_at.finish().with_timezone(KOREA_TIME_ZONE)),
        ];
        arrays.extend(columns.money.iter_mut().map(decimal));
        arrays.extend(columns.fees.iter_mut().map(decimal));
        arrays.push(Arc::new(columns.is_cancel.finish()));
        arrays.push(decimal(&mut columns.cancel_amount));
        arrays.push(Arc::new(
            columns.canceled_at.finish().with_timezone(KOREA_TIME_ZONE),
        ));
        arrays.push(Arc::new(columns.load_unit.finish()));
        RecordBatch::try_new(Self::schema(), arrays).expect("columns follow the schema")
    }
}
