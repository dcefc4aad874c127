//! One day's pull: every page of it, retried where Toss (or the network) may do better next
//! time, refused where it will not, into a temporary file of `{page}\t{row JSON}` lines.
//!
//! - Transactions page by cursor: `startingAfter` = the last row's `transactionKey`, until a
//!   page is shorter than `limit`. Merchants report Toss refusing a cursor it just gave out
//!   (`INVALID_TRANSACTION_KEY`), so the day's paging starts over once; a second refusal fails
//!   the day. A cursor seen twice would page forever and fails the day.
//! - Settlements page by number (`page`, `size`), until a page is shorter than `size`; a page
//!   identical to the one before it would page forever and fails the day.
//! - 429 (after its `Retry-After`, if any), 5xx, timeouts and broken connections are retried;
//!   401/403 (the key refused) fails at once; an answer that is not a JSON array (an HTML
//!   maintenance page with status 200) fails the day rather than loading it as empty.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Seek, Write};

use base64::Engine as _;
use chrono::NaiveDate;
use xxhash_rust::xxh3::Xxh3;

use super::{Dataset, TossApiSource};
use crate::remote::http::{describe_error, refused_redirect};
use crate::remote::retry::{Attempt, Failed, retry};
use crate::remote::retry_after::retry_after;

/// How much of an answer an error shows.
const EXCERPT_CHARS: usize = 200;

/// The most pages one day may take (at 5000 rows a page, 50 million rows).
const MAX_PAGES: u32 = 10_000;

/// The `Authorization` value for `secret_key`: Basic, the key as user, an empty password.
pub(super) fn basic_auth(secret_key: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{secret_key}:"));
    format!("Basic {encoded}")
}

/// A day pulled whole.
pub(super) struct Pulled {
    /// Positioned at its start.
    pub file: File,
    pub content_hash: String,
}

pub(super) enum PullError {
    /// Toss refused the key: no other day will do better.
    KeyRefused(String),
    Failed(String),
}

/// One page as Toss sent it, and where each row is in it.
struct Page {
    body: bytes::Bytes,
    rows: Vec<std::ops::Range<usize>>,
}

impl Page {
    fn len(&self) -> usize {
        self.rows.len()
    }

    fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn rows(&self) -> impl Iterator<Item = &[u8]> {
        self.rows.iter().map(|range| &self.body[range.clone()])
    }

    /// The last row's `transactionKey`, the cursor of the next page.
    fn last_transaction_key(&self) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Key {
            #[serde(rename = "transactionKey")]
            transaction_key: Option<String>,
        }
        let last = self.rows().last()?;
        serde_json::from_slice::<Key>(last).ok()?.transaction_key
    }
}

/// Why a page was not had.
enum PageFailure {
    KeyRefused(String),
    InvalidCursor(String),
    Other(String),
}

/// The day's rows so far, in the temporary file, hashed as they are written.
struct Spool {
    out: BufWriter<File>,
    hash: Xxh3,
    rows: u64,
}

impl Spool {
    fn new() -> std::io::Result<Self> {
        Ok(Spool {
            out: BufWriter::new(tempfile::tempfile()?),
            hash: Xxh3::new(),
            rows: 0,
        })
    }

    /// Each row as a line `{page}\t{row}`: a row's line breaks are whitespace between its
    /// tokens (JSON strings cannot hold one raw), so they become spaces.
    fn write(&mut self, number: u32, page: &Page) -> std::io::Result<()> {
        let prefix = format!("{number}\t");
        let mut line = Vec::new();
        for row in page.rows() {
            line.clear();
            line.extend_from_slice(prefix.as_bytes());
            line.extend(row.iter().map(|&byte| match byte {
                b'\n' | b'\r' => b' ',
                other => other,
            }));
            line.push(b'\n');
            self.hash.update(&line);
            self.out.write_all(&line)?;
            self.rows += 1;
        }
        Ok(())
    }

    fn finish(self) -> std::io::Result<Pulled> {
        let mut file = self.out.into_inner().map_err(|err| err.into_error())?;
        file.rewind()?;
        Ok(Pulled {
            file,
            content_hash: format!("{:032x}", self.hash.digest128()),
        })
    }
}

impl TossApiSource {
    /// The list call for `day` without paging: what messages and `origin` show.
    pub(super) fn public_url(&self, day: NaiveDate) -> reqwest::Url {
        let mut url = crate::remote::scrub::public_url(self.endpoint.clone());
        let date = day.format("%Y-%m-%d");
        match self.dataset {
            Dataset::Transactions => {
                url.set_path("/v1/transactions");
                url.query_pairs_mut()
                    .append_pair("startDate", &format!("{date}T00:00:00.000"))
                    .append_pair("endDate", &format!("{date}T23:59:59.999"));
            }
            Dataset::Settlements => {
                url.set_path("/v1/settlements");
                url.query_pairs_mut()
                    .append_pair("startDate", &date.to_string())
                    .append_pair("endDate", &date.to_string())
                    .append_pair("dateType", self.date_type.as_str());
            }
        }
        url
    }

    pub(super) async fn pull_day(&self, day: NaiveDate) -> Result<Pulled, PullError> {
        let spooled = |err: std::io::Error| {
            PullError::Failed(format!("cannot keep the pull in a temporary file: {err}"))
        };
        match self.dataset {
            Dataset::Transactions => {
                match self
                    .pull_transactions(day, Spool::new().map_err(spooled)?)
                    .await
                {
                    Err(PageFailure::InvalidCursor(why)) => {
                        tracing::warn!(
                            "{}: {why}; paging the day again from its start",
                            self.public_url(day)
                        );
                        match self
                            .pull_transactions(day, Spool::new().map_err(spooled)?)
                            .await
                        {
                            Err(PageFailure::InvalidCursor(why)) => Err(PullError::Failed(
                                format!("{why}, again after paging the day from its start"),
                            )),
                            other => finish(other),
                        }
                    }
                    other => finish(other),
                }
            }
            Dataset::Settlements => finish(
                self.pull_settlements(day, Spool::new().map_err(spooled)?)
                    .await,
            ),
        }
    }

    async fn pull_transactions(
        &self,
        day: NaiveDate,
        mut spool: Spool,
    ) -> Result<Spool, PageFailure> {
        let mut cursors = HashSet::new();
        let mut cursor: Option<String> = None;
        for page in 1..=MAX_PAGES {
            let mut url = self.public_url(day);
            url.query_pairs_mut()
                .append_pair("limit", &self.page_size.to_string());
            if let Some(after) = &cursor {
                url.query_pairs_mut().append_pair("startingAfter", after);
            }
            let rows = self.page(&url, page).await?;
            spool.write(page, &rows).map_err(spool_failed)?;
            if rows.len() < self.page_size {
                return Ok(spool);
            }
            let last = rows.last_transaction_key().ok_or_else(|| {
                PageFailure::Other(format!(
                    "the last row of page {page} has no transactionKey, so the next page cannot \
                     be asked for"
                ))
            })?;
            if !cursors.insert(last.clone()) {
                return Err(PageFailure::Other(format!(
                    "page {page} ended with transactionKey {last} again, as an earlier page \
                     did: Toss's paging would go round forever, so the day is not loaded"
                )));
            }
            cursor = Some(last);
        }
        Err(too_many_pages())
    }

    async fn pull_settlements(
        &self,
        day: NaiveDate,
        mut spool: Spool,
    ) -> Result<Spool, PageFailure> {
        let mut previous: Option<bytes::Bytes> = None;
        for page in 1..=MAX_PAGES {
            let mut url = self.public_url(day);
            url.query_pairs_mut()
                .append_pair("page", &page.to_string())
                .append_pair("size", &self.page_size.to_string());
            let rows = self.page(&url, page).await?;
            if !rows.is_empty() && previous.as_ref() == Some(&rows.body) {
                return Err(PageFailure::Other(format!(
                    "page {page} is the same as page {}: Toss's paging would go round forever, \
                     so the day is not loaded",
                    page - 1
                )));
            }
            spool.write(page, &rows).map_err(spool_failed)?;
            if rows.len() < self.page_size {
                return Ok(spool);
            }
            previous = Some(rows.body);
        }
        Err(too_many_pages())
    }

    /// One page, retried as the policy says.
    async fn page(&self, url: &reqwest::Url, page: u32) -> Result<Page, PageFailure> {
        let what = format!("{} page {page}", self.public_url_text(url));
        match retry(&self.policy, &what, || self.attempt(url)).await {
            Ok(done) => Ok(done.value),
            Err(Failed::Refused { why, .. }) => Err(why),
            Err(Failed::Exhausted { why, attempts }) => Err(PageFailure::Other(format!(
                "page {page}: {why} (gave up after {attempts} attempts)"
            ))),
        }
    }

    fn public_url_text(&self, url: &reqwest::Url) -> String {
        self.scrubber.scrub(url.as_str())
    }

    async fn attempt(&self, url: &reqwest::Url) -> Attempt<Page, PageFailure> {
        let scrub = |text: &str| self.scrubber.scrub(text);
        let response = match self
            .client
            .get(url.clone())
            .basic_auth(&self.secret_key, Some(""))
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
        {
            Ok(response) => response,
            Err(err) => return Attempt::retry(scrub(&describe_error(&err))),
        };
        let status = response.status();
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Attempt::Retry {
                why: "HTTP 429 Too Many Requests".into(),
                after: retry_after(response.headers()),
            };
        }
        if status.is_redirection() {
            return Attempt::Fail(PageFailure::Other(refused_redirect(
                &response,
                &self.scrubber,
                "the secret key",
                "endpoint",
            )));
        }
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(err) => {
                return Attempt::retry(format!(
                    "the answer broke off: {}",
                    scrub(&describe_error(&err))
                ));
            }
        };
        if status.is_server_error() {
            return Attempt::retry(format!("HTTP {status}{}", said(&self.scrubber, &body)));
        }
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Attempt::Fail(PageFailure::KeyRefused(format!(
                "Toss refused the secret key (HTTP {status}; it is {}){}: check secret_key \
                 (the TOSS_SECRET_KEY it names) against the developer center, and that a test \
                 key is not used for live data",
                self.mode,
                said(&self.scrubber, &body)
            )));
        }
        if !status.is_success() {
            let error: Option<TossError> = serde_json::from_slice(&body).ok();
            let code = error
                .as_ref()
                .map(|error| error.code.as_str())
                .unwrap_or("");
            let text = format!("HTTP {status}{}", said(&self.scrubber, &body));
            return Attempt::Fail(if code == "INVALID_TRANSACTION_KEY" {
                PageFailure::InvalidCursor(format!("Toss refused its own paging key ({text})"))
            } else {
                PageFailure::Other(text)
            });
        }
        if let Some(rows) = super::json_array::elements(&body) {
            return Attempt::Done(Page { body, rows });
        }
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(other) => Attempt::Fail(PageFailure::Other(format!(
                "HTTP {status} with {} instead of a list of rows{}",
                json_kind(&other),
                said(&self.scrubber, &body)
            ))),
            Err(_) => Attempt::Fail(PageFailure::Other(format!(
                "HTTP {status} with {} instead of JSON rows{}",
                if looks_like_html(&body) {
                    "an HTML page"
                } else {
                    "text that is not JSON"
                },
                said(&self.scrubber, &body)
            ))),
        }
    }
}

/// Toss's error body.
#[derive(serde::Deserialize)]
struct TossError {
    code: String,
}

fn finish(result: Result<Spool, PageFailure>) -> Result<Pulled, PullError> {
    match result {
        Ok(spool) => spool.finish().map_err(|err| {
            PullError::Failed(format!("cannot keep the pull in a temporary file: {err}"))
        }),
        Err(PageFailure::KeyRefused(why)) => Err(PullError::KeyRefused(why)),
        Err(PageFailure::InvalidCursor(why) | PageFailure::Other(why)) => {
            Err(PullError::Failed(why))
        }
    }
}

fn spool_failed(err: std::io::Error) -> PageFailure {
    PageFailure::Other(format!("cannot keep the pull in a temporary file: {err}"))
}

fn too_many_pages() -> PageFailure {
    PageFailure::Other(format!(
        "more than {MAX_PAGES} pages in one day: Toss's paging looks broken, so the day is not \
         loaded"
    ))
}

fn said(scrubber: &crate::remote::scrub::Scrubber, body: &[u8]) -> String {
    crate::remote::http::said(scrubber, body, EXCERPT_CHARS)
}

fn looks_like_html(body: &[u8]) -> bool {
    let start = String::from_utf8_lossy(&body[..body.len().min(512)]).to_ascii_lowercase();
    start.trim_start().starts_with('<') || start.contains("<html")
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Object(_) => "a JSON object",
        serde_json::Value::String(_) => "a JSON string",
        serde_json::Value::Number(_) => "a JSON number",
        serde_json::Value::Bool(_) => "a JSON boolean",
        serde_json::Value::Null => "JSON null",
        serde_json::Value::Array(_) => "a JSON list",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_is_the_key_and_an_empty_password_in_padded_base64() {
        // Toss's docs: test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R → dGVzdF9za196WExrS0V5cE5BcldtbzUwblgzbG1lYXhZRzVSOg==
        assert_eq!(
            basic_auth("test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R"),
            "Basic dGVzdF9za196WExrS0V5cE5BcldtbzUwblgzbG1lYXhZRzVSOg=="
        );
    }
}
