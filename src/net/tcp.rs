//! TCP: listen and connect with callbacks; connections are [`Stream`]s.
//!
//! Listening sockets get `SO_REUSEADDR` (a restarted server can bind while old
//! connections sit in TIME_WAIT) and, on request, `SO_REUSEPORT`, so several
//! loops (one per core) can accept on one port. New connections, accepted or
//! connected, have `TCP_NODELAY` on, as asyncio does.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::net::{Server, Stream};
use crate::{EventLoop, Interest, TimerId, WatchId};

/// Options for [`listen`].
#[derive(Debug, Clone, Copy)]
pub struct ListenOptions {
    /// Queue length for connections not accepted yet (`listen(2)` backlog).
    pub backlog: i32,
    /// Set `SO_REUSEPORT`, for one listening loop per core.
    pub reuse_port: bool,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions {
            backlog: 511, // as libuv and Node
            reuse_port: false,
        }
    }
}

/// Listens on `addr` (port 0 picks a free port; see [`Server::local_addr`])
/// and calls `on_connection` with each accepted connection.
pub fn listen(
    ev: &mut EventLoop,
    addr: SocketAddr,
    options: ListenOptions,
    on_connection: impl FnMut(&mut EventLoop, io::Result<Stream>) + 'static,
) -> io::Result<Server> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if options.reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(options.backlog)?;
    Server::start(ev, socket, true, on_connection)
}

/// Connects to `addr`; `done` gets the connected stream or the error
/// (`ECONNREFUSED`, ...). Fails at once only if no socket can be made.
pub fn connect(
    ev: &mut EventLoop,
    addr: SocketAddr,
    done: impl FnOnce(&mut EventLoop, io::Result<Stream>) + 'static,
) -> io::Result<()> {
    connect_inner(ev, addr, None, done)
}

/// As [`connect`], failing with `TimedOut` if not connected within `timeout`
/// (measured with the loop's timers).
pub fn connect_timeout(
    ev: &mut EventLoop,
    addr: SocketAddr,
    timeout: Duration,
    done: impl FnOnce(&mut EventLoop, io::Result<Stream>) + 'static,
) -> io::Result<()> {
    connect_inner(ev, addr, Some(timeout), done)
}

pub(crate) type ConnectDone = Box<dyn FnOnce(&mut EventLoop, io::Result<Stream>)>;

/// A connection in progress: its socket, callback, watcher and timer.
struct Attempt {
    socket: Option<Socket>,
    done: Option<ConnectDone>,
    watch: Option<WatchId>,
    timer: Option<TimerId>,
}

fn connect_inner(
    ev: &mut EventLoop,
    addr: SocketAddr,
    timeout: Option<Duration>,
    done: impl FnOnce(&mut EventLoop, io::Result<Stream>) + 'static,
) -> io::Result<()> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_tcp_nodelay(true)?;
    connect_socket(ev, socket, &addr.into(), timeout, Box::new(done))
}

/// Starts a non-blocking connect of `socket`; `done` runs on a later pass.
///
/// The watcher watches a duplicate of the socket's fd, so that the socket
/// itself stays with the attempt and becomes the stream when it connects.
pub(crate) fn connect_socket(
    ev: &mut EventLoop,
    socket: Socket,
    addr: &SockAddr,
    timeout: Option<Duration>,
    done: ConnectDone,
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
    let probe = socket.try_clone()?;
    let attempt = Rc::new(RefCell::new(Attempt {
        socket: Some(socket),
        done: Some(done),
        watch: None,
        timer: None,
    }));
    if !in_progress {
        ev.call_soon(move |ev| settle(ev, &attempt, Ok(())));
        return Ok(());
    }
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
fn settle(ev: &mut EventLoop, attempt: &Rc<RefCell<Attempt>>, result: io::Result<()>) {
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
    let stream = result.and_then(|()| Stream::from_fd(ev, socket));
    done(ev, stream);
}
