//! evloop: a callback-based event loop, in the style of libuv, Node's event
//! loop and Python asyncio's low-level loop. No futures, no executors.
//!
//! # The model
//!
//! One thread runs the loop. Code running on it is a *synchronous task*;
//! nothing else runs meanwhile. An *asynchronous task* is work handed to the
//! loop together with a callback: a timer, an fd readiness watch, a job on the
//! pool. When the loop sees that the work can proceed (the timer is due, the
//! socket is readable, the job finished) it queues the callback, which later
//! runs on the loop thread with `&mut EventLoop`, and may schedule more work.
//! The loop blocks in the OS poller when nothing is runnable, and [`run`]
//! returns when nothing is left that could ever produce a callback.
//!
//! ```
//! use std::time::Duration;
//! use evloop::EventLoop;
//!
//! let mut ev = EventLoop::new()?;
//! ev.set_timeout(Duration::from_millis(20), |_| println!("three"));
//! ev.call_soon(|ev| {
//!     println!("one");
//!     ev.call_soon(|_| println!("two"));
//! });
//! ev.run()?; // prints one, two, three; returns when nothing is left
//! # std::io::Result::Ok(())
//! ```
//!
//! # One pass of the loop
//!
//! 1. cache the time ([`EventLoop::now`]);
//! 2. run due timers, earliest deadline first, equal deadlines in the order set;
//! 3. run the [`call_soon`](EventLoop::call_soon) callbacks queued before this
//!    step began (FIFO); what they queue runs next pass, so a callback that
//!    re-queues itself cannot starve timers, IO or other threads;
//! 4. if [`stop`](EventLoop::stop) was called, end here;
//! 5. poll for IO (blocking only when nothing is runnable) and run the
//!    callbacks of ready watchers;
//! 6. run closures posted from other threads through a [`LoopHandle`].
//!
//! No callback ever runs inside the call that scheduled it.
//!
//! # Liveness
//!
//! The loop is alive while any of these exists: a queued callback, a pending
//! timer, an active watcher, a pool job whose callback has not run, a
//! [`LoopHandle`]. Each of the last four can be *unref*'d (as in libuv and
//! Node): [`EventLoop::set_timer_ref`], [`EventLoop::set_watch_ref`],
//! [`LoopHandle::set_ref`]. Unref'd things still run while the loop runs for
//! other reasons; they just do not keep it running.
//!
//! # Panics
//!
//! A panicking callback unwinds out of [`run`]; the loop stays consistent and
//! the rest of its work stays queued, so `run()` can be called again. With
//! [`EventLoop::set_panic_handler`] the handler gets the panic instead and the
//! loop goes on (as asyncio's exception handler).
//!
//! # Logging
//!
//! The library logs through the `log` crate: `trace` for every pass and
//! dispatch, `debug` for registrations. `RUST_LOG=evloop=trace` with
//! `env_logger` shows the loop at work.
//!
//! [`run`]: EventLoop::run

mod combinators;
mod event_loop;
mod ffi;
pub mod fs;
mod handle;
mod io;
pub mod net;
mod pool;
pub mod process;
pub mod signal;
mod task;
mod timer;

pub use combinators::{gather, Completion};
pub use event_loop::EventLoop;
pub use handle::{Closed, LoopHandle};
pub use io::{Interest, Readiness, WatchId};
pub use pool::{JobError, JobId};
pub use timer::TimerId;

/// The README's Rust snippets run as doctests, so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
