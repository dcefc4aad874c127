//! `[parser] type = "toss-api-transactions"` and `"toss-api-settlements"`: the rows the
//! `toss-api` source pulls from Toss Payments' v1 REST API, one day per load unit, as records of
//! the SDK's schemas ([`toss_etl_sdk::toss_api`]). The source picks the format of its dataset,
//! so a pipeline file names neither.
//!
//! The source hands a day over as lines of `{page}\t{row JSON}` (see `rows.rs`), whatever shape
//! Toss's answers had, so this side reads one row at a time and knows where it came from.

mod rows;
mod settlements;
mod transactions;
mod values;

use arrow::datatypes::SchemaRef;
use serde::Deserialize;

use super::{BuildDecoder, Decoder};
use crate::error::Result;
use crate::unit::LoadUnit;
use rows::{Day, RowFormat, RowsDecoder};
use settlements::Settlements;
use transactions::Transactions;

pub use toss_etl_sdk::toss_api::{SETTLEMENT_KEY, TRANSACTION_KEY};

/// The label of a unit that says which date a settlements pull filtered on.
pub const DATE_TYPE_LABEL: &str = "date_type";

/// The `[parser]` keys both datasets take.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiFormatConfig {
    /// More rejected rows than this in one day fails that day's load.
    #[serde(default = "default_max_rejects")]
    pub max_rejects: u64,
    /// Rows per Arrow record batch.
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
}

fn default_max_rejects() -> u64 {
    100
}

fn default_batch_rows() -> usize {
    8192
}

impl Default for ApiFormatConfig {
    fn default() -> Self {
        ApiFormatConfig {
            max_rejects: default_max_rejects(),
            batch_rows: default_batch_rows(),
        }
    }
}

impl ApiFormatConfig {
    fn decoder<F: RowFormat>(&self, unit: &LoadUnit) -> Box<dyn Decoder> {
        let day = Day {
            date: values::days_since_epoch(unit.business_date),
            unit: unit.name.clone(),
            by_sold_date: unit.label(DATE_TYPE_LABEL) != Some("paidOutDate"),
        };
        Box::new(RowsDecoder::<F>::new(day, self.batch_rows))
    }

    fn check_keys(&self, at: &dyn Fn(&str) -> String) -> Result<()> {
        if self.batch_rows == 0 {
            return Err(crate::error::Error::config(
                at("[parser] batch_rows"),
                "batch_rows must be at least 1",
            ));
        }
        Ok(())
    }
}

/// `type = "toss-api-transactions"`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct TransactionsFormatConfig(pub ApiFormatConfig);

/// `type = "toss-api-settlements"`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct SettlementsFormatConfig(pub ApiFormatConfig);

impl BuildDecoder for TransactionsFormatConfig {
    fn schema(&self) -> SchemaRef {
        Transactions::schema()
    }

    fn record_key(&self) -> Vec<String> {
        TRANSACTION_KEY.iter().map(|key| key.to_string()).collect()
    }

    fn max_rejects(&self) -> u64 {
        self.0.max_rejects
    }

    fn check(&self, at: &dyn Fn(&str) -> String) -> Result<()> {
        self.0.check_keys(at)
    }

    fn decoder(&self, unit: &LoadUnit) -> Result<Box<dyn Decoder>> {
        Ok(self.0.decoder::<Transactions>(unit))
    }
}

impl BuildDecoder for SettlementsFormatConfig {
    fn schema(&self) -> SchemaRef {
        Settlements::schema()
    }

    fn record_key(&self) -> Vec<String> {
        SETTLEMENT_KEY.iter().map(|key| key.to_string()).collect()
    }

    fn max_rejects(&self) -> u64 {
        self.0.max_rejects
    }

    fn check(&self, at: &dyn Fn(&str) -> String) -> Result<()> {
        self.0.check_keys(at)
    }

    fn decoder(&self, unit: &LoadUnit) -> Result<Box<dyn Decoder>> {
        Ok(self.0.decoder::<Settlements>(unit))
    }
}

#[cfg(test)]
mod tests;
