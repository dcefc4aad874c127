//! The reconcile file. Like the pipeline file, its structs are the user reference: every key a
//! user may write is a field here, unknown keys are errors, `${NAME}` is read from the
//! environment, and an error names the file, the line and the key.

use crate::dates::DatesSpec;
use crate::env::{EnvString, Secret};
use crate::error::{Error, Result};
use crate::sinks::SinkConfig;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A whole reconcile file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileConfig {
    pub reconcile: ReconcileSection,
    pub inputs: Inputs,
    #[serde(default)]
    pub rules: Rules,
    /// The merchant's own checks, run after the built-in ones.
    #[serde(default)]
    pub checks: Vec<CustomCheck>,
    #[serde(default)]
    pub outputs: Outputs,
    /// The file's path and text, to place errors found after reading it.
    #[serde(skip)]
    pub(crate) origin: Origin,
}

#[derive(Debug, Default)]
pub(crate) struct Origin {
    pub path: PathBuf,
    pub text: String,
}

/// `[reconcile]`: the run's name and default period.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileSection {
    /// Names the report and the state of the outputs (a webhook's deliveries).
    pub name: EnvString,
    /// The business days a plain `engine reconcile` checks (Korea time); `all` is every day
    /// the Toss side holds.
    #[serde(default = "default_dates", deserialize_with = "crate::env::expanded")]
    pub dates: DatesSpec,
    /// Where the outputs keep what they must remember (default ".engine").
    #[serde(default = "default_state_dir")]
    pub state_dir: EnvString,
}

fn default_dates() -> DatesSpec {
    DatesSpec::Yesterday
}

fn default_state_dir() -> EnvString {
    EnvString::from_literal(".engine")
}

/// `[inputs]`: what is compared. Every input is optional; each check runs when the inputs it
/// reads are there, and the report lists the checks that could not run and why.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inputs {
    /// The file feed's records (the `toss` parser's columns), as its pipeline's sink wrote them.
    #[serde(default)]
    pub feed: Option<TableInput>,
    /// The API's transactions (`toss-api` source, dataset `transactions`).
    #[serde(default)]
    pub transactions: Option<TableInput>,
    /// The API's settlements (`toss-api` source, dataset `settlements`).
    #[serde(default)]
    pub settlements: Option<TableInput>,
    /// The shop's orders: order_id, amount, status, paid_at, and optionally cancelled_at and
    /// cancelled_amount.
    #[serde(default)]
    pub orders: Option<QueryInput>,
    /// What reached the bank: paid_out_date and amount, one row per deposit.
    #[serde(default)]
    pub payouts: Option<QueryInput>,
}

/// A table a pipeline's sink wrote: a Parquet folder (Hive-partitioned or not), a Delta table,
/// or a CSV file, on a local disk or in an object store.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableInput {
    /// A folder, `file:///…`, `s3://bucket/prefix`, `gs://…` or `az://…`.
    pub path: EnvString,
    /// `auto` (default: a Delta table when the folder has a `_delta_log`, CSV for a `.csv`
    /// path, else Parquet), `parquet`, `delta` or `csv`.
    #[serde(default)]
    pub format: TableFormat,
    /// An S3-compatible store's endpoint URL (MinIO, a local test server).
    #[serde(default)]
    pub endpoint: Option<EnvString>,
    /// Allow `http://` endpoints.
    #[serde(default)]
    pub allow_http: bool,
    #[serde(default)]
    pub region: Option<EnvString>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableFormat {
    #[default]
    Auto,
    Parquet,
    Delta,
    Csv,
}

/// Rows from a table of the merchant's own: a SQL query against its PostgreSQL, or a file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryInput {
    /// A PostgreSQL connection string; write `${ORDERS_DATABASE_URL}`, it carries a password.
    #[serde(default)]
    pub url: Option<Secret>,
    /// The query whose rows are the input (needs `url`).
    #[serde(default)]
    pub query: Option<EnvString>,
    /// Instead of a database: a Parquet or CSV file (or folder) with the same columns.
    #[serde(default)]
    pub path: Option<EnvString>,
    /// `disable`, `prefer` (default) or `require`; TLS always verifies the certificate.
    #[serde(default, deserialize_with = "crate::env::expanded_option")]
    pub sslmode: Option<crate::sinks::SslMode>,
    /// A PEM file of certificates to trust besides the system's.
    #[serde(default)]
    pub ca_file: Option<EnvString>,
    /// Seconds to wait for a connection (default 10).
    #[serde(default = "default_connect_timeout_secs")]
    pub connect_timeout_secs: u64,
}

fn default_connect_timeout_secs() -> u64 {
    10
}

/// `[rules]`: what "equal" means.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Days after a transaction by which its settlement row must exist, unless its method has
    /// its own (default 7).
    #[serde(default = "default_lag")]
    pub settlement_lag_days: u32,
    /// Per payment method as Toss names it (`카드`, `가상계좌`, `계좌이체`, …).
    #[serde(default)]
    pub settlement_lag_days_by_method: BTreeMap<String, u32>,
    /// Amounts in a currency other than KRW may differ by this much (default 0.01); KRW
    /// amounts must be equal.
    #[serde(default = "default_tolerance")]
    pub amount_tolerance: f64,
}

fn default_lag() -> u32 {
    7
}

fn default_tolerance() -> f64 {
    0.01
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            settlement_lag_days: default_lag(),
            settlement_lag_days_by_method: BTreeMap::new(),
            amount_tolerance: default_tolerance(),
        }
    }
}

/// `[[checks]]`: a merchant's own check, a SQL file whose rows are discrepancies.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomCheck {
    /// The SQL file (a relative path is relative to the current directory, as every path).
    pub file: EnvString,
    /// The kind its rows get in the report (default: the file's name without `.sql`).
    #[serde(default)]
    pub name: Option<EnvString>,
    /// One sentence for the report.
    #[serde(default)]
    pub description: Option<EnvString>,
}

/// `[outputs]`: where the discrepancies and the daily summary go besides the terminal.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outputs {
    /// The folder of the HTML reports (default "reports").
    #[serde(default)]
    pub report_dir: Option<EnvString>,
    /// Sinks that get one row per discrepancy (a unit per business day).
    #[serde(default)]
    pub discrepancies: Vec<SinkConfig>,
    /// Sinks that get one row per business day and payment method.
    #[serde(default)]
    pub summary: Vec<SinkConfig>,
}

impl ReconcileConfig {
    /// Reads and checks a reconcile file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|err| {
            Error::config(
                path.display().to_string(),
                format!("cannot read the reconcile file: {err}"),
            )
        })?;
        Self::parse(&text, path)
    }

    /// Parses reconcile text; `path` names it in messages and anchors relative check files.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let mut config: ReconcileConfig =
            toml::from_str(text).map_err(|err| crate::config::located_error(path, text, &err))?;
        config.origin = Origin {
            path: path.to_owned(),
            text: text.to_owned(),
        };
        config.check()?;
        Ok(config)
    }

    /// The file's path, as given.
    pub fn path(&self) -> &Path {
        &self.origin.path
    }

    /// `message` about `key` (`[inputs.orders] query`), placed at the key's line when found.
    pub fn error_at(&self, key: &str, message: impl Into<String>) -> Error {
        let path = self.origin.path.display();
        let location = match self.line_of(key) {
            Some(line) => format!("{path}:{line}: {key}"),
            None => format!("{path}: {key}"),
        };
        Error::config(location, message)
    }

    /// The line of `[table] key` in the file's text.
    fn line_of(&self, key: &str) -> Option<usize> {
        let (table, name) = key.split_once(' ').unwrap_or((key, ""));
        let mut in_table = false;
        let mut header_line = None;
        for (index, line) in self.origin.text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.starts_with('[') {
                in_table = trimmed.split('#').next().unwrap_or("").trim() == table;
                if in_table && header_line.is_none() {
                    header_line = Some(index + 1);
                }
                continue;
            }
            if in_table
                && !name.is_empty()
                && trimmed
                    .split_once('=')
                    .is_some_and(|(left, _)| left.trim() == name)
            {
                return Some(index + 1);
            }
        }
        header_line
    }

    fn check(&self) -> Result<()> {
        let name = self.reconcile.name.as_str();
        if name.is_empty()
            || name.starts_with('.')
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(self.error_at(
                "[reconcile] name",
                format!(
                    "{:?} cannot name a reconcile: use letters, digits, '_', '-' and '.' \
                     (it names the report file)",
                    self.reconcile.name.as_written()
                ),
            ));
        }
        let inputs = &self.inputs;
        if inputs.feed.is_none() && inputs.transactions.is_none() {
            return Err(self.error_at(
                "[inputs]",
                "there is no Toss side to compare: add [inputs.transactions] (the API's \
                 transactions) or [inputs.feed] (the file feed), or both",
            ));
        }
        for (key, input) in [("orders", &inputs.orders), ("payouts", &inputs.payouts)] {
            let Some(input) = input else { continue };
            let table = format!("[inputs.{key}]");
            match (&input.url, &input.query, &input.path) {
                (Some(_), Some(_), None) | (None, None, Some(_)) => {}
                (_, _, Some(_)) => {
                    return Err(self.error_at(
                        &format!("{table} path"),
                        "give either url and query (a PostgreSQL query) or path (a file), \
                         not both",
                    ));
                }
                (Some(_), None, None) => {
                    return Err(self.error_at(
                        &format!("{table} url"),
                        "url needs a query: the SELECT whose rows are the input",
                    ));
                }
                (None, Some(_), None) => {
                    return Err(self.error_at(
                        &format!("{table} query"),
                        "query needs url: the PostgreSQL connection string, \
                         url = \"${ORDERS_DATABASE_URL}\"",
                    ));
                }
                (None, None, None) => {
                    return Err(self.error_at(
                        &table,
                        "say where the rows are: url and query (PostgreSQL) or path (a file)",
                    ));
                }
            }
        }
        if !(self.rules.amount_tolerance >= 0.0 && self.rules.amount_tolerance.is_finite()) {
            return Err(self.error_at(
                "[rules] amount_tolerance",
                "amount_tolerance must be a number of 0 or more",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ReconcileConfig> {
        ReconcileConfig::parse(text, Path::new("books.toml"))
    }

    #[test]
    fn a_minimal_file_reads_with_defaults() {
        let config = parse(
            r#"
            [reconcile]
            name = "books"
            [inputs.transactions]
            path = "lake/transactions"
            "#,
        )
        .unwrap();
        assert_eq!(config.reconcile.dates, DatesSpec::Yesterday);
        assert_eq!(config.rules.settlement_lag_days, 7);
        assert!(config.inputs.orders.is_none());
    }

    #[test]
    fn a_query_without_url_is_placed_at_its_line() {
        let err = parse(
            "[reconcile]\nname = \"books\"\n[inputs.feed]\npath = \"lake\"\n\
             [inputs.orders]\nquery = \"SELECT 1\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("books.toml:6: [inputs.orders] query"), "{err}");
        assert!(err.contains("query needs url"), "{err}");
    }

    #[test]
    fn unknown_keys_and_missing_toss_side_are_errors() {
        let err = parse("[reconcile]\nname = \"b\"\nnmae = 1\n[inputs]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `nmae`"), "{err}");
        let err = parse("[reconcile]\nname = \"b\"\n[inputs]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no Toss side"), "{err}");
    }
}
