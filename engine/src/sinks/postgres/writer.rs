//! One file version's load, as one transaction: `BEGIN`, a temporary staging table, a binary
//! `COPY` fed batch by batch, then at commit the removal of the file's vanished records, the
//! upsert, the `engine_loads` row and `COMMIT`. Any failure — or an abort — rolls all of it
//! back, so the table only ever holds whole versions of each file.

use super::copy;
use super::ddl::TablePlan;
use super::errors;
use super::sql;
use crate::error::{Error, Result};
use crate::sinks::{CommittedVersion, SinkWriter};
use arrow::array::RecordBatch;
use bytes::{Bytes, BytesMut};
use futures::SinkExt;
use std::pin::Pin;
use std::sync::Arc;
use tokio_postgres::{Client, CopyInSink};

pub struct PostgresWriter {
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
    /// Opens the transaction, creates the staging table and starts the COPY into it. On failure
    /// the transaction is rolled back and the server's error returned.
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
            client.batch_execute(&plan.create_staging).await?;
            client.copy_in::<_, Bytes>(plan.copy.as_str()).await
        }
        .await;
        let copy = match started {
            Ok(copy) => copy,
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
            copy: Box::pin(copy),
            buffer,
        })
    }

    fn failed(&self, doing: &str, err: &tokio_postgres::Error) -> Error {
        Error::sink(
            &self.sink,
            errors::load_failed(
                doing,
                &self.source_file,
                &self.table,
                &self.plan.key,
                err,
                self.client.is_closed(),
            ),
        )
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
                .batch_execute(&sql::analyze_staging())
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

    fn location(&self) -> Option<String> {
        self.plan.unit_column.clone()
    }
}
