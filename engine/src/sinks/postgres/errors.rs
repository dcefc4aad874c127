//! How the sink's failures read. A person fixing a failed load needs to know which server
//! (`host:port/database as user`), what the server said, and what to do — and must never find
//! the connection string or its password in a log. Every message the sink builds from a
//! `tokio_postgres` error goes through here, so that rule holds in one place.

use std::fmt::Write as _;
use tokio_postgres::error::SqlState;

/// `host:port/database as user` — the server a connection string names, without its password.
pub fn describe_endpoint(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("?");
    let database = config.get_dbname().unwrap_or(user);
    format!("{host}:{port}/{database} as {user}")
}

/// A tokio-postgres error as a person needs it: the server's message with its detail and hint,
/// or the client-side cause. Connection strings are never part of these.
pub fn describe(err: &tokio_postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        let mut text = format!("{} ({})", db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            let _ = write!(text, "; {detail}");
        }
        if let Some(hint) = db.hint() {
            let _ = write!(text, "; hint: {hint}");
        }
        if let Some(column) = db.column() {
            let _ = write!(text, "; column {column}");
        }
        return text;
    }
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            let _ = write!(text, ": {cause_text}");
        }
        source = cause.source();
    }
    text
}

/// Why no connection could be opened (a wrong host, port, user, password or database, or a
/// server that refuses); the cause follows it.
pub fn cannot_connect(endpoint: &str) -> String {
    format!(
        "cannot connect to {endpoint}; check the url (host, port, user, password, database) and \
         that the server accepts connections"
    )
}

/// `message: cause`, the cause described by [`describe`].
pub fn with_cause(message: impl Into<String>, cause: Option<&tokio_postgres::Error>) -> String {
    let message = message.into();
    match cause {
        Some(cause) => format!("{message}: {}", describe(cause)),
        None => message,
    }
}

/// A load that failed while `doing` something with `source_file`: the server's or client's
/// cause, what to do about the causes a person can fix, and that nothing was kept.
pub fn load_failed(
    doing: &str,
    source_file: &str,
    table: &str,
    key: &[String],
    err: &tokio_postgres::Error,
    connection_closed: bool,
) -> String {
    let mut message = format!("{doing} {source_file} into {table}: {}", describe(err));
    let code = err.as_db_error().map(|db| db.code());
    if let Some(advice) = advice(code, connection_closed, key) {
        message.push_str(" — ");
        message.push_str(&advice);
    }
    message.push_str("; the table is unchanged");
    message
}

/// What to do about a failed load: for the server's error `code`, or a connection that was
/// lost when the server said nothing.
fn advice(code: Option<&SqlState>, connection_closed: bool, key: &[String]) -> Option<String> {
    let key = key.join(", ");
    match code {
        Some(code) if code == &SqlState::INVALID_COLUMN_REFERENCE => Some(format!(
            "the table needs a primary key or unique index on ({key}), or set `key` to the \
             columns of an existing one"
        )),
        Some(code) if code == &SqlState::CARDINALITY_VIOLATION => Some(format!(
            "several records of the file share a key ({key}); choose a `key` that identifies \
             one record"
        )),
        Some(_) => None,
        None if connection_closed => Some(
            "the connection to the server was lost; nothing of this file was committed, and the \
             next run loads it again"
                .to_owned(),
        ),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_never_shows_the_password() {
        let config: tokio_postgres::Config = "postgresql://merchant:hunter2@db.example:6543/back"
            .parse()
            .unwrap();
        let endpoint = describe_endpoint(&config);
        assert_eq!(endpoint, "db.example:6543/back as merchant");
        assert!(!endpoint.contains("hunter2"));
        assert_eq!(
            cannot_connect(&endpoint),
            "cannot connect to db.example:6543/back as merchant; check the url (host, port, \
             user, password, database) and that the server accepts connections"
        );
    }

    #[test]
    fn the_endpoint_defaults_like_libpq() {
        let config: tokio_postgres::Config = "host=db.example user=merchant password=hunter2"
            .parse()
            .unwrap();
        let endpoint = describe_endpoint(&config);
        assert_eq!(endpoint, "db.example:5432/merchant as merchant");
        assert!(!endpoint.contains("hunter2"));
    }

    #[test]
    fn fixable_causes_come_with_advice() {
        let key = vec!["mid".to_owned(), "tid".to_owned()];
        assert_eq!(
            advice(Some(&SqlState::INVALID_COLUMN_REFERENCE), false, &key).unwrap(),
            "the table needs a primary key or unique index on (mid, tid), or set `key` to the \
             columns of an existing one"
        );
        assert_eq!(
            advice(Some(&SqlState::CARDINALITY_VIOLATION), false, &key).unwrap(),
            "several records of the file share a key (mid, tid); choose a `key` that \
             identifies one record"
        );
        assert_eq!(
            advice(None, true, &key).unwrap(),
            "the connection to the server was lost; nothing of this file was committed, and \
             the next run loads it again"
        );
        assert_eq!(advice(Some(&SqlState::UNIQUE_VIOLATION), true, &key), None);
        assert_eq!(advice(None, false, &key), None);
    }
}
