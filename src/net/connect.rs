//! A non-blocking connect on the loop, for TCP and Unix sockets alike.
//!
//! The socket's fd is watched (through a duplicate, so the socket itself
//! stays with the attempt) for writability, which says the connect ended;
//! `SO_ERROR` then tells how. An optional timeout uses the loop's timers.
//! The callback runs exactly once, on a later pass, never inside the call:
//! with the stream, the error, or `ECANCELED` if the [`Connecting`] handle
//! cancelled the attempt first.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::time::Duration;

use socket2::{SockAddr, Socket};

use crate::net::Stream;
use crate::{EventLoop, Interest, TimerId, WatchId};

pub(crate) type ConnectDone<K> = Box<dyn FnOnce(&mut EventLoop, io::Result<Stream<K>>)>;

/// A connection in progress: its socket, callback, watcher and timer.
struct Attempt<K: 'static> {
    socket: Option<Socket>,
    done: Option<ConnectDone<K>>,
    watch: Option<WatchId>,
    timer: Option<TimerId>,
}

/// What [`Connecting`] needs of an attempt, whatever its stream kind.
trait Pending {
    fn cancel(&self, ev: &mut EventLoop) -> bool;
    fn is_pending(&self) -> bool;
}

/// A connect in progress, returned by the `connect` functions: the handle
/// to give up on it before its callback ran (libuv cancels a connect by
/// closing its handle; Node by `socket.destroy()`).
#[derive(Clone)]
pub struct Connecting {
    attempt: Rc<dyn Pending>,
}

impl fmt::Debug for Connecting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connecting")
            .field("pending", &self.is_pending())
            .finish()
    }
}

impl Connecting {
    /// Gives up on the connect: the socket is closed now and the callback
    /// gets `ECANCELED` on a later pass, instead of the outcome. True if the
    /// callback had not run yet; false, doing nothing, once it ran or after
    /// an earlier cancel.
    pub fn cancel(&self, ev: &mut EventLoop) -> bool {
        self.attempt.cancel(ev)
    }

    /// True until the callback ran or the connect was cancelled.
    pub fn is_pending(&self) -> bool {
        self.attempt.is_pending()
    }
}

impl<K> Pending for RefCell<Attempt<K>> {
    fn cancel(&self, ev: &mut EventLoop) -> bool {
        let (socket, done, watch, timer) = {
            let mut a = self.borrow_mut();
            if a.done.is_none() {
                return false;
            }
            (
                a.socket.take(),
                a.done.take(),
                a.watch.take(),
                a.timer.take(),
            )
        };
        stop(ev, watch, timer);
        drop(socket);
        if let Some(done) = done {
            ev.call_soon(move |ev| done(ev, Err(io::Error::from_raw_os_error(libc::ECANCELED))));
        }
        true
    }

    fn is_pending(&self) -> bool {
        let a = self.borrow();
        a.done.is_some() && a.socket.is_some()
    }
}

/// Starts a non-blocking connect of `socket` to `addr`; `done` runs on a
/// later pass with the stream or the error (`TimedOut` after `timeout`).
pub(crate) fn connect_socket<K>(
    ev: &mut EventLoop,
    socket: Socket,
    addr: &SockAddr,
    timeout: Option<Duration>,
    done: ConnectDone<K>,
) -> io::Result<Connecting> {
    socket.set_nonblocking(true)?;
    let attempt = Rc::new(RefCell::new(Attempt {
        socket: None,
        done: Some(done),
        watch: None,
        timer: None,
    }));
    let handle = Connecting {
        attempt: attempt.clone(),
    };
    // Only EINPROGRESS means "in progress". EAGAIN from a Unix socket means
    // the listener's backlog is full (and for TCP, no local port is free):
    // the connect failed, as libuv reports it too.
    let outcome = match socket.connect(addr) {
        Ok(()) => Some(Ok(())),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => None,
        Err(e) => Some(Err(e)),
    };
    attempt.borrow_mut().socket = Some(socket);
    if let Some(result) = outcome {
        // Settled at once (a Unix socket connects or is refused at once):
        // still a callback on a later pass, never inside this call.
        ev.call_soon(move |ev| settle(ev, &attempt, result));
        return Ok(handle);
    }
    let probe = attempt
        .borrow()
        .socket
        .as_ref()
        .expect("just stored")
        .try_clone()?;
    let a = attempt.clone();
    let watch = ev.watch(probe, Interest::WRITABLE, move |ev, probe, _| {
        let result = match probe.take_error() {
            Ok(None) => Ok(()),
            Ok(Some(e)) | Err(e) => Err(e),
        };
        settle(ev, &a, result);
    })?;
    ev.label_watch(watch, "connect", crate::diag::here())?;
    attempt.borrow_mut().watch = Some(watch);
    if let Some(timeout) = timeout {
        let a = attempt.clone();
        let timer = ev.set_timeout(timeout, move |ev| {
            a.borrow_mut().timer = None;
            let e = io::Error::new(io::ErrorKind::TimedOut, "evloop: connect timed out");
            settle(ev, &a, Err(e));
        });
        attempt.borrow_mut().timer = Some(timer);
    }
    Ok(handle)
}

fn stop(ev: &mut EventLoop, watch: Option<WatchId>, timer: Option<TimerId>) {
    if let Some(w) = watch {
        ev.unwatch(w);
    }
    if let Some(t) = timer {
        ev.clear_timer(t);
    }
}

/// Ends an attempt once: stops its watcher and timer, calls back.
fn settle<K>(ev: &mut EventLoop, attempt: &Rc<RefCell<Attempt<K>>>, result: io::Result<()>) {
    let (socket, done, watch, timer) = {
        let mut a = attempt.borrow_mut();
        (
            a.socket.take(),
            a.done.take(),
            a.watch.take(),
            a.timer.take(),
        )
    };
    stop(ev, watch, timer);
    let (Some(socket), Some(done)) = (socket, done) else {
        return;
    };
    let stream = result.and_then(|()| Stream::from_owned(OwnedFd::from(socket), true));
    done(ev, stream);
}
