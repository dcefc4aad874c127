//! One file version's load, as one transaction. Any failure — or an abort — rolls all of it
//! back, so the table only ever holds whole versions of each file.
//!
//! Two ways in. A unit the table may already hold goes through a temporary staging table: a
//! binary `COPY` fed batch by batch, then at commit the removal of the unit's vanished records,
//! the upsert, the `engine_loads` row and `COMMIT`. A unit new to the table — no load of it in
//! `engine_loads`, no row of its unit column's value in the table — has nothing to update and
//! nothing to remove, so the same `COPY` goes straight into the table, as `psql \copy` would:
//! no staging table, no `ANALYZE`, no upsert, about half the server's work.
//!
//! The server tells whether that `COPY` worked only at its end. If it failed — a key another
//! unit already holds, or anything else the upsert might settle or word differently — or a
//! batch carried a unit value nobody looked for in the table, the attempt is rolled back and the
//! kept stream ([`Spill`]) replayed through staging in a fresh transaction. So the outcome is
//! always what the upsert path gives; the direct path only skips work that would change nothing.

use super::copy;
use super::ddl::TablePlan;
use super::errors;
use super::spill::Spill;
use super::sql;
use crate::error::{Error, Result};
use crate::sinks::{CommittedVersion, SinkWriter};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use bytes::{Bytes, BytesMut};
use futures::SinkExt;
use std::pin::Pin;
use std::sync::Arc;
use tokio_postgres::{Client, CopyInSink};

type Copy = Pin<Box<CopyInSink<Bytes>>>;

/// Why a load failed: a statement the server (or the connection) refused, or the temporary file.
enum Failure {
    Server(&'static str, tokio_postgres::Error),
    Spill(std::io::Error),
}

/// `doing` for the server errors of a statement.
fn at(doing: &'static str) -> impl Fn(tokio_postgres::Error) -> Failure {
    move |err| Failure::Server(doing, err)
}

/// Where the unit's rows are going.
enum Route {
    /// No row sent yet, and `engine_loads` knows nothing of the unit: the first batch decides.
    Undecided,
    /// Into the staging table, merged at commit.
    Staging(Copy),
    /// Straight into the table.
    Direct(Direct),
}

struct Direct {
    copy: Copy,
    /// Everything sent so far, to replay through staging if the COPY fails.
    spill: Spill,
    /// The unit column's value the table held no row of; None without a unit column.
    unit: Option<String>,
    /// A batch carried another value of the unit column, one the table was not asked about.
    other_units: bool,
}

pub struct PostgresWriter {
    sink: String,
    table: String,
    pipeline: String,
    source_file: String,
    client: Arc<Client>,
    plan: Arc<TablePlan>,
    route: Route,
    buffer: BytesMut,
}

impl PostgresWriter {
    /// Opens the transaction and, unless the unit may be new to the table, creates the staging
    /// table and starts the COPY into it. On failure the transaction is rolled back and the
    /// server's error returned.
    pub async fn begin(
        sink: String,
        table: String,
        pipeline: String,
        source_file: String,
        client: Arc<Client>,
        plan: Arc<TablePlan>,
    ) -> std::result::Result<PostgresWriter, tokio_postgres::Error> {
        let started = async {
            client.batch_execute("BEGIN").await?;
            let recorded = match &plan.direct {
                Some(direct) => client
                    .query_one(
                        direct.unit_recorded.as_str(),
                        &[&pipeline, &table, &source_file],
                    )
                    .await?
                    .get::<_, bool>(0),
                None => true,
            };
            Ok(if recorded {
                Route::Staging(start_staging(&client, &plan).await?)
            } else {
                Route::Undecided
            })
        }
        .await;
        let route = match started {
            Ok(route) => route,
            Err(err) => {
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(err);
            }
        };
        let mut buffer = BytesMut::with_capacity(1 << 20);
        copy::write_header(&mut buffer);
        Ok(PostgresWriter {
            sink,
            table,
            pipeline,
            source_file,
            client,
            plan,
            route,
            buffer,
        })
    }

    fn failed(&self, failure: Failure) -> Error {
        let message = match failure {
            Failure::Server(doing, err) => errors::load_failed(
                doing,
                &self.source_file,
                &self.table,
                &self.plan.key,
                &err,
                self.client.is_closed(),
            ),
            Failure::Spill(err) => format!(
                "cannot keep the rows of {} in a temporary file (in {}): {err}; the table is \
                 unchanged",
                self.source_file,
                std::env::temp_dir().display()
            ),
        };
        Error::sink(&self.sink, message)
    }

    async fn rollback(&self) {
        if !self.client.is_closed() {
            let _ = self.client.batch_execute("ROLLBACK").await;
        }
    }

    /// The route of a unit `engine_loads` knows nothing of, from its first rows: straight into
    /// the table when the table holds no row of the batch's unit, else through staging.
    async fn choose_route(&self, batch: &RecordBatch) -> std::result::Result<Route, Failure> {
        let Some(direct) = &self.plan.direct else {
            return self.staging_route().await;
        };
        let unit = match &direct.unit {
            None => None,
            Some((index, unit_has_rows)) => {
                // A null unit, or one the table holds rows of, goes the upsert's way.
                let Some(unit) = first_text(batch.column(*index).as_ref()) else {
                    return self.staging_route().await;
                };
                let held: bool = self
                    .client
                    .query_one(unit_has_rows.as_str(), &[&unit])
                    .await
                    .map_err(at("cannot start loading"))?
                    .get(0);
                if held {
                    return self.staging_route().await;
                }
                Some(unit)
            }
        };
        let spill = tokio::task::block_in_place(Spill::new).map_err(Failure::Spill)?;
        let copy = self
            .client
            .copy_in::<_, Bytes>(direct.copy.as_str())
            .await
            .map_err(at("cannot copy"))?;
        Ok(Route::Direct(Direct {
            copy: Box::pin(copy),
            spill,
            unit,
            other_units: false,
        }))
    }

    async fn staging_route(&self) -> std::result::Result<Route, Failure> {
        let copy = start_staging(&self.client, &self.plan)
            .await
            .map_err(at("cannot copy"))?;
        Ok(Route::Staging(copy))
    }

    /// Sends what the buffer holds on the route's COPY (keeping it in the spill on the direct
    /// route).
    async fn send_buffer(&mut self) -> std::result::Result<(), Failure> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = self.buffer.split().freeze();
        let copy = match &mut self.route {
            Route::Undecided => unreachable!("a route is chosen before rows are sent"),
            Route::Staging(copy) => copy,
            Route::Direct(direct) => {
                tokio::task::block_in_place(|| direct.spill.append(&chunk))
                    .map_err(Failure::Spill)?;
                &mut direct.copy
            }
        };
        copy.as_mut().send(chunk).await.map_err(at("cannot copy"))
    }

    /// Ends the COPY into staging, merges the staged rows into the table, records the load and
    /// commits; returns the rows the upsert changed.
    async fn finish_staging(
        &self,
        mut copy: Copy,
        version: &CommittedVersion,
    ) -> std::result::Result<u64, Failure> {
        let staged = copy.as_mut().finish().await.map_err(at("cannot copy"))?;
        let client = &self.client;
        client
            .batch_execute(&sql::analyze_staging())
            .await
            .map_err(at("cannot load"))?;
        let deleted = match &self.plan.delete_vanished {
            Some(delete) => client
                .execute(delete.as_str(), &[])
                .await
                .map_err(at("cannot load"))?,
            None => 0,
        };
        let changed = client
            .execute(self.plan.upsert.as_str(), &[])
            .await
            .map_err(at("cannot load"))?;
        self.record_and_commit(version).await?;
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

    /// Ends the COPY straight into the table and commits; if the server refused it (or a batch
    /// named another unit), loads the kept stream through staging instead. Returns the rows
    /// written.
    async fn finish_direct(
        &self,
        mut direct: Direct,
        version: &CommittedVersion,
    ) -> std::result::Result<u64, Failure> {
        let why_not = match direct.copy.as_mut().finish().await {
            Ok(copied) if !direct.other_units => {
                self.record_and_commit(version).await?;
                tracing::info!(
                    sink = %self.sink,
                    table = %self.table,
                    file = %self.source_file,
                    copied,
                    "copied straight into the table, which held nothing of the file"
                );
                return Ok(copied);
            }
            Ok(_) => "the file's rows name more than one unit".to_owned(),
            Err(err) if err.as_db_error().is_some() && !self.client.is_closed() => {
                errors::describe(&err)
            }
            Err(err) => return Err(Failure::Server("cannot copy", err)),
        };
        tracing::info!(
            sink = %self.sink,
            table = %self.table,
            file = %self.source_file,
            "loading through staging after all: {why_not}"
        );
        let client = &self.client;
        client
            .batch_execute("ROLLBACK; BEGIN")
            .await
            .map_err(at("cannot copy"))?;
        let mut copy = start_staging(client, &self.plan)
            .await
            .map_err(at("cannot copy"))?;
        let chunks =
            tokio::task::block_in_place(|| direct.spill.replay()).map_err(Failure::Spill)?;
        let mut chunks = chunks.into_iter();
        while let Some(chunk) = tokio::task::block_in_place(|| chunks.next()) {
            let chunk = chunk.map_err(Failure::Spill)?;
            copy.as_mut().send(chunk).await.map_err(at("cannot copy"))?;
        }
        self.finish_staging(copy, version).await
    }

    async fn record_and_commit(
        &self,
        version: &CommittedVersion,
    ) -> std::result::Result<(), Failure> {
        let rows = i64::try_from(version.rows).unwrap_or(i64::MAX);
        self.client
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
            .map_err(at("cannot record the load of"))?;
        self.client
            .batch_execute("COMMIT")
            .await
            .map_err(at("cannot commit"))
    }
}

/// Creates the staging table and starts the COPY into it.
async fn start_staging(
    client: &Client,
    plan: &TablePlan,
) -> std::result::Result<Copy, tokio_postgres::Error> {
    client.batch_execute(&plan.create_staging).await?;
    Ok(Box::pin(
        client.copy_in::<_, Bytes>(plan.copy.as_str()).await?,
    ))
}

/// The first value of a text column; None when it is null, or the column is not text.
fn first_text(array: &dyn Array) -> Option<String> {
    if array.is_empty() || array.is_null(0) {
        return None;
    }
    Some(match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().value(0).to_owned(),
        DataType::LargeUtf8 => array.as_string::<i64>().value(0).to_owned(),
        DataType::Utf8View => array.as_string_view().value(0).to_owned(),
        _ => return None,
    })
}

/// Whether every value of a text column is `unit` (no nulls, no other value).
fn holds_only(array: &dyn Array, unit: &str) -> bool {
    if array.null_count() > 0 {
        return false;
    }
    match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().iter().all(|v| v == Some(unit)),
        DataType::LargeUtf8 => array.as_string::<i64>().iter().all(|v| v == Some(unit)),
        DataType::Utf8View => array.as_string_view().iter().all(|v| v == Some(unit)),
        _ => false,
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
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if matches!(self.route, Route::Undecided) {
            self.route = match self.choose_route(batch).await {
                Ok(route) => route,
                Err(failure) => return Err(self.failed(failure)),
            };
        }
        if let (Route::Direct(direct), Some(direct_plan)) = (&mut self.route, &self.plan.direct)
            && let (Some(unit), Some((index, _))) = (&direct.unit, &direct_plan.unit)
            && !direct.other_units
        {
            direct.other_units = !holds_only(batch.column(*index).as_ref(), unit);
        }
        let plan = Arc::clone(&self.plan);
        let buffer = &mut self.buffer;
        tokio::task::block_in_place(|| copy::write_batch(batch, &plan.columns, buffer))
            .map_err(|message| Error::sink(&self.sink, message))?;
        if let Err(failure) = self.send_buffer().await {
            return Err(self.failed(failure));
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>, version: &CommittedVersion) -> Result<u64> {
        copy::write_trailer(&mut self.buffer);
        let result = async {
            if matches!(self.route, Route::Undecided) {
                // No row came: the staging path records the load as it always did.
                self.route = self.staging_route().await?;
            }
            self.send_buffer().await?;
            match std::mem::replace(&mut self.route, Route::Undecided) {
                Route::Undecided => unreachable!("a route was chosen above"),
                Route::Staging(copy) => self.finish_staging(copy, version).await,
                Route::Direct(direct) => self.finish_direct(direct, version).await,
            }
        }
        .await;
        match result {
            Ok(rows) => Ok(rows),
            Err(failure) => {
                self.rollback().await;
                Err(self.failed(failure))
            }
        }
    }

    async fn abort(self: Box<Self>) {
        let PostgresWriter { client, route, .. } = *self;
        // Dropping the COPY without finishing it makes the server abort it.
        drop(route);
        if !client.is_closed() {
            let _ = client.batch_execute("ROLLBACK").await;
        }
    }

    fn location(&self) -> Option<String> {
        self.plan.unit_column.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, LargeStringArray, StringArray, StringViewArray};

    #[test]
    fn a_unit_is_the_first_value_of_a_text_column() {
        let names = StringArray::from(vec![Some("a.dat"), Some("b.dat")]);
        assert_eq!(first_text(&names).as_deref(), Some("a.dat"));
        let large = LargeStringArray::from(vec!["a.dat"]);
        assert_eq!(first_text(&large).as_deref(), Some("a.dat"));
        let view = StringViewArray::from(vec!["a.dat"]);
        assert_eq!(first_text(&view).as_deref(), Some("a.dat"));
        assert_eq!(first_text(&StringArray::from(vec![None::<&str>])), None);
        assert_eq!(first_text(&StringArray::from(Vec::<&str>::new())), None);
        assert_eq!(first_text(&Int64Array::from(vec![1])), None);
    }

    #[test]
    fn a_batch_of_one_unit_holds_only_its_value() {
        assert!(holds_only(&StringArray::from(vec!["a.dat"; 3]), "a.dat"));
        assert!(holds_only(
            &StringViewArray::from(vec!["a.dat"; 3]),
            "a.dat"
        ));
        assert!(!holds_only(
            &StringArray::from(vec!["a.dat", "b.dat"]),
            "a.dat"
        ));
        assert!(!holds_only(
            &LargeStringArray::from(vec![Some("a.dat"), None]),
            "a.dat"
        ));
        assert!(!holds_only(&Int64Array::from(vec![1]), "1"));
    }
}
