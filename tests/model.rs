//! A model-based test of the core loop: random sequences of `call_soon`,
//! `set_timeout`, `set_interval`, `clear_timer`, `stop`, posts from the loop
//! thread and from other threads, and `run_nowait` / `run`, including all of
//! these done from inside callbacks, checked against a small reference
//! model of the pass (DESIGN.md's guarantees 1-8 and 11-13).
//!
//! Timers use a zero delay or one hour, and intervals a zero period. With
//! those the outcome is fully determined by the documented pass order, not
//! by the clock: a zero-delay timer is due in the first pass that began
//! after it was set, and equal deadlines run in the order set, so the model
//! can predict the exact sequence of callbacks, every `clear_timer` answer
//! and `is_alive` after every step. Any difference fails the case, and
//! proptest shrinks it to a minimal sequence.
//!
//! `PROPTEST_CASES` sets the number of cases (default 2,000).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::time::Duration;

use evloop::{EventLoop, TimerId};
use proptest::prelude::*;

/// Something a test step or a callback does.
#[derive(Clone, Debug)]
enum Act {
    /// `call_soon` a callback that then does these.
    Soon(Vec<Act>),
    /// A zero-delay timeout that then does these.
    Timeout0(Vec<Act>),
    /// A one-hour timeout: pending until cleared.
    TimeoutLong,
    /// A zero-period interval: runs once per pass until cleared.
    Interval0,
    /// Clears the timer made n-th (mod the count), pending or not.
    Clear(usize),
    Stop,
    /// A post through a `LoopHandle` that then does these.
    Post(Vec<Act>),
}

#[derive(Clone, Debug)]
enum Step {
    Do(Act),
    /// Posted from another thread (joined before the next step).
    PostFromThread(Vec<Act>),
    RunNowait,
}

/// What the real loop did: callbacks run (by tag) and clear answers.
#[derive(Default)]
struct Real {
    log: Vec<u32>,
    next_tag: u32,
    timers: Vec<TimerId>,
    clears: Vec<bool>,
}

thread_local! {
    static REAL: RefCell<Real> = RefCell::new(Real::default());
}

fn tag() -> u32 {
    REAL.with(|r| {
        let mut r = r.borrow_mut();
        r.next_tag += 1;
        r.next_tag
    })
}

fn log(tag: u32) {
    REAL.with(|r| r.borrow_mut().log.push(tag));
}

fn run_then(ev: &mut EventLoop, tag: u32, acts: &[Act]) {
    log(tag);
    for a in acts {
        perform(ev, a);
    }
}

fn perform(ev: &mut EventLoop, act: &Act) {
    match act {
        Act::Soon(acts) => {
            let (t, acts) = (tag(), acts.clone());
            ev.call_soon(move |ev| run_then(ev, t, &acts));
        }
        Act::Timeout0(acts) => {
            let (t, acts) = (tag(), acts.clone());
            let id = ev.set_timeout(Duration::ZERO, move |ev| run_then(ev, t, &acts));
            REAL.with(|r| r.borrow_mut().timers.push(id));
        }
        Act::TimeoutLong => {
            let t = tag();
            let id = ev.set_timeout(Duration::from_secs(3600), move |_| log(t));
            REAL.with(|r| r.borrow_mut().timers.push(id));
        }
        Act::Interval0 => {
            let t = tag();
            let id = ev.set_interval(Duration::ZERO, move |_| log(t));
            REAL.with(|r| r.borrow_mut().timers.push(id));
        }
        Act::Clear(n) => {
            let id = REAL.with(|r| {
                let r = r.borrow();
                (!r.timers.is_empty()).then(|| r.timers[n % r.timers.len()])
            });
            if let Some(id) = id {
                let hit = ev.clear_timer(id);
                REAL.with(|r| r.borrow_mut().clears.push(hit));
            }
        }
        Act::Stop => ev.stop(),
        Act::Post(acts) => {
            let (t, acts) = (tag(), acts.clone());
            ev.handle()
                .call_soon(move |ev| run_then(ev, t, &acts))
                .unwrap();
        }
    }
}

// ---- the model -------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Debug)]
enum TimerState {
    Pending,
    /// An interval whose callback is running.
    Running,
    Dead,
}

#[derive(Debug)]
enum Kind {
    Once(Vec<Act>),
    Long,
    Interval,
}

#[derive(Debug)]
struct MTimer {
    tag: u32,
    order: u64,
    kind: Kind,
    state: TimerState,
}

#[derive(Default)]
struct Model {
    log: Vec<u32>,
    next_tag: u32,
    timers: Vec<MTimer>,
    clears: Vec<bool>,
    ready: VecDeque<(u32, Vec<Act>)>,
    posts: VecDeque<(u32, Vec<Act>)>,
    next_order: u64,
    stop: bool,
}

impl Model {
    fn tag(&mut self) -> u32 {
        self.next_tag += 1;
        self.next_tag
    }

    fn add_timer(&mut self, kind: Kind) {
        let tag = self.tag();
        let order = self.next_order;
        self.next_order += 1;
        self.timers.push(MTimer {
            tag,
            order,
            kind,
            state: TimerState::Pending,
        });
    }

    fn perform(&mut self, act: &Act) {
        match act {
            Act::Soon(acts) => {
                let t = self.tag();
                self.ready.push_back((t, acts.clone()));
            }
            Act::Timeout0(acts) => self.add_timer(Kind::Once(acts.clone())),
            Act::TimeoutLong => self.add_timer(Kind::Long),
            Act::Interval0 => self.add_timer(Kind::Interval),
            Act::Clear(n) => {
                if !self.timers.is_empty() {
                    let len = self.timers.len();
                    let t = &mut self.timers[n % len];
                    // Pending, or an interval inside its own callback.
                    let hit = t.state != TimerState::Dead;
                    t.state = TimerState::Dead;
                    self.clears.push(hit);
                }
            }
            Act::Stop => self.stop = true,
            Act::Post(acts) => {
                let t = self.tag();
                self.posts.push_back((t, acts.clone()));
            }
        }
    }

    fn run_then(&mut self, tag: u32, acts: &[Act]) {
        self.log.push(tag);
        for a in acts {
            self.perform(a);
        }
    }

    /// One pass: due timers (armed before the pass, in order), the ready
    /// callbacks queued before the phase, (stop?), the posts made before it.
    fn pass(&mut self) {
        let mark = self.next_order;
        loop {
            let due = self
                .timers
                .iter()
                .enumerate()
                .filter(|(_, t)| {
                    t.state == TimerState::Pending
                        && t.order < mark
                        && !matches!(t.kind, Kind::Long)
                })
                .min_by_key(|(_, t)| t.order)
                .map(|(i, _)| i);
            let Some(i) = due else { break };
            let tag = self.timers[i].tag;
            match &self.timers[i].kind {
                Kind::Once(acts) => {
                    let acts = acts.clone();
                    self.timers[i].state = TimerState::Dead;
                    self.run_then(tag, &acts);
                }
                Kind::Interval => {
                    self.timers[i].state = TimerState::Running;
                    self.log.push(tag);
                    if self.timers[i].state == TimerState::Running {
                        self.timers[i].state = TimerState::Pending;
                        self.timers[i].order = self.next_order;
                        self.next_order += 1;
                    }
                }
                Kind::Long => unreachable!(),
            }
        }
        for _ in 0..self.ready.len() {
            let (tag, acts) = self.ready.pop_front().unwrap();
            self.run_then(tag, &acts);
        }
        if self.stop {
            return;
        }
        for _ in 0..self.posts.len() {
            let (tag, acts) = self.posts.pop_front().unwrap();
            self.run_then(tag, &acts);
        }
    }

    fn is_alive(&self) -> bool {
        !self.ready.is_empty()
            || !self.posts.is_empty()
            || self.timers.iter().any(|t| t.state != TimerState::Dead)
    }
}

// ---- the test --------------------------------------------------------------

/// What callbacks do. Intervals and one-hour timers are made by top-level
/// steps only, so that once the end clears them, `run()` can end.
fn act(depth: u32) -> BoxedStrategy<Act> {
    let leaf = prop_oneof![
        any::<usize>().prop_map(Act::Clear),
        any::<usize>().prop_map(Act::Clear),
        Just(Act::Stop),
        Just(Act::Soon(vec![])),
        Just(Act::Timeout0(vec![])),
        Just(Act::Post(vec![])),
    ];
    if depth == 0 {
        return leaf.boxed();
    }
    let nested = || prop::collection::vec(act(depth - 1), 0..3);
    prop_oneof![
        3 => leaf,
        2 => nested().prop_map(Act::Soon),
        2 => nested().prop_map(Act::Timeout0),
        1 => nested().prop_map(Act::Post),
    ]
    .boxed()
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => act(2).prop_map(Step::Do),
        1 => Just(Step::Do(Act::TimeoutLong)),
        1 => Just(Step::Do(Act::Interval0)),
        1 => prop::collection::vec(act(1), 0..3).prop_map(Step::PostFromThread),
        3 => Just(Step::RunNowait),
    ]
}

fn check_case(steps: &[Step]) -> Result<(), TestCaseError> {
    REAL.with(|r| *r.borrow_mut() = Real::default());
    let mut ev = EventLoop::new().unwrap();
    let mut model = Model::default();
    for (i, s) in steps.iter().enumerate() {
        match s {
            Step::Do(a) => {
                perform(&mut ev, a);
                model.perform(a);
            }
            Step::PostFromThread(acts) => {
                let handle = ev.handle();
                let t = tag();
                let acts2 = acts.clone();
                std::thread::spawn(move || {
                    handle.call_soon(move |ev| run_then(ev, t, &acts2)).unwrap();
                })
                .join()
                .unwrap();
                let mt = model.tag();
                model.posts.push_back((mt, acts.clone()));
            }
            Step::RunNowait => {
                let alive = ev.run_nowait().unwrap();
                model.pass();
                model.stop = false;
                prop_assert_eq!(alive, model.is_alive(), "run_nowait's answer, step {}", i);
            }
        }
        REAL.with(|r| {
            let r = r.borrow();
            prop_assert_eq!(&r.log, &model.log, "callbacks after step {}", i);
            prop_assert_eq!(&r.clears, &model.clears, "clear answers after step {}", i);
            Ok(())
        })?;
        prop_assert_eq!(ev.is_alive(), model.is_alive(), "is_alive after step {}", i);
    }
    // End: clear every timer that is left, then run until nothing is left;
    // a stop() makes run() return early, and the next run() resumes.
    let count = REAL.with(|r| r.borrow().timers.len());
    for n in 0..count {
        perform(&mut ev, &Act::Clear(n));
        model.perform(&Act::Clear(n));
    }
    for _ in 0..100 {
        if !model.is_alive() {
            break;
        }
        ev.run().unwrap();
        while model.is_alive() {
            model.pass();
            if std::mem::take(&mut model.stop) {
                break;
            }
        }
    }
    REAL.with(|r| {
        let r = r.borrow();
        prop_assert_eq!(&r.log, &model.log, "callbacks at the end");
        prop_assert_eq!(&r.clears, &model.clears, "clear answers at the end");
        Ok(())
    })?;
    prop_assert!(!ev.is_alive());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(2000),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_loop_matches_the_model(steps in prop::collection::vec(step(), 1..30)) {
        check_case(&steps)?;
    }
}
