//! The loop's clock: the real monotonic clock, or a manual one for tests.
//!
//! A manual clock is a count of nanoseconds since the loop's epoch (the
//! scale timer deadlines already use). It moves only by
//! [`EventLoop::advance`](crate::EventLoop::advance), or, when a pass finds
//! nothing runnable and the next thing due is a timer, by jumping straight
//! to that timer's deadline instead of sleeping: an hour of timeouts and
//! retries runs in milliseconds. Nothing else changes: the loop caches the
//! time at the start of each pass and orders timers exactly as with the
//! real clock, so tests keep the same ordering guarantees.
//!
//! IO still works beside it: before a jump, the loop polls without
//! blocking and runs what is ready, and it never jumps while a pool job
//! is pending (its completion is on its way). It does jump while watchers
//! or [`LoopHandle`](crate::LoopHandle)s wait, since nothing says when they
//! would fire: a test racing real IO against virtual timers should use
//! `advance` and `run_nowait` instead of `run`.

use std::time::{Duration, Instant};

/// Which clock a loop reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Clock {
    /// `Instant::now()`.
    Real,
    /// Nanoseconds since the loop's epoch.
    Manual(u64),
}

impl Clock {
    /// The current time on this clock.
    #[inline]
    pub(crate) fn now(self, epoch: Instant) -> Instant {
        match self {
            Clock::Real => Instant::now(),
            // Past what `Instant` holds (never, in practice): the epoch's
            // far future stands in; deadlines of "never" are not jumped to.
            Clock::Manual(ns) => epoch.checked_add(Duration::from_nanos(ns)).unwrap_or(epoch),
        }
    }
}
