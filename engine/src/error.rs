//! One error type for the library, so that `main` can pick an exit code and a message without
//! guessing. Each variant says whose fault it is: the user's (a bad pipeline file or bad input,
//! exit 2 or 1, retrying will not help), the outside world's (a disk, a server: exit 1, a later
//! run may succeed), or ours.
//!
//! Messages never carry secrets: values that come from the environment are not echoed back.

use std::path::PathBuf;

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, with enough context to act on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pipeline file (or a command-line argument) is wrong. Exit code 2.
    #[error("{location}: {message}")]
    Config { location: String, message: String },

    /// A source file could not be loaded because of its content (too many rejected lines).
    #[error("{file}: {message}")]
    Input { file: String, message: String },

    /// Reading from a source failed.
    #[error("source `{source_name}`: {message}")]
    Source {
        source_name: String,
        message: String,
        #[source]
        cause: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// Writing to a sink failed; nothing of the file is reported as loaded there.
    #[error("sink `{sink}`: {message}")]
    Sink {
        sink: String,
        message: String,
        #[source]
        cause: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// A transform (a merchant's plugin) failed; the file's load was abandoned.
    #[error("plugin `{plugin}` {context}: {message}")]
    Plugin {
        plugin: String,
        context: String,
        message: String,
    },

    /// The embedded state store failed.
    #[error("state store {}: {source}", path.display())]
    State {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    /// A local file operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// The file is not to be loaded in this run (the source saw it change while fetching it);
    /// a later run takes it. Not a failure.
    #[error("{file}: {reason}")]
    Deferred { file: String, reason: String },

    /// A reconcile could not be done: an input is missing or unreadable, a check failed.
    /// `location` names the reconcile file and the input or check.
    #[error("{location}: {message}")]
    Reconcile { location: String, message: String },

    /// The run was interrupted (SIGINT/SIGTERM) before it finished.
    #[error("interrupted")]
    Interrupted,

    #[error(
        "{file}: {message}\nengine watch stopped: retrying cannot help; fix the cause and start it again"
    )]
    WatchStopped { file: String, message: String },
}

impl Error {
    /// A configuration error at `location` (e.g. `pipelines/daily.toml:12`).
    pub fn config(location: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            location: location.into(),
            message: message.into(),
        }
    }

    /// A local I/O error with what we were doing when it happened.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// The message with every cause under it (`…: Permission denied (os error 13)`), for where
    /// one line must say it all: a file's outcome in the summary and the state store. A cause
    /// whose text the message already holds is not repeated.
    pub fn with_causes(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(inner) = cause {
            let said = inner.to_string();
            if !said.is_empty() && !text.contains(&said) {
                text.push_str(": ");
                text.push_str(&said);
            }
            cause = inner.source();
        }
        text
    }

    /// A sink error without an underlying cause.
    pub fn sink(sink: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Sink {
            sink: sink.into(),
            message: message.into(),
            cause: None,
        }
    }

    /// The process exit code of this error: 2 for bad usage or a bad pipeline
    /// file, 1 for a run that failed.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config { .. } => 2,
            _ => 1,
        }
    }

    /// Whether the same run may succeed later without anyone changing anything
    /// (a server or disk problem rather than a mistake in the file or the data).
    /// A fault that repeating cannot mend: a plugin that traps or refuses its input, a bad
    /// configuration. A long-running watcher stops on these instead of retrying forever.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Error::Plugin { .. } | Error::Config { .. })
    }

    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Source { .. } | Error::Sink { .. } | Error::Io { .. } | Error::State { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_is_kept_in_the_one_line_message_once() {
        let denied = std::io::Error::from_raw_os_error(13);
        let err = Error::Sink {
            sink: "lake".into(),
            message: "cannot put lake/x.parquet in place".into(),
            cause: Some(Box::new(denied)),
        };
        let line = err.with_causes();
        assert!(
            line.starts_with("sink `lake`: cannot put lake/x.parquet in place: "),
            "{line}"
        );
        assert!(line.contains("Permission denied"), "{line}");
        let io = Error::io("cannot write x", std::io::Error::from_raw_os_error(28));
        assert_eq!(
            io.with_causes().matches("No space left").count(),
            1,
            "{}",
            io.with_causes()
        );
    }
}
