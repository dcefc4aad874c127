//! `engine lake optimize` and `engine lake vacuum`: what keeps a table that takes 72 versions a
//! day fast to read. Each load replaces its unit's file, so the table has one live file per unit
//! and partition, and the files of replaced versions stay (readers of older versions may need
//! them) until vacuumed. `optimize` merges a partition's small files (many MIDs, many days)
//! into few, in one commit that changes no row; `vacuum` deletes the files no version younger
//! than the retention period needs, and files a killed load left unreferenced. Both run through
//! delta-rs, and a checkpoint follows so that a reader's start does not replay the whole log.

use super::{DeltaError, UNIT_COLUMN};
use crate::lake::store::Location;
use deltalake::operations::vacuum::VacuumMode;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use std::num::NonZeroU64;

/// What a maintenance run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Maintenance {
    /// The table version after the run.
    pub version: u64,
    /// Files the run removed from the table (optimize) or deleted from storage (vacuum).
    pub files_removed: u64,
    /// Files the run added (optimize).
    pub files_added: u64,
    /// Partitions the run compacted (optimize).
    pub partitions: u64,
    /// Whether nothing was changed (vacuum --dry-run).
    pub dry_run: bool,
}

/// Merges the small files of each partition into files of about `target_mb` MiB, then writes a
/// checkpoint.
pub async fn optimize(location: &Location, target_mb: u64) -> Result<Maintenance, DeltaError> {
    let table = existing(location).await?;
    let target = NonZeroU64::new(target_mb.max(1) * 1024 * 1024).expect("at least 1 MiB");
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).expect("level 1")))
        .set_column_statistics_enabled(UNIT_COLUMN.into(), EnabledStatistics::Chunk)
        .build();
    let (table, metrics) = table
        .optimize()
        .with_target_size(target)
        .with_writer_properties(properties)
        .await?;
    deltalake::checkpoints::create_checkpoint(&table, None).await?;
    Ok(Maintenance {
        version: table.version().unwrap_or_default(),
        files_removed: metrics.num_files_removed,
        files_added: metrics.num_files_added,
        partitions: metrics.partitions_optimized,
        dry_run: false,
    })
}

/// Deletes the files that no table version of the last `retain_hours` needs, and data files the
/// log never referenced (a killed load's) once they are that old. Below the table's own
/// retention (`delta.deletedFileRetentionDuration`, 7 days unless set) only with
/// `allow_short_retention`, since a reader of an older version could lose its files.
pub async fn vacuum(
    location: &Location,
    retain_hours: u64,
    dry_run: bool,
    allow_short_retention: bool,
) -> Result<Maintenance, DeltaError> {
    let table = existing(location).await?;
    let hours = i64::try_from(retain_hours)
        .map_err(|_| DeltaError::Schema(format!("{retain_hours} hours is too long")))?;
    let (table, metrics) = table
        .vacuum()
        .with_retention_period(chrono::Duration::hours(hours))
        .with_enforce_retention_duration(!allow_short_retention)
        .with_mode(VacuumMode::Full)
        .with_dry_run(dry_run)
        .await?;
    Ok(Maintenance {
        version: table.version().unwrap_or_default(),
        files_removed: metrics.files_deleted.len() as u64,
        files_added: 0,
        partitions: 0,
        dry_run,
    })
}

async fn existing(location: &Location) -> Result<deltalake::DeltaTable, DeltaError> {
    super::open(location).await?.ok_or_else(|| {
        DeltaError::Schema(
            "there is no Delta table there yet; `engine run` the pipeline first".to_owned(),
        )
    })
}
