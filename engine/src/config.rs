//! The pipeline file. Its structs are the user reference: every key a user may write is a field
//! here, unknown keys are errors (`deny_unknown_fields`), and an error names the file, the line
//! and the key, and says what is allowed.
//!
//! `${NAME}` in any string value is replaced by the environment variable NAME while the file is
//! read ([`EnvString`]). That keeps secrets out of the file; because the substitution happens
//! after parsing, an error message quotes the file as written (`${DATABASE_URL}`), never the
//! secret it stands for.
//!
//! Every error about the file names `file:line:column` and the key: toml's own errors (types,
//! unknown keys, values read as they are parsed) carry their position, and the checks made
//! when the stages are built name a key (`[[sinks]] parquet#2 zstd_level`) that `locate`
//! finds in the text. A secret written literally (no `${`) is warned about at load.

use crate::dates::DatesSpec;
use crate::error::{Error, Result};
use crate::parser::ParserConfig;
use crate::sinks::SinkConfig;
use crate::sources::SourceConfig;
use crate::transforms::TransformConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};

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
    /// Where the file came from and its text, to place errors found after reading it.
    #[serde(skip)]
    origin: Origin,
}

/// A pipeline file's path and text.
#[derive(Default)]
struct Origin {
    path: PathBuf,
    text: String,
}

impl std::fmt::Debug for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.path.fmt(f)
    }
}

/// `[pipeline]`: what the run is called, which dates it loads, where it keeps its state.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSection {
    /// Names the state and the rejects of this pipeline.
    pub name: EnvString,
    /// Business dates a plain `engine run` loads (Korea time).
    #[serde(default = "default_dates", deserialize_with = "crate::env::expanded")]
    pub dates: DatesSpec,
    /// Checkpoints and rejects live here.
    #[serde(default = "default_state_dir")]
    pub state_dir: EnvString,
    /// When `engine watch` wakes, as a cron expression in Korea time (`min hour dom mon dow`,
    /// or with seconds first); default Toss's schedule: minutes 05, 25 and 45 plus `lag_minutes`.
    #[serde(default)]
    pub schedule: Option<EnvString>,
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
        let mut config: PipelineConfig = value.try_into().map_err(|err: toml::de::Error| {
            Error::config(path.display().to_string(), err.message().trim().to_owned())
        })?;
        config.settle_format(&text)?;
        config.origin = Origin {
            path: path.to_owned(),
            text,
        };
        config.check()?;
        Ok(config)
    }

    /// Parses pipeline text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        crate::env::take_literal_secrets();
        let parsed = toml::from_str::<PipelineConfig>(text);
        let literal_secrets = crate::env::take_literal_secrets();
        let mut config = parsed.map_err(|err| located_error(path, text, &err))?;
        config.origin = Origin {
            path: path.to_owned(),
            text: text.to_owned(),
        };
        config
            .settle_format(text)
            .map_err(|err| config.locate(err))?;
        config.check()?;
        warn_about_literal_secrets(path, text, &literal_secrets);
        Ok(config)
    }

    /// `err` placed at `file:line:column` of the key it names, when it is about this file.
    pub fn locate(&self, err: Error) -> Error {
        match err {
            Error::Config { location, message } => {
                let path = self.origin.path.display();
                let location = match locate(&self.origin.text, &location) {
                    Some(offset) => {
                        let (line, column) = line_and_column(&self.origin.text, offset);
                        format!("{path}:{line}:{column}: {location}")
                    }
                    None => format!("{path}: {location}"),
                };
                Error::Config { location, message }
            }
            other => other,
        }
    }

    /// For a source whose records are always of one format (the `toss-api` source's
    /// datasets), reads `[parser]` as that format: the file need not name it.
    fn settle_format(&mut self, text: &str) -> Result<()> {
        let Some(format) = self.source.format() else {
            return Ok(());
        };
        let written = toml::from_str::<toml::Table>(text)
            .ok()
            .and_then(|mut file| file.remove("parser"))
            .and_then(|parser| match parser {
                toml::Value::Table(table) => Some(table),
                _ => None,
            });
        self.parser = ParserConfig::for_source(written, format)?;
        Ok(())
    }

    /// Rules that the types alone cannot express.
    fn check(&self) -> Result<()> {
        self.check_unplaced().map_err(|err| self.locate(err))
    }

    fn check_unplaced(&self) -> Result<()> {
        let at = |key: &str| key.to_owned();
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
                    "{:?} cannot name a pipeline: use letters, digits, '_', '-' and '.' \
                     (it names folders under state_dir)",
                    self.pipeline.name.as_written()
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

/// Warns about each secret the file holds literally (`literal` as written), naming its key and
/// line; the value itself is never logged.
fn warn_about_literal_secrets(path: &Path, text: &str, literal: &[String]) {
    for (line, key) in literal_secret_lines(text, literal) {
        let variable = key.to_ascii_uppercase();
        tracing::warn!(
            "{}:{line}: `{key}` is written in the pipeline file as it is; keep secrets out of \
             the file: write {key} = \"${{{variable}}}\" and set the environment variable \
             {variable}",
            path.display()
        );
    }
}

/// The lines (1-based) and keys of the secret keys whose value is one of `literal`.
fn literal_secret_lines(text: &str, literal: &[String]) -> Vec<(usize, String)> {
    if literal.is_empty() {
        return Vec::new();
    }
    text.lines()
        .enumerate()
        .filter_map(|(index, line)| {
            let (key, value) = line.split_once('=')?;
            let key = key.trim().trim_matches('"');
            let value = value.trim();
            let holds_one = literal.iter().any(|secret| {
                value.contains(secret.as_str())
                    && (matches!(key, "password" | "mertkey" | "secret")
                        || (key == "url" && (secret.contains("password=") || has_password(secret))))
            });
            holds_one.then(|| (index + 1, key.to_owned()))
        })
        .collect()
}

/// Whether a connection URL carries a password (`scheme://user:password@host`).
fn has_password(url: &str) -> bool {
    url.split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .is_some_and(|(user_info, _)| user_info.contains(':'))
}

/// The offset of the key a build error names (`[source] settle_secs`, `[[sinks]] parquet#2
/// zstd_level`, `[[transforms]] mapping module`, `[pipeline] name`), or of its table's header
/// when the key is not written (a default); `None` for a location that is not a table's key.
fn locate(text: &str, location: &str) -> Option<usize> {
    let (header, rest) = location.split_once(' ')?;
    let (table, key) = match header {
        "[[sinks]]" | "[[transforms]]" => {
            let (name, key) = rest.split_once(' ').unwrap_or((rest, ""));
            (Some(name), key)
        }
        "[source]" | "[pipeline]" | "[parser]" => (None, rest),
        _ => return None,
    };
    let key = key.split_whitespace().next().unwrap_or("");
    // The tables of the file: header, offset of its first line, its lines with their offsets.
    type Table<'a> = (&'a str, usize, Vec<(usize, &'a str)>);
    let mut tables: Vec<Table> = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            tables.push((
                trimmed.split('#').next().unwrap_or("").trim(),
                offset,
                Vec::new(),
            ));
        } else if let Some((_, _, lines)) = tables.last_mut() {
            lines.push((
                offset + line.len() - line.trim_start().len(),
                line.trim_start(),
            ));
        }
        offset += line.len();
    }
    let value_of = |lines: &[(usize, &str)], wanted: &str| {
        lines.iter().find_map(|(_, line)| {
            let (name, value) = line.split_once('=')?;
            (name.trim() == wanted).then(|| value.trim().trim_matches(['"', '\'']).to_owned())
        })
    };
    let mut candidates = tables.iter().filter(|(name, _, _)| *name == header);
    let (_, start, lines) = match (header, table) {
        ("[[sinks]]", Some(name)) => {
            let (kind, nth) = match name.split_once('#') {
                Some((kind, nth)) => (kind, nth.parse::<usize>().ok()?),
                None => (name, 1),
            };
            candidates
                .filter(|(_, _, lines)| value_of(lines, "type").as_deref() == Some(kind))
                .nth(nth - 1)?
        }
        ("[[transforms]]", Some(name)) => {
            candidates.find(|(_, _, lines)| value_of(lines, "name").as_deref() == Some(name))?
        }
        _ => candidates.next()?,
    };
    let at_key = lines.iter().find_map(|(offset, line)| {
        let (name, _) = line.split_once('=')?;
        (name.trim() == key).then_some(*offset)
    });
    Some(at_key.unwrap_or(*start))
}

/// The pipeline file's text.
pub(crate) fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|err| {
        Error::config(
            path.display().to_string(),
            format!("cannot read the pipeline file: {err}"),
        )
    })
}

/// Turns a toml error into `file:line:column: message`, pointing at the offending key's own line
/// where toml only knew the table it sits in.
pub(crate) fn located_error(path: &Path, text: &str, err: &toml::de::Error) -> Error {
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
    let looking_for_var = message.starts_with(MISSING_VAR);
    if !looking_for_var && !message.starts_with("unknown field") {
        return find_quoted_line(text, table_start, message);
    }
    let quoted = message.split('`').nth(1)?;
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

/// For a value refused while a table read as a whole (a source, a sink, the parser) was
/// deserialized, toml points at the table's header; the message quotes the value or the key as
/// written (`"…"`, `'…'`, `` `…` ``): find the first line of that table holding one of them.
fn find_quoted_line(text: &str, table_start: usize, message: &str) -> Option<usize> {
    if !text[table_start..].starts_with('[') {
        return None;
    }
    let table: Vec<(usize, &str)> = text[table_start..]
        .split_inclusive('\n')
        .scan(table_start, |offset, line| {
            let start = *offset;
            *offset += line.len();
            Some((start, line))
        })
        .enumerate()
        .take_while(|(index, (_, line))| *index == 0 || !line.trim_start().starts_with('['))
        .map(|(_, line)| line)
        .skip(1)
        .collect();
    let snippets = ['"', '\'', '`'].into_iter().flat_map(|quote| {
        message
            .split(quote)
            .skip(1)
            .step_by(2)
            .filter(|snippet| snippet.len() >= 3)
    });
    snippets.into_iter().find_map(|snippet| {
        table.iter().find_map(|(offset, line)| {
            let trimmed = line.trim_start();
            (trimmed.contains('=') && trimmed.contains(snippet))
                .then(|| offset + (line.len() - trimmed.len()))
        })
    })
}

pub(crate) fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
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

    /// Every key whose value is written as a string expands `${NAME}`, whatever it becomes.
    #[test]
    fn every_string_key_expands_variables() {
        let unset = "ENGINE_TEST_SURELY_UNSET";
        let text = format!(
            r#"
[pipeline]
name = "${{{unset}:-daily}}"
dates = "${{{unset}:-2024-01-02}}"
schedule = "${{{unset}:-7 * * * *}}"

[source]
type = "ftp"
host = "h"
user = "u"
password = "${{{unset}:-pw}}"
tls = "${{{unset}:-explicit}}"
mids = ["${{{unset}:-toss}}"]
kinds = ["${{{unset}:-REV}}"]

[parser]
encoding = "${{{unset}:-euc-kr}}"
delimiter = "${{{unset}:-,}}"

[[transforms]]
type = "wasm"
name = "m"
module = "m.wasm"
allow_env = ["${{{unset}:-HOME}}"]

[[sinks]]
type = "postgres"
url = "${{{unset}:-host=h user=u}}"
table = "t"
sslmode = "${{{unset}:-require}}"
key = ["${{{unset}:-oid}}"]

[[sinks]]
type = "webhook"
url = "http://h/x"
secret = "${{{unset}:-s}}"
key = ["${{{unset}:-transaction}}"]
"#
        );
        let config = PipelineConfig::parse(&text, Path::new("p.toml")).unwrap();
        let debug = format!("{config:?}");
        for expanded in [
            "Range { from: 2024-01-02, to: 2024-01-02 }",
            "schedule: Some(\"7 * * * *\")",
            "tls: Explicit",
            "kinds: Some([Rev])",
            "encoding: EucKr",
            "delimiter: Comma",
            "allow_env: [\"HOME\"]",
            "sslmode: Some(Require)",
            "key: Some([\"oid\"])",
            "key: Some([\"transaction\"])",
        ] {
            assert!(debug.contains(expanded), "{expanded} not in {debug}");
        }
        assert!(!debug.contains("${"), "{debug}");
    }

    #[test]
    fn a_value_that_does_not_parse_is_quoted_as_written() {
        for (key, written) in [
            ("dates", "\"${ENGINE_TEST_SURELY_UNSET:-last week}\""),
            ("encoding", "\"${ENGINE_TEST_SURELY_UNSET:-latin1}\""),
            ("name", "\"${ENGINE_TEST_SURELY_UNSET:-a b}\""),
        ] {
            let text = match key {
                "encoding" => format!("{VALID}\n[parser]\nencoding = {written}\n"),
                "dates" => VALID.replace("\"all\"", written),
                _ => VALID.replace("\"daily\"", written),
            };
            let message = PipelineConfig::parse(&text, Path::new("p.toml"))
                .unwrap_err()
                .to_string();
            assert!(message.starts_with("p.toml:"), "{key}: {message}");
            assert!(message.contains(written), "{key}: {message}");
            let bare = written.split(":-").nth(1).unwrap().trim_end_matches("}\"");
            assert!(
                !message.contains(&format!("\"{bare}\""))
                    && !message.contains(&format!("'{bare}'")),
                "{key}: the expanded value is quoted: {message}"
            );
        }
    }

    #[test]
    fn kinds_and_tls_are_refused_as_written() {
        let text = VALID.replace(
            "path = \"inbox\"",
            "path = \"inbox\"\nkinds = [\"${ENGINE_TEST_SURELY_UNSET:-APPROVALS}\"]",
        );
        let message = PipelineConfig::parse(&text, Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(message.starts_with("p.toml:9:"), "{message}");
        assert!(
            message.contains("\"${ENGINE_TEST_SURELY_UNSET:-APPROVALS}\""),
            "{message}"
        );

        let text = VALID.replace(
            "type = \"dir\"\npath = \"inbox\"",
            "type = \"ftp\"\nhost = \"h\"\nuser = \"u\"\npassword = \"${P:-p}\"\n\
             tls = \"${ENGINE_TEST_SURELY_UNSET:-ssl}\"",
        );
        let message = PipelineConfig::parse(&text, Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(message.starts_with("p.toml:11:"), "{message}");
        assert!(
            message.contains("unknown tls \"${ENGINE_TEST_SURELY_UNSET:-ssl}\""),
            "{message}"
        );
    }

    #[test]
    fn an_empty_mids_list_is_refused_at_its_line() {
        let text = VALID.replace("path = \"inbox\"", "path = \"inbox\"\nmids = []");
        let err = PipelineConfig::parse(&text, Path::new("p.toml")).unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("p.toml:9:"), "{message}");
        assert!(message.contains("remove the key"), "{message}");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn a_build_error_is_placed_at_its_key() {
        let text = format!(
            "{VALID}\n[[sinks]]\ntype = \"webhook\"\nurl = \"u\"\nsecret = \"${{X:-s}}\"\n\n\
             [[sinks]]\ntype = \"parquet\"\npath = \"b\"\nzstd_level = 0\n\n\
             [[transforms]]\ntype = \"wasm\"\nname = \"mapping\"\nmodule = \"m.wasm\"\n"
        );
        let config = PipelineConfig::parse(&text, Path::new("p.toml")).unwrap();
        let placed = |location: &str| config.locate(Error::config(location, "why")).to_string();
        assert_eq!(
            placed("[[sinks]] parquet#2 zstd_level"),
            "p.toml:22:1: [[sinks]] parquet#2 zstd_level: why"
        );
        assert_eq!(
            placed("[[sinks]] parquet row_group_rows"),
            "p.toml:10:1: [[sinks]] parquet row_group_rows: why"
        );
        assert_eq!(
            placed("[[sinks]] webhook url"),
            "p.toml:16:1: [[sinks]] webhook url: why"
        );
        assert_eq!(
            placed("[source] settle_secs"),
            "p.toml:6:1: [source] settle_secs: why"
        );
        assert_eq!(
            placed("[[transforms]] mapping deadline_ms"),
            "p.toml:24:1: [[transforms]] mapping deadline_ms: why"
        );
        assert_eq!(placed("--sdk"), "p.toml: --sdk: why");
    }

    #[test]
    fn literal_secrets_are_found_at_their_keys_lines() {
        let text = "path = \"lake/s\"\nsecret = \"s\"\nurl = \"postgresql://u:pw@h/db\"\n\
                    url = \"host=h user=u\"\npassword = \"${P}\"\n";
        let literal = ["s", "postgresql://u:pw@h/db", "host=h user=u"].map(String::from);
        assert_eq!(
            literal_secret_lines(text, &literal),
            [(2, "secret".to_owned()), (3, "url".to_owned())]
        );
        assert!(literal_secret_lines(text, &[]).is_empty());
    }

    #[test]
    fn literal_secrets_are_recognised_by_key() {
        assert!(has_password("postgresql://u:pw@h/db"));
        assert!(!has_password("postgresql://u@h/db"));
        assert!(!has_password("host=h user=u"));
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
