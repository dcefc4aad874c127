//! `type = "postgres"`: the merchant's back-office database. Every source file version is
//! loaded in one transaction: a binary `COPY` into a temporary staging table, one
//! `INSERT … ON CONFLICT (key) DO UPDATE` into the target, the removal of the file's records
//! that its newer version no longer holds, and a row in `engine_loads` saying which version of
//! the file the table now holds. A failure anywhere — a lost connection, a constraint, the
//! engine killed — rolls all of it back, so the table is always some whole version of each
//! file, and the next run completes it.
//!
//! The upsert only touches rows whose values changed, so reloading a day's cumulative file
//! every 20 minutes rewrites the few records that are new or changed, not the whole day.

mod copy;
mod types;

use super::{BuildSink, CommittedVersion, LoadUnit, Sink, SinkContext, SinkWriter};
use crate::config::{EnvString, Secret};
use crate::error::{Error, Result};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use bytes::{Bytes, BytesMut};
use futures::SinkExt;
use serde::Deserialize;
use std::fmt::Write as _;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_postgres::{Client, CopyInSink};
use types::{PgType, column_sql, quote_ident};

/// `[[sinks]]` with `type = "postgres"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSinkConfig {
    /// A libpq-style connection string, `postgresql://user:password@host:5432/db` or
    /// `host=… dbname=…`; write `${DATABASE_URL}`, since it carries the password.
    pub url: Secret,
    /// The table to load, optionally schema-qualified (`finance.toss_transactions`).
    pub table: EnvString,
    /// Columns to upsert on (default: the parser's record key, when the schema has it).
    #[serde(default)]
    pub key: Option<Vec<String>>,
    /// Create the table when it is missing (default true).
    #[serde(default = "yes")]
    pub create_table: bool,
    /// Add columns the table lacks instead of failing (default false).
    #[serde(default)]
    pub add_columns: bool,
    /// `disable`, `prefer` (the default), `require` or `verify-full`. Whenever TLS is used the
    /// server's certificate is verified; `require` and `verify-full` both refuse plain text.
    #[serde(default)]
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

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

fn yes() -> bool {
    true
}
fn default_connect_timeout_secs() -> u64 {
    10
}

/// The bookkeeping table, beside the target table: which version of each source file it holds.
const LOADS_TABLE: &str = "engine_loads";
const STAGING_TABLE: &str = "engine_staging";

impl BuildSink for PostgresSinkConfig {
    fn build(&self, name: String, context: &SinkContext) -> Result<Box<dyn Sink>> {
        let at = |key: &str| format!("[[sinks]] {name} {key}");
        // libpq's verify-ca / verify-full are what this sink does whenever it uses TLS.
        let url = self
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
        if let Some(mode) = self.sslmode {
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
        config.connect_timeout(Duration::from_secs(self.connect_timeout_secs.max(1)));
        if self.tls_insecure && self.ca_file.is_some() {
            return Err(Error::config(
                at("tls_insecure"),
                "tls_insecure skips verification, so ca_file would be ignored; keep one of them",
            ));
        }
        let tls = crate::remote::tls::client_config(
            &format!("[[sinks]] {name}"),
            self.ca_file.as_ref().map(|path| path.to_path()),
            self.tls_insecure,
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
            record_key: context.record_key.to_vec(),
            config,
            endpoint,
            tls: tokio_postgres_rustls::MakeRustlsConnect::new((*tls).clone()),
            table,
            key: self.key.clone(),
            create_table: self.create_table,
            add_columns: self.add_columns,
            client: tokio::sync::Mutex::new(None),
            plan: Mutex::new(None),
        }))
    }
}

/// `schema.table` as written, and quoted for SQL.
#[derive(Debug, Clone)]
struct TableName {
    schema: Option<String>,
    table: String,
}

impl TableName {
    fn parse(text: &str) -> std::result::Result<TableName, String> {
        let parts: Vec<&str> = text.split('.').collect();
        let valid = |part: &&str| !part.trim().is_empty();
        match parts.as_slice() {
            [table] if valid(table) => Ok(TableName {
                schema: None,
                table: table.trim().to_owned(),
            }),
            [schema, table] if valid(schema) && valid(table) => Ok(TableName {
                schema: Some(schema.trim().to_owned()),
                table: table.trim().to_owned(),
            }),
            _ => Err(format!(
                "{text:?} is not a table name; write TABLE or SCHEMA.TABLE"
            )),
        }
    }

    fn sql(&self) -> String {
        self.sibling(&self.table)
    }

    /// Another table in the same schema.
    fn sibling(&self, table: &str) -> String {
        match &self.schema {
            Some(schema) => format!("{}.{}", quote_ident(schema), quote_ident(table)),
            None => quote_ident(table),
        }
    }
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.table),
            None => f.write_str(&self.table),
        }
    }
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

/// Everything about loading one schema into the table, worked out once.
struct TablePlan {
    schema: SchemaRef,
    /// Batch column index and how it travels, in staging column order.
    columns: Vec<(usize, PgType)>,
    create_staging: String,
    copy: String,
    delete_vanished: Option<String>,
    upsert: String,
    record_load: String,
    key: Vec<String>,
}

impl PostgresSink {
    fn failed(&self, message: impl Into<String>, cause: Option<tokio_postgres::Error>) -> Error {
        let mut message = message.into();
        if let Some(cause) = cause {
            message = format!("{message}: {}", describe(&cause));
        }
        Error::sink(&self.name, message)
    }

    async fn connection(&self) -> Result<Arc<Client>> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref().filter(|client| !client.is_closed()) {
            return Ok(Arc::clone(client));
        }
        *self.plan.lock().expect("plan lock") = None;
        let (client, connection) = self.config.connect(self.tls.clone()).await.map_err(|err| {
            self.failed(
                format!(
                    "cannot connect to {}; check the url (host, port, user, password, \
                             database) and that the server accepts connections",
                    self.endpoint
                ),
                Some(err),
            )
        })?;
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

    async fn make_plan(&self, client: &Client, schema: &SchemaRef) -> Result<TablePlan> {
        let mut columns = Vec::with_capacity(schema.fields().len());
        let mut unsupported = Vec::new();
        for (index, field) in schema.fields().iter().enumerate() {
            match PgType::for_arrow(field.data_type()) {
                Some(pg_type) => columns.push((index, pg_type)),
                None => unsupported.push(format!("{} ({})", field.name(), field.data_type())),
            }
        }
        if !unsupported.is_empty() {
            return Err(self.failed(
                format!(
                    "no PostgreSQL type for column(s) {}; convert them in a transform",
                    unsupported.join(", ")
                ),
                None,
            ));
        }
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let key = self.resolve_key(&names)?;

        let existing = self.existing_columns(client).await?;
        let existing = match existing {
            Some(existing) => existing,
            None if self.create_table => {
                self.create(client, schema, &columns, &key).await?;
                self.existing_columns(client).await?.unwrap_or_default()
            }
            None => {
                return Err(self.failed(
                    format!(
                        "table {} does not exist; create it, or set create_table = true",
                        self.table
                    ),
                    None,
                ));
            }
        };
        let existing = self
            .check_columns(client, schema, &columns, existing)
            .await?;
        self.ensure_loads_table(client).await?;

        let target = self.table.sql();
        let quoted: Vec<String> = names.iter().map(|name| quote_ident(name)).collect();
        let staging_columns = columns
            .iter()
            .map(|&(index, pg_type)| format!("{} {}", quoted[index], pg_type.staging_sql()))
            .collect::<Vec<_>>()
            .join(", ");
        // Staged values cast to the target's own column types where they differ.
        let staged = |index: usize, alias: &str| -> String {
            let (typname, formatted) = &existing[names[index]];
            let pg_type = columns[index].1;
            if pg_type.needs_cast_to(typname) {
                format!("{alias}.{}::{formatted}", quoted[index])
            } else {
                format!("{alias}.{}", quoted[index])
            }
        };
        let column_list = quoted.join(", ");
        let select_list = (0..names.len())
            .map(|index| staged(index, "s"))
            .collect::<Vec<_>>()
            .join(", ");
        let key_quoted: Vec<String> = key.iter().map(|name| quote_ident(name)).collect();
        let others: Vec<&String> = quoted
            .iter()
            .filter(|name| !key_quoted.contains(name))
            .collect();
        let mut upsert = format!(
            "INSERT INTO {target} AS t ({column_list}) SELECT {select_list} FROM {STAGING_TABLE} s \
             ON CONFLICT ({}) ",
            key_quoted.join(", ")
        );
        if others.is_empty() {
            upsert.push_str("DO NOTHING");
        } else {
            let set = others
                .iter()
                .map(|name| format!("{name} = EXCLUDED.{name}"))
                .collect::<Vec<_>>()
                .join(", ");
            let old = others
                .iter()
                .map(|name| format!("t.{name}"))
                .collect::<Vec<_>>()
                .join(", ");
            let new = others
                .iter()
                .map(|name| format!("EXCLUDED.{name}"))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = write!(
                upsert,
                "DO UPDATE SET {set} WHERE ROW({old}) IS DISTINCT FROM ROW({new})"
            );
        }
        // A newer version of a file replaces the older one: its records that are gone go.
        let delete_vanished = names.contains(&"source_file").then(|| {
            let source_file = names.iter().position(|n| *n == "source_file").unwrap_or(0);
            let matches = key
                .iter()
                .map(|name| {
                    let index = names.iter().position(|n| n == name).unwrap_or(0);
                    format!("{} = t.{}", staged(index, "s"), quoted[index])
                })
                .collect::<Vec<_>>()
                .join(" AND ");
            format!(
                "DELETE FROM {target} t WHERE t.{sf} IN (SELECT DISTINCT {sf_staged} FROM \
                 {STAGING_TABLE} s) AND NOT EXISTS (SELECT 1 FROM {STAGING_TABLE} s WHERE \
                 {matches})",
                sf = quoted[source_file],
                sf_staged = staged(source_file, "s"),
            )
        });
        Ok(TablePlan {
            schema: schema.clone(),
            columns,
            create_staging: format!(
                "CREATE TEMP TABLE {STAGING_TABLE} ({staging_columns}) ON COMMIT DROP"
            ),
            copy: format!("COPY {STAGING_TABLE} ({column_list}) FROM STDIN (FORMAT binary)"),
            delete_vanished,
            upsert,
            record_load: format!(
                "INSERT INTO {} (pipeline, target_table, source_file, content_hash, rows, \
                 loaded_at) VALUES ($1, $2, $3, $4, $5, now()) ON CONFLICT (pipeline, \
                 target_table, source_file) DO UPDATE SET content_hash = EXCLUDED.content_hash, \
                 rows = EXCLUDED.rows, loaded_at = EXCLUDED.loaded_at",
                self.table.sibling(LOADS_TABLE)
            ),
            key,
        })
    }

    fn resolve_key(&self, names: &[&str]) -> Result<Vec<String>> {
        match &self.key {
            Some(key) => {
                let missing: Vec<&String> = key
                    .iter()
                    .filter(|column| !names.contains(&column.as_str()))
                    .collect();
                if missing.is_empty() {
                    Ok(key.clone())
                } else {
                    Err(self.failed(
                        format!(
                            "key column(s) {} are not in the records (they have: {}); fix `key`",
                            join_names(&missing),
                            names.join(", ")
                        ),
                        None,
                    ))
                }
            }
            None if !self.record_key.is_empty()
                && self
                    .record_key
                    .iter()
                    .all(|column| names.contains(&column.as_str())) =>
            {
                Ok(self.record_key.clone())
            }
            None => Err(self.failed(
                format!(
                    "the records lack the record key ({}) after the transforms; set `key` to \
                     the columns that identify a record",
                    self.record_key.join(", ")
                ),
                None,
            )),
        }
    }

    /// Column name → (`pg_type.typname`, the type as SQL) of an existing table; None if missing.
    async fn existing_columns(
        &self,
        client: &Client,
    ) -> Result<Option<std::collections::HashMap<String, (String, String)>>> {
        let table = &self.table;
        let found = client
            .query_one("SELECT to_regclass($1)::oid", &[&table.sql()])
            .await
            .map_err(|err| self.failed(format!("cannot look up table {table}"), Some(err)))?;
        let oid: Option<u32> = found.get(0);
        let Some(oid) = oid else {
            return Ok(None);
        };
        let rows = client
            .query(
                "SELECT a.attname::text, t.typname::text, format_type(a.atttypid, a.atttypmod) \
                 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
                 WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped",
                &[&oid],
            )
            .await
            .map_err(|err| self.failed(format!("cannot read the columns of {table}"), Some(err)))?;
        Ok(Some(
            rows.iter()
                .map(|row| (row.get(0), (row.get(1), row.get(2))))
                .collect(),
        ))
    }

    async fn create(
        &self,
        client: &Client,
        schema: &SchemaRef,
        columns: &[(usize, PgType)],
        key: &[String],
    ) -> Result<()> {
        let definitions = columns
            .iter()
            .map(|&(index, pg_type)| {
                let field = schema.field(index);
                format!(
                    "{} {}",
                    quote_ident(field.name()),
                    column_sql(field.data_type(), pg_type)
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let primary_key = key
            .iter()
            .map(|name| quote_ident(name))
            .collect::<Vec<_>>()
            .join(", ");
        let mut sql = String::new();
        if let Some(schema_name) = &self.table.schema {
            let _ = write!(
                sql,
                "CREATE SCHEMA IF NOT EXISTS {};",
                quote_ident(schema_name)
            );
        }
        let _ = write!(
            sql,
            "CREATE TABLE IF NOT EXISTS {} ({definitions}, PRIMARY KEY ({primary_key}))",
            self.table.sql()
        );
        client
            .batch_execute(&sql)
            .await
            .map_err(|err| self.failed(format!("cannot create table {}", self.table), Some(err)))?;
        tracing::info!(sink = %self.name, table = %self.table, key = %key.join(", "), "created the table");
        Ok(())
    }

    /// Every column of the records must exist in the table with a type that holds it.
    async fn check_columns(
        &self,
        client: &Client,
        schema: &SchemaRef,
        columns: &[(usize, PgType)],
        mut existing: std::collections::HashMap<String, (String, String)>,
    ) -> Result<std::collections::HashMap<String, (String, String)>> {
        let mut missing = Vec::new();
        let mut mismatched = Vec::new();
        for &(index, pg_type) in columns {
            let field = schema.field(index);
            match existing.get(field.name()) {
                None => missing.push((field, pg_type)),
                Some((typname, formatted)) if !pg_type.fits_in(typname) => {
                    mismatched.push(format!(
                        "{} is {formatted} in the table but {} ({}) in the records",
                        field.name(),
                        column_sql(field.data_type(), pg_type),
                        field.data_type()
                    ))
                }
                Some(_) => {}
            }
        }
        if !mismatched.is_empty() {
            return Err(self.failed(
                format!(
                    "table {}: {}; change the column type (ALTER TABLE … ALTER COLUMN … TYPE) \
                     or convert the values in a transform",
                    self.table,
                    mismatched.join("; ")
                ),
                None,
            ));
        }
        if missing.is_empty() {
            return Ok(existing);
        }
        let additions: Vec<String> = missing
            .iter()
            .map(|(field, pg_type)| {
                format!(
                    "ADD COLUMN IF NOT EXISTS {} {}",
                    quote_ident(field.name()),
                    column_sql(field.data_type(), *pg_type)
                )
            })
            .collect();
        if !self.add_columns {
            return Err(self.failed(
                format!(
                    "table {} has no column {}; add it (ALTER TABLE {} {}) or set \
                     add_columns = true",
                    self.table,
                    join_names(&missing.iter().map(|(f, _)| f.name()).collect::<Vec<_>>()),
                    self.table.sql(),
                    additions.join(", ")
                ),
                None,
            ));
        }
        client
            .batch_execute(&format!(
                "ALTER TABLE {} {}",
                self.table.sql(),
                additions.join(", ")
            ))
            .await
            .map_err(|err| {
                self.failed(format!("cannot add columns to {}", self.table), Some(err))
            })?;
        tracing::info!(sink = %self.name, table = %self.table, "added column(s) {}", additions.join(", "));
        for (field, pg_type) in missing {
            let sql = column_sql(field.data_type(), pg_type);
            existing.insert(
                field.name().clone(),
                (pg_type.created_typname().to_owned(), sql),
            );
        }
        Ok(existing)
    }

    async fn ensure_loads_table(&self, client: &Client) -> Result<()> {
        let loads = self.table.sibling(LOADS_TABLE);
        let present = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&loads])
            .await
            .map_err(|err| self.failed("cannot look up engine_loads", Some(err)))?;
        if present.get::<_, bool>(0) {
            return Ok(());
        }
        client
            .batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {loads} (pipeline text NOT NULL, target_table text \
                 NOT NULL, source_file text NOT NULL, content_hash text NOT NULL, rows bigint NOT \
                 NULL, loaded_at timestamptz NOT NULL, PRIMARY KEY (pipeline, target_table, \
                 source_file))"
            ))
            .await
            .map_err(|err| self.failed(format!("cannot create {loads}"), Some(err)))
    }
}

fn join_names<S: AsRef<str>>(names: &[S]) -> String {
    names
        .iter()
        .map(|name| name.as_ref())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A tokio-postgres error as a person needs it: the server's message with its detail and hint,
/// or the client-side cause. Connection strings are never part of these.
fn describe(err: &tokio_postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        let mut text = format!("{} ({})", db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            let _ = write!(text, "; {detail}");
        }
        if let Some(hint) = db.hint() {
            let _ = write!(text, "; hint: {hint}");
        }
        if let Some(column) = db.column() {
            let _ = write!(text, "; column {column}");
        }
        return text;
    }
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            let _ = write!(text, ": {cause_text}");
        }
        source = cause.source();
    }
    text
}

fn describe_endpoint(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("?");
    let database = config.get_dbname().unwrap_or(user);
    format!("{host}:{port}/{database} as {user}")
}

#[async_trait::async_trait]
impl Sink for PostgresSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn begin(&self, unit: &LoadUnit, schema: SchemaRef) -> Result<Box<dyn SinkWriter>> {
        let client = self.connection().await?;
        let plan = self.plan(&client, &schema).await?;
        let started = async {
            client.batch_execute("BEGIN").await?;
            client.batch_execute(&plan.create_staging).await?;
            client.copy_in::<_, Bytes>(plan.copy.as_str()).await
        }
        .await;
        let copy = match started {
            Ok(copy) => copy,
            Err(err) => {
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(self.failed(
                    format!(
                        "cannot start loading {} into {}",
                        unit.name, self.table
                    ),
                    Some(err),
                ));
            }
        };
        let mut buffer = BytesMut::with_capacity(1 << 20);
        copy::write_header(&mut buffer);
        Ok(Box::new(PostgresWriter {
            sink: self.name.clone(),
            table: self.table.to_string(),
            pipeline: self.pipeline.clone(),
            source_file: unit.name.clone(),
            client,
            plan,
            copy: Box::pin(copy),
            buffer,
        }))
    }
}

struct PostgresWriter {
    sink: String,
    table: String,
    pipeline: String,
    source_file: String,
    client: Arc<Client>,
    plan: Arc<TablePlan>,
    copy: Pin<Box<CopyInSink<Bytes>>>,
    buffer: BytesMut,
}

impl PostgresWriter {
    fn failed(&self, doing: &str, err: &tokio_postgres::Error) -> Error {
        let mut message = format!(
            "{doing} {} into {}: {}",
            self.source_file,
            self.table,
            describe(err)
        );
        if let Some(db) = err.as_db_error() {
            if db.code() == &tokio_postgres::error::SqlState::INVALID_COLUMN_REFERENCE {
                let _ = write!(
                    message,
                    " — the table needs a primary key or unique index on ({}), or set `key` to \
                     the columns of an existing one",
                    self.plan.key.join(", ")
                );
            } else if db.code() == &tokio_postgres::error::SqlState::CARDINALITY_VIOLATION {
                let _ = write!(
                    message,
                    " — several records of the file share a key ({}); choose a `key` that \
                     identifies one record",
                    self.plan.key.join(", ")
                );
            }
        } else if self.client.is_closed() {
            message.push_str(
                " — the connection to the server was lost; nothing of this file was committed, \
                 and the next run loads it again",
            );
        }
        message.push_str("; the table is unchanged");
        Error::sink(&self.sink, message)
    }

    async fn rollback(&self) {
        if !self.client.is_closed() {
            let _ = self.client.batch_execute("ROLLBACK").await;
        }
    }

    async fn send_buffer(&mut self) -> std::result::Result<(), tokio_postgres::Error> {
        let chunk = self.buffer.split().freeze();
        self.copy.as_mut().send(chunk).await
    }
}

#[async_trait::async_trait]
impl SinkWriter for PostgresWriter {
    async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.schema().fields() != self.plan.schema.fields() {
            return Err(Error::sink(
                &self.sink,
                format!(
                    "a batch's schema changed mid-file in {}: expected {:?}, got {:?}",
                    self.source_file,
                    self.plan.schema,
                    batch.schema()
                ),
            ));
        }
        let plan = Arc::clone(&self.plan);
        let buffer = &mut self.buffer;
        tokio::task::block_in_place(|| copy::write_batch(batch, &plan.columns, buffer))
            .map_err(|message| Error::sink(&self.sink, message))?;
        if let Err(err) = self.send_buffer().await {
            return Err(self.failed("cannot copy", &err));
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>, version: &CommittedVersion) -> Result<u64> {
        copy::write_trailer(&mut self.buffer);
        let result: std::result::Result<(u64, u64, u64), (&str, tokio_postgres::Error)> = async {
            self.send_buffer()
                .await
                .map_err(|err| ("cannot copy", err))?;
            let staged = self
                .copy
                .as_mut()
                .finish()
                .await
                .map_err(|err| ("cannot copy", err))?;
            let client = &self.client;
            client
                .batch_execute(&format!("ANALYZE {STAGING_TABLE}"))
                .await
                .map_err(|err| ("cannot load", err))?;
            let deleted = match &self.plan.delete_vanished {
                Some(delete) => client
                    .execute(delete.as_str(), &[])
                    .await
                    .map_err(|err| ("cannot load", err))?,
                None => 0,
            };
            let changed = client
                .execute(self.plan.upsert.as_str(), &[])
                .await
                .map_err(|err| ("cannot load", err))?;
            let rows = i64::try_from(version.rows).unwrap_or(i64::MAX);
            client
                .execute(
                    self.plan.record_load.as_str(),
                    &[
                        &self.pipeline,
                        &self.table,
                        &self.source_file,
                        &version.content_hash,
                        &rows,
                    ],
                )
                .await
                .map_err(|err| ("cannot record the load of", err))?;
            client
                .batch_execute("COMMIT")
                .await
                .map_err(|err| ("cannot commit", err))?;
            Ok((staged, changed, deleted))
        }
        .await;
        match result {
            Ok((staged, changed, deleted)) => {
                tracing::info!(
                    sink = %self.sink,
                    table = %self.table,
                    file = %self.source_file,
                    staged,
                    changed,
                    deleted,
                    "upserted"
                );
                Ok(changed)
            }
            Err((doing, err)) => {
                self.rollback().await;
                Err(self.failed(doing, &err))
            }
        }
    }

    async fn abort(self: Box<Self>) {
        let PostgresWriter { client, copy, .. } = *self;
        // Dropping the COPY without finishing it makes the server abort it.
        drop(copy);
        if !client.is_closed() {
            let _ = client.batch_execute("ROLLBACK").await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_may_carry_a_schema() {
        let plain = TableName::parse("toss_transactions").unwrap();
        assert_eq!(plain.sql(), "\"toss_transactions\"");
        let qualified = TableName::parse("finance.toss").unwrap();
        assert_eq!(qualified.sql(), "\"finance\".\"toss\"");
        assert_eq!(
            qualified.sibling("engine_loads"),
            "\"finance\".\"engine_loads\""
        );
        assert!(TableName::parse("a.b.c").is_err());
        assert!(TableName::parse("").is_err());
    }

    #[test]
    fn the_endpoint_never_shows_the_password() {
        let config: tokio_postgres::Config = "postgresql://merchant:hunter2@db.example:6543/back"
            .parse()
            .unwrap();
        let endpoint = describe_endpoint(&config);
        assert_eq!(endpoint, "db.example:6543/back as merchant");
        assert!(!endpoint.contains("hunter2"));
    }
}
