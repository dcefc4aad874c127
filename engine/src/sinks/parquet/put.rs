//! Putting one object in place atomically: bytes written under a name no reader takes as data,
//! then made visible whole, replacing the older version, or thrown away. The Parquet sink
//! writes through this step and nothing else, so a store other than a local folder is one more
//! implementation of [`Destination`].

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Where finished objects go.
pub trait Destination: Send + Sync {
    /// Starts the object at `path` (relative to the destination, `/`-separated). What is written
    /// to it stays invisible until [`PendingObject::commit`].
    fn create(&self, path: &str) -> io::Result<Box<dyn PendingObject>>;

    /// The object at `path`, as named in messages.
    fn describe(&self, path: &str) -> String;

    /// The size of the object at `path` and its last `bytes` bytes (all of it when smaller);
    /// `None` when there is no such object. For checking that what was committed is still there.
    fn tail(&self, path: &str, bytes: u64) -> io::Result<Option<(u64, Vec<u8>)>>;
}

/// An object being written; see [`Destination::create`].
pub trait PendingObject: Write + Send {
    /// Makes the object visible at its path, whole, replacing any older version; durable when
    /// it returns. On an error nothing new is visible.
    fn commit(self: Box<Self>) -> io::Result<()>;

    /// Throws away what was written.
    fn abort(self: Box<Self>);
}

/// A folder on a local file system: an object is written to a hidden temporary file beside its
/// final name, flushed to disk, and renamed over it (then the folder is flushed, so the rename
/// itself survives a power cut).
pub struct LocalFolder {
    root: PathBuf,
}

impl LocalFolder {
    pub fn new(root: PathBuf) -> Self {
        LocalFolder { root }
    }
}

impl Destination for LocalFolder {
    fn create(&self, path: &str) -> io::Result<Box<dyn PendingObject>> {
        let final_path = self.root.join(path);
        let folder = final_path
            .parent()
            .expect("an object path names a file")
            .to_path_buf();
        std::fs::create_dir_all(&folder)?;
        let name = final_path
            .file_name()
            .expect("an object path names a file")
            .to_string_lossy();
        let temp_path = folder.join(format!(".{name}.inprogress"));
        let file = File::create(&temp_path)?;
        Ok(Box::new(LocalObject {
            file: Some(file),
            temp_path: Some(temp_path),
            final_path,
        }))
    }

    fn describe(&self, path: &str) -> String {
        self.root.join(path).display().to_string()
    }

    fn tail(&self, path: &str, bytes: u64) -> io::Result<Option<(u64, Vec<u8>)>> {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = match File::open(self.root.join(path)) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        let size = file.metadata()?.len();
        let start = size.saturating_sub(bytes);
        file.seek(SeekFrom::Start(start))?;
        let mut tail = Vec::with_capacity((size - start) as usize);
        file.read_to_end(&mut tail)?;
        Ok(Some((size, tail)))
    }
}

/// A local object being written. Dropped without a commit (an abort, an encoder that failed
/// and let go of it), it removes its temporary file.
struct LocalObject {
    file: Option<File>,
    /// `None` once renamed into place.
    temp_path: Option<PathBuf>,
    final_path: PathBuf,
}

impl LocalObject {
    fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("the file is open until commit")
    }
}

impl Write for LocalObject {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.file().write(bytes)
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file().write_all(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file().flush()
    }
}

impl PendingObject for LocalObject {
    fn commit(mut self: Box<Self>) -> io::Result<()> {
        let file = self.file.take().expect("committed once");
        file.sync_all()?;
        drop(file);
        let temp_path = self.temp_path.as_ref().expect("committed once");
        std::fs::rename(temp_path, &self.final_path)?;
        self.temp_path = None;
        sync_folder(&self.final_path)
    }

    fn abort(self: Box<Self>) {}
}

impl Drop for LocalObject {
    fn drop(&mut self) {
        if let Some(temp_path) = self.temp_path.take() {
            drop(self.file.take());
            let _ = std::fs::remove_file(temp_path);
        }
    }
}

/// Makes a rename into `path`'s folder durable.
fn sync_folder(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(folder) => File::open(folder)?.sync_all(),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_in(folder: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(folder)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn an_object_is_invisible_until_committed_and_replaces_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let folder = LocalFolder::new(dir.path().to_path_buf());
        let mut first = folder.create("a=1/x.parquet").unwrap();
        first.write_all(b"old").unwrap();
        assert_eq!(names_in(&dir.path().join("a=1")), [".x.parquet.inprogress"]);
        first.commit().unwrap();
        let mut second = folder.create("a=1/x.parquet").unwrap();
        second.write_all(b"new").unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("a=1/x.parquet")).unwrap(),
            b"old"
        );
        second.commit().unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("a=1/x.parquet")).unwrap(),
            b"new"
        );
        assert_eq!(names_in(&dir.path().join("a=1")), ["x.parquet"]);
    }

    #[test]
    fn an_aborted_object_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let folder = LocalFolder::new(dir.path().to_path_buf());
        let mut object = folder.create("x.parquet").unwrap();
        object.write_all(b"half").unwrap();
        object.abort();
        assert!(names_in(dir.path()).is_empty());
    }
}
