//! Masks the buyer: replaces `buyerid` with `hex(HMAC-SHA256(key, buyerid))`, 64 lowercase hex
//! digits; a null `buyerid` stays null. The same buyer gets the same mask under the same key,
//! so the lake can still count and join buyers without holding who they are.
//!
//! ```toml
//! [transforms.config]
//! key = "${PII_KEY}"    # required, non-empty; the UTF-8 bytes of the string are the HMAC key
//! ```
//!
//! Keep the key secret (in the environment, not the pipeline file): anyone who has it can test
//! guesses of a buyer id against the masks.

use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use toss_etl_sdk::arrow::array::{Array, StringBuilder};
use toss_etl_sdk::{Config, Error, RecordBatch, Transform, columns};

/// The column this plugin masks.
pub const COLUMN: &str = "buyerid";

/// The masking plugin. Config: `key` (required).
pub struct MaskPii {
    keyed: Hmac<Sha256>,
}

impl MaskPii {
    /// A plugin masking with `key`.
    pub fn with_key(key: &[u8]) -> Result<Self, Error> {
        if key.is_empty() {
            return Err(Error::config(
                "key: must not be empty; set it to a long random secret",
            ));
        }
        let keyed =
            Hmac::<Sha256>::new_from_slice(key).map_err(|e| Error::config(format!("key: {e}")))?;
        Ok(Self { keyed })
    }

    /// The mask of one value: lowercase hex HMAC-SHA256.
    pub fn mask(&self, value: &str) -> String {
        let mut mac = self.keyed.clone();
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut hex = String::with_capacity(digest.len() * 2);
        for byte in digest.iter() {
            const DIGITS: &[u8; 16] = b"0123456789abcdef";
            hex.push(DIGITS[usize::from(byte >> 4)] as char);
            hex.push(DIGITS[usize::from(byte & 0x0f)] as char);
        }
        hex
    }
}

impl Transform for MaskPii {
    fn new(config: Config) -> Result<Self, Error> {
        config.deny_unknown_keys(&["key"])?;
        let key = config.require_str("key")?;
        Self::with_key(key.as_bytes())
    }

    fn transform(&mut self, batch: RecordBatch) -> Result<RecordBatch, Error> {
        let buyer = columns::string(&batch, COLUMN)?;
        let rows = batch.num_rows();
        let mut masked = StringBuilder::with_capacity(rows, (rows - buyer.null_count()) * 64);
        for value in buyer.iter() {
            masked.append_option(value.map(|v| self.mask(v)));
        }
        let nullable = batch
            .schema_ref()
            .field_with_name(COLUMN)
            .map(|f| f.is_nullable())
            .unwrap_or(true);
        columns::replace(&batch, COLUMN, Arc::new(masked.finish()), nullable)
    }
}

toss_etl_sdk::export_transform!(MaskPii);

#[cfg(test)]
mod tests {
    use toss_etl_sdk::serde_json::json;
    use toss_etl_sdk::toss::{self, Row};
    use toss_etl_sdk::{Instance, ipc};

    use super::*;

    #[test]
    fn rfc_4231_test_case_2() {
        let p = MaskPii::with_key(b"Jefe").unwrap();
        assert_eq!(
            p.mask("what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn masks_buyerid_and_keeps_nulls() {
        let mut p = MaskPii::new(Config::from_value(json!({"key": "Jefe"})).unwrap()).unwrap();
        let input = toss::batch(&[
            Row::auth("a", 1).buyerid(Some("what do ya want for nothing?")),
            Row::auth("b", 2).buyerid(None),
            Row::rev("c", 3).buyerid(Some("what do ya want for nothing?")),
            Row::rev("d", 4).buyerid(Some("")),
        ]);
        let out = p.transform(input.clone()).unwrap();
        assert_eq!(out.schema(), input.schema());
        let masked: Vec<Option<&str>> = columns::string(&out, COLUMN).unwrap().iter().collect();
        let jefe = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(masked[0], Some(jefe));
        assert_eq!(masked[1], None);
        assert_eq!(masked[2], Some(jefe));
        // HMAC-SHA256("Jefe", "") — an empty id is still a value, so it is masked.
        assert_eq!(masked[3].unwrap().len(), 64);
        assert_ne!(masked[3], Some(jefe));
        // Every other column is untouched.
        for i in 0..input.num_columns() {
            if input.schema().field(i).name() != COLUMN {
                assert_eq!(out.column(i), input.column(i));
            }
        }
    }

    #[test]
    fn key_is_required() {
        for config in [json!({}), json!({"key": ""}), json!({"key": 5})] {
            let err = MaskPii::new(Config::from_value(config.clone()).unwrap())
                .err()
                .unwrap();
            assert_eq!(err.kind(), "config", "{config}");
            assert!(err.message().starts_with("key: "), "{config}: {err}");
        }
        let err = MaskPii::new(Config::from_value(json!({"key": "k", "salt": "x"})).unwrap())
            .err()
            .unwrap();
        assert!(err.message().contains("salt"), "{err}");
    }

    #[test]
    fn empty_probe_and_engine_path() {
        let mut instance = Instance::<MaskPii>::new();
        assert_eq!(instance.init("{}").unwrap_err().kind(), "config");
        instance.init(r#"{"key": "secret"}"#).unwrap();
        let probe = ipc::encode(&ipc::empty_batch(toss::schema())).unwrap();
        let out = ipc::decode(&instance.transform_ipc(probe).unwrap()).unwrap();
        assert_eq!(out.schema(), toss::schema());
        let rows = ipc::encode(&toss::batch(&[Row::auth("a", 1)])).unwrap();
        let out = ipc::decode(&instance.transform_ipc(rows).unwrap()).unwrap();
        assert_eq!(out.schema(), toss::schema());
        assert_eq!(columns::string(&out, COLUMN).unwrap().value(0).len(), 64);
    }
}
