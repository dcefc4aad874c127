//! `engine reconcile`: whether the merchant's books equal Toss's. Loading Toss's data is the
//! means; the question a finance team asks each morning is whether every paid order was approved
//! and not cancelled, every approval belongs to an order, every transaction was settled with the
//! right fee, and what reached the bank is what the settlements promise.
//!
//! The checks are SQL run by DataFusion over the same Arrow data the loads wrote (Parquet
//! folders and Delta tables, on disk or in an object store) and over the merchant's orders read
//! from its own PostgreSQL: a query engine does the joins, and each check is a SQL file a person
//! can read (`sql/checks/`), beside which a merchant adds its own.
//!
//! A run reads the inputs into one session (`inputs.rs`), computes once the tables that give
//! every side the same shape and that several checks share (`sql/views_*.sql`: money movements
//! of the feed and of the API, each order's status at Toss, each transaction's settled total),
//! runs the checks ([`checks`]), computes the daily summary
//! (`summary.rs`), writes both to the configured sinks (`outputs.rs`) and writes a self-contained
//! HTML report ([`html`]).

pub mod checks;
pub mod config;
pub mod html;
mod inputs;
mod outputs;
mod summary;
mod udf;

use crate::dates::{DateSelection, DatesSpec};
use crate::error::{Error, Result};
use arrow::array::{
    Array, ArrayRef, Date32Array, Decimal128Array, Int32Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Field, Schema};
use chrono::NaiveDate;
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};
use std::path::PathBuf;
use std::sync::Arc;

pub use checks::Discrepancy;
pub use config::ReconcileConfig;
pub use outputs::Written;

/// The names a check's `needs` may list: the inputs, and `toss` for either Toss side.
pub const INPUT_NAMES: [&str; 6] = [
    "feed",
    "transactions",
    "settlements",
    "orders",
    "payouts",
    "toss",
];

/// What the command line adds to the file.
#[derive(Debug, Default, Clone)]
pub struct RunOptions {
    /// Days to check instead of the file's `dates`.
    pub dates: Option<DatesSpec>,
    /// The report's path instead of `{report_dir}/{name}_{from}_{to}.html`.
    pub report: Option<PathBuf>,
    /// The day the run counts settlement lags to (default today in Korea).
    pub as_of: Option<NaiveDate>,
}

/// What one check did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckOutcome {
    pub kind: String,
    pub description: String,
    pub custom: bool,
    /// Discrepancies found; 0 when skipped.
    pub count: u64,
    /// Why it did not run (an input it needs is not given).
    pub skipped: Option<String>,
}

/// What a reconcile found and wrote.
#[derive(Debug)]
pub struct Outcome {
    pub name: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Each input and where it was read.
    pub inputs: Vec<(String, String)>,
    pub checks: Vec<CheckOutcome>,
    pub discrepancies: Vec<Discrepancy>,
    pub days: Vec<html::DayTotals>,
    pub report: PathBuf,
    pub written: Vec<Written>,
    pub seconds: f64,
}

impl Outcome {
    /// No check found anything.
    pub fn balanced(&self) -> bool {
        self.discrepancies.is_empty()
    }
}

/// Runs the reconcile `config` describes.
pub async fn run(config: &ReconcileConfig, options: &RunOptions) -> Result<Outcome> {
    let started = std::time::Instant::now();
    let name = config.reconcile.name.to_string();
    let ctx = SessionContext::new_with_config(
        SessionConfig::new().with_target_partitions(crate::threads::count().max(1)),
    );
    udf::register(&ctx);
    let mut shown_inputs = Vec::new();
    let given = &config.inputs;
    for (input_name, input) in [
        ("feed", &given.feed),
        ("transactions", &given.transactions),
        ("settlements", &given.settlements),
    ] {
        if let Some(input) = input {
            tracing::info!(input = input_name, "reading");
            let shown = inputs::register_table(&ctx, config, input_name, input).await?;
            shown_inputs.push((input_name.to_owned(), shown));
        }
    }
    if given.settlements.is_none() {
        register_empty(
            &ctx,
            "settlements",
            toss_etl_sdk::toss_api::settlements_schema(),
        )?;
    }
    for (shape, input) in [
        (&inputs::ORDERS, &given.orders),
        (&inputs::PAYOUTS, &given.payouts),
    ] {
        if let Some(input) = input {
            tracing::info!(input = shape.name, "reading");
            let shown = inputs::register_rows(&ctx, config, shape, input).await?;
            shown_inputs.push((shape.name.to_owned(), shown));
        }
    }
    create_views(&ctx, config).await?;

    let today = crate::dates::korea_today();
    let as_of = options.as_of.unwrap_or(today);
    let selection = options
        .dates
        .clone()
        .unwrap_or_else(|| config.reconcile.dates.clone())
        .resolve(today);
    let (from, to) = match selection {
        DateSelection::Range { from, to } => (from, to),
        DateSelection::All => data_range(&ctx).await?.unwrap_or((today, today)),
    };
    register_rules(&ctx, config, from, to, as_of)?;

    let mut outcomes = Vec::new();
    let mut found = Vec::new();
    for check in checks::all(config)? {
        let missing: Vec<&str> = check
            .needs
            .iter()
            .filter(|need| !has_input(config, need))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            outcomes.push(CheckOutcome {
                kind: check.kind.clone(),
                description: check.description.clone(),
                custom: check.custom,
                count: 0,
                skipped: Some(format!("needs [inputs.{}]", missing.join("], [inputs."))),
            });
            continue;
        }
        let rows = checks::run(&ctx, config, &check).await?;
        tracing::info!(check = %check.kind, found = rows.len(), "checked");
        outcomes.push(CheckOutcome {
            kind: check.kind.clone(),
            description: check.description.clone(),
            custom: check.custom,
            count: rows.len() as u64,
            skipped: None,
        });
        found.extend(rows);
    }
    found.sort();
    let summary = summary::compute(&ctx, from, to).await?;

    let state_dir = config.reconcile.state_dir.to_path();
    let mut written = outputs::write(
        &config.outputs.discrepancies,
        outputs::Dataset::Discrepancies,
        &name,
        &state_dir,
        &outputs::discrepancies_by_day(&name, from, to, &found),
        outputs::discrepancies_schema(),
    )
    .await?;
    if !config.outputs.summary.is_empty() {
        let (schema, by_day) = outputs::summary_by_day(&name, from, to, &summary.batches)?;
        written.extend(
            outputs::write(
                &config.outputs.summary,
                outputs::Dataset::Summary,
                &name,
                &state_dir,
                &by_day,
                schema,
            )
            .await?,
        );
    }

    let report = options.report.clone().unwrap_or_else(|| {
        let folder = config
            .outputs
            .report_dir
            .as_ref()
            .map(|dir| dir.to_path())
            .unwrap_or_else(|| PathBuf::from("reports"));
        folder.join(format!("{name}_{from}_{to}.html"))
    });
    let mut outcome = Outcome {
        name,
        from,
        to,
        inputs: shown_inputs,
        checks: outcomes,
        discrepancies: found,
        days: summary.days,
        report,
        written,
        seconds: 0.0,
    };
    write_report(&outcome)?;
    outcome.seconds = started.elapsed().as_secs_f64();
    Ok(outcome)
}

/// Whether the file gives the input a check needs.
fn has_input(config: &ReconcileConfig, need: &str) -> bool {
    let given = &config.inputs;
    match need {
        "feed" => given.feed.is_some(),
        "transactions" => given.transactions.is_some(),
        "settlements" => given.settlements.is_some(),
        "orders" => given.orders.is_some(),
        "payouts" => given.payouts.is_some(),
        "toss" => given.feed.is_some() || given.transactions.is_some(),
        _ => false,
    }
}

/// The views every check reads; `toss_events` is the API's when it is given, else the feed's.
async fn create_views(ctx: &SessionContext, config: &ReconcileConfig) -> Result<()> {
    let mut scripts = Vec::new();
    if config.inputs.feed.is_some() {
        scripts.push(("feed", include_str!("sql/views_feed.sql")));
    }
    if config.inputs.transactions.is_some() {
        scripts.push(("transactions", include_str!("sql/views_api.sql")));
        scripts.push((
            "transactions",
            "CREATE VIEW toss_events AS SELECT * FROM api_events",
        ));
    } else {
        scripts.push((
            "feed",
            "CREATE VIEW toss_events AS SELECT * FROM feed_events",
        ));
    }
    if config.inputs.feed.is_some() && config.inputs.transactions.is_some() {
        scripts.push(("feed", include_str!("sql/views_both.sql")));
    }
    scripts.push(("transactions", include_str!("sql/views_toss.sql")));
    scripts.push(("settlements", include_str!("sql/views_settled.sql")));
    for (input, script) in scripts {
        let code: String = script
            .lines()
            .filter(|line| !line.trim_start().starts_with("--"))
            .map(|line| format!("{line}\n"))
            .collect();
        for statement in code.split(';').filter(|text| !text.trim().is_empty()) {
            let done = async {
                ctx.sql(statement).await?.collect().await?;
                Ok::<_, datafusion::error::DataFusionError>(())
            };
            done.await.map_err(|err| Error::Reconcile {
                location: format!("{}: [inputs.{input}]", config.path().display()),
                message: format!(
                    "the table does not have the columns of its dataset ({}); point it at \
                     what the engine's {input} pipeline writes",
                    err.to_string().lines().next().unwrap_or_default()
                ),
            })?;
        }
    }
    Ok(())
}

/// The first and last business day the Toss side holds.
async fn data_range(ctx: &SessionContext) -> Result<Option<(NaiveDate, NaiveDate)>> {
    let batches = ctx
        .sql("SELECT min(business_date), max(business_date) FROM toss_events")
        .await
        .map_err(|err| Error::Reconcile {
            location: "dates = \"all\"".to_owned(),
            message: err.to_string(),
        })?
        .collect()
        .await
        .map_err(|err| Error::Reconcile {
            location: "dates = \"all\"".to_owned(),
            message: err.to_string(),
        })?;
    let Some(batch) = batches.first().filter(|batch| batch.num_rows() > 0) else {
        return Ok(None);
    };
    let day = |index: usize| {
        let days = batch.column(index).as_any().downcast_ref::<Date32Array>()?;
        (!days.is_null(0)).then(|| crate::dates::from_days_since_epoch(days.value(0)))
    };
    Ok(day(0).zip(day(1)))
}

/// `period`, `rules` and `settlement_lags`: the run's parameters as tables the checks join.
fn register_rules(
    ctx: &SessionContext,
    config: &ReconcileConfig,
    from: NaiveDate,
    to: NaiveDate,
    as_of: NaiveDate,
) -> Result<()> {
    let day = |date: NaiveDate| crate::dates::days_since_epoch(date);
    let due = |lag: u32| day(as_of) - lag as i32;
    let rules = &config.rules;
    let date = |name: &str| Field::new(name, DataType::Date32, false);
    let period = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            date("from_date"),
            date("to_date"),
            date("as_of"),
        ])),
        vec![
            Arc::new(Date32Array::from(vec![day(from)])) as ArrayRef,
            Arc::new(Date32Array::from(vec![day(to)])),
            Arc::new(Date32Array::from(vec![day(as_of)])),
        ],
    );
    let tolerance = (rules.amount_tolerance * 10_000.0).round() as i128;
    let rules_batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("amount_tolerance", inputs::MONEY, false),
            Field::new("settlement_lag_days", DataType::Int32, false),
            date("due_through"),
        ])),
        vec![
            Arc::new(Decimal128Array::from(vec![tolerance]).with_data_type(inputs::MONEY))
                as ArrayRef,
            Arc::new(Int32Array::from(vec![rules.settlement_lag_days as i32])),
            Arc::new(Date32Array::from(vec![due(rules.settlement_lag_days)])),
        ],
    );
    let methods: Vec<(&String, &u32)> = rules.settlement_lag_days_by_method.iter().collect();
    let lags = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("method", DataType::Utf8, false),
            Field::new("lag_days", DataType::Int32, false),
            date("due_through"),
        ])),
        vec![
            Arc::new(StringArray::from_iter_values(
                methods.iter().map(|(method, _)| method.as_str()),
            )) as ArrayRef,
            Arc::new(Int32Array::from_iter_values(
                methods.iter().map(|(_, lag)| **lag as i32),
            )),
            Arc::new(Date32Array::from_iter_values(
                methods.iter().map(|(_, lag)| due(**lag)),
            )),
        ],
    );
    for (table, batch) in [
        ("period", period),
        ("rules", rules_batch),
        ("settlement_lags", lags),
    ] {
        let batch = batch.map_err(|err| Error::Reconcile {
            location: table.to_owned(),
            message: err.to_string(),
        })?;
        register_batch(ctx, table, batch)?;
    }
    Ok(())
}

fn register_batch(ctx: &SessionContext, table: &str, batch: RecordBatch) -> Result<()> {
    let provider = MemTable::try_new(batch.schema(), vec![vec![batch]]);
    provider
        .and_then(|provider| ctx.register_table(table, Arc::new(provider)).map(|_| ()))
        .map_err(|err| Error::Reconcile {
            location: table.to_owned(),
            message: err.to_string(),
        })
}

fn register_empty(
    ctx: &SessionContext,
    table: &str,
    schema: arrow::datatypes::SchemaRef,
) -> Result<()> {
    register_batch(ctx, table, RecordBatch::new_empty(schema))
}

/// Writes the HTML report whole or not at all (a temporary file renamed into place).
fn write_report(outcome: &Outcome) -> Result<()> {
    let data = html::ReportData {
        name: outcome.name.clone(),
        from: outcome.from,
        to: outcome.to,
        generated_at: chrono::Utc::now()
            .with_timezone(&crate::dates::kst())
            .format("%Y-%m-%d %H:%M:%S KST")
            .to_string(),
        inputs: outcome.inputs.clone(),
        days: outcome.days.clone(),
        checks: outcome
            .checks
            .iter()
            .filter(|check| check.skipped.is_none())
            .map(|check| html::CheckCount {
                kind: check.kind.clone(),
                description: check.description.clone(),
                custom: check.custom,
                count: check.count,
            })
            .collect(),
        discrepancies: outcome.discrepancies.clone(),
    };
    let text = html::render(&data);
    let path = &outcome.report;
    if let Some(folder) = path
        .parent()
        .filter(|folder| !folder.as_os_str().is_empty())
    {
        std::fs::create_dir_all(folder)
            .map_err(|err| Error::io(format!("cannot create {}", folder.display()), err))?;
    }
    let temporary = path.with_extension("html.partial");
    std::fs::write(&temporary, text)
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(|err| Error::io(format!("cannot write the report {}", path.display()), err))
}
