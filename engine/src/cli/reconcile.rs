//! `engine reconcile`: one reconcile over the selected business days, a summary (or JSON), the
//! HTML report, and an exit code a cron job or CI can alert on: 0 balanced, 3 discrepancies.

use super::{DateArgs, runtime};
use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use engine::Result;
use engine::reconcile::{Outcome, ReconcileConfig, RunOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The exit code of a reconcile that found discrepancies.
pub(crate) const DISCREPANCIES_FOUND: u8 = 3;

pub(crate) fn reconcile(
    path: &Path,
    args: &DateArgs,
    json: bool,
    report: Option<PathBuf>,
) -> Result<ExitCode> {
    let config = ReconcileConfig::load(path)?;
    let dates = args.spec()?;
    let options = RunOptions {
        dates,
        report,
        as_of: None,
    };
    let outcome = runtime()?.block_on(engine::reconcile::run(&config, &options))?;
    if json {
        println!("{}", to_json(&outcome));
    } else {
        print!("{}", render(&outcome));
    }
    Ok(if outcome.balanced() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(DISCREPANCIES_FOUND)
    })
}

/// The terminal summary: the period's totals, each check's count, the verdict.
fn render(outcome: &Outcome) -> String {
    let mut text = format!(
        "reconcile {} · {} .. {}\n",
        outcome.name, outcome.from, outcome.to
    );
    let approved: u64 = outcome.days.iter().map(|day| day.approved_count).sum();
    let cancelled: u64 = outcome.days.iter().map(|day| day.cancelled_count).sum();
    let net: f64 = outcome.days.iter().map(|day| day.net_sales).sum();
    let fees: f64 = outcome.days.iter().map(|day| day.fees).sum();
    let paid_out: f64 = outcome.days.iter().map(|day| day.paid_out).sum();
    text.push_str(&format!(
        "{approved} approvals, {cancelled} cancels · net {} · fees {} · paid out {}\n",
        won(net),
        won(fees),
        won(paid_out)
    ));
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
        .set_width(120)
        .set_header(vec!["check", "found", "what it means"]);
    for check in &outcome.checks {
        let (count, note) = match &check.skipped {
            Some(why) => ("-".to_owned(), format!("skipped: {why}")),
            None => (check.count.to_string(), check.description.clone()),
        };
        let name = if check.custom {
            format!("{} (custom)", check.kind)
        } else {
            check.kind.clone()
        };
        table.add_row(vec![
            Cell::new(name),
            Cell::new(count).set_alignment(CellAlignment::Right),
            Cell::new(note),
        ]);
    }
    text.push_str(&table.to_string());
    text.push('\n');
    for written in &outcome.written {
        text.push_str(&format!("{}: {} rows\n", written.sink, written.rows));
    }
    let verdict = if outcome.balanced() {
        "BALANCED".to_owned()
    } else {
        format!("DISCREPANCIES: {}", outcome.discrepancies.len())
    };
    text.push_str(&format!(
        "{verdict} · report {} · {:.2} s\n",
        outcome.report.display(),
        outcome.seconds
    ));
    text
}

/// `1234567.5` → `₩1,234,567.5`.
fn won(amount: f64) -> String {
    let negative = amount < 0.0;
    let text = format!("{:.2}", amount.abs());
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, "00"));
    let mut grouped = String::new();
    for (index, digit) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let fraction = fraction.trim_end_matches('0');
    format!(
        "{}₩{grouped}{}{fraction}",
        if negative { "-" } else { "" },
        if fraction.is_empty() { "" } else { "." }
    )
}

fn to_json(outcome: &Outcome) -> serde_json::Value {
    serde_json::json!({
        "reconcile": outcome.name,
        "from": outcome.from.to_string(),
        "to": outcome.to.to_string(),
        "balanced": outcome.balanced(),
        "discrepancy_count": outcome.discrepancies.len(),
        "report": outcome.report.display().to_string(),
        "seconds": outcome.seconds,
        "inputs": outcome.inputs.iter().map(|(name, shown)| serde_json::json!({"name": name, "read": shown})).collect::<Vec<_>>(),
        "checks": outcome.checks,
        "days": outcome.days.iter().map(|day| serde_json::json!({
            "date": day.date.to_string(),
            "approved_count": day.approved_count,
            "cancelled_count": day.cancelled_count,
            "net_sales": day.net_sales,
            "fees": day.fees,
            "settled": day.settled,
            "paid_out": day.paid_out,
        })).collect::<Vec<_>>(),
        "discrepancies": outcome.discrepancies.iter().map(|item| serde_json::json!({
            "id": item.id(),
            "kind": item.kind,
            "business_date": item.business_date.to_string(),
            "order_id": item.order_id,
            "payment_key": item.payment_key,
            "transaction_key": item.transaction_key,
            "expected": item.expected,
            "actual": item.actual,
            "message": item.message,
        })).collect::<Vec<_>>(),
        "written": outcome.written,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn won_groups_thousands_and_keeps_decimals() {
        assert_eq!(won(1234567.0), "₩1,234,567");
        assert_eq!(won(-1500.5), "-₩1,500.5");
        assert_eq!(won(0.0), "₩0");
        assert_eq!(won(999.0), "₩999");
    }
}
