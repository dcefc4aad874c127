//! `type = "http"`: Toss's download service (`trxdown.jsp`), for merchants who cannot run an FTP
//! server. One GET per merchant id × kind × business date, authenticated by
//! `key = md5(mid + mertkey)`.
//!
//! The service is a legacy JSP page, so the things that go wrong are those of one: it answers
//! errors with an HTML page (or a one-line message) and status 200, it is slow, it drops
//! connections. Bodies are downloaded whole into a temporary file before anything is parsed, so a
//! dropped connection never loads half a day; 5xx, 429, timeouts and resets are retried with
//! backoff; a body that is not Toss records fails the file with what the server said instead of
//! rejecting every line. There is no listing, so a date loaded after its day closed (Toss's
//! 00:05 upload of the full day) is final and is not fetched again.
//!
//! The mertkey and the key derived from it never leave this module: the URL a user sees (in
//! logs, errors and the `source_file` column) is the URL without `key`, and everything the server
//! answers (a status line, a page, a `Location`, a library's error) goes through a
//! [`Scrubber`] of both before it is shown or stored, since a server or a proxy may echo the
//! request it got.
//!
//! Redirects are refused: following one would send the key (in the URL, and in `Referer`) to an
//! address the pipeline file does not name, and a redirect to a page without records would mark
//! the date as loaded with none. A 3xx is an error naming where it pointed.

use super::{
    AfterRead, BuildSource, Fetched, Listing, Source, TossFileName, toss_file, toss_file_unit,
};
use crate::dates::DateSelection;
use crate::env::{EnvString, Secret, deserialize_kinds};
use crate::error::{Error, Result};
use crate::remote::http::{ClientSettings, Redirects, describe_error, refused_redirect, said};
use crate::remote::retry::{Attempt, Failed, RetryPolicy, retry};
use crate::remote::retry_after::retry_after;
use crate::remote::scrub::Scrubber;
use crate::toss::RecordKind;
use crate::unit::{FileVersion, LoadUnit};
use chrono::{DateTime, FixedOffset};
use md5::{Digest, Md5};
use serde::Deserialize;
use std::io::{Seek, Write};
use std::sync::Arc;
use xxhash_rust::xxh3::xxh3_128;

/// Toss's production download address.
pub const TRXDOWN_URL: &str = "https://pgweb.tosspayments.com/pg/wmp/outerpage/trxdown.jsp";

/// `timeout_secs`, `retries` and `retry_base_ms` when the pipeline file leaves them out: Toss's
/// page is slow, so a request may take a minute and a retry waits a second first.
const RETRY_DEFAULTS: RetryPolicy = RetryPolicy {
    timeout_secs: 60,
    retries: 3,
    retry_base_ms: 1000,
};

/// At most this many business dates in one run (ten years), so a typo cannot start a flood.
const MAX_DATES: i64 = 3660;

/// `[source]` with `type = "http"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSourceConfig {
    /// The `trxdown.jsp` address (default Toss's production one).
    #[serde(default = "default_url")]
    pub url: EnvString,
    /// The merchant's secret key; write `${TOSS_MERTKEY}`, never the key itself.
    pub mertkey: Secret,
    /// The merchant ids to download (required).
    pub mids: Vec<EnvString>,
    /// `AUTH` (servicecode TRX) and/or `REV` (default both).
    #[serde(default, deserialize_with = "deserialize_kinds")]
    pub kinds: Option<Vec<RecordKind>>,
    /// Seconds one request may take, body included (default 60).
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Retries after the first attempt for 5xx, 429, timeouts and dropped connections (default 3).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// First retry pause in milliseconds, doubled each retry, ±25 % jitter (default 1000).
    #[serde(default = "default_retry_base_ms")]
    pub retry_base_ms: u64,
    /// Downloads in flight at once during a backfill (default 4).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Accept any TLS certificate. Only for a test server; never for Toss.
    #[serde(default)]
    pub tls_insecure: bool,
}

fn default_url() -> EnvString {
    EnvString::from_literal(TRXDOWN_URL)
}
fn default_timeout_secs() -> u64 {
    RETRY_DEFAULTS.timeout_secs
}
fn default_retries() -> u32 {
    RETRY_DEFAULTS.retries
}
fn default_retry_base_ms() -> u64 {
    RETRY_DEFAULTS.retry_base_ms
}
fn default_concurrency() -> usize {
    4
}

impl BuildSource for HttpSourceConfig {
    fn build(&self) -> Result<Arc<dyn Source>> {
        Ok(Arc::new(self.build_source()?))
    }
}

impl HttpSourceConfig {
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            timeout_secs: self.timeout_secs,
            retries: self.retries,
            retry_base_ms: self.retry_base_ms,
        }
    }

    fn build_source(&self) -> Result<HttpSource> {
        let at = |key: &str| format!("[source] {key}");
        if self.mids.is_empty() {
            return Err(Error::config(
                at("mids"),
                "the http source needs the merchant ids to download: mids = [\"your-mid\"]",
            ));
        }
        if self.mertkey.expose().is_empty() {
            return Err(Error::config(
                at("mertkey"),
                "mertkey is empty; set it from the environment: mertkey = \"${TOSS_MERTKEY}\"",
            ));
        }
        if self.concurrency == 0 || self.concurrency > 32 {
            return Err(Error::config(
                at("concurrency"),
                "concurrency must be 1 to 32",
            ));
        }
        let retry_policy = self.retry_policy();
        retry_policy.check("[source]")?;
        let url = crate::remote::http::parse_http_url(&self.url, &at("url"))?;
        if self.tls_insecure {
            tracing::warn!("tls_insecure = true: the http source accepts any certificate");
        }
        let client = crate::remote::http::client(ClientSettings {
            section: "[source]",
            timeout: retry_policy.timeout(),
            redirects: Redirects::Refuse,
            ca_file: None,
            tls_insecure: self.tls_insecure,
        })?;
        let mertkey = self.mertkey.expose().to_owned();
        let mids: Vec<String> = self.mids.iter().map(|mid| mid.to_string()).collect();
        let mut scrubber = Scrubber::new();
        scrubber.add(&mertkey);
        for mid in &mids {
            scrubber.add(&signing_key(mid, &mertkey));
        }
        scrubber.add_url(&url);
        Ok(HttpSource {
            client,
            url,
            mertkey,
            mids,
            scrubber,
            kinds: self
                .kinds
                .clone()
                .unwrap_or_else(|| vec![RecordKind::Auth, RecordKind::Rev]),
            retry_policy,
            concurrency: self.concurrency,
        })
    }
}

struct HttpSource {
    client: reqwest::Client,
    url: reqwest::Url,
    mertkey: String,
    mids: Vec<String>,
    kinds: Vec<RecordKind>,
    retry_policy: RetryPolicy,
    concurrency: usize,
    /// The mertkey and each mid's key, for everything the server answers.
    scrubber: Scrubber,
}

/// `key`: the lowercase hex MD5 of the mid followed by the mertkey.
fn signing_key(mid: &str, mertkey: &str) -> String {
    hex::encode(Md5::digest(format!("{mid}{mertkey}")))
}

/// How much of an answer's body an error shows.
const EXCERPT_CHARS: usize = 200;

impl HttpSource {
    fn service_code(kind: RecordKind) -> &'static str {
        match kind {
            RecordKind::Auth => "TRX",
            RecordKind::Rev => "REV",
        }
    }

    /// The request URL without the key, a `user:password@` or a parameter named like a
    /// credential the configured URL may carry: what users see (also in `source_file`).
    fn public_url(&self, file: &TossFileName) -> reqwest::Url {
        without_credentials(self.unsigned_url(file))
    }

    /// The configured URL with the file's query, but not the key.
    fn unsigned_url(&self, file: &TossFileName) -> reqwest::Url {
        let mut url = self.url.clone();
        url.query_pairs_mut()
            .append_pair("mertid", &file.mid)
            .append_pair("servicecode", Self::service_code(file.kind))
            .append_pair("trxdate", &file.trxdate.format("%Y%m%d").to_string());
        url
    }

    fn signed_url(&self, file: &TossFileName) -> reqwest::Url {
        let key = signing_key(&file.mid, &self.mertkey);
        let mut url = self.unsigned_url(file);
        url.query_pairs_mut().append_pair("key", &key);
        url
    }

    fn failed(&self, file: &LoadUnit, message: String) -> Error {
        Error::Source {
            source_name: self.describe(),
            message: self.scrubber.scrub(&format!("{}: {message}", file.name)),
            cause: None,
        }
    }

    /// One GET of `file`: its body, or why not, with the secrets scrubbed out of the why.
    async fn attempt(&self, file: &LoadUnit) -> Attempt<Vec<u8>> {
        match self.attempt_unscrubbed(file).await {
            Attempt::Done(body) => Attempt::Done(body),
            Attempt::Retry { why, after } => Attempt::Retry {
                why: self.scrubber.scrub(&why),
                after,
            },
            Attempt::Fail(why) => Attempt::Fail(self.scrubber.scrub(&why)),
        }
    }

    async fn attempt_unscrubbed(&self, file: &LoadUnit) -> Attempt<Vec<u8>> {
        let response = match self
            .client
            .get(self.signed_url(&toss_file(file)))
            .send()
            .await
        {
            Ok(response) => response,
            Err(err) => return Attempt::retry(describe_error(&err)),
        };
        let status = response.status();
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Attempt::Retry {
                why: "HTTP 429 Too Many Requests".into(),
                after: retry_after(response.headers()),
            };
        }
        if status.is_redirection() {
            return Attempt::Fail(refused_redirect(
                &response,
                &self.scrubber,
                "the key",
                "url",
            ));
        }
        if !status.is_success() {
            let said = match response.bytes().await {
                Ok(body) => said(&self.scrubber, &body, EXCERPT_CHARS),
                Err(_) => String::new(),
            };
            if status.is_server_error() {
                return Attempt::retry(format!("HTTP {status}{said}"));
            }
            return Attempt::Fail(format!("HTTP {status}: {}{said}", meaning_of(status)));
        }
        match response.bytes().await {
            Ok(body) => Attempt::Done(body.to_vec()),
            Err(err) => Attempt::retry(format!("the response broke off: {}", describe_error(&err))),
        }
    }
}

#[async_trait::async_trait]
impl Source for HttpSource {
    async fn list(&self, dates: &DateSelection) -> Result<Listing> {
        let DateSelection::Range { from, to } = *dates else {
            return Err(Error::config(
                "[pipeline] dates",
                "the http source cannot list \"all\" dates (Toss's download has no listing); \
                 give a date or a range, e.g. dates = \"yesterday\" or --from/--to",
            ));
        };
        let days = (to - from).num_days() + 1;
        if days > MAX_DATES {
            return Err(Error::config(
                "--from/--to",
                format!("{days} days is more than the {MAX_DATES} one run may download"),
            ));
        }
        let mut listing = Listing::default();
        for day in from.iter_days().take(days as usize) {
            for mid in &self.mids {
                for &kind in &self.kinds {
                    let file = TossFileName {
                        mid: mid.clone(),
                        kind,
                        trxdate: day,
                    };
                    let origin = self.public_url(&file).to_string();
                    listing
                        .units
                        .push(toss_file_unit(&file, origin, FileVersion::default()));
                }
            }
        }
        Ok(listing)
    }

    async fn fetch(&self, file: &LoadUnit) -> Result<Fetched> {
        let body = match retry(&self.retry_policy, &file.name, || self.attempt(file)).await {
            Ok(done) => done.value,
            Err(Failed::Refused { why, .. }) => return Err(self.failed(file, why)),
            Err(Failed::Exhausted { why, attempts }) => {
                return Err(self.failed(file, format!("{why} (gave up after {attempts} attempts)")));
            }
        };
        if let Some(problem) = not_toss_records(&body, &self.scrubber) {
            return Err(self.failed(
                file,
                format!("the server answered {problem} instead of Toss records"),
            ));
        }
        let spooled = spool(&body).map_err(|err| {
            self.failed(
                file,
                format!("cannot keep the download in a temporary file: {err}"),
            )
        })?;
        Ok(Fetched {
            reader: Box::new(spooled),
            content_hash: Some(format!("{:032x}", xxh3_128(&body))),
        })
    }

    fn fetch_ahead(&self) -> usize {
        self.concurrency
    }

    async fn after_read(&self, _file: &LoadUnit) -> Result<AfterRead> {
        Ok(AfterRead::Unchanged)
    }

    /// Toss writes the whole previous day at 00:05 KST, and the download says nothing of a
    /// day's version before it arrives: a day loaded after 00:30 the next day is final.
    fn is_final(&self, unit: &LoadUnit, loaded_at: DateTime<FixedOffset>) -> bool {
        let closed = unit
            .business_date
            .succ_opt()
            .and_then(|next| next.and_hms_opt(0, 30, 0))
            .and_then(|close| close.and_local_timezone(crate::dates::kst()).single());
        closed.is_some_and(|closed| loaded_at >= closed)
    }

    fn describe(&self) -> String {
        let mut url = without_credentials(self.url.clone());
        url.set_query(None);
        format!("http {url}")
    }
}

/// `url` without its `user:password@`.
fn without_credentials(url: reqwest::Url) -> reqwest::Url {
    crate::remote::scrub::public_url(url)
}

fn spool(body: &[u8]) -> std::io::Result<std::fs::File> {
    let mut file = tempfile::tempfile()?;
    file.write_all(body)?;
    file.rewind()?;
    Ok(file)
}

fn meaning_of(status: reqwest::StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "the server did not understand the request; check mids and the dates",
        401 | 403 => "the key was refused; check mertkey and that each mid is yours",
        404 => "no such page; check `url` in [source]",
        _ => "the server refused the request",
    }
}

/// Recognises an error the server sent as a body with status 200: an HTML page, a JSON error, or
/// a line of text that is no Toss record, described with `scrubber`'s secrets blanked out. An
/// empty body is a day without records.
fn not_toss_records(body: &[u8], scrubber: &Scrubber) -> Option<String> {
    let text = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let first_line = text
        .split(|&byte| byte == b'\n')
        .map(|line| line.trim_ascii())
        .find(|line| !line.is_empty())?;
    let shown = |line: &[u8]| {
        let decoded = String::from_utf8(line.to_vec()).unwrap_or_else(|_| {
            encoding_rs::EUC_KR
                .decode_without_bom_handling(line)
                .0
                .into_owned()
        });
        let decoded = scrubber.scrub(&decoded);
        let mut shown: String = decoded.chars().take(120).collect();
        if decoded.chars().count() > 120 {
            shown.push('…');
        }
        shown
    };
    if first_line.starts_with(b"<") {
        let lower = String::from_utf8_lossy(text).to_lowercase();
        let title = lower
            .split_once("<title>")
            .and_then(|(_, rest)| rest.split_once("</title>"))
            .map(|(title, _)| scrubber.scrub(title.trim()));
        return Some(match title {
            Some(title) if !title.is_empty() => format!("an HTML page (title: {title:?})"),
            _ => "an HTML page".to_owned(),
        });
    }
    if first_line.starts_with(b"{") || first_line.starts_with(b"[") {
        return Some(format!("a JSON message: {}", shown(first_line)));
    }
    let separators = first_line
        .iter()
        .filter(|&&byte| byte == b';')
        .count()
        .max(first_line.iter().filter(|&&byte| byte == b',').count());
    (separators < 11).then(|| format!("the message {:?}", shown(first_line)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(mertkey: &str) -> HttpSource {
        let config: HttpSourceConfig = toml::from_str(&format!(
            "url = \"https://toss.example/trxdown.jsp\"\nmertkey = \"{mertkey}\"\nmids = [\"tosstest\"]"
        ))
        .unwrap();
        config.build_source().unwrap()
    }

    fn file() -> TossFileName {
        TossFileName::parse("tosstest_AUTH_20070706.dat").unwrap()
    }

    #[test]
    fn the_key_is_the_lowercase_md5_of_mid_and_mertkey() {
        let signed = source("secret").signed_url(&file());
        let key: Vec<String> = signed
            .query_pairs()
            .filter(|(name, _)| name == "key")
            .map(|(_, value)| value.into_owned())
            .collect();
        // md5("tosstest" + "secret"), computed independently: printf tosstestsecret | md5sum
        assert_eq!(key, ["10e6424acaab6f4cdf1861ca94d5326c"]);
        assert_eq!(
            signed.as_str(),
            "https://toss.example/trxdown.jsp?mertid=tosstest&servicecode=TRX&trxdate=20070706\
             &key=10e6424acaab6f4cdf1861ca94d5326c"
        );
        // What users see carries everything but the key.
        let public = source("secret").public_url(&file());
        assert!(!public.as_str().contains("key="), "{public}");
    }

    #[test]
    fn credentials_in_the_url_are_sent_but_never_shown() {
        let config: HttpSourceConfig = toml::from_str(
            "url = \"https://proxy:pw-Secret-19@toss.example/trxdown.jsp\"\nmertkey = \"k\"\nmids = [\"tosstest\"]",
        )
        .unwrap();
        let source = config.build_source().unwrap();
        assert_eq!(source.describe(), "http https://toss.example/trxdown.jsp");
        let public = source.public_url(&file());
        assert_eq!(public.host_str(), Some("toss.example"));
        assert!(!public.as_str().contains("pw-Secret-19"), "{public}");
        assert_eq!(source.signed_url(&file()).password(), Some("pw-Secret-19"));
        assert_eq!(source.scrubber.scrub("denied pw-Secret-19"), "denied ***");
    }

    #[test]
    fn retry_settings_default_and_are_checked() {
        let config: HttpSourceConfig =
            toml::from_str("mertkey = \"k\"\nmids = [\"toss\"]").unwrap();
        assert_eq!(config.retry_policy(), RETRY_DEFAULTS);
        let slow: HttpSourceConfig =
            toml::from_str("mertkey = \"k\"\nmids = [\"toss\"]\ntimeout_secs = 0").unwrap();
        let message = slow.build().err().unwrap().to_string();
        assert!(message.contains("[source] timeout_secs"), "{message}");
    }

    #[test]
    fn what_the_server_says_is_shown_without_the_key_or_the_mertkey() {
        let source = source("secret-mertkey");
        // md5("tosstest" + "secret-mertkey"): printf tosstestsecret-mertkey | md5sum
        let key = signing_key("tosstest", "secret-mertkey");
        assert_eq!(key, "2363fe2881d743c951740bbf86c2e689");
        let echo = format!(
            "GET /trxdown.jsp?key={} (mertkey SECRET-MERTKEY)\n",
            key.to_uppercase()
        );
        let problem = not_toss_records(echo.as_bytes(), &source.scrubber).unwrap();
        assert_eq!(
            problem,
            "the message \"GET /trxdown.jsp?key=*** (mertkey ***)\""
        );
        let page = format!("<html><title>{key}</title></html>");
        let problem = not_toss_records(page.as_bytes(), &source.scrubber).unwrap();
        assert_eq!(problem, "an HTML page (title: \"***\")");
    }

    #[test]
    fn error_pages_are_told_apart_from_records() {
        assert!(not_toss_records(b"", &Scrubber::new()).is_none());
        assert!(not_toss_records(b"\r\n\r\n", &Scrubber::new()).is_none());
        let record = "toss;SC0010;t1;o1;11100;국민;b;1000;N;20070706120000;00000001;10\r\n";
        assert!(not_toss_records(record.as_bytes(), &Scrubber::new()).is_none());
        let html = not_toss_records(
            b"\r\n<html><head><title>Error 500</title></head></html>",
            &Scrubber::new(),
        );
        assert_eq!(html.as_deref(), Some("an HTML page (title: \"error 500\")"));
        assert!(
            not_toss_records(b"{\"error\":\"bad key\"}", &Scrubber::new())
                .unwrap()
                .contains("JSON")
        );
        assert!(
            not_toss_records(b"ERROR: invalid key\n", &Scrubber::new())
                .unwrap()
                .contains("invalid key")
        );
    }
}
