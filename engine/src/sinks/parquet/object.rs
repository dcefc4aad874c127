//! A lake on object storage (S3 and S3-compatible stores, GCS, Azure Blob) through the
//! `object_store` crate, as a [`Destination`].
//!
//! Every object goes up as a multipart upload, streamed in parts (`part_size_mb`) as the
//! encoder writes, so memory stays bounded by a part however large the file. An object store
//! shows an object only once its upload completes, and completing one replaces the older
//! object of that name in one step: a reader sees the old version or the new, never a part. A
//! load that fails or is stopped aborts its upload; one killed outright leaves an unfinished
//! upload that no listing shows (a bucket lifecycle rule removes those).
//!
//! The encoder writes on a thread of its own and the load commits from a runtime worker, so
//! each call into the store runs on a short-lived thread of its own that waits on the runtime's
//! handle: that is allowed from any thread, where waiting on a worker is not.

use std::io::{self, Write};
use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::{MultipartUpload, ObjectStore, ObjectStoreExt, PutPayload};
use tokio::runtime::Handle;

use super::put::{Destination, PendingObject};

/// The default size of each uploaded part but the last (S3 wants at least 5 MiB).
pub(super) const PART_BYTES: usize = 8 * 1024 * 1024;

/// A prefix in a bucket (container).
pub(super) struct ObjectDestination {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    /// `s3://bucket/prefix`, for messages.
    shown: String,
    part_bytes: usize,
}

impl ObjectDestination {
    /// The prefix of `url` (`s3://bucket/prefix`, `gs://…`, `az://…`) in `store`, the bucket
    /// it names (see [`crate::lake::store::locate`]).
    pub(super) fn new(
        store: Arc<dyn ObjectStore>,
        url: &reqwest::Url,
        part_bytes: usize,
    ) -> Result<Self, String> {
        let prefix = ObjectPath::from_url_path(url.path()).map_err(|err| err.to_string())?;
        Ok(ObjectDestination {
            store,
            prefix,
            shown: crate::lake::store::shown(url),
            part_bytes,
        })
    }

    fn object_path(&self, path: &str) -> ObjectPath {
        path.split('/')
            .filter(|part| !part.is_empty())
            .fold(self.prefix.clone(), |joined, part| joined.join(part))
    }
}

fn store_error(err: object_store::Error) -> io::Error {
    io::Error::other(err)
}

/// Runs `future` to its end on the runtime of `handle`, from any thread (see the module docs).
fn wait<T: Send>(handle: &Handle, future: impl Future<Output = T> + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| handle.block_on(future))
            .join()
            .expect("a store call does not panic")
    })
}

impl Destination for ObjectDestination {
    fn create(&self, path: &str) -> io::Result<Box<dyn PendingObject>> {
        let handle = Handle::try_current().map_err(io::Error::other)?;
        Ok(Box::new(PendingUpload {
            store: Arc::clone(&self.store),
            path: self.object_path(path),
            handle,
            upload: None,
            part: Vec::with_capacity(self.part_bytes),
            part_bytes: self.part_bytes,
        }))
    }

    fn describe(&self, path: &str) -> String {
        format!("{}/{path}", self.shown)
    }

    fn tail(&self, path: &str, bytes: u64) -> io::Result<Option<(u64, Vec<u8>)>> {
        let handle = Handle::try_current().map_err(io::Error::other)?;
        let path = self.object_path(path);
        let store = Arc::clone(&self.store);
        let found = wait(&handle, async move {
            let meta = match store.head(&path).await {
                Ok(meta) => meta,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(err) => return Err(err),
            };
            let start = meta.size.saturating_sub(bytes);
            let tail = store.get_range(&path, start..meta.size).await?;
            Ok(Some((meta.size, tail.to_vec())))
        });
        found.map_err(store_error)
    }
}

/// An object being uploaded: bytes gather into a part, each full part goes up as it fills.
struct PendingUpload {
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    handle: Handle,
    /// Started with the first part, so an object that fails before it has one costs nothing.
    upload: Option<Box<dyn MultipartUpload>>,
    part: Vec<u8>,
    part_bytes: usize,
}

impl PendingUpload {
    fn send_part(&mut self) -> io::Result<()> {
        let part = std::mem::replace(&mut self.part, Vec::with_capacity(self.part_bytes));
        let store = Arc::clone(&self.store);
        let path = self.path.clone();
        let upload = &mut self.upload;
        wait(&self.handle, async {
            if upload.is_none() {
                *upload = Some(store.put_multipart(&path).await?);
            }
            let upload = upload.as_mut().expect("started above");
            upload.put_part(PutPayload::from(part)).await
        })
        .map_err(store_error)
    }
}

impl Write for PendingUpload {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let room = self.part_bytes - self.part.len();
        let taken = bytes.len().min(room);
        self.part.extend_from_slice(&bytes[..taken]);
        if self.part.len() == self.part_bytes {
            self.send_part()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl PendingObject for PendingUpload {
    fn commit(mut self: Box<Self>) -> io::Result<()> {
        if !self.part.is_empty() || self.upload.is_none() {
            self.send_part()?;
        }
        let mut upload = self.upload.take().expect("a part was sent");
        let completed = wait(&self.handle, upload.complete()).map(|_| ());
        if completed.is_err() {
            let _ = wait(&self.handle, upload.abort());
        }
        completed.map_err(store_error)
    }

    fn abort(self: Box<Self>) {}
}

impl Drop for PendingUpload {
    /// Dropped without a commit (an abort, a failed encoder): the upload is given up, so no
    /// part of it stays stored.
    fn drop(&mut self) {
        if let Some(mut upload) = self.upload.take()
            && let Err(err) = wait(&self.handle, upload.abort())
        {
            tracing::warn!(path = %self.path, "could not abort an upload: {err}");
        }
    }
}
