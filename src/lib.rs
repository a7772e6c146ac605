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
//! # Guarantees
//!
//! Code and tests cite these by number (a test named `g4_...` proves
//! guarantee 4).
//!
//! 1. `call_soon` callbacks run in FIFO order.
//! 2. Timers run in deadline order; equal deadlines run in the order set.
//! 3. A deadline is `now() + delay`, where `now()` is the loop time cached at
//!    the start of the pass (as in libuv); a timer never runs before it.
//! 4. A `call_soon` callback runs in the first ready phase that begins after
//!    it was queued: one queued by a ready callback runs in a later pass,
//!    after the loop looked at timers and IO again, so a callback that
//!    re-queues itself forever cannot starve a timer or a socket (one queued
//!    by a timer callback runs in the same pass's ready phase).
//! 5. A cleared timer never runs; clearing from inside any callback, the
//!    interval's own included, takes effect at once.
//! 6. `run()` returns when no callback is queued, no timer is pending, no
//!    watcher is active, no pool job and no [`LoopHandle`] is outstanding;
//!    anything that should not keep the loop alive can be unref'd.
//! 7. [`stop()`](EventLoop::stop) makes `run()` return at the end of the
//!    current pass, before it polls again; nothing is dropped, and a later
//!    `run()` resumes.
//! 8. A panicking callback unwinds out of `run()`, leaving the loop
//!    consistent and the rest of its work queued; or, with a panic handler,
//!    the handler gets it and the loop goes on.
//! 9. Dropping the loop drops every pending callback exactly once; none runs
//!    after the drop, and [`LoopHandle::call_soon`] returns `Err(Closed)`.
//! 10. The C API never lets a Rust panic cross into C.
//! 11. No callback runs inside the call that scheduled it (`call_soon`,
//!     `set_timeout`, a write, a close): a call that fails returns the error
//!     and its callback never runs.
//! 12. `run`, `run_once` or `run_nowait` called from inside one of the loop's
//!     callbacks returns an error; it never recurses or corrupts state.
//! 13. Timers keep full `Instant` resolution and never run early; an interval
//!     re-arms from the loop time its call started and never runs twice in
//!     one pass after a stall.
//!
//! # Ids and handles: one convention
//!
//! Ending something is idempotent and says whether it did anything:
//! [`clear_timer`](EventLoop::clear_timer), [`unwatch`](EventLoop::unwatch),
//! [`cancel_job`](EventLoop::cancel_job), [`signal::stop_signal`], and
//! `close` on a stream, server, UDP socket or [`fs::FsWatcher`] return `true`
//! if this call ended it and `false` if it had already ended. ([`fs::File::close`]
//! is a pool job that reports what `close(2)` said, so closing a file twice is
//! an error, `EBADF`, like any other call on a closed file.) Anything else asked of a thing that
//! has ended fails: `NotFound` for a stale id (timer, watcher, signal),
//! `NotConnected` for a closed stream, server or socket. Ids are never
//! reused, so a stale id never reaches a newer thing.
//!
//! Calls that take a completion callback come in two forms: without one
//! (`write`, `close`, `shutdown`, `send_to`) and with one (`write_with`,
//! `close_with`, `shutdown_with`, `send_to_with`).
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
//! # Diagnostics
//!
//! Why is the loop alive? [`EventLoop::alive_report`] lists everything that
//! keeps it running, with the source line that created each thing. A
//! callback that runs longer than
//! [`set_slow_callback_threshold`](EventLoop::set_slow_callback_threshold)
//! (100 ms by default) is logged with its creation site.
//! [`EventLoop::metrics`] counts passes, callbacks, idle time and timer lag.
//! [`EventLoop::start_trace`] (or `EVLOOP_TRACE=out.json`) records a timeline
//! for Perfetto. [`EventLoop::with_manual_clock`] makes timer tests run in
//! milliseconds. See [`diag`].
//!
//! # Panics
//!
//! A panicking callback unwinds out of [`run`]; the loop stays consistent and
//! the rest of its work stays queued, so `run()` can be called again. With
//! [`EventLoop::set_panic_handler`] the handler gets the panic instead and the
//! loop goes on (as asyncio's exception handler).
//!
//! # Bad input and faults
//!
//! What a caller gets for each bad input or fault that the tests try (the
//! test that tries it is named in brackets; C answers are negative errno
//! values, see `include/evloop.h`). Nothing here panics inside the library,
//! and no accepted callback is lost: it runs, or it is dropped exactly once.
//!
//! | bad input or fault | what the caller gets |
//! |---|---|
//! | a stale, cleared or already-fired `TimerId` | `clear_timer` returns `false`; never hits a newer timer (`timers::stale_timer_ids_never_hit_a_newer_timer`) |
//! | a delay of `Duration::MAX` | saturates to "never"; no overflow, no panic (`timers::huge_delays_never_panic_or_overflow`) |
//! | `run`/`run_once`/`run_nowait` inside a callback | `Err(ResourceBusy)`; C: `-EBUSY` (`run_modes::g12_reentrant_run_is_an_error`) |
//! | a panic in any callback | unwinds out of `run()`, the loop stays usable and the rest queued; or goes to the panic handler. A panicking read callback is kept; the write callbacks due after a panicking one run next pass (`panics`, `tcp::a_panicking_*`) |
//! | a panic reaching the C API | `-ENOTRECOVERABLE`, never unwinding into C (`ffi::tests::g10_a_panic_never_crosses_into_c`) |
//! | `watch_raw_fd(-1, ..)` | `EBADF` |
//! | watching a regular file or a directory | `EPERM` (`io::regular_files_and_directories_cannot_be_watched`) |
//! | watching an fd this loop already watches, even with no interest | `AlreadyExists`; C: `-EEXIST` (`io::a_paused_fd_cannot_be_watched_twice`) |
//! | an unknown `WatchId` | `set_interest`: `NotFound`; `unwatch`: `false` |
//! | `take_watched` with the wrong type, or inside its own callback | `InvalidInput` (watcher untouched), `ResourceBusy` |
//! | a hung-up or failed fd that nobody reads | delivered once, then parked: no spin (`io::hangup_reaches_the_callback_and_does_not_spin`) |
//! | a server whose process is out of fds (`EMFILE`, `ENFILE`, ...) | accepting pauses with a backoff (5 ms to 1 s); the callback gets the error once per episode; waiting clients are served when fds are free; same in C (`faults::emfile_*`, `c_api::emfile_c_server_pauses_and_reports_once`) |
//! | `Server::close` inside its connection callback | no further connection is delivered (`tcp::server_close_inside_the_connection_callback_takes_effect_at_once`) |
//! | a write after `close` / after `shutdown` | `Err(NotConnected)` / `Err(EPIPE)`, the callback never runs |
//! | closing a stream twice | `Err(NotConnected)`; a server or UDP socket: `false` |
//! | a peer that vanished | `EPIPE` or `ECONNRESET` in the write or read callback, never SIGPIPE (`tcp::writing_to_a_peer_that_is_gone_is_epipe_not_sigpipe`, `tcp::peer_reset_mid_stream_reaches_the_read_callback`) |
//! | an ICMP error on a UDP socket (with or without `IP_RECVERR`) | `Err(ConnectionRefused)` in the receive callback; receiving goes on (`udp::icmp_errors_are_reported_and_receiving_goes_on`) |
//! | calls on a closed `UdpSocket` through a clone | `Err(NotConnected)`; the fd was released at close (`udp::close_releases_the_fd_while_clones_live`) |
//! | any call on a closed `fs::File`, closing it twice | `Err(EBADF)`, "the file is closed", at once; the callback never runs (`fs::a_closed_file_refuses_every_call_and_a_second_close`) |
//! | `File::read_at` with a length that cannot be allocated | `OutOfMemory` in the callback; no panic, no abort (`fs::an_impossible_read_length_is_out_of_memory_not_a_crash`) |
//! | `fs::chmod` with bits above `0o7777` | `InvalidInput` at once |
//! | `fs::watch` of a missing path | `NotFound` naming the path; no fd left open (`fs_watch::watching_a_missing_path_is_a_clear_error`) |
//! | the inotify event queue overflowing | `FsEventKind::Overflow` to every watcher; watching goes on (`fs_watch::a_queue_overflow_is_reported_and_watching_goes_on`) |
//! | a panic in a watch callback | the loop's panic policy; the watcher is kept and the events after it are delivered next pass (`fs_watch::a_panicking_callback_leaves_the_watcher_and_the_queued_events`) |
//! | `net::lookup_addr` of an address with no name | `NotFound` in the callback (`dns::lookup_addr_of_an_address_with_no_name_is_an_error`) |
//! | `UdpSocket::close` inside its own receive callback | the fd is closed at once; the port can be bound again before the callback returns (`udp::udp_close_inside_recv_callback_releases_the_port_at_once`) |
//! | a UDP send with an address on a connected socket, or without one on an unconnected socket; `connect` twice; `disconnect` when not connected; `connect` to port 0 | `EISCONN`; `EDESTADDRREQ`; `EISCONN`; `ENOTCONN`; `InvalidInput` (`udp::connect_send_and_disconnect_as_libuv`, `udp::connect_to_bad_addresses_fails_and_leaves_the_socket_unconnected`) |
//! | an ICMP error for a connected UDP socket that nobody receives on | the next send fails with `ECONNREFUSED` (`udp::icmp_errors_on_a_connected_socket_reach_the_next_receive_or_send`) |
//! | `try_send` while sends are queued | `WouldBlock`, nothing sent (`net::udp::tests::try_send_while_a_send_is_queued_would_block`) |
//! | a forbidden or out-of-range signal number | `InvalidInput` (`signal::sigkill_sigstop_and_bad_numbers_are_errors`) |
//! | the last watcher of a signal stops | handled as before the first watch: the previous disposition is back (`signal::the_last_watcher_restores_the_previous_disposition`, `signal::sigterm_ends_the_process_again_after_the_last_watcher_stopped`), unless a handler was installed over evloop's since: that one stays and keeps working (`signal::a_signal_hook_registration_made_while_watching_outlives_the_watcher`) |
//! | SIGCHLD inherited as ignored, or `SA_NOCLDWAIT` | set back to the default at `spawn`; exit callbacks work (`faults::children_are_reaped_by_us_even_if_sigchld_was_ignored`) |
//! | a spawning thread with signals blocked or ignored | the child starts with none blocked or ignored (`process::children_start_with_default_signal_state`) |
//! | a program that does not exist | `Err(NotFound)` from `spawn`, no callback |
//! | extra fd numbers below 3 or repeated | `InvalidInput` |
//! | a missing program with extra fds at any numbers | `Err(NotFound)`; nothing written to the passed fds (`process::spawn_of_a_missing_program_with_extra_fds_fails_and_writes_nothing_to_them`) |
//! | `uid`/`gid` without the privilege to change ids | `Err(PermissionDenied)` (`EPERM`) from `spawn`, no child left (`process::uid_or_gid_without_privilege_is_permission_denied`) |
//! | NUL bytes in the program, arguments or environment; an environment name empty or holding `=` | `InvalidInput` (`process::nul_bytes_and_bad_environment_names_are_invalid_input`) |
//! | `process::kill` with a bad signal number / a pid nobody has | `InvalidInput` / `ESRCH` (`process::kill_any_pid_probes_signals_and_reports_errors`) |
//! | the fd limit reached during `spawn` | `Err(EMFILE)`; no child, no fd left (`faults::a_spawn_under_any_fd_limit_leaves_no_child_and_no_fd`) |
//! | a failure after the fork (no pidfd) | `Err`; the child is killed and reaped, its pipes closed (`faults::a_spawn_that_fails_after_the_fork_leaves_no_child_and_no_fd`) |
//! | no pidfd support (`ENOSYS`) | exits are found through SIGCHLD (`faults::without_pidfds_the_exit_is_found_through_sigchld`) |
//! | no pool thread can start | `spawn_blocking` fails and the job never runs; if threads run, the job waits for them (`faults::a_pool_thread_that_cannot_start_never_leaves_a_job_behind`) |
//! | a panic in pool work | `JobError::Panicked` in `done`; the thread survives |
//! | `cancel_job` of a running or finished job | `false`; C: `-EBUSY`; an id never issued: `-ENOENT` |
//! | a pool size of 0 or over 1024 | `InvalidInput` |
//! | posting to a dropped loop | `Err(Closed)`; C: `-ESHUTDOWN` |
//! | dropping the loop with work pending | every pending closure dropped exactly once, none run (`handle::g9_dropping_the_loop_drops_every_pending_callback_once`) |
//! | C: NULL pointers, unknown ids, stale stream or server pointers, bad modes or events | `-EINVAL` or `-ENOENT`; never a crash (`tests/c/api_test.c`, `tests/c/hostile_test.c`) |
//! | C: `evl_loop_free` while alive or from its own callback | `-EBUSY` |
//! | `advance` on a loop with the real clock | `InvalidInput` (`diag_clock::advance_on_a_real_clock_is_invalid_input`) |
//! | a timeline file that cannot be created; a second `start_trace` | the OS error (`NotFound`, ...), the loop runs on; `AlreadyExists`; C: `-ENOENT`, `-EEXIST` (`diag_trace::a_file_that_cannot_be_created_is_an_error_and_the_loop_runs_on`) |
//! | C: `evl_alive_report` with a short buffer | truncated and NUL-terminated; returns the full length, as `snprintf` (`tests/c/hostile_test.c`) |
//!
//! # Composing callbacks
//!
//! Without `await`, "start these, then go on when all are done" is code you
//! write. Here is the seed's count example three ways: three counts share
//! one thread, each prints "One", waits a second, prints "Two"; when all
//! three are done the program says how long it took (one second, not three).
//!
//! **Nested callbacks**: a counter shared by the three timer callbacks.
//!
//! ```
//! use std::{cell::Cell, rc::Rc, time::{Duration, Instant}};
//! use evloop::EventLoop;
//!
//! let mut ev = EventLoop::new()?;
//! let start = Instant::now();
//! let left = Rc::new(Cell::new(3));
//! for _ in 0..3 {
//!     println!("One");
//!     let left = left.clone();
//!     ev.set_timeout(Duration::from_secs(1), move |_ev| {
//!         println!("Two");
//!         left.set(left.get() - 1);
//!         if left.get() == 0 {
//!             println!("count executed in {:.2} seconds", start.elapsed().as_secs_f64());
//!         }
//!     });
//! }
//! ev.run()?;
//! # std::io::Result::Ok(())
//! ```
//!
//! It works, and it needs nothing. But the counter, the error path and the
//! "exactly once" are yours: a path that forgets to count down leaves the
//! program waiting with no clue why, one that counts twice finishes early,
//! and every new step ("then fetch", "then retry") nests one level deeper.
//!
//! **Combinators**: each count gets a [`Completion`], and [`parallel`]
//! waits for all three.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use evloop::{parallel, Completion, EventLoop};
//!
//! fn count(ev: &mut EventLoop, done: Completion<()>) {
//!     println!("One");
//!     ev.set_timeout(Duration::from_secs(1), move |ev| {
//!         println!("Two");
//!         done.complete(ev, Ok(()));
//!     });
//! }
//!
//! let mut ev = EventLoop::new()?;
//! let start = Instant::now();
//! parallel(&mut ev, (0..3).map(|_| count), move |_ev, all| {
//!     all.expect("no count fails");
//!     println!("count executed in {:.2} seconds", start.elapsed().as_secs_f64());
//! });
//! ev.run()?;
//! # std::io::Result::Ok(())
//! ```
//!
//! The bookkeeping moved into the library, and the two classic bugs are
//! gone: `complete` consumes the token, so completing twice does not
//! compile; a token dropped uncompleted hands the waiter an error,
//! [`Dropped`], naming the file and line where it was made (and logs a
//! warning), so nothing hangs silently. Errors travel as `io::Result`: the
//! first one ends `parallel` at once. The final callback runs exactly once,
//! on a later pass (never inside the call that started it, even for empty
//! input). The same shape composes further: [`series`], [`map_limit`] /
//! [`each_limit`] (at most `n` in flight), [`race`], [`retry`], [`timeout`],
//! a [`Queue`] with a concurrency limit, and [`gather`] / [`gather_all`] for
//! tokens handed out by hand; examples/crawl.rs nests a queue, retry and
//! timeout around an HTTP fetch. Tasks that complete inside their own start
//! call do not recurse: `series` over a million of them runs in one flat
//! loop and one pass.
//!
//! **asyncio**, the original:
//!
//! ```python
//! import asyncio
//!
//! async def count():
//!     print("One")
//!     await asyncio.sleep(1)
//!     print("Two")
//!
//! async def main():
//!     await asyncio.gather(count(), count(), count())
//!
//! if __name__ == "__main__":
//!     import time
//!     s = time.perf_counter()
//!     asyncio.run(main())
//!     elapsed = time.perf_counter() - s
//!     print(f"{__file__} executed in {elapsed:0.2f} seconds.")
//! ```
//!
//! Coroutines read top to bottom and exceptions propagate on their own;
//! that is what `async`/`await` buys, at the price of a coroutine runtime.
//! The combinator version has the same shape (`count` takes its completion
//! where the coroutine would `return`, `parallel` is `gather`) with one
//! level of plain callbacks and no runtime beyond the loop.
//!
//! Bad input: a concurrency limit of 0 ([`map_limit`], [`each_limit`],
//! [`Queue::new`]) or [`retry`] with 0 attempts is `InvalidInput` and the
//! final callback never runs; a [`race`] of no tasks gives its callback
//! `InvalidInput`; [`Queue::push`] after [`Queue::kill`] is `NotConnected`;
//! the items a kill takes off the queue get `Interrupted`. A task that
//! panics drops its token, so its flow ends with [`Dropped`] (with a panic
//! handler set, the loop goes on). C has a counter gather:
//! `evl_gather_new` / `evl_gather_done` in `include/evloop.h`.
//!
//! # More than one core
//!
//! A loop is one thread: its callbacks never run in parallel, which is why
//! they need no locks. To use more cores, run more loops that share
//! nothing:
//!
//! - **One loop per thread.** Each thread makes its own `EventLoop` and its
//!   own listening socket on the same port with
//!   [`net::tcp::ListenOptions`]' `reuse_port` (`SO_REUSEPORT`); the kernel
//!   spreads new connections across them. `examples/multicore.rs`, measured
//!   by the W7 benchmark (two loops against one, in the README's
//!   Performance section).
//! - **One loop per process**, as Node's `cluster` and libuv's IPC pipes: a
//!   parent accepts connections and hands each to a worker process over a
//!   Unix socket ([`net::UnixStream::write_with_fds`] there,
//!   [`take_fds`](net::UnixStream::take_fds) and
//!   [`TcpStream::from_fd`](net::TcpStream::from_fd) in the worker).
//!   `examples/cluster.rs`.
//!
//! Work that blocks (files, DNS, CPU-heavy jobs) goes to the loop's pool
//! instead, and comes back as a callback.
//!
//! # Logging
//!
//! The library logs through the `log` crate: `trace` for every pass and
//! dispatch, `debug` for registrations. `RUST_LOG=evloop=trace` with
//! `env_logger` shows the loop at work.
//!
//! [`run`]: EventLoop::run

#![deny(missing_docs, missing_debug_implementations)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod combinators;
pub mod diag;
mod error;
mod event_loop;
mod ffi;
pub mod fs;
mod handle;
mod id;
mod io;
pub mod net;
mod panic;
mod pool;
pub mod process;
pub mod signal;
mod sys;
mod task;
mod timer;

pub use combinators::{
    each_limit, gather, gather_all, map_limit, parallel, race, retry, series, timeout, Completion,
    Dropped, Queue, SendCompletion, Task,
};
pub use diag::{AliveItem, AliveKind, AliveReport, LoopMetrics};
pub use error::ErrorContext;
pub use event_loop::{EventLoop, RunMode};
pub use handle::{Closed, LoopHandle};
pub use io::{Interest, Readiness, WatchId};
pub use pool::{JobError, JobId, JobStatus};
pub use task::SoonId;
pub use timer::TimerId;

/// The README's Rust snippets run as doctests, so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
