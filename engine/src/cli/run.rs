//! `engine run`: one run over the selected business dates, a summary, an exit code.

use super::{DateArgs, runtime, stop_on_signals};
use engine::config::PipelineConfig;
use engine::dates::{DatesSpec, korea_today};
use engine::pipeline::Pipeline;
use engine::{Error, Result};
use std::path::Path;
use std::process::ExitCode;

pub(crate) fn run(path: &Path, args: &DateArgs, refetch: bool) -> Result<ExitCode> {
    let config = PipelineConfig::load(path)?;
    let spec = match (args.date, args.from, args.to) {
        (Some(day), _, _) => DatesSpec::Range { from: day, to: day },
        (None, Some(from), Some(to)) if from <= to => DatesSpec::Range { from, to },
        (None, Some(_), Some(_)) => {
            return Err(Error::config(
                "--from/--to",
                "--from must not be after --to",
            ));
        }
        _ => config.pipeline.dates.clone(),
    };
    let dates = spec.resolve(korea_today());
    let mut pipeline = Pipeline::build(&config)?;
    pipeline.refetch_final(refetch);
    let summary = runtime()?.block_on(async {
        let stop = stop_on_signals()?;
        pipeline.run(dates, &stop).await
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
