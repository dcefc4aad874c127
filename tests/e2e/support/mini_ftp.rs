//! A small FTP server of our own, for what libunftp ([`super::ftp_server`]) cannot be made to
//! do: it has no MLSD (so clients list with NLST, SIZE and MDTM), it can speak TLS from the
//! first byte (implicit FTPS, on the control and every data connection), and it logs every
//! command, so a test can tell passive (PASV) from active (PORT) transfers. It speaks just
//! USER, PASS, TYPE, CWD, PWD, FEAT, OPTS, PBSZ, PROT, PASV, PORT, NLST, SIZE, MDTM, RETR, NOOP
//! and QUIT; anything else is `502`. One thread per connection, 127.0.0.1 only.

use super::TestPki;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The password the server accepts (from any user).
pub const PASSWORD: &str = "mini-pw-2718";

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// A file the server serves: its bytes and its MDTM time (`YYYYMMDDHHMMSS`, UTC).
type Files = BTreeMap<String, (Vec<u8>, String)>;

/// A running server; it lives as long as the test process.
pub struct MiniFtp {
    pub port: u16,
    files: Arc<Mutex<Files>>,
    commands: Arc<Mutex<Vec<String>>>,
}

struct Shared {
    files: Arc<Mutex<Files>>,
    commands: Arc<Mutex<Vec<String>>>,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl MiniFtp {
    /// A plain FTP server without MLSD; with `pki`, TLS from the first byte with the
    /// certificate it made (implicit FTPS).
    pub fn start(pki: Option<&TestPki>) -> Self {
        let tls = pki.map(|pki| {
            let certs: Vec<CertificateDer<'static>> =
                CertificateDer::pem_file_iter(pki.path("server.pem"))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
            let key = PrivateKeyDer::from_pem_file(pki.path("server.key")).unwrap();
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            Arc::new(
                rustls::ServerConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_no_client_auth()
                    .with_single_cert(certs, key)
                    .unwrap(),
            )
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let files = Arc::new(Mutex::new(Files::new()));
        let commands = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::new(Shared {
            files: Arc::clone(&files),
            commands: Arc::clone(&commands),
            tls,
        });
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || {
                    let _ = serve(stream, &shared);
                });
            }
        });
        MiniFtp {
            port,
            files,
            commands,
        }
    }

    /// Serves `content` as `name`, modified at `mdtm` (`YYYYMMDDHHMMSS`).
    pub fn put(&self, name: &str, content: &[u8], mdtm: &str) {
        self.files
            .lock()
            .unwrap()
            .insert(name.to_owned(), (content.to_vec(), mdtm.to_owned()));
    }

    /// The verbs of every command received so far, in order (`PASS` included, without its
    /// argument).
    pub fn commands(&self) -> Vec<String> {
        self.commands.lock().unwrap().clone()
    }
}

/// `stream`, wrapped in TLS as the server's side when the server speaks it.
fn secured(stream: TcpStream, tls: &Option<Arc<rustls::ServerConfig>>) -> Box<dyn Stream> {
    match tls {
        Some(config) => {
            let connection = rustls::ServerConnection::new(Arc::clone(config)).unwrap();
            Box::new(rustls::StreamOwned::new(connection, stream))
        }
        None => Box::new(stream),
    }
}

/// Where the next data connection comes from: a listener after PASV, an address after PORT.
enum DataChannel {
    None,
    Passive(TcpListener),
    Active(SocketAddr),
}

fn serve(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut control = BufReader::new(secured(stream, &shared.tls));
    let reply = |control: &mut BufReader<Box<dyn Stream>>, text: &str| -> std::io::Result<()> {
        let stream = control.get_mut();
        stream.write_all(format!("{text}\r\n").as_bytes())?;
        stream.flush()
    };
    reply(&mut control, "220 mini test server")?;
    let mut data = DataChannel::None;
    let mut logged_in = false;
    loop {
        let mut line = String::new();
        if control.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end_matches(['\r', '\n']);
        let (verb, argument) = line.split_once(' ').unwrap_or((line, ""));
        let verb = verb.to_ascii_uppercase();
        shared.commands.lock().unwrap().push(verb.clone());
        let file = |name: &str| shared.files.lock().unwrap().get(name).cloned();
        match verb.as_str() {
            "USER" => reply(&mut control, "331 password please")?,
            "PASS" if argument == PASSWORD => {
                logged_in = true;
                reply(&mut control, "230 logged in")?;
            }
            "PASS" => reply(&mut control, "530 login incorrect")?,
            "QUIT" => {
                reply(&mut control, "221 bye")?;
                return Ok(());
            }
            _ if !logged_in => reply(&mut control, "530 log in first")?,
            "TYPE" | "OPTS" | "PBSZ" | "PROT" | "NOOP" => reply(&mut control, "200 ok")?,
            "CWD" => reply(&mut control, "250 ok")?,
            "PWD" => reply(&mut control, "257 \"/\"")?,
            "FEAT" => reply(&mut control, "211-Features:\r\n SIZE\r\n MDTM\r\n211 End")?,
            "PASV" => {
                let listener = TcpListener::bind("127.0.0.1:0")?;
                let port = listener.local_addr()?.port();
                data = DataChannel::Passive(listener);
                reply(
                    &mut control,
                    &format!(
                        "227 Entering Passive Mode (127,0,0,1,{},{})",
                        port / 256,
                        port % 256
                    ),
                )?;
            }
            "PORT" => match parse_port(argument) {
                Some(address) => {
                    data = DataChannel::Active(address);
                    reply(&mut control, "200 PORT ok")?;
                }
                None => reply(&mut control, "501 bad PORT")?,
            },
            "SIZE" => match file(argument) {
                Some((content, _)) => reply(&mut control, &format!("213 {}", content.len()))?,
                None => reply(&mut control, "550 no such file")?,
            },
            "MDTM" => match file(argument) {
                Some((_, mdtm)) => reply(&mut control, &format!("213 {mdtm}"))?,
                None => reply(&mut control, "550 no such file")?,
            },
            "NLST" | "RETR" => {
                let content = if verb == "NLST" {
                    let files = shared.files.lock().unwrap();
                    let names: String = files.keys().map(|name| format!("{name}\r\n")).collect();
                    Some(names.into_bytes())
                } else {
                    file(argument).map(|(content, _)| content)
                };
                let Some(content) = content else {
                    reply(&mut control, "550 no such file")?;
                    continue;
                };
                let channel = std::mem::replace(&mut data, DataChannel::None);
                reply(&mut control, "150 opening data connection")?;
                let stream = match channel {
                    DataChannel::Passive(listener) => listener.accept()?.0,
                    DataChannel::Active(address) => TcpStream::connect(address)?,
                    DataChannel::None => {
                        reply(&mut control, "425 use PASV or PORT first")?;
                        continue;
                    }
                };
                send(stream, &shared.tls, &content)?;
                reply(&mut control, "226 transfer complete")?;
            }
            _ => reply(&mut control, "502 not implemented")?,
        }
    }
}

/// Writes `content` on a data connection and closes it (with TLS's close_notify when secured,
/// which clients expect before the end of the data).
fn send(
    stream: TcpStream,
    tls: &Option<Arc<rustls::ServerConfig>>,
    content: &[u8],
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let socket = stream.try_clone()?;
    match tls {
        Some(config) => {
            let connection = rustls::ServerConnection::new(Arc::clone(config)).unwrap();
            let mut secured = rustls::StreamOwned::new(connection, stream);
            secured.write_all(content)?;
            secured.conn.send_close_notify();
            secured.flush()?;
        }
        None => {
            let mut plain = stream;
            plain.write_all(content)?;
            plain.flush()?;
        }
    }
    socket.shutdown(std::net::Shutdown::Both)
}

/// `h1,h2,h3,h4,p1,p2` as an address.
fn parse_port(argument: &str) -> Option<SocketAddr> {
    let numbers: Vec<u8> = argument
        .split(',')
        .map(|part| part.trim().parse().ok())
        .collect::<Option<_>>()?;
    let [a, b, c, d, high, low] = numbers[..] else {
        return None;
    };
    let port = u16::from(high) * 256 + u16::from(low);
    Some(SocketAddr::from(([a, b, c, d], port)))
}
