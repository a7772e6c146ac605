//! [`EventLoop`]: the iteration, the run modes and liveness.
//!
//! One iteration ("pass") does, in this order:
//!
//! 1. **time**: cache the clock (`now()`), as libuv does; with no timer
//!    pending, the clock is read when the time is first asked for instead
//!    (nothing could be due, and a pass that never looks costs no read);
//! 2. **timers**: run every timer due at that time that was armed before the
//!    pass began, in deadline order (ties in the order they were set);
//! 3. **ready**: run the `call_soon` callbacks that were queued when this
//!    phase began (a snapshot: what they queue waits for the next pass);
//! 4. if `stop()` was called, the pass ends here;
//! 5. **poll**: wait for IO. The wait is zero when anything is runnable, until
//!    the next timer otherwise, forever when only IO or other threads can wake
//!    the loop. In `run` and `run_once` the poller is not called at all when
//!    it would not block and no watcher exists (it costs about five syscalls
//!    on Linux); posts from other threads are then found through an atomic
//!    flag;
//! 6. **io**: run the callbacks of ready watchers;
//! 7. **posts**: run what other threads posted through a [`LoopHandle`];
//! 8. in `run_once` only, after a wait that could block: time and timers
//!    again, so a single blocking call runs the timer it waited for.
//!
//! In `run`, while the ready queue is all the work there is (no timer,
//! watcher, post, stop or timeline), steps 2 and 4-7 would do nothing: the
//! next passes then run right after step 3 ("light passes"), still one per
//! batch of callbacks, counted and in the same order.
//!
//! Diagnostics ([`crate::diag`]) ride along: the pass decides once whether
//! callbacks are timed (timeline on, or a slow-callback warning possible),
//! and each callback then costs one branch on that decision (ready callbacks
//! not even that: their phase has an untimed copy). A callback that turns
//! timing on or off (a slow threshold, the timeline) does so from the next
//! pass. Under a manual clock, step 5 never sleeps for a timer: when nothing
//! was runnable the clock jumps to the next deadline instead.
//!
//! Every callback runs on a fresh stack owned by the loop, never inside the
//! call that scheduled it. Each is removed from its queue before it runs, so a
//! panic unwinds out of `run()` with the loop consistent and the rest queued.

use std::any::Any;
use std::cell::Cell;
use std::io;
use std::panic::{self, AssertUnwindSafe, Location};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::diag::clock::Clock;
use crate::diag::trace::Recorder;
use crate::diag::{AliveItem, AliveKind, AliveReport, CallbackKind, Diag, LoopMetrics, Site};
use crate::handle::{LoopHandle, Post, Remote};
use crate::io::Watchers;
use crate::panic::{catch, PanicPolicy};
use crate::pool::Pool;
use crate::task::{Cancellable, ReadyQueue, SoonId};
use crate::timer::{Call, Refused, TimerId, TimerQueue};

/// Set once a loop took the `EVLOOP_TRACE` file: only the first loop made
/// in a process records to it.
static TRACE_ENV_TAKEN: AtomicBool = AtomicBool::new(false);

/// How much of the loop one `run_mode` call runs (libuv's `uv_run_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunMode {
    /// Until nothing is left, or `stop()`: [`EventLoop::run`].
    Default,
    /// One pass, blocking if nothing is runnable: [`EventLoop::run_once`].
    Once,
    /// One pass that never blocks: [`EventLoop::run_nowait`].
    NoWait,
}

/// A single-threaded, callback-based event loop.
///
/// See the [crate docs](crate) for the model, the order of a pass and the
/// liveness rule. An `EventLoop` is `!Send`: it stays on the thread that made
/// it; other threads reach it through [`EventLoop::handle`].
pub struct EventLoop {
    /// Shared with other threads only through
    /// [`share_remote`](EventLoop::share_remote).
    pub(crate) remote: Arc<Remote>,
    /// Set once `remote` was shared (a handle, a pool job): only then can
    /// posts arrive, so only then does a light pass look for them.
    remote_shared: Cell<bool>,
    ready: ReadyQueue,
    cancellable: Cancellable,
    /// Trampolines in `ready` whose callback was cancelled: they run as
    /// no-ops, and must not count as work (liveness, backend timeout).
    cancelled_in_ready: usize,
    posted: ReadyQueue,
    post_buf: Vec<Post>,
    timers: TimerQueue,
    pub(crate) io: Watchers,
    pub(crate) pool: Pool,
    epoch: Instant,
    /// The loop time, and the same in ns since `epoch` (the timers' scale),
    /// as read in pass `now_pass`: at its start, or on first use in it (see
    /// [`EventLoop::now`]). Keyed by pass, so a pass need not touch them.
    now: Cell<Instant>,
    now_ns: Cell<u64>,
    now_pass: Cell<u64>,
    running: bool,
    stop_requested: bool,
    /// Set by what a light pass does not look at (`stop()`, a diagnostics
    /// setting): the next pass must be a full one. Timers and watchers are
    /// looked at directly (see [`EventLoop::run_ready`]).
    full_pass_due: bool,
    pub(crate) panics: PanicPolicy,
    iterations: u64,
    /// Per-loop state of layers built on the loop, one value per type.
    layers: Vec<Box<dyn Any>>,
    /// Metrics, slow-callback threshold, timeline.
    pub(crate) diag: Diag,
    clock: Clock,
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("iterations", &self.iterations)
            .field("ready", &self.ready.len())
            .field("timers", &self.timers.len())
            .field("watchers", &self.io.len())
            .field("pending_jobs", &self.pool.keeping_alive())
            .field("running", &self.running)
            .finish_non_exhaustive()
    }
}

impl EventLoop {
    /// Creates a loop with its own OS poller.
    ///
    /// If the environment variable `EVLOOP_TRACE` names a file, the first
    /// loop made in the process records its timeline there (see
    /// [`start_trace`](EventLoop::start_trace)); a file that cannot be
    /// created is logged (warn) and the loop runs without a timeline.
    pub fn new() -> io::Result<EventLoop> {
        let mut ev = EventLoop::with_clock(Clock::Real)?;
        if let Some(path) = std::env::var_os("EVLOOP_TRACE").filter(|p| !p.is_empty()) {
            if !TRACE_ENV_TAKEN.swap(true, Ordering::Relaxed) {
                if let Err(e) = ev.start_trace(&path) {
                    log::warn!("evloop: EVLOOP_TRACE={}: {e}", path.to_string_lossy());
                }
            }
        }
        Ok(ev)
    }

    /// Creates a loop whose clock moves only when told to: by
    /// [`advance`](EventLoop::advance), or, when a pass finds nothing
    /// runnable and no pool job pending, by jumping to the next timer's
    /// deadline instead of sleeping. An hour of timeouts runs in
    /// milliseconds, in the same order as on the real clock (the same code
    /// runs them; only the time source differs). IO, posts and the pool work
    /// as usual beside it. The clock starts at the loop's creation time.
    ///
    /// `run_nowait` never jumps: with it and `advance`, a test moves time by
    /// hand. See [`crate::diag`] for IO racing virtual timers.
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut ev = evloop::EventLoop::with_manual_clock()?;
    /// let start = ev.now();
    /// ev.set_timeout(Duration::from_secs(3600), |ev| println!("an hour later"));
    /// let real = std::time::Instant::now();
    /// ev.run()?; // jumps to the timer
    /// assert_eq!(ev.now() - start, Duration::from_secs(3600));
    /// assert!(real.elapsed() < Duration::from_secs(60));
    /// # std::io::Result::Ok(())
    /// ```
    pub fn with_manual_clock() -> io::Result<EventLoop> {
        EventLoop::with_clock(Clock::Manual(0))
    }

    fn with_clock(clock: Clock) -> io::Result<EventLoop> {
        let now = Instant::now();
        log::debug!("evloop: new loop");
        let mut ev = EventLoop {
            remote: Arc::new(Remote::new()?),
            remote_shared: Cell::new(false),
            ready: ReadyQueue::default(),
            cancellable: Cancellable::default(),
            cancelled_in_ready: 0,
            posted: ReadyQueue::default(),
            post_buf: Vec::new(),
            timers: TimerQueue::new(),
            io: Watchers::new(),
            pool: Pool::new(),
            epoch: now,
            now: Cell::new(now),
            now_ns: Cell::new(0),
            now_pass: Cell::new(0),
            running: false,
            stop_requested: false,
            full_pass_due: false,
            panics: PanicPolicy::default(),
            iterations: 0,
            layers: Vec::new(),
            diag: Diag::default(),
            clock,
        };
        ev.decide_observe();
        Ok(ev)
    }

    /// Queues `f` to run on a later pass, after every callback queued before it.
    ///
    /// Like every call that takes a callback, it records the caller's source
    /// location as the callback's creation site (for the
    /// [alive report](EventLoop::alive_report), the slow-callback warning and
    /// the timeline).
    #[track_caller]
    #[inline]
    pub fn call_soon(&mut self, f: impl FnOnce(&mut EventLoop) + 'static) {
        self.ready.push(Box::new(f), Location::caller());
    }

    /// `call_soon` with an explicit creation site.
    pub(crate) fn call_soon_at(&mut self, f: impl FnOnce(&mut EventLoop) + 'static, site: Site) {
        self.ready.push(Box::new(f), site);
    }

    /// Runs `f` once, `delay` after the loop time [`now()`](EventLoop::now).
    ///
    /// The timer never runs before `now() + delay`; timers with equal
    /// deadlines run in the order they were set. Any delay is accepted: huge
    /// ones (even `Duration::MAX`) saturate to "practically never".
    #[track_caller]
    pub fn set_timeout(
        &mut self,
        delay: Duration,
        f: impl FnOnce(&mut EventLoop) + 'static,
    ) -> TimerId {
        let deadline = self.deadline_after(delay);
        let id = self
            .timers
            .insert_once(deadline, duration_ns(delay), f, Location::caller());
        log::debug!("evloop: timeout {id:?} in {delay:?}");
        id
    }

    /// Runs `f` every `period`, first at `now() + period`, until cleared.
    ///
    /// After each call the interval re-arms from the loop time at which that
    /// call started, so a slow callback or a stalled loop delays the next call
    /// rather than running it twice in one pass. A zero period runs once per
    /// pass.
    #[track_caller]
    pub fn set_interval(
        &mut self,
        period: Duration,
        f: impl FnMut(&mut EventLoop) + 'static,
    ) -> TimerId {
        let deadline = self.deadline_after(period);
        let id = self
            .timers
            .insert_interval(deadline, duration_ns(period), f, Location::caller());
        log::debug!("evloop: interval {id:?} every {period:?}");
        id
    }

    /// Cancels a timer. Returns true if it was pending (an interval counts as
    /// pending until cleared, even inside its own callback). Takes effect at
    /// once: a cleared timer never runs again, even if it was already due.
    #[inline]
    pub fn clear_timer(&mut self, id: TimerId) -> bool {
        let hit = self.timers.cancel(id);
        log::debug!(
            "evloop: clear {id:?}: {}",
            if hit { "cleared" } else { "not pending" }
        );
        hit
    }

    /// Sets whether a timer keeps the loop alive (Node's `ref()`/`unref()`).
    ///
    /// # Errors
    /// `NotFound` if the timer is not pending (a stale id).
    pub fn set_timer_ref(&mut self, id: TimerId, keep_alive: bool) -> io::Result<()> {
        if self.timers.set_ref(id, keep_alive) {
            Ok(())
        } else {
            Err(refused(id, Refused::NotPending))
        }
    }

    /// `Some(true)` if the timer is pending and keeps the loop alive,
    /// `Some(false)` if pending but unref'd, `None` if not pending.
    pub fn timer_has_ref(&self, id: TimerId) -> Option<bool> {
        self.timers.has_ref(id)
    }

    /// Number of timers that exist (pending, or an interval being called).
    pub fn pending_timers(&self) -> usize {
        self.timers.len()
    }

    /// Restarts a pending timer: it becomes due one delay (for an interval,
    /// one period) after [`now()`](EventLoop::now), keeping its id, its
    /// closure and its ref state, and it orders among equal deadlines as if
    /// set now. This is libuv's `uv_timer_again` and Node's
    /// `timeout.refresh()`, the usual way to implement an idle timeout:
    /// refresh on every read, and the callback runs only after a quiet delay.
    /// O(log n); the timer's old place in the queue is dropped lazily.
    ///
    /// Inside an interval's own callback this does nothing: the interval is
    /// re-armed one period after that call started anyway.
    ///
    /// # Errors
    /// `NotFound` if the timer is not pending: it was cleared, or it is a
    /// one-shot timer that ran or is running (its closure was consumed).
    pub fn refresh_timer(&mut self, id: TimerId) -> io::Result<()> {
        let now = self.now_ns();
        self.timers.refresh(id, now).map_err(|r| refused(id, r))
    }

    /// The period of an interval.
    ///
    /// # Errors
    /// `NotFound` if the timer is not pending; `InvalidInput` if it is a
    /// one-shot timer.
    pub fn timer_period(&self, id: TimerId) -> io::Result<Duration> {
        self.timers
            .period(id)
            .map(Duration::from_nanos)
            .map_err(|r| refused(id, r))
    }

    /// Changes the period of an interval (libuv's `uv_timer_set_repeat`).
    /// The call already queued keeps its deadline; the new period counts
    /// from the next re-arm on, also when set from the interval's own
    /// callback. Combine with [`refresh_timer`](EventLoop::refresh_timer) to
    /// apply it at once.
    ///
    /// # Errors
    /// `NotFound` if the timer is not pending; `InvalidInput` if it is a
    /// one-shot timer (its closure can run only once).
    pub fn set_timer_period(&mut self, id: TimerId, period: Duration) -> io::Result<()> {
        self.timers
            .set_period(id, duration_ns(period))
            .map_err(|r| refused(id, r))
    }

    /// How long after [`now()`](EventLoop::now) a pending timer is due
    /// (libuv's `uv_timer_get_due_in`): zero if it is overdue, `None` if it is
    /// not pending. For an interval inside its own callback, its period (it
    /// re-arms from the time that call started).
    pub fn timer_due_in(&self, id: TimerId) -> Option<Duration> {
        let now = self.now_ns();
        match self.timers.deadline(id) {
            Ok(Some(deadline)) => Some(Duration::from_nanos(deadline.saturating_sub(now))),
            Ok(None) => self.timers.period(id).ok().map(Duration::from_nanos),
            Err(_) => None,
        }
    }

    /// Like [`call_soon`](EventLoop::call_soon), and returns an id with which
    /// [`cancel_soon`](EventLoop::cancel_soon) takes the callback back before
    /// it runs (Node's `setImmediate`/`clearImmediate`). It runs in the same
    /// place in the queue as a `call_soon` made at this point would.
    #[track_caller]
    pub fn call_soon_cancellable(&mut self, f: impl FnOnce(&mut EventLoop) + 'static) -> SoonId {
        let id = self.cancellable.insert(Box::new(f));
        self.ready.push(
            Box::new(move |ev: &mut EventLoop| match ev.cancellable.take(id) {
                Some(task) => task(ev),
                None => ev.cancelled_in_ready -= 1, // cancelled: nothing to run
            }),
            Location::caller(),
        );
        id
    }

    /// Takes back a callback queued with
    /// [`call_soon_cancellable`](EventLoop::call_soon_cancellable): it will
    /// not run, and it is dropped now. True if it was still queued; false if
    /// it already ran (or is running), was cancelled, or the id is stale.
    pub fn cancel_soon(&mut self, id: SoonId) -> bool {
        let task = self.cancellable.take(id);
        let hit = task.is_some();
        if hit {
            self.cancelled_in_ready += 1;
        }
        drop(task); // its drop may call back into the loop: after the take
        hit
    }

    /// Runs the loop until nothing is left that could produce a callback, or
    /// until [`stop()`](EventLoop::stop).
    ///
    /// # Errors
    /// `ResourceBusy` if called from inside one of the loop's own callbacks
    /// (guarantee 12); the OS error if the poller fails.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::time::Duration;
    /// let mut ev = evloop::EventLoop::new()?;
    /// ev.set_timeout(Duration::from_millis(1), |_| println!("done"));
    /// ev.run()?; // returns once the timer ran: nothing is left
    /// # Ok(())
    /// # }
    /// ```
    pub fn run(&mut self) -> io::Result<()> {
        self.run_mode(RunMode::Default).map(drop)
    }

    /// Runs one pass, blocking for IO or timers if nothing is runnable.
    /// Returns whether the loop is still alive. Errors as [`run`](EventLoop::run).
    pub fn run_once(&mut self) -> io::Result<bool> {
        self.run_mode(RunMode::Once)
    }

    /// Runs one pass without ever blocking. Returns whether the loop is still
    /// alive. Errors as [`run`](EventLoop::run).
    pub fn run_nowait(&mut self) -> io::Result<bool> {
        self.run_mode(RunMode::NoWait)
    }

    /// Runs the loop in `mode` (libuv's `uv_run`); returns whether it is
    /// still alive. Errors as [`run`](EventLoop::run).
    pub fn run_mode(&mut self, mode: RunMode) -> io::Result<bool> {
        self.enter(|ev| {
            match mode {
                RunMode::Default => {
                    while ev.is_alive() {
                        ev.iterate(mode)?;
                        if ev.stop_requested {
                            break;
                        }
                    }
                }
                RunMode::Once | RunMode::NoWait => ev.iterate(mode)?,
            }
            Ok(ev.is_alive())
        })
    }

    /// Makes the current `run()` return at the end of this pass, before it
    /// polls again. Nothing queued is dropped; a later `run()` resumes. If the
    /// loop is not running, the next `run()` does one pass and returns (as
    /// asyncio's `stop()`).
    pub fn stop(&mut self) {
        self.stop_requested = true;
        self.full_pass_due = true;
    }

    /// The loop time: the clock as cached at the start of the current pass.
    ///
    /// It stays the same for the whole pass (until
    /// [`update_time`](EventLoop::update_time)). A pass that begins with no
    /// timer pending reads the clock when the time is first asked for
    /// instead, so a pass that never looks at the time costs no clock read;
    /// the time is then a little later than the pass's start, which only
    /// makes timers set in that pass due a little later, never earlier.
    pub fn now(&self) -> Instant {
        if self.now_pass.get() != self.iterations {
            self.read_clock();
        }
        self.now.get()
    }

    /// Refreshes the cached loop time from the clock.
    pub fn update_time(&mut self) {
        self.read_clock();
    }

    fn read_clock(&self) {
        let now = self.clock.now(self.epoch);
        self.now.set(now);
        self.now_ns
            .set(duration_ns(now.saturating_duration_since(self.epoch)));
        self.now_pass.set(self.iterations);
    }

    /// The start of a pass: the clock is read now if a timer may be due,
    /// else on first use.
    fn pass_time(&mut self) {
        if self.timers.len() > 0 {
            self.read_clock();
        }
    }

    /// True if anything could still produce a callback: a queued callback, a
    /// timer, an active watcher, a pool job, or a [`LoopHandle`] (each unless
    /// unref'd).
    pub fn is_alive(&self) -> bool {
        self.has_ready()
            || !self.posted.is_empty()
            || self.timers.keeping_alive() > 0
            || self.io.keeping_alive() > 0
            || self.pool.keeping_alive() > 0
            || self.remote.keeping_alive() > 0
            || self.remote.has_posts()
    }

    /// True if the ready queue holds a callback that will run (not only the
    /// no-op places of cancelled ones).
    fn has_ready(&self) -> bool {
        self.ready.len() > self.cancelled_in_ready
    }

    /// A `Send + Sync` handle for posting work from other threads. It keeps
    /// the loop alive until dropped or unref'd. The alive report names the
    /// place this was called (or a clone made).
    #[track_caller]
    pub fn handle(&self) -> LoopHandle {
        LoopHandle::new(self.share_remote().clone())
    }

    /// The shared part of the loop, for something that posts to it from
    /// another thread (to clone or downgrade). Every sharing goes through
    /// here, so that light passes know posts can arrive.
    pub(crate) fn share_remote(&self) -> &Arc<Remote> {
        self.remote_shared.set(true);
        &self.remote
    }

    /// Per-loop state of type `T` for code built on the loop (the C API keeps
    /// its id tables here); made with `T::default()` on first use, dropped
    /// with the loop after every pending callback was dropped.
    pub fn layer_state<T: Default + 'static>(&mut self) -> &mut T {
        let pos = match self.layers.iter().position(|l| l.is::<T>()) {
            Some(pos) => pos,
            None => {
                self.layers.push(Box::new(T::default()));
                self.layers.len() - 1
            }
        };
        self.layers[pos].downcast_mut::<T>().expect("found by type")
    }

    /// Number of passes run so far (for tests and diagnostics).
    pub fn iterations(&self) -> u64 {
        self.iterations
    }

    /// True while `run`, `run_once` or `run_nowait` is on the stack.
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// How long the loop would block if it polled now: `Some(ZERO)` if
    /// something is runnable or nothing is alive, `None` if only IO or another
    /// thread can wake it, else the time to the next timer.
    pub fn backend_timeout(&self) -> Option<Duration> {
        if self.stop_requested
            || self.has_ready()
            || !self.posted.is_empty()
            || self.remote.has_posts()
            || !self.is_alive()
        {
            return Some(Duration::ZERO);
        }
        self.timers.next_deadline().map(|deadline| {
            let clock = duration_ns(
                self.clock
                    .now(self.epoch)
                    .saturating_duration_since(self.epoch),
            );
            Duration::from_nanos(deadline.saturating_sub(clock))
        })
    }

    /// The poller's file descriptor, readable when the loop has IO or posts
    /// to process; lets another main loop drive this one with `run_nowait`.
    pub fn backend_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.remote.poller.as_raw_fd()
    }

    /// The loop time as nanoseconds since the loop was made (timer deadlines
    /// use this scale); computed once per pass, and only if timers need it.
    #[inline]
    fn now_ns(&self) -> u64 {
        if self.now_pass.get() != self.iterations {
            self.read_clock();
        }
        self.now_ns.get()
    }

    #[inline]
    fn deadline_after(&mut self, delay: Duration) -> u64 {
        self.now_ns().saturating_add(duration_ns(delay))
    }

    /// Guards against re-entry, and restores `running` however `body` ends.
    fn enter<T>(&mut self, body: impl FnOnce(&mut Self) -> io::Result<T>) -> io::Result<T> {
        if self.running {
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                "evloop: the loop is already running (run called from one of its callbacks)",
            ));
        }
        self.running = true;
        let result = panic::catch_unwind(AssertUnwindSafe(|| body(self)));
        self.running = false;
        self.stop_requested = false;
        if self.full_pass_due {
            // A diagnostics setting changed by the last pass's callbacks:
            // decided now, not at the next run's first pass, so that what
            // is queued meanwhile keeps its site.
            self.decide_observe();
        }
        match result {
            Ok(r) => r,
            Err(payload) => panic::resume_unwind(payload),
        }
    }

    fn iterate(&mut self, mode: RunMode) -> io::Result<()> {
        self.iterations += 1;
        self.pass_time();
        self.decide_observe();
        self.full_pass_due = false; // this is one
        let pass_started = self.diag.recorder.is_some().then(Instant::now);
        log::trace!(
            "evloop: pass {} ready={} timers={} watchers={}",
            self.iterations,
            self.ready.len(),
            self.timers.len(),
            self.io.len()
        );
        self.run_timers();
        self.run_ready(mode);
        if self.stop_requested {
            self.pass_done(pass_started);
            return Ok(());
        }
        self.timers.purge_stale_top(); // an exact next deadline for the timeout
        let mut timeout = match mode {
            RunMode::NoWait => Some(Duration::ZERO),
            RunMode::Default | RunMode::Once => self.backend_timeout(),
        };
        // A manual clock never sleeps for a timer: it polls without
        // blocking, and jumps if that found nothing to do. A pending pool
        // job's completion is on its way: wait for it instead.
        let mut jump_to = None;
        if matches!(self.clock, Clock::Manual(_)) && timeout.is_some_and(|t| !t.is_zero()) {
            if self.pool.keeping_alive() > 0 {
                timeout = None;
            } else {
                jump_to = self.timers.next_deadline().filter(|&d| d != u64::MAX);
                timeout = jump_to.map(|_| Duration::ZERO);
            }
        }
        let blocked = timeout != Some(Duration::ZERO) || jump_to.is_some();
        let mut fired = 0;
        // Skip the poller when it could not block and nothing is watched:
        // posts are found through their flag. run_nowait always polls, so
        // that an embedding loop sees the backend fd drained.
        if blocked || mode == RunMode::NoWait || self.io.registered() > 0 {
            log::trace!("evloop: poll, timeout {timeout:?}");
            let idle_from = (timeout != Some(Duration::ZERO)).then(Instant::now);
            fired = self.poll_io(timeout)?;
            if let Some(from) = idle_from {
                let idle = from.elapsed();
                self.diag.metrics.idle_ns += duration_ns(idle);
                if let Some(rec) = &mut self.diag.recorder {
                    rec.poll(from, idle);
                }
            }
            if fired > 0 {
                self.dispatch_io();
            }
        }
        let posted = self.run_posts();
        if let (Some(deadline), Clock::Manual(at)) = (jump_to, self.clock) {
            if fired == 0 && posted == 0 && self.ready.is_empty() {
                log::trace!("evloop: manual clock jumps to the next timer");
                self.clock = Clock::Manual(at.max(deadline));
            }
        }
        if mode == RunMode::Once && blocked {
            self.update_time();
            self.run_timers();
        }
        self.pass_done(pass_started);
        Ok(())
    }

    /// Ends a pass: its timeline event, if recording.
    fn pass_done(&mut self, started: Option<Instant>) {
        if let (Some(started), Some(rec)) = (started, &mut self.diag.recorder) {
            rec.pass(self.iterations, started, started.elapsed());
        }
    }

    /// Runs one callback, timed if this pass observes callbacks (the one
    /// branch per callback that diagnostics cost when off).
    #[inline]
    fn run_callback(&mut self, kind: CallbackKind, site: Option<Site>, f: impl FnOnce(&mut Self)) {
        if self.diag.observe {
            let started = Instant::now();
            f(self);
            let pass = self.iterations;
            self.diag.callback_done(kind, site, started, pass);
        } else {
            f(self);
        }
    }

    fn run_timers(&mut self) {
        if self.timers.len() == 0 {
            return;
        }
        let now = self.now_ns();
        self.timers.begin_phase();
        while let Some(fired) = self.timers.pop_due(now) {
            self.diag
                .metrics
                .timer_ran(now.saturating_sub(fired.deadline));
            let site = fired.site;
            match fired.call {
                Call::Once(f) => {
                    log::trace!("evloop: run timeout");
                    let result = catch(|| {
                        self.run_callback(CallbackKind::Timer, site, |ev| f.call_once(ev))
                    });
                    if let Err(p) = result {
                        self.panicked(p);
                    }
                }
                Call::Every(id, mut interval) => {
                    log::trace!("evloop: run interval {id:?}");
                    let started = self.now_ns();
                    let result = catch(|| {
                        self.run_callback(CallbackKind::Timer, site, |ev| {
                            interval.call_interval(ev)
                        })
                    });
                    // Handed back if the interval was cleared while it ran.
                    let cleared = self.timers.rearm(id, interval, started);
                    self.after_callback(result, cleared);
                }
            }
        }
        self.timers.release_memory();
    }

    /// Runs the ready callbacks queued when it began. In `run`, while the
    /// ready queue is all the work there is, it goes on with the next
    /// passes here ("light passes", see the module docs).
    ///
    /// This is the loop's hottest path: a chain of `call_soon` costs a few
    /// nanoseconds per link, so what a light pass checks is kept to a few
    /// loads. Whether light passes may follow was decided in full when this
    /// phase began ([`EventLoop::light_passes_allowed`]); after that, each
    /// light pass looks only at what a callback can change: timers,
    /// watchers, the `full_pass_due` flag that `stop()` and the diagnostics
    /// settings set, and posts, but only once the loop was shared (nothing
    /// else can post). Only step 7 fills `posted`, so it stays empty. The
    /// logger's level, a global with no order to keep, is looked at every
    /// 64 light passes. Whether callbacks are timed is fixed for the phase
    /// (a callback that turns it on or off does so from the next full
    /// pass), so the untimed copy pops a callback and calls it, nothing
    /// more. Each of these cuts was measured on W1 (benches/workloads.rs);
    /// what is left of the gap to a bare `VecDeque` chain is the pass
    /// itself: counting it, noticing its end, and these checks.
    fn run_ready(&mut self, mode: RunMode) {
        let light = mode == RunMode::Default && self.light_passes_allowed();
        // One copy of the loop each, so that the untimed one keeps all it
        // needs in registers.
        if self.diag.observe || self.ready.tracks_sites() {
            self.run_ready_passes::<true>(light);
        } else {
            self.run_ready_passes::<false>(light);
        }
    }

    /// [`run_ready`](EventLoop::run_ready) with callbacks timed or not.
    fn run_ready_passes<const TIMED: bool>(&mut self, light: bool) {
        let mut left = self.ready.len();
        // Counted by the batch, not one by one; a panic takes back the
        // ones that did not run.
        self.diag.metrics.ready_callbacks += left as u64;
        loop {
            let result = catch(|| {
                // Only the loop changes the pass count: kept in a register.
                let mut pass = self.iterations;
                loop {
                    if TIMED {
                        while left > 0 {
                            left -= 1;
                            let Some((task, site)) = self.ready.pop() else {
                                break;
                            };
                            self.run_callback(CallbackKind::Ready, site, task);
                        }
                    } else {
                        while left > 0 {
                            left -= 1;
                            let Some(task) = self.ready.pop_untracked() else {
                                break;
                            };
                            task(self);
                        }
                    }
                    if !light || !self.light_pass_may_begin() {
                        return;
                    }
                    // A light pass. The loop time is read on first use, as
                    // in a pass without timers.
                    if (pass + 1) % 64 == 0 && self.light_pass_checkpoint() {
                        return;
                    }
                    pass += 1;
                    self.iterations = pass;
                    left = self.ready.len();
                    self.diag.metrics.ready_callbacks += left as u64;
                }
            });
            match result {
                Ok(()) => return,
                Err(p) => {
                    self.diag.metrics.ready_callbacks -= left as u64;
                    self.panicked(p);
                    self.diag.metrics.ready_callbacks += left as u64;
                }
            }
        }
    }

    /// True if, for all this phase can tell, passes after it may be light:
    /// while the ready queue is not empty, each would do nothing but run it,
    /// since no timer, watcher, post, stop or diagnostics change could alter
    /// what the pass does (so the timer, poll and post steps are no-ops, and
    /// guarantee 4 holds without them). The timeline records each pass in
    /// full, so it turns this off.
    fn light_passes_allowed(&self) -> bool {
        let other_work = self.timers.len()
            | self.io.registered()
            | self.posted.len()
            | usize::from(self.stop_requested)
            | usize::from(self.full_pass_due)
            | usize::from(self.diag.recorder.is_some());
        other_work == 0 && !self.remote.has_posts()
    }

    /// The per-light-pass part of
    /// [`light_passes_allowed`](EventLoop::light_passes_allowed): what a
    /// callback of the pass can have changed, and a non-empty ready queue.
    #[inline]
    fn light_pass_may_begin(&self) -> bool {
        let other_work = self.timers.len() | self.io.registered() | usize::from(self.full_pass_due);
        other_work == 0
            && !self.ready.is_empty()
            && !(self.remote_shared.get() && self.remote.has_posts())
    }

    /// Every 64 light passes: true if a full pass is due because the
    /// logger's level changed whether callbacks are timed (a global that
    /// changes outside the loop, with no order to keep).
    #[cold]
    fn light_pass_checkpoint(&mut self) -> bool {
        let timed = self.diag.observe;
        self.diag.decide();
        let changed = self.diag.observe != timed;
        self.diag.observe = timed; // the next full pass decides it again
        changed
    }

    /// Runs the posts queued when it began; returns how many.
    fn run_posts(&mut self) -> usize {
        self.remote.take_posts(&mut self.post_buf);
        if !self.post_buf.is_empty() {
            for (post, site) in self.post_buf.drain(..) {
                self.posted.push(post, site);
            }
        }
        let count = self.posted.len();
        let mut left = count;
        while left > 0 {
            let result = catch(|| {
                while left > 0 {
                    left -= 1;
                    let Some((task, site)) = self.posted.pop() else {
                        break;
                    };
                    self.diag.metrics.posted_callbacks += 1;
                    self.run_callback(CallbackKind::Posted, site, task);
                }
            });
            if let Err(p) = result {
                self.panicked(p);
            }
        }
        count
    }
}

/// Diagnostics: the alive report, metrics, slow callbacks, the timeline and
/// the manual clock (see [`crate::diag`]).
impl EventLoop {
    /// Everything that exists in the loop and whether it keeps the loop
    /// alive: queued callbacks (counted), each timer, watcher, pool job and
    /// [`LoopHandle`], with its id, ref state and the source location where
    /// it was created. `Display` prints it as a table; see `examples/why_alive.rs`.
    ///
    /// ```
    /// let mut ev = evloop::EventLoop::new()?;
    /// ev.set_timeout(std::time::Duration::from_secs(60), |_| {});
    /// let report = ev.alive_report();
    /// assert_eq!(report.items.len(), 1);
    /// assert_eq!(report.items[0].site.unwrap().file(), file!());
    /// println!("{report}");
    /// # std::io::Result::Ok(())
    /// ```
    pub fn alive_report(&self) -> AliveReport {
        let now = self.now_ns();
        let mut items = Vec::new();
        for t in self.timers.list() {
            let kind = if t.interval {
                AliveKind::Interval
            } else {
                AliveKind::Timeout
            };
            let detail = match t.deadline {
                None => "running".to_string(),
                Some(u64::MAX) => "due never".to_string(),
                Some(d) if d <= now => "due now".to_string(),
                Some(d) => format!("due in {:?}", Duration::from_nanos(d - now)),
            };
            items.push(AliveItem {
                kind,
                label: kind.label(),
                id: t.id.to_u64().unwrap_or(0),
                keeps_alive: t.keeps_alive,
                site: t.site,
                detail,
            });
        }
        for w in self.io.list() {
            let mut detail = format!("fd {}", w.fd);
            match (w.interest.readable, w.interest.writable) {
                (true, true) => detail.push_str(", readable+writable"),
                (true, false) => detail.push_str(", readable"),
                (false, true) => detail.push_str(", writable"),
                (false, false) => detail.push_str(", paused"),
            }
            if w.parked {
                detail.push_str(", parked (hung up)");
            }
            items.push(AliveItem {
                kind: AliveKind::Watcher,
                label: w.label,
                id: w.id.to_u64().unwrap_or(0),
                keeps_alive: w.keeps_alive,
                site: Some(w.site),
                detail,
            });
        }
        for (id, site) in self.pool.list() {
            items.push(AliveItem {
                kind: AliveKind::PoolJob,
                label: AliveKind::PoolJob.label(),
                id: id.to_u64().unwrap_or(0),
                keeps_alive: true,
                site: Some(site),
                detail: "queued or running".to_string(),
            });
        }
        for h in self.remote.list_handles() {
            items.push(AliveItem {
                kind: AliveKind::Handle,
                label: AliveKind::Handle.label(),
                id: h.number,
                keeps_alive: h.keeps_alive,
                site: Some(h.site),
                detail: String::new(),
            });
        }
        AliveReport {
            queued_callbacks: self.ready.len(),
            posted_callbacks: self.posted.len() + self.remote.posts_waiting(),
            items,
        }
    }

    /// What the loop has done so far: passes, callbacks run by kind, IO
    /// events, time idle in the poller and how late timers ran. Counting is
    /// always on; this call copies it out (and walks a 4 KiB histogram).
    pub fn metrics(&self) -> LoopMetrics {
        self.diag.metrics.snapshot(self.iterations)
    }

    /// Sets how long a callback may run before a warning is logged (through
    /// `log`, at `warn`) naming its kind, creation site and duration; `None`
    /// turns the warning off. The default is 100 ms (asyncio's debug-mode
    /// default). Callbacks are timed only while a logger accepts warnings or
    /// the timeline records. Called from a callback, a change that turns
    /// timing on or off does so from the next pass (until then, callbacks
    /// queued are not given a site); while callbacks are timed, the new
    /// threshold applies to each that ends after the call.
    pub fn set_slow_callback_threshold(&mut self, threshold: Option<Duration>) {
        self.diag.slow = threshold;
        self.diagnostics_changed();
    }

    /// After the slow threshold or the timeline changed: decides at once
    /// whether callbacks are timed if the loop is not running, else at the
    /// start of the next pass (or when `run` returns), so that a pass runs
    /// its ready callbacks either all timed or all not (and the ready queue
    /// keeps sites beside its callbacks, or not, for a whole pass).
    fn diagnostics_changed(&mut self) {
        if self.running {
            self.full_pass_due = true;
        } else {
            self.decide_observe();
        }
    }

    /// Decides whether callbacks are timed from now on (see
    /// [`Diag::decide`]), and keeps queued callbacks' sites exactly while
    /// they are: only a slow-callback warning or the timeline names them.
    #[inline]
    fn decide_observe(&mut self) {
        self.diag.decide();
        if self.diag.observe != self.ready.tracks_sites() {
            self.ready.track_sites(self.diag.observe);
            self.posted.track_sites(self.diag.observe);
        }
    }

    /// The slow-callback threshold (`None`: no warning).
    pub fn slow_callback_threshold(&self) -> Option<Duration> {
        self.diag.slow
    }

    /// Starts recording the loop's timeline to `path`, as a Chrome
    /// trace-event JSON file (open it in Perfetto or `chrome://tracing`):
    /// each pass, each blocking poll, and each callback with its kind and
    /// creation site. The file is complete when the recording stops
    /// ([`stop_trace`](EventLoop::stop_trace), or the loop's drop).
    /// `EVLOOP_TRACE=out.json` starts one for the first loop of a process.
    /// Called from a callback, it records passes from the next one on, and
    /// callbacks from the next pass on unless they were already timed (a
    /// slow-callback warning possible), then from the next that ends.
    ///
    /// # Errors
    /// `AlreadyExists` if a recording is on; the error of creating `path`.
    pub fn start_trace(&mut self, path: impl AsRef<Path>) -> io::Result<()> {
        if let Some(rec) = &self.diag.recorder {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "evloop: the timeline is already being recorded to {}",
                    rec.path().display()
                ),
            ));
        }
        let rec = Recorder::create(path.as_ref())?;
        log::debug!("evloop: recording the timeline to {}", rec.path().display());
        self.diag.recorder = Some(Box::new(rec));
        self.diagnostics_changed();
        Ok(())
    }

    /// Stops the timeline recording and completes its file. `Ok(false)` if
    /// none was on.
    ///
    /// # Errors
    /// The first error writing the file (recording stopped at it).
    pub fn stop_trace(&mut self) -> io::Result<bool> {
        let rec = self.diag.recorder.take();
        self.diagnostics_changed();
        match rec {
            Some(rec) => rec.finish().map(|()| true),
            None => Ok(false),
        }
    }

    /// True while a timeline is being recorded.
    pub fn is_tracing(&self) -> bool {
        self.diag.recorder.is_some()
    }

    /// Moves a manual clock forward by `by` (see
    /// [`with_manual_clock`](EventLoop::with_manual_clock)). The loop time
    /// [`now()`](EventLoop::now) follows at the start of the next pass, or
    /// at [`update_time`](EventLoop::update_time); timers due by then run
    /// in that pass, in deadline order.
    ///
    /// # Errors
    /// `InvalidInput` on a loop with the real clock.
    pub fn advance(&mut self, by: Duration) -> io::Result<()> {
        match self.clock {
            Clock::Manual(ns) => {
                self.clock = Clock::Manual(ns.saturating_add(duration_ns(by)));
                Ok(())
            }
            Clock::Real => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "evloop: advance needs a loop made with EventLoop::with_manual_clock",
            )),
        }
    }

    /// True for a loop made with [`with_manual_clock`](EventLoop::with_manual_clock).
    pub fn has_manual_clock(&self) -> bool {
        matches!(self.clock, Clock::Manual(_))
    }
}

impl Drop for EventLoop {
    fn drop(&mut self) {
        log::debug!("evloop: drop loop");
        if let Err(e) = self.stop_trace() {
            log::warn!("evloop: finishing the timeline: {e}");
        }
        // Refuse new posts first, so a destructor that posts gets `Err(Closed)`.
        let posts = self.remote.close();
        drop(posts);
        self.io.clear(&self.remote.poller);
        // Every other queued closure drops with its field, exactly once.
    }
}

/// `d` in nanoseconds, saturating at `u64::MAX` (584 years). Plain u64
/// arithmetic: this runs every pass.
fn duration_ns(d: Duration) -> u64 {
    d.as_secs()
        .checked_mul(1_000_000_000)
        .and_then(|ns| ns.checked_add(u64::from(d.subsec_nanos())))
        .unwrap_or(u64::MAX)
}

/// The error for a refused timer operation on `id`.
fn refused(id: TimerId, why: Refused) -> io::Error {
    match why {
        Refused::NotPending => io::Error::new(
            io::ErrorKind::NotFound,
            format!("evloop: {id:?} is not pending"),
        ),
        Refused::NotAnInterval => io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("evloop: {id:?} is a one-shot timer, not an interval"),
        ),
    }
}
