//! One small HTTP/1.1 server for the tests that need a peer speaking HTTP: the webhook receiver
//! and the stand-in for Toss's `trxdown.jsp` are thin layers on it. It listens on 127.0.0.1:0,
//! serves each connection on a thread of its own, reads requests (method, path and query,
//! headers, a body of `Content-Length` bytes) one after another on a connection (keep-alive),
//! hands each to the test's handler, and does what the handler replies — including the ways a
//! real server fails: silence, a reset connection, a body cut short. It keeps a log of every
//! request it read.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request as the server read it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path and query as sent (`/pg/trxdown.jsp?mertid=…`).
    pub target: String,
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// When the server finished reading it.
    pub at: Instant,
}

impl Request {
    /// The target without its query.
    pub fn path(&self) -> &str {
        self.target
            .split_once('?')
            .map_or(self.target.as_str(), |(path, _)| path)
    }

    /// The query's `name=value` pairs, as sent (not percent-decoded).
    pub fn query(&self) -> HashMap<String, String> {
        self.target
            .split_once('?')
            .map(|(_, query)| query)
            .unwrap_or("")
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// A response to send: status line, headers in order, and a body whose length the server
/// states in `Content-Length`.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, reason: &str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            reason: reason.to_owned(),
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn closes(&self) -> bool {
        self.headers.iter().any(|(name, value)| {
            name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close")
        })
    }

    /// The status line and headers, `Content-Length` stating `length`.
    fn head(&self, length: usize) -> String {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, self.reason);
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("Content-Length: {length}\r\n\r\n"));
        head
    }
}

/// What the server does with one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Sends the response, then reads the next request on the connection, unless the response
    /// says `Connection: close`.
    Send(Response),
    /// Sends the response's head, `Content-Length` stating the whole body, then only the first
    /// `sent` bytes of the body, and closes the connection.
    CutShort { response: Response, sent: usize },
    /// Answers nothing for this long, then closes the connection.
    Hang(Duration),
    /// Resets the connection (TCP RST) without answering.
    Reset,
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// A running server; it lives as long as the test process.
#[derive(Clone)]
pub struct HttpServer {
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<Request>>>,
}

impl HttpServer {
    /// Starts serving; `handler` decides each reply, on the connection's own thread, so it may
    /// sleep to answer slowly.
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let shared_log = Arc::clone(&log);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let handler = Arc::clone(&handler);
                let log = Arc::clone(&shared_log);
                std::thread::spawn(move || serve(stream, &*handler, &log));
            }
        });
        HttpServer { addr, log }
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request read so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }
}

/// Serves one connection until the peer closes it or a reply ends it.
fn serve(stream: TcpStream, handler: &Handler, log: &Mutex<Vec<Request>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    while let Some(request) = read_request(&mut reader) {
        log.lock().unwrap().push(request.clone());
        match handler(&request) {
            Reply::Send(response) => {
                let sent = write_all(
                    &mut stream,
                    &response.head(response.body.len()),
                    &response.body,
                );
                if sent.is_err() || response.closes() {
                    return;
                }
            }
            Reply::CutShort { response, sent } => {
                let body = &response.body[..sent.min(response.body.len())];
                let _ = write_all(&mut stream, &response.head(response.body.len()), body);
                let _ = stream.shutdown(std::net::Shutdown::Both);
                return;
            }
            Reply::Hang(pause) => {
                std::thread::sleep(pause);
                return;
            }
            Reply::Reset => {
                let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                return;
            }
        }
    }
}

fn write_all(stream: &mut TcpStream, head: &str, body: &[u8]) -> std::io::Result<()> {
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

/// The next request on the connection; None when it closed or sent something unreadable.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).ok()? == 0 {
        return None;
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("/").to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_lowercase(), value.trim().to_owned());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        target,
        headers,
        body,
        at: Instant::now(),
    })
}
