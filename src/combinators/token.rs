//! [`Completion`]: the token a task completes exactly once.
//!
//! Two bugs haunt callback code: the callback called twice (async.js's
//! "Callback was already called") and the callback never called, which
//! leaves a program hung with no clue. A token rules out both. Completing
//! consumes it, so a second call does not compile. Dropping it uncompleted
//! hands whoever waits an error, [`Dropped`], naming the file and line where
//! the token was made, and logs a warning with the same place.
//!
//! Delivering that error needs the loop, and a destructor has no
//! `&mut EventLoop`. So each loop has one [`Orphans`] list: a dropped token
//! parks its delivery there and posts one drain through an unref'd
//! [`LoopHandle`] (which wakes the loop if it is blocked and keeps it alive
//! until the drain ran). A drop that happens while the loop itself is being
//! dropped delivers nothing: nobody is left to hear it.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::panic::Location;
use std::rc::Rc;

use crate::{Closed, EventLoop, LoopHandle};

/// Whoever waits for tokens: a gather, a flow, a queue, a user callback.
///
/// `deliver` runs on the loop thread, often inside the task that completed
/// the token, so it only records the result and queues what comes next; it
/// never runs user code inline.
pub(crate) trait Waiter<T> {
    /// Takes the result of the token numbered `index`.
    fn deliver(self: Rc<Self>, ev: &mut EventLoop, index: usize, result: io::Result<T>);

    /// False once the result of token `index` would be ignored (a race was
    /// won, a timeout fired, a flow failed): its drop is then silent.
    fn wants(&self, _index: usize) -> bool {
        true
    }
}

/// A one-shot callback as a [`Waiter`]: [`Completion::new`]'s.
struct Callback<F>(Cell<Option<F>>);

impl<T, F> Waiter<T> for Callback<F>
where
    T: 'static,
    F: FnOnce(&mut EventLoop, io::Result<T>) + 'static,
{
    fn deliver(self: Rc<Self>, ev: &mut EventLoop, _: usize, result: io::Result<T>) {
        if let Some(f) = self.0.take() {
            ev.call_soon(move |ev| f(ev, result));
        }
    }
}

/// A task's promise to report back: complete it exactly once with a
/// `Result`, and whoever waits gets it, through the loop.
///
/// [`complete`](Completion::complete) consumes the token, so completing
/// twice does not compile. A token dropped uncompleted is not lost: whoever
/// waits gets `Err` with a [`Dropped`] inside, naming the file and line where
/// the token was made, and a warning with the same place is logged. Tokens
/// come from [`Completion::new`], [`gather`](crate::gather) and the
/// combinators; [`into_send`](Completion::into_send) makes one that another
/// thread can complete.
///
/// ```
/// use evloop::{Completion, EventLoop};
///
/// let mut ev = EventLoop::new()?;
/// let token = Completion::new(&mut ev, |_ev, result: std::io::Result<u32>| {
///     assert_eq!(result.unwrap(), 7);
/// });
/// ev.call_soon(move |ev| token.complete(ev, Ok(7)));
/// ev.run()?;
/// # std::io::Result::Ok(())
/// ```
pub struct Completion<T: 'static> {
    waiter: Option<Rc<dyn Waiter<T>>>,
    index: usize,
    made_at: &'static Location<'static>,
    orphans: Rc<Orphans>,
}

impl<T> fmt::Debug for Completion<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completion")
            .field("made_at", &format_args!("{}", self.made_at))
            .field("index", &self.index)
            .finish()
    }
}

impl<T: 'static> Completion<T> {
    /// A token whose result goes to `f`. `f` runs exactly once, on a later
    /// pass of the loop (never inside `complete`): with the completed result,
    /// or with a [`Dropped`] error if the token is dropped uncompleted.
    #[track_caller]
    pub fn new(
        ev: &mut EventLoop,
        f: impl FnOnce(&mut EventLoop, io::Result<T>) + 'static,
    ) -> Completion<T> {
        let orphans = Orphans::of(ev);
        Completion::with(
            Rc::new(Callback(Cell::new(Some(f)))),
            0,
            Location::caller(),
            orphans,
        )
    }

    pub(crate) fn with(
        waiter: Rc<dyn Waiter<T>>,
        index: usize,
        made_at: &'static Location<'static>,
        orphans: Rc<Orphans>,
    ) -> Completion<T> {
        Completion {
            waiter: Some(waiter),
            index,
            made_at,
            orphans,
        }
    }

    /// Hands `result` to whoever waits. Nothing of theirs runs inside this
    /// call: what the result unblocks runs on a later pass.
    pub fn complete(mut self, ev: &mut EventLoop, result: io::Result<T>) {
        if let Some(waiter) = self.waiter.take() {
            waiter.deliver(ev, self.index, result);
        }
    }

    /// Where the token was made (the place a [`Dropped`] error names).
    pub fn made_at(&self) -> &'static Location<'static> {
        self.made_at
    }

    /// A token that another thread can complete, delivering through a
    /// [`LoopHandle`]. It keeps the loop alive until it is completed or
    /// dropped (work that may still report back, like a pool job); dropped
    /// uncompleted, on any thread, it delivers [`Dropped`] naming this call.
    #[track_caller]
    pub fn into_send(self, ev: &mut EventLoop) -> SendCompletion<T>
    where
        T: Send,
    {
        let made_at = Location::caller();
        let slot = ev.layer_state::<SendSlots>().0.insert(Box::new(self));
        SendCompletion {
            handle: ev.handle(),
            slot: Some(slot),
            made_at,
            result: PhantomData,
        }
    }
}

impl<T: 'static> Drop for Completion<T> {
    fn drop(&mut self) {
        let Some(waiter) = self.waiter.take() else {
            return;
        };
        if !waiter.wants(self.index) {
            return;
        }
        let (index, made_at) = (self.index, self.made_at);
        self.orphans.adopt(
            made_at,
            Box::new(move |ev| waiter.deliver(ev, index, Err(Dropped::error(made_at)))),
        );
    }
}

/// The error inside the `io::Error` that whoever waits gets when a token
/// was dropped without being completed; it names where the token was made.
///
/// ```
/// use evloop::{Completion, Dropped, EventLoop};
///
/// let mut ev = EventLoop::new()?;
/// let token = Completion::new(&mut ev, |_ev, result: std::io::Result<()>| {
///     let err = result.unwrap_err();
///     let dropped = Dropped::find(&err).expect("a dropped token");
///     assert_eq!(dropped.location().file(), file!());
/// });
/// drop(token); // a warning is logged; the callback runs on the next pass
/// ev.run()?;
/// # std::io::Result::Ok(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dropped {
    made_at: &'static Location<'static>,
}

impl Dropped {
    pub(crate) fn error(made_at: &'static Location<'static>) -> io::Error {
        io::Error::other(Dropped { made_at })
    }

    /// Where the dropped token was made.
    pub fn location(&self) -> &'static Location<'static> {
        self.made_at
    }

    /// The `Dropped` inside `err`, if that is what `err` is.
    pub fn find(err: &io::Error) -> Option<&Dropped> {
        err.get_ref()?.downcast_ref()
    }
}

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "evloop: the completion made at {} was dropped without being completed",
            self.made_at
        )
    }
}

impl std::error::Error for Dropped {}

/// The delivery of a dropped token's error, waiting for the loop.
type Delivery = Box<dyn FnOnce(&mut EventLoop)>;

/// A loop's deliveries from dropped tokens, waiting for the loop (see the
/// module docs). One per loop, shared by its tokens.
pub(crate) struct Orphans {
    list: RefCell<Vec<Delivery>>,
    posted: Cell<bool>,
    handle: LoopHandle,
}

/// The loop's [`Orphans`], in its layer state. Dropped with the loop, it
/// drops what is parked (which breaks the cycle a parked delivery may form
/// with a token that holds the list).
#[derive(Default)]
struct OrphansLayer(Option<Rc<Orphans>>);

impl Drop for OrphansLayer {
    fn drop(&mut self) {
        if let Some(orphans) = self.0.take() {
            loop {
                let batch = std::mem::take(&mut *orphans.list.borrow_mut());
                if batch.is_empty() {
                    break;
                }
                drop(batch);
            }
        }
    }
}

impl Orphans {
    /// The loop's list, made on first use.
    pub(crate) fn of(ev: &mut EventLoop) -> Rc<Orphans> {
        if let Some(orphans) = &ev.layer_state::<OrphansLayer>().0 {
            return orphans.clone();
        }
        let mut handle = ev.handle();
        handle.set_ref(false);
        let orphans = Rc::new(Orphans {
            list: RefCell::new(Vec::new()),
            posted: Cell::new(false),
            handle,
        });
        ev.layer_state::<OrphansLayer>().0 = Some(orphans.clone());
        orphans
    }

    /// Parks the delivery of a token dropped uncompleted and makes sure a
    /// drain is posted.
    fn adopt(&self, made_at: &'static Location<'static>, deliver: Delivery) {
        if self.handle.is_closed() {
            log::debug!("evloop: completion made at {made_at} dropped with its loop");
            return; // `deliver` drops here, with nobody left to hear it
        }
        log::warn!(
            "evloop: the completion made at {made_at} was dropped without being completed; \
             whoever waits gets a Dropped error"
        );
        self.list.borrow_mut().push(deliver);
        if !self.posted.replace(true) && self.handle.call_soon(drain_orphans).is_err() {
            // The loop went away in between: nobody is left to deliver to.
            self.posted.set(false);
            let lost = std::mem::take(&mut *self.list.borrow_mut());
            drop(lost);
        }
    }
}

/// Delivers every parked error; posted through the loop's handle.
fn drain_orphans(ev: &mut EventLoop) {
    let Some(orphans) = ev.layer_state::<OrphansLayer>().0.clone() else {
        return;
    };
    orphans.posted.set(false);
    loop {
        let batch = std::mem::take(&mut *orphans.list.borrow_mut());
        if batch.is_empty() {
            break;
        }
        for deliver in batch {
            deliver(ev);
        }
    }
}

/// Tokens behind [`SendCompletion`]s, by slot, their type erased.
#[derive(Default)]
struct SendSlots(slab::Slab<Box<dyn Any>>);

fn take_slot<T: 'static>(ev: &mut EventLoop, slot: usize) -> Option<Completion<T>> {
    let slots = &mut ev.layer_state::<SendSlots>().0;
    let token = slots.try_remove(slot)?;
    token.downcast::<Completion<T>>().ok().map(|token| *token)
}

/// A [`Completion`] that any thread can complete: the result travels to the
/// loop through a [`LoopHandle`], and the waiting side runs there. Made by
/// [`Completion::into_send`]; keeps the loop alive until completed or
/// dropped. Dropped uncompleted it delivers [`Dropped`] and logs a warning.
///
/// ```
/// use evloop::{Completion, EventLoop};
///
/// let mut ev = EventLoop::new()?;
/// let token = Completion::new(&mut ev, |_ev, sum: std::io::Result<u64>| {
///     assert_eq!(sum.unwrap(), 5050);
/// })
/// .into_send(&mut ev);
/// std::thread::spawn(move || token.complete(Ok((1..=100).sum())).unwrap());
/// ev.run()?;
/// # std::io::Result::Ok(())
/// ```
pub struct SendCompletion<T: Send + 'static> {
    handle: LoopHandle,
    slot: Option<usize>,
    made_at: &'static Location<'static>,
    result: PhantomData<fn(T)>,
}

impl<T: Send + 'static> fmt::Debug for SendCompletion<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendCompletion")
            .field("made_at", &format_args!("{}", self.made_at))
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> SendCompletion<T> {
    /// Sends `result` to the loop, where it completes the token. `Err(Closed)`
    /// if the loop was dropped (the result is dropped with it).
    pub fn complete(mut self, result: io::Result<T>) -> Result<(), Closed> {
        let Some(slot) = self.slot.take() else {
            return Ok(());
        };
        self.handle.call_soon(move |ev| {
            if let Some(token) = take_slot::<T>(ev, slot) {
                token.complete(ev, result);
            }
        })
    }

    /// Where this token was made (by [`Completion::into_send`]).
    pub fn made_at(&self) -> &'static Location<'static> {
        self.made_at
    }
}

impl<T: Send + 'static> Drop for SendCompletion<T> {
    fn drop(&mut self) {
        let Some(slot) = self.slot.take() else {
            return;
        };
        let made_at = self.made_at;
        if self.handle.is_closed() {
            return;
        }
        log::warn!(
            "evloop: the completion made at {made_at} was dropped without being completed; \
             whoever waits gets a Dropped error"
        );
        let _ = self.handle.call_soon(move |ev| {
            if let Some(token) = take_slot::<T>(ev, slot) {
                token.complete(ev, Err(Dropped::error(made_at)));
            }
        });
    }
}
