//! The per-day summary a finance team reads before any discrepancy: per business day and
//! payment method, what was approved and cancelled at Toss, what the settlements say of that
//! day's sales (fees, VAT, payout, payout date), and per day what was paid out.

use crate::error::{Error, Result};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Date32Type, Decimal128Type, Int64Type};
use chrono::NaiveDate;
use datafusion::prelude::SessionContext;
use std::collections::BTreeMap;

/// One row per business day and method; the columns of the `summary` outputs.
const SUMMARY_SQL: &str = "
WITH moves AS (
    SELECT business_date, method,
           count(CASE WHEN event = 'approval' THEN 1 END) AS approved_count,
           coalesce(sum(CASE WHEN event = 'approval' THEN amount END), 0) AS approved_amount,
           count(CASE WHEN event = 'cancel' THEN 1 END) AS cancelled_count,
           coalesce(sum(CASE WHEN event = 'cancel' THEN amount END), 0) AS cancelled_amount
    FROM toss_events CROSS JOIN period p
    WHERE business_date BETWEEN p.from_date AND p.to_date
    GROUP BY business_date, method
),
sold AS (
    SELECT sold_date AS business_date, method,
           sum(amount) AS settled_amount, sum(fee) AS fees, sum(vat) AS vat,
           sum(pay_out_amount) AS payout, max(paid_out_date) AS payout_date
    FROM settlements CROSS JOIN period p
    WHERE sold_date BETWEEN p.from_date AND p.to_date
    GROUP BY sold_date, method
)
SELECT
    coalesce(m.business_date, s.business_date) AS business_date,
    coalesce(m.method, s.method, '') AS method,
    CAST(coalesce(m.approved_count, 0) AS BIGINT) AS approved_count,
    CAST(coalesce(m.approved_amount, 0) AS DECIMAL(22, 4)) AS approved_amount,
    CAST(coalesce(m.cancelled_count, 0) AS BIGINT) AS cancelled_count,
    CAST(coalesce(m.cancelled_amount, 0) AS DECIMAL(22, 4)) AS cancelled_amount,
    CAST(coalesce(m.approved_amount, 0) - coalesce(m.cancelled_amount, 0) AS DECIMAL(22, 4))
        AS net_amount,
    CAST(s.settled_amount AS DECIMAL(22, 4)) AS settled_amount,
    CAST(s.fees AS DECIMAL(22, 4)) AS fees,
    CAST(s.vat AS DECIMAL(22, 4)) AS vat,
    CAST(s.payout AS DECIMAL(22, 4)) AS payout,
    s.payout_date
FROM moves m
FULL OUTER JOIN sold s ON s.business_date = m.business_date AND s.method = m.method
ORDER BY business_date, method
";

/// What was paid out on each day of the period, by the settlements' payout dates.
const PAID_OUT_SQL: &str = "
SELECT paid_out_date AS day, CAST(sum(pay_out_amount) AS DECIMAL(22, 4)) AS paid_out
FROM settlements CROSS JOIN period p
WHERE paid_out_date BETWEEN p.from_date AND p.to_date
GROUP BY paid_out_date
";

/// The summary rows, and the per-day totals the report draws.
pub struct Summary {
    pub batches: Vec<RecordBatch>,
    pub days: Vec<super::html::DayTotals>,
}

pub async fn compute(ctx: &SessionContext, from: NaiveDate, to: NaiveDate) -> Result<Summary> {
    let failed = |err: datafusion::error::DataFusionError| Error::Reconcile {
        location: "the daily summary".to_owned(),
        message: err
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
    };
    let batches = ctx
        .sql(SUMMARY_SQL)
        .await
        .map_err(failed)?
        .collect()
        .await
        .map_err(failed)?;
    let paid_out = ctx
        .sql(PAID_OUT_SQL)
        .await
        .map_err(failed)?
        .collect()
        .await
        .map_err(failed)?;
    let mut days: BTreeMap<NaiveDate, super::html::DayTotals> = super::outputs::period(from, to)
        .map(|date| {
            let totals = super::html::DayTotals {
                date,
                net_sales: 0.0,
                settled: 0.0,
                paid_out: 0.0,
                fees: 0.0,
                approved_count: 0,
                cancelled_count: 0,
            };
            (date, totals)
        })
        .collect();
    for batch in &batches {
        let column = |name: &str| batch.column_by_name(name).expect("summary column");
        let dates = column("business_date").as_primitive::<Date32Type>();
        let approved = column("approved_count").as_primitive::<Int64Type>();
        let cancelled = column("cancelled_count").as_primitive::<Int64Type>();
        let net = column("net_amount").as_primitive::<Decimal128Type>();
        let settled = column("settled_amount").as_primitive::<Decimal128Type>();
        let fees = column("fees").as_primitive::<Decimal128Type>();
        for row in 0..batch.num_rows() {
            let date = crate::dates::from_days_since_epoch(dates.value(row));
            let Some(totals) = days.get_mut(&date) else {
                continue;
            };
            totals.approved_count += approved.value(row).max(0) as u64;
            totals.cancelled_count += cancelled.value(row).max(0) as u64;
            totals.net_sales += money(net, row);
            totals.settled += money(settled, row);
            totals.fees += money(fees, row);
        }
    }
    for batch in &paid_out {
        let dates = batch.column(0).as_primitive::<Date32Type>();
        let amounts = batch.column(1).as_primitive::<Decimal128Type>();
        for row in 0..batch.num_rows() {
            let date = crate::dates::from_days_since_epoch(dates.value(row));
            if let Some(totals) = days.get_mut(&date) {
                totals.paid_out += money(amounts, row);
            }
        }
    }
    Ok(Summary {
        batches,
        days: days.into_values().collect(),
    })
}

/// A `Decimal(_, 4)` value as a number of won (0 when null), for totals and the chart.
fn money(array: &arrow::array::PrimitiveArray<Decimal128Type>, row: usize) -> f64 {
    if array.is_null(row) {
        return 0.0;
    }
    array.value(row) as f64 / 10_000.0
}
