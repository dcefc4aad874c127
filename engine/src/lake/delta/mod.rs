//! Delta Lake tables through delta-rs: opening (or creating) a table where a lake location
//! points, keeping its schema in step with what the pipeline writes, committing one load unit
//! at a time (`commit.rs`), and the maintenance `engine lake` runs (`maintain.rs`).
//!
//! The engine gives delta-rs the object store it built itself (see [`super::store`]), so every
//! store the Parquet sink reaches is reachable here, with the same credentials, and delta-rs
//! commits with the store's conditional put (`If-None-Match: *` on S3): two writers that race
//! for one table version cannot both win, which is what makes many writers safe.
//!
//! Every row carries the unit it was loaded with in [`UNIT_COLUMN`]; a newer version of a unit
//! replaces exactly the rows of that column's value, even after `engine lake optimize` merged
//! the files of many units into one.

mod commit;
mod maintain;

pub use commit::{CommitOutcome, UnitCommit};
pub use maintain::{Maintenance, optimize, vacuum};

use super::store::Location;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake::kernel::StructField;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use std::sync::Arc;

/// The column that names each row's load unit; see the module docs.
pub const UNIT_COLUMN: &str = "load_unit";

/// Why a table operation failed, in words for the person running the engine.
#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    /// The table's log or files could not be read or written.
    #[error("{0}")]
    Table(#[from] DeltaTableError),
    /// What the pipeline writes does not fit the table.
    #[error("{0}")]
    Schema(String),
    /// Other writers kept winning the race for the next version.
    #[error("{0}")]
    Contended(String),
}

/// Opens the table at `location`; `None` when there is no table there yet.
pub async fn open(location: &Location) -> Result<Option<DeltaTable>, DeltaError> {
    let mut table = builder(location)?.build()?;
    // Look for a log before loading one: delta-rs logs an error for a table that is not there
    // yet, which for the first load is no error at all.
    let log = deltalake::Path::from("_delta_log");
    let mut listing = table.object_store().list(Some(&log));
    match futures::StreamExt::next(&mut listing).await {
        None => return Ok(None),
        Some(Err(err)) => return Err(DeltaTableError::from(err).into()),
        Some(Ok(_)) => {}
    }
    drop(listing);
    match table.load().await {
        Ok(()) => Ok(Some(table)),
        Err(DeltaTableError::NotATable(_)) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// An unloaded handle on the table at `location`.
pub fn handle(location: &Location) -> Result<DeltaTable, DeltaError> {
    Ok(builder(location)?.build()?)
}

fn builder(location: &Location) -> Result<DeltaTableBuilder, DeltaError> {
    register_object_store_schemes();
    Ok(match location {
        Location::Local(folder) => {
            std::fs::create_dir_all(folder).map_err(|err| {
                DeltaError::Schema(format!("cannot create {}: {err}", folder.display()))
            })?;
            let folder = std::path::absolute(folder).map_err(|err| {
                DeltaError::Schema(format!("cannot resolve {}: {err}", folder.display()))
            })?;
            let url = reqwest::Url::from_directory_path(&folder).map_err(|()| {
                DeltaError::Schema(format!("{} is not a usable folder", folder.display()))
            })?;
            DeltaTableBuilder::from_url(url)?
        }
        Location::Object { store, url } => {
            let mut url = url.clone();
            if !url.path().ends_with('/') {
                url.set_path(&format!("{}/", url.path()));
            }
            DeltaTableBuilder::from_url(url.clone())?.with_storage_backend(Arc::clone(store), url)
        }
    })
}

/// delta-rs's plain log store (a commit is a conditional create of the next log entry) for the
/// object store schemes, over the store the engine built: so a table on S3 needs no DynamoDB
/// lock table, and none of delta-rs's own cloud features are compiled in.
fn register_object_store_schemes() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let factories = deltalake::logstore::logstore_factories();
        for scheme in ["s3", "s3a", "gs", "az", "abfs", "abfss", "azure"] {
            let url = reqwest::Url::parse(&format!("{scheme}://")).expect("a scheme");
            factories.insert(url, Arc::new(ConditionalPutLogStore));
        }
    });
}

/// See [`register_object_store_schemes`].
struct ConditionalPutLogStore;

impl deltalake::logstore::LogStoreFactory for ConditionalPutLogStore {
    fn with_options(
        &self,
        prefixed_store: deltalake::logstore::ObjectStoreRef,
        root_store: deltalake::logstore::ObjectStoreRef,
        location: &reqwest::Url,
        options: &deltalake::logstore::StorageConfig,
    ) -> deltalake::DeltaResult<Arc<dyn deltalake::logstore::LogStore>> {
        Ok(deltalake::logstore::default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

/// The table's columns as Arrow sees them.
pub fn table_schema(table: &DeltaTable) -> Result<SchemaRef, DeltaError> {
    let schema = table.snapshot()?.schema();
    let arrow: Schema = schema
        .as_ref()
        .try_into_arrow()
        .map_err(|err: arrow::error::ArrowError| DeltaError::Schema(err.to_string()))?;
    Ok(Arc::new(arrow))
}

use deltalake::kernel::engine::arrow_conversion::{TryIntoArrow, TryIntoKernel};

/// `field` as a Delta column. A timestamp with a time zone (the Toss feed's Korea time) is a
/// Delta `timestamp`, an instant stored in UTC: the same instants, read back in UTC.
pub fn delta_field(field: &Field) -> Result<StructField, DeltaError> {
    let data_type = match field.data_type() {
        DataType::Timestamp(_, Some(_)) => {
            DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into()))
        }
        DataType::Timestamp(_, None) => {
            DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None)
        }
        other => other.clone(),
    };
    let field = Field::new(field.name(), data_type, field.is_nullable());
    (&field).try_into_kernel().map_err(|err| {
        DeltaError::Schema(format!(
            "column {:?} ({}) has no Delta Lake type: {err}; \
             cast it to a string, integer, decimal, date or timestamp in a plugin",
            field.name(),
            field.data_type()
        ))
    })
}

/// How the columns of a unit's batches (`written`) fit the table's (`table`): the columns the
/// table lacks, to add (nullable) before the unit commits. A column the table has under another
/// type is an error naming the column, since Delta cannot change a column's type in place.
pub fn columns_to_add(table: &Schema, written: &Schema) -> Result<Vec<StructField>, DeltaError> {
    let mut added = Vec::new();
    for field in written.fields() {
        match table.field_with_name(field.name()) {
            Ok(existing) => {
                let ours = delta_field(field)?;
                let theirs = delta_field(existing)?;
                if ours.data_type() != theirs.data_type() {
                    return Err(DeltaError::Schema(format!(
                        "column {:?} is {} in the table but {} in this load; a Delta table cannot \
                         change a column's type: keep the type (cast in the plugin), or load \
                         into a new table (another path) and rename the column in the old one",
                        field.name(),
                        theirs.data_type(),
                        ours.data_type()
                    )));
                }
            }
            Err(_) => {
                let nullable = Field::new(field.name(), field.data_type().clone(), true);
                added.push(delta_field(&nullable)?);
            }
        }
    }
    Ok(added)
}

/// `schema` with the unit column appended when it lacks one.
pub fn with_unit_column(schema: &Schema) -> SchemaRef {
    if schema.field_with_name(UNIT_COLUMN).is_ok() {
        return Arc::new(schema.clone());
    }
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(UNIT_COLUMN, DataType::Utf8, false));
    Arc::new(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_column_is_added_nullable_and_a_changed_type_is_refused_by_name() {
        let table = Schema::new(vec![
            Field::new("oid", DataType::Utf8, false),
            Field::new("amount", DataType::Int64, false),
        ]);
        let written = Schema::new(vec![
            Field::new("oid", DataType::Utf8, false),
            Field::new("amount", DataType::Int64, false),
            Field::new("fee", DataType::Int64, false),
        ]);
        let added = columns_to_add(&table, &written).unwrap();
        assert_eq!(added.len(), 1);
        assert_eq!(added[0].name(), "fee");
        assert!(added[0].is_nullable());

        let changed = Schema::new(vec![Field::new("amount", DataType::Utf8, false)]);
        let err = columns_to_add(&table, &changed).unwrap_err().to_string();
        assert!(err.contains("\"amount\""), "{err}");
        assert!(err.contains("cast in the plugin"), "{err}");
    }

    #[test]
    fn the_unit_column_is_appended_once() {
        let schema = Schema::new(vec![Field::new("oid", DataType::Utf8, false)]);
        let once = with_unit_column(&schema);
        assert_eq!(once.fields().len(), 2);
        assert_eq!(with_unit_column(&once).fields().len(), 2);
    }
}
