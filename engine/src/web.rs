//! What every HTTP client of the engine shares — the Toss download and the webhook: one
//! User-Agent, and error descriptions that never show a URL (Toss's carries the merchant's
//! key, a webhook's often a token).

/// The User-Agent of every request the engine makes.
pub const USER_AGENT: &str = concat!("toss-etl/", env!("CARGO_PKG_VERSION"));

/// Describes a reqwest error by its kind and innermost cause, never by its URL.
pub fn describe_error(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_body() || err.is_decode() {
        "the answer broke off"
    } else {
        "request failed"
    };
    let mut detail = String::new();
    let mut cause = std::error::Error::source(err);
    while let Some(inner) = cause {
        detail = inner.to_string();
        cause = inner.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind} ({detail})")
    }
}
