//! `deploy/`: the Kubernetes manifests parse, and the pipeline files their ConfigMap ships are
//! valid pipelines of this engine, so what the README's "Past one machine" shows would run.

use crate::support::*;
use std::path::Path;
use std::process::Command;

#[test]
fn the_shards_pipeline_files_in_the_configmap_validate_and_share_one_delta_table() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join("target/moto-venv/bin/python");
    assert!(python.exists(), "run scripts/ensure-python.sh");
    let workspace = Workspace::new();
    let out = workspace.path("pipelines");
    std::fs::create_dir_all(&out).unwrap();
    // Every manifest parses as YAML; the ConfigMap's files are written out.
    let script = r#"
import sys, yaml, pathlib
deploy, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
kinds = []
for manifest in sorted(deploy.glob("kubernetes/*.yaml")):
    for document in yaml.safe_load_all(manifest.read_text()):
        kinds.append(document["kind"])
        if document["kind"] == "ConfigMap":
            for name, text in document["data"].items():
                (out / name).write_text(text)
print(" ".join(kinds))
"#;
    let parsed = Command::new(&python)
        .args([
            "-c",
            script,
            root.join("deploy").to_str().unwrap(),
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        parsed.status.success(),
        "{}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    let kinds = String::from_utf8_lossy(&parsed.stdout);
    assert_eq!(kinds.matches("CronJob").count(), 3, "{kinds}");
    for kind in ["ConfigMap", "Secret", "PersistentVolumeClaim"] {
        assert!(kinds.contains(kind), "{kinds}");
    }

    let env = [
        ("FTP_HOST", "ftp.example.co.kr"),
        ("FTP_USER", "toss"),
        ("FTP_PASSWORD", "secret-password"),
        ("LAKE_BUCKET", "my-lake"),
    ];
    let mut tables = Vec::new();
    let mut mids = Vec::new();
    for shard in ["shard-a.toml", "shard-b.toml", "maintenance.toml"] {
        let file = out.join(shard);
        let text = std::fs::read_to_string(&file).unwrap();
        let validate = workspace.engine_with_env(&["validate", file.to_str().unwrap()], &env);
        assert_eq!(validate.code, 0, "{shard}: {}", validate.all_output());
        let value: toml::Value = toml::from_str(&text).unwrap();
        tables.push(value["sinks"][0]["path"].as_str().unwrap().to_owned());
        if let Some(list) = value["source"].get("mids") {
            mids.extend(
                list.as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m.as_str().unwrap().to_owned()),
            );
        }
    }
    assert!(
        tables.windows(2).all(|pair| pair[0] == pair[1]),
        "{tables:?}"
    );
    let distinct: std::collections::HashSet<&String> = mids.iter().collect();
    assert_eq!(distinct.len(), mids.len(), "a MID in two shards: {mids:?}");
}
