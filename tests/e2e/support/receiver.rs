//! A local webhook receiver, as a merchant would write one: it verifies every request's signature
//! with the shared secret (and a timestamp tolerance) — the Standard Webhooks headers for a
//! `whsec_` secret, `X-Toss-Etl-Signature` for any other — keeps deliveries by
//! `Idempotency-Key`, and can be told to answer the next requests with a server error, 429 with
//! `Retry-After`, silence past the client's timeout, or a reset connection. Several requests may
//! share one connection (keep-alive), as reqwest sends them. The HTTP side is
//! [`HttpServer`](super::http_server::HttpServer); this layer verifies, keeps and plans.

use super::http_server::{HttpServer, Reply, Request, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{KeyInit, Mac};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How far a signature's timestamp may be from the receiver's clock.
const TOLERANCE_SECS: u64 = 300;

/// What the receiver does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 200, and the delivery is kept.
    Accept,
    /// This status, nothing kept.
    Status(u16),
    /// 429 with `Retry-After`, nothing kept.
    TooManyRequests { retry_after_secs: u64 },
    /// Reads the request, then answers nothing for this long and closes the connection.
    Hang(Duration),
    /// Keeps the delivery (it reached the merchant's system), then hangs: the answer is lost.
    AcceptThenHang(Duration),
    /// Reads the request, then resets the connection (TCP RST).
    Reset,
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub signature_valid: bool,
    pub answer: Answer,
    pub at: Instant,
}

impl Seen {
    pub fn key(&self) -> &str {
        self.headers
            .get("idempotency-key")
            .map(String::as_str)
            .unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

#[derive(Default)]
struct State {
    secret: String,
    planned: VecDeque<Answer>,
    seen: Vec<Seen>,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl Receiver {
    pub fn start(secret: &str) -> Self {
        let state = Arc::new(Mutex::new(State {
            secret: secret.to_owned(),
            ..State::default()
        }));
        let shared = Arc::clone(&state);
        let server = HttpServer::start(move |request| answer(request, &shared));
        Receiver {
            addr: server.addr,
            state,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks/toss", self.addr)
    }

    /// The answers to the next requests, in order; `Accept` after them.
    pub fn plan(&self, answers: Vec<Answer>) {
        self.state.lock().unwrap().planned = answers.into();
    }

    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// The deliveries the receiver kept (answered 200, or kept before hanging), in order;
    /// the same batch may be there twice.
    pub fn kept(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|seen| matches!(seen.answer, Answer::Accept | Answer::AcceptThenHang(_)))
            .collect()
    }

    /// The records the merchant's system holds after dropping deliveries whose
    /// `Idempotency-Key` it had seen before.
    pub fn deduplicated_records(&self) -> Vec<serde_json::Value> {
        let mut by_key = BTreeMap::new();
        for seen in self.kept() {
            by_key.entry(seen.key().to_owned()).or_insert(seen);
        }
        let mut kept: Vec<&Seen> = by_key.values().collect();
        kept.sort_by_key(|seen| seen.at);
        kept.iter()
            .flat_map(|seen| seen.json()["records"].as_array().unwrap().clone())
            .collect()
    }

    /// Fails the test if any request so far was not signed right or not shaped as documented.
    /// Standard Webhooks signatures are checked by the `standardwebhooks` library too, as a
    /// receiver in Python would check them.
    pub fn assert_every_request_signed(&self) {
        let seen = self.seen();
        let secret = self.state.lock().unwrap().secret.clone();
        if secret.starts_with("whsec_") {
            let verdicts = verify_with_library(&secret, &seen);
            assert!(
                verdicts.iter().all(|verdict| verdict == "ok"),
                "the standardwebhooks library refused: {verdicts:?}"
            );
            for request in &seen {
                assert_eq!(
                    request.headers.get("webhook-id").map(String::as_str),
                    Some(request.key()),
                    "webhook-id is the Idempotency-Key"
                );
            }
        }
        for (index, seen) in seen.iter().enumerate() {
            assert!(
                seen.signature_valid,
                "request {index} has a bad signature: {:?} {:?}",
                seen.headers.get("x-toss-etl-signature"),
                seen.headers.get("webhook-signature")
            );
            let json = seen.json();
            assert_eq!(
                json["batch_id"].as_str(),
                Some(seen.key()),
                "request {index}: batch_id and Idempotency-Key differ"
            );
            assert_eq!(seen.key().len(), 32, "request {index}");
            assert_eq!(
                seen.headers.get("content-type").map(String::as_str),
                Some("application/json")
            );
        }
    }
}

/// What the `standardwebhooks` Python library says of each request under `secret`: `ok`, or
/// the error it raised (`WebhookVerificationError: …`).
pub fn verify_with_library(secret: &str, requests: &[Seen]) -> Vec<String> {
    let requests: Vec<serde_json::Value> = requests
        .iter()
        .map(|request| {
            serde_json::json!({
                "headers": request.headers,
                "body": BASE64.encode(&request.body),
            })
        })
        .collect();
    let input = serde_json::json!({ "secret": secret, "requests": requests }).to_string();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/e2e/support/standard_webhooks_verify.py");
    let python =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/moto-venv/bin/python");
    assert!(
        python.exists(),
        "the tests' Python environment is missing: run scripts/ensure-python.sh"
    );
    let mut child = std::process::Command::new(python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the verifier failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the verifier prints a JSON list")
}

/// Whether a request's Standard Webhooks headers sign `body` under `secret` (`whsec_…`), with a
/// fresh timestamp: any one `v1,` signature in the header may match.
pub fn verify_standard(secret: &str, headers: &HashMap<String, String>, body: &[u8]) -> bool {
    let (Some(id), Some(timestamp), Some(signatures)) = (
        headers.get("webhook-id"),
        headers.get("webhook-timestamp"),
        headers.get("webhook-signature"),
    ) else {
        return false;
    };
    let Ok(timestamp_secs) = timestamp.parse::<u64>() else {
        return false;
    };
    if !fresh(timestamp_secs) {
        return false;
    }
    let key = BASE64
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()));
    signatures.split(' ').any(|signature| signature == expected)
}

/// Whether a signature's timestamp (Unix seconds) is within the tolerance of the clock.
fn fresh(timestamp: u64) -> bool {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    now.abs_diff(timestamp) <= TOLERANCE_SECS
}

/// Whether `header` (`t=…,v1=…`) signs `body` under `secret`, with a fresh timestamp.
pub fn verify(secret: &str, header: &str, body: &[u8]) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<u64>().ok(),
            Some(("v1", value)) => signatures.push(value.to_owned()),
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return false;
    };
    if !fresh(timestamp) {
        return false;
    }
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    let expected = hex::encode(mac.finalize().into_bytes());
    signatures.iter().any(|signature| {
        // Constant-time in a real receiver; equality is enough for a test.
        signature == &expected
    })
}

/// Verifies and keeps one request, and replies as planned.
fn answer(request: &Request, state: &Mutex<State>) -> Reply {
    let answer = {
        let mut state = state.lock().unwrap();
        let signature_valid = if state.secret.starts_with("whsec_") {
            verify_standard(&state.secret, &request.headers, &request.body)
        } else {
            request
                .header("x-toss-etl-signature")
                .is_some_and(|header| verify(&state.secret, header, &request.body))
        };
        let planned = state.planned.pop_front().unwrap_or(Answer::Accept);
        // A receiver refuses what it cannot verify.
        let answer = if signature_valid {
            planned
        } else {
            Answer::Status(401)
        };
        state.seen.push(Seen {
            headers: request.headers.clone(),
            body: request.body.clone(),
            signature_valid,
            answer: answer.clone(),
            at: Instant::now(),
        });
        answer
    };
    let respond = |status: u16, reason: &str, body: &str| {
        Response::new(status, reason, body).header("Content-Type", "text/plain")
    };
    match answer {
        Answer::Accept => Reply::Send(respond(200, "OK", "ok")),
        Answer::Status(code) => Reply::Send(respond(
            code,
            "Error",
            "{\"error\":\"refused by the test receiver\"}",
        )),
        Answer::TooManyRequests { retry_after_secs } => Reply::Send(
            respond(429, "Too Many Requests", "slow down")
                .header("Retry-After", &retry_after_secs.to_string()),
        ),
        Answer::Hang(pause) | Answer::AcceptThenHang(pause) => Reply::Hang(pause),
        Answer::Reset => Reply::Reset,
    }
}
