//! The Toss Payments v1 REST stand-in ([`crate::support::toss_api`]) itself, spoken to with raw
//! HTTP/1.1 over a `TcpStream`: auth, paging of transactions and settlements, and the planned
//! failures.

use crate::support::toss_api::{
    self, Answer, SETTLEMENTS, Scope, TRANSACTIONS, TossApi, basic_auth, cancel_of,
    cancel_settlement, fee_of, settlement, transaction,
};
use chrono::NaiveDate;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The docs' public test key.
const KEY: &str = "test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R";

struct Answered {
    status: u16,
    /// Header names in lower case.
    headers: HashMap<String, String>,
    body: Vec<u8>,
    /// What `Content-Length` promised.
    promised: usize,
}

impl Answered {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!("{err}: {}", String::from_utf8_lossy(&self.body));
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The rows of a 200 answer.
    fn rows(&self) -> Vec<Value> {
        assert_eq!(self.status, 200, "{}", self.text());
        assert_eq!(self.header("content-type"), Some("application/json"));
        self.json().as_array().expect("a bare array").clone()
    }
}

/// One GET on a connection of its own; the body as far as the server sent it.
fn get(api: &TossApi, target: &str, authorization: Option<&str>) -> Answered {
    let mut stream = TcpStream::connect(api.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = format!("GET {target} HTTP/1.1\r\nHost: {}\r\n", api.addr());
    if let Some(value) = authorization {
        request.push_str(&format!("Authorization: {value}\r\n"));
    }
    request.push_str("Accept: application/json\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("status line {status_line:?}"));
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap();
        headers.insert(name.trim().to_lowercase(), value.trim().to_owned());
    }
    let promised: usize = headers["content-length"].parse().unwrap();
    let mut body = Vec::new();
    let _ = reader.take(promised as u64).read_to_end(&mut body);
    Answered {
        status,
        headers,
        body,
        promised,
    }
}

fn authorized(api: &TossApi, target: &str) -> Answered {
    get(api, target, Some(api.authorization()))
}

fn day(n: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, n).unwrap()
}

/// `/v1/transactions` for one KST day, the `:` sent raw.
fn transactions_of(day: NaiveDate, extra: &str) -> String {
    format!("{TRANSACTIONS}?startDate={day}T00:00:00.000&endDate={day}T23:59:59.999{extra}")
}

fn keys(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|row| row["transactionKey"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn toss_api_server_answers_401_to_anything_but_the_right_basic_auth() {
    let api = TossApi::start(KEY);
    assert_eq!(
        basic_auth(KEY),
        "Basic dGVzdF9za196WExrS0V5cE5BcldtbzUwblgzbG1lYXhZRzVSOg=="
    );
    assert_eq!(api.authorization(), basic_auth(KEY));
    assert_eq!(api.base_url(), format!("http://{}", api.addr()));
    let unpadded = basic_auth(KEY).trim_end_matches('=').to_owned();
    let no_colon = format!("Basic {}", toss_api::base64(KEY.as_bytes()));
    let other_key = basic_auth("test_sk_other");
    let bearer = format!("Bearer {KEY}");
    let target = transactions_of(day(5), "");
    for wrong in [
        None,
        Some(unpadded.as_str()),
        Some(no_colon.as_str()),
        Some(other_key.as_str()),
        Some(bearer.as_str()),
    ] {
        let answered = get(&api, &target, wrong);
        assert_eq!(answered.status, 401, "{wrong:?}");
        assert_eq!(answered.header("content-type"), Some("application/json"));
        assert_eq!(
            answered.json(),
            json!({"code": "UNAUTHORIZED_KEY", "message": "인증되지 않은 시크릿 키 혹은 클라이언트 키 입니다."})
        );
    }
    assert_eq!(authorized(&api, &target).rows(), Vec::<Value>::new());
    let verdicts: Vec<bool> = api.seen().iter().map(|seen| seen.authorized).collect();
    assert_eq!(verdicts, [false, false, false, false, false, true]);
}

#[test]
fn toss_api_server_pages_transactions_across_an_exact_multiple_to_an_empty_page() {
    let api = TossApi::start(KEY);
    for n in 1..=5 {
        api.put_transaction(transaction(day(5), n, "DONE", 1000 * i64::from(n)));
    }
    // 15:30 UTC on the 4th is 00:30 KST on the 5th: in the window, first.
    let mut early = transaction(day(9), 1, "DONE", 500);
    early["transactionAt"] = json!("2024-03-04T15:30:00Z");
    api.put_transaction(early.clone());
    // Outside the window: the KST days before and after.
    api.put_transaction(transaction(day(4), 1, "DONE", 1));
    api.put_transaction(transaction(day(6), 1, "DONE", 1));

    let mut seen_keys = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let extra = match &cursor {
            Some(key) => format!("&startingAfter={key}&limit=3"),
            None => "&limit=3".to_owned(),
        };
        let mut target = transactions_of(day(5), &extra);
        if cursor.is_none() {
            // The first request percent-encodes its colons.
            target = target.replace(':', "%3A");
        }
        let rows = authorized(&api, &target).rows();
        pages.push(rows.len());
        if rows.is_empty() {
            break;
        }
        seen_keys.extend(keys(&rows));
        cursor = seen_keys.last().cloned();
    }
    assert_eq!(pages, [3, 3, 0]);
    assert_eq!(seen_keys.len(), 6);
    assert_eq!(seen_keys[0], early["transactionKey"]);
    let mut expected: Vec<(String, String)> = (1..=5)
        .map(|n| {
            let row = transaction(day(5), n, "DONE", 0);
            let key = toss_api::transaction_key(day(5), n);
            assert_eq!(row["transactionKey"], key.as_str());
            assert_eq!(key.len(), 32);
            assert!(
                key.chars()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
            );
            (row["transactionAt"].as_str().unwrap().to_owned(), key)
        })
        .collect();
    expected.sort();
    let expected: Vec<String> = expected.into_iter().map(|(_, key)| key).collect();
    assert_eq!(seen_keys[1..], expected[..]);

    let requests = api.seen_at(TRANSACTIONS);
    let cursors: Vec<Option<&str>> = requests
        .iter()
        .map(|seen| seen.param("startingAfter"))
        .collect();
    assert_eq!(
        cursors,
        [
            None,
            Some(seen_keys[2].as_str()),
            Some(seen_keys[5].as_str())
        ]
    );
    assert_eq!(
        requests[0].param("startDate"),
        Some("2024-03-05T00:00:00.000")
    );
    assert_eq!(
        requests[0].param("endDate"),
        Some("2024-03-05T23:59:59.999")
    );
    assert!(requests.iter().all(|seen| seen.param("limit") == Some("3")));

    // Default limit 100; 5000 is the most.
    assert_eq!(
        authorized(&api, &transactions_of(day(5), "")).rows().len(),
        6
    );
    assert_eq!(
        authorized(&api, &transactions_of(day(5), "&limit=5000"))
            .rows()
            .len(),
        6
    );
    let too_many = authorized(&api, &transactions_of(day(5), "&limit=5001"));
    assert_eq!(too_many.status, 400);
    assert_eq!(too_many.json()["code"], "INVALID_REQUEST");
    // An offset on the bound is not the protocol.
    let offset = authorized(
        &api,
        &format!(
            "{TRANSACTIONS}?startDate=2024-03-05T00:00:00%2B09:00&endDate=2024-03-05T23:59:59.999"
        ),
    );
    assert_eq!(offset.status, 400);
}

#[test]
fn toss_api_server_answers_invalid_transaction_key_to_an_unknown_cursor() {
    let api = TossApi::start(KEY);
    let rows: Vec<Value> = (1..=3)
        .map(|n| transaction(day(5), n, "DONE", 1000))
        .collect();
    for row in &rows {
        api.put_transaction(row.clone());
    }
    let unknown = authorized(
        &api,
        &transactions_of(day(5), "&startingAfter=0123456789ABCDEF0123456789ABCDEF"),
    );
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.header("content-type"), Some("application/json"));
    assert_eq!(
        unknown.json(),
        json!({"code": "INVALID_TRANSACTION_KEY", "message": "잘못된 페이징 키 입니다."})
    );

    // A key of another day is unknown in this window too.
    let other_day = transaction(day(6), 1, "DONE", 1);
    api.put_transaction(other_day.clone());
    let elsewhere = authorized(
        &api,
        &transactions_of(
            day(5),
            &format!(
                "&startingAfter={}",
                other_day["transactionKey"].as_str().unwrap()
            ),
        ),
    );
    assert_eq!(elsewhere.json()["code"], "INVALID_TRANSACTION_KEY");

    // Drift: the cursor's row goes away between pages; another row changes status.
    let first = keys(&authorized(&api, &transactions_of(day(5), "&limit=1")).rows());
    let removed = api.remove_transaction(&first[0]).expect("it was there");
    assert_eq!(removed["transactionKey"], first[0].as_str());
    let gone = authorized(
        &api,
        &transactions_of(day(5), &format!("&startingAfter={}&limit=1", first[0])),
    );
    assert_eq!(gone.json()["code"], "INVALID_TRANSACTION_KEY");
    let mut changed = rows
        .iter()
        .find(|row| row["transactionKey"] != first[0].as_str())
        .unwrap()
        .clone();
    changed["status"] = json!("CANCELED");
    api.put_transaction(changed.clone());
    let now = authorized(&api, &transactions_of(day(5), "")).rows();
    assert_eq!(now.len(), 2);
    assert!(now.contains(&changed));
}

#[test]
fn toss_api_server_pages_settlements() {
    let api = TossApi::start(KEY);
    let approvals: Vec<Value> = (1..=3)
        .map(|n| transaction(day(5), n, "DONE", 10_000 * i64::from(n)))
        .collect();
    for approval in &approvals {
        api.put_settlement(settlement(approval, day(5)));
    }
    let cancel = cancel_of(&approvals[0], day(6), 1, 4000);
    assert_eq!(cancel["status"], "PARTIAL_CANCELED");
    assert_eq!(cancel["paymentKey"], approvals[0]["paymentKey"]);
    assert_ne!(cancel["transactionKey"], approvals[0]["transactionKey"]);
    api.put_settlement(cancel_settlement(&approvals[0], &cancel, day(6)));
    let later = transaction(day(7), 1, "DONE", 777);
    api.put_settlement(settlement(&later, day(7)));

    let page = |n: usize| {
        authorized(
            &api,
            &format!("{SETTLEMENTS}?startDate=2024-03-05&endDate=2024-03-06&page={n}&size=2"),
        )
        .rows()
    };
    let (one, two, three) = (page(1), page(2), page(3));
    assert_eq!((one.len(), two.len(), three.len()), (2, 2, 0));
    assert_eq!(one, page(1), "a stable order");
    let all: Vec<Value> = one.into_iter().chain(two).collect();
    for row in &all {
        let number = |name: &str| row[name].as_i64().unwrap();
        assert_eq!(number("fee"), number("supplyAmount") + number("vat"));
        let fees: i64 = row["fees"]
            .as_array()
            .unwrap()
            .iter()
            .map(|fee| fee["fee"].as_i64().unwrap())
            .sum();
        assert_eq!(fees, number("fee"));
        assert_eq!(number("payOutAmount"), number("amount") - number("fee"));
        assert_eq!(number("interestFee"), 0);
    }
    let refund = all
        .iter()
        .find(|row| !row["cancel"].is_null())
        .expect("the cancel row");
    assert_eq!(refund["amount"], -4000);
    assert_eq!(refund["fee"], -fee_of(4000).0);
    assert_eq!(refund["cancel"]["cancelAmount"], 4000);
    assert_eq!(refund["transactionKey"], cancel["transactionKey"]);
    assert_eq!(refund["cancel"]["transactionKey"], cancel["transactionKey"]);
    assert_eq!(refund["approvedAt"], approvals[0]["transactionAt"]);
    assert_eq!(refund["soldDate"], "2024-03-06");
    assert_eq!(refund["paidOutDate"], "2024-03-08");
    assert_eq!(fee_of(1000), (25, 23, 2));
    assert_eq!(fee_of(-1000), (25, 23, 2));

    // By payout date: the 5th's sales are paid out on the 7th.
    let paid = authorized(
        &api,
        &format!("{SETTLEMENTS}?startDate=2024-03-07&endDate=2024-03-07&dateType=paidOutDate"),
    )
    .rows();
    assert_eq!(paid.len(), 3);
    assert!(paid.iter().all(|row| row["soldDate"] == "2024-03-05"));

    assert_eq!(
        api.remove_settlement(approvals[1]["transactionKey"].as_str().unwrap()),
        1
    );
    let rest = authorized(
        &api,
        &format!("{SETTLEMENTS}?startDate=2024-03-05&endDate=2024-03-07"),
    )
    .rows();
    assert_eq!(rest.len(), 4);
    let bad_size = authorized(
        &api,
        &format!("{SETTLEMENTS}?startDate=2024-03-05&endDate=2024-03-07&size=5001"),
    );
    assert_eq!(bad_size.status, 400);
    let requests = api.seen_at(SETTLEMENTS);
    let pages: Vec<Option<&str>> = requests[..4]
        .iter()
        .map(|seen| seen.param("page"))
        .collect();
    assert_eq!(pages, [Some("1"), Some("2"), Some("3"), Some("1")]);
}

#[test]
fn toss_api_server_fails_as_planned() {
    let api = TossApi::start(KEY);
    let rows: Vec<Value> = (1..=3)
        .map(|n| transaction(day(5), n, "DONE", 1000))
        .collect();
    for row in &rows {
        api.put_transaction(row.clone());
    }
    let cursor = rows[0]["transactionKey"].as_str().unwrap();
    let pause = Duration::from_millis(300);
    api.plan(
        Scope::Day(TRANSACTIONS, day(5)),
        vec![
            Answer::InvalidTransactionKey,
            Answer::TooManyRequests {
                retry_after_secs: Some(7),
            },
            Answer::TooManyRequests {
                retry_after_secs: None,
            },
            Answer::Status(500),
            Answer::HtmlMaintenance,
            Answer::EchoRequest,
            Answer::ResetMidBody,
            Answer::Slow(pause),
            Answer::Rows,
        ],
    );
    let plain = transactions_of(day(5), "");
    let paged = transactions_of(day(5), &format!("&startingAfter={cursor}"));

    // Without a cursor the INVALID_TRANSACTION_KEY waits (and so does the rest of the plan).
    assert_eq!(authorized(&api, &plain).rows().len(), 3);
    let invalid = authorized(&api, &paged);
    assert_eq!(invalid.status, 400);
    assert_eq!(invalid.json()["code"], "INVALID_TRANSACTION_KEY");
    // Another day is not in the plan.
    assert_eq!(
        authorized(&api, &transactions_of(day(6), "")).rows(),
        Vec::<Value>::new()
    );

    let limited = authorized(&api, &plain);
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), Some("7"));
    assert_eq!(limited.json()["code"], "TOO_MANY_REQUESTS");
    let limited = authorized(&api, &plain);
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), None);

    let failed = authorized(&api, &plain);
    assert_eq!(failed.status, 500);
    assert_eq!(failed.json()["code"], "FAILED_INTERNAL_SYSTEM_PROCESSING");

    let html = authorized(&api, &plain);
    assert_eq!(html.status, 200);
    assert!(
        html.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(html.text().contains("<title>점검 중</title>"));

    let echo = authorized(&api, &paged);
    assert_eq!(echo.status, 500);
    assert!(
        echo.text()
            .starts_with(&format!("GET {paged} HTTP/1.1\r\n"))
    );
    assert!(
        echo.text()
            .contains(&format!("authorization: {}", basic_auth(KEY))),
        "{}",
        echo.text()
    );

    let cut = authorized(&api, &plain);
    assert_eq!(cut.status, 200);
    assert!(cut.body.len() < cut.promised, "{} bytes", cut.body.len());
    assert!(serde_json::from_slice::<Value>(&cut.body).is_err());

    let started = Instant::now();
    assert_eq!(authorized(&api, &plain).rows().len(), 3);
    assert!(started.elapsed() >= pause);
    let at = api.seen().last().unwrap().at;
    assert!(at >= started && at + pause <= Instant::now());
    assert_eq!(authorized(&api, &paged).rows().len(), 2);

    // Narrower scopes first, then wider ones; a 401 uses up nothing.
    api.plan(Scope::All, vec![Answer::Status(502)]);
    api.plan(Scope::Path(SETTLEMENTS), vec![Answer::Status(503)]);
    let settlements = format!("{SETTLEMENTS}?startDate=2024-03-05&endDate=2024-03-05");
    assert_eq!(get(&api, &settlements, None).status, 401);
    assert_eq!(authorized(&api, &settlements).status, 503);
    assert_eq!(authorized(&api, &settlements).status, 502);
    assert_eq!(authorized(&api, &settlements).status, 200);

    api.always(Scope::Path(TRANSACTIONS), Answer::Status(500));
    assert_eq!(authorized(&api, &plain).status, 500);
    assert_eq!(authorized(&api, &plain).status, 500);
    assert_eq!(authorized(&api, &settlements).status, 200);
    api.plan(Scope::All, vec![Answer::Status(504)]);
    api.heal();
    assert_eq!(authorized(&api, &plain).rows().len(), 3);
    assert_eq!(api.seen().iter().filter(|seen| !seen.authorized).count(), 1);
}
