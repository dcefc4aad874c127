//! Strings of the pipeline file that may name environment variables, and secrets.
//!
//! `${NAME}` in such a string is replaced by the environment variable NAME (`${NAME:-fallback}`
//! uses the fallback when NAME is unset or empty). That keeps secrets out of the file; because
//! the substitution happens after parsing, an error message quotes the file as written
//! (`${DATABASE_URL}`), never the secret it stands for. A leaf: it knows no stage.
//!
//! Every string the pipeline file holds is expanded the same way, whatever it becomes: text
//! ([`EnvString`]), a value of a closed set (`dates`, `encoding`, `tls`: [`expanded`]), a list
//! (`kinds`, `key`: [`expanded_list`]). A value that does not parse is quoted as written
//! ([`EnvString::as_written_in`]), since what it expanded to may be a secret.
//!
//! A secret ([`Secret`]) written literally in the file, with no `${`, is remembered while the file
//! is read, for the loader to warn about (`take_literal_secrets`): such a file is one copy away
//! from leaking it.

use crate::toss::RecordKind;
use serde::{Deserialize, Deserializer};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A string from the pipeline file with `${NAME}` replaced by the environment variable NAME,
/// and the text as written, for messages.
#[derive(Clone, PartialEq, Eq)]
pub struct EnvString {
    value: String,
    written: String,
}

impl EnvString {
    /// A value written in code (a default), not read from a file.
    pub fn from_literal(text: &str) -> Self {
        EnvString {
            value: text.to_owned(),
            written: text.to_owned(),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The text as the file has it, `${NAME}` and all: what a message may quote.
    pub fn as_written(&self) -> &str {
        &self.written
    }

    pub fn to_path(&self) -> PathBuf {
        PathBuf::from(&self.value)
    }

    /// `message` about this value with the value as written where it quotes what it expanded
    /// to (`"…"`, `'…'` or `` `…` ``).
    pub fn as_written_in(&self, message: String) -> String {
        if self.value == self.written || self.value.trim().is_empty() {
            return message;
        }
        let mut message = message;
        for value in [self.value.as_str(), self.value.trim()] {
            for (open, close) in [("\"", "\""), ("'", "'"), ("`", "`")] {
                message = message.replace(
                    &format!("{open}{value}{close}"),
                    &format!("{open}{}{close}", self.written),
                );
            }
            message = message.replace(&format!("{value:?}"), &format!("{:?}", self.written));
        }
        message
    }

    /// The value parsed as a `T`; an error quotes the text as written.
    pub fn parse<T: FromStr>(&self) -> Result<T, String>
    where
        T::Err: fmt::Display,
    {
        self.value
            .parse()
            .map_err(|err: T::Err| self.as_written_in(err.to_string()))
    }
}

impl fmt::Debug for EnvString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.value, f)
    }
}

impl std::ops::Deref for EnvString {
    type Target = str;
    fn deref(&self) -> &str {
        &self.value
    }
}

impl<'de> Deserialize<'de> for EnvString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let written = String::deserialize(deserializer)?;
        expand_env_in(&written)
            .map(|value| EnvString { value, written })
            .map_err(serde::de::Error::custom)
    }
}

/// A value written as a string (`dates`, `encoding`, `tls`, …), after `${NAME}` expansion; for
/// `deserialize_with`.
pub fn expanded<'de, D: Deserializer<'de>, T: FromStr>(deserializer: D) -> Result<T, D::Error>
where
    T::Err: fmt::Display,
{
    EnvString::deserialize(deserializer)?
        .parse()
        .map_err(serde::de::Error::custom)
}

/// [`expanded`] for a key that may be left out.
pub fn expanded_option<'de, D: Deserializer<'de>, T: FromStr>(
    deserializer: D,
) -> Result<Option<T>, D::Error>
where
    T::Err: fmt::Display,
{
    Option::<EnvString>::deserialize(deserializer)?
        .map(|text| text.parse())
        .transpose()
        .map_err(serde::de::Error::custom)
}

/// A list of strings (column names, variable names), each after `${NAME}` expansion.
pub fn expanded_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let items = Vec::<EnvString>::deserialize(deserializer)?;
    Ok(items.into_iter().map(|item| item.value).collect())
}

/// [`expanded_list`] for a key that may be left out.
pub fn expanded_list_option<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<String>>, D::Error> {
    let items = Option::<Vec<EnvString>>::deserialize(deserializer)?;
    Ok(items.map(|items| items.into_iter().map(|item| item.value).collect()))
}

thread_local! {
    /// The secrets read literally on this thread since [`take_literal_secrets`] last ran.
    static LITERAL_SECRETS: std::cell::RefCell<Vec<String>> = const {
        std::cell::RefCell::new(Vec::new())
    };
}

/// The secrets written literally (no `${`) in what this thread deserialized since the last call,
/// as written; the loader finds their keys and lines to warn about them.
pub(crate) fn take_literal_secrets() -> Vec<String> {
    LITERAL_SECRETS.with(|secrets| std::mem::take(&mut *secrets.borrow_mut()))
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
#[derive(Clone)]
pub struct Secret(EnvString);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = EnvString::deserialize(deserializer)?;
        if !text.written.contains("${") && !text.written.is_empty() {
            LITERAL_SECRETS.with(|secrets| secrets.borrow_mut().push(text.written.clone()));
        }
        Ok(Secret(text))
    }
}

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
    let names: Option<Vec<EnvString>> = Option::deserialize(deserializer)?;
    names
        .map(|names| {
            names
                .iter()
                .map(|name| {
                    name.parse::<RecordKind>().map_err(|_| {
                        serde::de::Error::custom(format!(
                            "unknown kind {:?} in `kinds`; allowed: \"AUTH\", \"REV\"",
                            name.as_written()
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
    fn a_message_quotes_the_value_as_written() {
        let text = EnvString {
            value: "hunter2".to_owned(),
            written: "${PASSWORD}".to_owned(),
        };
        assert_eq!(
            text.as_written_in("unknown kind 'hunter2' and \"hunter2\"".to_owned()),
            "unknown kind '${PASSWORD}' and \"${PASSWORD}\""
        );
        let err = text.parse::<RecordKind>().unwrap_err();
        assert!(
            err.contains("'${PASSWORD}'") && !err.contains("hunter2"),
            "{err}"
        );
        let literal = EnvString::from_literal("x");
        assert_eq!(literal.as_written_in("'x'".to_owned()), "'x'");
    }

    #[test]
    fn literal_secrets_are_remembered_and_variables_are_not() {
        take_literal_secrets();
        let _: Secret = toml::Value::String("plain".to_owned()).try_into().unwrap();
        let _: Secret = toml::Value::String("${ENGINE_TEST_SURELY_UNSET:-x}".to_owned())
            .try_into()
            .unwrap();
        assert_eq!(take_literal_secrets(), ["plain"]);
        assert!(take_literal_secrets().is_empty());
    }

    #[test]
    fn a_missing_variable_is_named() {
        let err = expand_env("${NOPE}", lookup).unwrap_err();
        assert!(err.contains("`NOPE` is not set"), "{err}");
        assert!(expand_env("${bad-name}", lookup).is_err());
        assert!(expand_env("${UNCLOSED", lookup).is_err());
    }
}
