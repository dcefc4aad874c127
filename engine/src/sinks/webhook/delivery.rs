//! One batch to the receiver: a POST of the batch's envelope, signed with the secrets (see
//! `signing.rs`; over a fresh timestamp at every attempt) and named by its `Idempotency-Key`
//! (which is also its `webhook-id`: a retry carries the same one), retried on 5xx, 408, 429 (after its `Retry-After`), timeouts and dropped
//! connections. Any other answer is final: retrying a 4xx would not help, and a redirect is
//! refused because following it would send the signed records somewhere the pipeline file does
//! not name.

use super::IDEMPOTENCY_HEADER;
use super::signing::Signer;
use crate::remote::http::describe_error;
use crate::remote::retry::{Attempt, Failed, RetryPolicy, retry};
use crate::remote::retry_after::retry_after;
use crate::remote::scrub::Scrubber;
use bytes::Bytes;
use reqwest::header::HeaderMap;
use sha2::{Digest, Sha256};
use std::time::{SystemTime, UNIX_EPOCH};

/// Everything needed to send one signed request, shared by a sink's writers.
pub(super) struct Delivery {
    pub(super) sink: String,
    pub(super) client: reqwest::Client,
    pub(super) url: reqwest::Url,
    /// `scheme://host:port`: how the receiver is named in messages.
    pub(super) origin: String,
    pub(super) signer: Signer,
    pub(super) headers: HeaderMap,
    pub(super) retry_policy: RetryPolicy,
    /// The secrets to blank out of anything a receiver answers.
    pub(super) scrubber: Scrubber,
}

impl Delivery {
    /// Sends one batch until the receiver accepts it or the retries run out; returns the
    /// retries it took.
    pub(super) async fn deliver(
        &self,
        body: &Bytes,
        batch_id: &str,
        source_file: &str,
    ) -> std::result::Result<u32, Failed> {
        let what = format!("{}: {source_file}, batch {batch_id}", self.sink);
        let delivered = retry(&self.retry_policy, &what, || self.attempt(body, batch_id)).await?;
        Ok(delivered.retries)
    }

    /// One signed POST of `body`, with the secrets scrubbed out of why it failed.
    async fn attempt(&self, body: &Bytes, batch_id: &str) -> Attempt<()> {
        match self.attempt_unscrubbed(body, batch_id).await {
            Attempt::Done(()) => Attempt::Done(()),
            Attempt::Retry { why, after } => Attempt::Retry {
                why: self.scrubber.scrub(&why),
                after,
            },
            Attempt::Fail(why) => Attempt::Fail(self.scrubber.scrub(&why)),
        }
    }

    async fn attempt_unscrubbed(&self, body: &Bytes, batch_id: &str) -> Attempt<()> {
        // A fresh timestamp on every attempt, so a retry is not refused as a replay.
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|since| since.as_secs())
            .unwrap_or(0);
        let mut request = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(IDEMPOTENCY_HEADER, batch_id);
        for (header, value) in self.signer.headers(batch_id, timestamp, body) {
            request = request.header(header, value);
        }
        let request = request.body(body.clone());
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) if err.is_builder() => {
                return Attempt::Fail(format!(
                    "cannot build the request: {}",
                    describe_error(&err)
                ));
            }
            Err(err) => return Attempt::retry(describe_error(&err)),
        };
        let status = response.status();
        if status.is_success() {
            // Accepted whatever follows; reading the answer lets the connection be reused.
            let _ = response.bytes().await;
            return Attempt::Done(());
        }
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Attempt::Retry {
                why: format!("{} answered HTTP {status}", self.origin),
                after: retry_after(response.headers()),
            };
        }
        if status.is_server_error() || status == reqwest::StatusCode::REQUEST_TIMEOUT {
            return Attempt::retry(format!("{} answered HTTP {status}", self.origin));
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
            .map(|body| self.scrubber.excerpt(&body, 200))
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
}

/// Why a batch was not delivered, and after how many attempts: `HTTP 500 … (gave up after 3
/// attempts)` or `HTTP 400 … (not retried)`.
pub(super) fn describe(failed: &Failed) -> String {
    match failed {
        Failed::Refused { why, attempts: 1 } => format!("{why} (not retried)"),
        Failed::Refused { why, attempts } => format!("{why} (on attempt {attempts}; not retried)"),
        Failed::Exhausted { why, attempts: 1 } => format!("{why} (gave up after 1 attempt)"),
        Failed::Exhausted { why, attempts } => format!("{why} (gave up after {attempts} attempts)"),
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

/// A batch's `batch_id` and `Idempotency-Key`: a hash of the sink, the file and the batch's
/// records (key and content hashes, in order). A retry, and a later run that forms the same
/// batch again, carry the same value.
pub(super) fn batch_id(sink_id: &str, source_file: &str, records: &[(u128, u128)]) -> String {
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

/// `{"pipeline": …, "source_file": …, "batch_id": …, "records": [ … ]}`
pub(super) fn envelope(
    pipeline: &str,
    source_file: &str,
    batch_id: &str,
    records: &[Vec<u8>],
) -> Vec<u8> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
