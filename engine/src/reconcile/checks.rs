//! The checks: each one SQL query over the reconcile's tables whose rows are discrepancies.
//! The built-in ones are SQL files shipped inside the engine (`sql/checks/`), so that a finance
//! team can read exactly what "balanced" means, and a merchant's own checks are SQL files of
//! the same shape that appear in the report beside them.
//!
//! A check file starts with comment lines that describe it:
//!
//! ```sql
//! -- needs: orders toss
//! -- description: The shop marked the order paid, but Toss has no approval for it.
//! SELECT business_date, order_id, payment_key, transaction_key, expected, actual, message …
//! ```
//!
//! `needs` names the inputs it reads (`toss` is either Toss side); a check whose inputs the
//! reconcile file does not give is skipped and the report says so. The query returns
//! `business_date` and `message`, and any of `order_id`, `payment_key`, `transaction_key`,
//! `expected` and `actual`; each row is one discrepancy.

use super::config::ReconcileConfig;
use crate::error::{Error, Result};
use arrow::array::{Array, Date32Array, StringArray};
use chrono::NaiveDate;
use datafusion::prelude::SessionContext;

/// The built-in checks, in the order they run and are reported.
const BUILT_IN: [(&str, &str); 13] = [
    (
        "order_not_approved",
        include_str!("sql/checks/order_not_approved.sql"),
    ),
    (
        "approval_without_order",
        include_str!("sql/checks/approval_without_order.sql"),
    ),
    (
        "order_status_differs",
        include_str!("sql/checks/order_status_differs.sql"),
    ),
    (
        "order_amount_differs",
        include_str!("sql/checks/order_amount_differs.sql"),
    ),
    (
        "settlement_missing",
        include_str!("sql/checks/settlement_missing.sql"),
    ),
    (
        "settlement_without_transaction",
        include_str!("sql/checks/settlement_without_transaction.sql"),
    ),
    (
        "settlement_amount_differs",
        include_str!("sql/checks/settlement_amount_differs.sql"),
    ),
    (
        "fee_not_supply_plus_vat",
        include_str!("sql/checks/fee_not_supply_plus_vat.sql"),
    ),
    (
        "payout_not_amount_minus_fee",
        include_str!("sql/checks/payout_not_amount_minus_fee.sql"),
    ),
    (
        "payout_total_differs",
        include_str!("sql/checks/payout_total_differs.sql"),
    ),
    ("feed_only", include_str!("sql/checks/feed_only.sql")),
    ("api_only", include_str!("sql/checks/api_only.sql")),
    (
        "feed_api_differs",
        include_str!("sql/checks/feed_api_differs.sql"),
    ),
];

/// The columns a check may return besides `business_date` and `message`.
const KEY_COLUMNS: [&str; 5] = [
    "order_id",
    "payment_key",
    "transaction_key",
    "expected",
    "actual",
];

/// One check, built in or the merchant's.
#[derive(Debug, Clone)]
pub struct Check {
    /// The kind its discrepancies get.
    pub kind: String,
    pub description: String,
    pub custom: bool,
    /// Inputs it reads; see the module docs.
    pub needs: Vec<String>,
    pub sql: String,
    /// Where it came from, for messages: `built-in` or the file's path.
    pub origin: String,
}

/// One discrepancy a check found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Discrepancy {
    pub business_date: NaiveDate,
    pub kind: String,
    pub order_id: Option<String>,
    pub payment_key: Option<String>,
    pub transaction_key: Option<String>,
    pub expected: Option<String>,
    pub actual: Option<String>,
    pub message: String,
}

impl Discrepancy {
    /// A stable identity: the same finding on the next run has the same id, so outputs that
    /// deliver (a webhook) send it once.
    pub fn id(&self) -> String {
        let text = format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
            self.kind,
            self.business_date,
            self.order_id.as_deref().unwrap_or(""),
            self.payment_key.as_deref().unwrap_or(""),
            self.transaction_key.as_deref().unwrap_or("")
        );
        format!("{:032x}", xxhash_rust::xxh3::xxh3_128(text.as_bytes()))
    }
}

/// The built-in checks and then the reconcile file's own.
pub fn all(config: &ReconcileConfig) -> Result<Vec<Check>> {
    let mut checks: Vec<Check> = BUILT_IN
        .iter()
        .map(|(kind, sql)| {
            let header = Header::read(sql);
            Check {
                kind: (*kind).to_owned(),
                description: header.description.unwrap_or_default(),
                custom: false,
                needs: header.needs,
                sql: (*sql).to_owned(),
                origin: "built-in".to_owned(),
            }
        })
        .collect();
    for (index, custom) in config.checks.iter().enumerate() {
        let key = "[[checks]] file";
        let path = custom.file.to_path();
        let sql = std::fs::read_to_string(&path).map_err(|err| {
            config.error_at(
                key,
                format!(
                    "check {} ({}): cannot read the SQL file: {err}",
                    index + 1,
                    path.display()
                ),
            )
        })?;
        let header = Header::read(&sql);
        let kind = match &custom.name {
            Some(name) => name.to_string(),
            None => path
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        if kind.is_empty()
            || !kind
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        {
            return Err(config.error_at(
                "[[checks]] name",
                format!(
                    "{kind:?} ({}) cannot name a check: use letters, digits, '_' and '-'",
                    path.display()
                ),
            ));
        }
        if checks.iter().any(|check| check.kind == kind) {
            return Err(config.error_at(
                "[[checks]] name",
                format!(
                    "a check named {kind:?} exists already ({}); give this one another name",
                    path.display()
                ),
            ));
        }
        checks.push(Check {
            kind,
            description: custom
                .description
                .as_ref()
                .map(|text| text.to_string())
                .or(header.description)
                .unwrap_or_default(),
            custom: true,
            needs: header.needs,
            sql,
            origin: path.display().to_string(),
        });
    }
    Ok(checks)
}

/// What a check file's leading comments say.
struct Header {
    needs: Vec<String>,
    description: Option<String>,
}

impl Header {
    fn read(sql: &str) -> Header {
        let mut header = Header {
            needs: Vec::new(),
            description: None,
        };
        for line in sql.lines() {
            let Some(comment) = line.trim().strip_prefix("--") else {
                if line.trim().is_empty() {
                    continue;
                }
                break;
            };
            let comment = comment.trim();
            if let Some(needs) = comment.strip_prefix("needs:") {
                header.needs = needs.split_whitespace().map(str::to_owned).collect();
            } else if let Some(description) = comment.strip_prefix("description:") {
                header.description = Some(description.trim().to_owned());
            }
        }
        header
    }
}

/// Runs `check` and reads its rows as discrepancies.
pub async fn run(
    ctx: &SessionContext,
    config: &ReconcileConfig,
    check: &Check,
) -> Result<Vec<Discrepancy>> {
    let failed = |message: String| Error::Reconcile {
        location: format!(
            "{}: check {} ({})",
            config.path().display(),
            check.kind,
            check.origin
        ),
        message,
    };
    let frame = ctx.sql(&check.sql).await.map_err(|err| {
        failed(format!(
            "the SQL is not a query the engine can run: {}",
            first_line(&err.to_string())
        ))
    })?;
    let returned: Vec<String> = frame
        .schema()
        .fields()
        .iter()
        .map(|field| field.name().clone())
        .collect();
    for required in ["business_date", "message"] {
        if !returned.iter().any(|name| name == required) {
            return Err(failed(format!(
                "the query returns no column {required}; a check returns business_date \
                 (the day of the discrepancy) and message (a sentence), and may return {} \
                 (it returns {})",
                KEY_COLUMNS.join(", "),
                returned.join(", ")
            )));
        }
    }
    let cast = |name: &str, to: &str| {
        if returned.iter().any(|column| column == name) {
            format!("CAST(\"{name}\" AS {to}) AS \"{name}\"")
        } else {
            format!("CAST(NULL AS {to}) AS \"{name}\"")
        }
    };
    let mut columns = vec![cast("business_date", "DATE"), cast("message", "VARCHAR")];
    columns.extend(KEY_COLUMNS.iter().map(|name| cast(name, "VARCHAR")));
    let table = format!("check_{}", check.kind.replace('-', "_"));
    ctx.register_table(table.as_str(), frame.into_view())
        .map_err(|err| failed(err.to_string()))?;
    let batches = ctx
        .sql(&format!("SELECT {} FROM \"{table}\"", columns.join(", ")))
        .await
        .map_err(|err| failed(first_line(&err.to_string()).to_owned()))?
        .collect()
        .await
        .map_err(|err| {
            failed(format!(
                "the query failed: {}",
                first_line(&err.to_string())
            ))
        });
    let _ = ctx.deregister_table(table.as_str());
    let batches = batches?;
    let mut found = Vec::new();
    for batch in &batches {
        let days = batch
            .column(0)
            .as_any()
            .downcast_ref::<Date32Array>()
            .expect("cast to DATE");
        let text = |index: usize| super::inputs::text_column(batch.column(index));
        let (message, keys) = (
            &text(1)?,
            [&text(2)?, &text(3)?, &text(4)?, &text(5)?, &text(6)?],
        );
        let value = |array: &StringArray, row: usize| {
            (!array.is_null(row)).then(|| array.value(row).to_owned())
        };
        for row in 0..batch.num_rows() {
            if days.is_null(row) {
                return Err(failed(format!(
                    "row {} has no business_date; every discrepancy belongs to a day",
                    found.len() + 1
                )));
            }
            found.push(Discrepancy {
                business_date: crate::dates::from_days_since_epoch(days.value(row)),
                kind: check.kind.clone(),
                order_id: value(keys[0], row),
                payment_key: value(keys[1], row),
                transaction_key: value(keys[2], row),
                expected: value(keys[3], row),
                actual: value(keys[4], row),
                message: value(message, row).unwrap_or_default(),
            });
        }
    }
    Ok(found)
}

/// DataFusion's errors carry a backtrace-like tail on later lines; people need the first.
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_check_says_what_it_needs_and_why() {
        for (kind, sql) in BUILT_IN {
            let header = Header::read(sql);
            assert!(!header.needs.is_empty(), "{kind} needs nothing?");
            assert!(
                header
                    .description
                    .as_deref()
                    .is_some_and(|text| text.ends_with('.')),
                "{kind} has no description sentence"
            );
            for need in &header.needs {
                assert!(
                    super::super::INPUT_NAMES.contains(&need.as_str()),
                    "{kind} needs unknown input {need}"
                );
            }
        }
    }

    #[test]
    fn ids_are_stable_and_tell_findings_apart() {
        let finding = Discrepancy {
            business_date: NaiveDate::from_ymd_opt(2026, 11, 3).unwrap(),
            kind: "settlement_missing".into(),
            order_id: Some("o-1".into()),
            payment_key: None,
            transaction_key: Some("T1".into()),
            expected: Some("100".into()),
            actual: None,
            message: "x".into(),
        };
        let mut other = finding.clone();
        assert_eq!(finding.id(), other.id());
        other.message = "changed wording".into();
        assert_eq!(finding.id(), other.id());
        other.transaction_key = Some("T2".into());
        assert_ne!(finding.id(), other.id());
    }
}
