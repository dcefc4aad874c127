//! Headless Chromium, for the tests that look at a page the way a person does: the DOM after the
//! page's scripts ran, what the page wrote to the console, and a screenshot.
//!
//! Debian's `chromium` (installed by `scripts/ensure-chromium.sh`) logs every console message of
//! the page to stderr with `--enable-logging=stderr`, whatever its level, as one record that may
//! span several lines:
//!
//! ```text
//! [16105:16105:1202/150852.842246:INFO:CONSOLE:5] "x", source: file:///tmp/t/page.html (5)
//! [16105:16105:1202/150852.842265:INFO:CONSOLE:8] "Uncaught Error: boom", source: file:///tmp/t/page.html (8)
//! ```
//!
//! The first is `console.error("x")` (a `console.log` or `console.warn` looks the same: the
//! level is not printed), the second an uncaught exception (`Uncaught (in promise) …` for a
//! rejected promise). So a page under test should write nothing to the console at all, and a
//! test asserts that `console_messages` is empty.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the browser made of a page.
pub struct Rendered {
    /// The DOM after the page's scripts ran (`--dump-dom`).
    pub dom: String,
    /// The page's console messages and uncaught errors, from both browser runs, without
    /// duplicates, each without its log prefix's process, thread and time, for example
    /// `INFO:CONSOLE:5] "x", source: file:///tmp/t/page.html (5)`.
    pub console_messages: Vec<String>,
}

/// How long one browser run may take before it is killed and the test fails.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Opens `html` in headless Chromium twice: once to dump its DOM, once to write a 1280×2000
/// screenshot (PNG) to `screenshot`. Panics when Chromium is missing, fails or takes longer than
/// a minute.
pub fn render_page(html: &Path, screenshot: &Path) -> Rendered {
    let html = html
        .canonicalize()
        .unwrap_or_else(|e| panic!("page to render, {}: {e}", html.display()));
    let url = file_url(&html);
    let screenshot = &std::path::absolute(screenshot).expect("screenshot path");

    let dump = run_chromium(&["--dump-dom".to_owned(), url.clone()]);
    let _ = std::fs::remove_file(screenshot);
    let shot = run_chromium(&[
        format!("--screenshot={}", screenshot.display()),
        "--window-size=1280,2000".to_owned(),
        "--hide-scrollbars".to_owned(),
        url,
    ]);
    let size = std::fs::metadata(screenshot).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 0,
        "chromium wrote no screenshot to {}; its stderr:\n{}",
        screenshot.display(),
        shot.stderr
    );

    let mut console_messages = Vec::new();
    for message in console_records(&dump.stderr)
        .into_iter()
        .chain(console_records(&shot.stderr))
    {
        if !console_messages.contains(&message) {
            console_messages.push(message);
        }
    }
    Rendered {
        dom: dump.stdout,
        console_messages,
    }
}

struct Output {
    stdout: String,
    stderr: String,
}

/// One headless run with a fresh profile, killed (with every process it started) after
/// `TIMEOUT`.
fn run_chromium(args: &[String]) -> Output {
    let profile = tempfile::tempdir().expect("temporary folder for chromium's profile");
    let mut command = Command::new("chromium");
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=2000",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Its own process group, so that a run that hangs is killed with its helper processes.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "`chromium` is not installed (or not on PATH): run scripts/ensure-chromium.sh, \
             which installs Debian's chromium package"
        ),
        Err(e) => panic!("starting chromium: {e}"),
    };
    let stdout = read_all(child.stdout.take());
    let stderr = read_all(child.stderr.take());

    let started = Instant::now();
    let status = loop {
        match child.try_wait().expect("waiting for chromium") {
            Some(status) => break Some(status),
            None if started.elapsed() > TIMEOUT => break None,
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    // Whatever is left of the run (all of it after a time-out; helper processes otherwise).
    kill_group(&mut child);
    let stdout = stdout.join().expect("reading chromium's stdout");
    let stderr = stderr.join().expect("reading chromium's stderr");
    match status {
        None => panic!(
            "chromium {} did not finish within {} s and was killed; its stderr:\n{stderr}",
            args.join(" "),
            TIMEOUT.as_secs()
        ),
        Some(status) if !status.success() => {
            panic!(
                "chromium {} failed ({status}); its stderr:\n{stderr}",
                args.join(" ")
            )
        }
        Some(_) => Output { stdout, stderr },
    }
}

fn read_all(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<String> {
    let mut pipe = pipe.expect("piped output");
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Kills the process group that `child` leads, then reaps `child`.
fn kill_group(child: &mut Child) {
    let group = format!("-{}", child.id());
    let killed = Command::new("kill")
        .args(["-s", "KILL", "--", &group])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if killed.is_err() {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// The console records in chromium's stderr: a record starts at a line with chromium's log
/// prefix (`[pid:tid:MMDD/HHMMSS.micros:`); a console message with line breaks runs on over the
/// following lines until its closing `", source: URL (line)`. Those that mention the console or
/// an uncaught error are returned, each without the prefix's process, thread and time.
fn console_records(stderr: &str) -> Vec<String> {
    let mut records: Vec<String> = Vec::new();
    for line in stderr.lines() {
        match (strip_log_prefix(line), records.last_mut()) {
            (Some(rest), _) => records.push(rest.to_owned()),
            (None, Some(open)) if open.contains("CONSOLE") && !ends_console_message(open) => {
                open.push('\n');
                open.push_str(line);
            }
            (None, _) => records.push(line.to_owned()),
        }
    }
    records
        .into_iter()
        .filter(|r| r.contains("CONSOLE") || r.contains("Uncaught") || r.contains("console"))
        .collect()
}

/// Whether a console record is complete: it ends with `", source: URL (line)`.
fn ends_console_message(record: &str) -> bool {
    let Some(open) = record
        .strip_suffix(')')
        .and_then(|r| r.rfind(" (").map(|at| (r, at)))
    else {
        return false;
    };
    let (body, at) = open;
    let line = &body[at + 2..];
    !line.is_empty()
        && line.bytes().all(|b| b.is_ascii_digit())
        && body[..at].contains("\", source: ")
}

/// `line` after chromium's `[pid:tid:MMDD/HHMMSS.micros:` prefix, or `None` when it has none.
fn strip_log_prefix(line: &str) -> Option<&str> {
    let rest = line.strip_prefix('[')?;
    let mut parts = rest.splitn(4, ':');
    let (pid, tid, time, tail) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (day, clock) = time.split_once('/')?;
    (digits(pid) && digits(tid) && digits(day) && clock.split('.').all(digits)).then_some(tail)
}

/// A `file://` URL for an absolute path, percent-encoding what a URL path cannot hold.
fn file_url(path: &Path) -> String {
    let mut url = String::from("file://");
    for &b in path.to_string_lossy().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_records_of_chromium_stderr() {
        let stderr = "/usr/bin/chromium: 9: [: 25275973632: unexpected operator\n\
            [1:2:1202/150852.444643:ERROR:dbus/bus.cc:405] Failed to connect to the bus\n\
            [1:1:1202/150852.842246:INFO:CONSOLE:5] \"x\", source: file:///t/p.html (5)\n\
            [1:1:1202/150852.842265:INFO:CONSOLE:8] \"Uncaught Error: boom\", source: file:///t/p.html (8)\n\
            [1:1:1202/150859.669805:INFO:CONSOLE:3] \"line1\n\
            line2\", source: file:///t/p.html (3)\n\
            [1:1:1202/150859.519594:WARNING:ui/base/idle/idle_linux.cc:111] None of the known D-Bus services\n\
            [1:1:1202/150900.186320:INFO:CONSOLE:6] \"Uncaught TypeError: null\", source: file:///t/p.html (6)\n\
            12081 bytes written to file /tmp/shot.png\n";
        assert_eq!(
            console_records(stderr),
            vec![
                "INFO:CONSOLE:5] \"x\", source: file:///t/p.html (5)",
                "INFO:CONSOLE:8] \"Uncaught Error: boom\", source: file:///t/p.html (8)",
                "INFO:CONSOLE:3] \"line1\nline2\", source: file:///t/p.html (3)",
                "INFO:CONSOLE:6] \"Uncaught TypeError: null\", source: file:///t/p.html (6)",
            ]
        );
    }

    #[test]
    fn file_urls_are_percent_encoded() {
        assert_eq!(
            file_url(Path::new("/tmp/a b/리포트.html")),
            "file:///tmp/a%20b/%EB%A6%AC%ED%8F%AC%ED%8A%B8.html"
        );
    }
}
