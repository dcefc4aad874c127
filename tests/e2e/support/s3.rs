//! A real S3 server per test: moto in server mode (`scripts/ensure-python.sh` installs it) on a
//! free port of 127.0.0.1, stopped when the test ends. Tests read what the engine wrote through
//! the `object_store` crate, and ask the server directly for what a store client does not show
//! (unfinished multipart uploads).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

/// The credentials the tests give the engine (moto accepts any).
pub const ACCESS_KEY: &str = "AKIATESTENGINE0001";
pub const SECRET_KEY: &str = "s3-Secret-Test-0123456789abcdef";

pub struct S3Server {
    child: Child,
    pub port: u16,
    runtime: tokio::runtime::Runtime,
}

fn moto_server() -> PathBuf {
    if let Some(path) = std::env::var_os("MOTO_SERVER") {
        return path.into();
    }
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/moto-venv/bin/moto_server");
    assert!(
        venv.exists(),
        "the S3 test server is missing: run scripts/ensure-python.sh (it installs moto[server] \
         into target/moto-venv), or set MOTO_SERVER"
    );
    venv
}

impl S3Server {
    pub fn start() -> Self {
        let port = crate::support::free_port();
        let child = Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let server = S3Server {
            child,
            port,
            runtime: tokio::runtime::Runtime::new().unwrap(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.http("GET", "/").is_none() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The shipped pipeline file `pipelines/{file}` set up to run against this server in
    /// `workspace`: the sample inbox, a state folder of the workspace, plain HTTP allowed.
    pub fn shipped_pipeline(&self, workspace: &crate::support::Workspace, file: &str) -> PathBuf {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let text = std::fs::read_to_string(root.join("pipelines").join(file))
            .unwrap()
            .replace(
                "path = \"pipelines/inbox\"",
                &format!("path = {:?}", root.join("pipelines/inbox")),
            )
            .replace(
                "state_dir = \".engine\"",
                &format!("state_dir = {:?}", workspace.path("state")),
            )
            // The test store speaks plain HTTP, which the file allows only when told.
            .replace("# allow_http = true", "allow_http = true");
        workspace.pipeline(file, &text)
    }

    /// The environment the engine needs for this server's credentials.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("S3_ENDPOINT", self.endpoint()),
        ]
    }

    /// One plain request; the response's status line and body, or `None` if it failed.
    fn http(&self, method: &str, target: &str) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        write!(
            stream,
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n",
            self.port
        )
        .ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        (!answer.is_empty()).then_some(answer)
    }

    pub fn create_bucket(&self, bucket: &str) {
        let answer = self
            .http("PUT", &format!("/{bucket}"))
            .expect("moto answers");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    /// Multipart uploads started in `bucket` and neither completed nor aborted.
    pub fn unfinished_uploads(&self, bucket: &str) -> usize {
        let answer = self
            .http("GET", &format!("/{bucket}?uploads"))
            .expect("moto answers");
        answer.matches("<Upload>").count()
    }

    fn store(&self, bucket: &str) -> Arc<dyn ObjectStore> {
        Arc::new(
            AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_endpoint(self.endpoint())
                .with_allow_http(true)
                .with_region("us-east-1")
                .with_access_key_id(ACCESS_KEY)
                .with_secret_access_key(SECRET_KEY)
                .build()
                .unwrap(),
        )
    }

    /// Every object's key under `prefix`, sorted, with its size.
    pub fn list(&self, bucket: &str, prefix: &str) -> Vec<(String, u64)> {
        use futures::TryStreamExt;
        let store = self.store(bucket);
        let prefix = ObjectPath::from(prefix);
        let mut objects: Vec<(String, u64)> = self.runtime.block_on(async {
            store
                .list(Some(&prefix))
                .map_ok(|meta| (meta.location.to_string(), meta.size))
                .try_collect()
                .await
                .unwrap()
        });
        objects.sort();
        objects
    }

    pub fn get(&self, bucket: &str, key: &str) -> bytes::Bytes {
        let store = self.store(bucket);
        self.runtime.block_on(async {
            store
                .get(&ObjectPath::from(key))
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
        })
    }

    /// The rows of a Parquet object.
    pub fn read_parquet(&self, bucket: &str, key: &str) -> Vec<RecordBatch> {
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            self.get(bucket, key),
        )
        .unwrap()
        .build()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
