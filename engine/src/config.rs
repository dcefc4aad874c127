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
use crate::parser::ParserConfig;
use crate::sinks::SinkConfig;
use crate::sources::SourceConfig;
use crate::transforms::TransformConfig;
use serde::Deserialize;
use std::path::Path;

use crate::env::EnvString;
use crate::env::MISSING_VAR;

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
    EnvString::from_literal(".engine")
}

impl PipelineConfig {
    /// Reads and checks a pipeline file.
    pub fn load(path: &Path) -> Result<Self> {
        Self::parse(&read_text(path)?, path)
    }

    /// Reads a pipeline file to look at its state, not to run it: environment variables it
    /// names may be unset (they read as empty), so no secret is needed.
    pub fn load_for_status(path: &Path) -> Result<Self> {
        let text = read_text(path)?;
        let mut value: toml::Value =
            toml::from_str(&text).map_err(|err| located_error(path, &text, &err))?;
        crate::env::expand_leniently(&mut value);
        let config: PipelineConfig = value.try_into().map_err(|err: toml::de::Error| {
            Error::config(path.display().to_string(), err.message().trim().to_owned())
        })?;
        config.check(path)?;
        Ok(config)
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
        self.parser.format().check(&at)
    }
}

/// The pipeline file's text.
fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|err| {
        Error::config(
            path.display().to_string(),
            format!("cannot read the pipeline file: {err}"),
        )
    })
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
        assert_eq!(config.parser.format().max_rejects(), 100);
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
    fn status_reads_a_pipeline_without_its_secrets() {
        let text = VALID
            .replace("\"lake\"", "\"${ENGINE_TEST_SURELY_UNSET}\"")
            .replace(
                "dates = \"all\"",
                "dates = \"all\"\nstate_dir = \"${ENGINE_TEST_SURELY_UNSET:-.state}\"",
            );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, &text).unwrap();
        assert!(PipelineConfig::load(&path).is_err());
        let config = PipelineConfig::load_for_status(&path).unwrap();
        assert_eq!(config.pipeline.state_dir.as_str(), ".state");
        assert_eq!(config.sinks.len(), 1);
        // Reading it leniently once leaves nothing lenient behind.
        assert!(PipelineConfig::load(&path).is_err());
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
