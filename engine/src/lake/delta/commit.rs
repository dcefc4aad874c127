//! One load unit, one Delta commit. The unit's rows are streamed into new data files as they
//! come (delta-rs's `RecordBatchWriter`, memory bounded by a row group); nothing is visible
//! until the commit, which in one table version removes every file that held the unit's
//! previous rows and adds the new files. A reader at any version sees each unit whole, once.
//!
//! Finding the previous rows: every file the engine writes holds one unit, so its statistics
//! say `min(load_unit) = max(load_unit) = unit` and it is removed whole. A file that
//! `engine lake optimize` merged from many units is read (its unit column only), and if it holds
//! the unit's rows, its other rows are written to a new file in the same commit.
//!
//! Many writers: the commit carries an application transaction (`txn`) named after the unit, so
//! two engines that commit the same unit at once conflict in delta-rs's checker instead of both
//! adding it; the loser re-reads the table, finds the winner's files as the previous version
//! and tries again. Writers of different units never conflict: they only add files and remove
//! their own.

use super::{DeltaError, UNIT_COLUMN, columns_to_add, delta_field};
use crate::lake::store::Location;
use arrow::array::{Array, ArrayRef, RecordBatch, StringArray, new_null_array};
use arrow::datatypes::SchemaRef;
use deltalake::DeltaTable;
use deltalake::kernel::scalars::ScalarExt;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties, TransactionError};
use deltalake::kernel::{Action, Add, Remove, Transaction};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter, WriteMode};
use deltalake::{DeltaTableError, ObjectStore};
use object_store::ObjectStoreExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::properties::WriterProperties;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a unit's commit is tried again after another writer changed what it replaces.
const MAX_ATTEMPTS: u32 = 30;

/// What a commit did, for the log and the benchmark.
#[derive(Debug, Clone)]
pub struct CommitOutcome {
    /// The table version that holds the unit.
    pub version: u64,
    /// Files removed (the unit's previous version, and merged files rewritten).
    pub removed: usize,
    /// Files added.
    pub added: usize,
    /// Attempts it took (1 unless other writers raced it).
    pub attempts: u32,
    /// Time from the start of the commit to its end: finishing the files, reading the log,
    /// writing the version.
    pub took: Duration,
}

/// One unit on its way into a table; see the module docs.
pub struct UnitCommit {
    writer: RecordBatchWriter,
    rows: u64,
    replacer: Replacer,
}

/// What a unit's commit needs besides its writer: the table and how to find the unit's rows.
/// Kept apart from the writer (which is not `Sync`) so the commit can hold it across awaits.
struct Replacer {
    table: DeltaTable,
    unit: String,
    /// The unit's partition, by the table's partition columns.
    partition: indexmap::IndexMap<String, delta_kernel::expressions::Scalar>,
    /// The table's columns: every batch is made to fit them.
    target: SchemaRef,
    properties: WriterProperties,
}

impl UnitCommit {
    /// Starts writing `unit`'s rows, of columns `written`, into the table at `location`;
    /// creates the table (partitioned by `partition`'s columns) when there is none, and adds
    /// the columns the table lacks. `properties` encode the data files. `known` is the table
    /// as an earlier unit of the run left it: brought up to date from its version, which reads
    /// only the log entries since, not the whole log again.
    pub async fn begin(
        location: &Location,
        known: Option<DeltaTable>,
        unit: &str,
        partition: &[(String, String)],
        written: SchemaRef,
        properties: WriterProperties,
    ) -> Result<Self, DeltaError> {
        let table = prepare_table(location, known, partition, &written).await?;
        let target = super::table_schema(&table)?;
        let partition = typed_partition(&table, partition)?;
        let writer = RecordBatchWriter::for_table(&table)?
            .with_writer_properties(properties.clone())
            .with_target_file_size(TARGET_FILE_BYTES);
        Ok(UnitCommit {
            writer,
            rows: 0,
            replacer: Replacer {
                table,
                unit: unit.to_owned(),
                partition,
                target,
                properties,
            },
        })
    }

    /// Streams one batch into the unit's files; its unit column is set to the unit.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<(), DeltaError> {
        let fitted = fit(batch, &self.replacer.target, Some(&self.replacer.unit))?;
        self.rows += fitted.num_rows() as u64;
        self.writer
            .write_partition(fitted, &self.replacer.partition, WriteMode::Default)
            .await?;
        Ok(())
    }

    /// The table as this unit found it, for the next unit of the run to start from.
    pub fn table(&self) -> DeltaTable {
        self.replacer.table.clone()
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Commits the unit: see the module docs.
    pub async fn commit(self) -> Result<CommitOutcome, DeltaError> {
        let started = Instant::now();
        let UnitCommit {
            mut writer,
            mut replacer,
            ..
        } = self;
        let adds = writer.flush().await?;
        let app_id = format!("toss-etl:{}", replacer.unit);
        let mut attempt = 0;
        // Rewritten remainders of merged files, kept across attempts by the file they came from.
        let mut remainders: Vec<(String, Vec<Add>)> = Vec::new();
        loop {
            attempt += 1;
            replacer.table.update_state().await?;
            let previous = replacer.previous_files().await?;
            let mut removes = Vec::new();
            let mut remainder_adds = Vec::new();
            for file in previous {
                match file {
                    Previous::Whole(remove) => removes.push(remove),
                    Previous::Mixed(remove) => {
                        let done = remainders.iter().find(|(path, _)| *path == remove.path);
                        let added = match done {
                            Some((_, added)) => added.clone(),
                            None => {
                                let added = replacer.rewrite_without_unit(&remove.path).await?;
                                remainders.push((remove.path.clone(), added.clone()));
                                added
                            }
                        };
                        remainder_adds.extend(added);
                        removes.push(remove);
                    }
                }
            }
            let snapshot = replacer.table.snapshot()?;
            let txn_version = snapshot
                .transaction_version(replacer.table.log_store().as_ref(), &app_id)
                .await?
                .unwrap_or(0)
                + 1;
            let removed = removes.len();
            let added = adds.len() + remainder_adds.len();
            let mut actions: Vec<Action> = removes.into_iter().map(Action::Remove).collect();
            actions.extend(adds.iter().cloned().map(Action::Add));
            actions.extend(remainder_adds.into_iter().map(Action::Add));
            actions.push(Action::Txn(Transaction::new(&app_id, txn_version)));
            let operation = DeltaOperation::Write {
                mode: SaveMode::Overwrite,
                partition_by: None,
                predicate: Some(format!(
                    "{UNIT_COLUMN} = '{}'",
                    replacer.unit.replace('\'', "''")
                )),
            };
            let properties = CommitProperties::default().with_create_checkpoint(true);
            let committed = CommitBuilder::from(properties)
                .with_actions(actions)
                .build(Some(snapshot), replacer.table.log_store(), operation)
                .await;
            match committed {
                Ok(done) => {
                    return Ok(CommitOutcome {
                        version: done.version(),
                        removed,
                        added,
                        attempts: attempt,
                        took: started.elapsed(),
                    });
                }
                Err(err) if is_race(&err) && attempt < MAX_ATTEMPTS => {
                    tracing::debug!(unit = %replacer.unit, attempt, "another writer won: {err}");
                    // The files written for this unit stay ours whatever the others did:
                    // only what they replace is looked up again.
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(err) if is_race(&err) => {
                    writer.reset();
                    return Err(DeltaError::Contended(format!(
                        "{MAX_ATTEMPTS} attempts to commit {} lost to other writers ({err}); \
                         run again (nothing of this unit was committed)",
                        replacer.unit
                    )));
                }
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// Gives up the unit: files being written are abandoned (their uploads aborted); a file
    /// already finished is never referenced by the log, and `engine lake vacuum` removes it.
    pub fn abort(mut self) {
        self.writer.reset();
    }
}

impl Replacer {
    /// The files of the current table version that hold rows of this unit.
    async fn previous_files(&self) -> Result<Vec<Previous>, DeltaError> {
        let snapshot = self.table.snapshot()?;
        let mut found = Vec::new();
        for file in snapshot.log_data().iter() {
            if !self.same_partition(&file.partition_values_map()) {
                continue;
            }
            let remove = file.remove_action(true);
            match unit_bounds(file.stats().as_deref()) {
                Some((min, max)) if min == self.unit && max == self.unit => {
                    found.push(Previous::Whole(remove));
                }
                Some((min, max)) if self.unit < min || self.unit > max => {}
                _ => {
                    if self.holds_unit(&remove.path).await? {
                        found.push(Previous::Mixed(remove));
                    }
                }
            }
        }
        Ok(found)
    }

    fn same_partition(&self, values: &std::collections::HashMap<String, Option<String>>) -> bool {
        self.partition.keys().all(|column| {
            let ours = self.partition_text(column);
            values.get(column).and_then(|value| value.as_deref()) == ours.as_deref()
        })
    }

    fn partition_text(&self, column: &str) -> Option<String> {
        self.partition.get(column).map(|scalar| scalar.serialize())
    }

    /// Whether the data file at `path` (relative to the table) has a row of this unit.
    async fn holds_unit(&self, path: &str) -> Result<bool, DeltaError> {
        let mut holds = false;
        self.scan(path, true, |batch| {
            let units = unit_values(batch)?;
            holds |= units.iter().any(|unit| unit == Some(self.unit.as_str()));
            Ok(())
        })
        .await?;
        Ok(holds)
    }

    /// Writes the rows of the merged file at `path` that are not this unit's to new files, and
    /// returns their `add` actions.
    async fn rewrite_without_unit(&self, path: &str) -> Result<Vec<Add>, DeltaError> {
        let mut writer = RecordBatchWriter::for_table(&self.table)?
            .with_writer_properties(self.properties.clone())
            .with_target_file_size(TARGET_FILE_BYTES);
        let mut kept = Vec::new();
        self.scan(path, false, |batch| {
            let units = unit_values(batch)?;
            let others = arrow::array::BooleanArray::from_iter(
                units
                    .iter()
                    .map(|unit| Some(unit != Some(self.unit.as_str()))),
            );
            let batch = arrow::compute::filter_record_batch(batch, &others)
                .map_err(|err| DeltaError::Schema(err.to_string()))?;
            if batch.num_rows() > 0 {
                kept.push(fit(&batch, &self.target, None)?);
            }
            Ok(())
        })
        .await?;
        for batch in kept {
            writer
                .write_partition(batch, &self.partition, WriteMode::Default)
                .await?;
        }
        Ok(writer.flush().await?)
    }

    /// Reads the data file at `path` (only the unit column when `unit_only`), batch by batch.
    async fn scan(
        &self,
        path: &str,
        unit_only: bool,
        mut each: impl FnMut(&RecordBatch) -> Result<(), DeltaError>,
    ) -> Result<(), DeltaError> {
        // Read whole: only files `engine lake optimize` merged come here, and only when a unit
        // they hold is loaded again.
        let store: Arc<dyn ObjectStore> = self.table.object_store();
        let object = deltalake::Path::parse(path).map_err(|err| {
            DeltaError::Schema(format!(
                "the log names a file {path:?} that is not a path: {err}"
            ))
        })?;
        let bytes = store
            .get(&object)
            .await
            .map_err(|err| DeltaError::Schema(format!("cannot read {path}: {err}")))?
            .bytes()
            .await
            .map_err(|err| DeltaError::Schema(format!("cannot read {path}: {err}")))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .map_err(|err| DeltaError::Schema(format!("cannot read {path}: {err}")))?;
        let builder = if unit_only {
            let columns = builder
                .schema()
                .index_of(UNIT_COLUMN)
                .map_err(|_| DeltaError::Schema(format!("{path} has no {UNIT_COLUMN} column")))?;
            let mask = parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), [columns]);
            builder.with_projection(mask)
        } else {
            builder
        };
        let reader = builder
            .build()
            .map_err(|err| DeltaError::Schema(format!("cannot read {path}: {err}")))?;
        for batch in reader {
            let batch =
                batch.map_err(|err| DeltaError::Schema(format!("cannot read {path}: {err}")))?;
            let batch = self.with_partition_columns(&batch)?;
            each(&batch)?;
        }
        Ok(())
    }

    /// A batch read from a data file, with the partition columns the file leaves to the path.
    fn with_partition_columns(&self, batch: &RecordBatch) -> Result<RecordBatch, DeltaError> {
        let mut fields: Vec<arrow::datatypes::FieldRef> = batch.schema().fields().to_vec();
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        for (column, value) in &self.partition {
            if batch.schema().index_of(column).is_ok() {
                continue;
            }
            let Ok(field) = self.target.field_with_name(column) else {
                continue;
            };
            let array = value
                .to_array(batch.num_rows())
                .map_err(|err| DeltaError::Schema(err.to_string()))?;
            let array = arrow::compute::cast(&array, field.data_type())
                .map_err(|err| DeltaError::Schema(err.to_string()))?;
            fields.push(Arc::new(field.clone()));
            columns.push(array);
        }
        let schema = Arc::new(arrow::datatypes::Schema::new(fields));
        RecordBatch::try_new(schema, columns).map_err(|err| DeltaError::Schema(err.to_string()))
    }
}

/// Data files roll over at this size.
const TARGET_FILE_BYTES: u64 = 256 * 1024 * 1024;

enum Previous {
    /// A file of this unit alone.
    Whole(Remove),
    /// A merged file that holds rows of this unit among others'.
    Mixed(Remove),
}

/// A commit that lost to another writer and may be tried again on the newer table.
fn is_race(err: &DeltaTableError) -> bool {
    matches!(
        err,
        DeltaTableError::Transaction {
            source: TransactionError::CommitConflict(_) | TransactionError::MaxCommitAttempts(_),
        } | DeltaTableError::VersionAlreadyExists(_)
    )
}

/// Waits a little longer after every lost race, with jitter so racers spread out.
fn backoff(attempt: u32) -> Duration {
    let base = 20u64 << attempt.min(6);
    let jitter = u64::from(std::process::id().wrapping_mul(2_654_435_761) ^ attempt) % base;
    Duration::from_millis(base + jitter)
}

/// The smallest and largest unit a data file's statistics give, when they give both.
fn unit_bounds(stats: Option<&str>) -> Option<(String, String)> {
    let stats: serde_json::Value = serde_json::from_str(stats?).ok()?;
    let min = stats
        .get("minValues")?
        .get(UNIT_COLUMN)?
        .as_str()?
        .to_owned();
    let max = stats
        .get("maxValues")?
        .get(UNIT_COLUMN)?
        .as_str()?
        .to_owned();
    Some((min, max))
}

/// The unit column of a batch read back from a data file.
fn unit_values(batch: &RecordBatch) -> Result<StringArray, DeltaError> {
    let column = batch
        .column_by_name(UNIT_COLUMN)
        .ok_or_else(|| DeltaError::Schema(format!("a data file has no {UNIT_COLUMN} column")))?;
    let column = arrow::compute::cast(column, &arrow::datatypes::DataType::Utf8)
        .map_err(|err| DeltaError::Schema(err.to_string()))?;
    Ok(column
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("cast to Utf8")
        .clone())
}

/// `batch` with the table's columns, in the table's order: columns the batch lacks are null,
/// each column is cast to the table's type (a time zone, a string view), and the unit column
/// is set to `unit` when given.
fn fit(
    batch: &RecordBatch,
    target: &SchemaRef,
    unit: Option<&str>,
) -> Result<RecordBatch, DeltaError> {
    let rows = batch.num_rows();
    let mut columns = Vec::with_capacity(target.fields().len());
    for field in target.fields() {
        if field.name() == UNIT_COLUMN
            && let Some(unit) = unit
        {
            let array: ArrayRef = Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                unit, rows,
            )));
            columns.push(
                arrow::compute::cast(&array, field.data_type())
                    .map_err(|err| DeltaError::Schema(format!("column {UNIT_COLUMN}: {err}")))?,
            );
            continue;
        }
        let column = match batch.column_by_name(field.name()) {
            Some(column) if column.data_type() == field.data_type() => Arc::clone(column),
            Some(column) => arrow::compute::cast(column, field.data_type()).map_err(|err| {
                DeltaError::Schema(format!(
                    "column {:?} cannot be stored as the table's {}: {err}",
                    field.name(),
                    field.data_type()
                ))
            })?,
            None if field.is_nullable() => new_null_array(field.data_type(), rows),
            None => {
                return Err(DeltaError::Schema(format!(
                    "column {:?} is required by the table but this load has no such column; \
                     a plugin must keep it",
                    field.name()
                )));
            }
        };
        columns.push(column);
    }
    RecordBatch::try_new(Arc::clone(target), columns).map_err(|err| {
        DeltaError::Schema(format!("the rows do not fit the table's columns: {err}"))
    })
}

/// Opens the table, creating it when there is none, and adds the columns of `written` it lacks.
async fn prepare_table(
    location: &Location,
    mut known: Option<DeltaTable>,
    partition: &[(String, String)],
    written: &SchemaRef,
) -> Result<DeltaTable, DeltaError> {
    let written = super::with_unit_column(written);
    for _ in 0..MAX_ATTEMPTS {
        let current = match known.take() {
            Some(mut table) => {
                table.update_state().await?;
                Some(table)
            }
            None => super::open(location).await?,
        };
        let Some(table) = current else {
            let columns = written
                .fields()
                .iter()
                .map(|field| delta_field(field))
                .collect::<Result<Vec<_>, _>>()?;
            let created = super::handle(location)?
                .create()
                .with_columns(columns)
                .with_partition_columns(partition.iter().map(|(column, _)| column.clone()))
                .with_save_mode(SaveMode::ErrorIfExists)
                .await;
            match created {
                Ok(table) => return Ok(table),
                // Another engine created it first: use theirs.
                Err(_) if super::open(location).await?.is_some() => continue,
                Err(err) => return Err(err.into()),
            }
        };
        let table_columns = super::table_schema(&table)?;
        let missing = columns_to_add(&table_columns, &written)?;
        if missing.is_empty() {
            return Ok(table);
        }
        tracing::info!(
            columns = %missing.iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", "),
            "adding columns to the Delta table"
        );
        match table.add_columns().with_fields(missing).await {
            Ok(table) => return Ok(table),
            Err(err) if is_race(&err) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Err(DeltaError::Contended(
        "other writers kept changing the table's columns; run again".to_owned(),
    ))
}

/// The unit's partition values typed as the table's partition columns.
fn typed_partition(
    table: &DeltaTable,
    partition: &[(String, String)],
) -> Result<indexmap::IndexMap<String, delta_kernel::expressions::Scalar>, DeltaError> {
    let snapshot = table.snapshot()?;
    let metadata = snapshot.metadata();
    let columns = metadata.partition_columns();
    let given: Vec<&str> = partition
        .iter()
        .map(|(column, _)| column.as_str())
        .collect();
    if columns.iter().map(String::as_str).collect::<Vec<_>>() != given {
        return Err(DeltaError::Schema(format!(
            "the table is partitioned by [{}] but this load is by [{}]; load into a table of \
             this kind of data (another path)",
            columns.join(", "),
            given.join(", ")
        )));
    }
    let schema = snapshot.schema();
    let mut typed = indexmap::IndexMap::new();
    for (column, value) in partition {
        let field = schema.field(column).ok_or_else(|| {
            DeltaError::Schema(format!("partition column {column:?} is not in the table"))
        })?;
        let deltalake::kernel::DataType::Primitive(primitive) = field.data_type() else {
            return Err(DeltaError::Schema(format!(
                "partition column {column:?} is not of a simple type"
            )));
        };
        let scalar = primitive.parse_scalar(value).map_err(|err| {
            DeltaError::Schema(format!("partition value {value:?} of {column:?}: {err}"))
        })?;
        typed.insert(column.clone(), scalar);
    }
    Ok(typed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_bounds_come_from_the_statistics() {
        let stats = r#"{"numRecords":3,"minValues":{"load_unit":"a.dat"},"maxValues":{"load_unit":"c.dat"}}"#;
        assert_eq!(
            unit_bounds(Some(stats)),
            Some(("a.dat".to_owned(), "c.dat".to_owned()))
        );
        assert_eq!(unit_bounds(Some(r#"{"numRecords":3}"#)), None);
        assert_eq!(unit_bounds(None), None);
    }
}
