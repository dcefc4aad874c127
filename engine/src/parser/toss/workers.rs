//! Segments parsed on the parse pool and handed back in the order they were cut.
//!
//! The decoder cuts segments in line order and must apply the duplicate check in that order, so
//! the queue is a FIFO of results-to-be: the oldest is taken first, whichever worker finished
//! first. At most `window` segments are in flight, which bounds memory by a few segments
//! however fast the input arrives; the decoder waits for the oldest before cutting more.
//! Without a pool (one core, or `ENGINE_THREADS=1`) a segment is parsed the moment it is
//! submitted, on the caller's thread: the same code, in series.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::thread;

use super::segment::ParsedSegment;

type Outcome = thread::Result<ParsedSegment>;

/// A segment submitted for parsing.
#[derive(Debug)]
enum InFlight {
    Done(Box<ParsedSegment>),
    Running(Receiver<Outcome>),
}

/// The parse pool's queue of one decoder.
#[derive(Debug)]
pub(crate) struct Workers {
    pool: Option<&'static rayon::ThreadPool>,
    window: usize,
    in_flight: VecDeque<InFlight>,
}

impl Workers {
    /// Parsing on `pool`, or on the caller's thread when there is none.
    pub(crate) fn new(pool: Option<&'static rayon::ThreadPool>) -> Self {
        // One segment per worker: one more in flight was no faster and held another segment's
        // memory.
        let window = pool.map_or(1, rayon::ThreadPool::current_num_threads);
        Workers {
            pool,
            window,
            in_flight: VecDeque::new(),
        }
    }

    /// Whether the next submission must wait until the oldest segment is taken.
    pub(crate) fn is_full(&self) -> bool {
        self.in_flight.len() >= self.window
    }

    /// Starts parsing a segment (`parse` does it).
    pub(crate) fn submit(&mut self, parse: impl FnOnce() -> ParsedSegment + Send + 'static) {
        let Some(pool) = self.pool else {
            self.in_flight.push_back(InFlight::Done(Box::new(parse())));
            return;
        };
        let (done, outcome) = mpsc::sync_channel(1);
        pool.spawn(move || {
            // A panic is carried back and resumed on the decoder's thread, as if it had parsed
            // the segment itself; the receiver may be gone if the decoder was dropped.
            let _ = done.send(catch_unwind(AssertUnwindSafe(parse)));
        });
        self.in_flight.push_back(InFlight::Running(outcome));
    }

    /// The oldest segment submitted, once it is parsed: waiting for it if `wait`, else `None`
    /// while it is still being parsed. `None` when nothing is in flight.
    pub(crate) fn next(&mut self, wait: bool) -> Option<ParsedSegment> {
        let outcome = match self.in_flight.front()? {
            InFlight::Done(_) => None,
            InFlight::Running(outcome) if wait => Some(outcome.recv().map_err(|_| ())),
            InFlight::Running(outcome) => match outcome.try_recv() {
                Ok(parsed) => Some(Ok(parsed)),
                Err(TryRecvError::Empty) => return None,
                Err(TryRecvError::Disconnected) => Some(Err(())),
            },
        };
        let front = self.in_flight.pop_front()?;
        let parsed = match (front, outcome) {
            (InFlight::Done(parsed), _) => *parsed,
            (_, Some(Ok(Ok(parsed)))) => parsed,
            (_, Some(Ok(Err(panic)))) => resume_unwind(panic),
            (_, _) => panic!("a parse worker dropped its segment without an answer"),
        };
        Some(parsed)
    }
}
