//! Files and folders readable by the engine's user only.
//!
//! What the engine keeps under `state_dir` (rejected lines, which are the input's own text; the
//! state file, which names every file and sink; spooled deliveries) is as sensitive as the data
//! itself, so it is created private (files 600, folders 700) whatever the process's umask. A
//! folder that already exists keeps the mode its owner gave it.

use std::fs::File;
use std::io;
use std::path::Path;

/// Creates `folder` and any missing parents, each new one private.
pub fn create_dir_all(folder: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(folder)
}

/// Creates (or truncates) `path` for writing, private to the engine's user when new.
pub fn create_file(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Makes sure `path` exists without changing its content, private to the engine's user when
/// new; for files another library opens (SQLite creates its files with the umask's mode, and
/// its journal files copy the mode of the database file).
pub fn touch_file(path: &Path) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_files_and_folders_are_private_and_existing_content_is_kept() {
        let root = tempfile::tempdir().unwrap();
        let folder = root.path().join("a/b");
        create_dir_all(&folder).unwrap();
        assert_eq!(mode(&root.path().join("a")), 0o700);
        assert_eq!(mode(&folder), 0o700);
        let file = folder.join("f");
        std::io::Write::write_all(&mut create_file(&file).unwrap(), b"x").unwrap();
        assert_eq!(mode(&file), 0o600);
        touch_file(&file).unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"x");
        let touched = folder.join("g");
        touch_file(&touched).unwrap();
        assert_eq!(mode(&touched), 0o600);
    }
}
