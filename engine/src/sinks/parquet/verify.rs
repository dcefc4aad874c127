//! Reading back what a committed file holds, for `engine status --verify`: the row count in its
//! footer, fetched as the file's last bytes, so that checking a lake costs two small reads per
//! file however large the files are, and works the same on any [`Destination`].

use super::put::Destination;
use parquet::file::metadata::ParquetMetaDataReader;

/// The footer's last 8 bytes: the metadata's length (u32, little-endian) and `PAR1`.
const FOOTER_TAIL: u64 = 8;

/// The rows the Parquet file at `path` holds by its footer; `None` when there is no such file.
pub(super) fn footer_rows(
    destination: &dyn Destination,
    path: &str,
) -> Result<Option<u64>, String> {
    let Some((size, tail)) = destination
        .tail(path, FOOTER_TAIL)
        .map_err(|err| err.to_string())?
    else {
        return Ok(None);
    };
    if tail.len() < FOOTER_TAIL as usize || &tail[4..] != b"PAR1" {
        return Err(format!("no Parquet footer in its {size} bytes"));
    }
    let metadata_len = u64::from(u32::from_le_bytes(tail[..4].try_into().expect("4 bytes")));
    if metadata_len + FOOTER_TAIL > size {
        return Err(format!("its footer claims {metadata_len} bytes of {size}"));
    }
    let Some((_, footer)) = destination
        .tail(path, metadata_len + FOOTER_TAIL)
        .map_err(|err| err.to_string())?
    else {
        return Ok(None);
    };
    let metadata = ParquetMetaDataReader::decode_metadata(&footer[..metadata_len as usize])
        .map_err(|err| err.to_string())?;
    Ok(Some(metadata.file_metadata().num_rows().max(0) as u64))
}
