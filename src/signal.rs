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

use std::io::{self, Read};
use std::os::unix::net::UnixStream;

use signal_hook::low_level;
use signal_hook::SigId;

use crate::{EventLoop, Interest, WatchId};

/// Identifies a signal watcher made by [`on_signal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignalId {
    watch: WatchId,
    sig_id: SigId,
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
    let sig_id = low_level::pipe::register(signal, writer)?;
    let watch = ev.watch(reader, Interest::READABLE, move |ev, reader, _| {
        let mut buf = [0u8; 64];
        // Drain everything the handler wrote since the last pass.
        while matches!(reader.read(&mut buf), Ok(n) if n > 0) {}
        callback(ev);
    });
    let watch = match watch {
        Ok(w) => w,
        Err(e) => {
            low_level::unregister(sig_id);
            return Err(e);
        }
    };
    ev.set_watch_ref(watch, false);
    log::debug!("evloop: watching signal {signal}");
    Ok(SignalId { watch, sig_id })
}

/// Stops a signal watcher; the process's handling of the signal returns to
/// what it was once no watcher is left. False if it was already stopped.
/// Safe inside the watcher's own callback.
pub fn stop_signal(ev: &mut EventLoop, id: SignalId) -> bool {
    if !ev.unwatch(id.watch) {
        return false;
    }
    low_level::unregister(id.sig_id);
    true
}

/// Sets whether a signal watcher keeps the loop alive (by default it does not).
pub fn set_signal_ref(ev: &mut EventLoop, id: SignalId, keep_alive: bool) -> bool {
    ev.set_watch_ref(id.watch, keep_alive)
}
