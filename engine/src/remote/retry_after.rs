//! `Retry-After` as the engine honours it: a busy server (HTTP 429) may say how long to wait
//! before the next attempt, and that replaces the backoff. Only the delay in seconds is read
//! (`Retry-After: 120`); an HTTP date, or anything else, leaves the backoff in charge. A server
//! cannot stall a run for long: the wait is capped at [`MAX_RETRY_AFTER`].

use std::time::Duration;

/// The longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// The pause a response's `Retry-After` header asks for, if it has one in seconds.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(parse)
}

/// `Retry-After`'s value in seconds (surrounding spaces allowed), capped at [`MAX_RETRY_AFTER`].
pub fn parse(value: &str) -> Option<Duration> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .map(|secs| Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    #[test]
    fn seconds_are_read_and_capped() {
        assert_eq!(parse("0"), Some(Duration::ZERO));
        assert_eq!(parse(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse("300"), Some(MAX_RETRY_AFTER));
        assert_eq!(parse("86400"), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn anything_else_leaves_the_backoff_in_charge() {
        for value in ["", "-1", "1.5", "soon", "Wed, 21 Oct 2015 07:28:00 GMT"] {
            assert_eq!(parse(value), None, "{value:?}");
        }
    }

    #[test]
    fn the_header_is_looked_up_by_name() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
    }
}
