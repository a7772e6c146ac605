//! Seeing into the loop: why it is alive, what is slow, a timeline, metrics,
//! and a virtual clock for tests.
//!
//! The three complaints users of libuv, Node and asyncio repeat most are "my
//! program does not exit and I cannot see why", "something blocks the loop"
//! and "timer code is slow to test". This module answers them in the
//! library, cheaply enough to leave on:
//!
//! - every callback remembers where it was created (a `&'static
//!   Location`, from `#[track_caller]` on the calls that take a callback),
//!   so [`EventLoop::alive_report`](crate::EventLoop::alive_report) can name
//!   each thing that keeps the loop alive ([`AliveReport`]), and a slow
//!   callback's warning can name its origin;
//! - counters and a lag histogram, always on, read as one plain struct
//!   ([`LoopMetrics`]);
//! - an opt-in recorder of passes and callbacks in Chrome's trace-event
//!   format ([`EventLoop::start_trace`](crate::EventLoop::start_trace));
//! - a manual clock ([`EventLoop::with_manual_clock`](crate::EventLoop::with_manual_clock)).
//!
//! # The manual clock and IO
//!
//! Under a manual clock the loop never sleeps for a timer: when a pass finds
//! nothing runnable, it polls without blocking, runs what is ready, and only
//! then jumps to the next deadline. It never jumps while a pool job is
//! pending (its completion is on its way). It does jump while watchers or
//! handles wait, since nothing says when they would fire: a test that races
//! real IO against virtual timers should use `advance` and `run_nowait`.
//!
//! What it costs: a site is 8 bytes beside each queued `call_soon` callback,
//! watcher, pool job and [`LoopHandle`](crate::LoopHandle). A timer keeps
//! only a 16-bit index into a per-loop table of distinct sites,
//! in what used to be padding, so the timer entry stays at 48 bytes. With
//! the timeline off and no slow-callback warning possible (no logger at
//! `warn`), the loop pays one branch per callback.

pub(crate) mod alive;
pub(crate) mod clock;
pub(crate) mod metrics;
pub(crate) mod trace;

use std::panic::Location;
use std::time::{Duration, Instant};

pub use alive::{AliveItem, AliveKind, AliveReport};
pub use metrics::LoopMetrics;

/// Where a callback (or a timer, a watcher, a handle) was created.
pub(crate) type Site = &'static Location<'static>;

/// The site of code inside evloop that has no caller to name.
#[track_caller]
pub(crate) fn here() -> Site {
    Location::caller()
}

/// The kinds of callback the loop runs, as metrics and the timeline name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallbackKind {
    Timer,
    Ready,
    Io,
    Posted,
}

impl CallbackKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            CallbackKind::Timer => "timer",
            CallbackKind::Ready => "call_soon",
            CallbackKind::Io => "io",
            CallbackKind::Posted => "posted",
        }
    }
}

/// The slow-callback threshold by default: asyncio's debug-mode default.
pub const DEFAULT_SLOW_CALLBACK: Duration = Duration::from_millis(100);

/// The loop's diagnostic state.
pub(crate) struct Diag {
    /// Callbacks that run at least this long are logged (warn).
    pub(crate) slow: Option<Duration>,
    /// The timeline recorder, when on.
    pub(crate) recorder: Option<Box<trace::Recorder>>,
    pub(crate) metrics: metrics::Counters,
    /// Decided once per pass: time each callback (timeline on, or slow
    /// warnings possible). The one branch per callback.
    pub(crate) observe: bool,
}

impl Default for Diag {
    fn default() -> Diag {
        Diag {
            slow: Some(DEFAULT_SLOW_CALLBACK),
            recorder: None,
            metrics: metrics::Counters::default(),
            observe: false,
        }
    }
}

impl Diag {
    /// Decides whether callbacks of this pass are timed.
    #[inline]
    pub(crate) fn decide(&mut self) {
        self.observe = self.recorder.is_some()
            || (self.slow.is_some() && log::max_level() >= log::LevelFilter::Warn);
    }

    /// After a timed callback: the slow warning and the timeline event.
    pub(crate) fn callback_done(
        &mut self,
        kind: CallbackKind,
        site: Option<Site>,
        started: Instant,
        pass: u64,
    ) {
        let took = started.elapsed();
        if let Some(slow) = self.slow {
            if took >= slow {
                match site {
                    Some(site) => log::warn!(
                        "evloop: slow callback: {} callback created at {site} took {took:?} (pass {pass}); the loop could not poll meanwhile",
                        kind.name()
                    ),
                    None => log::warn!(
                        "evloop: slow callback: {} callback (site unknown) took {took:?} (pass {pass}); the loop could not poll meanwhile",
                        kind.name()
                    ),
                }
            }
        }
        if let Some(rec) = &mut self.recorder {
            rec.callback(kind, site, started, took);
        }
    }
}
