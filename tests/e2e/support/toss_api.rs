//! A local stand-in for Toss Payments' v1 REST API (`/v1/transactions`, `/v1/settlements`, as
//! `/work/shared/spec/toss-api.md` §1–3, 5 and 7 describe them): it checks `Authorization: Basic
//! base64(secretKey + ":")` on every request, filters and pages rows the test put in (held as
//! `serde_json::Value` objects, so a test can put in any drift and change them at any time), and
//! can be told to fail in each way the real one does or might. The HTTP side is
//! [`HttpServer`](super::http_server::HttpServer), whose log is the list of requests seen.

use super::http_server::{HttpServer, Reply, Request, Response};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeDelta};
use md5::{Digest, Md5};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const TRANSACTIONS: &str = "/v1/transactions";
pub const SETTLEMENTS: &str = "/v1/settlements";

/// The merchant id the generators write.
pub const MID: &str = "tvivarepublica";

const MAX_ROWS: usize = 5000;
const DEFAULT_ROWS: usize = 100;

/// What the server does with one (correctly authorised) request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// The rows asked for (or the 400 that bad parameters earn).
    Rows,
    /// `429` with a JSON error body, and `Retry-After: N` when given.
    TooManyRequests { retry_after_secs: Option<u64> },
    /// This status with a JSON error body (`500` → `FAILED_INTERNAL_SYSTEM_PROCESSING`).
    Status(u16),
    /// Waits this long, then answers with the rows.
    Slow(Duration),
    /// `400 INVALID_TRANSACTION_KEY`, but only to a request that has a `startingAfter`: a request
    /// without one passes this answer by and leaves it (and the rest of its plan) in place.
    InvalidTransactionKey,
    /// `200` with an HTML maintenance page (`Content-Type: text/html`).
    HtmlMaintenance,
    /// The head of the rows' answer, `Content-Length` stating all of it, half the body, then the
    /// connection closes.
    ResetMidBody,
    /// `500` whose body is the request line and every header, `Authorization` included.
    EchoRequest,
}

/// Which requests a plan applies to. A request's day is the date of its `startDate`.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    All,
    Path(&'static str),
    Day(&'static str, NaiveDate),
}

impl Scope {
    fn key(self) -> PlanKey {
        match self {
            Scope::All => (None, None),
            Scope::Path(path) => (Some(path.to_owned()), None),
            Scope::Day(path, day) => (Some(path.to_owned()), Some(day)),
        }
    }
}

type PlanKey = (Option<String>, Option<NaiveDate>);

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    /// The query's pairs, percent-decoded.
    pub query: HashMap<String, String>,
    /// Whether it carried the right `Authorization` header.
    pub authorized: bool,
    pub at: Instant,
}

impl Seen {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }
}

#[derive(Default)]
struct State {
    /// By `transactionKey`.
    transactions: BTreeMap<String, Value>,
    /// By (`transactionKey`, `soldDate`).
    settlements: BTreeMap<(String, String), Value>,
    /// Answers to give, in order, per scope (day, then path, then all); then `always`, then rows.
    planned: HashMap<PlanKey, VecDeque<Answer>>,
    always: HashMap<PlanKey, Answer>,
}

#[derive(Clone)]
pub struct TossApi {
    server: HttpServer,
    state: Arc<Mutex<State>>,
    authorization: String,
}

impl TossApi {
    /// Starts a server that accepts `secret_key` (e.g. `test_sk_…`) and holds no rows.
    pub fn start(secret_key: &str) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let authorization = basic_auth(secret_key);
        let shared = Arc::clone(&state);
        let expected = authorization.clone();
        let server = HttpServer::start(move |request| answer(request, &expected, &shared));
        TossApi {
            server,
            state,
            authorization,
        }
    }

    /// `http://127.0.0.1:PORT`, the stand-in for `https://api.tosspayments.com`.
    pub fn base_url(&self) -> String {
        self.server.url("")
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr
    }

    /// The `Authorization` header value the server accepts.
    pub fn authorization(&self) -> &str {
        &self.authorization
    }

    /// Adds the row, or replaces the one with its `transactionKey`.
    pub fn put_transaction(&self, row: Value) {
        let key = row["transactionKey"]
            .as_str()
            .expect("a transaction row has a string transactionKey")
            .to_owned();
        self.state.lock().unwrap().transactions.insert(key, row);
    }

    pub fn remove_transaction(&self, transaction_key: &str) -> Option<Value> {
        self.state
            .lock()
            .unwrap()
            .transactions
            .remove(transaction_key)
    }

    /// Adds the row, or replaces the one with its `transactionKey` and `soldDate`.
    pub fn put_settlement(&self, row: Value) {
        let field = |name: &str| row[name].as_str().unwrap_or_default().to_owned();
        let key = (field("transactionKey"), field("soldDate"));
        self.state.lock().unwrap().settlements.insert(key, row);
    }

    /// Removes every settlement row of the transaction; returns how many there were.
    pub fn remove_settlement(&self, transaction_key: &str) -> usize {
        let mut state = self.state.lock().unwrap();
        let before = state.settlements.len();
        state
            .settlements
            .retain(|(key, _), _| key != transaction_key);
        before - state.settlements.len()
    }

    /// Gives these answers, in order, to the next requests in `scope` (after any plan of a
    /// narrower scope that applies), before the normal ones.
    pub fn plan(&self, scope: Scope, answers: Vec<Answer>) {
        self.state
            .lock()
            .unwrap()
            .planned
            .entry(scope.key())
            .or_default()
            .extend(answers);
    }

    /// Gives this answer to every request in `scope` once its plans are used up.
    pub fn always(&self, scope: Scope, answer: Answer) {
        self.state
            .lock()
            .unwrap()
            .always
            .insert(scope.key(), answer);
    }

    /// Forgets every plan and `always`.
    pub fn heal(&self) {
        let mut state = self.state.lock().unwrap();
        state.planned.clear();
        state.always.clear();
    }

    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.server
            .requests()
            .iter()
            .map(|request| Seen {
                path: request.path().to_owned(),
                query: decoded_query(request),
                authorized: request.header("authorization") == Some(&self.authorization),
                at: request.at,
            })
            .collect()
    }

    /// The requests to one path (`TRANSACTIONS`, `SETTLEMENTS`), in order.
    pub fn seen_at(&self, path: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|seen| seen.path == path)
            .collect()
    }
}

/// `Basic base64(secret_key + ":")`, padded standard base64.
pub fn basic_auth(secret_key: &str) -> String {
    format!("Basic {}", base64(format!("{secret_key}:").as_bytes()))
}

/// Padded standard base64.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let triple = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        for i in 0..4 {
            if i <= chunk.len() {
                text.push(char::from(ALPHABET[(triple >> (18 - 6 * i)) as usize & 63]));
            } else {
                text.push('=');
            }
        }
    }
    text
}

/// 32 uppercase hex digits, the same for the same `day` and `n`.
pub fn transaction_key(day: NaiveDate, n: u32) -> String {
    key("approval", day, n)
}

fn key(kind: &str, day: NaiveDate, n: u32) -> String {
    hex::encode_upper(Md5::digest(format!("{kind} {day} {n}")))
}

/// A card transaction row as `/v1/transactions` returns it: its key derived from `day` and `n`,
/// its `transactionAt` (KST) spread over `day` (distinct for distinct `n` below 86,400).
pub fn transaction(day: NaiveDate, n: u32, status: &str, amount: i64) -> Value {
    row("approval", day, n, status, amount)
}

fn row(kind: &str, day: NaiveDate, n: u32, status: &str, amount: i64) -> Value {
    let transaction_key = key(kind, day, n);
    let seconds = (i64::from(n) * 7919) % 86_400;
    let at = day.and_hms_opt(0, 0, 0).unwrap() + TimeDelta::seconds(seconds);
    json!({
        "mId": MID,
        "transactionKey": transaction_key,
        "paymentKey": format!("tviva{}{}", at.format("%Y%m%d%H%M%S"), &transaction_key[..5]),
        "orderId": format!("order-{}-{n}", day.format("%Y%m%d")),
        "method": "카드",
        "customerKey": null,
        "useEscrow": false,
        "receiptUrl": format!(
            "https://dashboard.tosspayments.com/receipt/redirection?transactionId={transaction_key}&ref=PX"
        ),
        "status": status,
        "transactionAt": format!("{}+09:00", at.format("%Y-%m-%dT%H:%M:%S")),
        "currency": "KRW",
        "amount": amount,
    })
}

/// A cancel transaction of `original` on `day`: its own key (from `day` and `n`), the original's
/// `paymentKey`, `orderId` and `mId`, a positive `amount`, status `CANCELED` (or
/// `PARTIAL_CANCELED` when it cancels less than the original amount).
pub fn cancel_of(original: &Value, day: NaiveDate, n: u32, amount: i64) -> Value {
    let status = if amount < original["amount"].as_i64().unwrap_or(0) {
        "PARTIAL_CANCELED"
    } else {
        "CANCELED"
    };
    let mut cancel = row("cancel", day, n, status, amount);
    for field in ["mId", "paymentKey", "orderId", "method"] {
        cancel[field] = original[field].clone();
    }
    cancel
}

/// The fee on `amount` won (about 2.5 %, rounded), its supply amount and its VAT:
/// `fee = supplyAmount + vat`.
pub fn fee_of(amount: i64) -> (i64, i64, i64) {
    let fee = (amount.abs() * 25 + 500) / 1000;
    let supply = (fee * 10 + 5) / 11;
    (fee, supply, fee - supply)
}

/// The settlement row of an approval transaction (a row of [`transaction`]) sold on `sold_date`,
/// paid out two days later.
pub fn settlement(approval: &Value, sold_date: NaiveDate) -> Value {
    let amount = approval["amount"].as_i64().unwrap_or(0);
    settlement_row(approval, approval, amount, sold_date, Value::Null)
}

/// The settlement row of a cancel (a row of [`cancel_of`]) of `approval`: the money negative, the
/// fee refunded, `cancel.cancelAmount` positive, `transactionKey` the cancel's.
pub fn cancel_settlement(approval: &Value, cancel: &Value, sold_date: NaiveDate) -> Value {
    let cancelled = cancel["amount"].as_i64().unwrap_or(0).abs();
    let original = approval["amount"].as_i64().unwrap_or(0);
    let detail = json!({
        "cancelAmount": cancelled,
        "cancelReason": "고객 요청",
        "taxFreeAmount": 0,
        "taxExemptionAmount": 0,
        "refundableAmount": (original - cancelled).max(0),
        "easyPayDiscountAmount": 0,
        "transferDiscountAmount": 0,
        "canceledAt": cancel["transactionAt"],
        "transactionKey": cancel["transactionKey"],
        "receiptKey": null,
        "cancelStatus": "DONE",
        "cancelRequestId": null,
    });
    settlement_row(approval, cancel, -cancelled, sold_date, detail)
}

fn settlement_row(
    approval: &Value,
    transaction: &Value,
    amount: i64,
    sold_date: NaiveDate,
    cancel: Value,
) -> Value {
    let (fee, supply, vat) = fee_of(amount);
    let sign = amount.signum();
    let (fee, supply, vat) = (fee * sign, supply * sign, vat * sign);
    let approve_no = approval["transactionKey"]
        .as_str()
        .and_then(|key| key.get(..8))
        .unwrap_or("00000000");
    json!({
        "mId": approval["mId"],
        "paymentKey": approval["paymentKey"],
        "transactionKey": transaction["transactionKey"],
        "orderId": approval["orderId"],
        "currency": approval["currency"],
        "method": approval["method"],
        "amount": amount,
        "interestFee": 0,
        "fees": [{"type": "BASE", "fee": fee}, {"type": "ETC", "fee": 0}],
        "fee": fee,
        "supplyAmount": supply,
        "vat": vat,
        "payOutAmount": amount - fee,
        "approvedAt": approval["transactionAt"],
        "soldDate": sold_date.to_string(),
        "paidOutDate": (sold_date + TimeDelta::days(2)).to_string(),
        "card": {
            "amount": approval["amount"],
            "issuerCode": "4V",
            "acquirerCode": "21",
            "number": "43301234****123*",
            "installmentPlanMonths": 0,
            "approveNo": approve_no,
            "useCardPoint": false,
            "cardType": "신용",
            "ownerType": "개인",
            "acquireStatus": if cancel.is_null() { "COMPLETED" } else { "CANCELED" },
            "isInterestFree": false,
            "interestPayer": null,
        },
        "cancel": cancel,
    })
}

/// The query's pairs, percent-decoded (`+` read as a space).
fn decoded_query(request: &Request) -> HashMap<String, String> {
    request
        .target
        .split_once('?')
        .map(|(_, query)| query)
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = if bytes[i] == b'%' {
            bytes.get(i + 1..i + 3)
        } else {
            None
        };
        let escaped = hex
            .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[i], escaped) {
            (_, Some(byte)) => {
                decoded.push(byte);
                i += 3;
            }
            (b'+', None) => {
                decoded.push(b' ');
                i += 1;
            }
            (byte, None) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

fn json_response(status: u16, body: &Value) -> Response {
    Response::new(status, reason(status), serde_json::to_vec(body).unwrap())
        .header("Content-Type", "application/json")
}

fn error(status: u16, code: &str, message: &str) -> Reply {
    Reply::Send(json_response(
        status,
        &json!({"code": code, "message": message}),
    ))
}

fn invalid_request(message: &str) -> Reply {
    error(400, "INVALID_REQUEST", message)
}

/// Checks one request as the API does and replies as planned for it.
fn answer(request: &Request, authorization: &str, state: &Mutex<State>) -> Reply {
    if request.header("authorization") != Some(authorization) {
        return error(
            401,
            "UNAUTHORIZED_KEY",
            "인증되지 않은 시크릿 키 혹은 클라이언트 키 입니다.",
        );
    }
    let path = request.path();
    if request.method != "GET" || ![TRANSACTIONS, SETTLEMENTS].contains(&path) {
        return error(404, "NOT_FOUND", "존재하지 않는 API 입니다.");
    }
    let query = decoded_query(request);
    let day = query
        .get("startDate")
        .and_then(|start| start.get(..10))
        .and_then(|date| NaiveDate::parse_from_str(date, "%Y-%m-%d").ok());
    let has_cursor = query.contains_key("startingAfter");
    let planned = {
        let mut state = state.lock().unwrap();
        let keys: [PlanKey; 3] = [
            (Some(path.to_owned()), day),
            (Some(path.to_owned()), None),
            (None, None),
        ];
        let mut chosen = None;
        for key in &keys {
            let Some(queue) = state.planned.get_mut(key) else {
                continue;
            };
            match queue.front() {
                Some(Answer::InvalidTransactionKey) if !has_cursor => continue,
                Some(_) => {
                    chosen = queue.pop_front();
                    break;
                }
                None => continue,
            }
        }
        chosen
            .or_else(|| keys.iter().find_map(|key| state.always.get(key).cloned()))
            .unwrap_or(Answer::Rows)
    };
    let rows = || {
        let state = state.lock().unwrap();
        if path == TRANSACTIONS {
            transactions(&query, &state)
        } else {
            settlements(&query, &state)
        }
    };
    match planned {
        Answer::Rows => rows(),
        Answer::TooManyRequests { retry_after_secs } => {
            let mut response = json_response(
                429,
                &json!({"code": "TOO_MANY_REQUESTS", "message": "요청량이 너무 많습니다. 잠시 후 다시 시도해주세요."}),
            );
            if let Some(secs) = retry_after_secs {
                response = response.header("Retry-After", &secs.to_string());
            }
            Reply::Send(response)
        }
        Answer::Status(500) => error(
            500,
            "FAILED_INTERNAL_SYSTEM_PROCESSING",
            "내부 시스템 처리 작업이 실패했습니다. 잠시 후 다시 시도해주세요.",
        ),
        Answer::Status(status) => error(status, "UNKNOWN_ERROR", "알 수 없는 에러가 발생했습니다."),
        Answer::Slow(pause) => {
            std::thread::sleep(pause);
            rows()
        }
        Answer::InvalidTransactionKey => {
            error(400, "INVALID_TRANSACTION_KEY", "잘못된 페이징 키 입니다.")
        }
        Answer::HtmlMaintenance => Reply::Send(
            Response::new(
                200,
                "OK",
                "<!DOCTYPE html>\n<html><head><title>점검 중</title></head><body><h1>서비스 점검 중입니다.</h1></body></html>\n",
            )
            .header("Content-Type", "text/html; charset=utf-8"),
        ),
        Answer::ResetMidBody => match rows() {
            Reply::Send(mut response) => {
                // Half of a body that promised all of it (and at least 64 bytes).
                let sent = response.body.len() / 2;
                let promised = response.body.len().max(64);
                response.body.resize(promised, b' ');
                Reply::CutShort { response, sent }
            }
            other => other,
        },
        Answer::EchoRequest => {
            let mut echo = format!("{} {} HTTP/1.1\r\n", request.method, request.target);
            let mut headers: Vec<_> = request.headers.iter().collect();
            headers.sort();
            for (name, value) in headers {
                echo.push_str(&format!("{name}: {value}\r\n"));
            }
            Reply::Send(
                Response::new(500, reason(500), echo)
                    .header("Content-Type", "text/plain; charset=utf-8"),
            )
        }
    }
}

/// A KST wall-clock date-time without an offset (`2022-01-01T00:00:00[.000]`), or a date alone
/// (read as its midnight).
fn wall_clock(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|date| date.and_hms_opt(0, 0, 0))
        })
}

/// A row's `transactionAt` as KST wall-clock time.
fn kst(text: &str) -> Option<NaiveDateTime> {
    let seoul = FixedOffset::east_opt(9 * 3600)?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|at| at.with_timezone(&seoul).naive_local())
}

/// A count parameter: `default` when absent, else 1..=5000.
fn count(query: &HashMap<String, String>, name: &str) -> Result<usize, Reply> {
    match query.get(name) {
        None => Ok(DEFAULT_ROWS),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_ROWS).contains(&n) => Ok(n),
            _ => Err(invalid_request(&format!(
                "{name}는 1 이상 {MAX_ROWS} 이하여야 합니다."
            ))),
        },
    }
}

fn transactions(query: &HashMap<String, String>, state: &State) -> Reply {
    let bound = |name: &str| query.get(name).map(String::as_str).and_then(wall_clock);
    let (Some(start), Some(end)) = (bound("startDate"), bound("endDate")) else {
        return invalid_request("startDate, endDate 는 필수 값입니다.");
    };
    let limit = match count(query, "limit") {
        Ok(limit) => limit,
        Err(reply) => return reply,
    };
    let mut rows: Vec<(NaiveDateTime, &str, &Value)> = state
        .transactions
        .iter()
        .filter_map(|(key, row)| {
            let at = kst(row["transactionAt"].as_str()?)?;
            (start..=end)
                .contains(&at)
                .then_some((at, key.as_str(), row))
        })
        .collect();
    rows.sort_by_key(|&(at, key, _)| (at, key));
    let from = match query.get("startingAfter") {
        None => 0,
        Some(cursor) => match rows.iter().position(|&(_, key, _)| key == cursor) {
            Some(i) => i + 1,
            None => return error(400, "INVALID_TRANSACTION_KEY", "잘못된 페이징 키 입니다."),
        },
    };
    let page: Vec<&Value> = rows[from..].iter().take(limit).map(|row| row.2).collect();
    Reply::Send(json_response(200, &json!(page)))
}

fn settlements(query: &HashMap<String, String>, state: &State) -> Reply {
    let bound = |name: &str| {
        query
            .get(name)
            .map(String::as_str)
            .and_then(wall_clock)
            .map(|at| at.date())
    };
    let (Some(start), Some(end)) = (bound("startDate"), bound("endDate")) else {
        return invalid_request("startDate, endDate 는 필수 값입니다.");
    };
    let field = match query.get("dateType").map(String::as_str) {
        None | Some("soldDate") => "soldDate",
        Some("paidOutDate") => "paidOutDate",
        Some(_) => return invalid_request("dateType 은 soldDate, paidOutDate 중 하나입니다."),
    };
    let page = match query.get("page").map(|text| text.parse::<usize>()) {
        None => 1,
        Some(Ok(page)) if page >= 1 => page,
        Some(_) => return invalid_request("page 는 1 이상이어야 합니다."),
    };
    let size = match count(query, "size") {
        Ok(size) => size,
        Err(reply) => return reply,
    };
    let mut rows: Vec<(NaiveDate, &(String, String), &Value)> = state
        .settlements
        .iter()
        .filter_map(|(key, row)| {
            let date = NaiveDate::parse_from_str(row[field].as_str()?, "%Y-%m-%d").ok()?;
            (start..=end).contains(&date).then_some((date, key, row))
        })
        .collect();
    rows.sort_by_key(|&(date, key, _)| (date, key));
    let rows: Vec<&Value> = rows
        .iter()
        .skip((page - 1).saturating_mul(size))
        .take(size)
        .map(|row| row.2)
        .collect();
    Reply::Send(json_response(200, &json!(rows)))
}
