//! A real, throwaway PostgreSQL server per test: `initdb` into a temporary folder, `pg_ctl`
//! start on a free port of 127.0.0.1 with password authentication, and an immediate stop when
//! the test ends. Each test owns its server, so a test may stop it mid-load without disturbing
//! the others. As root (CI), the server runs as the `postgres` user, since PostgreSQL refuses
//! root. `fsync` is off for speed, but commits still reach the WAL before they return
//! (`synchronous_commit` stays on), so an immediate stop — a crash — keeps every commit.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The superuser's password in every test server: tests assert it never shows in output.
pub const PASSWORD: &str = "pg-Secret-7Tiger";

pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    tls: bool,
}

impl PgServer {
    pub fn start() -> PgServer {
        Self::start_with(None)
    }

    /// A server that also offers TLS with the certificate `pki` made.
    pub fn start_with_tls(pki: &crate::support::TestPki) -> PgServer {
        Self::start_with(Some(pki))
    }

    fn start_with(pki: Option<&crate::support::TestPki>) -> PgServer {
        let bin = server_binaries();
        let dir = tempfile::tempdir().expect("temporary folder");
        std::fs::write(dir.path().join("pw"), PASSWORD).unwrap();
        if let Some(pki) = pki {
            use std::os::unix::fs::PermissionsExt;
            std::fs::copy(pki.path("server.pem"), dir.path().join("server.pem")).unwrap();
            let key = dir.path().join("server.key");
            std::fs::copy(pki.path("server.key"), &key).unwrap();
            // PostgreSQL refuses a key that others may read.
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        if is_root() {
            let owned = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown runs");
            assert!(
                owned.success(),
                "cannot hand the test folder to user postgres"
            );
        }
        let port = crate::support::free_port();
        let server = PgServer {
            dir,
            bin,
            port,
            tls: pki.is_some(),
        };
        let data = server.data_dir();
        server.run_tool(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                "postgres",
                "-A",
                "scram-sha-256",
                "--pwfile",
                path_str(&server.dir.path().join("pw")),
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        server.start_again();
        server
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the (stopped) server again on the same port.
    pub fn start_again(&self) {
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off \
             -c max_connections=20",
            self.port,
            path_str(self.dir.path())
        );
        if self.tls {
            let file = |name: &str| self.dir.path().join(name).display().to_string();
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                file("server.pem"),
                file("server.key")
            ));
        }
        self.run_tool(
            "pg_ctl",
            &[
                "-D",
                path_str(&self.data_dir()),
                "-l",
                path_str(&self.dir.path().join("log")),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    /// Stops the server at once, as a crash would: open transactions are lost.
    pub fn stop_immediately(&self) {
        self.run_tool(
            "pg_ctl",
            &[
                "-D",
                path_str(&self.data_dir()),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }

    /// `postgresql://postgres:PASSWORD@127.0.0.1:PORT/database`
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgresql://postgres:{PASSWORD}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// A new database of the test's own.
    pub fn create_database(&self, name: &str) -> String {
        self.execute("postgres", &format!("CREATE DATABASE {name}"));
        self.url(name)
    }

    /// Runs SQL (one or more statements) in `database`.
    pub fn execute(&self, database: &str, sql: &str) {
        let url = self.url(database);
        runtime().block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("test connection");
            tokio::spawn(connection);
            client.batch_execute(sql).await.expect("test SQL runs");
        });
    }

    /// The rows of a query, every value as PostgreSQL prints it (NULL as None), in Korea time.
    pub fn query(&self, database: &str, sql: &str) -> Vec<Vec<Option<String>>> {
        let url = self.url(database);
        runtime().block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("test connection");
            tokio::spawn(connection);
            client
                .batch_execute("SET TIME ZONE 'Asia/Seoul'")
                .await
                .unwrap();
            let messages = client.simple_query(sql).await.expect("test query runs");
            messages
                .into_iter()
                .filter_map(|message| match message {
                    tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                        (0..row.len())
                            .map(|index| row.get(index).map(str::to_owned))
                            .collect(),
                    ),
                    _ => None,
                })
                .collect()
        })
    }

    /// The first value of the first row.
    pub fn value(&self, database: &str, sql: &str) -> Option<String> {
        self.query(database, sql)
            .into_iter()
            .next()
            .and_then(|row| row.into_iter().next().flatten())
    }

    /// `tool` of the server's programs, as the user that owns the data folder.
    fn tool(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            Command::new(&program)
        }
    }

    fn run_tool(&self, tool: &str, args: &[&str]) {
        let output = self
            .tool(tool)
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|err| panic!("cannot run {tool}: {err}"));
        assert!(
            output.status.success(),
            "{tool} failed: {}\n{}\nserver log:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
        );
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.data_dir();
        let _ = self
            .tool("pg_ctl")
            .args(["-D", path_str(&data), "-m", "immediate", "stop"])
            .output();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The folder holding `initdb` and `pg_ctl`: Debian keeps them under
/// `/usr/lib/postgresql/<version>/bin`, outside PATH.
fn server_binaries() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).find(|dir| dir.join("initdb").exists()))
        .expect(
            "PostgreSQL's server programs (initdb, pg_ctl) are not installed; \
             install Debian's `postgresql` package (.ci/run does)",
        )
}

/// Whether the tests run as root: the owner of a file this process creates is its effective
/// user (no `unsafe` call needed to ask).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    let probe = tempfile::NamedTempFile::new().expect("a temporary file");
    probe.as_file().metadata().expect("its metadata").uid() == 0
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}
