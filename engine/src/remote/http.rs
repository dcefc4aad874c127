//! What every HTTP client of the engine shares — the Toss download and the webhook: one way to
//! build the client (timeouts, User-Agent, redirects, TLS verified as everywhere else in the
//! engine), and error descriptions that never show a URL (Toss's carries the merchant's key, a
//! webhook's often a token).

use super::tls;
use crate::error::{Error, Result};
use std::path::PathBuf;
use std::time::Duration;

/// The User-Agent of every request the engine makes.
pub const USER_AGENT: &str = concat!("toss-etl/", env!("CARGO_PKG_VERSION"));

/// The longest wait for a TCP (and TLS) connection, whatever `timeout_secs` says.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// What a client does with a 3xx answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirects {
    /// Hand the 3xx to the caller, which says what to do instead.
    Refuse,
    /// Follow up to 10 redirects (reqwest's default).
    Follow,
}

/// How to build one HTTP client.
#[derive(Debug)]
pub struct ClientSettings<'a> {
    /// The pipeline-file section the client belongs to (`[source]`, `[[sinks]] name`), for
    /// errors.
    pub section: &'a str,
    /// How long one request may take, answer included; connecting may take at most 30 s of it.
    pub timeout: Duration,
    pub redirects: Redirects,
    /// A PEM file with a certificate authority to trust besides the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate.
    pub tls_insecure: bool,
}

/// A client with the engine's User-Agent, `settings`' timeouts and redirect rule, and TLS
/// verified by [`tls::client_config`].
pub fn client(settings: ClientSettings<'_>) -> Result<reqwest::Client> {
    let ClientSettings {
        section,
        timeout,
        redirects,
        ca_file,
        tls_insecure,
    } = settings;
    let tls = tls::client_config(section, ca_file, tls_insecure)?;
    let mut tls = rustls::ClientConfig::clone(&tls);
    // What reqwest asks for when it builds its own TLS settings without HTTP/2.
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let redirect = match redirects {
        Redirects::Refuse => reqwest::redirect::Policy::none(),
        Redirects::Follow => reqwest::redirect::Policy::default(),
    };
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(MAX_CONNECT_TIMEOUT))
        .redirect(redirect)
        .tls_backend_preconfigured(tls)
        .user_agent(USER_AGENT)
        .build()
        .map_err(|err| {
            Error::config(
                format!("{section} url"),
                format!("cannot set up the HTTP client: {err}"),
            )
        })
}

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

/// The address a pipeline file names under `at` (`[source] url`): a URL, `https://` (or
/// `http://` for a local test server). Messages quote the text as written, never the value a
/// variable gave it.
pub fn parse_http_url(text: &crate::env::EnvString, at: &str) -> Result<reqwest::Url> {
    let url = reqwest::Url::parse(text.as_str())
        .map_err(|err| Error::config(at, format!("{:?} is not a URL: {err}", text.as_written())))?;
    if !matches!(url.scheme(), "http" | "https") {
        let key = at.rsplit(' ').next().unwrap_or(at);
        return Err(Error::config(
            at,
            format!("{key} must start with https:// (or http:// for a local test server)"),
        ));
    }
    Ok(url)
}

/// Why a `3xx` answer is refused, for a request that carries `secret` ("the key"): the status,
/// where it pointed (scrubbed), and the fix (`key`, the pipeline file's key of the address).
/// A redirect is never followed while a secret rides along: it would carry the secret to an
/// address the pipeline file does not name.
pub fn refused_redirect(
    response: &reqwest::Response,
    scrubber: &crate::remote::scrub::Scrubber,
    secret: &str,
    key: &str,
) -> String {
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .map(|location| scrubber.scrub(&String::from_utf8_lossy(location.as_bytes())))
        .unwrap_or_else(|| "an address it did not name".to_owned());
    format!(
        "HTTP {}, a redirect to {location}: the engine does not follow redirects, since \
         following one would send {secret} to an address the pipeline file does not name; put \
         the final address in `{key}` in [source]",
        response.status()
    )
}

/// `; it said: …` with the start of `body`, scrubbed; empty for an empty body.
pub fn said(scrubber: &crate::remote::scrub::Scrubber, body: &[u8], chars: usize) -> String {
    let excerpt = scrubber.excerpt(body, chars);
    if excerpt.is_empty() {
        String::new()
    } else {
        format!("; it said: {excerpt}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(redirects: Redirects, tls_insecure: bool) -> ClientSettings<'static> {
        ClientSettings {
            section: "[source]",
            timeout: Duration::from_secs(5),
            redirects,
            ca_file: None,
            tls_insecure,
        }
    }

    #[test]
    fn clients_build_without_a_process_wide_crypto_provider() {
        // Unit tests do not run main, which installs one.
        for redirects in [Redirects::Refuse, Redirects::Follow] {
            for insecure in [false, true] {
                client(settings(redirects, insecure)).unwrap();
            }
        }
    }

    #[test]
    fn an_unreadable_ca_file_is_named() {
        let message = client(ClientSettings {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..settings(Redirects::Refuse, false)
        })
        .unwrap_err()
        .to_string();
        assert!(
            message.contains("[source] ca_file") && message.contains("/nonexistent/ca.pem"),
            "{message}"
        );
    }
}
