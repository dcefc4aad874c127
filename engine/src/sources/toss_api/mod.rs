//! `type = "toss-api"`: Toss Payments' v1 REST API, the way most merchants integrate today:
//! `dataset = "transactions"` (`GET /v1/transactions`) or `"settlements"` (`GET /v1/settlements`,
//! the fees, VAT and payouts a finance team reconciles against, which the file feed lacks).
//!
//! One Korea-time day is one load unit. A day's pull is every page of that day, written as
//! lines of `{page}\t{row JSON}` to a temporary file and hashed, so a pull whose rows did not
//! change is skipped like an unchanged file, and a changed one replaces the day in every sink.
//! Toss's data keeps changing after the day (late cancels, status flips, settlement rows days
//! after the payment), so a day is pulled again on every run until it is `refresh_days` old;
//! after that, a day loaded once is final.
//!
//! The secret key is sent only as Basic authentication (`base64(secret_key + ":")`), and the
//! key and that header are scrubbed from everything Toss answers before it is shown or stored.
//! Redirects are refused, like every source that carries a secret.

mod json_array;
mod pull;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, FixedOffset, NaiveDate};
use serde::Deserialize;

use super::{AfterRead, BuildSource, Fetched, Listing, Source};
use crate::dates::DateSelection;
use crate::env::{EnvString, Secret};
use crate::error::{Error, Result};
use crate::parser::toss_api::DATE_TYPE_LABEL;
use crate::remote::http::{ClientSettings, Redirects};
use crate::remote::retry::RetryPolicy;
use crate::remote::scrub::Scrubber;
use crate::unit::{FileVersion, LoadUnit};

/// Toss Payments' API host (test and live keys share it).
pub const TOSS_API_ENDPOINT: &str = "https://api.tosspayments.com";

/// The most rows Toss returns per page.
pub const MAX_PAGE_SIZE: usize = 5000;

/// At most this many days in one run (ten years), so a typo cannot start a flood.
const MAX_DAYS: i64 = 3660;

/// Toss says a list call can take up to 60 s: that is the least timeout by default.
const RETRY_DEFAULTS: RetryPolicy = RetryPolicy {
    timeout_secs: 90,
    retries: 5,
    retry_base_ms: 1000,
};

/// Which of the API's lists a pipeline loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dataset {
    Transactions,
    Settlements,
}

/// Which date a settlements pull filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum DateType {
    #[default]
    #[serde(rename = "soldDate")]
    SoldDate,
    #[serde(rename = "paidOutDate")]
    PaidOutDate,
}

impl DateType {
    fn as_str(self) -> &'static str {
        match self {
            DateType::SoldDate => "soldDate",
            DateType::PaidOutDate => "paidOutDate",
        }
    }
}

/// `[source]` with `type = "toss-api"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TossApiSourceConfig {
    /// `transactions` or `settlements`.
    pub dataset: Dataset,
    /// The secret key (`test_sk_…` or `live_sk_…`); write `${TOSS_SECRET_KEY}`, never the key.
    pub secret_key: Secret,
    /// The API's address (default Toss's); tests point it at a local server.
    #[serde(default = "default_endpoint")]
    pub endpoint: EnvString,
    /// Rows per page, at most 5000 (default 5000).
    #[serde(default = "default_page_size")]
    pub page_size: usize,
    /// A day is pulled again on every run until it is this many days old (default 7 for
    /// transactions, 15 for settlements; 0: only today is pulled again).
    #[serde(default)]
    pub refresh_days: Option<u32>,
    /// Settlements only: pull days by `soldDate` (default) or `paidOutDate`.
    #[serde(default)]
    pub date_type: Option<DateType>,
    /// Seconds one request may take, body included (default 90; Toss says up to 60).
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Retries after the first attempt for 429, 5xx, timeouts and dropped connections (default 5).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// First retry pause in milliseconds, doubled each retry, ±25 % jitter (default 1000);
    /// a `Retry-After` from Toss is waited instead.
    #[serde(default = "default_retry_base_ms")]
    pub retry_base_ms: u64,
    /// A PEM file of certificate authorities to trust besides the system's.
    #[serde(default)]
    pub ca_file: Option<EnvString>,
    /// Accept any TLS certificate. Only for a test server; never for Toss.
    #[serde(default)]
    pub tls_insecure: bool,
}

fn default_endpoint() -> EnvString {
    EnvString::from_literal(TOSS_API_ENDPOINT)
}
fn default_page_size() -> usize {
    MAX_PAGE_SIZE
}
fn default_timeout_secs() -> u64 {
    RETRY_DEFAULTS.timeout_secs
}
fn default_retries() -> u32 {
    RETRY_DEFAULTS.retries
}
fn default_retry_base_ms() -> u64 {
    RETRY_DEFAULTS.retry_base_ms
}

impl BuildSource for TossApiSourceConfig {
    fn build(&self) -> Result<Arc<dyn Source>> {
        Ok(Arc::new(self.build_source()?))
    }

    fn format(&self) -> Option<&'static str> {
        Some(match self.dataset {
            Dataset::Transactions => "toss-api-transactions",
            Dataset::Settlements => "toss-api-settlements",
        })
    }
}

impl TossApiSourceConfig {
    fn build_source(&self) -> Result<TossApiSource> {
        let at = |key: &str| format!("[source] {key}");
        let secret_key = self.secret_key.expose().trim().to_owned();
        if secret_key.is_empty() {
            return Err(Error::config(
                at("secret_key"),
                "secret_key is empty; set it from the environment: secret_key = \
                 \"${TOSS_SECRET_KEY}\"",
            ));
        }
        if !(1..=MAX_PAGE_SIZE).contains(&self.page_size) {
            return Err(Error::config(
                at("page_size"),
                format!("page_size must be 1 to {MAX_PAGE_SIZE} (Toss's most rows per page)"),
            ));
        }
        if self.dataset == Dataset::Transactions && self.date_type.is_some() {
            return Err(Error::config(
                at("date_type"),
                "date_type is for settlements; transactions are pulled by transactionAt",
            ));
        }
        let refresh_days = self.refresh_days.unwrap_or(match self.dataset {
            Dataset::Transactions => 7,
            Dataset::Settlements => 15,
        });
        if refresh_days > 400 {
            return Err(Error::config(
                at("refresh_days"),
                "refresh_days must be 0 to 400",
            ));
        }
        let policy = RetryPolicy {
            timeout_secs: self.timeout_secs,
            retries: self.retries,
            retry_base_ms: self.retry_base_ms,
        };
        policy.check("[source]")?;
        let endpoint = crate::remote::http::parse_http_url(&self.endpoint, &at("endpoint"))?;
        if self.tls_insecure {
            tracing::warn!("tls_insecure = true: the toss-api source accepts any certificate");
        }
        let client = crate::remote::http::client(ClientSettings {
            section: "[source]",
            timeout: policy.timeout(),
            redirects: Redirects::Refuse,
            ca_file: self.ca_file.as_ref().map(|path| path.to_path()),
            tls_insecure: self.tls_insecure,
        })?;
        let mut scrubber = Scrubber::new();
        scrubber.add(&secret_key);
        scrubber.add_header_value(&pull::basic_auth(&secret_key));
        scrubber.add_url(&endpoint);
        Ok(TossApiSource {
            dataset: self.dataset,
            date_type: self.date_type.unwrap_or_default(),
            mode: key_mode(&secret_key),
            secret_key,
            endpoint,
            page_size: self.page_size,
            refresh_days,
            policy,
            client,
            scrubber,
            key_refused: AtomicBool::new(false),
        })
    }
}

/// What the key's prefix says it is, for the message when Toss refuses it.
fn key_mode(secret_key: &str) -> &'static str {
    if secret_key.starts_with("test_") {
        "a test key (test_…)"
    } else if secret_key.starts_with("live_") {
        "a live key (live_…)"
    } else {
        "a key without Toss's test_/live_ prefix"
    }
}

pub(crate) struct TossApiSource {
    dataset: Dataset,
    date_type: DateType,
    /// What kind of key it is, never the key.
    mode: &'static str,
    secret_key: String,
    endpoint: reqwest::Url,
    page_size: usize,
    refresh_days: u32,
    policy: RetryPolicy,
    client: reqwest::Client,
    scrubber: Scrubber,
    /// Toss refused the key once in this run: every later day would be refused too.
    key_refused: AtomicBool,
}

impl TossApiSource {
    /// The unit of one day: `transactions_2026-12-01`, partitioned by the dataset's date.
    fn unit(&self, day: NaiveDate) -> LoadUnit {
        let (prefix, column) = match (self.dataset, self.date_type) {
            (Dataset::Transactions, _) => ("transactions", "transaction_date"),
            (Dataset::Settlements, DateType::SoldDate) => ("settlements", "sold_date"),
            (Dataset::Settlements, DateType::PaidOutDate) => {
                ("settlements-paid-out", "paid_out_date")
            }
        };
        let date = day.format("%Y-%m-%d").to_string();
        LoadUnit {
            name: format!("{prefix}_{date}"),
            origin: self.public_url(day).to_string(),
            business_date: day,
            labels: [(
                DATE_TYPE_LABEL.to_owned(),
                self.date_type.as_str().to_owned(),
            )]
            .into(),
            partition: vec![(column.to_owned(), date)],
            version: FileVersion::default(),
        }
    }

    fn failed(&self, unit: &LoadUnit, message: String) -> Error {
        Error::Source {
            source_name: self.describe(),
            message: self.scrubber.scrub(&format!("{}: {message}", unit.name)),
            cause: None,
        }
    }
}

#[async_trait::async_trait]
impl Source for TossApiSource {
    async fn list(&self, dates: &DateSelection) -> Result<Listing> {
        let DateSelection::Range { from, to } = *dates else {
            return Err(Error::config(
                "[pipeline] dates",
                "the toss-api source cannot list \"all\" dates (the API has no listing); give a \
                 date or a range, e.g. dates = \"yesterday\" or --from/--to",
            ));
        };
        let days = (to - from).num_days() + 1;
        if days > MAX_DAYS {
            return Err(Error::config(
                "--from/--to",
                format!("{days} days is more than the {MAX_DAYS} one run may pull"),
            ));
        }
        Ok(Listing {
            units: from
                .iter_days()
                .take(days as usize)
                .map(|day| self.unit(day))
                .collect(),
            deferred: Vec::new(),
        })
    }

    async fn fetch(&self, unit: &LoadUnit) -> Result<Fetched> {
        if self.key_refused.load(Ordering::Relaxed) {
            return Err(self.failed(
                unit,
                format!(
                    "not pulled: Toss refused the secret key ({}) earlier in this run",
                    self.mode
                ),
            ));
        }
        match self.pull_day(unit.business_date).await {
            Ok(pulled) => Ok(Fetched {
                reader: Box::new(pulled.file),
                content_hash: Some(pulled.content_hash),
            }),
            Err(pull::PullError::KeyRefused(why)) => {
                self.key_refused.store(true, Ordering::Relaxed);
                Err(self.failed(unit, why))
            }
            Err(pull::PullError::Failed(why)) => Err(self.failed(unit, why)),
        }
    }

    async fn after_read(&self, _unit: &LoadUnit) -> Result<AfterRead> {
        Ok(AfterRead::Unchanged)
    }

    /// A day loaded when it was more than `refresh_days` old (Korea time) is final.
    fn is_final(&self, unit: &LoadUnit, loaded_at: DateTime<FixedOffset>) -> bool {
        let loaded_on = loaded_at.with_timezone(&crate::dates::kst()).date_naive();
        (loaded_on - unit.business_date).num_days() > i64::from(self.refresh_days)
    }

    fn watch_days(&self) -> Option<u32> {
        Some(self.refresh_days)
    }

    fn describe(&self) -> String {
        let dataset = match self.dataset {
            Dataset::Transactions => "transactions",
            Dataset::Settlements => "settlements",
        };
        let mut endpoint = self.endpoint.clone();
        let _ = endpoint.set_password(None);
        let _ = endpoint.set_username("");
        endpoint.set_query(None);
        format!("toss-api {dataset} {endpoint}")
    }
}
