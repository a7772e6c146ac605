//! Opening fds made elsewhere (inherited from a parent, passed over a Unix
//! socket, made by another library) as the right typed stream or server.
//!
//! [`guess_kind`] tells what an fd is, as libuv's `uv_guess_handle` does;
//! the `from_fd` constructors check that the fd is what they make of it, so
//! a listening socket cannot become a [`TcpStream`] by mistake and fail
//! later with a puzzling error.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use socket2::{Domain, SockRef, Type};

use crate::net::{TcpServer, TcpStream, UnixServer, UnixStream};
use crate::EventLoop;

/// What an fd is, for opening it with the matching constructor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdKind {
    /// A connected (or connecting) TCP socket: [`TcpStream::from_fd`].
    TcpStream,
    /// A listening TCP socket: [`TcpServer::from_fd`].
    TcpListener,
    /// A Unix stream socket, not listening: [`UnixStream::from_fd`].
    UnixStream,
    /// A listening Unix stream socket: [`UnixServer::from_fd`].
    UnixListener,
    /// A UDP socket: [`UdpSocket`](crate::net::udp::UdpSocket).
    Udp,
    /// A pipe or FIFO: [`Pipe::open`](crate::net::Pipe::open).
    Pipe,
    /// A terminal or other character device: [`Pipe::open`](crate::net::Pipe::open) streams it.
    CharDevice,
    /// A regular file or directory: not pollable; use [`crate::fs`].
    File,
    /// Anything else (a datagram Unix socket, a raw socket, an eventfd, ...).
    Other,
}

/// Tells what `fd` is (libuv's `uv_guess_handle`).
///
/// # Errors
/// `EBADF` if it is not an open fd.
pub fn guess_kind(fd: BorrowedFd<'_>) -> io::Result<FdKind> {
    let kind = crate::sys::file_mode(&fd)? & libc::S_IFMT;
    if kind != libc::S_IFSOCK {
        return Ok(match kind {
            libc::S_IFIFO => FdKind::Pipe,
            libc::S_IFCHR => FdKind::CharDevice,
            libc::S_IFREG | libc::S_IFDIR => FdKind::File,
            _ => FdKind::Other,
        });
    }
    let sock = SockRef::from(&fd);
    let (domain, ty) = (sock.domain()?, sock.r#type()?);
    let inet = domain == Domain::IPV4 || domain == Domain::IPV6;
    Ok(match () {
        _ if inet && ty == Type::STREAM => {
            if sock.is_listener()? {
                FdKind::TcpListener
            } else {
                FdKind::TcpStream
            }
        }
        _ if inet && ty == Type::DGRAM => FdKind::Udp,
        _ if domain == Domain::UNIX && ty == Type::STREAM => {
            if sock.is_listener()? {
                FdKind::UnixListener
            } else {
                FdKind::UnixStream
            }
        }
        _ => FdKind::Other,
    })
}

/// `Ok(fd)` if `fd` is of kind `want`, else `InvalidInput` naming both.
fn expect_kind(fd: OwnedFd, want: FdKind) -> io::Result<OwnedFd> {
    let got = guess_kind(fd.as_fd())?;
    if got == want {
        Ok(fd)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("evloop: expected a {want:?} fd, got a {got:?} (see net::guess_kind)"),
        ))
    }
}

impl TcpStream {
    /// Opens a connected TCP socket made elsewhere (made non-blocking).
    ///
    /// # Errors
    /// `InvalidInput` if `fd` is not a TCP stream socket (a listener, a UDP
    /// or Unix socket, a pipe...); the fd is closed then.
    pub fn from_fd(fd: OwnedFd) -> io::Result<TcpStream> {
        TcpStream::from_owned(expect_kind(fd, FdKind::TcpStream)?, true)
    }
}

impl UnixStream {
    /// Opens a connected Unix stream socket made elsewhere.
    ///
    /// # Errors
    /// `InvalidInput` if `fd` is not a Unix stream socket; the fd is closed
    /// then.
    pub fn from_fd(fd: OwnedFd) -> io::Result<UnixStream> {
        UnixStream::from_owned(expect_kind(fd, FdKind::UnixStream)?, true)
    }
}

impl TcpServer {
    /// Serves on a listening TCP socket made elsewhere (inherited, passed
    /// over a Unix socket, or bound with options evloop does not offer).
    ///
    /// # Errors
    /// `InvalidInput` if `fd` is not a listening TCP socket; the fd is
    /// closed then.
    pub fn from_fd(
        ev: &mut EventLoop,
        fd: OwnedFd,
        on_connection: impl FnMut(&mut EventLoop, io::Result<TcpStream>) + 'static,
    ) -> io::Result<TcpServer> {
        let fd = expect_kind(fd, FdKind::TcpListener)?;
        TcpServer::start(ev, fd.into(), true, on_connection)
    }
}

impl UnixServer {
    /// Serves on a listening Unix stream socket made elsewhere.
    ///
    /// # Errors
    /// `InvalidInput` if `fd` is not a listening Unix stream socket; the fd
    /// is closed then.
    pub fn from_fd(
        ev: &mut EventLoop,
        fd: OwnedFd,
        on_connection: impl FnMut(&mut EventLoop, io::Result<UnixStream>) + 'static,
    ) -> io::Result<UnixServer> {
        let fd = expect_kind(fd, FdKind::UnixListener)?;
        UnixServer::start(ev, fd.into(), false, on_connection)
    }
}

/// Used by [`Pipe::open`](crate::net::Pipe::open): every socket (stream,
/// datagram, seqpacket) has other semantics than a byte pipe.
pub(crate) fn refuse_socket(fd: &OwnedFd) -> io::Result<()> {
    if crate::sys::file_mode(fd)? & libc::S_IFMT == libc::S_IFSOCK {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "evloop: a socket is not a Pipe (use TcpStream::from_fd, UnixStream::from_fd, ...)",
        ));
    }
    Ok(())
}
