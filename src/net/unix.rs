//! Unix domain stream sockets ([`UnixStream`]) and pipes ([`Pipe`]).

use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

use socket2::{Domain, SockAddr, SockRef, Socket, Type};

use crate::net::connect::connect_socket;
use crate::net::Connecting;
use crate::net::{with_context, Pipe, UnixServer, UnixStream};
use crate::{sys, EventLoop};

/// Listens on the socket file `path` (which must not exist yet) and calls
/// `on_connection` for each connection. The file is not removed on close.
///
/// # Errors
/// The OS error of `socket`, `bind` or `listen`, naming the call and path.
#[track_caller]
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
/// (`ENOENT`, `ECONNREFUSED`, `EAGAIN` if the listener's backlog is full)
/// on a later pass. The returned [`Connecting`] can cancel it.
///
/// # Errors
/// Only if no socket can be made or the path is too long; `done` then
/// never runs.
pub fn connect(
    ev: &mut EventLoop,
    path: impl AsRef<Path>,
    done: impl FnOnce(&mut EventLoop, io::Result<UnixStream>) + 'static,
) -> io::Result<Connecting> {
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

    /// A connected pair of Unix stream sockets (`socketpair(2)`), e.g. to
    /// talk to a child process, or to pass fds to it.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) =
            std::os::unix::net::UnixStream::pair().map_err(|e| with_context(e, "socketpair"))?;
        Ok((UnixStream::from_std(a)?, UnixStream::from_std(b)?))
    }

    /// Queues `data` with `fds` passed along (`SCM_RIGHTS`, as libuv's IPC
    /// pipes and Node's cluster module do): the peer receives duplicates of
    /// the fds with the first byte of `data` and takes them with
    /// [`take_fds`](UnixStream::take_fds), once it turned
    /// [`receive_fds`](UnixStream::receive_fds) on. Ours are closed once sent (dup
    /// one first to keep it). `done` runs as for
    /// [`write_with`](crate::net::Stream::write_with); on an error the fds
    /// are closed unsent.
    ///
    /// # Errors
    /// `InvalidInput` if `data` is empty (fds travel with bytes) or more than
    /// 253 fds are given; otherwise as `write`.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use evloop::{net::UnixStream, EventLoop};
    /// let mut ev = EventLoop::new()?;
    /// let (a, b) = UnixStream::pair()?;
    /// b.receive_fds(true);
    /// let file = std::fs::File::open("/dev/null")?;
    /// a.write_with_fds(&mut ev, b"f", vec![file.into()], |_, r| r.unwrap())?;
    /// b.read_start(&mut ev, |ev, b, data| {
    ///     assert_eq!(data.unwrap(), b"f");
    ///     assert_eq!(b.take_fds().len(), 1); // a new fd for /dev/null
    ///     b.close(ev);
    /// })?;
    /// ev.run()?;
    /// a.close(&mut ev);
    /// # Ok(()) }
    /// ```
    pub fn write_with_fds(
        &self,
        ev: &mut EventLoop,
        data: impl AsRef<[u8]>,
        fds: Vec<OwnedFd>,
        done: impl FnOnce(&mut EventLoop, io::Result<()>) + 'static,
    ) -> io::Result<bool> {
        let data = data.as_ref();
        if data.is_empty() || fds.len() > sys::MAX_FDS_PER_MESSAGE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "evloop: fds are passed with at least one byte, at most {} per write",
                    sys::MAX_FDS_PER_MESSAGE
                ),
            ));
        }
        self.write_inner(ev, data, fds, Some(Box::new(done)))
    }

    /// Turns receiving passed fds on (or off again). Off by default, as for
    /// libuv pipes not opened for IPC: the kernel then closes whatever fds
    /// a peer sends, so a peer cannot make us hold fds we never asked for.
    /// On, up to 1,024 received fds wait for [`take_fds`](UnixStream::take_fds);
    /// more are closed, with a warning logged. Sending needs no switch.
    pub fn receive_fds(&self, on: bool) {
        self.set_passes_fds(on);
    }

    /// Takes the fds received so far, oldest first (libuv's
    /// `uv_pipe_pending_count` + `uv_accept`). Fds arrive with the bytes
    /// they were sent with: take them in the read callback that got those
    /// bytes. They are close-on-exec; those never taken are closed with the
    /// stream.
    pub fn take_fds(&self) -> Vec<OwnedFd> {
        self.take_received_fds()
    }

    /// Number of received fds not taken yet.
    pub fn pending_fds(&self) -> usize {
        self.received_fd_count()
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
    /// `EPERM` for a regular file or a directory (they cannot be polled);
    /// `InvalidInput` for a socket (see [`crate::net::guess_kind`]).
    pub fn open(fd: impl Into<OwnedFd>) -> io::Result<Pipe> {
        let fd: OwnedFd = fd.into();
        crate::net::adopt::refuse_socket(&fd)?;
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
