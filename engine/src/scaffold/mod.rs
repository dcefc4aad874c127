//! `engine plugin new NAME`: a new plugin crate that builds and runs as it is, so a merchant
//! starts from working code (a transform, a native unit test, the build command and the pipeline
//! snippet) instead of from a blank page.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

const CARGO_TOML: &str = include_str!("template/Cargo.toml.txt");
const LIB_RS: &str = include_str!("template/lib.rs.txt");
const README_MD: &str = include_str!("template/README.md.txt");

/// Where the SDK is, as the engine was built: the repository's `sdk/` folder.
pub fn default_sdk_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("sdk")
}

/// Creates `{parent}/{name}/` with Cargo.toml, src/lib.rs and README.md; returns the folder.
pub fn new_plugin(name: &str, parent: &Path, sdk: &Path) -> Result<PathBuf> {
    let valid = !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid {
        return Err(Error::config(
            "NAME",
            format!("{name:?} cannot name a crate: use lowercase letters, digits, '-' and '_'"),
        ));
    }
    let folder = parent.join(name);
    if folder.exists() {
        return Err(Error::config(
            "NAME",
            format!(
                "{} already exists; choose another name or --dir",
                folder.display()
            ),
        ));
    }
    let sdk = sdk.canonicalize().map_err(|err| {
        Error::io(
            format!(
                "cannot find the SDK at {} (pass --sdk PATH to the engine's sdk/ folder)",
                sdk.display()
            ),
            err,
        )
    })?;
    let library = name.replace('-', "_");
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{library}}", &library)
            .replace("{{sdk}}", &sdk.display().to_string().replace('\\', "/"))
    };
    let write = |relative: &str, text: String| {
        let path = folder.join(relative);
        std::fs::create_dir_all(path.parent().expect("inside the folder"))
            .and_then(|()| std::fs::write(&path, text))
            .map_err(|err| Error::io(format!("cannot write {}", path.display()), err))
    };
    write("Cargo.toml", fill(CARGO_TOML))?;
    write("src/lib.rs", fill(LIB_RS))?;
    write("README.md", fill(README_MD))?;
    Ok(folder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_crate_named_after_the_plugin() {
        let parent = tempfile::tempdir().unwrap();
        let folder = new_plugin("flag-large", parent.path(), &default_sdk_path()).unwrap();
        let cargo = std::fs::read_to_string(folder.join("Cargo.toml")).unwrap();
        assert!(cargo.contains("name = \"flag-large\""), "{cargo}");
        assert!(cargo.contains("[workspace]"), "{cargo}");
        assert!(!cargo.contains("{{"), "{cargo}");
        let readme = std::fs::read_to_string(folder.join("README.md")).unwrap();
        assert!(readme.contains("flag_large.wasm"), "{readme}");
        assert!(new_plugin("flag-large", parent.path(), &default_sdk_path()).is_err());
        assert!(new_plugin("Bad Name", parent.path(), &default_sdk_path()).is_err());
    }
}
