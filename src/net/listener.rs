//! [`Server`]: a listening socket (TCP or Unix) that accepts on the loop.
//!
//! The listening socket is watched for readability; each readiness accepts
//! until the backlog is empty (at most a batch, for fairness), and every new
//! connection reaches the callback as a [`Stream`]. Accept errors that only
//! concern one connection (`ECONNABORTED`) are skipped; others (`EMFILE`)
//! reach the callback as `Err`.

use std::cell::Cell;
use std::io;
use std::rc::Rc;

use socket2::{SockAddr, Socket};

use crate::net::Stream;
use crate::{EventLoop, Interest, WatchId};

const ACCEPTS_PER_EVENT: usize = 64;

/// A listening socket. Stops listening on [`Server::close`].
#[derive(Debug, Clone)]
pub struct Server {
    watch: Rc<Cell<Option<WatchId>>>,
    local: SockAddr,
}

impl Server {
    /// Watches `socket` (bound and listening) and calls `on_connection` for
    /// each accepted connection.
    pub(crate) fn start(
        ev: &mut EventLoop,
        socket: Socket,
        is_tcp: bool,
        mut on_connection: impl FnMut(&mut EventLoop, io::Result<Stream>) + 'static,
    ) -> io::Result<Server> {
        socket.set_nonblocking(true)?;
        let local = socket.local_addr()?;
        let watch = ev.watch(socket, Interest::READABLE, move |ev, socket, _| {
            for _ in 0..ACCEPTS_PER_EVENT {
                match socket.accept() {
                    Ok((conn, _)) => {
                        if is_tcp {
                            let _ = conn.set_tcp_nodelay(true);
                        }
                        let stream = Stream::from_fd(ev, conn);
                        on_connection(ev, stream);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        on_connection(ev, Err(e));
                        break;
                    }
                }
            }
        })?;
        Ok(Server {
            watch: Rc::new(Cell::new(Some(watch))),
            local,
        })
    }

    /// The address the server listens on (with the real port after port 0).
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.local
            .as_socket()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not an IP server"))
    }

    /// Stops listening and closes the socket; false if already closed.
    pub fn close(&self, ev: &mut EventLoop) -> bool {
        match self.watch.take() {
            Some(w) => ev.unwatch(w),
            None => false,
        }
    }

    /// Sets whether the server keeps the loop alive (it does by default).
    pub fn set_ref(&self, ev: &mut EventLoop, keep_alive: bool) -> bool {
        match self.watch.get() {
            Some(w) => ev.set_watch_ref(w, keep_alive),
            None => false,
        }
    }
}
