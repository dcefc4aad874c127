//! `type = "webhook"`: records POSTed as signed JSON to the merchant's own HTTP endpoint.
//!
//! A webhook cannot replace what it sent, so re-loads are made exact here by remembering what
//! the receiver acknowledged: per source file, a hash of each record's key and a hash of its
//! content, in the state store. A newer version of a file sends only the records whose key is
//! new or whose content changed (a record that only moved to another line is not "changed");
//! an unchanged file sends nothing.
//!
//! Nothing is sent while the file streams: [`SinkWriter::write`] spools the records to send to
//! an unnamed temporary file under `state_dir`, so a file that fails later (too many rejects,
//! another sink's error) sends nothing. [`SinkWriter::commit`] POSTs the spool in batches of
//! `batch_rows`, each signed, each retried on 5xx, 429, timeouts and dropped connections, and
//! records a batch as acknowledged right after its 2xx. When the retries run out the run fails,
//! the acknowledged batches stay acknowledged, and the next run sends the rest: delivery is
//! at least once, and the `Idempotency-Key` (a hash of the batch's records) lets the receiver
//! drop a batch it already has.
//!
//! The secret, the header values and the URL's query never appear in logs or errors.

use super::{BuildSink, CommittedVersion, LoadUnit, Sink, SinkContext, SinkWriter};
use crate::config::{EnvString, Secret};
use crate::error::{Error, Result};
use crate::retry::backoff;
use crate::state::StateStore;
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, SchemaRef};
use arrow::json::writer::LineDelimited;
use arrow::json::{StructMode, WriterBuilder};
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use xxhash_rust::xxh3::xxh3_128;

/// The header carrying `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub const SIGNATURE_HEADER: &str = "X-Toss-Etl-Signature";
/// The header carrying the batch's idempotency key (the same as its `batch_id`).
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// Where a record sat in its file: not part of what makes it "changed".
const LINE_COLUMN: &str = "source_line";

/// Headers the sink sets itself; `headers` may not replace them.
const RESERVED_HEADERS: [&str; 6] = [
    "content-type",
    "content-length",
    "transfer-encoding",
    "host",
    "idempotency-key",
    "x-toss-etl-signature",
];

/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// `[[sinks]]` with `type = "webhook"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSinkConfig {
    /// The receiver's address, `https://…` (or `http://`). Redirects are not followed.
    pub url: EnvString,
    /// Signs every request (HMAC-SHA256); write `${WEBHOOK_SECRET}`, never the secret itself.
    pub secret: Secret,
    /// Records per request (default 1000).
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
    /// Seconds one request may take, answer included (default 30).
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Retries after the first attempt for 5xx, 408, 429, timeouts and dropped connections
    /// (default 5).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// First retry pause in milliseconds, doubled each retry, ±25 % jitter (default 1000).
    #[serde(default = "default_retry_base_ms")]
    pub retry_base_ms: u64,
    /// Extra request headers, e.g. `Authorization = "Bearer ${RECEIVER_TOKEN}"`; their values
    /// are treated as secrets.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// The columns that identify a record (default the spec's record key when the records
    /// carry it, else every column but `source_line`).
    #[serde(default)]
    pub key: Option<Vec<String>>,
    /// Accept any TLS certificate. Only for a test receiver.
    #[serde(default)]
    pub tls_insecure: bool,
}

fn default_batch_rows() -> usize {
    1000
}
fn default_timeout_secs() -> u64 {
    30
}
fn default_retries() -> u32 {
    5
}
fn default_retry_base_ms() -> u64 {
    1000
}

impl BuildSink for WebhookSinkConfig {
    fn build(&self, name: String, context: &SinkContext) -> Result<Box<dyn Sink>> {
        Ok(Box::new(self.build_sink(name, context)?))
    }
}

impl WebhookSinkConfig {
    fn build_sink(&self, name: String, context: &SinkContext) -> Result<WebhookSink> {
        let at = |key: &str| format!("[[sinks]] {name} {key}");
        let url = reqwest::Url::parse(&self.url).map_err(|err| {
            // The URL may carry a token: say what is wrong without echoing it.
            Error::config(
                at("url"),
                format!("not a URL ({err}); write https://host/path"),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(Error::config(
                at("url"),
                "url must be an https:// (or http://) address with a host",
            ));
        }
        if self.secret.expose().is_empty() {
            return Err(Error::config(
                at("secret"),
                "secret is empty; set it from the environment: secret = \"${WEBHOOK_SECRET}\"",
            ));
        }
        if self.batch_rows == 0 {
            return Err(Error::config(
                at("batch_rows"),
                "batch_rows must be at least 1 (default 1000)",
            ));
        }
        if self.timeout_secs == 0 {
            return Err(Error::config(
                at("timeout_secs"),
                "timeout_secs must be at least 1",
            ));
        }
        if let Some(key) = &self.key {
            if key.is_empty() {
                return Err(Error::config(
                    at("key"),
                    "key needs at least one column, e.g. key = [\"transaction\", \"oid\"]",
                ));
            }
            if let Some(twice) = key
                .iter()
                .enumerate()
                .find_map(|(index, column)| key[..index].contains(column).then_some(column))
            {
                return Err(Error::config(
                    at("key"),
                    format!("column `{twice}` is named twice"),
                ));
            }
        }
        let mut headers = HeaderMap::new();
        for (header, value) in &self.headers {
            let header_name = HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
                Error::config(
                    at("headers"),
                    format!("`{header}` is not a valid header name"),
                )
            })?;
            if RESERVED_HEADERS.contains(&header_name.as_str()) {
                return Err(Error::config(
                    at("headers"),
                    format!("`{header}` is set by the sink itself; remove it from headers"),
                ));
            }
            let mut header_value = HeaderValue::from_str(value.expose()).map_err(|_| {
                Error::config(
                    at("headers"),
                    format!(
                        "the value of `{header}` is not a valid header value \
                         (printable ASCII, no line breaks)"
                    ),
                )
            })?;
            header_value.set_sensitive(true);
            headers.insert(header_name, header_value);
        }

        let _ = rustls::crypto::ring::default_provider().install_default();
        if self.tls_insecure {
            tracing::warn!(sink = %name, "tls_insecure = true: the webhook accepts any certificate");
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(self.timeout_secs))
            .connect_timeout(Duration::from_secs(self.timeout_secs.min(30)))
            .redirect(reqwest::redirect::Policy::none())
            .tls_danger_accept_invalid_certs(self.tls_insecure)
            .user_agent(crate::web::USER_AGENT)
            .build()
            .map_err(|err| {
                Error::config(at("url"), format!("cannot set up the HTTP client: {err}"))
            })?;

        let mut scrub: Vec<String> = self
            .headers
            .values()
            .map(|value| value.expose().to_owned())
            .chain([self.secret.expose().to_owned()])
            .filter(|value| value.len() >= 4)
            .collect();
        scrub.sort_by_key(|value| std::cmp::Reverse(value.len()));
        Ok(WebhookSink {
            name: name.clone(),
            sink_id: sink_id(context.pipeline, &url),
            pipeline: context.pipeline.to_owned(),
            state_dir: context.state_dir.to_path_buf(),
            batch_rows: self.batch_rows,
            key: self.key.clone(),
            record_key: context.record_key.to_vec(),
            delivery: Arc::new(Delivery {
                sink: name,
                client,
                origin: url.origin().ascii_serialization(),
                url,
                secret: self.secret.clone(),
                headers,
                retries: self.retries,
                retry_base: Duration::from_millis(self.retry_base_ms),
                scrub,
            }),
        })
    }
}

/// Names what one webhook sink delivered in the state store: the pipeline and a hash of the URL
/// (never the URL itself, which may carry a token). A new receiver URL starts afresh.
fn sink_id(pipeline: &str, url: &reqwest::Url) -> String {
    let digest = Sha256::digest(url.as_str().as_bytes());
    format!("{pipeline}:{}", hex::encode(&digest[..8]))
}

struct WebhookSink {
    name: String,
    sink_id: String,
    pipeline: String,
    state_dir: PathBuf,
    batch_rows: usize,
    key: Option<Vec<String>>,
    /// The format's record key, the default of `key`.
    record_key: Vec<String>,
    delivery: Arc<Delivery>,
}

impl WebhookSink {
    /// The key columns' indices in `schema`, as configured or by default.
    fn key_columns(&self, schema: &SchemaRef) -> Result<Vec<usize>> {
        let names: Vec<String> = match &self.key {
            Some(key) => key.clone(),
            None if !self.record_key.is_empty()
                && self
                    .record_key
                    .iter()
                    .all(|column| schema.index_of(column).is_ok()) =>
            {
                self.record_key.clone()
            }
            None => schema
                .fields()
                .iter()
                .map(|field| field.name().clone())
                .filter(|name| name != LINE_COLUMN)
                .collect(),
        };
        if names.is_empty() {
            return Err(Error::config(
                format!("[[sinks]] {} key", self.name),
                "the records have no column to identify them by; set key = [\"…\"]",
            ));
        }
        names
            .iter()
            .map(|column| {
                schema.index_of(column).map_err(|_| {
                    let columns: Vec<&str> = schema
                        .fields()
                        .iter()
                        .map(|field| field.name().as_str())
                        .collect();
                    Error::config(
                        format!("[[sinks]] {} key", self.name),
                        format!(
                            "column `{column}` is not in the records that reach this sink \
                             (they have: {}); name columns the parser or your transforms \
                             produce",
                            columns.join(", ")
                        ),
                    )
                })
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl Sink for WebhookSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn begin(&self, unit: &LoadUnit, schema: SchemaRef) -> Result<Box<dyn SinkWriter>> {
        Ok(Box::new(self.writer(unit, &schema)?))
    }
}

impl WebhookSink {
    /// A writer for one source file, knowing what the receiver already acknowledged of it.
    fn writer(&self, unit: &LoadUnit, schema: &SchemaRef) -> Result<WebhookWriter> {
        let key_columns = self.key_columns(schema)?;
        let content_columns: Vec<usize> = (0..schema.fields().len())
            .filter(|&index| schema.field(index).name() != LINE_COLUMN)
            .collect();
        let store = StateStore::open(&self.state_dir)?;
        let acknowledged = store.webhook_sent(&self.sink_id, &unit.name)?;
        let spool = tempfile::tempfile_in(&self.state_dir).map_err(|err| Error::Sink {
            sink: self.name.clone(),
            message: format!(
                "cannot create a temporary file in {}",
                self.state_dir.display()
            ),
            cause: Some(Box::new(err)),
        })?;
        Ok(WebhookWriter {
            delivery: Arc::clone(&self.delivery),
            sink_id: self.sink_id.clone(),
            pipeline: self.pipeline.clone(),
            source_file: unit.name.clone(),
            batch_rows: self.batch_rows,
            line_column: schema.index_of(LINE_COLUMN).ok(),
            key_columns,
            content_columns,
            store,
            acknowledged,
            seen: HashMap::new(),
            spool: Some(BufWriter::new(spool)),
            pending: 0,
            unchanged: 0,
        })
    }
}

/// Everything needed to send one signed request, shared by a sink's writers.
struct Delivery {
    sink: String,
    client: reqwest::Client,
    url: reqwest::Url,
    /// `scheme://host:port`: how the receiver is named in messages.
    origin: String,
    secret: Secret,
    headers: HeaderMap,
    retries: u32,
    retry_base: Duration,
    /// Secret values to blank out of anything a receiver answers, longest first.
    scrub: Vec<String>,
}

/// What one attempt came to.
enum Attempt {
    Accepted,
    /// Worth another try after the pause (the receiver's Retry-After, if it gave one).
    Retry(String, Option<Duration>),
    Fail(String),
}

/// Why a batch was not delivered, and after how many attempts.
struct Undelivered {
    why: String,
    attempts: u32,
    /// The receiver refused it for good (a 4xx), rather than the retries running out.
    refused: bool,
}

impl Undelivered {
    /// `HTTP 500 … (gave up after 3 attempts)` or `HTTP 400 … (not retried)`.
    fn describe(&self) -> String {
        match (self.refused, self.attempts) {
            (true, 1) => format!("{} (not retried)", self.why),
            (true, n) => format!("{} (on attempt {n}; not retried)", self.why),
            (false, 1) => format!("{} (gave up after 1 attempt)", self.why),
            (false, n) => format!("{} (gave up after {n} attempts)", self.why),
        }
    }
}

impl Delivery {
    /// Sends one batch until the receiver accepts it or the retries run out; returns the
    /// retries it took.
    async fn deliver(
        &self,
        body: &Bytes,
        batch_id: &str,
        source_file: &str,
    ) -> std::result::Result<u32, Undelivered> {
        let mut retry = 0;
        loop {
            match self.attempt(body, batch_id).await {
                Attempt::Accepted => return Ok(retry),
                Attempt::Fail(why) => {
                    return Err(Undelivered {
                        why,
                        attempts: retry + 1,
                        refused: true,
                    });
                }
                Attempt::Retry(why, _) if retry >= self.retries => {
                    return Err(Undelivered {
                        why,
                        attempts: retry + 1,
                        refused: false,
                    });
                }
                Attempt::Retry(why, wait) => {
                    retry += 1;
                    let pause = wait.unwrap_or_else(|| backoff(self.retry_base, retry - 1));
                    tracing::warn!(
                        sink = %self.sink,
                        file = %source_file,
                        batch = %batch_id,
                        "{why}; retry {retry} of {} in {:.1} s",
                        self.retries,
                        pause.as_secs_f64()
                    );
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    async fn attempt(&self, body: &Bytes, batch_id: &str) -> Attempt {
        // A fresh timestamp on every attempt, so a retry is not refused as a replay.
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|since| since.as_secs())
            .unwrap_or(0);
        let signature = signature(self.secret.expose().as_bytes(), timestamp, body);
        let request = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(IDEMPOTENCY_HEADER, batch_id)
            .header(SIGNATURE_HEADER, signature)
            .body(body.clone());
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) if err.is_builder() => {
                return Attempt::Fail(format!(
                    "cannot build the request: {}",
                    crate::web::describe_error(&err)
                ));
            }
            Err(err) => return Attempt::Retry(crate::web::describe_error(&err), None),
        };
        let status = response.status();
        if status.is_success() {
            // Accepted whatever follows; reading the answer lets the connection be reused.
            let _ = response.bytes().await;
            return Attempt::Accepted;
        }
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            let wait = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse::<u64>().ok())
                .map(|secs| Duration::from_secs(secs).min(MAX_RETRY_AFTER));
            return Attempt::Retry(format!("{} answered HTTP {status}", self.origin), wait);
        }
        if status.is_server_error() || status == reqwest::StatusCode::REQUEST_TIMEOUT {
            return Attempt::Retry(format!("{} answered HTTP {status}", self.origin), None);
        }
        if status.is_redirection() {
            return Attempt::Fail(format!(
                "{} answered HTTP {status}: redirects are not followed (a redirect would \
                 drop the signature's guarantees); set url to the receiver's final address",
                self.origin
            ));
        }
        let said = response
            .bytes()
            .await
            .map(|body| self.excerpt(&body))
            .unwrap_or_default();
        let said = if said.is_empty() {
            String::new()
        } else {
            format!("; it said: {said}")
        };
        Attempt::Fail(format!(
            "{} answered HTTP {status}: {}{said}",
            self.origin,
            meaning_of(status)
        ))
    }

    /// The start of a receiver's answer, on one line, with any of our secrets blanked out.
    fn excerpt(&self, body: &[u8]) -> String {
        let mut text: String = String::from_utf8_lossy(body)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        for secret in &self.scrub {
            text = text.replace(secret.as_str(), "***");
        }
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut shown: String = text.chars().take(200).collect();
        if text.chars().count() > 200 {
            shown.push('…');
        }
        shown
    }
}

fn meaning_of(status: reqwest::StatusCode) -> &'static str {
    match status.as_u16() {
        401 | 403 => "the receiver refused the request; check `secret` and `headers`",
        404 | 405 => "the receiver has no such endpoint; check `url`",
        413 => "the request was too large; lower `batch_rows`",
        _ => "the receiver refused the batch (retrying would not help)",
    }
}

/// The signature header's value: `t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
fn signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// A batch's `batch_id` and `Idempotency-Key`: a hash of the sink, the file and the batch's
/// records (key and content hashes, in order). A retry, and a later run that forms the same
/// batch again, carry the same value.
fn batch_id(sink_id: &str, source_file: &str, records: &[(u128, u128)]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"toss-etl webhook batch v1\0");
    hasher.update(sink_id.as_bytes());
    hasher.update(b"\0");
    hasher.update(source_file.as_bytes());
    hasher.update(b"\0");
    for (key, content) in records {
        hasher.update(key.to_be_bytes());
        hasher.update(content.to_be_bytes());
    }
    hex::encode(&hasher.finalize()[..16])
}

/// Each row of `batch` as one line of JSON: objects with explicit nulls, or arrays
/// (`as_lists`). Timestamps come out as RFC 3339 with their offset, dates as YYYY-MM-DD.
fn json_lines(batch: &RecordBatch, as_lists: bool) -> std::result::Result<Vec<u8>, String> {
    let mode = if as_lists {
        StructMode::ListOnly
    } else {
        StructMode::ObjectOnly
    };
    let mut writer = WriterBuilder::new()
        .with_explicit_nulls(true)
        .with_struct_mode(mode)
        .build::<_, LineDelimited>(Vec::with_capacity(batch.num_rows() * 256));
    writer.write(batch).map_err(|err| err.to_string())?;
    writer.finish().map_err(|err| err.to_string())?;
    Ok(writer.into_inner())
}

/// The `rows` lines of `json_lines`' output, without their line ends.
fn lines(json: &[u8], rows: usize) -> std::result::Result<Vec<&[u8]>, String> {
    let lines: Vec<&[u8]> = json
        .split(|&byte| byte == b'\n')
        .filter(|line| !line.is_empty())
        .collect();
    if lines.len() == rows {
        Ok(lines)
    } else {
        Err(format!(
            "the JSON encoder gave {} lines for {rows} rows",
            lines.len()
        ))
    }
}

/// Receives one source file's records: keeps those to send in the spool until commit.
struct WebhookWriter {
    delivery: Arc<Delivery>,
    sink_id: String,
    pipeline: String,
    source_file: String,
    batch_rows: usize,
    line_column: Option<usize>,
    key_columns: Vec<usize>,
    content_columns: Vec<usize>,
    store: StateStore,
    /// What the receiver acknowledged of this file before: key hash → content hash.
    acknowledged: HashMap<u128, u128>,
    /// The records of this version of the file so far: key hash → content hash.
    seen: HashMap<u128, u128>,
    /// Per record to send: key hash (16 bytes), content hash (16), JSON length (u32 LE), JSON.
    spool: Option<BufWriter<std::fs::File>>,
    pending: u64,
    unchanged: u64,
}

impl WebhookWriter {
    fn failed(&self, message: impl Into<String>) -> Error {
        Error::sink(&self.delivery.sink, message)
    }

    fn spool_failed(&self, err: std::io::Error) -> Error {
        Error::Sink {
            sink: self.delivery.sink.clone(),
            message: format!("cannot spool the records of {}", self.source_file),
            cause: Some(Box::new(err)),
        }
    }

    fn keep(&mut self, batch: &RecordBatch) -> Result<()> {
        let encoding = |err: String| {
            Error::sink(
                &self.delivery.sink,
                format!("cannot encode a batch as JSON: {err}"),
            )
        };
        let rows = batch.num_rows();
        let full = json_lines(batch, false).map_err(encoding)?;
        let keys = batch
            .project(&self.key_columns)
            .map_err(|err| encoding(err.to_string()))
            .and_then(|keys| json_lines(&keys, true).map_err(encoding))?;
        let content = match self.line_column {
            Some(_) => batch
                .project(&self.content_columns)
                .map_err(|err| encoding(err.to_string()))
                .and_then(|content| json_lines(&content, false).map_err(encoding))?,
            None => Vec::new(),
        };
        let full_lines = lines(&full, rows).map_err(encoding)?;
        let key_lines = lines(&keys, rows).map_err(encoding)?;
        let content_lines = match self.line_column {
            Some(_) => lines(&content, rows).map_err(encoding)?,
            None => full_lines.clone(),
        };
        let line_numbers = self
            .line_column
            .and_then(|index| batch.column(index).as_primitive_opt::<Int64Type>());
        for row in 0..rows {
            let key = xxh3_128(key_lines[row]);
            let content = xxh3_128(content_lines[row]);
            match self.seen.insert(key, content) {
                None => {}
                // The same record twice (a transform that repeats rows): it is sent once.
                Some(earlier) if earlier == content => continue,
                Some(_) => {
                    let line = line_numbers
                        .filter(|numbers| numbers.is_valid(row))
                        .map(|numbers| format!("line {}", numbers.value(row)))
                        .unwrap_or_else(|| "a record".to_owned());
                    return Err(self.failed(format!(
                        "{line} has the key {} of an earlier record but other content; set \
                         `key` to columns that identify one record",
                        String::from_utf8_lossy(key_lines[row]),
                    )));
                }
            }
            if self.acknowledged.get(&key) == Some(&content) {
                self.unchanged += 1;
                continue;
            }
            let json = full_lines[row];
            let spool = self.spool.as_mut().expect("the spool lives until commit");
            spool
                .write_all(&key.to_be_bytes())
                .and_then(|()| spool.write_all(&content.to_be_bytes()))
                .and_then(|()| spool.write_all(&(json.len() as u32).to_le_bytes()))
                .and_then(|()| spool.write_all(json))
                .map_err(|err| self.spool_failed(err))?;
            self.pending += 1;
        }
        Ok(())
    }
}

/// Records read back from the spool: their (key, content) hashes and their JSON, in order.
#[derive(Default)]
struct SpooledBatch {
    hashes: Vec<(u128, u128)>,
    records: Vec<Vec<u8>>,
}

/// The next batch of at most `limit` records from the spool.
fn read_batch(spool: &mut impl Read, limit: usize) -> std::io::Result<SpooledBatch> {
    let mut batch = SpooledBatch::default();
    while batch.records.len() < limit {
        let mut head = [0u8; 36];
        match spool.read_exact(&mut head) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(err) => return Err(err),
        }
        let key = u128::from_be_bytes(head[0..16].try_into().expect("16 bytes"));
        let content = u128::from_be_bytes(head[16..32].try_into().expect("16 bytes"));
        let len = u32::from_le_bytes(head[32..36].try_into().expect("4 bytes")) as usize;
        let mut json = vec![0u8; len];
        spool.read_exact(&mut json)?;
        batch.hashes.push((key, content));
        batch.records.push(json);
    }
    Ok(batch)
}

/// `{"pipeline": …, "source_file": …, "batch_id": …, "records": [ … ]}`
fn envelope(pipeline: &str, source_file: &str, batch_id: &str, records: &[Vec<u8>]) -> Vec<u8> {
    let quoted = |text: &str| serde_json::to_string(text).expect("a string serializes");
    let size: usize = records.iter().map(|record| record.len() + 1).sum();
    let mut body = Vec::with_capacity(size + 200);
    body.extend_from_slice(b"{\"pipeline\":");
    body.extend_from_slice(quoted(pipeline).as_bytes());
    body.extend_from_slice(b",\"source_file\":");
    body.extend_from_slice(quoted(source_file).as_bytes());
    body.extend_from_slice(b",\"batch_id\":");
    body.extend_from_slice(quoted(batch_id).as_bytes());
    body.extend_from_slice(b",\"records\":[");
    for (index, record) in records.iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        body.extend_from_slice(record);
    }
    body.extend_from_slice(b"]}");
    body
}

#[async_trait::async_trait]
impl SinkWriter for WebhookWriter {
    async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        // Encoding and hashing are CPU work: keep them off the async workers' backs.
        tokio::task::block_in_place(|| self.keep(batch))
    }

    async fn commit(mut self: Box<Self>, _version: &CommittedVersion) -> Result<u64> {
        let spool = self.spool.take().expect("commit runs once");
        let mut spool = spool
            .into_inner()
            .map_err(|err| err.into_error())
            .and_then(|mut file| file.rewind().map(|()| BufReader::new(file)))
            .map_err(|err| self.spool_failed(err))?;
        let total = self.pending;
        let batches = total.div_ceil(self.batch_rows as u64);
        let mut sent = 0u64;
        let mut retries = 0u32;
        for number in 1..=batches {
            let SpooledBatch { hashes, records } =
                read_batch(&mut spool, self.batch_rows).map_err(|err| self.spool_failed(err))?;
            if records.is_empty() {
                return Err(self.failed(format!(
                    "the spool of {} ended after {sent} of {total} records",
                    self.source_file
                )));
            }
            let id = batch_id(&self.sink_id, &self.source_file, &hashes);
            let body = Bytes::from(envelope(&self.pipeline, &self.source_file, &id, &records));
            match self.delivery.deliver(&body, &id, &self.source_file).await {
                Ok(took) => retries += took,
                Err(undelivered) => {
                    let next = match sent {
                        0 => format!("the next run sends its {total} records again"),
                        _ => format!(
                            "the {sent} records accepted before it are remembered, the next \
                             run sends the other {}",
                            total - sent
                        ),
                    };
                    return Err(self.failed(format!(
                        "batch {number} of {batches} ({} records, Idempotency-Key {id}) was \
                         not accepted: {}; {next}",
                        records.len(),
                        undelivered.describe(),
                    )));
                }
            }
            self.store
                .record_webhook_sent(&self.sink_id, &self.source_file, &hashes)?;
            sent += records.len() as u64;
        }
        tracing::info!(
            sink = %self.delivery.sink,
            file = %self.source_file,
            records = sent,
            unchanged = self.unchanged,
            batches,
            retries,
            "webhook delivered"
        );
        Ok(sent)
    }

    async fn abort(mut self: Box<Self>) {
        // Nothing was sent; the unnamed spool file vanishes when dropped.
        drop(self.spool.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::toss::toss_schema;
    use arrow::array::{
        ArrayRef, BooleanArray, Date32Array, Int64Array, StringArray, TimestampMicrosecondArray,
    };

    /// Two Toss records: one with every field, one with the nullable fields empty.
    fn toss_batch(status: [&str; 2], lines: [i64; 2]) -> RecordBatch {
        let text = |values: [Option<&str>; 2]| -> ArrayRef {
            Arc::new(StringArray::from(values.to_vec()))
        };
        // 2007-07-06 = 13700 days after 1970-01-01; 23:59:27 KST = 14:59:27 UTC.
        let at = 1_183_733_967_000_000;
        RecordBatch::try_new(
            toss_schema(),
            vec![
                text([Some("AUTH"), Some("AUTH")]),
                Arc::new(Date32Array::from(vec![13_700, 13_700])),
                text([Some("toss"), Some("toss")]),
                text([Some("SC0010"), Some("SC0030")]),
                text([Some("toss2007070623592792192"), Some("toss2")]),
                text([Some("Toss_1"), Some("Toss_2")]),
                text([Some("11100"), None]),
                text([Some("국민"), None]),
                text([Some("uytr120"), None]),
                Arc::new(Int64Array::from(vec![15_000, 91_000])),
                Arc::new(BooleanArray::from(vec![false, true])),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![at, at + 1_500_000])
                        .with_timezone("+09:00"),
                ),
                text([Some("30017594"), Some("0")]),
                text([Some(status[0]), Some(status[1])]),
                text([
                    Some("toss_AUTH_20070706.dat"),
                    Some("toss_AUTH_20070706.dat"),
                ]),
                Arc::new(Int64Array::from(lines.to_vec())),
            ],
        )
        .unwrap()
    }

    #[test]
    fn records_are_json_objects_with_rfc3339_times_dates_and_explicit_nulls() {
        let json = json_lines(&toss_batch(["10", "10"], [1, 2]), false).unwrap();
        let rows = lines(&json, 2).unwrap();
        assert_eq!(
            std::str::from_utf8(rows[0]).unwrap(),
            r#"{"record_kind":"AUTH","trxdate":"2007-07-06","mid":"toss","paytype":"SC0010","transaction":"toss2007070623592792192","oid":"Toss_1","financecode":"11100","financename":"국민","buyerid":"uytr120","amount":15000,"useescrow":false,"occurred_at":"2007-07-06T23:59:27+09:00","authnumber":"30017594","status":"10","source_file":"toss_AUTH_20070706.dat","source_line":1}"#
        );
        let second: serde_json::Value = serde_json::from_slice(rows[1]).unwrap();
        assert_eq!(second["financecode"], serde_json::Value::Null);
        assert_eq!(second["buyerid"], serde_json::Value::Null);
        assert!(second.as_object().unwrap().contains_key("financename"));
        assert_eq!(second["occurred_at"], "2007-07-06T23:59:28.500+09:00");
        assert_eq!(second["useescrow"], true);
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently: hmac.new(b"whsec_test", b'1700000000.{"records":[]}',
        // hashlib.sha256).hexdigest()
        assert_eq!(
            signature(b"whsec_test", 1_700_000_000, br#"{"records":[]}"#),
            "t=1700000000,v1=039a25bfba8a9a26e45079bf46ae189a835a82359dd7ab71e0f84728e9e127d9"
        );
    }

    #[test]
    fn the_idempotency_key_is_stable_for_a_batch_and_differs_for_another() {
        let batch = [(1u128, 10u128), (2, 20)];
        let id = batch_id("daily:ab", "toss_AUTH_20070706.dat", &batch);
        assert_eq!(id.len(), 32);
        assert_eq!(id, batch_id("daily:ab", "toss_AUTH_20070706.dat", &batch));
        let others = [
            batch_id("daily:ab", "toss_AUTH_20070706.dat", &[(1, 10), (2, 21)]),
            batch_id("daily:ab", "toss_AUTH_20070706.dat", &[(2, 20), (1, 10)]),
            batch_id("daily:ab", "toss_AUTH_20070706.dat", &[(1, 10)]),
            batch_id("daily:ab", "toss_REV_20070706.dat", &batch),
            batch_id("daily:cd", "toss_AUTH_20070706.dat", &batch),
        ];
        for other in others {
            assert_ne!(id, other);
        }
    }

    #[test]
    fn the_envelope_is_valid_json_with_the_records_in_order() {
        let records = vec![br#"{"a":1}"#.to_vec(), br#"{"a":"\"x\""}"#.to_vec()];
        let body = envelope("daily", "toss \"AUTH\".dat", "abc", &records);
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "pipeline": "daily",
                "source_file": "toss \"AUTH\".dat",
                "batch_id": "abc",
                "records": [{"a": 1}, {"a": "\"x\""}],
            })
        );
    }

    fn sink(state_dir: &std::path::Path, extra: &str) -> WebhookSink {
        let config: WebhookSinkConfig = toml::from_str(&format!(
            "url = \"http://127.0.0.1:9/hook\"\nsecret = \"whsec\"\n{extra}"
        ))
        .unwrap();
        config
            .build_sink(
                "webhook".into(),
                &SinkContext {
                    pipeline: "daily",
                    state_dir,
                    record_key: &crate::parser::toss::RECORD_KEY.map(String::from),
                },
            )
            .unwrap()
    }

    fn unit() -> LoadUnit {
        let name = crate::toss::TossFileName::parse("toss_AUTH_20070706.dat").unwrap();
        crate::sources::toss_file_unit(&name, name.file_name(), Default::default())
    }

    /// How many records a writer would send for `batch`, once `acknowledged` was recorded.
    fn pending(batch: &RecordBatch, acknowledged: &[(u128, u128)]) -> u64 {
        let dir = tempfile::tempdir().unwrap();
        let sink = sink(dir.path(), "");
        StateStore::open(dir.path())
            .unwrap()
            .record_webhook_sent(&sink.sink_id, "toss_AUTH_20070706.dat", acknowledged)
            .unwrap();
        let mut writer = sink.writer(&unit(), &toss_schema()).unwrap();
        writer.keep(batch).unwrap();
        writer.pending
    }

    #[test]
    fn only_new_or_changed_records_are_spooled() {
        let batch = toss_batch(["10", "10"], [1, 2]);
        assert_eq!(pending(&batch, &[]), 2);

        // What the first load would have acknowledged.
        let hashes = hashes_of(&batch);
        assert_eq!(
            pending(&batch, &hashes),
            0,
            "unchanged records are not sent"
        );
        let moved = toss_batch(["10", "10"], [7, 9]);
        assert_eq!(
            pending(&moved, &hashes),
            0,
            "a record that only moved line is unchanged"
        );
        let changed = toss_batch(["10", "11"], [1, 2]);
        assert_eq!(pending(&changed, &hashes), 1, "the changed status is sent");
        assert_eq!(pending(&batch, &hashes[..1]), 1, "the new record is sent");
    }

    fn hashes_of(batch: &RecordBatch) -> Vec<(u128, u128)> {
        let keys = json_lines(&batch.project(&[0, 1, 2, 3, 4, 5]).unwrap(), true).unwrap();
        let content = json_lines(
            &batch
                .project(&(0..batch.num_columns() - 1).collect::<Vec<_>>())
                .unwrap(),
            false,
        )
        .unwrap();
        lines(&keys, 2)
            .unwrap()
            .into_iter()
            .zip(lines(&content, 2).unwrap())
            .map(|(key, content)| (xxh3_128(key), xxh3_128(content)))
            .collect()
    }

    #[test]
    fn a_key_column_the_records_lack_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let sink = sink(dir.path(), "key = [\"transaction\", \"order_id\"]");
        let message = sink
            .writer(&unit(), &toss_schema())
            .err()
            .unwrap()
            .to_string();
        assert!(message.contains("key"), "{message}");
        assert!(message.contains("`order_id`"), "{message}");
        assert!(message.contains("transaction, oid"), "{message}");
    }

    #[test]
    fn the_same_key_with_other_content_in_one_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let sink = sink(dir.path(), "key = [\"mid\"]");
        let mut writer = sink.writer(&unit(), &toss_schema()).unwrap();
        let message = writer
            .keep(&toss_batch(["10", "10"], [1, 2]))
            .unwrap_err()
            .to_string();
        assert!(message.contains("line 2"), "{message}");
        assert!(message.contains("set `key`"), "{message}");
    }

    #[test]
    fn bad_settings_are_named_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let build = |extra: &str, url: &str| {
            let config: WebhookSinkConfig =
                toml::from_str(&format!("url = \"{url}\"\nsecret = \"whsec\"\n{extra}")).unwrap();
            config
                .build_sink(
                    "webhook".into(),
                    &SinkContext {
                        pipeline: "daily",
                        state_dir: dir.path(),
                    },
                )
                .err()
                .map(|err| err.to_string())
                .unwrap_or_default()
        };
        let ok = "http://127.0.0.1:9/hook";
        assert!(build("batch_rows = 0", ok).contains("webhook batch_rows"));
        assert!(build("", "ftp://host/x").contains("webhook url"));
        let bad_url = build("", "https://user:tok-99@/x");
        assert!(bad_url.contains("webhook url"), "{bad_url}");
        assert!(!bad_url.contains("tok-99"), "{bad_url}");
        let reserved = build("[headers]\nIdempotency-Key = \"x\"", ok);
        assert!(reserved.contains("set by the sink"), "{reserved}");
        let bad_value = build("[headers]\nAuthorization = \"Bearer a\\nb\"", ok);
        assert!(bad_value.contains("`Authorization`"), "{bad_value}");
        assert!(!bad_value.contains("Bearer"), "{bad_value}");
        assert!(build("key = []", ok).contains("webhook key"));
        assert_eq!(build("[headers]\nAuthorization = \"Bearer a\"", ok), "");
    }
}
