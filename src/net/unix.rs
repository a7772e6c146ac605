//! Unix domain stream sockets ([`UnixStream`]) and pipes ([`Pipe`]).

use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

use socket2::{Domain, SockAddr, SockRef, Socket, Type};

use crate::net::connect::connect_socket;
use crate::net::{with_context, Pipe, UnixServer, UnixStream};
use crate::{sys, EventLoop};

/// Listens on the socket file `path` (which must not exist yet) and calls
/// `on_connection` for each connection. The file is not removed on close.
///
/// # Errors
/// The OS error of `socket`, `bind` or `listen`, naming the call and path.
pub fn listen(
    ev: &mut EventLoop,
    path: impl AsRef<Path>,
    backlog: i32,
    on_connection: impl FnMut(&mut EventLoop, io::Result<UnixStream>) + 'static,
) -> io::Result<UnixServer> {
    let path = path.as_ref();
    let socket =
        Socket::new(Domain::UNIX, Type::STREAM, None).map_err(|e| with_context(e, "socket"))?;
    socket
        .bind(&SockAddr::unix(path)?)
        .map_err(|e| with_context(e, format!("bind {}", path.display())))?;
    socket
        .listen(backlog)
        .map_err(|e| with_context(e, format!("listen {}", path.display())))?;
    UnixServer::start(ev, socket, false, on_connection)
}

/// Connects to the socket file `path`; `done` gets the stream or the error
/// (`ENOENT`, `ECONNREFUSED`) on a later pass.
///
/// # Errors
/// Only if no socket can be made or the path is too long; `done` then
/// never runs.
pub fn connect(
    ev: &mut EventLoop,
    path: impl AsRef<Path>,
    done: impl FnOnce(&mut EventLoop, io::Result<UnixStream>) + 'static,
) -> io::Result<()> {
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    connect_socket(ev, socket, &SockAddr::unix(path)?, None, Box::new(done))
}

/// An anonymous pipe: `(read end, write end)`.
pub fn pipe() -> io::Result<(Pipe, Pipe)> {
    let (r, w) = sys::pipe().map_err(|e| with_context(e, "pipe"))?;
    Ok((Pipe::from_owned(r, false)?, Pipe::from_owned(w, false)?))
}

impl UnixStream {
    /// Takes over a connected `std::os::unix::net::UnixStream`.
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        UnixStream::from_owned(stream.into(), true)
    }

    /// Runs `f` with the socket, for options and addresses; `NotConnected`
    /// once closed.
    pub fn with_socket<T>(&self, f: impl FnOnce(SockRef<'_>) -> io::Result<T>) -> io::Result<T> {
        self.with_fd(|fd| f(SockRef::from(fd)))
    }
}

impl Pipe {
    /// Takes over a pipe end, terminal, FIFO or other stream-like fd that is
    /// not a socket (use [`TcpStream::from_std`](crate::net::TcpStream::from_std)
    /// or [`UnixStream::from_std`] for those).
    ///
    /// # Errors
    /// `EPERM` for a regular file or a directory (they cannot be polled).
    pub fn open(fd: impl Into<OwnedFd>) -> io::Result<Pipe> {
        let fd: OwnedFd = fd.into();
        let file = std::fs::File::from(fd);
        let kind = file.metadata()?.file_type();
        if kind.is_file() || kind.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "evloop: a regular file or directory cannot be polled (use evloop::fs)",
            ));
        }
        Pipe::from_owned(file.into(), false)
    }
}
