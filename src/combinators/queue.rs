//! [`Queue`]: a work queue with a concurrency limit (async.js's `queue`).
//!
//! Items wait in push order; a worker call starts for each while fewer than
//! `limit` are in flight. Each item's callback is held as a token, so it
//! runs exactly once: with the worker's result, or with an error if the
//! queue is killed before the item started (or anything drops it).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::panic::Location;
use std::rc::Rc;

use super::flow::zero_limit;
use super::token::{Completion, Orphans, Waiter};
use crate::EventLoop;

type Worker<I, T> = Box<dyn FnMut(&mut EventLoop, I, Completion<T>)>;
type Drain = Box<dyn FnMut(&mut EventLoop)>;

/// A queue of items handed to a worker, at most `limit` at a time, with
/// pause, resume, kill and a drain callback. Cloning gives another handle to
/// the same queue.
///
/// The worker starts on a later pass than the `push` (never inside it). The
/// drain callback runs, through the loop, each time the last item in flight
/// completed and none is waiting, after that item's own callback.
///
/// A worker that captures its own queue (to push more work) forms a cycle;
/// [`kill`](Queue::kill) breaks it, or the worker can hold a clone made
/// after the fact in an `Rc<RefCell<Option<Queue>>>` it clears when done.
///
/// ```
/// use std::time::Duration;
/// use evloop::{EventLoop, Queue};
///
/// let mut ev = EventLoop::new()?;
/// let queue = Queue::new(2, |ev: &mut EventLoop, ms: u64, done: evloop::Completion<u64>| {
///     ev.set_timeout(Duration::from_millis(ms), move |ev| done.complete(ev, Ok(ms * 2)));
/// })?;
/// queue.set_drain(|_ev| println!("all done"));
/// for ms in [30, 10, 20] {
///     queue.push(&mut ev, ms, move |_ev, doubled| println!("{ms} -> {}", doubled.unwrap()))?;
/// }
/// ev.run()?;
/// # std::io::Result::Ok(())
/// ```
pub struct Queue<I: 'static, T: 'static> {
    state: Rc<RefCell<QueueState<I, T>>>,
}

impl<I: 'static, T: 'static> Clone for Queue<I, T> {
    fn clone(&self) -> Self {
        Queue {
            state: self.state.clone(),
        }
    }
}

impl<I: 'static, T: 'static> fmt::Debug for Queue<I, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.state.try_borrow() {
            Ok(s) => f
                .debug_struct("Queue")
                .field("limit", &s.limit)
                .field("waiting", &s.waiting.len())
                .field("running", &s.running.len())
                .field("paused", &s.paused)
                .field("killed", &s.killed)
                .finish(),
            Err(_) => f.debug_struct("Queue").finish_non_exhaustive(),
        }
    }
}

struct QueueState<I: 'static, T: 'static> {
    /// Out of here while the queue starts items; `None` once killed.
    worker: Option<Worker<I, T>>,
    limit: usize,
    waiting: VecDeque<(I, Completion<T>)>,
    /// The callbacks of the items in flight, by their token's index.
    running: slab::Slab<Completion<T>>,
    drain: Option<Drain>,
    paused: bool,
    killed: bool,
    driving: bool,
    drive_queued: bool,
    drain_queued: bool,
    made_at: &'static Location<'static>,
}

impl<I: 'static, T: 'static> Queue<I, T> {
    /// A queue that runs `worker` on at most `limit` items at a time.
    ///
    /// # Errors
    /// `InvalidInput` if `limit` is 0.
    #[track_caller]
    pub fn new(
        limit: usize,
        worker: impl FnMut(&mut EventLoop, I, Completion<T>) + 'static,
    ) -> io::Result<Queue<I, T>> {
        if limit == 0 {
            return Err(zero_limit());
        }
        Ok(Queue {
            state: Rc::new(RefCell::new(QueueState {
                worker: Some(Box::new(worker)),
                limit,
                waiting: VecDeque::new(),
                running: slab::Slab::new(),
                drain: None,
                paused: false,
                killed: false,
                driving: false,
                drive_queued: false,
                drain_queued: false,
                made_at: Location::caller(),
            })),
        })
    }

    /// Adds `item` at the back; `done` runs once with the worker's result
    /// for it (or `Interrupted` if the queue is killed before it started).
    ///
    /// # Errors
    /// `NotConnected` if the queue was killed; `done` never runs then.
    #[track_caller]
    pub fn push(
        &self,
        ev: &mut EventLoop,
        item: I,
        done: impl FnOnce(&mut EventLoop, io::Result<T>) + 'static,
    ) -> io::Result<()> {
        if self.state.borrow().killed {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "evloop: push to a killed queue",
            ));
        }
        let done = Completion::new(ev, done);
        self.state.borrow_mut().waiting.push_back((item, done));
        schedule(ev, &self.state);
        Ok(())
    }

    /// Sets the callback that runs each time the queue runs dry: nothing in
    /// flight and nothing waiting (replacing an earlier one).
    pub fn set_drain(&self, f: impl FnMut(&mut EventLoop) + 'static) {
        let mut s = self.state.borrow_mut();
        if !s.killed {
            s.drain = Some(Box::new(f));
        }
    }

    /// Starts no more items until [`resume`](Queue::resume); those in flight
    /// go on.
    pub fn pause(&self) {
        self.state.borrow_mut().paused = true;
    }

    /// Starts items again (on a later pass).
    pub fn resume(&self, ev: &mut EventLoop) {
        self.state.borrow_mut().paused = false;
        schedule(ev, &self.state);
    }

    /// Ends the queue: the waiting items' callbacks get `Interrupted` (on a
    /// later pass), the worker and drain callback are dropped, and pushes
    /// fail. Items in flight finish and their callbacks run. True if this
    /// call ended the queue, false if it was already killed.
    pub fn kill(&self, ev: &mut EventLoop) -> bool {
        let (waiting, worker, drain) = {
            let mut s = self.state.borrow_mut();
            if s.killed {
                return false;
            }
            s.killed = true;
            (
                std::mem::take(&mut s.waiting),
                s.worker.take(),
                s.drain.take(),
            )
        };
        drop((worker, drain));
        for (item, done) in waiting {
            drop(item);
            let err = io::Error::new(io::ErrorKind::Interrupted, "evloop: the queue was killed");
            done.complete(ev, Err(err));
        }
        true
    }

    /// Items waiting to start.
    pub fn len(&self) -> usize {
        self.state.borrow().waiting.len()
    }

    /// True if no item is waiting to start.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Items in flight (started, not yet completed).
    pub fn running(&self) -> usize {
        self.state.borrow().running.len()
    }

    /// True if nothing is waiting and nothing is in flight.
    pub fn is_idle(&self) -> bool {
        let s = self.state.borrow();
        s.waiting.is_empty() && s.running.is_empty()
    }

    /// True between [`pause`](Queue::pause) and [`resume`](Queue::resume).
    pub fn is_paused(&self) -> bool {
        self.state.borrow().paused
    }
}

type Shared<I, T> = Rc<RefCell<QueueState<I, T>>>;

/// Queues a run of the starter, unless one is queued or running.
fn schedule<I: 'static, T: 'static>(ev: &mut EventLoop, state: &Shared<I, T>) {
    let mut s = state.borrow_mut();
    if s.driving || s.drive_queued || s.paused || s.killed || s.waiting.is_empty() {
        return;
    }
    s.drive_queued = true;
    drop(s);
    let state = state.clone();
    ev.call_soon(move |ev| drive(ev, &state));
}

/// Puts the worker back when the starter stops, unwinding included (a
/// panicking worker loses only its own item, which gets `Dropped`).
struct Driving<'a, I: 'static, T: 'static> {
    state: &'a Shared<I, T>,
    worker: Option<Worker<I, T>>,
}

impl<I: 'static, T: 'static> Drop for Driving<'_, I, T> {
    fn drop(&mut self) {
        let mut s = self.state.borrow_mut();
        s.driving = false;
        let worker = self.worker.take();
        if s.killed {
            drop(s);
            drop(worker);
        } else if s.worker.is_none() {
            s.worker = worker;
        }
    }
}

fn drive<I: 'static, T: 'static>(ev: &mut EventLoop, state: &Shared<I, T>) {
    let (worker, made_at) = {
        let mut s = state.borrow_mut();
        s.drive_queued = false;
        if s.driving || s.killed {
            return;
        }
        s.driving = true;
        (s.worker.take(), s.made_at)
    };
    let mut running = Driving { state, worker };
    let orphans = Orphans::of(ev);
    loop {
        let (item, index) = {
            let mut s = state.borrow_mut();
            if s.killed || s.paused || s.running.len() >= s.limit {
                return;
            }
            let Some((item, done)) = s.waiting.pop_front() else {
                return;
            };
            (item, s.running.insert(done))
        };
        let Some(worker) = running.worker.as_mut() else {
            return;
        };
        let token = Completion::with(state.clone(), index, made_at, orphans.clone());
        worker(ev, item, token);
    }
}

impl<I: 'static, T: 'static> Waiter<T> for RefCell<QueueState<I, T>> {
    fn deliver(self: Rc<Self>, ev: &mut EventLoop, index: usize, result: io::Result<T>) {
        let mut s = self.borrow_mut();
        let done = s.running.try_remove(index);
        let dry = s.waiting.is_empty() && s.running.is_empty();
        let drain = dry && !s.killed && s.drain.is_some() && !s.drain_queued;
        if drain {
            s.drain_queued = true;
        }
        drop(s);
        if let Some(done) = done {
            done.complete(ev, result);
        }
        if drain {
            let me = self.clone();
            ev.call_soon(move |ev| run_drain(ev, &me));
        }
        schedule(ev, &self);
    }
}

/// Runs the drain callback if the queue is still dry.
fn run_drain<I: 'static, T: 'static>(ev: &mut EventLoop, state: &Shared<I, T>) {
    let drain = {
        let mut s = state.borrow_mut();
        s.drain_queued = false;
        if !(s.waiting.is_empty() && s.running.is_empty()) || s.killed {
            return;
        }
        s.drain.take()
    };
    let Some(mut drain) = drain else {
        return;
    };
    drain(ev);
    let mut s = state.borrow_mut();
    if s.drain.is_none() && !s.killed {
        s.drain = Some(drain);
    } else {
        drop(s);
        drop(drain);
    }
}
