//! Strings of the pipeline file that may name environment variables, and secrets.
//!
//! `${NAME}` in such a string is replaced by the environment variable NAME (`${NAME:-fallback}`
//! uses the fallback when NAME is unset or empty). That keeps secrets out of the file; because
//! the substitution happens after parsing, an error message quotes the file as written
//! (`${DATABASE_URL}`), never the secret it stands for. A leaf: it knows no stage.

use crate::toss::RecordKind;
use serde::{Deserialize, Deserializer};
use std::fmt;
use std::path::PathBuf;

/// A string from the pipeline file with `${NAME}` replaced by the environment variable NAME.
#[derive(Clone, PartialEq, Eq)]
pub struct EnvString(String);

impl EnvString {
    /// A value written in code (a default), not read from a file.
    pub fn from_literal(text: &str) -> Self {
        EnvString(text.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn to_path(&self) -> PathBuf {
        PathBuf::from(&self.0)
    }
}

impl fmt::Debug for EnvString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl std::ops::Deref for EnvString {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for EnvString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        expand_env_in(&raw)
            .map(EnvString)
            .map_err(serde::de::Error::custom)
    }
}

pub(crate) const MISSING_VAR: &str = "environment variable `";

/// Replaces every `${NAME}` in `text` by the environment variable NAME.
pub(crate) fn expand_env_in(text: &str) -> Result<String, String> {
    expand_env(text, |name| std::env::var(name).ok())
}

/// Replaces every `${NAME}` in `text` by `lookup(NAME)`, and `${NAME:-fallback}` by the
/// fallback when NAME is unset or empty. A `$` not followed by `{` is kept.
fn expand_env(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!(
                "unclosed `${{` in {text:?}; write `${{NAME}}` to use the environment variable NAME"
            ));
        };
        let reference = &after[..end];
        let (name, fallback) = match reference.split_once(":-") {
            Some((name, fallback)) => (name, Some(fallback)),
            None => (reference, None),
        };
        let valid = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            return Err(format!(
                "`${{{reference}}}` is not a valid environment variable reference \
                 (`${{NAME}}` or `${{NAME:-fallback}}`, NAME of letters, digits and _)"
            ));
        }
        match (
            lookup(name).filter(|value| !value.is_empty() || fallback.is_none()),
            fallback,
        ) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(fallback)) => out.push_str(fallback),
            (None, None) => {
                return Err(format!(
                    "{MISSING_VAR}{name}` is not set; set it before running (export {name}=…) \
                     or remove `${{{name}}}` from the file"
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A secret from the pipeline file (a password, the mertkey): usable through
/// [`Secret::expose`], never printed — its `Debug` is `***`.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(EnvString);

impl Secret {
    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// `value` with every `${NAME}` in its strings replaced, and unset variables read as empty:
/// how a pipeline file is read to look at its state without its secrets (the strings then hold
/// no `${` for [`EnvString`] to expand). A malformed reference is left as it is, for the
/// deserializer to name.
pub(crate) fn expand_leniently(value: &mut toml::Value) {
    match value {
        toml::Value::String(text) => {
            let lookup = |name: &str| Some(std::env::var(name).unwrap_or_default());
            if let Ok(expanded) = expand_env(text, lookup) {
                *text = expanded;
            }
        }
        toml::Value::Array(items) => items.iter_mut().for_each(expand_leniently),
        toml::Value::Table(table) => {
            for (_, item) in table.iter_mut() {
                expand_leniently(item);
            }
        }
        _ => {}
    }
}

/// Deserializes a list of record kinds written as `"AUTH"` / `"REV"`.
pub fn deserialize_kinds<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<RecordKind>>, D::Error> {
    let names: Option<Vec<String>> = Option::deserialize(deserializer)?;
    names
        .map(|names| {
            names
                .iter()
                .map(|name| {
                    name.parse::<RecordKind>().map_err(|_| {
                        serde::de::Error::custom(format!(
                            "unknown kind {name:?} in `kinds`; allowed: \"AUTH\", \"REV\""
                        ))
                    })
                })
                .collect()
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        (name == "HOME_DIR").then(|| "/home/toss".to_owned())
    }

    #[test]
    fn expands_variables_anywhere_in_a_string() {
        assert_eq!(
            expand_env("${HOME_DIR}/lake/${HOME_DIR}", lookup).unwrap(),
            "/home/toss/lake//home/toss"
        );
        assert_eq!(expand_env("price $5", lookup).unwrap(), "price $5");
    }

    #[test]
    fn a_fallback_stands_in_for_an_unset_variable() {
        assert_eq!(expand_env("${NOPE:-demo}", lookup).unwrap(), "demo");
        assert_eq!(
            expand_env("${HOME_DIR:-demo}", lookup).unwrap(),
            "/home/toss"
        );
        assert_eq!(expand_env("${NOPE:-}", lookup).unwrap(), "");
    }

    #[test]
    fn a_missing_variable_is_named() {
        let err = expand_env("${NOPE}", lookup).unwrap_err();
        assert!(err.contains("`NOPE` is not set"), "{err}");
        assert!(expand_env("${bad-name}", lookup).is_err());
        assert!(expand_env("${UNCLOSED", lookup).is_err());
    }
}
