//! `engine run`: one run over the selected business dates, a summary, an exit code.

use super::{DateArgs, ReloadArgs, runtime, stop_on_signals};
use engine::Result;
use engine::config::PipelineConfig;
use engine::dates::{DatesSpec, korea_today};
use engine::pipeline::{Pipeline, RunOptions};
use std::path::Path;
use std::process::ExitCode;

pub(crate) fn run(path: &Path, args: &DateArgs, reload: &ReloadArgs) -> Result<ExitCode> {
    let config = PipelineConfig::load(path)?;
    let named_dates = reload
        .files
        .iter()
        .filter_map(|name| engine::toss::TossFileName::parse(name))
        .map(|name| name.trxdate)
        .collect::<Vec<_>>();
    let dates_of_files =
        (named_dates.len() == reload.files.len() && !named_dates.is_empty()).then(|| {
            DatesSpec::Range {
                from: *named_dates.iter().min().expect("not empty"),
                to: *named_dates.iter().max().expect("not empty"),
            }
        });
    let spec = match args.spec()? {
        Some(spec) => spec,
        None => dates_of_files.unwrap_or_else(|| config.pipeline.dates.clone()),
    };
    let options = RunOptions {
        force: reload.force,
        refetch: reload.refetch,
        only: (!reload.files.is_empty()).then(|| reload.files.iter().cloned().collect()),
    };
    let dates = spec.resolve(korea_today());
    let mut pipeline = Pipeline::build(&config)?;
    let summary = runtime()?.block_on(async {
        let stop = stop_on_signals()?;
        pipeline.run_with(dates, &options, &stop).await
    })?;
    print!("{summary}");
    if summary.interrupted {
        eprintln!("error: interrupted; the file in flight was rolled back, rerun to complete");
        return Ok(ExitCode::from(130));
    }
    Ok(if summary.succeeded() {
        ExitCode::SUCCESS
    } else {
        for failed in summary.failed_files() {
            if let engine::summary::FileOutcome::Failed(message) = &failed.outcome {
                eprintln!("error: {}: {message}", failed.name);
            }
        }
        ExitCode::from(1)
    })
}
