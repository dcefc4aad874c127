//! A local stand-in for Toss's `trxdown.jsp`: it speaks the protocol (GET with mertid,
//! servicecode TRX|REV, trxdate, key = md5(mid + mertkey)), serves EUC-KR bodies per mid, kind
//! and date, answers a wrong key the way a legacy JSP does (status 200, a one-line message), and
//! can be told to fail in each way the real one does.

use md5::{Digest, Md5};
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    seen: Vec<Seen>,
}

#[derive(Clone)]
pub struct Trxdown {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl Trxdown {
    pub fn start(mertkey: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            mertkey: mertkey.to_owned(),
            ..State::default()
        }));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        Trxdown { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}/pg/wmp/outerpage/trxdown.jsp", self.addr)
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

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    pub fn requests_for(&self, trxdate: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|seen| seen.query.get("trxdate").map(String::as_str) == Some(trxdate))
            .collect()
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => return,
            Ok(_) if header == "\r\n" => break,
            Ok(_) => {}
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("/");
    let query: HashMap<String, String> = target
        .split_once('?')
        .map(|(_, query)| query)
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    let field = |name: &str| query.get(name).cloned().unwrap_or_default();
    let (mid, servicecode, trxdate) = (field("mertid"), field("servicecode"), field("trxdate"));
    let (answer, expected_key, body) = {
        let mut state = state.lock().unwrap();
        state.seen.push(Seen {
            query: query.clone(),
            at: Instant::now(),
        });
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
    let mut stream = stream;
    let respond = |stream: &mut TcpStream, status: &str, extra: &str, body: &[u8]| {
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=euc-kr\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(body);
        let _ = stream.flush();
    };
    if !["TRX", "REV"].contains(&servicecode.as_str()) {
        respond(&mut stream, "200 OK", "", b"ERROR: unknown servicecode\n");
        return;
    }
    if field("key") != expected_key {
        respond(&mut stream, "200 OK", "", b"ERROR: invalid key\n");
        return;
    }
    match answer {
        Answer::Records => respond(&mut stream, "200 OK", "", &body),
        Answer::Status(code) => respond(
            &mut stream,
            &format!("{code} Error"),
            "",
            b"<html><body>Internal Server Error</body></html>",
        ),
        Answer::TooManyRequests { retry_after_secs } => respond(
            &mut stream,
            "429 Too Many Requests",
            &format!("Retry-After: {retry_after_secs}\r\n"),
            b"slow down",
        ),
        Answer::Slow(pause) => {
            std::thread::sleep(pause);
            respond(&mut stream, "200 OK", "", &body);
        }
        Answer::HtmlError => respond(
            &mut stream,
            "200 OK",
            "",
            b"<!DOCTYPE html>\r\n<html><head><title>System Error</title></head><body>\xbd\xc3\xbd\xba\xc5\xdb \xbf\xc0\xb7\xf9</body></html>\r\n",
        ),
        Answer::ResetMidBody => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len().max(64)
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body[..body.len() / 2]);
            let _ = stream.flush();
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}
