//! Calling a stateless plugin on several instances at once, with answers in input order.
//!
//! A plugin's calls are the one step of a load that would otherwise run on a single thread: the
//! parser and the Parquet encoder already use every core. A plugin that keeps no state between
//! calls gives the same answer whichever instance is asked, so the consecutive batches of one
//! parser batch are dealt out among instances, each on its own thread, and put back in order.
//! Batches are dealt in turn (of `n` instances, the `k`-th takes batches `k`, `k + n`, …): equal
//! batches make equal shares, and which instance saw which batch is the same on every run. After
//! a failure an instance still answers the batches before it, so the failure reported is the
//! first in input order, as it would be one call after another.

use std::panic::resume_unwind;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use super::{Instance, Plugin};
use crate::transforms::TransformFailure;

/// A batch's answer, by its position in the input.
type Answer = (usize, Result<RecordBatch, TransformFailure>);

/// Transforms `batches` on `instances` at once (the first on this thread), checking each answer
/// against its `expected` schema; the answers in the order of `batches`, or the position of the
/// first that failed and why.
pub(super) fn run_in_order(
    plugin: &Plugin,
    instances: &mut [Instance],
    batches: &[RecordBatch],
    expected: &[SchemaRef],
) -> Result<Vec<RecordBatch>, (usize, TransformFailure)> {
    let dealt = instances.len();
    // The position of the first batch known to have failed; batches after it are not called.
    let first_failure = AtomicUsize::new(usize::MAX);
    let work = |share: usize, instance: &mut Instance| -> Vec<Answer> {
        let mut answers = Vec::new();
        for at in (share..batches.len()).step_by(dealt) {
            if at > first_failure.load(Ordering::Relaxed) {
                break;
            }
            let answer = instance.run_checked(plugin, &batches[at], &expected[at]);
            if answer.is_err() {
                first_failure.fetch_min(at, Ordering::Relaxed);
            }
            answers.push((at, answer));
        }
        answers
    };

    let (first, others) = instances
        .split_first_mut()
        .expect("a plugin has at least one instance");
    let mut answers = std::thread::scope(|scope| {
        let work = &work;
        let helpers: Vec<_> = others
            .iter_mut()
            .enumerate()
            .map(|(index, instance)| {
                let share = index + 1;
                std::thread::Builder::new()
                    .name(format!("plugin-{share}"))
                    .spawn_scoped(scope, move || work(share, instance))
                    .expect("a plugin thread starts")
            })
            .collect();
        let mut all = work(0, first);
        for helper in helpers {
            match helper.join() {
                Ok(theirs) => all.extend(theirs),
                Err(panic) => resume_unwind(panic),
            }
        }
        all
    });

    // Every batch before the first failure was answered, so in input order the first error met
    // is that failure; without one, every batch is here.
    answers.sort_unstable_by_key(|(at, _)| *at);
    let mut outputs = Vec::with_capacity(batches.len());
    for (at, answer) in answers {
        outputs.push(answer.map_err(|failure| (at, failure))?);
    }
    Ok(outputs)
}
