//! Unix signals delivered as callbacks on the loop thread.
//!
//! A signal handler may do almost nothing, so evloop's handler only sends a
//! byte on a socket pair per watcher; the loop watches the other end like
//! any fd and runs the callback on the loop thread. Each [`on_signal`] call
//! has its own socket pair, so every watcher of a signal is called for each
//! delivery; bytes that pile up before the loop reads them are drained
//! together, so a burst of one signal may reach a watcher as one call (as
//! with libuv's `uv_signal`).
//!
//! A signal watcher does not keep the loop alive by default (a loop that only
//! waits for Ctrl-C would otherwise never end); [`set_signal_ref`] opts in.
//!
//! # Sharing a signal with the rest of the process
//!
//! A disposition is process-wide, and other code may want the same signal:
//! the program's own handler, or a library (tokio, ctrlc, anything built on
//! `signal-hook`) that installs its handler over the one it finds and calls
//! that one first on each delivery ("chaining"). evloop promises:
//!
//! - While a watcher exists, the handler evloop replaced still runs on each
//!   delivery (evloop chains to it), so code that handled the signal before
//!   keeps handling it.
//! - When the last watcher of a signal in the process stops (across all
//!   loops), the signal is handled as if evloop had never watched it: if
//!   evloop's handler is still the installed one, the disposition it
//!   replaced is put back (after watching `SIGTERM`, a `SIGTERM` ends the
//!   process again; an ignored `SIGPIPE` stays ignored). If something was
//!   installed over it meanwhile, evloop leaves the disposition alone
//!   (putting the old one back would cut the newer handler off) and its own
//!   handler, still called by the newer one, only passes the signal on to
//!   the handler it replaced; with no handler to pass it to (the default
//!   action or "ignore"), it does nothing, which is what the newer handler's
//!   chaining would have done had evloop never been there.
//!
//! evloop has a handler of its own for this, rather than registering through
//! `signal-hook` as it once did: `signal-hook` keeps one shared handler per
//! signal for everyone who registers through it and never takes it out, so
//! evloop could not tell whether anyone else still relied on it. Putting the
//! old disposition back when evloop's last watcher stopped then disarmed
//! every other `signal-hook` user of the signal (the next delivery killed
//! the process), and leaving the shared handler in place would have made a
//! `SIGTERM` or `SIGINT` do nothing at all once watched and unwatched. With
//! a handler of its own, anything installed over evloop's is visible in the
//! disposition.
//!
//! libuv does less: `uv_signal_start` installs its handler without saving or
//! calling the one it replaces, and when the last handle stops it sets the
//! default action, whatever was there before (an ignored `SIGPIPE`, a
//! program's handler) and whatever was installed over it since.
//!
//! Two signals get one more step. Watching `SIGPIPE` makes it "ignored"
//! first if it had its default action, as evloop's streams do anyway (a
//! peer that went away is an `EPIPE`, never a dead process), so stopping
//! the watcher leaves it ignored. And once [`crate::process::spawn`] has set
//! an ignored `SIGCHLD` back to its default action (so the kernel keeps its
//! children's exit status for evloop), stopping a `SIGCHLD` watcher does not
//! put "ignore" back.

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::sys::{self, Disposition, PreviousHandler};
use crate::{EventLoop, Interest, WatchId};

/// Identifies a signal watcher made by [`on_signal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignalId {
    watch: WatchId,
}

/// How many watchers one signal may have in the whole process at once. The
/// handler reads their fds from a fixed table (it may not allocate or lock).
const MAX_WATCHERS: usize = 64;

/// Signal numbers run from 1 to 64 on Linux; index 0 is unused.
const SIGNALS: usize = 65;

/// Per signal, the write ends of its watchers' socket pairs (-1: free slot).
/// Written under [`TABLE`]'s lock, read by the handler.
static WAKEUP_FDS: [[AtomicI32; MAX_WATCHERS]; SIGNALS] =
    [const { [const { AtomicI32::new(-1) }; MAX_WATCHERS] }; SIGNALS];

/// Per signal, the handler evloop's replaced (0: none to call), and whether
/// it takes siginfo. Written before evloop's handler is installed.
static CHAIN_ADDRESS: [AtomicUsize; SIGNALS] = [const { AtomicUsize::new(0) }; SIGNALS];
static CHAIN_SIGINFO: [AtomicBool; SIGNALS] = [const { AtomicBool::new(false) }; SIGNALS];

/// Handlers now reading [`WAKEUP_FDS`]: a released slot's fd is closed only
/// once this is zero, so a handler never writes to a closed (or reused) fd.
static IN_HANDLER: AtomicUsize = AtomicUsize::new(0);

/// evloop's handler: wakes every watcher of `signal`, then passes the signal
/// on to the handler it replaced. Async-signal-safe: atomics, `send`, and
/// the previous handler (which its installer made safe to call here).
extern "C" fn deliver(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let _errno = sys::SavedErrno::new();
    let Some(index) = usize::try_from(signal).ok().filter(|&i| i < SIGNALS) else {
        return;
    };
    IN_HANDLER.fetch_add(1, Ordering::SeqCst);
    for fd in &WAKEUP_FDS[index] {
        let fd = fd.load(Ordering::SeqCst);
        if fd >= 0 {
            sys::send_wakeup_byte(fd);
        }
    }
    IN_HANDLER.fetch_sub(1, Ordering::SeqCst);
    let address = CHAIN_ADDRESS[index].load(Ordering::SeqCst);
    if address != 0 {
        let previous = PreviousHandler {
            address,
            siginfo: CHAIN_SIGINFO[index].load(Ordering::SeqCst),
        };
        // SAFETY: `previous` was taken from the disposition installed for
        // this signal before evloop's (see `install_ours`), and we are
        // running as that signal's handler, passing on its arguments.
        unsafe { previous.call(signal, info, context) };
    }
}

/// Per signal number: watchers in the whole process, and evloop's handler.
#[derive(Clone, Copy)]
struct SignalState {
    watchers: usize,
    /// evloop's handler is in the signal's chain: installed by evloop and
    /// not taken out since (it may have been installed over).
    installed: bool,
    /// The disposition evloop's handler replaced, put back when the last
    /// watcher stops if evloop's is still the installed one.
    previous: Option<Disposition>,
}

const UNWATCHED: SignalState = SignalState {
    watchers: 0,
    installed: false,
    previous: None,
};

static TABLE: Mutex<[SignalState; SIGNALS]> = Mutex::new([UNWATCHED; SIGNALS]);

fn table() -> MutexGuard<'static, [SignalState; SIGNALS]> {
    // Only plain data is changed under the lock: a poisoned lock is consistent.
    TABLE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Puts evloop's handler in place for `signal`, remembering the disposition
/// it replaces (and its function, for `deliver` to call).
fn install_ours(signal: i32, state: &mut SignalState) -> io::Result<()> {
    let Some(current) = Disposition::of(signal) else {
        return Err(cannot_watch(signal));
    };
    let index = signal as usize;
    let function = current.function();
    CHAIN_ADDRESS[index].store(function.map_or(0, |f| f.address), Ordering::SeqCst);
    CHAIN_SIGINFO[index].store(function.is_some_and(|f| f.siginfo), Ordering::SeqCst);
    Disposition::handler(deliver)
        .install(signal)
        .map_err(|_| cannot_watch(signal))?;
    state.installed = true;
    state.previous = Some(current);
    Ok(())
}

fn cannot_watch(signal: i32) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("evloop: signal {signal} cannot be watched"),
    )
}

/// One watcher's slot in [`WAKEUP_FDS`] and the write end it holds there,
/// released when its watcher is dropped: by [`stop_signal`], or with the loop.
struct Registration {
    signal: i32,
    slot: usize,
    /// Closed (as a field, after `drop` ran) once no handler can use it.
    _writer: UnixStream,
}

impl Drop for Registration {
    fn drop(&mut self) {
        release(self.signal, self.slot);
    }
}

/// The signals [`on_signal`] refuses: their default action cannot be
/// replaced (SIGKILL, SIGSTOP) or must not be (SIGILL, SIGFPE, SIGSEGV).
pub const FORBIDDEN: &[i32] = signal_hook::consts::FORBIDDEN;

/// Calls `callback` on the loop thread each time `signal` is delivered to the
/// process (for example `libc::SIGINT`, `SIGTERM`, `SIGHUP`, `SIGUSR1`,
/// `SIGUSR2`, `SIGWINCH`, `SIGCHLD`). The handler the signal had keeps
/// running too; see the module docs for what happens when the watcher stops.
///
/// Errors: a forbidden signal (`SIGKILL`, `SIGSTOP`, ...) or a number that is
/// not a signal, or one the C library keeps for itself (`InvalidInput`);
/// more than 64 watchers of one signal in the process (`OutOfMemory`). The
/// callback then never runs.
#[track_caller]
pub fn on_signal(
    ev: &mut EventLoop,
    signal: i32,
    mut callback: impl FnMut(&mut EventLoop) + 'static,
) -> io::Result<SignalId> {
    if FORBIDDEN.contains(&signal) || !(1..SIGNALS as i32).contains(&signal) {
        return Err(cannot_watch(signal));
    }
    let (reader, writer) = UnixStream::pair()?;
    reader.set_nonblocking(true)?;
    let mut table = table();
    let index = signal as usize;
    let Some(slot) = WAKEUP_FDS[index]
        .iter()
        .position(|fd| fd.load(Ordering::SeqCst) < 0)
    else {
        return Err(io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!("evloop: signal {signal} has {MAX_WATCHERS} watchers already"),
        ));
    };
    let state = &mut table[index];
    if !state.installed {
        if signal == libc::SIGPIPE {
            sys::ignore_sigpipe(); // so that "ignore" is what comes back
        }
        install_ours(signal, state)?;
        log::debug!("evloop: handler installed for signal {signal}");
    }
    WAKEUP_FDS[index][slot].store(writer.as_raw_fd(), Ordering::SeqCst);
    state.watchers += 1;
    drop(table);
    let registration = Registration {
        signal,
        slot,
        _writer: writer,
    };
    let watch = ev.watch(reader, Interest::READABLE, move |ev, reader, _| {
        let _ = &registration; // released when the watcher is dropped
        let mut buf = [0u8; 64];
        // Drain everything the handler wrote since the last pass.
        while matches!(reader.read(&mut buf), Ok(n) if n > 0) {}
        callback(ev);
    });
    let watch = watch?; // on error the registration dropped with the callback
    ev.set_watch_ref(watch, false)?;
    ev.label_watch(watch, "signal", std::panic::Location::caller())?;
    log::debug!("evloop: watching signal {signal}");
    Ok(SignalId { watch })
}

/// Frees one watcher's slot; after the last one, the signal is handled as
/// before evloop watched it (see the module docs).
fn release(signal: i32, slot: usize) {
    let mut table = table();
    let index = signal as usize;
    WAKEUP_FDS[index][slot].store(-1, Ordering::SeqCst);
    // A handler that read the fd before the store may still be sending to
    // it; the caller closes it when this returns.
    while IN_HANDLER.load(Ordering::SeqCst) != 0 {
        std::thread::yield_now();
    }
    let state = &mut table[index];
    state.watchers -= 1;
    if state.watchers > 0 || !state.installed {
        return;
    }
    let ours = Disposition::of(signal).is_some_and(|d| d.runs(deliver));
    match state.previous {
        Some(previous) if ours => {
            if previous.install(signal).is_ok() {
                state.installed = false;
                log::debug!("evloop: signal {signal} has no watcher left; disposition restored");
            }
        }
        _ => log::debug!(
            "evloop: signal {signal} has no watcher left; another handler was installed over \
             evloop's, which stays in its chain and passes the signal on"
        ),
    }
}

/// Makes sure the kernel leaves our children's exit status for us to
/// collect: `SIGCHLD` ignored, or `SA_NOCLDWAIT`, would reap them at exit.
/// The disposition a stopping `SIGCHLD` watcher would put back is changed
/// the same way, so it cannot bring the kernel's reaping back either.
pub(crate) fn keep_exit_statuses() {
    let mut table = table();
    let state = &mut table[libc::SIGCHLD as usize];
    if let Some(previous) = state.previous.filter(|d| d.reaps_children()) {
        state.previous = Some(previous.without_reaping());
    }
    if let Some(current) = Disposition::of(libc::SIGCHLD).filter(|d| d.reaps_children()) {
        if current.without_reaping().install(libc::SIGCHLD).is_ok() {
            log::debug!("evloop: SIGCHLD let the kernel reap children; set back to default");
        }
    }
}

/// Stops a signal watcher; the process's handling of the signal returns to
/// what it was once no watcher is left. False if it was already stopped.
/// Safe inside the watcher's own callback.
pub fn stop_signal(ev: &mut EventLoop, id: SignalId) -> bool {
    ev.unwatch(id.watch) // drops the callback, and so the registration
}

/// Sets whether a signal watcher keeps the loop alive (by default it does not).
///
/// # Errors
/// `NotFound` if the watcher was stopped.
pub fn set_signal_ref(ev: &mut EventLoop, id: SignalId, keep_alive: bool) -> io::Result<()> {
    ev.set_watch_ref(id.watch, keep_alive)
}
