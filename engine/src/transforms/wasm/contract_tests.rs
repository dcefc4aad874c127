//! The engine and the SDK hold one plugin contract between them: these tests fail when the
//! batches the engine's parser hands the first plugin stop matching what the SDK tells plugin
//! authors to expect.

use crate::parser::toss::{FileContext, ParserOptions, RecordKind, TossDecoder, toss_schema};
use arrow::array::RecordBatch;

/// Every batch the engine's decoder makes of a sample file (its rejected lines aside).
fn decode_sample(name: &str, record_kind: RecordKind) -> Vec<RecordBatch> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../pipelines/inbox")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    let context = FileContext {
        record_kind,
        trxdate: chrono::NaiveDate::from_ymd_opt(2007, 7, 6).unwrap(),
        source_file: name.to_owned(),
    };
    let decoder = TossDecoder::new(ParserOptions::default(), context);
    crate::parser::BatchReader::new(bytes.as_slice(), Box::new(decoder), name)
        .filter_map(|decoded| match decoded.unwrap() {
            crate::parser::Decoded::Batch(batch) => Some(batch),
            crate::parser::Decoded::Rejects(_) => None,
        })
        .collect()
}

#[test]
fn the_parsers_batches_have_the_sdks_toss_schema() {
    let sdk_schema = toss_etl_sdk::toss::schema();
    assert_eq!(toss_schema(), sdk_schema);
    for (name, kind) in [
        ("toss_AUTH_20070706.dat", RecordKind::Auth),
        ("toss_REV_20070706.dat", RecordKind::Rev),
    ] {
        let batches = decode_sample(name, kind);
        assert!(
            batches.iter().map(RecordBatch::num_rows).sum::<usize>() > 0,
            "{name}"
        );
        for batch in &batches {
            // Names, types, nullability, order and metadata, as a plugin receives them.
            assert_eq!(batch.schema(), sdk_schema, "{name}");
        }
        // A test batch an author builds with the SDK has that schema too.
        let built = toss_etl_sdk::toss::batch(&[toss_etl_sdk::toss::Row::auth("o", 1)]);
        assert_eq!(built.schema(), batches[0].schema());
    }
}

/// The engine frames the plugin boundary with the SDK's code; this checks the bytes agree both
/// ways on a batch the parser really made, and that both refuse what the contract forbids.
#[test]
fn the_engine_and_the_sdk_agree_on_the_ipc_framing() {
    use super::ipc;
    let parsed = decode_sample("toss_AUTH_20070706.dat", RecordKind::Auth);
    let empty = RecordBatch::new_empty(toss_schema());
    for batch in parsed.iter().chain([&empty]) {
        // Engine → plugin: what the engine sends, the SDK reads back unchanged.
        let sent = ipc::encode(batch).unwrap();
        assert_eq!(&toss_etl_sdk::ipc::decode(&sent).unwrap(), batch);
        // Plugin → engine: what the SDK answers, the engine reads back unchanged.
        let answered = toss_etl_sdk::ipc::encode(batch).unwrap();
        assert_eq!(&ipc::decode(answered.clone()).unwrap(), batch);
        // One framing: the same batch gives the same bytes on both sides.
        assert_eq!(sent, answered);
    }
    // Two streams back to back are not one stream, for either side.
    let one = ipc::encode(&parsed[0]).unwrap();
    let two = [one.clone(), one].concat();
    assert!(ipc::decode(two.clone()).is_err());
    assert!(toss_etl_sdk::ipc::decode(&two).is_err());
}
