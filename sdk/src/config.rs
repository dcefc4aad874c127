//! The `[transforms.config]` table a plugin receives in `init`.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::Error;

/// The pipeline's `[transforms.config]` table, as the engine passes it to `init` (a JSON object;
/// empty when the pipeline gives none).
///
/// Read it whole into your own `#[derive(Deserialize)]` struct with [`Config::parse`], or key by
/// key with the `get_*` / `require_*` helpers. Every error is an [`Error::Config`] that names the
/// key, so the merchant knows which line of the pipeline file to fix.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    table: Map<String, Value>,
}

impl Config {
    /// An empty table (what the engine passes when the pipeline has no `[transforms.config]`).
    pub fn empty() -> Self {
        Self::default()
    }

    /// Parses the JSON text the engine passes to `init`. It must be a JSON object.
    pub fn from_json(json: &str) -> Result<Self, Error> {
        let value: Value = serde_json::from_str(json)
            .map_err(|e| Error::config(format!("the config is not valid JSON: {e}")))?;
        Self::from_value(value)
    }

    /// Wraps a JSON value, which must be an object. Handy in tests:
    /// `Config::from_value(serde_json::json!({"fee_rate": 0.03}))`.
    pub fn from_value(value: Value) -> Result<Self, Error> {
        match value {
            Value::Object(table) => Ok(Self { table }),
            Value::Null => Ok(Self::empty()),
            other => Err(Error::config(format!(
                "the config must be a table (JSON object), not {}",
                json_kind(&other)
            ))),
        }
    }

    /// The whole table as JSON.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.table
    }

    /// The whole table as JSON text (what the engine passed).
    pub fn to_json(&self) -> String {
        Value::Object(self.table.clone()).to_string()
    }

    /// True when the table has no keys.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The keys present, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.table.keys().map(String::as_str)
    }

    /// The raw value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.table.get(key)
    }

    /// Deserializes the whole table into `T`. Errors name the key at fault:
    /// `fee_rate: invalid type: string "3%", expected f64`. Use `#[serde(deny_unknown_fields)]`
    /// on `T` to turn typos into errors, and `#[serde(default)]` for optional keys.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let value = Value::Object(self.table.clone());
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." || path.is_empty() {
                Error::config(inner)
            } else {
                Error::config(format!("{path}: {inner}"))
            }
        })
    }

    /// Deserializes one key into `T`; `None` when the key is absent (or `null`).
    pub fn get_as<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        match self.table.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => serde_path_to_error::deserialize(value.clone())
                .map(Some)
                .map_err(|e| {
                    let path = e.path().to_string();
                    let inner = e.into_inner();
                    if path == "." || path.is_empty() {
                        Error::config(format!("{key}: {inner}"))
                    } else {
                        Error::config(format!("{key}.{path}: {inner}"))
                    }
                }),
        }
    }

    /// Like [`Config::get_as`], but an absent key is an error naming it.
    pub fn require_as<T: DeserializeOwned>(&self, key: &str) -> Result<T, Error> {
        self.get_as(key)?.ok_or_else(|| missing(key))
    }

    /// The string at `key`; `None` when absent, an error naming the key when not a string.
    pub fn get_str(&self, key: &str) -> Result<Option<&str>, Error> {
        match self.table.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(wrong_type(key, "a string", other)),
        }
    }

    /// The string at `key`; absent or not a string is an error naming the key.
    pub fn require_str(&self, key: &str) -> Result<&str, Error> {
        self.get_str(key)?.ok_or_else(|| missing(key))
    }

    /// The number at `key` (integers are accepted too); `None` when absent.
    pub fn get_f64(&self, key: &str) -> Result<Option<f64>, Error> {
        match self.table.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_f64()
                .map(Some)
                .ok_or_else(|| Error::config(format!("{key}: {n} is not representable as f64"))),
            Some(other) => Err(wrong_type(key, "a number", other)),
        }
    }

    /// The integer at `key`; `None` when absent, an error for fractions and other types.
    pub fn get_i64(&self, key: &str) -> Result<Option<i64>, Error> {
        match self.table.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| {
                Error::config(format!("{key}: expected an integer (i64), found {n}"))
            }),
            Some(other) => Err(wrong_type(key, "an integer", other)),
        }
    }

    /// The boolean at `key`; `None` when absent.
    pub fn get_bool(&self, key: &str) -> Result<Option<bool>, Error> {
        match self.table.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(wrong_type(key, "true or false", other)),
        }
    }

    /// An error naming every key not in `allowed` (and listing the allowed ones), or `Ok`.
    /// Call it in `new` so that a typo in the pipeline file is never silently ignored.
    pub fn deny_unknown_keys(&self, allowed: &[&str]) -> Result<(), Error> {
        let unknown: Vec<&str> = self.keys().filter(|k| !allowed.contains(k)).collect();
        if unknown.is_empty() {
            return Ok(());
        }
        let allowed = if allowed.is_empty() {
            "none".to_string()
        } else {
            allowed.join(", ")
        };
        Err(Error::config(format!(
            "unknown key{} {}; allowed: {allowed}",
            if unknown.len() == 1 { "" } else { "s" },
            unknown.join(", ")
        )))
    }
}

impl TryFrom<Value> for Config {
    type Error = Error;

    fn try_from(value: Value) -> Result<Self, Error> {
        Self::from_value(value)
    }
}

fn missing(key: &str) -> Error {
    Error::config(format!("{key}: missing; this plugin requires it"))
}

fn wrong_type(key: &str, expected: &str, found: &Value) -> Error {
    Error::config(format!(
        "{key}: expected {expected}, found {} {found}",
        json_kind(found)
    ))
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        #[serde(default)]
        fee_rate: f64,
        #[serde(default)]
        rates: std::collections::BTreeMap<String, f64>,
    }

    #[test]
    fn parse_names_the_bad_key() {
        let config = Config::from_json(r#"{"fee_rate": "3%"}"#).unwrap();
        let err = config.parse::<Settings>().unwrap_err();
        assert_eq!(err.kind(), "config");
        assert!(err.message().starts_with("fee_rate: "), "{err}");

        let config = Config::from_value(json!({"rates": {"SC0010": "x"}})).unwrap();
        let err = config.parse::<Settings>().unwrap_err();
        assert!(err.message().starts_with("rates.SC0010: "), "{err}");

        let config = Config::from_value(json!({"fee_rat": 0.1})).unwrap();
        let err = config.parse::<Settings>().unwrap_err();
        assert!(err.message().contains("fee_rat"), "{err}");
    }

    #[test]
    fn parse_and_defaults() {
        let config = Config::from_json("{}").unwrap();
        assert_eq!(
            config.parse::<Settings>().unwrap(),
            Settings {
                fee_rate: 0.0,
                rates: Default::default()
            }
        );
        let config = Config::from_json(r#"{"fee_rate": 1}"#).unwrap();
        assert_eq!(config.parse::<Settings>().unwrap().fee_rate, 1.0);
    }

    #[test]
    fn helpers() {
        let config =
            Config::from_value(json!({"key": "k", "n": 3, "f": 0.5, "b": true, "z": null}))
                .unwrap();
        assert_eq!(config.get_str("key").unwrap(), Some("k"));
        assert_eq!(config.require_str("key").unwrap(), "k");
        assert_eq!(config.get_str("absent").unwrap(), None);
        assert_eq!(config.get_str("z").unwrap(), None);
        assert!(
            config
                .get_str("n")
                .unwrap_err()
                .message()
                .starts_with("n: ")
        );
        assert!(
            config
                .require_str("absent")
                .unwrap_err()
                .message()
                .starts_with("absent: ")
        );
        assert_eq!(config.get_i64("n").unwrap(), Some(3));
        assert!(config.get_i64("f").is_err());
        assert_eq!(config.get_f64("n").unwrap(), Some(3.0));
        assert_eq!(config.get_f64("f").unwrap(), Some(0.5));
        assert_eq!(config.get_bool("b").unwrap(), Some(true));
        assert_eq!(config.require_as::<u8>("n").unwrap(), 3);
        assert!(
            config
                .get_as::<u8>("key")
                .unwrap_err()
                .message()
                .starts_with("key: ")
        );
        assert!(
            config
                .deny_unknown_keys(&["key", "n", "f", "b", "z"])
                .is_ok()
        );
        let err = config.deny_unknown_keys(&["key"]).unwrap_err();
        assert_eq!(err.message(), "unknown keys b, f, n, z; allowed: key");
    }

    #[test]
    fn not_an_object() {
        assert!(Config::from_json("[1]").is_err());
        assert!(Config::from_json("{").is_err());
        assert!(Config::from_json("null").unwrap().is_empty());
    }
}
