//! `engine watch`: keeps running on Toss's upload times, with optional Prometheus metrics.

use super::{runtime, stop_on_signals};
use engine::Result;
use engine::config::PipelineConfig;
use engine::pipeline::Pipeline;
use std::path::Path;
use std::process::ExitCode;

pub(crate) fn watch(
    path: &Path,
    metrics_addr: Option<std::net::SocketAddr>,
    reconcile: Option<&Path>,
) -> Result<ExitCode> {
    let config = PipelineConfig::load(path)?;
    let reconcile = reconcile
        .map(engine::reconcile::ReconcileConfig::load)
        .transpose()?;
    let schedule = engine::schedule::Schedule::from_config(&config.pipeline)
        .map_err(|err| config.locate(err))?;
    let pipeline = Pipeline::build(&config)?;
    let metrics = engine::metrics::Metrics::new(pipeline.name());
    runtime()?.block_on(async {
        let stop = stop_on_signals()?;
        if let Some(addr) = metrics_addr {
            engine::metrics::serve(addr, std::sync::Arc::clone(&metrics), stop.clone()).await?;
        }
        engine::watch::Watch {
            pipeline,
            schedule,
            state_dir: config.pipeline.state_dir.to_path(),
            metrics,
            reconcile,
        }
        .run(&stop)
        .await
    })?;
    eprintln!("engine watch stopped");
    Ok(ExitCode::SUCCESS)
}
