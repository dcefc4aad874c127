//! A local stand-in for Toss's `trxdown.jsp`: it speaks the protocol (GET with mertid,
//! servicecode TRX|REV, trxdate, key = md5(mid + mertkey)), serves EUC-KR bodies per mid, kind
//! and date, answers a wrong key the way a legacy JSP does (status 200, a one-line message), and
//! can be told to fail in each way the real one does. The HTTP side is
//! [`HttpServer`](super::http_server::HttpServer), whose log is the list of requests seen.

use super::http_server::{HttpServer, Reply, Request, Response};
use md5::{Digest, Md5};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the page is, as on Toss's server.
const PATH: &str = "/pg/wmp/outerpage/trxdown.jsp";

/// What the server does with one request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// The records it has for the mid, kind and date (empty body when none).
    Records,
    Status(u16),
    TooManyRequests {
        retry_after_secs: u64,
    },
    /// Waits this long before answering with the records.
    Slow(Duration),
    /// Status 200 with an HTML error page.
    HtmlError,
    /// Sends the headers and half the body, then closes the connection.
    ResetMidBody,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub query: HashMap<String, String>,
    pub at: Instant,
}

#[derive(Default)]
struct State {
    mertkey: String,
    bodies: HashMap<(String, String, String), Vec<u8>>,
    /// Answers to give, in order, per trxdate; then `always`, then `Records`.
    planned: HashMap<String, VecDeque<Answer>>,
    always: HashMap<String, Answer>,
}

#[derive(Clone)]
pub struct Trxdown {
    server: HttpServer,
    state: Arc<Mutex<State>>,
}

impl Trxdown {
    pub fn start(mertkey: &str) -> Self {
        let state = Arc::new(Mutex::new(State {
            mertkey: mertkey.to_owned(),
            ..State::default()
        }));
        let shared = Arc::clone(&state);
        let server = HttpServer::start(move |request| answer(request, &shared));
        Trxdown { server, state }
    }

    pub fn url(&self) -> String {
        self.server.url(PATH)
    }

    /// Serves `body` for mid, servicecode (`TRX`/`REV`) and trxdate (`yyyymmdd`).
    pub fn set_body(&self, mid: &str, servicecode: &str, trxdate: &str, body: Vec<u8>) {
        self.state.lock().unwrap().bodies.insert(
            (mid.to_owned(), servicecode.to_owned(), trxdate.to_owned()),
            body,
        );
    }

    pub fn plan(&self, trxdate: &str, answers: Vec<Answer>) {
        self.state
            .lock()
            .unwrap()
            .planned
            .insert(trxdate.to_owned(), answers.into());
    }

    pub fn always(&self, trxdate: &str, answer: Answer) {
        self.state
            .lock()
            .unwrap()
            .always
            .insert(trxdate.to_owned(), answer);
    }

    pub fn heal(&self, trxdate: &str) {
        let mut state = self.state.lock().unwrap();
        state.always.remove(trxdate);
        state.planned.remove(trxdate);
    }

    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.server
            .requests()
            .iter()
            .map(|request| Seen {
                query: request.query(),
                at: request.at,
            })
            .collect()
    }

    pub fn requests_for(&self, trxdate: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|seen| seen.query.get("trxdate").map(String::as_str) == Some(trxdate))
            .collect()
    }
}

/// Checks one request as `trxdown.jsp` does and replies as planned for its trxdate.
fn answer(request: &Request, state: &Mutex<State>) -> Reply {
    if request.method != "GET" || request.path() != PATH {
        return Reply::Send(
            Response::new(404, "Not Found", &b"not found"[..]).header("Connection", "close"),
        );
    }
    let query = request.query();
    let field = |name: &str| query.get(name).cloned().unwrap_or_default();
    let (mid, servicecode, trxdate) = (field("mertid"), field("servicecode"), field("trxdate"));
    let (answer, expected_key, body) = {
        let mut state = state.lock().unwrap();
        let answer = state
            .planned
            .get_mut(&trxdate)
            .and_then(VecDeque::pop_front)
            .or_else(|| state.always.get(&trxdate).cloned())
            .unwrap_or(Answer::Records);
        let expected_key: String = Md5::digest(format!("{mid}{}", state.mertkey))
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        let body = state
            .bodies
            .get(&(mid.clone(), servicecode.clone(), trxdate.clone()))
            .cloned()
            .unwrap_or_default();
        (answer, expected_key, body)
    };
    // Every answer ends its connection, as the legacy server does.
    let respond = |status: u16, reason: &str, body: &[u8]| {
        Reply::Send(
            Response::new(status, reason, body)
                .header("Content-Type", "text/plain; charset=euc-kr")
                .header("Connection", "close"),
        )
    };
    if !["TRX", "REV"].contains(&servicecode.as_str()) {
        return respond(200, "OK", b"ERROR: unknown servicecode\n");
    }
    if field("key") != expected_key {
        return respond(200, "OK", b"ERROR: invalid key\n");
    }
    match answer {
        Answer::Records => respond(200, "OK", &body),
        Answer::Status(code) => respond(
            code,
            "Error",
            b"<html><body>Internal Server Error</body></html>",
        ),
        Answer::TooManyRequests { retry_after_secs } => Reply::Send(
            Response::new(429, "Too Many Requests", &b"slow down"[..])
                .header("Content-Type", "text/plain; charset=euc-kr")
                .header("Connection", "close")
                .header("Retry-After", &retry_after_secs.to_string()),
        ),
        Answer::Slow(pause) => {
            std::thread::sleep(pause);
            respond(200, "OK", &body)
        }
        Answer::HtmlError => respond(
            200,
            "OK",
            b"<!DOCTYPE html>\r\n<html><head><title>System Error</title></head><body>\xbd\xc3\xbd\xba\xc5\xdb \xbf\xc0\xb7\xf9</body></html>\r\n",
        ),
        Answer::ResetMidBody => {
            // Half the body of a response that promised all of it (and at least 64 bytes).
            let sent = body.len() / 2;
            let mut promised = body;
            promised.resize(promised.len().max(64), 0);
            Reply::CutShort {
                response: Response::new(200, "OK", promised).header("Connection", "close"),
                sent,
            }
        }
    }
}
