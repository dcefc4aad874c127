//! `engine validate`: builds every stage of a pipeline file and moves no data. It checks what
//! `engine watch` checks too (the `schedule`), so a file that validates also starts a watcher.

use engine::Result;
use engine::config::PipelineConfig;
use engine::pipeline::Pipeline;
use std::path::Path;
use std::process::ExitCode;

pub(crate) fn validate(path: &Path) -> Result<ExitCode> {
    let config = PipelineConfig::load(path)?;
    engine::schedule::Schedule::from_config(&config.pipeline).map_err(|err| config.locate(err))?;
    let pipeline = Pipeline::build(&config)?;
    let transforms = pipeline.transform_names();
    println!(
        "{}: pipeline `{}` is valid ({} source, {} transform{}{}, {} sink{}); dates = {:?}",
        path.display(),
        pipeline.name(),
        pipeline.source_description(),
        transforms.len(),
        if transforms.len() == 1 { "" } else { "s" },
        if transforms.is_empty() {
            String::new()
        } else {
            format!(" {}", transforms.join(" → "))
        },
        config.sinks.len(),
        if config.sinks.len() == 1 { "" } else { "s" },
        config.pipeline.dates
    );
    Ok(ExitCode::SUCCESS)
}
