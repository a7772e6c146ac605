//! Control flow over tasks: [`parallel`], [`series`], [`map_limit`],
//! [`each_limit`], [`race`], [`retry`], [`timeout`].
//!
//! A task is a closure that gets the loop and a [`Completion`] and completes
//! it, now or later. Every combinator calls its final callback exactly once,
//! on a later pass of the loop (never inside the call that started it, even
//! for empty input), because that callback is itself held as a token.
//!
//! `parallel`, `series` and the `_limit` pair share one engine: a flow that
//! starts items while fewer than `limit` are in flight. A task that
//! completes inside its own start call does not start the next one from
//! there (that recursion is what overflows the stack in naive callback
//! code): the engine's loop sees the completion when the task returns and
//! goes on, so a million synchronous tasks run in one flat loop. A task that
//! completes later queues the engine on the loop.

use std::cell::{Cell, RefCell};
use std::io;
use std::panic::Location;
use std::rc::Rc;
use std::time::Duration;

use super::token::{Completion, Orphans, Waiter};
use crate::{EventLoop, TimerId};

/// A boxed task, for lists of different closures:
/// `vec![Box::new(|ev, done| ...) as Task<u32>, ...]`.
pub type Task<T> = Box<dyn FnOnce(&mut EventLoop, Completion<T>)>;

/// Starts every task now; `done` gets their values in input order once all
/// completed `Ok`, or the first error as soon as it arrives (later results
/// are dropped). Empty input: `Ok(vec![])` on the next pass.
///
/// ```
/// use std::time::Duration;
/// use evloop::{parallel, EventLoop, Task};
///
/// let mut ev = EventLoop::new()?;
/// let tasks: Vec<Task<&str>> = vec![
///     Box::new(|ev, done| { ev.set_timeout(Duration::from_millis(20), |ev| done.complete(ev, Ok("slow"))); }),
///     Box::new(|ev, done| done.complete(ev, Ok("at once"))),
/// ];
/// parallel(&mut ev, tasks, |_ev, all| assert_eq!(all.unwrap(), ["slow", "at once"]));
/// ev.run()?;
/// # std::io::Result::Ok(())
/// ```
#[track_caller]
pub fn parallel<T, F>(
    ev: &mut EventLoop,
    tasks: impl IntoIterator<Item = F> + 'static,
    done: impl FnOnce(&mut EventLoop, io::Result<Vec<T>>) + 'static,
) where
    T: 'static,
    F: FnOnce(&mut EventLoop, Completion<T>) + 'static,
{
    let done = Completion::new(ev, done);
    start_flow(ev, tasks.into_iter(), usize::MAX, run_task, done);
}

/// Runs the tasks one after another, each started once the previous one
/// completed `Ok`; stops at the first error, which `done` gets. Otherwise
/// `done` gets every value in order. Tasks that complete at once run in a
/// flat loop: a million of them need no stack and no pass each.
///
/// ```
/// use evloop::{series, EventLoop};
///
/// let mut ev = EventLoop::new()?;
/// let tasks = (1..=3).map(|i| move |ev: &mut EventLoop, done: evloop::Completion<u32>| done.complete(ev, Ok(i * 10)));
/// series(&mut ev, tasks, |_ev, all| assert_eq!(all.unwrap(), [10, 20, 30]));
/// ev.run()?;
/// # std::io::Result::Ok(())
/// ```
#[track_caller]
pub fn series<T, F>(
    ev: &mut EventLoop,
    tasks: impl IntoIterator<Item = F> + 'static,
    done: impl FnOnce(&mut EventLoop, io::Result<Vec<T>>) + 'static,
) where
    T: 'static,
    F: FnOnce(&mut EventLoop, Completion<T>) + 'static,
{
    let done = Completion::new(ev, done);
    start_flow(ev, tasks.into_iter(), 1, run_task, done);
}

fn run_task<T, F>(ev: &mut EventLoop, task: F, token: Completion<T>)
where
    T: 'static,
    F: FnOnce(&mut EventLoop, Completion<T>),
{
    task(ev, token);
}

/// Calls `f` for each item with at most `limit` calls in flight (async.js's
/// `mapLimit`); `done` gets the values in input order, or the first error
/// (no item starts after it; later results are dropped). Items are taken
/// from the iterator only as they start.
///
/// # Errors
/// `InvalidInput` if `limit` is 0; `done` never runs then.
#[track_caller]
pub fn map_limit<I, T>(
    ev: &mut EventLoop,
    items: impl IntoIterator<Item = I> + 'static,
    limit: usize,
    f: impl FnMut(&mut EventLoop, I, Completion<T>) + 'static,
    done: impl FnOnce(&mut EventLoop, io::Result<Vec<T>>) + 'static,
) -> io::Result<()>
where
    I: 'static,
    T: 'static,
{
    if limit == 0 {
        return Err(zero_limit());
    }
    let done = Completion::new(ev, done);
    start_flow(ev, items.into_iter(), limit, f, done);
    Ok(())
}

/// [`map_limit`] for work that has no value: `done` gets `Ok(())` once
/// every call completed, or the first error.
///
/// # Errors
/// `InvalidInput` if `limit` is 0; `done` never runs then.
#[track_caller]
pub fn each_limit<I: 'static>(
    ev: &mut EventLoop,
    items: impl IntoIterator<Item = I> + 'static,
    limit: usize,
    f: impl FnMut(&mut EventLoop, I, Completion<()>) + 'static,
    done: impl FnOnce(&mut EventLoop, io::Result<()>) + 'static,
) -> io::Result<()> {
    map_limit(ev, items, limit, f, move |ev, r: io::Result<Vec<()>>| {
        done(ev, r.map(drop))
    })
}

pub(crate) fn zero_limit() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "evloop: a concurrency limit of 0 would never start anything",
    )
}

/// The engine behind `parallel`, `series` and `map_limit` (module docs).
struct Flow<It, F, T: 'static> {
    /// Out of here while the engine runs (in `Driving`).
    items: Option<It>,
    start: Option<F>,
    limit: usize,
    in_flight: usize,
    exhausted: bool,
    results: Vec<Option<T>>,
    /// `None` once finished.
    done: Option<Completion<Vec<T>>>,
    driving: bool,
    drive_queued: bool,
    made_at: &'static Location<'static>,
    orphans: Rc<Orphans>,
}

type Shared<It, F, T> = Rc<RefCell<Flow<It, F, T>>>;

fn start_flow<It, F, T>(
    ev: &mut EventLoop,
    items: It,
    limit: usize,
    start: F,
    done: Completion<Vec<T>>,
) where
    It: Iterator + 'static,
    F: FnMut(&mut EventLoop, It::Item, Completion<T>) + 'static,
    T: 'static,
{
    let flow = Rc::new(RefCell::new(Flow {
        items: Some(items),
        start: Some(start),
        limit,
        in_flight: 0,
        exhausted: false,
        results: Vec::new(),
        made_at: done.made_at(),
        done: Some(done),
        driving: false,
        drive_queued: false,
        orphans: Orphans::of(ev),
    }));
    drive(ev, &flow);
}

/// The engine's items and start function while it runs. Put back when it
/// stops; if a task or the iterator panics, dropped together with the
/// final token, whose waiter then gets `Dropped` instead of hanging.
struct Driving<'a, It, F, T: 'static> {
    flow: &'a Shared<It, F, T>,
    items: Option<It>,
    start: Option<F>,
}

impl<It, F, T: 'static> Drop for Driving<'_, It, F, T> {
    fn drop(&mut self) {
        let mut f = self.flow.borrow_mut();
        f.driving = false;
        let finished = f.done.is_none();
        let unwinding = std::thread::panicking();
        let done = if unwinding { f.done.take() } else { None };
        if !finished && !unwinding {
            f.items = self.items.take();
            f.start = self.start.take();
        }
        drop(f);
        drop(done);
    }
}

fn drive<It, F, T>(ev: &mut EventLoop, flow: &Shared<It, F, T>)
where
    It: Iterator + 'static,
    F: FnMut(&mut EventLoop, It::Item, Completion<T>) + 'static,
    T: 'static,
{
    let (made_at, orphans, items, start) = {
        let mut f = flow.borrow_mut();
        f.drive_queued = false;
        if f.driving || f.done.is_none() {
            return;
        }
        f.driving = true;
        (f.made_at, f.orphans.clone(), f.items.take(), f.start.take())
    };
    let mut running = Driving { flow, items, start };
    loop {
        let index = {
            let mut f = flow.borrow_mut();
            if f.done.is_none() {
                return; // failed meanwhile
            }
            if f.exhausted {
                if f.in_flight == 0 {
                    let done = f.done.take();
                    let values = std::mem::take(&mut f.results)
                        .into_iter()
                        .flatten()
                        .collect();
                    drop(f);
                    if let Some(done) = done {
                        done.complete(ev, Ok(values));
                    }
                }
                return;
            }
            if f.in_flight >= f.limit {
                return;
            }
            f.results.len()
        };
        let (Some(items), Some(start)) = (running.items.as_mut(), running.start.as_mut()) else {
            return;
        };
        match items.next() {
            None => flow.borrow_mut().exhausted = true,
            Some(item) => {
                {
                    let mut f = flow.borrow_mut();
                    f.in_flight += 1;
                    f.results.push(None);
                }
                let token = Completion::with(flow.clone(), index, made_at, orphans.clone());
                start(ev, item, token);
            }
        }
    }
}

impl<It, F, T> Waiter<T> for RefCell<Flow<It, F, T>>
where
    It: Iterator + 'static,
    F: FnMut(&mut EventLoop, It::Item, Completion<T>) + 'static,
    T: 'static,
{
    fn deliver(self: Rc<Self>, ev: &mut EventLoop, index: usize, result: io::Result<T>) {
        let mut f = self.borrow_mut();
        if f.done.is_none() {
            drop(f);
            drop(result); // the flow already failed
            return;
        }
        f.in_flight -= 1;
        match result {
            Ok(value) => {
                if let Some(slot) = f.results.get_mut(index) {
                    *slot = Some(value);
                }
                if !f.driving && !f.drive_queued {
                    f.drive_queued = true;
                    drop(f);
                    ev.call_soon(move |ev| drive(ev, &self));
                }
            }
            Err(e) => {
                let done = f.done.take();
                let leftovers = (
                    std::mem::take(&mut f.results),
                    f.items.take(),
                    f.start.take(),
                );
                drop(f);
                drop(leftovers);
                if let Some(done) = done {
                    done.complete(ev, Err(e));
                }
            }
        }
    }

    fn wants(&self, _: usize) -> bool {
        self.try_borrow().map_or(true, |f| f.done.is_some())
    }
}

/// Starts the tasks in order until one of them has completed; the first
/// completion, `Ok` or `Err`, goes to `done` and the rest are ignored (their
/// values dropped). A task that completes inside its start call wins before
/// the later ones start: they are then never started. No tasks at all:
/// `done` gets `InvalidInput` on the next pass.
///
/// ```
/// use std::time::Duration;
/// use evloop::{race, EventLoop, Task};
///
/// let mut ev = EventLoop::new()?;
/// let tasks: Vec<Task<&str>> = [("primary", 50), ("mirror", 10)]
///     .into_iter()
///     .map(|(name, ms)| -> Task<&str> {
///         Box::new(move |ev, done| { ev.set_timeout(Duration::from_millis(ms), move |ev| done.complete(ev, Ok(name))); })
///     })
///     .collect();
/// race(&mut ev, tasks, |_ev, first| assert_eq!(first.unwrap(), "mirror"));
/// ev.run()?;
/// # std::io::Result::Ok(())
/// ```
#[track_caller]
pub fn race<T, F>(
    ev: &mut EventLoop,
    tasks: impl IntoIterator<Item = F>,
    done: impl FnOnce(&mut EventLoop, io::Result<T>) + 'static,
) where
    T: 'static,
    F: FnOnce(&mut EventLoop, Completion<T>),
{
    let made_at = Location::caller();
    let done = Completion::new(ev, done);
    let race = Rc::new(Race(RefCell::new(Some(done))));
    let orphans = Orphans::of(ev);
    let mut started = 0;
    for task in tasks {
        if race.0.borrow().is_none() {
            break; // already won
        }
        task(
            ev,
            Completion::with(race.clone(), started, made_at, orphans.clone()),
        );
        started += 1;
    }
    if started == 0 {
        let done = race.0.borrow_mut().take();
        if let Some(done) = done {
            let err = io::Error::new(io::ErrorKind::InvalidInput, "evloop: a race of no tasks");
            done.complete(ev, Err(err));
        }
    }
}

/// `None` once a task won.
struct Race<T: 'static>(RefCell<Option<Completion<T>>>);

impl<T: 'static> Waiter<T> for Race<T> {
    fn deliver(self: Rc<Self>, ev: &mut EventLoop, _: usize, result: io::Result<T>) {
        let winner = self.0.borrow_mut().take();
        match winner {
            Some(done) => done.complete(ev, result),
            None => drop(result),
        }
    }

    fn wants(&self, _: usize) -> bool {
        self.0.try_borrow().map_or(true, |d| d.is_some())
    }
}

/// Runs `task` until it completes `Ok`, at most `times` attempts in all,
/// waiting `delay` after each failed one (async.js's `retry`). `done` gets
/// the first `Ok`, or the last attempt's error. The first attempt starts
/// inside this call; the others from a timer.
///
/// # Errors
/// `InvalidInput` if `times` is 0; `done` never runs then.
#[track_caller]
pub fn retry<T: 'static>(
    ev: &mut EventLoop,
    times: usize,
    delay: Duration,
    task: impl FnMut(&mut EventLoop, Completion<T>) + 'static,
    done: impl FnOnce(&mut EventLoop, io::Result<T>) + 'static,
) -> io::Result<()> {
    if times == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "evloop: retry with 0 attempts would never run the task",
        ));
    }
    let made_at = Location::caller();
    let done = Completion::new(ev, done);
    let retry = Rc::new(Retry(RefCell::new(RetryState {
        task: Some(Box::new(task)),
        left: times,
        delay,
        done: Some(done),
        made_at,
    })));
    attempt(ev, &retry);
    Ok(())
}

type RetryTask<T> = Box<dyn FnMut(&mut EventLoop, Completion<T>)>;

struct Retry<T: 'static>(RefCell<RetryState<T>>);

struct RetryState<T: 'static> {
    /// Out of here while an attempt starts.
    task: Option<RetryTask<T>>,
    left: usize,
    delay: Duration,
    /// `None` once finished.
    done: Option<Completion<T>>,
    made_at: &'static Location<'static>,
}

fn attempt<T: 'static>(ev: &mut EventLoop, retry: &Rc<Retry<T>>) {
    let (task, made_at) = {
        let mut s = retry.0.borrow_mut();
        if s.done.is_none() {
            return;
        }
        s.left -= 1;
        (s.task.take(), s.made_at)
    };
    let Some(mut task) = task else {
        // An earlier attempt panicked and took the task with it.
        let done = retry.0.borrow_mut().done.take();
        if let Some(done) = done {
            let err = io::Error::other("evloop: the retried task panicked");
            done.complete(ev, Err(err));
        }
        return;
    };
    let token = Completion::with(retry.clone(), 0, made_at, Orphans::of(ev));
    task(ev, token);
    let mut s = retry.0.borrow_mut();
    if s.done.is_some() {
        s.task = Some(task);
    } else {
        drop(s);
        drop(task);
    }
}

impl<T: 'static> Waiter<T> for Retry<T> {
    fn deliver(self: Rc<Self>, ev: &mut EventLoop, _: usize, result: io::Result<T>) {
        let mut s = self.0.borrow_mut();
        if s.done.is_none() {
            drop(s);
            drop(result);
            return;
        }
        if let (Err(e), true) = (&result, s.left > 0) {
            log::debug!("evloop: attempt failed ({e}); retrying in {:?}", s.delay);
            let delay = s.delay;
            drop(s);
            drop(result);
            ev.set_timeout(delay, move |ev| attempt(ev, &self));
            return;
        }
        let done = s.done.take();
        let task = s.task.take();
        drop(s);
        drop(task);
        if let Some(done) = done {
            done.complete(ev, result);
        }
    }

    fn wants(&self, _: usize) -> bool {
        self.0.try_borrow().map_or(true, |s| s.done.is_some())
    }
}

/// Runs `task`, giving up after `limit`: `done` gets the task's result if it
/// completes first, or `TimedOut` at the deadline (`now() + limit`, as for a
/// timer). A completion after the deadline is ignored and its value dropped
/// there and then.
#[track_caller]
pub fn timeout<T: 'static>(
    ev: &mut EventLoop,
    limit: Duration,
    task: impl FnOnce(&mut EventLoop, Completion<T>),
    done: impl FnOnce(&mut EventLoop, io::Result<T>) + 'static,
) {
    let made_at = Location::caller();
    let done = Completion::new(ev, done);
    let state = Rc::new(Timeout {
        done: RefCell::new(Some(done)),
        timer: Cell::new(None),
    });
    let on_time = state.clone();
    let timer = ev.set_timeout(limit, move |ev| {
        let done = on_time.done.borrow_mut().take();
        if let Some(done) = done {
            let err = io::Error::new(
                io::ErrorKind::TimedOut,
                format!("evloop: timed out after {limit:?}"),
            );
            done.complete(ev, Err(err));
        }
    });
    state.timer.set(Some(timer));
    let token = Completion::with(state, 0, made_at, Orphans::of(ev));
    task(ev, token);
}

struct Timeout<T: 'static> {
    /// `None` once the task completed or the deadline passed.
    done: RefCell<Option<Completion<T>>>,
    timer: Cell<Option<TimerId>>,
}

impl<T: 'static> Waiter<T> for Timeout<T> {
    fn deliver(self: Rc<Self>, ev: &mut EventLoop, _: usize, result: io::Result<T>) {
        let in_time = self.done.borrow_mut().take();
        match in_time {
            Some(done) => {
                if let Some(timer) = self.timer.take() {
                    ev.clear_timer(timer);
                }
                done.complete(ev, result);
            }
            None => drop(result), // late: ignored
        }
    }

    fn wants(&self, _: usize) -> bool {
        self.done.try_borrow().map_or(true, |d| d.is_some())
    }
}
