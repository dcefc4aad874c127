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
//! at least once, and the `Idempotency-Key` (a hash of the batch's records, sent as the
//! `webhook-id` too) lets the receiver drop a batch it already has.
//!
//! The secret, the header values and the URL's query never appear in logs or errors; what the
//! receiver answers goes through a [`Scrubber`] of the secret, the header values (and the token or
//! Basic credentials in them) and the URL's password and token parameters before it is shown.
//!
//! - this file: the `[[sinks]]` keys, and the [`Sink`] the engine calls;
//! - [`changes`]: which records identify as what, and which of them the receiver does not have
//!   yet;
//! - [`spool`]: the temporary file holding the records to send until commit;
//! - [`writer`]: the [`SinkWriter`] of one source file, from its batches to acknowledged
//!   requests;
//! - [`delivery`]: one signed request per batch, and its retries;
//! - [`signing`]: the signature headers (Standard Webhooks, or the engine's first format).

mod acks;
mod changes;
mod delivery;
mod signing;
mod spool;
mod writer;

use super::{BuildSink, LoadUnit, Sink, SinkContext, SinkWriter};
use crate::env::{EnvString, Secret};
use crate::error::{Error, Result};
use crate::remote::http::{ClientSettings, Redirects};
use crate::remote::retry::RetryPolicy;
use crate::remote::scrub::Scrubber;
use arrow::datatypes::SchemaRef;
use delivery::Delivery;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use signing::{SignatureFormat, Signer};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// The header carrying the batch's idempotency key (the same as its `batch_id`).
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// Headers the sink sets itself; `headers` may not replace them.
const RESERVED_HEADERS: [&str; 9] = [
    "content-type",
    "content-length",
    "transfer-encoding",
    "host",
    "idempotency-key",
    "x-toss-etl-signature",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

/// `timeout_secs`, `retries` and `retry_base_ms` when the pipeline file leaves them out: a
/// receiver that is down for a minute or two (a deploy) should not fail the run.
const RETRY_DEFAULTS: RetryPolicy = RetryPolicy {
    timeout_secs: 30,
    retries: 5,
    retry_base_ms: 1000,
};

/// `[[sinks]]` with `type = "webhook"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSinkConfig {
    /// The receiver's address, `https://…` (or `http://`). Redirects are not followed.
    pub url: EnvString,
    /// Signs every request (HMAC-SHA256); write `${WEBHOOK_SECRET}`, never the secret itself.
    /// With Standard Webhooks signatures it is `whsec_` + the key in base64.
    #[serde(default)]
    pub secret: Option<Secret>,
    /// Instead of `secret`, during a key rotation: every request is signed with each of them
    /// (`["${NEW}", "${OLD}"]`), so the receiver can move to the new one without losing a batch.
    #[serde(default)]
    pub secrets: Option<Vec<Secret>>,
    /// The signature headers: `standard-webhooks` (default; `webhook-id`, `webhook-timestamp`,
    /// `webhook-signature`) or `toss-etl` (`X-Toss-Etl-Signature`, the engine's first format).
    #[serde(default)]
    pub signature: SignatureFormat,
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
    /// The columns that identify a record (default the parser's record key — record_kind,
    /// trxdate, mid, paytype, transaction, oid — when the records carry it, else every column
    /// but `source_line`).
    #[serde(default, deserialize_with = "crate::env::expanded_list_option")]
    pub key: Option<Vec<String>>,
    /// Accept any TLS certificate. Only for a test receiver.
    #[serde(default)]
    pub tls_insecure: bool,
}

fn default_batch_rows() -> usize {
    1000
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

impl BuildSink for WebhookSinkConfig {
    fn build(&self, name: String, context: &SinkContext) -> Result<Box<dyn Sink>> {
        Ok(Box::new(self.build_sink(name, context)?))
    }
}

impl WebhookSinkConfig {
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            timeout_secs: self.timeout_secs,
            retries: self.retries,
            retry_base_ms: self.retry_base_ms,
        }
    }

    /// The secrets to sign with, and the key they were given under.
    fn secrets(&self, at: &dyn Fn(&str) -> String) -> Result<(Vec<Secret>, &'static str)> {
        match (&self.secret, &self.secrets) {
            (Some(_), Some(_)) => Err(Error::config(
                at("secrets"),
                "give either secret or secrets (a rotation), not both",
            )),
            (None, None) => Err(Error::config(
                at("secret"),
                "secret is missing; set it from the environment: secret = \"${WEBHOOK_SECRET}\"",
            )),
            (Some(secret), None) => Ok((vec![secret.clone()], "secret")),
            (None, Some(secrets)) if secrets.is_empty() => Err(Error::config(
                at("secrets"),
                "secrets is empty; list the new secret first and the old one after it: \
                 secrets = [\"${WEBHOOK_SECRET_NEW}\", \"${WEBHOOK_SECRET_OLD}\"]",
            )),
            (None, Some(secrets)) => Ok((secrets.clone(), "secrets")),
        }
    }

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
        let (secrets, secrets_key) = self.secrets(&at)?;
        let exposed: Vec<&str> = secrets.iter().map(|secret| secret.expose()).collect();
        let signer = Signer::new(self.signature, &exposed).map_err(|bad| {
            let which = if secrets_key == "secrets" {
                format!("secrets entry {}", bad.position)
            } else {
                "secret".to_owned()
            };
            Error::config(
                at(secrets_key),
                format!(
                    "{which} {} (signature = \"{}\")",
                    bad.why,
                    self.signature.as_str()
                ),
            )
        })?;
        if self.batch_rows == 0 {
            return Err(Error::config(
                at("batch_rows"),
                "batch_rows must be at least 1 (default 1000)",
            ));
        }
        let retry_policy = self.retry_policy();
        retry_policy.check(&format!("[[sinks]] {name}"))?;
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

        if self.tls_insecure {
            tracing::warn!(sink = %name, "tls_insecure = true: the webhook accepts any certificate");
        }
        let client = crate::remote::http::client(ClientSettings {
            section: &format!("[[sinks]] {name}"),
            timeout: retry_policy.timeout(),
            redirects: Redirects::Refuse,
            ca_file: None,
            tls_insecure: self.tls_insecure,
        })?;

        let mut scrubber = Scrubber::new();
        for secret in &exposed {
            scrubber.add(secret);
        }
        for value in self.headers.values() {
            scrubber.add_header_value(value.expose());
        }
        scrubber.add_url(&url);
        Ok(WebhookSink {
            name: name.clone(),
            sink_id: sink_id(context.pipeline, &url),
            pipeline: context.pipeline.to_owned(),
            state_dir: context.state_dir.to_path_buf(),
            memory: context.memory("webhook"),
            batch_rows: self.batch_rows,
            key: self.key.clone(),
            record_key: context.record_key.to_vec(),
            delivery: Arc::new(Delivery {
                sink: name,
                client,
                origin: url.origin().ascii_serialization(),
                url,
                signer,
                headers,
                retry_policy,
                scrubber,
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
    /// The webhook's own tables in the state file: what the receiver acknowledged.
    memory: crate::sinks::SinkMemory,
    batch_rows: usize,
    key: Option<Vec<String>>,
    /// The format's record key, the default of `key`.
    record_key: Vec<String>,
    delivery: Arc<Delivery>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_are_named_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let build = |extra: &str, url: &str| {
            let config: WebhookSinkConfig =
                toml::from_str(&format!("url = \"{url}\"\n{extra}")).unwrap();
            config
                .build_sink(
                    "webhook".into(),
                    &SinkContext {
                        pipeline: "daily",
                        state_dir: dir.path(),
                        record_key: &[],
                    },
                )
                .err()
                .map(|err| err.to_string())
                .unwrap_or_default()
        };
        let ok = "http://127.0.0.1:9/hook";
        let secret = "secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"";
        let build = |extra: &str, url: &str| {
            if extra.contains("secret") {
                build(extra, url)
            } else {
                build(&format!("{secret}\n{extra}"), url)
            }
        };
        assert!(build("batch_rows = 0", ok).contains("webhook batch_rows"));
        let old = build("secret = \"hunter2-old-style\"", ok);
        assert!(old.contains("webhook secret"), "{old}");
        assert!(old.contains("signature = \"toss-etl\""), "{old}");
        assert!(!old.contains("hunter2"), "{old}");
        assert_eq!(
            build(
                "secret = \"hunter2-old-style\"\nsignature = \"toss-etl\"",
                ok
            ),
            ""
        );
        let rotation = build(
            "secrets = [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\", \"x\"]",
            ok,
        );
        assert!(rotation.contains("webhook secrets"), "{rotation}");
        assert!(rotation.contains("secrets entry 2"), "{rotation}");
        let both = build(&format!("{secret}\nsecrets = []"), ok);
        assert!(both.contains("not both"), "{both}");
        assert!(
            build(
                "batch_rows = 10\nsignature = \"toss-etl\"\nsecrets = []",
                ok
            )
            .contains("secrets is empty")
        );
        assert!(
            build("signature = \"toss-etl\" # and no secret", ok).contains("secret is missing")
        );
        assert!(build("", "ftp://host/x").contains("webhook url"));
        let bad_url = build("", "https://user:tok-99@/x");
        assert!(bad_url.contains("webhook url"), "{bad_url}");
        assert!(!bad_url.contains("tok-99"), "{bad_url}");
        for header in ["Idempotency-Key", "webhook-signature", "Webhook-Id"] {
            let reserved = build(&format!("[headers]\n{header} = \"x\""), ok);
            assert!(reserved.contains("set by the sink"), "{reserved}");
        }
        let bad_value = build("[headers]\nAuthorization = \"Bearer a\\nb\"", ok);
        assert!(bad_value.contains("`Authorization`"), "{bad_value}");
        assert!(!bad_value.contains("Bearer"), "{bad_value}");
        assert!(build("key = []", ok).contains("webhook key"));
        assert_eq!(build("[headers]\nAuthorization = \"Bearer a\"", ok), "");
    }
}
