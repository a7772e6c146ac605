//! TCP: listen and connect with callbacks; connections are [`TcpStream`]s.
//!
//! Listening sockets get `SO_REUSEADDR` (a restarted server can bind while old
//! connections sit in TIME_WAIT) and, on request, `SO_REUSEPORT`, so several
//! loops (one per core) can accept on one port. New connections, accepted or
//! connected, have `TCP_NODELAY` on, as asyncio does.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use socket2::{Domain, Protocol, SockRef, Socket, Type};

use crate::net::connect::connect_socket;
use crate::net::{with_context, Connecting, TcpServer, TcpStream};
use crate::EventLoop;

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

/// Listens on `addr` (port 0 picks a free port; see
/// [`TcpServer::local_addr`]) and calls `on_connection` with each accepted
/// connection, or with an accept error (once per episode; see
/// [`Server`](crate::net::Server)).
///
/// # Errors
/// The OS error of `socket`, `bind` or `listen`, naming the call and the
/// address: `bind 127.0.0.1:6379: Address already in use (os error 98)`.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// use evloop::{net::tcp, EventLoop};
/// let mut ev = EventLoop::new()?;
/// let server = tcp::listen(&mut ev, "127.0.0.1:0".parse().unwrap(), Default::default(), |ev, conn| {
///     if let Ok(conn) = conn {
///         let _ = conn.write(ev, b"hello\n");
///         let c = conn.clone();
///         // Close once the queue is flushed (close itself would cancel it).
///         let _ = conn.shutdown_with(ev, move |ev, _| { c.close(ev); });
///     }
/// })?;
/// println!("listening on {}", server.local_addr()?);
/// server.close(&mut ev);
/// ev.run()
/// # }
/// ```
#[track_caller]
pub fn listen(
    ev: &mut EventLoop,
    addr: SocketAddr,
    options: ListenOptions,
    on_connection: impl FnMut(&mut EventLoop, io::Result<TcpStream>) + 'static,
) -> io::Result<TcpServer> {
    let setup = || -> io::Result<Socket> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
            .map_err(|e| with_context(e, "socket"))?;
        socket.set_reuse_address(true)?;
        if options.reuse_port {
            socket.set_reuse_port(true)?;
        }
        socket
            .bind(&addr.into())
            .map_err(|e| with_context(e, format!("bind {addr}")))?;
        socket
            .listen(options.backlog)
            .map_err(|e| with_context(e, format!("listen {addr}")))?;
        Ok(socket)
    };
    TcpServer::start(ev, setup()?, true, on_connection)
}

/// Options for [`connect_with`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectOptions {
    /// Bind the socket to this local address first (libuv `uv_tcp_bind`
    /// before `uv_tcp_connect`, Node's `localAddress`/`localPort`); port 0
    /// picks one. The socket gets `SO_REUSEADDR`, as libuv's bind does.
    pub local_addr: Option<SocketAddr>,
    /// Fail with `TimedOut` if not connected within this time (measured
    /// with the loop's timers).
    pub timeout: Option<Duration>,
}

/// Connects to `addr`; `done` gets the connected stream or the error
/// (`ECONNREFUSED`, ...) on a later pass. The returned [`Connecting`]
/// cancels the attempt (`done` then gets `ECANCELED`).
///
/// # Errors
/// Only if no socket can be made; `done` then never runs.
pub fn connect(
    ev: &mut EventLoop,
    addr: SocketAddr,
    done: impl FnOnce(&mut EventLoop, io::Result<TcpStream>) + 'static,
) -> io::Result<Connecting> {
    connect_with(ev, addr, ConnectOptions::default(), done)
}

/// As [`connect`], failing with `TimedOut` if not connected within `timeout`
/// (measured with the loop's timers).
pub fn connect_timeout(
    ev: &mut EventLoop,
    addr: SocketAddr,
    timeout: Duration,
    done: impl FnOnce(&mut EventLoop, io::Result<TcpStream>) + 'static,
) -> io::Result<Connecting> {
    let options = ConnectOptions {
        timeout: Some(timeout),
        ..ConnectOptions::default()
    };
    connect_with(ev, addr, options, done)
}

/// As [`connect`], with a local address to bind first and/or a timeout.
///
/// # Errors
/// If no socket can be made, or the local bind fails (`AddrInUse`,
/// `AddrNotAvailable`, or `InvalidInput` when the local and remote address
/// families differ); `done` then never runs.
pub fn connect_with(
    ev: &mut EventLoop,
    addr: SocketAddr,
    options: ConnectOptions,
    done: impl FnOnce(&mut EventLoop, io::Result<TcpStream>) + 'static,
) -> io::Result<Connecting> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| with_context(e, format!("socket for {addr}")))?;
    socket.set_tcp_nodelay(true)?;
    if let Some(local) = options.local_addr {
        if local.is_ipv4() != addr.is_ipv4() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("evloop: cannot connect from {local} to {addr}: address families differ"),
            ));
        }
        socket.set_reuse_address(true)?;
        socket
            .bind(&local.into())
            .map_err(|e| with_context(e, format!("bind {local}")))?;
    }
    connect_socket(ev, socket, &addr.into(), options.timeout, Box::new(done))
}

impl TcpServer {
    /// The address the server listens on (with the real port after port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock_addr()
            .as_socket()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not an IP server"))
    }
}

impl TcpStream {
    /// Takes over a connected `std::net::TcpStream` (made non-blocking).
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        TcpStream::from_owned(stream.into(), true)
    }

    /// Runs `f` with the socket, for options not wrapped here;
    /// `NotConnected` once closed.
    pub fn with_socket<T>(&self, f: impl FnOnce(SockRef<'_>) -> io::Result<T>) -> io::Result<T> {
        self.with_fd(|fd| f(SockRef::from(fd)))
    }

    /// Turns Nagle's algorithm off (true) or on. TCP streams made by evloop
    /// start with it off, as asyncio's.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.with_socket(|s| s.set_tcp_nodelay(nodelay))
    }

    /// Enables TCP keepalive probes after `idle` of silence, or disables them.
    pub fn set_keepalive(&self, idle: Option<Duration>) -> io::Result<()> {
        self.with_socket(|s| match idle {
            Some(t) => s.set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(t)),
            None => s.set_keepalive(false),
        })
    }

    /// Closes the connection with a reset (RST) instead of a graceful FIN
    /// (libuv's `uv_tcp_close_reset`): `SO_LINGER` is set to zero, so the
    /// kernel drops unsent data and the peer's next read or write fails
    /// with `ECONNRESET`. Otherwise as [`close`](crate::net::Stream::close):
    /// queued writes fail with `ECANCELED`. Returns false, doing nothing,
    /// if already closed.
    pub fn close_reset(&self, ev: &mut EventLoop) -> bool {
        if self.is_closed() {
            return false;
        }
        if let Err(e) = self.with_fd(crate::sys::set_linger_zero) {
            log::warn!("evloop: close_reset: SO_LINGER: {e}; closing gracefully");
        }
        self.close(ev)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.with_socket(|s| s.local_addr()?.as_socket().ok_or_else(not_inet))
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.with_socket(|s| s.peer_addr()?.as_socket().ok_or_else(not_inet))
    }
}

fn not_inet() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "evloop: not an IP socket")
}
