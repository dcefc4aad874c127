//! What makes a re-load exact: each record is identified by a hash of its key columns and
//! compared by a hash of its content (every column but `source_line`, so a record that only
//! moved to another line is unchanged), both over the record's JSON. A record is sent when the
//! receiver has not acknowledged that key with that content before. Within one version of a
//! file, a key that comes back with the same content is a repeat and sent once; with other
//! content the key does not identify records, and the file fails with a hint to set `key`.

use super::WebhookSink;
use crate::error::{Error, Result};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::json::writer::LineDelimited;
use arrow::json::{StructMode, WriterBuilder};
use std::collections::HashMap;

/// The column that says where a record sat in its unit (its format marks it, see
/// [`crate::hints`]): not part of what makes a record "changed".
pub(super) fn position_column(schema: &SchemaRef) -> Option<usize> {
    (0..schema.fields().len()).find(|&index| crate::hints::is_position(schema.field(index)))
}

impl WebhookSink {
    /// The key columns' indices in `schema`, as configured or by default.
    pub(super) fn key_columns(&self, schema: &SchemaRef) -> Result<Vec<usize>> {
        let names: Vec<String> = match &self.key {
            Some(key) => key.clone(),
            None if !self.record_key.is_empty()
                && self
                    .record_key
                    .iter()
                    .all(|column| schema.index_of(column).is_ok()) =>
            {
                self.record_key.clone()
            }
            None => content_columns(schema)
                .into_iter()
                .map(|index| schema.field(index).name().clone())
                .collect(),
        };
        if names.is_empty() {
            return Err(Error::config(
                format!("[[sinks]] {} key", self.name),
                "the records have no column to identify them by; set key = [\"…\"]",
            ));
        }
        names
            .iter()
            .map(|column| {
                schema.index_of(column).map_err(|_| {
                    let columns: Vec<&str> = schema
                        .fields()
                        .iter()
                        .map(|field| field.name().as_str())
                        .collect();
                    Error::config(
                        format!("[[sinks]] {} key", self.name),
                        format!(
                            "column `{column}` is not in the records that reach this sink \
                             (they have: {}); name columns the parser or your transforms \
                             produce",
                            columns.join(", ")
                        ),
                    )
                })
            })
            .collect()
    }
}

/// The columns a record's content is compared by: all but its position.
pub(super) fn content_columns(schema: &SchemaRef) -> Vec<usize> {
    let position = position_column(schema);
    (0..schema.fields().len())
        .filter(|&index| Some(index) != position)
        .collect()
}

/// What the receiver acknowledged of one source file, and what this version of it held so far.
pub(super) struct Changes {
    /// Key hash → content hash, as acknowledged by earlier loads.
    acknowledged: HashMap<u128, u128>,
    /// Key hash → content hash of this version's records so far.
    seen: HashMap<u128, u128>,
    /// Records the receiver has already.
    pub(super) unchanged: u64,
}

/// What to do with one record.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// New, or changed since the receiver acknowledged it.
    Send,
    /// The receiver has it.
    Unchanged,
    /// The same record once more in this version (a transform that repeats rows): sent once.
    Repeated,
    /// The key of an earlier record of this version, with other content.
    Conflict,
}

impl Changes {
    pub(super) fn new(acknowledged: HashMap<u128, u128>) -> Self {
        Changes {
            acknowledged,
            seen: HashMap::new(),
            unchanged: 0,
        }
    }

    /// The verdict on the next record, by its key and content hashes.
    pub(super) fn judge(&mut self, key: u128, content: u128) -> Verdict {
        match self.seen.insert(key, content) {
            None => {}
            Some(earlier) if earlier == content => return Verdict::Repeated,
            Some(_) => return Verdict::Conflict,
        }
        if self.acknowledged.get(&key) == Some(&content) {
            self.unchanged += 1;
            return Verdict::Unchanged;
        }
        Verdict::Send
    }
}

/// Each row of `batch` as one line of JSON: objects with explicit nulls, or arrays
/// (`as_lists`). Timestamps come out as RFC 3339 with their offset, dates as YYYY-MM-DD.
pub(super) fn json_lines(
    batch: &RecordBatch,
    as_lists: bool,
) -> std::result::Result<Vec<u8>, String> {
    let mode = if as_lists {
        StructMode::ListOnly
    } else {
        StructMode::ObjectOnly
    };
    let mut writer = WriterBuilder::new()
        .with_explicit_nulls(true)
        .with_struct_mode(mode)
        .build::<_, LineDelimited>(Vec::with_capacity(batch.num_rows() * 256));
    writer.write(batch).map_err(|err| err.to_string())?;
    writer.finish().map_err(|err| err.to_string())?;
    Ok(writer.into_inner())
}

/// The `rows` lines of `json_lines`' output, without their line ends.
pub(super) fn lines(json: &[u8], rows: usize) -> std::result::Result<Vec<&[u8]>, String> {
    let lines: Vec<&[u8]> = json
        .split(|&byte| byte == b'\n')
        .filter(|line| !line.is_empty())
        .collect();
    if lines.len() == rows {
        Ok(lines)
    } else {
        Err(format!(
            "the JSON encoder gave {} lines for {rows} rows",
            lines.len()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::toss::toss_schema;
    use crate::sinks::webhook::WebhookSinkConfig;
    use crate::sinks::{LoadUnit, SinkContext};
    use arrow::array::{
        ArrayRef, BooleanArray, Date32Array, Int64Array, StringArray, TimestampMicrosecondArray,
    };
    use std::sync::Arc;
    use xxhash_rust::xxh3::xxh3_128;

    /// Two Toss records: one with every field, one with the nullable fields empty.
    fn toss_batch(status: [&str; 2], lines: [i64; 2]) -> RecordBatch {
        let text = |values: [Option<&str>; 2]| -> ArrayRef {
            Arc::new(StringArray::from(values.to_vec()))
        };
        // 2007-07-06 = 13700 days after 1970-01-01; 23:59:27 KST = 14:59:27 UTC.
        let at = 1_183_733_967_000_000;
        RecordBatch::try_new(
            toss_schema(),
            vec![
                text([Some("AUTH"), Some("AUTH")]),
                Arc::new(Date32Array::from(vec![13_700, 13_700])),
                text([Some("toss"), Some("toss")]),
                text([Some("SC0010"), Some("SC0030")]),
                text([Some("toss2007070623592792192"), Some("toss2")]),
                text([Some("Toss_1"), Some("Toss_2")]),
                text([Some("11100"), None]),
                text([Some("국민"), None]),
                text([Some("uytr120"), None]),
                Arc::new(Int64Array::from(vec![15_000, 91_000])),
                Arc::new(BooleanArray::from(vec![false, true])),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![at, at + 1_500_000])
                        .with_timezone("+09:00"),
                ),
                text([Some("30017594"), Some("0")]),
                text([Some(status[0]), Some(status[1])]),
                text([
                    Some("toss_AUTH_20070706.dat"),
                    Some("toss_AUTH_20070706.dat"),
                ]),
                Arc::new(Int64Array::from(lines.to_vec())),
            ],
        )
        .unwrap()
    }

    #[test]
    fn records_are_json_objects_with_rfc3339_times_dates_and_explicit_nulls() {
        let json = json_lines(&toss_batch(["10", "10"], [1, 2]), false).unwrap();
        let rows = lines(&json, 2).unwrap();
        assert_eq!(
            std::str::from_utf8(rows[0]).unwrap(),
            r#"{"record_kind":"AUTH","trxdate":"2007-07-06","mid":"toss","paytype":"SC0010","transaction":"toss2007070623592792192","oid":"Toss_1","financecode":"11100","financename":"국민","buyerid":"uytr120","amount":15000,"useescrow":false,"occurred_at":"2007-07-06T23:59:27+09:00","authnumber":"30017594","status":"10","source_file":"toss_AUTH_20070706.dat","source_line":1}"#
        );
        let second: serde_json::Value = serde_json::from_slice(rows[1]).unwrap();
        assert_eq!(second["financecode"], serde_json::Value::Null);
        assert_eq!(second["buyerid"], serde_json::Value::Null);
        assert!(second.as_object().unwrap().contains_key("financename"));
        assert_eq!(second["occurred_at"], "2007-07-06T23:59:28.500+09:00");
        assert_eq!(second["useescrow"], true);
    }

    #[test]
    fn a_record_is_sent_unless_the_receiver_has_it() {
        let mut changes = Changes::new(HashMap::from([(1, 10), (2, 20)]));
        assert_eq!(changes.judge(1, 10), Verdict::Unchanged);
        assert_eq!(changes.judge(2, 21), Verdict::Send);
        assert_eq!(changes.judge(3, 30), Verdict::Send);
        assert_eq!(changes.judge(3, 30), Verdict::Repeated);
        assert_eq!(changes.judge(3, 31), Verdict::Conflict);
        assert_eq!(changes.unchanged, 1);
    }

    fn sink(state_dir: &std::path::Path, extra: &str) -> WebhookSink {
        let config: WebhookSinkConfig = toml::from_str(&format!(
            "url = \"http://127.0.0.1:9/hook\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n{extra}"
        ))
        .unwrap();
        config
            .build_sink(
                "webhook".into(),
                &SinkContext {
                    pipeline: "daily",
                    state_dir,
                    record_key: &crate::parser::toss::RECORD_KEY.map(String::from),
                },
            )
            .unwrap()
    }

    fn unit() -> LoadUnit {
        let name = crate::toss::TossFileName::parse("toss_AUTH_20070706.dat").unwrap();
        crate::sources::toss_file_unit(&name, name.file_name(), Default::default())
    }

    /// How many records a writer would send for `batch`, once `acknowledged` was recorded.
    fn pending(batch: &RecordBatch, acknowledged: &[(u128, u128)]) -> u64 {
        let dir = tempfile::tempdir().unwrap();
        let sink = sink(dir.path(), "");
        super::super::acks::Acknowledgements::open(&sink.memory)
            .unwrap()
            .record(&sink.sink_id, "toss_AUTH_20070706.dat", acknowledged)
            .unwrap();
        let mut writer = sink.writer(&unit(), &toss_schema()).unwrap();
        writer.keep(batch).unwrap();
        writer.pending
    }

    #[test]
    fn only_new_or_changed_records_are_spooled() {
        let batch = toss_batch(["10", "10"], [1, 2]);
        assert_eq!(pending(&batch, &[]), 2);

        // What the first load would have acknowledged.
        let hashes = hashes_of(&batch);
        assert_eq!(
            pending(&batch, &hashes),
            0,
            "unchanged records are not sent"
        );
        let moved = toss_batch(["10", "10"], [7, 9]);
        assert_eq!(
            pending(&moved, &hashes),
            0,
            "a record that only moved line is unchanged"
        );
        let changed = toss_batch(["10", "11"], [1, 2]);
        assert_eq!(pending(&changed, &hashes), 1, "the changed status is sent");
        assert_eq!(pending(&batch, &hashes[..1]), 1, "the new record is sent");
    }

    fn hashes_of(batch: &RecordBatch) -> Vec<(u128, u128)> {
        let keys = json_lines(&batch.project(&[0, 1, 2, 3, 4, 5]).unwrap(), true).unwrap();
        let content = json_lines(
            &batch
                .project(&(0..batch.num_columns() - 1).collect::<Vec<_>>())
                .unwrap(),
            false,
        )
        .unwrap();
        lines(&keys, 2)
            .unwrap()
            .into_iter()
            .zip(lines(&content, 2).unwrap())
            .map(|(key, content)| (xxh3_128(key), xxh3_128(content)))
            .collect()
    }

    #[test]
    fn a_key_column_the_records_lack_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let sink = sink(dir.path(), "key = [\"transaction\", \"order_id\"]");
        let message = sink
            .writer(&unit(), &toss_schema())
            .err()
            .unwrap()
            .to_string();
        assert!(message.contains("key"), "{message}");
        assert!(message.contains("`order_id`"), "{message}");
        assert!(message.contains("transaction, oid"), "{message}");
    }

    #[test]
    fn the_same_key_with_other_content_in_one_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let sink = sink(dir.path(), "key = [\"mid\"]");
        let mut writer = sink.writer(&unit(), &toss_schema()).unwrap();
        let message = writer
            .keep(&toss_batch(["10", "10"], [1, 2]))
            .unwrap_err()
            .to_string();
        assert!(message.contains("line 2"), "{message}");
        assert!(message.contains("set `key`"), "{message}");
    }
}
