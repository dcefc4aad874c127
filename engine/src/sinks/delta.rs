//! `type = "delta"`: the records as a Delta Lake table (on an object store or a local folder),
//! partitioned like the Parquet lake, one table version per load unit. What a commit does, and
//! why many engines may write one table at once, is in [`crate::lake::delta`].

use super::parquet::tuning;
use super::{BuildSink, CommittedVersion, LoadUnit, Sink, SinkContext, SinkWriter};
use crate::env::EnvString;
use crate::error::{Error, Result};
use crate::lake::delta::{DeltaError, UNIT_COLUMN, UnitCommit};
use crate::lake::store::{self, Location, StoreOptions};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::basic::ZstdLevel;
use parquet::file::properties::EnabledStatistics;
use serde::Deserialize;

/// `[[sinks]]` with `type = "delta"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeltaSinkConfig {
    /// The table's root: a folder, or `s3://bucket/prefix` (also `gs://`, `az://`, `file://`).
    pub path: EnvString,
    /// An S3-compatible store's address (MinIO, a test server); default the provider's.
    #[serde(default)]
    pub endpoint: Option<EnvString>,
    /// Talk plain HTTP to `endpoint` (a local test store only).
    #[serde(default)]
    pub allow_http: bool,
    /// The bucket's region (default from the environment, `AWS_REGION`).
    #[serde(default)]
    pub region: Option<EnvString>,
    /// zstd level of the data files, 1 (fast) to 22 (small); default 1.
    #[serde(default = "default_zstd_level")]
    pub zstd_level: i32,
    /// Rows per row group (default 262144); bounds the writer's memory.
    #[serde(default = "default_row_group_rows")]
    pub row_group_rows: usize,
}

fn default_zstd_level() -> i32 {
    1
}
fn default_row_group_rows() -> usize {
    262_144
}

impl DeltaSinkConfig {
    /// Where the table lives, for `engine lake` as for the sink.
    pub fn location(&self, name: &str) -> Result<Location> {
        let options = StoreOptions::from_keys(
            self.endpoint.as_ref(),
            self.allow_http,
            self.region.as_ref(),
        );
        store::locate(&self.path, &options, |key| {
            format!("[[sinks]] {name} {key}")
        })
    }

    /// The table as people should see it.
    pub fn shown(&self) -> String {
        self.path.as_written().to_owned()
    }
}

impl BuildSink for DeltaSinkConfig {
    fn build(&self, name: String, _context: &SinkContext) -> Result<Box<dyn Sink>> {
        let level = tuning::checked(&name, self.zstd_level, self.row_group_rows)?;
        let location = self.location(&name)?;
        Ok(Box::new(DeltaSink {
            name,
            location,
            known: tokio::sync::Mutex::new(None),
            shown: self.shown(),
            level,
            row_group_rows: self.row_group_rows,
        }))
    }
}

struct DeltaSink {
    name: String,
    location: Location,
    /// The table as the run's last unit saw it (see [`UnitCommit::begin`]).
    known: tokio::sync::Mutex<Option<deltalake::DeltaTable>>,
    shown: String,
    level: ZstdLevel,
    row_group_rows: usize,
}

impl DeltaSink {
    fn failed(&self, err: DeltaError) -> Error {
        Error::Sink {
            sink: self.name.clone(),
            message: format!("Delta table {}", self.shown),
            cause: Some(Box::new(err)),
        }
    }
}

#[async_trait::async_trait]
impl Sink for DeltaSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn begin(&self, unit: &LoadUnit, schema: SchemaRef) -> Result<Box<dyn SinkWriter>> {
        let written = crate::hints::without_hints(&schema);
        // Encoded as the Parquet lake is, but the unit column keeps its statistics: they are
        // how a later version of the unit finds these rows without reading them.
        let properties = tuning::builder(&schema, self.level, self.row_group_rows)
            .set_column_statistics_enabled(UNIT_COLUMN.into(), EnabledStatistics::Chunk)
            .build();
        let known = self.known.lock().await.clone();
        let commit = UnitCommit::begin(
            &self.location,
            known,
            &unit.name,
            &unit.partition,
            std::sync::Arc::new(written),
            properties,
        )
        .await
        .map_err(|err| self.failed(err))?;
        *self.known.lock().await = Some(commit.table());
        Ok(Box::new(DeltaWriter {
            sink: self.name.clone(),
            shown: self.shown.clone(),
            unit: unit.name.clone(),
            commit: Some(commit),
        }))
    }
}

struct DeltaWriter {
    sink: String,
    shown: String,
    unit: String,
    commit: Option<UnitCommit>,
}

impl DeltaWriter {
    fn failed(&self, err: DeltaError) -> Error {
        Error::Sink {
            sink: self.sink.clone(),
            message: format!("Delta table {}, unit {}", self.shown, self.unit),
            cause: Some(Box::new(err)),
        }
    }
}

#[async_trait::async_trait]
impl SinkWriter for DeltaWriter {
    async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let Some(commit) = self.commit.as_mut() else {
            return Err(Error::sink(&self.sink, "cannot write after a failed write"));
        };
        if let Err(err) = commit.write(batch).await {
            if let Some(commit) = self.commit.take() {
                commit.abort();
            }
            return Err(self.failed(err));
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>, _version: &CommittedVersion) -> Result<u64> {
        let Some(commit) = self.commit.take() else {
            return Err(Error::sink(
                &self.sink,
                "cannot commit after a failed write",
            ));
        };
        let rows = commit.rows();
        let committed = commit.commit().await;
        let outcome = committed.map_err(|err| self.failed(err))?;
        tracing::info!(
            sink = %self.sink,
            unit = %self.unit,
            version = outcome.version,
            removed = outcome.removed,
            added = outcome.added,
            attempts = outcome.attempts,
            commit_ms = outcome.took.as_millis() as u64,
            "committed to the Delta table"
        );
        Ok(rows)
    }

    async fn abort(mut self: Box<Self>) {
        if let Some(commit) = self.commit.take() {
            commit.abort();
        }
    }
}
