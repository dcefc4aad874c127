//! `engine status`: what a pipeline has loaded, read from its state without its secrets.

use engine::Result;
use engine::config::PipelineConfig;
use engine::sinks::Holding;
use std::path::Path;
use std::process::ExitCode;

pub(crate) fn status(path: &Path, json: bool, verify: bool) -> Result<ExitCode> {
    // Checking the sinks means talking to them, with their credentials: the full load, which
    // needs the secrets' variables set; plain status reads the state alone and needs none.
    let verified = if verify {
        let config = PipelineConfig::load(path)?;
        let pipeline = engine::pipeline::Pipeline::build(&config)?;
        Some(super::runtime()?.block_on(pipeline.verify_sinks())?)
    } else {
        None
    };
    let config = PipelineConfig::load_for_status(path)?;
    let name = config.pipeline.name.to_string();
    let state_dir = config.pipeline.state_dir.to_path();
    let sink_names = engine::sinks::names(&config.sinks);
    let (last_run, files, sink_files, watcher) = if state_dir.join("state.sqlite").exists() {
        let store = engine::state::StateStore::open(&state_dir)?;
        (
            store.last_run(&name)?,
            store.loaded_files(&name)?,
            store.sink_files(&name)?,
            store.watcher(&name)?,
        )
    } else {
        (None, Vec::new(), Vec::new(), None)
    };
    let watcher = watcher.filter(|watcher| process_alive(watcher.pid));
    // Per file and sink: whether the sink holds the version the state store says is loaded.
    let lost = |file: &engine::state::LoadedFile, sink: &str| -> Option<&str> {
        verified
            .as_ref()?
            .iter()
            .find_map(|found| match &found.holding {
                Holding::Lost(why) if found.unit == file.source_file && found.sink == sink => {
                    Some(why.as_str())
                }
                _ => None,
            })
    };
    let holds = |file: &engine::state::LoadedFile, sink: &str| -> &'static str {
        let committed = sink_files
            .iter()
            .find(|held| held.sink == sink && held.source_file == file.source_file);
        match (committed, &file.content_hash) {
            (Some(held), Some(hash)) if &held.content_hash == hash => {
                if lost(file, sink).is_some() {
                    "LOST"
                } else {
                    "yes"
                }
            }
            (Some(_), _) => "older version",
            (None, _) => "no",
        }
    };
    let losses: Vec<(&str, &str, &str)> = files
        .iter()
        .flat_map(|file| {
            sink_names.iter().filter_map(move |sink| {
                lost(file, sink).map(|why| (file.source_file.as_str(), sink.as_str(), why))
            })
        })
        .collect();
    let verdict = if losses.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    if json {
        let files_json: Vec<serde_json::Value> = files
            .iter()
            .map(|file| {
                let sinks: serde_json::Map<String, serde_json::Value> = sink_names
                    .iter()
                    .map(|sink| (sink.clone(), serde_json::json!(holds(file, sink) == "yes")))
                    .collect();
                let mut value = serde_json::to_value(file).unwrap_or_default();
                value["sinks"] = serde_json::Value::Object(sinks);
                if verified.is_some() {
                    let lost: serde_json::Map<String, serde_json::Value> = losses
                        .iter()
                        .filter(|(unit, ..)| *unit == file.source_file)
                        .map(|(_, sink, why)| ((*sink).to_owned(), serde_json::json!(why)))
                        .collect();
                    value["lost"] = serde_json::Value::Object(lost);
                }
                value
            })
            .collect();
        let document = serde_json::json!({
            "pipeline": name,
            "state_dir": state_dir,
            "sinks": sink_names,
            "last_run": last_run,
            "next_wake": watcher.as_ref().and_then(|watcher| watcher.next_wake.clone()),
            "watcher_pid": watcher.as_ref().map(|watcher| watcher.pid),
            "files": files_json,
        });
        println!("{document:#}");
        return Ok(verdict);
    }
    println!("pipeline {name} · state in {}", state_dir.display());
    match &watcher {
        Some(watcher) => println!(
            "engine watch running (pid {}) since {} · next wake {}",
            watcher.pid,
            watcher.started_at,
            watcher.next_wake.as_deref().unwrap_or("now")
        ),
        None => println!("engine watch: not running"),
    }
    match &last_run {
        None => println!("last run: never"),
        Some(run) => {
            println!(
                "last run: {} · {} → {} · {} · {} loaded, {} skipped, {} deferred, {} failed · {} rows",
                run.outcome,
                run.started_at,
                run.finished_at,
                run.dates,
                run.loaded,
                run.skipped,
                run.deferred,
                run.failed,
                run.rows
            );
            for line in run.message.lines() {
                println!("  failed: {line}");
            }
        }
    }
    if files.is_empty() {
        println!("no file loaded yet");
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = comfy_table::Table::new();
    let mut header = vec!["file", "bytes", "rows", "rejected", "loaded at"];
    header.extend(sink_names.iter().map(String::as_str));
    table
        .load_style(comfy_table::presets::UTF8_FULL_CONDENSED)
        .set_header(header);
    for file in &files {
        let mut row = vec![
            file.source_file.clone(),
            file.size.map_or("-".to_owned(), |size| size.to_string()),
            file.rows.to_string(),
            file.rejected.to_string(),
            file.loaded_at.clone(),
        ];
        row.extend(sink_names.iter().map(|sink| holds(file, sink).to_owned()));
        table.add_row(row);
    }
    println!("{table}");
    if verified.is_some() && losses.is_empty() {
        println!("verified: every sink holds what it committed");
    }
    for (unit, sink, why) in &losses {
        println!("LOST in {sink}: {why}");
        println!(
            "  reload it with: engine run {} --force --file {unit}",
            path.display()
        );
    }
    Ok(verdict)
}

/// Whether a process of this id still runs (a watcher killed with SIGKILL leaves its row).
fn process_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}
