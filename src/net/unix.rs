//! Unix domain stream sockets and anonymous pipes, as [`Stream`]s.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;

use socket2::{Domain, SockAddr, Socket, Type};

use crate::net::tcp::connect_socket;
use crate::net::{Server, Stream};
use crate::EventLoop;

/// Listens on the socket file `path` (which must not exist yet) and calls
/// `on_connection` for each connection. The file is not removed on close.
pub fn listen(
    ev: &mut EventLoop,
    path: impl AsRef<Path>,
    backlog: i32,
    on_connection: impl FnMut(&mut EventLoop, io::Result<Stream>) + 'static,
) -> io::Result<Server> {
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.bind(&SockAddr::unix(path)?)?;
    socket.listen(backlog)?;
    Server::start(ev, socket, false, on_connection)
}

/// Connects to the socket file `path`; `done` gets the stream or the error
/// (`ENOENT`, `ECONNREFUSED`) on a later pass.
pub fn connect(
    ev: &mut EventLoop,
    path: impl AsRef<Path>,
    done: impl FnOnce(&mut EventLoop, io::Result<Stream>) + 'static,
) -> io::Result<()> {
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    connect_socket(ev, socket, &SockAddr::unix(path)?, None, Box::new(done))
}

/// An anonymous pipe: `(read end, write end)`, both streams.
pub fn pipe(ev: &mut EventLoop) -> io::Result<(Stream, Stream)> {
    let (r, w) = raw_pipe()?;
    Ok((Stream::from_fd(ev, r)?, Stream::from_fd(ev, w)?))
}

/// A pipe as two owned fds, close-on-exec.
pub(crate) fn raw_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just created by pipe2 and are owned by no one else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}
