//! [`gather`] and [`gather_all`]: hand out `n` tokens, hear back once all
//! of them completed (asyncio's `gather`, async.js's `parallel` without the
//! tasks).
//!
//! In callback style there is no `await`; "do these three things, then that"
//! is a counter shared by the three callbacks. A gather is that counter, with
//! the values kept in token order, the first error short-circuiting (or,
//! with [`gather_all`], every result kept), and the final callback queued on
//! the loop rather than run inside the last `complete`.

use std::cell::RefCell;
use std::io;
use std::panic::Location;
use std::rc::Rc;

use super::token::{Completion, Orphans, Waiter};
use crate::EventLoop;

/// Makes `n` tokens; `done` runs once, on a later pass: with every value in
/// token order once all completed `Ok`, or with the first error as soon as
/// one arrives (the values that come after it are dropped). With `n == 0`
/// it gets `Ok(vec![])` on the next pass.
///
/// A token dropped uncompleted counts as an error, [`Dropped`](crate::Dropped).
///
/// ```
/// use std::time::Duration;
/// use evloop::{gather, EventLoop};
///
/// let mut ev = EventLoop::new()?;
/// let tokens = gather(&mut ev, 3, |_ev, values: std::io::Result<Vec<u64>>| {
///     assert_eq!(values.unwrap(), [30, 10, 20]); // token order, not finishing order
/// });
/// for (token, ms) in tokens.into_iter().zip([30, 10, 20]) {
///     ev.set_timeout(Duration::from_millis(ms), move |ev| token.complete(ev, Ok(ms)));
/// }
/// ev.run()?;
/// # std::io::Result::Ok(())
/// ```
#[track_caller]
pub fn gather<T: 'static>(
    ev: &mut EventLoop,
    n: usize,
    done: impl FnOnce(&mut EventLoop, io::Result<Vec<T>>) + 'static,
) -> Vec<Completion<T>> {
    let made_at = Location::caller();
    let done = Completion::new(ev, done);
    if n == 0 {
        done.complete(ev, Ok(Vec::new()));
        return Vec::new();
    }
    let gather = Rc::new(Gather(RefCell::new(GatherState {
        values: (0..n).map(|_| None).collect(),
        left: n,
        done: Some(done),
    })));
    let orphans = Orphans::of(ev);
    (0..n)
        .map(|i| Completion::with(gather.clone(), i, made_at, orphans.clone()))
        .collect()
}

struct Gather<T: 'static>(RefCell<GatherState<T>>);

struct GatherState<T: 'static> {
    values: Vec<Option<T>>,
    left: usize,
    /// `None` once finished.
    done: Option<Completion<Vec<T>>>,
}

impl<T: 'static> Waiter<T> for Gather<T> {
    fn deliver(self: Rc<Self>, ev: &mut EventLoop, index: usize, result: io::Result<T>) {
        let mut s = self.0.borrow_mut();
        if s.done.is_none() {
            drop(s);
            drop(result); // after the first error: ignored
            return;
        }
        match result {
            Err(e) => {
                let done = s.done.take();
                let values = std::mem::take(&mut s.values);
                drop(s);
                drop(values);
                if let Some(done) = done {
                    done.complete(ev, Err(e));
                }
            }
            Ok(value) => {
                if let Some(slot) = s.values.get_mut(index) {
                    *slot = Some(value);
                }
                s.left -= 1;
                if s.left == 0 {
                    let done = s.done.take();
                    let values = std::mem::take(&mut s.values)
                        .into_iter()
                        .flatten()
                        .collect();
                    drop(s);
                    if let Some(done) = done {
                        done.complete(ev, Ok(values));
                    }
                }
            }
        }
    }

    fn wants(&self, _: usize) -> bool {
        self.0.try_borrow().map_or(true, |s| s.done.is_some())
    }
}

/// Makes `n` tokens; `done` runs once, on a later pass, when all of them
/// completed, with every result in token order, errors included (asyncio's
/// `gather(return_exceptions=True)`, JavaScript's `Promise.allSettled`).
/// A dropped token's result is `Err` with [`Dropped`](crate::Dropped) inside.
/// With `n == 0`, `done` gets an empty vector on the next pass.
#[track_caller]
pub fn gather_all<T: 'static>(
    ev: &mut EventLoop,
    n: usize,
    done: impl FnOnce(&mut EventLoop, Vec<io::Result<T>>) + 'static,
) -> Vec<Completion<T>> {
    let made_at = Location::caller();
    if n == 0 {
        ev.call_soon(move |ev| done(ev, Vec::new()));
        return Vec::new();
    }
    let gather = Rc::new(GatherAll(RefCell::new(GatherAllState {
        results: (0..n).map(|_| None).collect(),
        left: n,
        done: Some(Box::new(done)),
    })));
    let orphans = Orphans::of(ev);
    (0..n)
        .map(|i| Completion::with(gather.clone(), i, made_at, orphans.clone()))
        .collect()
}

type AllDone<T> = Box<dyn FnOnce(&mut EventLoop, Vec<io::Result<T>>)>;

struct GatherAll<T: 'static>(RefCell<GatherAllState<T>>);

struct GatherAllState<T: 'static> {
    results: Vec<Option<io::Result<T>>>,
    left: usize,
    done: Option<AllDone<T>>,
}

impl<T: 'static> Waiter<T> for GatherAll<T> {
    fn deliver(self: Rc<Self>, ev: &mut EventLoop, index: usize, result: io::Result<T>) {
        let mut s = self.0.borrow_mut();
        if let Some(slot) = s.results.get_mut(index) {
            *slot = Some(result);
        }
        s.left -= 1;
        if s.left == 0 {
            let results: Vec<_> = std::mem::take(&mut s.results)
                .into_iter()
                .flatten()
                .collect();
            if let Some(done) = s.done.take() {
                drop(s);
                ev.call_soon(move |ev| done(ev, results));
            }
        }
    }
}
