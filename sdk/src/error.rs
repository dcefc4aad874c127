//! The one error type of a plugin, mirroring the contract's `plugin-error` variant.

use std::fmt;

use arrow::error::ArrowError;

/// Why a plugin refused a call. The engine shows the message to the merchant as it is: say what
/// is wrong and how to fix it.
///
/// Each variant maps one to one onto the WIT `plugin-error` case of the same name. A later
/// version of the contract may add cases, so the enum is `#[non_exhaustive]`: a `match` on it
/// outside this crate needs a `_` arm (or use [`Error::kind`] and [`Error::message`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The `[transforms.config]` table is not what the plugin needs (name the key).
    Config(String),
    /// The input batch cannot be transformed (a column is missing, a value is impossible).
    Data(String),
    /// Anything else.
    Other(String),
}

impl Error {
    /// A [`Error::Config`] error.
    pub fn config(message: impl fmt::Display) -> Self {
        Self::Config(message.to_string())
    }

    /// A [`Error::Data`] error.
    pub fn data(message: impl fmt::Display) -> Self {
        Self::Data(message.to_string())
    }

    /// An [`Error::Other`] error.
    pub fn other(message: impl fmt::Display) -> Self {
        Self::Other(message.to_string())
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        match self {
            Self::Config(m) | Self::Data(m) | Self::Other(m) => m,
        }
    }

    /// `"config"`, `"data"` or `"other"`: the WIT case name.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Config(_) => "config",
            Self::Data(_) => "data",
            Self::Other(_) => "other",
        }
    }

    /// The same kind of error with `context: ` put before the message.
    pub fn context(self, context: impl fmt::Display) -> Self {
        match self {
            Self::Config(m) => Self::Config(format!("{context}: {m}")),
            Self::Data(m) => Self::Data(format!("{context}: {m}")),
            Self::Other(m) => Self::Other(format!("{context}: {m}")),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(m) => write!(f, "config error: {m}"),
            Self::Data(m) => write!(f, "data error: {m}"),
            Self::Other(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {}

/// Arrow errors about the values or shapes of arrays (casts, schemas, arithmetic, invalid
/// arguments) become [`Error::Data`]; I/O, IPC, memory and everything else [`Error::Other`].
impl From<ArrowError> for Error {
    fn from(error: ArrowError) -> Self {
        match error {
            ArrowError::CastError(_)
            | ArrowError::SchemaError(_)
            | ArrowError::ComputeError(_)
            | ArrowError::DivideByZero
            | ArrowError::ArithmeticOverflow(_)
            | ArrowError::InvalidArgumentError(_)
            | ArrowError::ParseError(_)
            | ArrowError::CsvError(_)
            | ArrowError::JsonError(_)
            | ArrowError::DictionaryKeyOverflowError
            | ArrowError::RunEndIndexOverflowError => Self::Data(error.to_string()),
            _ => Self::Other(error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrow_errors_map_by_kind() {
        assert_eq!(
            Error::from(ArrowError::CastError("x".into())).kind(),
            "data"
        );
        assert_eq!(
            Error::from(ArrowError::IpcError("x".into())).kind(),
            "other"
        );
    }

    #[test]
    fn context_keeps_the_kind() {
        let e = Error::config("must be a number").context("fee_rate");
        assert_eq!(e, Error::Config("fee_rate: must be a number".into()));
        assert_eq!(e.to_string(), "config error: fee_rate: must be a number");
    }
}
