//! Unix signals delivered as callbacks on the loop thread.
//!
//! A signal handler may do almost nothing, so the handler (installed by the
//! `signal-hook` crate, which gets the async-signal-safety details right)
//! only writes a byte to a socket pair; the loop watches the other end like
//! any fd and runs the callback on the loop thread. Each [`on_signal`] call has
//! its own socket pair and registration, so every watcher of a signal is called
//! for each delivery; bytes that pile up before the loop reads them are
//! drained together, so a burst of one signal may reach a watcher as one call
//! (as with libuv's `uv_signal`).
//!
//! A signal watcher does not keep the loop alive by default (a loop that only
//! waits for Ctrl-C would otherwise never end); [`set_signal_ref`] opts in.
//!
//! When the last watcher of a signal in the process stops (across all loops),
//! the signal's disposition goes back to what it was before the first one
//! started: after watching and unwatching `SIGTERM`, a `SIGTERM` ends the
//! process again. `signal-hook` keeps its handler installed for the life of
//! the process, so this module saves the disposition it replaced, puts it
//! back when no watcher is left, and puts `signal-hook`'s handler back when a
//! watcher starts again.

use std::io::{self, Read};
use std::os::unix::net::UnixStream;
use std::sync::{Mutex, MutexGuard};

use signal_hook::low_level;
use signal_hook::SigId;

use crate::sys::Disposition;
use crate::{EventLoop, Interest, WatchId};

/// Identifies a signal watcher made by [`on_signal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignalId {
    watch: WatchId,
}

/// One watcher's signal-hook registration, released when its watcher is
/// dropped: by [`stop_signal`], or with the loop.
struct Registration {
    signal: i32,
    sig_id: SigId,
}

impl Drop for Registration {
    fn drop(&mut self) {
        release(self.signal, self.sig_id);
    }
}

/// Per signal number: watchers in the whole process, the disposition to
/// restore when the last one stops, and signal-hook's own, to reinstall.
#[derive(Clone, Copy)]
struct Dispositions {
    watchers: usize,
    before: Option<Disposition>,
    hook: Option<Disposition>,
}

const NO_WATCHERS: Dispositions = Dispositions {
    watchers: 0,
    before: None,
    hook: None,
};

static TABLE: Mutex<[Dispositions; 65]> = Mutex::new([NO_WATCHERS; 65]);

fn table() -> MutexGuard<'static, [Dispositions; 65]> {
    // Only plain data is changed under the lock: a poisoned lock is consistent.
    TABLE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The signals [`on_signal`] refuses: their default action cannot be
/// replaced (SIGKILL, SIGSTOP) or must not be (SIGILL, SIGFPE, SIGSEGV).
pub const FORBIDDEN: &[i32] = signal_hook::consts::FORBIDDEN;

/// Calls `callback` on the loop thread each time `signal` is delivered to the
/// process (for example `libc::SIGINT`, `SIGTERM`, `SIGHUP`, `SIGUSR1`,
/// `SIGUSR2`, `SIGWINCH`, `SIGCHLD`).
///
/// Errors: a forbidden signal (`SIGKILL`, `SIGSTOP`, ...) or a number that is
/// not a signal (`InvalidInput`); the callback then never runs.
pub fn on_signal(
    ev: &mut EventLoop,
    signal: i32,
    mut callback: impl FnMut(&mut EventLoop) + 'static,
) -> io::Result<SignalId> {
    if FORBIDDEN.contains(&signal) || !(1..=64).contains(&signal) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("evloop: signal {signal} cannot be watched"),
        ));
    }
    let (reader, writer) = UnixStream::pair()?;
    reader.set_nonblocking(true)?;
    let mut table = table();
    let slot = &mut table[signal as usize];
    if slot.watchers == 0 {
        slot.before = Disposition::of(signal);
        if let Some(hook) = &slot.hook {
            hook.install(signal); // signal-hook's handler, back in place
        }
    }
    let sig_id = match low_level::pipe::register(signal, writer) {
        Ok(id) => id,
        Err(e) => {
            if slot.watchers == 0 {
                if let Some(before) = &slot.before {
                    before.install(signal);
                }
            }
            return Err(e);
        }
    };
    slot.watchers += 1;
    drop(table);
    let registration = Registration { signal, sig_id };
    let watch = ev.watch(reader, Interest::READABLE, move |ev, reader, _| {
        let _ = &registration; // released when the watcher is dropped
        let mut buf = [0u8; 64];
        // Drain everything the handler wrote since the last pass.
        while matches!(reader.read(&mut buf), Ok(n) if n > 0) {}
        callback(ev);
    });
    let watch = watch?; // on error the registration dropped with the callback
    ev.set_watch_ref(watch, false)?;
    log::debug!("evloop: watching signal {signal}");
    Ok(SignalId { watch })
}

/// Unregisters one watcher; the last one restores the old disposition.
fn release(signal: i32, sig_id: SigId) {
    let mut table = table();
    low_level::unregister(sig_id);
    let slot = &mut table[signal as usize];
    slot.watchers -= 1;
    if slot.watchers == 0 {
        slot.hook = Disposition::of(signal);
        if let Some(before) = &slot.before {
            before.install(signal);
        }
        log::debug!("evloop: signal {signal} has no watcher left; disposition restored");
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
