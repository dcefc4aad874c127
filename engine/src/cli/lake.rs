//! `engine lake optimize` and `engine lake vacuum`: maintenance of the Delta tables a pipeline
//! writes, found through its pipeline file so that they reach the table exactly as the loads do
//! (same path, endpoint and credentials).

use engine::config::PipelineConfig;
use engine::lake::delta::{self, Maintenance};
use engine::lake::store::Location;
use engine::sinks::{SinkConfig, names};
use engine::{Error, Result};
use std::path::Path;
use std::process::ExitCode;

/// What to do to each table.
pub(crate) enum Task {
    Optimize {
        target_mb: u64,
    },
    Vacuum {
        retain_hours: u64,
        dry_run: bool,
        allow_short_retention: bool,
    },
}

pub(crate) fn lake(
    pipeline: &Path,
    sink: Option<&str>,
    task: Task,
    json: bool,
) -> Result<ExitCode> {
    let config = PipelineConfig::load(pipeline)?;
    let tables = delta_tables(&config, sink)?;
    let runtime = super::runtime()?;
    let mut report = Vec::new();
    for (name, location, shown) in tables {
        let started = std::time::Instant::now();
        let done = runtime
            .block_on(async {
                match &task {
                    Task::Optimize { target_mb } => delta::optimize(&location, *target_mb).await,
                    Task::Vacuum {
                        retain_hours,
                        dry_run,
                        allow_short_retention,
                    } => {
                        delta::vacuum(&location, *retain_hours, *dry_run, *allow_short_retention)
                            .await
                    }
                }
            })
            .map_err(|err| Error::Sink {
                sink: name.clone(),
                message: format!("Delta table {shown}"),
                cause: Some(Box::new(err)),
            })?;
        if !json {
            println!("{}", line(&task, &name, &shown, &done, started.elapsed()));
        }
        report.push(serde_json::json!({
            "sink": name,
            "table": shown,
            "seconds": started.elapsed().as_secs_f64(),
            "result": done,
        }));
    }
    if json {
        println!("{}", serde_json::Value::Array(report));
    }
    Ok(ExitCode::SUCCESS)
}

fn line(
    task: &Task,
    name: &str,
    shown: &str,
    done: &Maintenance,
    took: std::time::Duration,
) -> String {
    let took = format!("{:.1} s", took.as_secs_f64());
    match task {
        Task::Optimize { .. } => format!(
            "{name} ({shown}): merged {} files into {} in {} partitions; version {} ({took})",
            done.files_removed, done.files_added, done.partitions, done.version
        ),
        Task::Vacuum { dry_run: true, .. } => format!(
            "{name} ({shown}): would delete {} files (dry run) ({took})",
            done.files_removed
        ),
        Task::Vacuum { .. } => format!(
            "{name} ({shown}): deleted {} files no version in the retention needs ({took})",
            done.files_removed
        ),
    }
}

/// The pipeline's Delta sinks (only `sink` when given): name, location, path as written.
fn delta_tables(
    config: &PipelineConfig,
    sink: Option<&str>,
) -> Result<Vec<(String, Location, String)>> {
    let mut found = Vec::new();
    for (config, name) in config.sinks.iter().zip(names(&config.sinks)) {
        if let SinkConfig::Delta(delta) = config
            && sink.is_none_or(|wanted| wanted == name)
        {
            found.push((name.clone(), delta.location(&name)?, delta.shown()));
        }
    }
    if found.is_empty() {
        let which = sink.map_or("a".to_owned(), |name| format!("the {name:?}"));
        return Err(Error::config(
            "--sink",
            format!(
                "the pipeline has no {which} [[sinks]] of type = \"delta\"; lake commands \
                 maintain Delta tables (sink names are their type, numbered when repeated: \
                 delta, delta#2)"
            ),
        ));
    }
    Ok(found)
}
