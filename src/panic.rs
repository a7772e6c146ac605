//! Catching and reporting callback panics, one policy for every kind of
//! callback (guarantee 8).
//!
//! Every callback runs inside [`catch`], at a point where the loop's own
//! state is consistent (the callback was taken out of its queue or table
//! first). A caught panic goes to [`EventLoop::panicked`]: to the handler set
//! with [`EventLoop::set_panic_handler`] (asyncio's exception handler), or,
//! with none, out of `run()` by `resume_unwind`, leaving the rest of the
//! loop's work queued for a later `run()`.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

use crate::EventLoop;

type Handler = Box<dyn FnMut(&mut EventLoop, Box<dyn Any + Send>)>;

/// The loop's panic handler, if any.
#[derive(Default)]
pub(crate) struct PanicPolicy {
    handler: Option<Handler>,
}

/// Calls `f`, catching a panic. The loop's own state is always consistent
/// at the points where callbacks run, so unwind safety is asserted.
#[inline]
pub(crate) fn catch(f: impl FnOnce()) -> Result<(), Box<dyn Any + Send>> {
    panic::catch_unwind(AssertUnwindSafe(f))
}

impl EventLoop {
    /// Installs a handler for panics in callbacks (asyncio's exception
    /// handler). Without one, a panic unwinds out of `run()`. With one, the
    /// handler gets the panic payload and the loop goes on. A handler that
    /// panics itself unwinds out of `run()` and is kept.
    pub fn set_panic_handler(
        &mut self,
        handler: impl FnMut(&mut EventLoop, Box<dyn Any + Send>) + 'static,
    ) {
        self.panics.handler = Some(Box::new(handler));
    }

    /// Removes the panic handler: panics unwind out of `run()` again.
    pub fn clear_panic_handler(&mut self) {
        self.panics.handler = None;
    }

    /// After a callback that may have closed its own watcher or cleared its
    /// own interval: drops what it closed (`closed`, whose `Drop` is user
    /// code and may panic too), then reports the callback's panic and the
    /// drop's, in that order. The drop comes first so that it never runs
    /// while a panic unwinds (a second panic would abort).
    pub(crate) fn after_callback<T>(
        &mut self,
        result: Result<(), Box<dyn Any + Send>>,
        closed: Option<T>,
    ) {
        let dropped = match closed {
            Some(c) => catch(|| drop(c)),
            None => Ok(()),
        };
        if let Err(p) = result {
            self.panicked(p);
        }
        if let Err(p) = dropped {
            self.panicked(p);
        }
    }

    /// A callback panicked and the loop is consistent again: hand the payload
    /// to the handler, or unwind out of `run()`.
    pub(crate) fn panicked(&mut self, payload: Box<dyn Any + Send>) {
        let Some(mut handler) = self.panics.handler.take() else {
            panic::resume_unwind(payload);
        };
        let result = catch(|| handler(self, payload));
        if self.panics.handler.is_none() {
            self.panics.handler = Some(handler);
        }
        if let Err(p) = result {
            panic::resume_unwind(p);
        }
    }
}
