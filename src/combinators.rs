//! Completion tokens and `gather`: wait for several callbacks, then go on.
//!
//! In callback style there is no `await`; "do these three things, then that"
//! is a counter shared by the three callbacks. [`gather`] is that counter, as
//! asyncio's `gather`: each task gets a [`Completion`] and hands it its value;
//! when the last one completes, the final callback gets all values in the
//! order the completions were handed out.

use std::cell::RefCell;
use std::rc::Rc;

use crate::EventLoop;

type Final<T> = Box<dyn FnOnce(&mut EventLoop, Vec<T>)>;

struct State<T> {
    values: Vec<Option<T>>,
    left: usize,
    on_all: Option<Final<T>>,
}

/// One of the tokens returned by [`gather`]; complete it exactly once.
///
/// Dropping a token without completing it means the gather never finishes
/// (a warning is logged).
pub struct Completion<T> {
    state: Rc<RefCell<State<T>>>,
    index: usize,
    done: bool,
}

impl<T> std::fmt::Debug for Completion<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Completion")
            .field("index", &self.index)
            .field("done", &self.done)
            .finish()
    }
}

/// Makes `n` completion tokens; `on_all` runs once all of them completed,
/// with their values in token order. With `n == 0` it runs on the next pass.
///
/// ```
/// use std::time::Duration;
/// use evloop::{gather, EventLoop};
///
/// let mut ev = EventLoop::new()?;
/// let tokens = gather(&mut ev, 3, |_ev, values: Vec<u64>| assert_eq!(values, [30, 10, 20]));
/// for (token, ms) in tokens.into_iter().zip([30, 10, 20]) {
///     ev.set_timeout(Duration::from_millis(ms), move |ev| token.complete(ev, ms));
/// }
/// ev.run()?;
/// # std::io::Result::Ok(())
/// ```
pub fn gather<T: 'static>(
    ev: &mut EventLoop,
    n: usize,
    on_all: impl FnOnce(&mut EventLoop, Vec<T>) + 'static,
) -> Vec<Completion<T>> {
    if n == 0 {
        ev.call_soon(move |ev| on_all(ev, Vec::new()));
        return Vec::new();
    }
    let state = Rc::new(RefCell::new(State {
        values: (0..n).map(|_| None).collect(),
        left: n,
        on_all: Some(Box::new(on_all)),
    }));
    (0..n)
        .map(|index| Completion {
            state: state.clone(),
            index,
            done: false,
        })
        .collect()
}

impl<T> Completion<T> {
    /// Records this token's value; the last one runs the final callback now,
    /// from inside the completing callback (it is already on the loop thread).
    pub fn complete(mut self, ev: &mut EventLoop, value: T) {
        self.done = true;
        let finished = {
            let mut s = self.state.borrow_mut();
            s.values[self.index] = Some(value);
            s.left -= 1;
            if s.left == 0 {
                let values = s
                    .values
                    .drain(..)
                    .map(|v| v.expect("every token completed"))
                    .collect();
                s.on_all.take().map(|f| (f, values))
            } else {
                None
            }
        };
        if let Some((on_all, values)) = finished {
            on_all(ev, values);
        }
    }
}

impl<T> Drop for Completion<T> {
    fn drop(&mut self) {
        if !self.done {
            log::warn!(
                "evloop: a gather completion was dropped uncompleted; the gather never finishes"
            );
        }
    }
}
