//! Steps between the parser and the sinks that reshape each record batch: the merchant's own
//! mapping lives here, as WebAssembly plugins the merchant writes and owns (`wasm`), so that no
//! merchant-specific rule ever has to enter the engine.
//!
//! A transform sees the batches of one source file after another, in order, and may change the
//! schema, but announces its output schema before the first batch and keeps it. Its calls are
//! CPU work and synchronous; the pipeline runs them off the async workers.
//!
//! Adding a transform type: write `transforms/NAME.rs` (or a folder) with a config struct
//! implementing [`BuildTransform`], then add one line to the `register_transforms!` list below.

mod wasm;

use crate::error::Result;
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use std::path::Path;

/// Why a transform could not transform, in words for the merchant. The pipeline adds which
/// transform, which file and which batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TransformFailure(pub String);

/// A running transform.
pub trait Transform: Send {
    /// Its name in the summary and in errors.
    fn name(&self) -> &str;

    /// The schema of the batches it gives back for batches of `input`; called before the first
    /// batch of every file.
    fn output_schema(&mut self, input: &SchemaRef) -> Result<SchemaRef, TransformFailure>;

    /// Reshapes one batch.
    fn transform(&mut self, batch: RecordBatch) -> Result<RecordBatch, TransformFailure>;

    /// Reshapes consecutive batches and gives them back in the same order. A transform that can
    /// work on several at once does; by default each is [`transform`](Self::transform)ed in
    /// turn. On failure: the position of the first batch that failed, and why.
    fn transform_all(
        &mut self,
        batches: Vec<RecordBatch>,
    ) -> Result<Vec<RecordBatch>, (usize, TransformFailure)> {
        batches
            .into_iter()
            .enumerate()
            .map(|(at, batch)| self.transform(batch).map_err(|failure| (at, failure)))
            .collect()
    }
}

/// What building a transform may need from the pipeline.
pub struct TransformContext<'a> {
    /// Where compiled plugins are cached between runs.
    pub state_dir: &'a Path,
}

/// A transform config that can build its running transform.
pub trait BuildTransform {
    fn build(&self, context: &TransformContext<'_>) -> Result<Box<dyn Transform>>;
}

macro_rules! register_transforms {
    ($($tag:literal => $variant:ident($config:ty),)*) => {
        /// `[[transforms]]`: one of the registered transform types, chosen by `type`.
        #[derive(Debug, serde::Deserialize)]
        #[serde(tag = "type", deny_unknown_fields)]
        pub enum TransformConfig {
            $(#[serde(rename = $tag)] $variant($config),)*
        }

        impl TransformConfig {
            pub fn build(&self, context: &TransformContext<'_>) -> Result<Box<dyn Transform>> {
                match self {
                    $(TransformConfig::$variant(config) => config.build(context),)*
                }
            }
        }
    };
}

register_transforms! {
    "wasm" => Wasm(wasm::WasmTransformConfig),
}
