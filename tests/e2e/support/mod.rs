//! What every end-to-end test needs: a temporary workspace, the engine binary, Toss lines, and a
//! way to read the lake back. The servers the engine talks to in tests live in the submodules:
//! a PostgreSQL server ([`pg`]), an FTP(S) server ([`ftp_server`]) and a smaller one for what it
//! cannot do ([`mini_ftp`]), and one small HTTP server
//! ([`http_server`]) under the webhook receiver ([`receiver`]), the Toss `trxdown.jsp`
//! stand-in ([`trxdown`]) and the Toss Payments v1 REST API stand-in ([`toss_api`]).

pub mod chromium;
pub mod ftp_server;
pub mod http_server;
pub mod mini_ftp;
pub mod pg;
pub mod receiver;
pub mod s3;
pub mod secrets;
pub mod toss_api;
pub mod trxdown;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The engine binary under test: this build's, or the one `ENGINE_E2E_BIN` names (to show that a
/// new test fails on an older engine).
pub static ENGINE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    std::env::var("ENGINE_E2E_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_engine").to_owned())
});

/// A sample file shipped in `pipelines/inbox/`.
pub fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../pipelines/inbox")
        .join(name)
}

/// A fresh folder with an `inbox/`, where the engine runs.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl Workspace {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        std::fs::create_dir(dir.path().join("inbox")).unwrap();
        Workspace { dir }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    pub fn inbox(&self, name: &str) -> PathBuf {
        self.path("inbox").join(name)
    }

    /// Writes a pipeline file named `name` and returns its path.
    pub fn pipeline(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The standard test pipeline: inbox → lake, with `extra_parser` keys in `[parser]`.
    pub fn default_pipeline(&self, extra_parser: &str) -> PathBuf {
        self.dir_pipeline(extra_parser, "")
    }

    /// inbox → `transforms` (`[[transforms]]` tables) → lake, `extra_parser` keys in `[parser]`.
    pub fn dir_pipeline(&self, extra_parser: &str, transforms: &str) -> PathBuf {
        self.inbox_pipeline(
            "pipeline.toml",
            "test",
            extra_parser,
            transforms,
            "[[sinks]]\ntype = \"parquet\"\npath = \"lake\"\n",
        )
    }

    /// `file`: pipeline `name` reading every date of `inbox/` (no settle time), with
    /// `extra_parser` keys in `[parser]`, then `transforms` and `sinks` as written.
    pub fn inbox_pipeline(
        &self,
        file: &str,
        name: &str,
        extra_parser: &str,
        transforms: &str,
        sinks: &str,
    ) -> PathBuf {
        self.pipeline(
            file,
            &format!(
                r#"[pipeline]
name = "{name}"
dates = "all"

[source]
type = "dir"
path = "inbox"
settle_secs = 0

[parser]
type = "toss"
{extra_parser}

{transforms}

{sinks}
"#
            ),
        )
    }

    pub fn engine(&self, args: &[&str]) -> Run {
        self.engine_with_env(args, &[])
    }

    pub fn engine_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = Command::new(&*ENGINE);
        command.args(args).current_dir(self.dir.path());
        for (key, value) in env {
            command.env(key, value);
        }
        let output: Output = command.output().expect("engine runs");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Fails, naming `context`, if any Parquet file is in the lake (a failed load left output).
    pub fn assert_no_parquet_left(&self, context: &str) {
        let files = self.lake_files();
        assert!(
            files.iter().all(|file| !file.ends_with(".parquet")),
            "{context}: output was left behind: {files:?}"
        );
    }

    /// Every visible Parquet file under `lake/`, relative to it, sorted.
    pub fn lake_files(&self) -> Vec<String> {
        let root = self.path("lake");
        let mut found = Vec::new();
        collect_files(&root, &root, &mut found);
        found.sort();
        found
    }

    /// All rows of one lake file.
    pub fn read_lake(&self, relative: &str) -> Vec<RecordBatch> {
        read_parquet(&self.path("lake").join(relative))
    }
}

fn collect_files(root: &Path, dir: &Path, found: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_files(root, &path, found);
        } else {
            found.push(
                path.strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
}

pub fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let file = std::fs::File::open(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .map(|batch| batch.unwrap())
        .collect()
}

pub fn total_rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|batch| batch.num_rows()).sum()
}

/// One column as strings (None for null), across batches.
pub fn strings(batches: &[RecordBatch], column: &str) -> Vec<Option<String>> {
    batches
        .iter()
        .flat_map(|batch| {
            let array = batch
                .column_by_name(column)
                .unwrap_or_else(|| panic!("no column {column}"));
            let array = array.as_string::<i32>();
            (0..array.len())
                .map(|i| (!array.is_null(i)).then(|| array.value(i).to_owned()))
                .collect::<Vec<_>>()
        })
        .collect()
}

pub fn int64s(batches: &[RecordBatch], column: &str) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|batch| {
            batch
                .column_by_name(column)
                .unwrap()
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .collect()
}

pub fn timestamps(batches: &[RecordBatch], column: &str) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|batch| {
            batch
                .column_by_name(column)
                .unwrap()
                .as_primitive::<TimestampMicrosecondType>()
                .values()
                .to_vec()
        })
        .collect()
}

/// A valid Toss line; `n` makes transaction and oid unique.
pub fn toss_line(n: u64, amount: u64, status: &str) -> String {
    format!(
        "toss;SC0010;toss{n:019};Toss_order_{n};11100;국민;buyer{n};{amount};N;20070706120000;{:08};{status}",
        n % 100_000_000
    )
}

/// A file of `rows` valid lines (`n` = 1..=rows), as Toss writes it.
pub fn toss_file(rows: u64, status: &str) -> String {
    let mut text = String::with_capacity(rows as usize * 120);
    for n in 1..=rows {
        text.push_str(&toss_line(n, 1000 + n, status));
        text.push('\n');
    }
    text
}

/// Certificate and key PEM files for a TLS test server (FTPS, PostgreSQL), and the CA that signed the certificate.
pub struct TestPki {
    dir: tempfile::TempDir,
}

impl TestPki {
    pub fn new() -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "engine test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let mut server_params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        server_params
            .distinguished_name
            .push(DnType::CommonName, "engine test server");
        let server_cert = server_params.signed_by(&server_key, &ca).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.path().join("server.pem"), server_cert.pem()).unwrap();
        std::fs::write(dir.path().join("server.key"), server_key.serialize_pem()).unwrap();
        TestPki { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// A port on 127.0.0.1 that nothing listens on (just now).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
