//! The pipeline file. Its structs are the user reference: every key a user may write is a field
//! here, unknown keys are errors (`deny_unknown_fields`), and an error names the file, the line
//! and the key, and says what is allowed.
//!
//! `${NAME}` in any string value is replaced by the environment variable NAME while the file is
//! read ([`EnvString`]). That keeps secrets out of the file; because the substitution happens
//! after parsing, an error message quotes the file as written (`${DATABASE_URL}`), never the
//! secret it stands for.

use crate::dates::DatesSpec;
use crate::error::{Error, Result};
use crate::parser::{Delimiter, Encoding, RecordKind};
use crate::sinks::SinkConfig;
use crate::sources::SourceConfig;
use crate::transforms::TransformConfig;
use serde::{Deserialize, Deserializer};
use std::fmt;
use std::path::{Path, PathBuf};

/// A whole pipeline file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    pub pipeline: PipelineSection,
    pub source: SourceConfig,
    #[serde(default)]
    pub parser: ParserConfig,
    /// Applied in order between the parser and the sinks.
    #[serde(default)]
    pub transforms: Vec<TransformConfig>,
    pub sinks: Vec<SinkConfig>,
}

/// `[pipeline]`: what the run is called, which dates it loads, where it keeps its state.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSection {
    /// Names the state and the rejects of this pipeline.
    pub name: EnvString,
    /// Business dates a plain `engine run` loads (Korea time).
    #[serde(default = "default_dates")]
    pub dates: DatesSpec,
    /// Checkpoints and rejects live here.
    #[serde(default = "default_state_dir")]
    pub state_dir: EnvString,
    /// When `engine watch` wakes, as a cron expression in Korea time (`min hour dom mon dow`,
    /// or with seconds first); default Toss's schedule: minutes 05, 25 and 45 plus `lag_minutes`.
    #[serde(default)]
    pub schedule: Option<String>,
    /// Minutes `engine watch` waits after Toss's upload times before it looks (default 2).
    #[serde(default = "default_lag_minutes")]
    pub lag_minutes: u32,
}

fn default_lag_minutes() -> u32 {
    2
}

fn default_dates() -> DatesSpec {
    DatesSpec::Yesterday
}

fn default_state_dir() -> EnvString {
    EnvString(".engine".to_owned())
}

/// `[parser]`: how the Toss records are read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParserConfig {
    /// Only `"toss"` exists.
    #[serde(rename = "type", default)]
    pub kind: ParserKind,
    #[serde(default = "default_delimiter")]
    pub delimiter: Delimiter,
    #[serde(default = "default_encoding")]
    pub encoding: Encoding,
    /// More rejected lines than this in one file fails that file's load.
    #[serde(default = "default_max_rejects")]
    pub max_rejects: u64,
    /// Rows per Arrow record batch.
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
}

impl Default for ParserConfig {
    fn default() -> Self {
        ParserConfig {
            kind: ParserKind::Toss,
            delimiter: default_delimiter(),
            encoding: default_encoding(),
            max_rejects: default_max_rejects(),
            batch_rows: default_batch_rows(),
        }
    }
}

fn default_delimiter() -> Delimiter {
    Delimiter::Auto
}
fn default_encoding() -> Encoding {
    Encoding::Auto
}
fn default_max_rejects() -> u64 {
    100
}
fn default_batch_rows() -> usize {
    crate::parser::ParserOptions::DEFAULT_BATCH_ROWS
}

/// The parsers the engine has.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParserKind {
    #[default]
    Toss,
}

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

thread_local! {
    /// Set while a pipeline file is read only to find its state (`engine status`): a missing
    /// variable then reads as empty, so looking at a pipeline needs none of its secrets.
    static MISSING_ENV_IS_EMPTY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl<'de> Deserialize<'de> for EnvString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        let lenient = MISSING_ENV_IS_EMPTY.with(std::cell::Cell::get);
        expand_env(&raw, |name| {
            std::env::var(name)
                .ok()
                .or_else(|| lenient.then(String::new))
        })
        .map(EnvString)
        .map_err(serde::de::Error::custom)
    }
}

const MISSING_VAR: &str = "environment variable `";

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

impl PipelineConfig {
    /// Reads and checks a pipeline file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|err| {
            Error::config(
                path.display().to_string(),
                format!("cannot read the pipeline file: {err}"),
            )
        })?;
        Self::parse(&text, path)
    }

    /// Reads a pipeline file to look at its state, not to run it: environment variables it
    /// names may be unset (they read as empty), so no secret is needed.
    pub fn load_for_status(path: &Path) -> Result<Self> {
        MISSING_ENV_IS_EMPTY.with(|flag| flag.set(true));
        let loaded = Self::load(path);
        MISSING_ENV_IS_EMPTY.with(|flag| flag.set(false));
        loaded
    }

    /// Parses pipeline text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let config: PipelineConfig =
            toml::from_str(text).map_err(|err| located_error(path, text, &err))?;
        config.check(path)?;
        Ok(config)
    }

    /// Rules that the types alone cannot express.
    fn check(&self, path: &Path) -> Result<()> {
        let at = |key: &str| format!("{}: {key}", path.display());
        let name = self.pipeline.name.as_str();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            || name.starts_with('.')
        {
            return Err(Error::config(
                at("[pipeline] name"),
                format!(
                    "{name:?} cannot name a pipeline: use letters, digits, '_', '-' and '.' \
                     (it names folders under state_dir)"
                ),
            ));
        }
        if self.sinks.is_empty() {
            return Err(Error::config(
                at("sinks"),
                "the pipeline has no sink; add at least one [[sinks]] table (e.g. type = \"parquet\")",
            ));
        }
        if self.parser.batch_rows == 0 {
            return Err(Error::config(
                at("[parser] batch_rows"),
                "batch_rows must be at least 1 (default 32768)",
            ));
        }
        Ok(())
    }
}

/// Turns a toml error into `file:line:column: message`, pointing at the offending key's own line
/// where toml only knew the table it sits in.
fn located_error(path: &Path, text: &str, err: &toml::de::Error) -> Error {
    let message = err.message().trim().to_owned();
    let mut offset = err.span().map(|span| span.start).unwrap_or(0);
    if let Some(needle_line) = find_key_line(text, offset, &message) {
        offset = needle_line;
    }
    let (line, column) = line_and_column(text, offset);
    let source_line = text.lines().nth(line - 1).unwrap_or("").trim_end();
    Error::config(
        format!("{}:{line}:{column}", path.display()),
        format!("{message}\n  {line} | {source_line}"),
    )
}

/// For "unknown field `x`" and missing environment variables, toml points at the table header;
/// find the line inside that table that holds the key or the `${NAME}`.
fn find_key_line(text: &str, table_start: usize, message: &str) -> Option<usize> {
    let quoted = message.split('`').nth(1)?;
    let looking_for_var = message.starts_with(MISSING_VAR);
    if !looking_for_var && !message.starts_with("unknown field") {
        return None;
    }
    let mut offset = table_start;
    for (index, line) in text[table_start..].split_inclusive('\n').enumerate() {
        let trimmed = line.trim_start();
        // A key belongs to the table toml pointed at; a `${NAME}` may sit in a later table of
        // it (`[[sinks]]` points at the first sink, `[sinks.headers]` follows its sink).
        if index > 0 && trimmed.starts_with('[') && !looking_for_var {
            break;
        }
        let hit = if looking_for_var {
            line.contains(&format!("${{{quoted}}}"))
        } else {
            trimmed
                .strip_prefix(quoted)
                .is_some_and(|after| after.trim_start().starts_with('='))
        };
        if hit {
            return Some(offset + (line.len() - trimmed.len()));
        }
        offset += line.len();
    }
    None
}

fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    (line, column)
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

    const VALID: &str = r#"
[pipeline]
name = "daily"
dates = "all"

[source]
type = "dir"
path = "inbox"

[[sinks]]
type = "parquet"
path = "lake"
"#;

    #[test]
    fn a_minimal_file_gets_the_documented_defaults() {
        let config = PipelineConfig::parse(VALID, Path::new("p.toml")).unwrap();
        assert_eq!(config.pipeline.name.as_str(), "daily");
        assert_eq!(config.pipeline.state_dir.as_str(), ".engine");
        assert_eq!(config.parser.max_rejects, 100);
        assert_eq!(config.parser.batch_rows, 32_768);
        assert_eq!(config.sinks.len(), 1);
    }

    #[test]
    fn an_unknown_key_points_at_its_own_line() {
        let text = VALID.replace("path = \"inbox\"", "path = \"inbox\"\npaht = \"x\"");
        let err = PipelineConfig::parse(&text, Path::new("p.toml")).unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("p.toml:9:1: unknown field `paht`"),
            "{message}"
        );
        assert!(message.contains("expected"), "{message}");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn a_missing_environment_variable_points_at_its_line() {
        let text = VALID.replace("\"lake\"", "\"${ENGINE_TEST_SURELY_UNSET}\"");
        let message = PipelineConfig::parse(&text, Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(message.starts_with("p.toml:12:"), "{message}");
        assert!(
            message.contains("`ENGINE_TEST_SURELY_UNSET` is not set"),
            "{message}"
        );
    }

    #[test]
    fn a_missing_variable_in_a_later_sink_points_at_its_line() {
        let text = format!(
            "{VALID}\n[[sinks]]\ntype = \"webhook\"\nurl = \"http://h/x\"\n\
             secret = \"${{ENGINE_TEST_SURELY_UNSET}}\"\n"
        );
        let message = PipelineConfig::parse(&text, Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(message.starts_with("p.toml:17:1:"), "{message}");
    }

    #[test]
    fn a_bad_dates_value_lists_the_allowed_forms() {
        let text = VALID.replace("\"all\"", "\"last week\"");
        let message = PipelineConfig::parse(&text, Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(message.starts_with("p.toml:4:"), "{message}");
        assert!(message.contains("yesterday"), "{message}");
    }

    #[test]
    fn a_pipeline_without_sinks_is_refused() {
        let text = "sinks = []\n".to_owned() + VALID.split("[[sinks]]").next().unwrap();
        let message = PipelineConfig::parse(&text, Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(message.contains("no sink"), "{message}");
    }
}
