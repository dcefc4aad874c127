//! The batches the engine's `toss-api` source produces from Toss Payments' v1 REST API: one
//! schema per dataset, so a plugin can be written for them.
//!
//! Money is `Decimal128(22, 4)`: KRW is whole won, other currencies (USD through PayPal) carry
//! decimals, and no currency has more than four, so no amount is ever rounded. Settlement
//! amounts are signed: a cancel is its own row with negative amounts. Times are
//! `Timestamp(Microsecond, "+09:00")`, days `Date32` (Korea time).
//!
//! **Transactions** (`GET /v1/transactions`, [`transactions_schema`]): one row per approval or
//! cancel; a record is identified by `transaction_key`.
//!
//! | column | Arrow type | nullable |
//! |---|---|---|
//! | transaction_date | Date32 (the Korea-time day pulled) | no |
//! | transaction_key | Utf8 | no |
//! | payment_key, order_id, m_id, method, status, currency | Utf8 | yes |
//! | transaction_at | Timestamp(Microsecond, "+09:00") | yes |
//! | amount | Decimal128(22, 4) | yes |
//! | use_escrow | Boolean | yes |
//! | customer_key, receipt_url | Utf8 | yes |
//! | load_unit | Utf8 (e.g. `transactions_2026-12-01`) | no |
//!
//! **Settlements** (`GET /v1/settlements`, [`settlements_schema`]): one row per settled
//! transaction (approvals positive, cancels negative); a record is identified by
//! (`transaction_key`, `sold_date`).
//!
//! | column | Arrow type | nullable |
//! |---|---|---|
//! | sold_date | Date32 | no |
//! | paid_out_date | Date32 | yes |
//! | transaction_key | Utf8 | no |
//! | payment_key, order_id, m_id, method, currency | Utf8 | yes |
//! | approved_at | Timestamp(Microsecond, "+09:00") | yes |
//! | amount, fee, supply_amount, vat, pay_out_amount, interest_fee | Decimal128(22, 4) | yes |
//! | fee_base, fee_installment_discount, fee_installment, fee_point_saving, fee_etc, fee_other | Decimal128(22, 4): the sum of `fees[]` of that type | yes |
//! | is_cancel | Boolean | no |
//! | cancel_amount | Decimal128(22, 4) | yes |
//! | canceled_at | Timestamp(Microsecond, "+09:00") | yes |
//! | load_unit | Utf8 (e.g. `settlements_2026-12-01`) | no |
//!
//! `load_unit` names the day's pull a row came from; it is hinted `constant-per-unit`, which is
//! how the Postgres sink removes rows a newer pull of the same day no longer has.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::toss::{KOREA_TIME_ZONE, SHAPE_KEY};

/// Precision and scale of every money column.
pub const MONEY_PRECISION: u8 = 22;
/// See [`MONEY_PRECISION`].
pub const MONEY_SCALE: i8 = 4;

/// The columns that identify a transaction.
pub const TRANSACTION_KEY: [&str; 1] = ["transaction_key"];
/// The columns that identify a settlement row.
pub const SETTLEMENT_KEY: [&str; 2] = ["transaction_key", "sold_date"];

fn text(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

fn shaped(field: Field, shape: &str) -> Field {
    field.with_metadata(HashMap::from([(SHAPE_KEY.to_owned(), shape.to_owned())]))
}

fn money(name: &str) -> Field {
    Field::new(
        name,
        DataType::Decimal128(MONEY_PRECISION, MONEY_SCALE),
        true,
    )
}

fn korea_time(name: &str) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Microsecond, Some(KOREA_TIME_ZONE.into())),
        true,
    )
}

/// The schema of the transactions dataset (see the module docs).
pub fn transactions_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("transaction_date", DataType::Date32, false),
        shaped(text("transaction_key", false), "random"),
        shaped(text("payment_key", true), "random"),
        text("order_id", true),
        text("m_id", true),
        text("method", true),
        text("status", true),
        shaped(korea_time("transaction_at"), "ascending"),
        text("currency", true),
        money("amount"),
        Field::new("use_escrow", DataType::Boolean, true),
        text("customer_key", true),
        text("receipt_url", true),
        shaped(text("load_unit", false), "constant-per-unit"),
    ]))
}

/// The schema of the settlements dataset (see the module docs).
pub fn settlements_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("sold_date", DataType::Date32, false),
        Field::new("paid_out_date", DataType::Date32, true),
        shaped(text("transaction_key", false), "random"),
        shaped(text("payment_key", true), "random"),
        text("order_id", true),
        text("m_id", true),
        text("method", true),
        text("currency", true),
        korea_time("approved_at"),
        money("amount"),
        money("fee"),
        money("supply_amount"),
        money("vat"),
        money("pay_out_amount"),
        money("interest_fee"),
        money("fee_base"),
        money("fee_installment_discount"),
        money("fee_installment"),
        money("fee_point_saving"),
        money("fee_etc"),
        money("fee_other"),
        Field::new("is_cancel", DataType::Boolean, false),
        money("cancel_amount"),
        korea_time("canceled_at"),
        shaped(text("load_unit", false), "constant-per-unit"),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_columns_and_every_money_column_has_room_for_decimals() {
        let transactions = transactions_schema();
        let settlements = settlements_schema();
        for key in TRANSACTION_KEY {
            assert!(transactions.field_with_name(key).is_ok(), "{key}");
        }
        for key in SETTLEMENT_KEY {
            assert!(settlements.field_with_name(key).is_ok(), "{key}");
        }
        for field in settlements
            .fields()
            .iter()
            .chain(transactions.fields().iter())
        {
            if let DataType::Decimal128(precision, scale) = field.data_type() {
                assert_eq!((*precision, *scale), (MONEY_PRECISION, MONEY_SCALE));
            }
        }
    }
}
