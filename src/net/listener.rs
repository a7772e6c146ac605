//! [`Server`]: a listening socket (TCP or Unix) that accepts on the loop.
//! A `Server<K>` yields `Stream<K>`s: [`TcpServer`] gives [`TcpStream`]s,
//! [`UnixServer`] gives [`UnixStream`]s.
//!
//! [`TcpStream`]: crate::net::TcpStream
//! [`UnixStream`]: crate::net::UnixStream
//!
//! The listening socket is watched for readability; each readiness accepts
//! until the backlog is empty (at most a batch, for fairness), and every new
//! connection reaches the callback as a [`Stream`]. [`Server::close`] takes
//! effect at once, also inside the connection callback: no further
//! connection is delivered, even if more were waiting in the backlog.
//!
//! Accept errors come in two kinds. Those that concern one connection only
//! (`ECONNABORTED`, `EPROTO`, `EPERM` from a firewall, network errors: the
//! list accept(2) says to treat like `EAGAIN`) are skipped. The others
//! (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`, ...) would repeat on every pass
//! while the connection waits in the backlog, so the server *pauses*: it
//! stops watching the socket and retries after a backoff (5 ms, doubling up
//! to 1 s, as Go's `net/http` does), until an accept succeeds. The callback
//! gets the error once per such episode, not once per try. Waiting clients
//! stay in the backlog and are served once fds are free again (libuv instead
//! closes them with a reserved fd; pausing keeps them and needs no spare fd).

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::time::Duration;

use socket2::{SockAddr, Socket};

use crate::net::stream::{closed_error, kind};
use crate::net::Stream;
use crate::{EventLoop, Interest, TimerId, WatchId};

const ACCEPTS_PER_EVENT: usize = 64;
const FIRST_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// A listening socket that yields `Stream<K>`s. Stops listening on
/// [`Server::close`]. Clones are handles to the same server.
pub struct Server<K: 'static> {
    state: Rc<RefCell<Listening>>,
    local: SockAddr,
    kind: PhantomData<K>,
}

/// A TCP server: yields [`TcpStream`](crate::net::TcpStream)s.
pub type TcpServer = Server<kind::Tcp>;
/// A Unix socket server: yields [`UnixStream`](crate::net::UnixStream)s.
pub type UnixServer = Server<kind::Unix>;

impl<K> Clone for Server<K> {
    fn clone(&self) -> Self {
        Server {
            state: self.state.clone(),
            local: self.local.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> fmt::Debug for Server<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.borrow();
        f.debug_struct("Server")
            .field("local", &self.local)
            .field("closed", &s.watch.is_none())
            .field("paused", &s.backoff.is_some())
            .finish()
    }
}

/// What the server's handles and its watcher share.
#[derive(Debug)]
struct Listening {
    /// `None` once closed.
    watch: Option<WatchId>,
    keeps_alive: bool,
    /// The retry timer while paused after an accept error.
    backoff: Option<TimerId>,
    next_delay: Duration,
    /// The current episode of accept errors was reported to the callback.
    reported: bool,
}

/// Errors of one connection only: the next accept may well succeed.
fn concerns_one_connection(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ECONNABORTED
                | libc::EINTR
                | libc::EPROTO
                | libc::EPERM
                | libc::ENETDOWN
                | libc::ENOPROTOOPT
                | libc::EHOSTDOWN
                | libc::ENONET
                | libc::EHOSTUNREACH
                | libc::EOPNOTSUPP
                | libc::ENETUNREACH
        )
    )
}

impl<K> Server<K> {
    /// Watches `socket` (bound and listening) and calls `on_connection` for
    /// each accepted connection. The alive report names the caller.
    #[track_caller]
    pub(crate) fn start(
        ev: &mut EventLoop,
        socket: Socket,
        is_tcp: bool,
        mut on_connection: impl FnMut(&mut EventLoop, io::Result<Stream<K>>) + 'static,
    ) -> io::Result<Server<K>> {
        socket.set_nonblocking(true)?;
        let local = socket.local_addr()?;
        let state = Rc::new(RefCell::new(Listening {
            watch: None,
            keeps_alive: true,
            backoff: None,
            next_delay: FIRST_BACKOFF,
            reported: false,
        }));
        let st = state.clone();
        let watch = ev.watch(socket, Interest::READABLE, move |ev, socket, _| {
            for _ in 0..ACCEPTS_PER_EVENT {
                if st.borrow().watch.is_none() {
                    return; // closed by the previous callback
                }
                match socket.accept() {
                    Ok((conn, _)) => {
                        {
                            let mut s = st.borrow_mut();
                            s.reported = false;
                            s.next_delay = FIRST_BACKOFF;
                        }
                        if is_tcp {
                            let _ = conn.set_tcp_nodelay(true);
                        }
                        let stream = Stream::from_owned(OwnedFd::from(conn), true);
                        on_connection(ev, stream);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(e) if concerns_one_connection(&e) => {}
                    Err(e) => {
                        if pause(ev, &st) {
                            on_connection(ev, Err(e));
                        }
                        return;
                    }
                }
            }
        })?;
        ev.label_watch(watch, "server", std::panic::Location::caller())?;
        state.borrow_mut().watch = Some(watch);
        Ok(Server {
            state,
            local,
            kind: PhantomData,
        })
    }

    /// The address the server was bound to.
    pub(crate) fn sock_addr(&self) -> &SockAddr {
        &self.local
    }

    /// Stops listening and closes the socket, at once: inside the connection
    /// callback too, no further connection is delivered. False if already
    /// closed.
    pub fn close(&self, ev: &mut EventLoop) -> bool {
        let (watch, backoff) = {
            let mut s = self.state.borrow_mut();
            (s.watch.take(), s.backoff.take())
        };
        if let Some(t) = backoff {
            ev.clear_timer(t);
        }
        match watch {
            Some(w) => ev.unwatch(w),
            None => false,
        }
    }

    /// True while the server is paused after an accept error such as
    /// `EMFILE`, waiting for its retry timer.
    pub fn is_paused(&self) -> bool {
        self.state.borrow().backoff.is_some()
    }

    /// True once `close` was called.
    pub fn is_closed(&self) -> bool {
        self.state.borrow().watch.is_none()
    }

    /// Sets whether the server keeps the loop alive (it does by default).
    ///
    /// # Errors
    /// `NotConnected` if closed.
    pub fn set_ref(&self, ev: &mut EventLoop, keep_alive: bool) -> io::Result<()> {
        let (watch, backoff) = {
            let mut s = self.state.borrow_mut();
            s.keeps_alive = keep_alive;
            (s.watch, s.backoff)
        };
        let watch = watch.ok_or_else(closed_error)?;
        if let Some(t) = backoff {
            ev.set_timer_ref(t, keep_alive)?;
        }
        ev.set_watch_ref(watch, keep_alive)
    }
}

/// Stops accepting and arms the retry timer. True if this error starts an
/// episode, and so should be reported.
fn pause(ev: &mut EventLoop, state: &Rc<RefCell<Listening>>) -> bool {
    let (watch, delay, keeps_alive, first) = {
        let mut s = state.borrow_mut();
        let Some(watch) = s.watch else { return false };
        let delay = s.next_delay;
        s.next_delay = (delay * 2).min(MAX_BACKOFF);
        let first = !s.reported;
        s.reported = true;
        (watch, delay, s.keeps_alive, first)
    };
    if let Err(e) = ev.set_interest(watch, Interest::NONE) {
        log::warn!("evloop: pausing a server: {e}");
    }
    let st = state.clone();
    let timer = ev.set_timeout(delay, move |ev| {
        let watch = {
            let mut s = st.borrow_mut();
            s.backoff = None;
            s.watch
        };
        if let Some(w) = watch {
            if let Err(e) = ev.set_interest(w, Interest::READABLE) {
                log::warn!("evloop: resuming a server: {e}");
            }
        }
    });
    if !keeps_alive {
        let _ = ev.set_timer_ref(timer, false); // just made: cannot be stale
    }
    state.borrow_mut().backoff = Some(timer);
    log::debug!("evloop: accept failed; server paused for {delay:?}");
    first
}
