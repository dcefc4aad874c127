//! `engine plugin new NAME [--lang rust|ts]`: a new plugin project that builds and runs as it
//! is, so a merchant starts from working code (a transform, a native unit test, the build command
//! and the pipeline snippet) instead of from a blank page: a Rust crate on the Rust SDK (`sdk/`),
//! or an npm package on the TypeScript SDK (`sdk-js/`), linked to the SDK of the checkout.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

const CARGO_TOML: &str = include_str!("template/Cargo.toml.txt");
const LIB_RS: &str = include_str!("template/lib.rs.txt");
const README_MD: &str = include_str!("template/README.md.txt");

const TS_PACKAGE_JSON: &str = include_str!("template-ts/package.json.txt");
const TS_TSCONFIG: &str = include_str!("template-ts/tsconfig.json.txt");
const TS_GITIGNORE: &str = include_str!("template-ts/gitignore.txt");
const TS_INDEX: &str = include_str!("template-ts/index.ts.txt");
const TS_TEST: &str = include_str!("template-ts/plugin.test.ts.txt");
const TS_README: &str = include_str!("template-ts/README.md.txt");

/// The SDK's package name, which a folder's Cargo.toml must declare for it to be the SDK.
const SDK_PACKAGE: &str = "toss-etl-sdk";

/// The TypeScript SDK's npm package name, which a folder's package.json must declare.
const TS_SDK_PACKAGE: &str = "@toss-etl/sdk";

/// The language of a new plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// A Rust crate on `toss-etl-sdk`, built with cargo for wasm32-wasip2.
    Rust,
    /// An npm package on `@toss-etl/sdk`, built with its `npm run build`.
    TypeScript,
}

/// Where the SDK is when `--sdk` is not given, found at run time: the `sdk/` folder of the
/// checkout the running engine lives in (`target/release/engine` sits two levels below it), by
/// walking up from the executable, or else of the checkout the current folder is in, by walking
/// up from it. Nothing about the machine that built the engine is kept in the binary (a crate
/// cannot depend on the SDK by git without a network either), so an engine run outside any
/// checkout asks for `--sdk` instead of pointing the new crate at a folder that may not exist.
pub fn find_sdk() -> Result<PathBuf> {
    find_sdk_of(Lang::Rust)
}

/// [`find_sdk`] for the SDK of `lang`: `sdk/` for Rust, `sdk-js/` (whose package.json is
/// package `@toss-etl/sdk`) for TypeScript.
pub fn find_sdk_of(lang: Lang) -> Result<PathBuf> {
    let exe = std::env::current_exe().and_then(|exe| exe.canonicalize());
    let cwd = std::env::current_dir().and_then(|cwd| cwd.canonicalize());
    let found = exe
        .as_deref()
        .ok()
        .and_then(|exe| sdk_above_of(exe.parent()?, lang))
        .or_else(|| sdk_above_of(cwd.as_deref().ok()?, lang));
    let (folder, package, manifest) = sdk_names(lang);
    found.ok_or_else(|| {
        let place = |place: &std::io::Result<PathBuf>| match place {
            Ok(path) => path.display().to_string(),
            Err(err) => format!("unknown: {err}"),
        };
        Error::config(
            "--sdk",
            format!(
                "found no SDK in a folder above this engine ({}) nor above the current folder \
                 ({}); pass --sdk <path to the {folder} folder of a checkout of the engine's \
                 repository> (the folder whose {manifest} is package {package:?})",
                place(&exe),
                place(&cwd)
            ),
        )
    })
}

/// The SDK folder's name, its package name and the manifest that declares it, for `lang`.
fn sdk_names(lang: Lang) -> (&'static str, &'static str, &'static str) {
    match lang {
        Lang::Rust => ("sdk", SDK_PACKAGE, "Cargo.toml"),
        Lang::TypeScript => ("sdk-js", TS_SDK_PACKAGE, "package.json"),
    }
}

/// The nearest `{dir or an ancestor}/sdk/` that holds the SDK.
#[cfg(test)]
fn sdk_above(dir: &Path) -> Option<PathBuf> {
    sdk_above_of(dir, Lang::Rust)
}

/// The nearest `{dir or an ancestor}/{sdk folder}/` that holds the SDK of `lang`.
fn sdk_above_of(dir: &Path, lang: Lang) -> Option<PathBuf> {
    let (folder, _, _) = sdk_names(lang);
    dir.ancestors()
        .map(|dir| dir.join(folder))
        .find(|candidate| is_sdk_of(candidate, lang))
}

/// The SDK at `--sdk`: an existing folder whose manifest is the SDK's.
fn given_sdk(sdk: &Path, lang: Lang) -> Result<PathBuf> {
    let (folder_name, package, manifest) = sdk_names(lang);
    let refused = |why: String| {
        Error::config(
            "--sdk",
            format!(
                "{why}; pass --sdk <path to the {folder_name} folder of a checkout of the \
                 engine's repository> (the folder whose {manifest} is package {package:?})"
            ),
        )
    };
    let folder = sdk
        .canonicalize()
        .map_err(|err| refused(format!("cannot find the SDK at {} ({err})", sdk.display())))?;
    if !is_sdk_of(&folder, lang) {
        return Err(refused(format!(
            "{} is not the SDK: it has no {manifest} of package {package:?}",
            folder.display()
        )));
    }
    Ok(folder)
}

/// Whether `dir` holds the SDK of `lang`.
fn is_sdk_of(dir: &Path, lang: Lang) -> bool {
    match lang {
        Lang::Rust => is_sdk(dir),
        Lang::TypeScript => std::fs::read_to_string(dir.join("package.json"))
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .is_some_and(|manifest| manifest["name"] == TS_SDK_PACKAGE),
    }
}

/// Whether `dir/Cargo.toml` is the SDK's manifest.
fn is_sdk(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml"))
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|manifest| {
            let name = manifest.get("package")?.get("name")?.as_str()?;
            Some(name == SDK_PACKAGE)
        })
        .unwrap_or(false)
}

/// Creates `{parent}/{name}/` with Cargo.toml, src/lib.rs and README.md; returns the folder.
/// The crate depends on the SDK at `sdk` (`--sdk`), or else at the one [`find_sdk`] finds.
pub fn new_plugin(name: &str, parent: &Path, sdk: Option<&Path>) -> Result<PathBuf> {
    new_plugin_in(name, parent, sdk, Lang::Rust)
}

/// Creates `{parent}/{name}/`, a plugin project in `lang`; returns the folder. Rust: Cargo.toml,
/// src/lib.rs, README.md. TypeScript: package.json (linking the TS SDK with `file:`),
/// tsconfig.json, src/index.ts, test/plugin.test.ts, README.md, .gitignore. The project
/// depends on the SDK at `sdk` (`--sdk`), or else at the one [`find_sdk_of`] finds.
pub fn new_plugin_in(name: &str, parent: &Path, sdk: Option<&Path>, lang: Lang) -> Result<PathBuf> {
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
    let sdk = match sdk {
        Some(sdk) => given_sdk(sdk, lang)?,
        None => find_sdk_of(lang)?,
    };
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
    let files: &[(&str, &str)] = match lang {
        Lang::Rust => &[
            ("Cargo.toml", CARGO_TOML),
            ("src/lib.rs", LIB_RS),
            ("README.md", README_MD),
        ],
        Lang::TypeScript => &[
            ("package.json", TS_PACKAGE_JSON),
            ("tsconfig.json", TS_TSCONFIG),
            (".gitignore", TS_GITIGNORE),
            ("src/index.ts", TS_INDEX),
            ("test/plugin.test.ts", TS_TEST),
            ("README.md", TS_README),
        ],
    };
    for (relative, template) in files {
        write(relative, fill(template))?;
    }
    Ok(folder)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This repository's SDK (a test may know where the source tree is; the binary may not).
    fn repo_sdk() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("sdk")
    }

    #[test]
    fn writes_a_crate_named_after_the_plugin() {
        let parent = tempfile::tempdir().unwrap();
        let sdk = repo_sdk();
        let folder = new_plugin("flag-large", parent.path(), Some(&sdk)).unwrap();
        let cargo = std::fs::read_to_string(folder.join("Cargo.toml")).unwrap();
        assert!(cargo.contains("name = \"flag-large\""), "{cargo}");
        assert!(cargo.contains("[workspace]"), "{cargo}");
        assert!(!cargo.contains("{{"), "{cargo}");
        let dependency = format!(
            "toss-etl-sdk = {{ path = \"{}\" }}",
            sdk.canonicalize().unwrap().display()
        );
        assert!(cargo.contains(&dependency), "{cargo}");
        let readme = std::fs::read_to_string(folder.join("README.md")).unwrap();
        assert!(readme.contains("flag_large.wasm"), "{readme}");
        assert!(new_plugin("flag-large", parent.path(), Some(&sdk)).is_err());
        assert!(new_plugin("Bad Name", parent.path(), Some(&sdk)).is_err());
    }

    #[test]
    fn writes_a_typescript_package_linked_to_the_ts_sdk() {
        let parent = tempfile::tempdir().unwrap();
        let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk-js");
        let folder =
            new_plugin_in("flag-large", parent.path(), Some(&sdk), Lang::TypeScript).unwrap();
        let package: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(folder.join("package.json")).unwrap())
                .unwrap();
        assert_eq!(package["name"], "flag-large");
        let link = format!("file:{}", sdk.canonicalize().unwrap().display());
        assert_eq!(package["dependencies"]["@toss-etl/sdk"], link.as_str());
        assert!(
            package["scripts"]["build"]
                .as_str()
                .unwrap()
                .contains("dist/flag_large.wasm")
        );
        for file in [
            "tsconfig.json",
            "src/index.ts",
            "test/plugin.test.ts",
            ".gitignore",
        ] {
            let text = std::fs::read_to_string(folder.join(file)).unwrap();
            assert!(!text.contains("{{"), "{file}: {text}");
        }
        assert_eq!(
            sdk_above_of(&folder, Lang::TypeScript),
            None,
            "a temporary folder has no sdk-js above it"
        );
        let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release");
        assert_eq!(
            sdk_above_of(&built, Lang::TypeScript).map(|sdk| sdk.canonicalize().unwrap()),
            Some(sdk.canonicalize().unwrap())
        );
    }

    #[test]
    fn an_sdk_option_that_is_not_the_sdk_is_refused() {
        let parent = tempfile::tempdir().unwrap();
        let engine = Path::new(env!("CARGO_MANIFEST_DIR"));
        let err = new_plugin("p", parent.path(), Some(engine)).unwrap_err();
        let ts = new_plugin_in("p", parent.path(), Some(&repo_sdk()), Lang::TypeScript);
        assert!(
            ts.unwrap_err()
                .to_string()
                .contains("no package.json of package \"@toss-etl/sdk\"")
        );
        assert!(err.to_string().contains("is not the SDK"), "{err}");
        assert_eq!(err.exit_code(), 2);
        let err = new_plugin("p", parent.path(), Some(&parent.path().join("nowhere")));
        let err = err.unwrap_err();
        assert!(err.to_string().contains("cannot find the SDK"), "{err}");
        assert_eq!(err.exit_code(), 2);
        assert!(!parent.path().join("p").exists());
    }

    #[test]
    fn the_sdk_is_found_above_the_executable_in_a_checkout() {
        let checkout = tempfile::tempdir().unwrap();
        let root = checkout.path();
        let exe = root.join("target/release/engine");
        std::fs::create_dir_all(exe.parent().unwrap()).unwrap();
        std::fs::write(&exe, "").unwrap();
        let exe = exe.parent().unwrap();
        // No sdk/ folder anywhere above: nothing found.
        assert_eq!(sdk_above(exe), None);
        // An sdk/ folder of another package is not the SDK.
        std::fs::create_dir_all(root.join("sdk")).unwrap();
        std::fs::write(root.join("sdk/Cargo.toml"), "[package]\nname = \"other\"\n").unwrap();
        assert_eq!(sdk_above(exe), None);
        std::fs::write(
            root.join("sdk/Cargo.toml"),
            "[package]\nname = \"toss-etl-sdk\"\nversion = \"0.1.0\"\n",
        )
        .unwrap();
        assert_eq!(sdk_above(exe), Some(root.join("sdk")));
        // The checkout's root itself (a current folder) finds it too.
        assert_eq!(sdk_above(root), Some(root.join("sdk")));
        // This repository's own build finds this repository's SDK.
        let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release");
        assert_eq!(
            sdk_above(&built).map(|sdk| sdk.canonicalize().unwrap()),
            Some(repo_sdk().canonicalize().unwrap())
        );
    }
}
