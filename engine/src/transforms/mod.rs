//! Steps between the parser and the sinks that reshape each record batch: the merchant's own
//! mapping lives here, as WebAssembly plugins the merchant writes and owns. A transform sees the
//! batches of one source file in order and may change the schema, but must give every batch of
//! a file the same output schema.

use crate::error::Result;
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

/// A running transform.
#[async_trait::async_trait]
pub trait Transform: Send {
    /// Its name in the summary and in errors.
    fn name(&self) -> &str;

    /// The schema of the batches it gives back for batches of `input`.
    fn output_schema(&mut self, input: &SchemaRef) -> Result<SchemaRef>;

    /// Reshapes one batch.
    async fn transform(&mut self, batch: RecordBatch) -> Result<RecordBatch>;
}
