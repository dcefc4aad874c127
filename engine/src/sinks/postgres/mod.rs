//! `type = "postgres"`: the merchant's back-office database. Every source file version is
//! loaded in one transaction: a binary `COPY` into a temporary staging table, one
//! `INSERT … ON CONFLICT (key) DO UPDATE` into the target, the removal of the file's records
//! that its newer version no longer holds, and a row in `engine_loads` saying which version of
//! the file the table now holds. A failure anywhere — a lost connection, a constraint, the
//! engine killed — rolls all of it back, so the table is always some whole version of each
//! file, and the next run completes it.
//!
//! The upsert only touches rows whose values changed, so reloading a day's cumulative file
//! every 20 minutes rewrites the few records that are new or changed, not the whole day. A file
//! the table holds nothing of yet skips staging and upsert: its `COPY` goes straight into the
//! table, in the same one transaction, at the speed of `psql \copy` (see [`writer`]).
//!
//! This module holds the `[[sinks]]` settings, their validation, and the [`Sink`] that keeps
//! one connection and one [`ddl::TablePlan`] per run. The rest lives in rooms of its own:
//! [`sql`] writes every statement, [`ddl`] fits the table to the records, [`writer`] runs one
//! file's transaction, [`errors`] words the failures, [`copy`] and [`types`] carry the values,
//! [`spill`] keeps a direct `COPY`'s stream for a replay through staging.

mod copy;
mod ddl;
mod errors;
mod spill;
mod sql;
mod types;
mod writer;

use super::{BuildSink, Held, Holding, LoadUnit, Sink, SinkContext, SinkWriter};
use crate::env::{EnvString, Secret};
use crate::error::{Error, Result};
use arrow::datatypes::SchemaRef;
use ddl::TablePlan;
use errors::{describe, describe_endpoint};
use serde::Deserialize;
use sql::TableName;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_postgres::Client;
use writer::PostgresWriter;

/// `[[sinks]]` with `type = "postgres"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSinkConfig {
    /// A libpq-style connection string, `postgresql://user:password@host:5432/db` or
    /// `host=… dbname=…`; write `${DATABASE_URL}`, since it carries the password.
    pub url: Secret,
    /// The table to load, optionally schema-qualified (`finance.toss_transactions`).
    pub table: EnvString,
    /// Columns to upsert on (default: the format's record key — for Toss files record_kind,
    /// trxdate, mid, paytype, transaction, oid — when the records carry all of it).
    #[serde(default, deserialize_with = "crate::env::expanded_list_option")]
    pub key: Option<Vec<String>>,
    /// Create the table when it is missing (default true).
    #[serde(default = "yes")]
    pub create_table: bool,
    /// Add columns the table lacks instead of failing (default false).
    #[serde(default)]
    pub add_columns: bool,
    /// `disable`, `prefer` (the default), `require` or `verify-full`. Whenever TLS is used the
    /// server's certificate is verified; `require` and `verify-full` both refuse plain text.
    #[serde(default, deserialize_with = "crate::env::expanded_option")]
    pub sslmode: Option<SslMode>,
    /// A PEM file of certificates to trust besides the system's (a private CA).
    #[serde(default)]
    pub ca_file: Option<EnvString>,
    /// Accept any server certificate. Only for a test server.
    #[serde(default)]
    pub tls_insecure: bool,
    /// Seconds to wait for a connection (default 10).
    #[serde(default = "default_connect_timeout_secs")]
    pub connect_timeout_secs: u64,
}

#[derive(Debug, Clone, Copy)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl std::str::FromStr for SslMode {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        match text {
            "disable" => Ok(SslMode::Disable),
            "prefer" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-full" => Ok(SslMode::VerifyFull),
            _ => Err(format!(
                "unknown sslmode {text:?}; allowed: \"disable\", \"prefer\", \"require\", \
                 \"verify-ca\", \"verify-full\""
            )),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_connect_timeout_secs() -> u64 {
    10
}

impl BuildSink for PostgresSinkConfig {
    fn build(&self, name: String, context: &SinkContext) -> Result<Box<dyn Sink>> {
        let at = |key: &str| format!("[[sinks]] {name} {key}");
        let (config, tls) = client_config(
            &at,
            &ClientSettings {
                url: &self.url,
                sslmode: self.sslmode,
                ca_file: self.ca_file.as_ref(),
                tls_insecure: self.tls_insecure,
                connect_timeout_secs: self.connect_timeout_secs,
            },
        )?;
        let table = TableName::parse(self.table.as_str())
            .map_err(|message| Error::config(at("table"), message))?;
        if self.key.as_ref().is_some_and(|key| key.is_empty()) {
            return Err(Error::config(
                at("key"),
                "key is empty; name the columns that identify a record, or leave key out",
            ));
        }
        let endpoint = describe_endpoint(&config);
        Ok(Box::new(PostgresSink {
            name,
            pipeline: context.pipeline.to_owned(),
            config,
            endpoint,
            tls,
            table,
            key: self.key.clone(),
            record_key: context.record_key.to_vec(),
            create_table: self.create_table,
            add_columns: self.add_columns,
            client: tokio::sync::Mutex::new(None),
            plan: Mutex::new(None),
        }))
    }
}

/// What a connection to the merchant's PostgreSQL is made from, as a pipeline or reconcile file
/// gives it.
pub struct ClientSettings<'a> {
    pub url: &'a Secret,
    pub sslmode: Option<SslMode>,
    pub ca_file: Option<&'a EnvString>,
    pub tls_insecure: bool,
    pub connect_timeout_secs: u64,
}

/// The connection settings and the TLS connector of `settings`; `at(key)` names a key in
/// messages.
fn client_config(
    at: &dyn Fn(&str) -> String,
    settings: &ClientSettings,
) -> Result<(
    tokio_postgres::Config,
    tokio_postgres_rustls::MakeRustlsConnect,
)> {
    // libpq's verify-ca / verify-full are what the engine does whenever it uses TLS.
    let url = settings
        .url
        .expose()
        .replace("sslmode=verify-full", "sslmode=require")
        .replace("sslmode=verify-ca", "sslmode=require");
    let mut config: tokio_postgres::Config = url.parse().map_err(|err| {
        Error::config(
            at("url"),
            format!(
                "not a PostgreSQL connection string ({err}); write \
                 postgresql://USER:PASSWORD@HOST:5432/DATABASE or \"host=… dbname=…\""
            ),
        )
    })?;
    if config.get_user().is_none() {
        return Err(Error::config(
            at("url"),
            "the connection string names no user; add one (postgresql://USER@HOST/DB)",
        ));
    }
    if let Some(mode) = settings.sslmode {
        config.ssl_mode(match mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        });
    }
    if config.get_application_name().is_none() {
        config.application_name("toss-etl");
    }
    config.connect_timeout(Duration::from_secs(settings.connect_timeout_secs.max(1)));
    if settings.tls_insecure && settings.ca_file.is_some() {
        return Err(Error::config(
            at("tls_insecure"),
            "tls_insecure skips verification, so ca_file would be ignored; keep one of them",
        ));
    }
    let context = at("");
    let tls = crate::remote::tls::client_config(
        context.trim_end(),
        settings.ca_file.map(|path| path.to_path()),
        settings.tls_insecure,
    )?;
    Ok((
        config,
        tokio_postgres_rustls::MakeRustlsConnect::new((*tls).clone()),
    ))
}

/// A connection for reading (the reconcile's orders query), made as the sink makes its own;
/// `at(key)` names a key in messages. Returns the client and the endpoint as messages show it
/// (never the password).
pub async fn connect_reader(
    at: &dyn Fn(&str) -> String,
    settings: &ClientSettings<'_>,
) -> Result<(Client, String)> {
    let (config, tls) = client_config(at, settings)?;
    let endpoint = describe_endpoint(&config);
    let (client, connection) = config.connect(tls).await.map_err(|err| {
        Error::config(
            at("url"),
            errors::with_cause(errors::cannot_connect(&endpoint), Some(&err)),
        )
    })?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!("connection ended: {}", describe(&err));
        }
    });
    Ok((client, endpoint))
}

/// The words PostgreSQL used for `err`, never the connection string.
pub fn describe_error(err: &tokio_postgres::Error) -> String {
    describe(err)
}

struct PostgresSink {
    name: String,
    pipeline: String,
    config: tokio_postgres::Config,
    /// `host:port/database as user`, for messages (never the password).
    endpoint: String,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    table: TableName,
    key: Option<Vec<String>>,
    /// The format's record key, the default of `key`.
    record_key: Vec<String>,
    create_table: bool,
    add_columns: bool,
    /// One connection for the run, opened on the first file, replaced when it breaks.
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
    /// The statements for the schema last seen, checked against the table once.
    plan: Mutex<Option<Arc<TablePlan>>>,
}

impl PostgresSink {
    fn failed(&self, message: impl Into<String>, cause: Option<tokio_postgres::Error>) -> Error {
        Error::sink(&self.name, errors::with_cause(message, cause.as_ref()))
    }

    async fn connection(&self) -> Result<Arc<Client>> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref().filter(|client| !client.is_closed()) {
            return Ok(Arc::clone(client));
        }
        *self.plan.lock().expect("plan lock") = None;
        let (client, connection) = self
            .config
            .connect(self.tls.clone())
            .await
            .map_err(|err| self.failed(errors::cannot_connect(&self.endpoint), Some(err)))?;
        let sink = self.name.clone();
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(sink, "connection ended: {}", describe(&err));
            }
        });
        tracing::debug!(sink = %self.name, endpoint = %self.endpoint, "connected");
        let client = Arc::new(client);
        *slot = Some(Arc::clone(&client));
        Ok(client)
    }

    /// The plan for `schema`, checking (and if allowed creating or widening) the table first.
    async fn plan(&self, client: &Client, schema: &SchemaRef) -> Result<Arc<TablePlan>> {
        if let Some(plan) = self.plan.lock().expect("plan lock").as_ref()
            && plan.schema == *schema
        {
            return Ok(Arc::clone(plan));
        }
        let plan = Arc::new(self.make_plan(client, schema).await?);
        *self.plan.lock().expect("plan lock") = Some(Arc::clone(&plan));
        Ok(plan)
    }
}

#[async_trait::async_trait]
impl Sink for PostgresSink {
    fn name(&self) -> &str {
        &self.name
    }

    /// Counts the unit's rows in the table; the unit column is the writer's location. The
    /// table may hold more rows of a unit than were committed (rows of other pipelines), never
    /// fewer.
    async fn verify(&self, held: &Held) -> Result<Holding> {
        let Some(unit_column) = &held.location else {
            return Ok(Holding::Unchecked);
        };
        let client = self.connection().await?;
        let count = sql::count_unit_rows(&self.table, unit_column);
        let found: i64 = client
            .query_one(count.as_str(), &[&held.unit])
            .await
            .map(|row| row.get(0))
            .map_err(|err| {
                self.failed(format!("cannot count the rows of {}", held.unit), Some(err))
            })?;
        let found = found.max(0) as u64;
        Ok(if found >= held.rows {
            Holding::Holds
        } else {
            Holding::Lost(format!(
                "{} holds {found} of the {} rows committed from {}",
                self.table, held.rows, held.unit
            ))
        })
    }

    async fn begin(&self, unit: &LoadUnit, schema: SchemaRef) -> Result<Box<dyn SinkWriter>> {
        let client = self.connection().await?;
        let plan = self.plan(&client, &schema).await?;
        let started = PostgresWriter::begin(
            self.name.clone(),
            self.table.to_string(),
            self.pipeline.clone(),
            unit.name.clone(),
            client,
            plan,
        )
        .await;
        match started {
            Ok(writer) => Ok(Box::new(writer)),
            Err(err) => Err(self.failed(
                format!("cannot start loading {} into {}", unit.name, self.table),
                Some(err),
            )),
        }
    }
}
