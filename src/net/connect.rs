//! A non-blocking connect on the loop, for TCP and Unix sockets alike.
//!
//! The socket's fd is watched (through a duplicate, so the socket itself
//! stays with the attempt) for writability, which says the connect ended;
//! `SO_ERROR` then tells how. An optional timeout uses the loop's timers.
//! The callback runs exactly once, on a later pass, never inside the call.

use std::cell::RefCell;
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

/// Starts a non-blocking connect of `socket` to `addr`; `done` runs on a
/// later pass with the stream or the error (`TimedOut` after `timeout`).
pub(crate) fn connect_socket<K>(
    ev: &mut EventLoop,
    socket: Socket,
    addr: &SockAddr,
    timeout: Option<Duration>,
    done: ConnectDone<K>,
) -> io::Result<()> {
    socket.set_nonblocking(true)?;
    let in_progress = match socket.connect(addr) {
        Ok(()) => false,
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => true,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => true,
        Err(e) => {
            // Refused at once (a Unix socket with no listener): still a
            // callback on a later pass, never inside this call.
            ev.call_soon(move |ev| done(ev, Err(e)));
            return Ok(());
        }
    };
    let attempt = Rc::new(RefCell::new(Attempt {
        socket: None,
        done: Some(done),
        watch: None,
        timer: None,
    }));
    if !in_progress {
        attempt.borrow_mut().socket = Some(socket);
        ev.call_soon(move |ev| settle(ev, &attempt, Ok(())));
        return Ok(());
    }
    let probe = socket.try_clone()?;
    attempt.borrow_mut().socket = Some(socket);
    let a = attempt.clone();
    let watch = ev.watch(probe, Interest::WRITABLE, move |ev, probe, _| {
        let result = match probe.take_error() {
            Ok(None) => Ok(()),
            Ok(Some(e)) | Err(e) => Err(e),
        };
        settle(ev, &a, result);
    })?;
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
    Ok(())
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
    if let Some(w) = watch {
        ev.unwatch(w);
    }
    if let Some(t) = timer {
        ev.clear_timer(t);
    }
    let (Some(socket), Some(done)) = (socket, done) else {
        return;
    };
    let stream = result.and_then(|()| Stream::from_owned(OwnedFd::from(socket), true));
    done(ev, stream);
}
