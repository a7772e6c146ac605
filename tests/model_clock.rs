//! (Real-clock companion of tests/model.rs: timers with millisecond delays.)
//! Model-based test of the core loop: random sequences of operations, run on a
//! real [`EventLoop`] and on a small reference model written here, must agree.
//!
//! # What is generated
//!
//! Top-level operations: `call_soon`, `set_timeout` (0, 1, 2, 5 ms, or one hour:
//! never due within a case), `set_interval` (0, 1, 2 ms; endless, or clearing
//! itself after 1–3 runs), `clear_timer` of any id made so far (pending,
//! already fired, already cleared, or one whose storage slot was reused),
//! bursts of 65–99 timers mostly cleared at once (the queue's rebuild path),
//! `stop`, `run`, `run_once`, `run_nowait`, posts through a [`LoopHandle`] from
//! the test thread, holding and dropping handles, and another thread posting
//! through its own handle. Every callback is a small script that may itself
//! queue a `call_soon`, set a timeout or a counted interval, clear a timer,
//! call `stop`, or post through a handle, up to two levels deep.
//!
//! # How it is checked without trusting the clock
//!
//! The real clock decides when a timer is due, so nothing here predicts times.
//! Every callback logs `(tag, ev.iterations(), ev.now(), clear_timer results)`,
//! and after each operation the model replays the loop's documented pass
//! structure (timers, ready, stop check, posts; `run_once` may add a second
//! timers phase after blocking) against that log, using only the loop times
//! the log and `ev.now()` reveal. With a pass's time known, the model
//! determines exactly which callbacks run in it and in what order, so it
//! asserts exactly:
//!
//! - `call_soon` callbacks run FIFO, exactly the ones queued when the ready
//!   phase began; one queued by a ready or posted callback waits for a later
//!   pass (a timer callback's `call_soon` runs in the same pass's ready phase,
//!   as `src/event_loop.rs` documents);
//! - timers run in `(deadline, order set)` order with deadline = the `now()`
//!   seen when set + delay; a timer never runs before its deadline, and every
//!   timer armed before the phase and due at the pass's time does run in it;
//!   an interval re-arms from the pass time, behind timers set in its callback;
//! - `clear_timer` returns true iff the timer was pending (an interval counts
//!   while inside its own callback), and takes effect at once, also in a
//!   callback and also for a timer due in the same pass;
//! - after `stop()` the pass ends after its ready phase (posts wait), `run`
//!   returns after that pass, and nothing is lost: a later run runs the rest;
//! - `run` goes on exactly while the loop is alive and not stopped,
//!   `run_nowait` and `run_once` do one pass, and `is_alive()`, their return
//!   values and `pending_timers()` match the model (queued callbacks, pending
//!   timers, held handles, unconsumed posts);
//! - posts run in the posts phase, each thread's in its order; everything
//!   that should run, runs exactly once: each case ends by clearing the
//!   endless timers, dropping the handles and running the loop dry, and after
//!   the drop nothing more runs.
//!
//! What the log does not determine is not asserted: how many empty passes a
//! blocking `run` makes, the time of a pass that ran nothing (only a lower
//! bound is known: timers due by then must have run), whether `run_once`
//! blocked when nothing tells, and in which pass another thread's post lands.
//! `run_nowait` is never allowed to block: it is called with handles held and
//! hour-long timers pending, where blocking would hang the test. `run` and
//! `run_once` are only called when they must end soon; otherwise the case
//! calls `stop(); run()` (one pass) or `run_nowait()` instead.
//!
//! The same model also runs against a loop with a manual clock
//! (`EventLoop::with_manual_clock`): time then moves only by jumps to the
//! next timer, and every ordering above must hold unchanged.
//!
//! `PROPTEST_CASES` overrides the number of cases of each test.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use evloop::{EventLoop, LoopHandle, TimerId};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::Union;

const LONG: Duration = Duration::from_secs(3600);
/// Delays for timeouts set by the test (the last never comes due in a case).
const DELAYS: [Duration; 5] = [
    Duration::ZERO,
    Duration::from_millis(1),
    Duration::from_millis(2),
    Duration::from_millis(5),
    LONG,
];
/// Delays for timeouts set by callbacks (never the long one, so the loop
/// can always be run dry).
const SHORT: [Duration; 4] = [
    Duration::ZERO,
    Duration::from_millis(1),
    Duration::from_millis(2),
    Duration::from_millis(5),
];
const PERIODS: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_millis(1),
    Duration::from_millis(2),
];

// ---------------------------------------------------------------------------
// Generated scripts

/// A callback: it logs its tag, then performs `acts` in order.
#[derive(Clone, Debug)]
struct Cb {
    tag: u32,
    acts: Vec<Act>,
}

#[derive(Clone, Debug)]
enum Act {
    CallSoon(Cb),
    Timeout(usize, Cb),
    /// Period index, runs after which the interval clears itself, callback.
    Interval(usize, u32, Cb),
    /// Clears the timer made `k % made` -th (if any was made).
    Clear(usize),
    Stop,
    /// Posts through a fresh `LoopHandle`.
    Post(Cb),
}

#[derive(Clone, Debug)]
enum Op {
    CallSoon(Cb),
    Timeout(usize, Cb),
    /// Period index, `Some(n)`: clears itself after n runs, `None`: endless.
    Interval(usize, Option<u32>, Cb),
    Clear(usize),
    Stop,
    RunNowait,
    RunOnce,
    Run,
    Post(Cb),
    Hold,
    Release,
    Thread(Vec<Cb>),
    Join,
    Burst {
        n: usize,
        seed: u64,
        tag0: u32,
    },
}

fn cb_strategy(depth: u32) -> BoxedStrategy<Cb> {
    let leaf = prop_oneof![
        2 => any::<u8>().prop_map(|k| Act::Clear(k as usize)),
        1 => Just(Act::Stop),
    ];
    let act = if depth == 0 {
        leaf.boxed()
    } else {
        let sub = cb_strategy(depth - 1);
        prop_oneof![
            3 => leaf,
            3 => sub.clone().prop_map(Act::CallSoon),
            3 => (0..SHORT.len(), sub.clone()).prop_map(|(d, cb)| Act::Timeout(d, cb)),
            1 => (0..PERIODS.len(), 1..4u32, sub.clone())
                .prop_map(|(p, n, cb)| Act::Interval(p, n, cb)),
            2 => sub.prop_map(Act::Post),
        ]
        .boxed()
    };
    vec(act, 0..3).prop_map(|acts| Cb { tag: 0, acts }).boxed()
}

fn op_strategy(threads: bool) -> BoxedStrategy<Op> {
    let cb = cb_strategy(2);
    let mut ops: Vec<(u32, BoxedStrategy<Op>)> = vec![
        (4, cb.clone().prop_map(Op::CallSoon).boxed()),
        (
            5,
            (0..DELAYS.len(), cb.clone())
                .prop_map(|(d, cb)| Op::Timeout(d, cb))
                .boxed(),
        ),
        (
            2,
            (0..PERIODS.len(), proptest::option::of(1..4u32), cb.clone())
                .prop_map(|(p, n, cb)| Op::Interval(p, n, cb))
                .boxed(),
        ),
        (4, any::<u8>().prop_map(|k| Op::Clear(k as usize)).boxed()),
        (1, Just(Op::Stop).boxed()),
        (3, Just(Op::RunNowait).boxed()),
        (2, Just(Op::RunOnce).boxed()),
        (3, Just(Op::Run).boxed()),
        (2, cb.prop_map(Op::Post).boxed()),
        (1, Just(Op::Hold).boxed()),
        (1, Just(Op::Release).boxed()),
        (
            1,
            (65..100usize, any::<u64>())
                .prop_map(|(n, seed)| Op::Burst { n, seed, tag0: 0 })
                .boxed(),
        ),
    ];
    if threads {
        ops.push((2, vec(cb_strategy(1), 1..4).prop_map(Op::Thread).boxed()));
        ops.push((1, Just(Op::Join).boxed()));
    }
    Union::new_weighted(ops).boxed()
}

/// Gives every callback of the case a distinct tag.
fn renumber(ops: &mut [Op]) {
    fn cb(c: &mut Cb, next: &mut u32) {
        c.tag = *next;
        *next += 1;
        for act in &mut c.acts {
            match act {
                Act::CallSoon(c) | Act::Timeout(_, c) | Act::Interval(_, _, c) | Act::Post(c) => {
                    cb(c, next)
                }
                Act::Clear(_) | Act::Stop => {}
            }
        }
    }
    let mut next = 0;
    for op in ops {
        match op {
            Op::CallSoon(c) | Op::Timeout(_, c) | Op::Interval(_, _, c) | Op::Post(c) => {
                cb(c, &mut next)
            }
            Op::Thread(cs) => cs.iter_mut().for_each(|c| cb(c, &mut next)),
            Op::Burst { n, tag0, .. } => {
                *tag0 = next;
                next += *n as u32;
            }
            _ => {}
        }
    }
}

/// A fixed pseudo-random function (splitmix64), for bursts.
fn mix(seed: u64, i: usize) -> u64 {
    let mut z = seed.wrapping_add((i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

// ---------------------------------------------------------------------------
// The real side: callbacks that log what they see

#[derive(Clone, Debug)]
struct Entry {
    tag: u32,
    iter: u64,
    now: Instant,
    /// What each `clear_timer` in the callback returned, in order.
    results: Vec<bool>,
}

#[derive(Default)]
struct Probe {
    log: Mutex<Vec<Entry>>,
    /// Every timer made so far, in the order made.
    ids: Mutex<Vec<TimerId>>,
}

type P = Arc<Probe>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Probe {
    fn record(&self, ev: &EventLoop, tag: u32) -> usize {
        let mut log = lock(&self.log);
        log.push(Entry {
            tag,
            iter: ev.iterations(),
            now: ev.now(),
            results: Vec::new(),
        });
        log.len() - 1
    }
    fn result(&self, at: usize, hit: bool) {
        lock(&self.log)[at].results.push(hit);
    }
    fn id(&self, k: usize) -> Option<TimerId> {
        let ids = lock(&self.ids);
        (!ids.is_empty()).then(|| ids[k % ids.len()])
    }
    fn push_id(&self, id: TimerId) {
        lock(&self.ids).push(id);
    }
}

fn task(p: &P, cb: &Cb) -> impl FnOnce(&mut EventLoop) + Send + 'static {
    let (p, cb) = (p.clone(), cb.clone());
    move |ev| {
        let at = p.record(ev, cb.tag);
        perform(ev, &p, at, &cb.acts);
    }
}

fn perform(ev: &mut EventLoop, p: &P, at: usize, acts: &[Act]) {
    for act in acts {
        match act {
            Act::CallSoon(cb) => ev.call_soon(task(p, cb)),
            Act::Timeout(d, cb) => {
                let id = ev.set_timeout(SHORT[*d], task(p, cb));
                p.push_id(id);
            }
            Act::Interval(period, n, cb) => interval(ev, p, PERIODS[*period], Some(*n), cb),
            Act::Clear(k) => {
                if let Some(id) = p.id(*k) {
                    let hit = ev.clear_timer(id);
                    p.result(at, hit);
                }
            }
            Act::Stop => ev.stop(),
            Act::Post(cb) => ev
                .handle()
                .call_soon(task(p, cb))
                .expect("the loop is not dropped"),
        }
    }
}

/// Sets an interval that clears itself after `count` runs (if `Some`).
fn interval(ev: &mut EventLoop, p: &P, period: Duration, count: Option<u32>, cb: &Cb) {
    let me = lock(&p.ids).len();
    let (p2, cb) = (p.clone(), cb.clone());
    let mut runs = 0;
    let id = ev.set_interval(period, move |ev| {
        let at = p2.record(ev, cb.tag);
        perform(ev, &p2, at, &cb.acts);
        runs += 1;
        if count == Some(runs) {
            let id = lock(&p2.ids)[me];
            let hit = ev.clear_timer(id);
            p2.result(at, hit);
        }
    });
    p.push_id(id);
}

// ---------------------------------------------------------------------------
// The model

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum St {
    Queued,
    /// An interval inside its own callback.
    Running,
    /// Fired (one-shot) or cleared.
    Done,
}

#[derive(Clone, Debug)]
struct MTimer {
    cb: Cb,
    deadline: Instant,
    order: u64,
    period: Option<Duration>,
    count: Option<u32>,
    runs: u32,
    long: bool,
    st: St,
}

#[derive(Clone, Debug)]
struct MThread {
    posts: Vec<Cb>,
    next: usize,
    joined: bool,
}

#[derive(Clone, Debug)]
struct Model {
    epoch: Instant,
    /// Every timer made, in the order made (the index is the one `Clear` uses).
    timers: Vec<MTimer>,
    next_order: u64,
    ready: VecDeque<Cb>,
    /// Posts from the loop's thread and the test thread, not yet taken.
    posts: VecDeque<Cb>,
    threads: Vec<MThread>,
    stop: bool,
    held: usize,
}

type R = Result<(), String>;

impl Model {
    fn at(&self, t: Instant) -> String {
        format!("{:?}", t.saturating_duration_since(self.epoch))
    }

    fn add_timer(
        &mut self,
        cb: Cb,
        deadline: Instant,
        period: Option<Duration>,
        count: Option<u32>,
    ) {
        self.timers.push(MTimer {
            cb,
            deadline,
            order: self.next_order,
            period,
            count,
            runs: 0,
            long: deadline.saturating_duration_since(self.epoch) >= LONG,
            st: St::Queued,
        });
        self.next_order += 1;
    }

    /// Clears timer `k % made`; `Some(was pending)`, `None` if none was made.
    fn clear(&mut self, k: usize) -> Option<bool> {
        let n = self.timers.len();
        let t = self.timers.get_mut(k.checked_rem(n)?)?;
        let hit = t.st != St::Done;
        t.st = St::Done;
        Some(hit)
    }

    fn pending_timers(&self) -> usize {
        self.timers.iter().filter(|t| t.st != St::Done).count()
    }

    /// Alive for sure (other threads not yet joined may keep it alive too).
    fn alive(&self) -> bool {
        !self.ready.is_empty()
            || !self.posts.is_empty()
            || self.pending_timers() > 0
            || self.held > 0
            || self
                .threads
                .iter()
                .any(|t| t.joined && t.next < t.posts.len())
    }

    fn threads_outstanding(&self) -> bool {
        self.threads.iter().any(|t| !t.joined)
    }

    /// Takes the next log entry, which must be `tag` at loop time `t`.
    fn expect<'a>(
        &self,
        es: &'a [Entry],
        pos: &mut usize,
        tag: u32,
        t: Instant,
        what: &str,
    ) -> Result<&'a Entry, String> {
        match es.get(*pos) {
            Some(e) if e.tag == tag && e.now == t => {
                *pos += 1;
                Ok(e)
            }
            Some(e) => Err(format!(
                "{what} #{tag} should run next (pass at {}), but #{} ran (at {})",
                self.at(t),
                e.tag,
                self.at(e.now)
            )),
            None => Err(format!(
                "{what} #{tag} should run in the pass at {}, but it did not",
                self.at(t)
            )),
        }
    }

    /// Applies what a callback running at loop time `now` did.
    fn exec(&mut self, acts: &[Act], e: &Entry, now: Instant, res: &mut usize) -> R {
        for act in acts {
            match act {
                Act::CallSoon(cb) => self.ready.push_back(cb.clone()),
                Act::Timeout(d, cb) => self.add_timer(cb.clone(), now + SHORT[*d], None, None),
                Act::Interval(p, n, cb) => {
                    self.add_timer(cb.clone(), now + PERIODS[*p], Some(PERIODS[*p]), Some(*n))
                }
                Act::Clear(k) => {
                    if let Some(hit) = self.clear(*k) {
                        check_result(e, res, hit, *k)?;
                    }
                }
                Act::Stop => self.stop = true,
                Act::Post(cb) => self.posts.push_back(cb.clone()),
            }
        }
        Ok(())
    }

    fn run_once_cb(&mut self, cb: &Cb, e: &Entry, t: Instant) -> R {
        let mut res = 0;
        self.exec(&cb.acts, e, t, &mut res)?;
        all_results(e, res)
    }

    /// The timers phase of a pass at loop time `t`.
    fn timers_phase(&mut self, t: Instant, es: &[Entry], pos: &mut usize) -> R {
        let mark = self.next_order;
        loop {
            let due = self
                .timers
                .iter()
                .enumerate()
                .filter(|(_, x)| x.st == St::Queued && x.order < mark && x.deadline <= t)
                .min_by_key(|(_, x)| (x.deadline, x.order))
                .map(|(i, _)| i);
            let Some(i) = due else { return Ok(()) };
            let cb = self.timers[i].cb.clone();
            let e = self.expect(es, pos, cb.tag, t, "timer")?;
            let Some(period) = self.timers[i].period else {
                self.timers[i].st = St::Done;
                self.run_once_cb(&cb, e, t)?;
                continue;
            };
            self.timers[i].st = St::Running;
            let mut res = 0;
            self.exec(&cb.acts, e, t, &mut res)?;
            let x = &mut self.timers[i];
            x.runs += 1;
            if x.count == Some(x.runs) {
                let hit = x.st == St::Running;
                x.st = St::Done;
                check_result(e, &mut res, hit, i)?;
            }
            if x.st == St::Running {
                x.deadline = t + period;
                x.order = self.next_order;
                x.st = St::Queued;
                self.next_order += 1;
            }
            all_results(e, res)?;
        }
    }

    /// The ready phase: exactly the callbacks queued when it began, FIFO.
    fn ready_phase(&mut self, t: Instant, es: &[Entry], pos: &mut usize) -> R {
        for _ in 0..self.ready.len() {
            let cb = self.ready.pop_front().expect("counted");
            let e = self.expect(es, pos, cb.tag, t, "call_soon callback")?;
            self.run_once_cb(&cb, e, t)?;
        }
        Ok(())
    }

    /// The posts phase: every post taken when it began, in post order, with
    /// other threads' posts interleaved anywhere (each thread's in order).
    fn posts_phase(&mut self, t: Instant, es: &[Entry], pos: &mut usize) -> R {
        let mut taken = std::mem::take(&mut self.posts);
        loop {
            if let Some(e) = es.get(*pos) {
                let th = self
                    .threads
                    .iter()
                    .position(|th| th.posts.get(th.next).is_some_and(|c| c.tag == e.tag));
                if let Some(th) = th {
                    let cb = self.threads[th].posts[self.threads[th].next].clone();
                    self.threads[th].next += 1;
                    let e = self.expect(es, pos, cb.tag, t, "other thread's post")?;
                    self.run_once_cb(&cb, e, t)?;
                    continue;
                }
            }
            let Some(cb) = taken.pop_front() else { break };
            let e = self.expect(es, pos, cb.tag, t, "post")?;
            self.run_once_cb(&cb, e, t)?;
        }
        if let Some(th) = self
            .threads
            .iter()
            .find(|t| t.joined && t.next < t.posts.len())
        {
            return Err(format!(
                "post #{} of a joined thread did not run in the posts phase at {}",
                th.posts[th.next].tag,
                self.at(t)
            ));
        }
        Ok(())
    }

    /// One whole pass at a known loop time (no `run_once` second phase).
    fn pass(&mut self, t: Instant, es: &[Entry], pos: &mut usize) -> R {
        self.timers_phase(t, es, pos)?;
        self.ready_phase(t, es, pos)?;
        if !self.stop {
            self.posts_phase(t, es, pos)?;
        }
        Ok(())
    }

    /// A pass that logged nothing, at an unknown time `>= lower`: it must
    /// have had nothing to run.
    fn empty_pass(&self, lower: Instant) -> R {
        if let Some(cb) = self.ready.front() {
            return Err(format!("queued callback #{} did not run in a pass", cb.tag));
        }
        if let Some(x) = self
            .timers
            .iter()
            .find(|x| x.st == St::Queued && x.deadline <= lower)
        {
            return Err(format!(
                "timer #{} due at {} did not run in a pass at {} or later",
                x.cb.tag,
                self.at(x.deadline),
                self.at(lower)
            ));
        }
        if !self.stop {
            if let Some(cb) = self.posts.front() {
                return Err(format!("post #{} did not run in a pass", cb.tag));
            }
        }
        Ok(())
    }

    /// After the ready phase at `t1`, `run_once` blocked in the poller: that
    /// is only allowed when nothing was runnable.
    fn may_block(&self, t1: Instant) -> R {
        let why = if self.stop {
            "stop() was called"
        } else if !self.ready.is_empty() {
            "callbacks were queued"
        } else if !self.posts.is_empty()
            || self
                .threads
                .iter()
                .any(|t| t.joined && t.next < t.posts.len())
        {
            "posts were waiting"
        } else if self
            .timers
            .iter()
            .any(|x| x.st == St::Queued && x.deadline <= t1)
        {
            "a timer was due"
        } else if !self.alive() && !self.threads_outstanding() {
            "the loop was not alive"
        } else {
            return Ok(());
        };
        Err(format!(
            "run_once blocked (loop time moved from {}) although {why}",
            self.at(t1)
        ))
    }
}

fn check_result(e: &Entry, res: &mut usize, hit: bool, k: usize) -> R {
    let got = e.results.get(*res).copied();
    *res += 1;
    if got == Some(hit) {
        Ok(())
    } else {
        Err(format!(
            "in callback #{}: clear_timer(timer made {k}th mod made) returned {got:?}, model says {hit}",
            e.tag
        ))
    }
}

fn all_results(e: &Entry, res: usize) -> R {
    if e.results.len() == res {
        Ok(())
    } else {
        Err(format!(
            "callback #{} logged {} clear_timer results, model expects {res}",
            e.tag,
            e.results.len()
        ))
    }
}

fn leftover(m: &Model, es: &[Entry], pos: usize, what: &str) -> R {
    match es.get(pos) {
        None => Ok(()),
        Some(e) => Err(format!(
            "{what}: callback #{} ran (at {}) but the model expects nothing more; rest of the log: {:?}",
            e.tag,
            m.at(e.now),
            es[pos..].iter().map(|e| e.tag).collect::<Vec<_>>()
        )),
    }
}

// ---------------------------------------------------------------------------
// Running a case

struct Harness {
    ev: EventLoop,
    p: P,
    m: Model,
    held: Vec<LoopHandle>,
    threads: Vec<Option<JoinHandle<()>>>,
    seen: usize,
    manual_clock: bool,
}

impl Harness {
    fn new(manual_clock: bool) -> Harness {
        let ev = if manual_clock {
            EventLoop::with_manual_clock()
        } else {
            EventLoop::new()
        }
        .expect("new loop");
        let epoch = ev.now();
        Harness {
            ev,
            p: P::default(),
            m: Model {
                epoch,
                timers: Vec::new(),
                next_order: 0,
                ready: VecDeque::new(),
                posts: VecDeque::new(),
                threads: Vec::new(),
                stop: false,
                held: 0,
            },
            held: Vec::new(),
            threads: Vec::new(),
            seen: 0,
            manual_clock,
        }
    }

    fn new_entries(&mut self) -> Vec<Entry> {
        let log = lock(&self.p.log);
        let es = log[self.seen..].to_vec();
        self.seen = log.len();
        es
    }

    fn no_long_timer_and_no_handle(&self) -> bool {
        self.m.held == 0 && !self.m.timers.iter().any(|x| x.st == St::Queued && x.long)
    }

    /// `run()` ends soon: everything pending comes due within milliseconds
    /// and nothing repeats forever.
    fn run_ends(&self) -> bool {
        self.no_long_timer_and_no_handle()
            && !self
                .m
                .timers
                .iter()
                .any(|x| x.st == St::Queued && x.period.is_some() && x.count.is_none())
    }

    fn apply(&mut self, op: &Op) -> R {
        let (ev, p, m) = (&mut self.ev, &self.p, &mut self.m);
        match op {
            Op::CallSoon(cb) => {
                ev.call_soon(task(p, cb));
                m.ready.push_back(cb.clone());
            }
            Op::Timeout(d, cb) => {
                let now = ev.now();
                let id = ev.set_timeout(DELAYS[*d], task(p, cb));
                p.push_id(id);
                m.add_timer(cb.clone(), now + DELAYS[*d], None, None);
            }
            Op::Interval(period, count, cb) => {
                let now = ev.now();
                interval(ev, p, PERIODS[*period], *count, cb);
                m.add_timer(
                    cb.clone(),
                    now + PERIODS[*period],
                    Some(PERIODS[*period]),
                    *count,
                );
            }
            Op::Clear(k) => {
                if let Some(id) = p.id(*k) {
                    let got = ev.clear_timer(id);
                    let hit = m.clear(*k).expect("made");
                    if got != hit {
                        return Err(format!("clear_timer returned {got}, model says {hit}"));
                    }
                }
            }
            Op::Stop => {
                ev.stop();
                m.stop = true;
            }
            Op::Post(cb) => {
                let f = task(p, cb);
                let r = match self.held.first() {
                    Some(h) => h.call_soon(f),
                    None => ev.handle().call_soon(f),
                };
                r.map_err(|e| format!("post failed: {e}"))?;
                m.posts.push_back(cb.clone());
            }
            Op::Hold => {
                self.held.push(ev.handle());
                m.held += 1;
            }
            Op::Release => {
                if self.held.pop().is_some() {
                    m.held -= 1;
                }
            }
            Op::Thread(cbs) => {
                let h = ev.handle();
                let fs: Vec<_> = cbs.iter().map(|cb| task(p, cb)).collect();
                self.threads.push(Some(std::thread::spawn(move || {
                    for f in fs {
                        // Err only if the case already failed and dropped the loop.
                        let _ = h.call_soon(f);
                        std::thread::yield_now();
                    }
                })));
                m.threads.push(MThread {
                    posts: cbs.clone(),
                    next: 0,
                    joined: false,
                });
            }
            Op::Join => self.join_all()?,
            Op::Burst { n, seed, tag0 } => {
                let now = ev.now();
                let base = m.timers.len();
                for i in 0..*n {
                    let d = DELAYS[(mix(*seed, i) % DELAYS.len() as u64) as usize];
                    let cb = Cb {
                        tag: tag0 + i as u32,
                        acts: Vec::new(),
                    };
                    let id = ev.set_timeout(d, task(p, &cb));
                    p.push_id(id);
                    m.add_timer(cb, now + d, None, None);
                }
                for i in 0..*n {
                    if mix(!*seed, i) % 8 != 0 {
                        let got = ev.clear_timer(lock(&p.ids)[base + i]);
                        if !got || m.clear(base + i) != Some(true) {
                            return Err(format!(
                                "burst: clear_timer of a fresh timer returned {got}"
                            ));
                        }
                    }
                }
            }
            Op::RunNowait => self.run_nowait()?,
            Op::RunOnce => {
                if self.no_long_timer_and_no_handle() {
                    self.run_once()?
                } else {
                    self.run_nowait()?
                }
            }
            Op::Run => {
                if !self.run_ends() {
                    self.ev.stop();
                    self.m.stop = true;
                }
                self.run()?
            }
        }
        self.check_state()
    }

    fn join_all(&mut self) -> R {
        for (i, slot) in self.threads.iter_mut().enumerate() {
            if let Some(j) = slot.take() {
                j.join()
                    .map_err(|_| "a posting thread panicked".to_string())?;
                self.m.threads[i].joined = true;
            }
        }
        Ok(())
    }

    /// The real loop has nothing left: every thread's handle is gone and all
    /// of its posts ran.
    fn threads_done(&mut self) -> R {
        if let Some(th) = self.m.threads.iter().find(|t| t.next < t.posts.len()) {
            return Err(format!(
                "the loop is dead but post #{} of another thread never ran",
                th.posts[th.next].tag
            ));
        }
        self.join_all()
    }

    fn check_state(&mut self) -> R {
        let real = self.ev.is_alive();
        let model = self.m.alive();
        if self.m.threads_outstanding() {
            if model && !real {
                return Err("is_alive() is false, the model is alive".into());
            }
            if !real {
                self.threads_done()?;
            }
        } else if real != model {
            return Err(format!("is_alive() is {real}, the model says {model}"));
        }
        let (real, model) = (self.ev.pending_timers(), self.m.pending_timers());
        if real != model {
            return Err(format!(
                "pending_timers() is {real}, the model says {model}"
            ));
        }
        Ok(())
    }

    /// What `run_once`/`run_nowait` returned: is_alive() at its end. Another
    /// thread may drop its handle right after, so then only a lower bound.
    fn check_result_alive(&self, alive: bool, what: &str) -> R {
        let ok = if self.m.threads_outstanding() {
            alive || !self.m.alive()
        } else {
            alive == self.ev.is_alive() && alive == self.m.alive()
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "{what} returned {alive}, the model says {}",
                self.m.alive()
            ))
        }
    }

    fn one_iteration(&mut self, it: u64) -> Result<Vec<Entry>, String> {
        if self.ev.iterations() != it + 1 {
            return Err(format!(
                "made {} passes, not one",
                self.ev.iterations() - it
            ));
        }
        let es = self.new_entries();
        if es.iter().any(|e| e.iter != it + 1) {
            return Err("a callback ran outside the pass".into());
        }
        Ok(es)
    }

    fn run_nowait(&mut self) -> R {
        let (lower, it) = (self.ev.now(), self.ev.iterations());
        let alive = self
            .ev
            .run_nowait()
            .map_err(|e| format!("run_nowait: {e}"))?;
        let t = self.ev.now();
        let es = self.one_iteration(it)?;
        if t < lower {
            return Err("loop time went back".into());
        }
        let mut pos = 0;
        self.m.pass(t, &es, &mut pos)?;
        leftover(&self.m, &es, pos, "run_nowait")?;
        self.m.stop = false;
        self.check_result_alive(alive, "run_nowait")
    }

    fn run_once(&mut self) -> R {
        let (lower, it) = (self.ev.now(), self.ev.iterations());
        let alive = self.ev.run_once().map_err(|e| format!("run_once: {e}"))?;
        let t_end = self.ev.now();
        let es = self.one_iteration(it)?;
        if let Some(first) = es.first().filter(|e| e.now != t_end) {
            // Callbacks ran before the loop time moved: it blocked, then ran
            // the timers due after the wait.
            let t1 = first.now;
            if t1 < lower || t1 > t_end {
                return Err("loop time out of order".into());
            }
            let split = es.iter().position(|e| e.now != t1).unwrap_or(es.len());
            let (p1, p2) = es.split_at(split);
            if p2.iter().any(|e| e.now != t_end) {
                return Err("run_once's callbacks saw three loop times".into());
            }
            let m = &mut self.m;
            let mut pos = 0;
            m.timers_phase(t1, p1, &mut pos)?;
            m.ready_phase(t1, p1, &mut pos)?;
            m.may_block(t1)?;
            m.posts_phase(t1, p1, &mut pos)?;
            leftover(m, p1, pos, "run_once before blocking")?;
            let mut pos = 0;
            m.timers_phase(t_end, p2, &mut pos)?;
            leftover(m, p2, pos, "run_once after blocking")?;
        } else {
            // Either one pass at t_end, or a pass that ran nothing, blocked,
            // and ran timers at t_end.
            let mut a = self.m.clone();
            let ra = (|| {
                let mut pos = 0;
                a.pass(t_end, &es, &mut pos)?;
                leftover(&a, &es, pos, "run_once")
            })();
            match ra {
                Ok(()) => self.m = a,
                Err(ea) => {
                    let mut b = self.m.clone();
                    let rb = (|| {
                        b.empty_pass(lower)?;
                        b.may_block(lower)?;
                        let mut pos = 0;
                        b.timers_phase(t_end, &es, &mut pos)?;
                        leftover(&b, &es, pos, "run_once after blocking")
                    })();
                    match rb {
                        Ok(()) => self.m = b,
                        // A manual clock does not move while the loop
                        // blocks (for a post): a full pass, the wait, and the
                        // second timers phase all see one time, so the log
                        // does not show where the pass ended. Try each split.
                        Err(eb) if self.manual_clock => {
                            self.m = (0..=es.len())
                                .find_map(|k| {
                                    let (p1, p2) = es.split_at(k);
                                    let mut c = self.m.clone();
                                    let mut pos = 0;
                                    c.timers_phase(t_end, p1, &mut pos).ok()?;
                                    c.ready_phase(t_end, p1, &mut pos).ok()?;
                                    c.may_block(t_end).ok()?;
                                    c.posts_phase(t_end, p1, &mut pos).ok()?;
                                    leftover(&c, p1, pos, "").ok()?;
                                    let mut pos = 0;
                                    c.timers_phase(t_end, p2, &mut pos).ok()?;
                                    leftover(&c, p2, pos, "").ok()?;
                                    Some(c)
                                })
                                .ok_or_else(|| {
                                    format!("{ea}; (nor as a blocking run_once: {eb}; nor split)")
                                })?;
                        }
                        Err(eb) => return Err(format!("{ea}; (nor as a blocking run_once: {eb})")),
                    }
                }
            }
        }
        self.m.stop = false;
        self.check_result_alive(alive, "run_once")
    }

    fn run(&mut self) -> R {
        let (mut lower, it) = (self.ev.now(), self.ev.iterations());
        self.ev.run().map_err(|e| format!("run: {e}"))?;
        let passes = self.ev.iterations() - it;
        let t_end = self.ev.now();
        let es = self.new_entries();
        if es.windows(2).any(|w| w[0].iter > w[1].iter)
            || es.iter().any(|e| e.iter <= it || e.iter > it + passes)
        {
            return Err("a callback ran outside the passes of run()".into());
        }
        if passes == 0 && self.m.alive() {
            return Err("run() returned at once although the loop is alive".into());
        }
        let mut start = 0;
        for k in 1..=passes {
            let len = es[start..].iter().take_while(|e| e.iter == it + k).count();
            let mine = &es[start..start + len];
            start += len;
            let t = if k == passes {
                Some(t_end)
            } else {
                mine.first().map(|e| e.now)
            };
            match t {
                Some(t) => {
                    if t < lower {
                        return Err("loop time went back".into());
                    }
                    let mut pos = 0;
                    self.m.pass(t, mine, &mut pos)?;
                    leftover(&self.m, mine, pos, "run")?;
                    lower = t;
                }
                None => self.m.empty_pass(lower)?,
            }
            if k < passes {
                if self.m.stop {
                    return Err("run() went on after a pass that called stop()".into());
                }
                if !self.m.alive() && !self.m.threads_outstanding() {
                    return Err("run() went on with nothing alive".into());
                }
            } else if !self.m.stop && self.m.alive() {
                return Err("run() returned while alive and not stopped".into());
            }
        }
        let stopped = std::mem::replace(&mut self.m.stop, false);
        if !stopped {
            self.threads_done()?;
        }
        Ok(())
    }

    /// Ends the case: no more handles, no endless timers; then the loop must
    /// run everything left, exactly once, and die.
    fn drain(&mut self) -> R {
        self.join_all()?;
        self.held.clear();
        self.m.held = 0;
        for k in 0..self.m.timers.len() {
            let x = &self.m.timers[k];
            if x.st == St::Queued && (x.long || (x.period.is_some() && x.count.is_none())) {
                let tag = x.cb.tag;
                let got = self.ev.clear_timer(lock(&self.p.ids)[k]);
                self.m.clear(k);
                if !got {
                    return Err(format!(
                        "clear_timer of pending timer #{tag} returned false"
                    ));
                }
            }
        }
        self.check_state()?;
        let mut runs = 0;
        while self.m.alive() {
            runs += 1;
            if runs > 10_000 {
                return Err("the loop never ran dry".into());
            }
            self.run()?;
            self.check_state()?;
        }
        if self.ev.is_alive() || self.ev.pending_timers() != 0 {
            return Err("the loop is still alive after running dry".into());
        }
        Ok(())
    }
}

fn run_case(ops: &[Op], manual_clock: bool) -> R {
    let mut h = Harness::new(manual_clock);
    for (i, op) in ops.iter().enumerate() {
        h.apply(op).map_err(|e| format!("op {i} ({op:?}): {e}"))?;
    }
    h.drain().map_err(|e| format!("draining: {e}"))?;
    let p = h.p.clone();
    let seen = h.seen;
    drop(h);
    if lock(&p.log).len() != seen {
        return Err("a callback ran after the loop was dropped".into());
    }
    Ok(())
}

fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn check(mut ops: Vec<Op>) -> Result<(), TestCaseError> {
    renumber(&mut ops);
    run_case(&ops, false).map_err(TestCaseError::fail)
}

fn check_manual_clock(mut ops: Vec<Op>) -> Result<(), TestCaseError> {
    renumber(&mut ops);
    run_case(&ops, true).map_err(TestCaseError::fail)
}

// Two tests, so the harness runs them in parallel: a case mostly waits for
// millisecond timers, so the two overlap well even on a busy machine.
proptest! {
    #![proptest_config(config(1500))]

    #[test]
    fn loop_matches_model(ops in vec(op_strategy(false), 1..30)) {
        check(ops)?;
    }

    #[test]
    fn loop_matches_model_with_another_thread_posting(ops in vec(op_strategy(true), 1..30)) {
        check(ops)?;
    }

    #[test]
    fn manual_clock_loop_matches_model(ops in vec(op_strategy(false), 1..30)) {
        check_manual_clock(ops)?;
    }

    #[test]
    fn manual_clock_loop_matches_model_with_another_thread_posting(
        ops in vec(op_strategy(true), 1..30)
    ) {
        check_manual_clock(ops)?;
    }
}
