//! UDP sockets with callbacks: `send_to` with a completion callback, and a
//! receive callback per datagram with its source address.
//!
//! A send is tried at once; if the socket buffer is full it is queued and
//! sent when the socket is writable. Either way the callback runs on a later
//! pass. [`UdpSocket::try_send`] is the other choice: now or `WouldBlock`,
//! never queued.
//!
//! A socket can be *connected* to one peer ([`UdpSocket::connect`], as libuv
//! and Node): sends then take no address (giving one is `EISCONN`, giving
//! none to an unconnected socket `EDESTADDRREQ`, as in libuv), and the
//! kernel drops datagrams from anyone else.
//!
//! Errors reported by ICMP (a port with no listener: `ECONNREFUSED`) reach
//! the receive callback as `Err`, and receiving goes on. Linux reports them
//! for connected sockets, and for any socket with `IP_RECVERR` on. While
//! nobody receives, such an error waits on the socket and the next send
//! fails with it (its callback gets `Err`, or `try_send` returns it), as
//! with the plain system calls. With `IP_RECVERR`, Linux also keeps each
//! error on the socket's error queue, which makes the socket report an error
//! to the poller until the queue is read; the socket reads (and drops) those
//! entries, so it neither spins nor stops.
//!
//! [`UdpSocket::close`] releases the fd at once, whatever handles remain,
//! even inside the socket's own receive callback: the watcher watches the
//! fd by number and never owns it, and `close` takes it out of the poller
//! before closing it.
//! A receive callback that panics is kept, as if it had returned.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket as StdUdp};
use std::os::fd::AsRawFd;
use std::rc::Rc;

use socket2::{Domain, Protocol, SockRef, Socket, Type};

use crate::net::callback::{sync_interest, Lendable};
use crate::net::stream::closed_error;
use crate::net::{with_context, ReadBuffer};
use crate::panic::catch;
use crate::{sys, EventLoop, Interest, WatchId};

type RecvCallback = Box<dyn FnMut(&mut EventLoop, &UdpSocket, io::Result<(&[u8], SocketAddr)>)>;
type SendDone = Box<dyn FnOnce(&mut EventLoop, io::Result<()>)>;

/// Datagrams read per readiness event at most.
const RECVS_PER_EVENT: usize = 32;

/// A datagram waiting for the socket to turn writable: its bytes, its
/// destination (`None`: the connected peer) and its completion callback.
struct QueuedSend {
    data: Vec<u8>,
    to: Option<SocketAddr>,
    done: Option<SendDone>,
}

struct Inner {
    /// `None` once closed. The watcher does not own the fd (it watches the
    /// raw number), so dropping this closes the socket at once, even inside
    /// the socket's own receive callback; `close` unwatches first.
    socket: Option<Rc<StdUdp>>,
    watch: Option<WatchId>,
    on_recv: Lendable<RecvCallback>,
    receiving: bool,
    sends: VecDeque<QueuedSend>,
    interest: Interest,
    /// Connected to one peer ([`UdpSocket::connect`]).
    connected: bool,
    /// Asked to keep the loop alive ([`UdpSocket::set_ref`]).
    keep_alive: bool,
    /// What the watcher was last told: `keep_alive`, or sends are queued
    /// (a queued send keeps the loop alive even on an unref'd socket, as a
    /// libuv send request does, so its callback is never stranded).
    watch_ref: bool,
    /// The address bound to (with the port the OS chose, if it chose).
    bound: SocketAddr,
}

/// Options for [`UdpSocket::bind_with`]; the default sets none of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BindOptions {
    /// Set `SO_REUSEADDR` before binding (libuv `UV_UDP_REUSEADDR`, Node's
    /// `reuseAddr`): sockets that all set it may bind the same address, as
    /// multicast receivers do. Linux delivers each unicast datagram to one
    /// of them.
    pub reuse_address: bool,
    /// Set `SO_REUSEPORT` before binding (libuv `UV_UDP_REUSEPORT`, Node's
    /// `reusePort`): sockets of the same user that all set it may bind the
    /// same address, and the kernel spreads incoming datagrams over them by
    /// source address, for one receiving loop per core.
    pub reuse_port: bool,
}

/// A UDP socket on the loop. Clones are handles to the same socket; it stays
/// open until [`UdpSocket::close`].
#[derive(Clone)]
pub struct UdpSocket {
    inner: Rc<RefCell<Inner>>,
}

impl std::fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let i = self.inner.borrow();
        f.debug_struct("UdpSocket")
            .field(
                "local",
                &i.socket.as_ref().and_then(|s| s.local_addr().ok()),
            )
            .field("connected", &i.connected)
            .field("receiving", &i.receiving)
            .field("queued_sends", &i.sends.len())
            .finish()
    }
}

/// `EISCONN`: a destination given to a connected socket (as libuv).
fn is_connected_error() -> io::Error {
    io::Error::from_raw_os_error(libc::EISCONN)
}

/// `EDESTADDRREQ`: no destination given to a socket that is not connected.
fn no_destination_error() -> io::Error {
    io::Error::from_raw_os_error(libc::EDESTADDRREQ)
}

/// One datagram to `to`, or to the connected peer.
fn send_one(socket: &StdUdp, data: &[u8], to: Option<SocketAddr>) -> io::Result<usize> {
    match to {
        Some(addr) => socket.send_to(data, addr),
        None => socket.send(data),
    }
}

/// Checks a send's destination against the socket's state, as libuv does:
/// an address for a connected socket, or none for an unconnected one, is an
/// error (the kernel would accept the first and pick the peer silently).
fn check_destination(connected: bool, to: Option<SocketAddr>) -> io::Result<()> {
    match (connected, to) {
        (true, Some(_)) => Err(is_connected_error()),
        (false, None) => Err(no_destination_error()),
        _ => Ok(()),
    }
}

impl UdpSocket {
    /// Binds a UDP socket to `addr` (port 0 picks a free port).
    ///
    /// # Errors
    /// The OS error of `socket` or `bind`, naming the call and the address.
    #[track_caller]
    pub fn bind(ev: &mut EventLoop, addr: SocketAddr) -> io::Result<UdpSocket> {
        UdpSocket::bind_with(ev, addr, BindOptions::default())
    }

    /// Binds a UDP socket to `addr` with `options` (address or port reuse).
    ///
    /// ```
    /// use evloop::net::udp::{BindOptions, UdpSocket};
    /// # let mut ev = evloop::EventLoop::new()?;
    /// let reuse = BindOptions { reuse_port: true, ..Default::default() };
    /// let a = UdpSocket::bind_with(&mut ev, "127.0.0.1:0".parse().unwrap(), reuse)?;
    /// let b = UdpSocket::bind_with(&mut ev, a.local_addr()?, reuse)?; // same port
    /// # a.close(&mut ev); b.close(&mut ev);
    /// # std::io::Result::Ok(())
    /// ```
    ///
    /// # Errors
    /// The OS error of `socket`, `setsockopt` or `bind`, naming the call and
    /// the address: `AddrInUse` if another socket has the address and either
    /// of them did not ask for reuse.
    #[track_caller]
    pub fn bind_with(
        ev: &mut EventLoop,
        addr: SocketAddr,
        options: BindOptions,
    ) -> io::Result<UdpSocket> {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
            .map_err(|e| with_context(e, "socket"))?;
        if options.reuse_address {
            socket
                .set_reuse_address(true)
                .map_err(|e| with_context(e, "setsockopt SO_REUSEADDR"))?;
        }
        if options.reuse_port {
            socket
                .set_reuse_port(true)
                .map_err(|e| with_context(e, "setsockopt SO_REUSEPORT"))?;
        }
        socket
            .bind(&addr.into())
            .map_err(|e| with_context(e, format!("bind {addr}")))?;
        socket.set_nonblocking(true)?;
        let socket = Rc::new(StdUdp::from(socket));
        let bound = socket.local_addr()?;
        let fd = socket.as_raw_fd();
        let inner = Rc::new(RefCell::new(Inner {
            socket: Some(socket),
            watch: None,
            on_recv: Lendable::default(),
            receiving: false,
            sends: VecDeque::new(),
            interest: Interest::NONE,
            connected: false,
            keep_alive: true,
            watch_ref: true,
            bound,
        }));
        let udp = UdpSocket { inner };
        let me = udp.clone();
        let on_ready = move |ev: &mut EventLoop, _: std::os::fd::RawFd, r: crate::Readiness| {
            if r.writable {
                me.flush(ev);
            }
            if r.readable || r.error {
                me.receive(ev, r.error);
            }
            me.update_interest(ev);
        };
        // SAFETY: `fd` belongs to the socket in `Inner`, which is only
        // dropped by `close` after `unwatch` (or, once the watcher is gone,
        // when the loop drops the watcher that holds the last handle), so
        // it stays open while watched.
        let watch = unsafe { ev.watch_raw_fd(fd, Interest::NONE, on_ready) }?;
        ev.label_watch(watch, "udp", std::panic::Location::caller())?;
        udp.inner.borrow_mut().watch = Some(watch);
        Ok(udp)
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket()?.local_addr()
    }

    /// The socket, or `NotConnected` once closed.
    fn socket(&self) -> io::Result<Rc<StdUdp>> {
        self.inner.borrow().socket.clone().ok_or_else(closed_error)
    }

    /// Connects the socket to one peer (libuv `uv_udp_connect`, Node's
    /// `socket.connect`). Nothing goes on the wire: from now on
    /// [`send`](UdpSocket::send) (no address) goes to `peer`, the kernel drops
    /// datagrams from any other source, [`peer_addr`](UdpSocket::peer_addr)
    /// answers, and ICMP errors for the peer (`ECONNREFUSED`: no one listens
    /// there) are reported (see [`recv_start`](UdpSocket::recv_start)). The
    /// unspecified address (`0.0.0.0`, `::`) means this host, as in
    /// `connect(2)`.
    ///
    /// # Errors
    /// `EISCONN` if already connected ([`disconnect`](UdpSocket::disconnect)
    /// first); `InvalidInput` for port 0 (as Node: nothing can be reached
    /// there); the OS error of `connect` (an address of the other family:
    /// `EAFNOSUPPORT` or `EINVAL`); `NotConnected` once closed.
    pub fn connect(&self, peer: SocketAddr) -> io::Result<()> {
        let socket = self.socket()?;
        if self.inner.borrow().connected {
            return Err(is_connected_error());
        }
        if peer.port() == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("evloop: connect {peer}: port 0 cannot be reached"),
            ));
        }
        socket
            .connect(peer)
            .map_err(|e| with_context(e, format!("connect {peer}")))?;
        self.inner.borrow_mut().connected = true;
        Ok(())
    }

    /// Dissolves the association made by [`connect`](UdpSocket::connect)
    /// (libuv: `uv_udp_connect` with `NULL`; Node's `disconnect()`): the
    /// socket again takes datagrams from anyone, and sends need an address.
    /// The socket keeps its local port (Linux would drop a port the OS had
    /// chosen at bind; evloop binds it again).
    ///
    /// # Errors
    /// `ENOTCONN` (`NotConnected`) if not connected, or once closed; the OS
    /// error of `connect(AF_UNSPEC)`, or of binding the old address again
    /// (the socket is then disconnected with no port until it sends).
    pub fn disconnect(&self) -> io::Result<()> {
        let socket = self.socket()?;
        if !self.inner.borrow().connected {
            return Err(io::Error::from_raw_os_error(libc::ENOTCONN));
        }
        sys::disconnect_datagram(&*socket).map_err(|e| with_context(e, "disconnect"))?;
        let bound = {
            let mut i = self.inner.borrow_mut();
            i.connected = false;
            i.bound
        };
        if socket.local_addr()?.port() != bound.port() {
            SockRef::from(&*socket)
                .bind(&bound.into())
                .map_err(|e| with_context(e, format!("bind {bound} again after disconnect")))?;
        }
        Ok(())
    }

    /// The connected peer (libuv `uv_udp_getpeername`, Node's
    /// `remoteAddress()`).
    ///
    /// # Errors
    /// `NotConnected` if not connected, or once closed.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.socket()?.peer_addr()
    }

    /// Sends one datagram to `addr`, with no completion callback (see
    /// [`send_to_with`](UdpSocket::send_to_with)).
    ///
    /// # Errors
    /// `NotConnected` if the socket is closed; `EISCONN` if it is connected
    /// (use [`send`](UdpSocket::send)).
    pub fn send_to(
        &self,
        ev: &mut EventLoop,
        data: impl Into<Vec<u8>>,
        addr: SocketAddr,
    ) -> io::Result<()> {
        self.send_inner(ev, data.into(), Some(addr), None)
    }

    /// Sends one datagram to `addr`; `done` runs on a later pass with the
    /// outcome.
    ///
    /// # Errors
    /// As [`send_to`](UdpSocket::send_to); `done` then never runs.
    pub fn send_to_with(
        &self,
        ev: &mut EventLoop,
        data: impl Into<Vec<u8>>,
        addr: SocketAddr,
        done: impl FnOnce(&mut EventLoop, io::Result<()>) + 'static,
    ) -> io::Result<()> {
        self.send_inner(ev, data.into(), Some(addr), Some(Box::new(done)))
    }

    /// Sends one datagram to the connected peer, with no completion callback
    /// (see [`send_with`](UdpSocket::send_with)).
    ///
    /// # Errors
    /// `NotConnected` if the socket is closed; `EDESTADDRREQ` if it is not
    /// connected (use [`send_to`](UdpSocket::send_to)).
    pub fn send(&self, ev: &mut EventLoop, data: impl Into<Vec<u8>>) -> io::Result<()> {
        self.send_inner(ev, data.into(), None, None)
    }

    /// Sends one datagram to the connected peer; `done` runs on a later pass
    /// with the outcome (`ECONNREFUSED` if an ICMP error from the peer was
    /// pending and nobody was receiving to hear it).
    ///
    /// # Errors
    /// As [`send`](UdpSocket::send); `done` then never runs.
    pub fn send_with(
        &self,
        ev: &mut EventLoop,
        data: impl Into<Vec<u8>>,
        done: impl FnOnce(&mut EventLoop, io::Result<()>) + 'static,
    ) -> io::Result<()> {
        self.send_inner(ev, data.into(), None, Some(Box::new(done)))
    }

    /// Sends one datagram to the connected peer now, or not at all (libuv
    /// `uv_udp_try_send` with no address); returns its length. Nothing is
    /// queued and no callback runs.
    ///
    /// # Errors
    /// `WouldBlock` if the socket buffer is full, or if sends are queued
    /// already (a datagram sent now would overtake them, so libuv answers
    /// `EAGAIN` too); `EDESTADDRREQ` if not connected; `EMSGSIZE` for a
    /// datagram too large; `NotConnected` once closed; any other OS error of
    /// `send`, such as a pending `ECONNREFUSED`.
    pub fn try_send(&self, data: &[u8]) -> io::Result<usize> {
        self.try_send_inner(data, None)
    }

    /// Sends one datagram to `addr` now, or not at all (libuv
    /// `uv_udp_try_send`); returns its length.
    ///
    /// # Errors
    /// As [`try_send`](UdpSocket::try_send), but `EISCONN` if the socket is
    /// connected.
    pub fn try_send_to(&self, data: &[u8], addr: SocketAddr) -> io::Result<usize> {
        self.try_send_inner(data, Some(addr))
    }

    fn try_send_inner(&self, data: &[u8], to: Option<SocketAddr>) -> io::Result<usize> {
        let socket = self.socket()?;
        {
            let i = self.inner.borrow();
            check_destination(i.connected, to)?;
            if !i.sends.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "evloop: try_send while sends are queued (it would overtake them)",
                ));
            }
        }
        send_one(&socket, data, to)
    }

    fn send_inner(
        &self,
        ev: &mut EventLoop,
        data: Vec<u8>,
        to: Option<SocketAddr>,
        done: Option<SendDone>,
    ) -> io::Result<()> {
        let socket = self.socket()?;
        let mut i = self.inner.borrow_mut();
        check_destination(i.connected, to)?;
        if i.sends.is_empty() {
            match send_one(&socket, &data, to) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                result => {
                    drop(i);
                    if let Some(done) = done {
                        ev.call_soon(move |ev| done(ev, result.map(|_| ())));
                    }
                    return Ok(());
                }
            }
        }
        i.sends.push_back(QueuedSend { data, to, done });
        drop(i);
        self.update_interest(ev);
        Ok(())
    }

    /// Starts receiving: `on_recv` gets each datagram and its source, or an
    /// error, and keeps receiving. The error is one ICMP reported: on a
    /// connected socket (or one with `IP_RECVERR`), `ECONNREFUSED` when the
    /// peer's port has no listener (a datagram sent earlier was refused).
    ///
    /// # Errors
    /// `NotConnected` once closed.
    pub fn recv_start(
        &self,
        ev: &mut EventLoop,
        on_recv: impl FnMut(&mut EventLoop, &UdpSocket, io::Result<(&[u8], SocketAddr)>) + 'static,
    ) -> io::Result<()> {
        let old = {
            let mut i = self.inner.borrow_mut();
            if i.watch.is_none() {
                return Err(closed_error());
            }
            i.receiving = true;
            i.on_recv.set(Box::new(on_recv))
        };
        drop(old); // outside the borrow: its destructor may use the socket
        self.update_interest(ev);
        Ok(())
    }

    /// Stops receiving; no receive callback runs after this returns.
    pub fn recv_stop(&self, ev: &mut EventLoop) {
        let dropped = {
            let mut i = self.inner.borrow_mut();
            i.receiving = false;
            i.on_recv.clear()
        };
        drop(dropped);
        self.update_interest(ev);
    }

    /// Sets whether the socket keeps the loop alive while receiving or
    /// sending (it does by default; libuv `uv_ref`/`uv_unref`, Node's
    /// `ref()`/`unref()`). An unref'd socket still receives and sends while
    /// the loop runs for other reasons.
    ///
    /// # Errors
    /// `NotConnected` if closed.
    pub fn set_ref(&self, ev: &mut EventLoop, keep_alive: bool) -> io::Result<()> {
        {
            let mut i = self.inner.borrow_mut();
            if i.watch.is_none() {
                return Err(closed_error());
            }
            i.keep_alive = keep_alive;
        }
        self.update_interest(ev);
        Ok(())
    }

    /// True unless [`set_ref`](UdpSocket::set_ref)`(false)` was called
    /// (libuv `uv_has_ref`, Node's `hasRef()`); false once closed.
    pub fn has_ref(&self) -> bool {
        let i = self.inner.borrow();
        i.watch.is_some() && i.keep_alive
    }

    /// Allows sending to broadcast addresses.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.socket()?.set_broadcast(on)
    }

    /// Joins an IPv4 multicast group on `interface` (`0.0.0.0`: the default).
    pub fn join_multicast_v4(&self, group: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        self.socket()?.join_multicast_v4(&group, &interface)
    }

    /// Leaves an IPv4 multicast group.
    pub fn leave_multicast_v4(&self, group: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        self.socket()?.leave_multicast_v4(&group, &interface)
    }

    /// Whether multicast datagrams sent are looped back to this host.
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.socket()?.set_multicast_loop_v4(on)
    }

    /// Time-to-live of outgoing multicast datagrams.
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.socket()?.set_multicast_ttl_v4(ttl)
    }

    /// Runs `f` with the socket, for options not wrapped here;
    /// `NotConnected` once closed.
    pub fn with_socket<T>(&self, f: impl FnOnce(SockRef<'_>) -> io::Result<T>) -> io::Result<T> {
        f(SockRef::from(&*self.socket()?))
    }

    /// Closes the socket and releases its fd at once (so its port can be
    /// bound again), whatever handles remain, inside its own receive
    /// callback too (the callback runs on; the receive loop stops);
    /// queued sends fail with `ECANCELED` on a later pass. False if
    /// already closed.
    pub fn close(&self, ev: &mut EventLoop) -> bool {
        let (watch, socket, sends, on_recv) = {
            let mut i = self.inner.borrow_mut();
            i.receiving = false;
            (
                i.watch.take(),
                i.socket.take(),
                std::mem::take(&mut i.sends),
                i.on_recv.clear(),
            )
        };
        drop(on_recv);
        let Some(watch) = watch else { return false };
        // Out of the poller first, then the fd closes (the last `Rc`: the
        // receive and send paths hold theirs only inside a borrow).
        ev.unwatch(watch);
        drop(socket);
        for send in sends {
            if let Some(done) = send.done {
                ev.call_soon(move |ev| {
                    done(ev, Err(io::Error::from_raw_os_error(libc::ECANCELED)))
                });
            }
        }
        true
    }

    /// True once `close` was called.
    pub fn is_closed(&self) -> bool {
        self.inner.borrow().watch.is_none()
    }

    fn update_interest(&self, ev: &mut EventLoop) {
        let mut i = self.inner.borrow_mut();
        let want = Interest {
            readable: i.receiving,
            writable: !i.sends.is_empty(),
        };
        let Some(watch) = i.watch else { return };
        if let Err(e) = sync_interest(ev, watch, &mut i.interest, want) {
            log::warn!("evloop: udp interest change failed: {e}");
        }
        let want_ref = i.keep_alive || !i.sends.is_empty();
        if want_ref != i.watch_ref {
            match ev.set_watch_ref(watch, want_ref) {
                Ok(()) => i.watch_ref = want_ref,
                Err(e) => log::warn!("evloop: udp ref change failed: {e}"),
            }
        }
    }

    fn flush(&self, ev: &mut EventLoop) {
        loop {
            let sent = {
                let mut i = self.inner.borrow_mut();
                let Some(socket) = i.socket.clone() else {
                    return;
                };
                let Some(send) = i.sends.front() else {
                    return;
                };
                match send_one(&socket, &send.data, send.to) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    result => {
                        let send = i.sends.pop_front().expect("front exists");
                        (send.done, result.map(|_| ()))
                    }
                }
            };
            if let (Some(done), result) = sent {
                done(ev, result);
            }
        }
    }

    /// Receives what is waiting. `errored`: the poller reported an error, so
    /// the error queue may hold entries to read.
    fn receive(&self, ev: &mut EventLoop, errored: bool) {
        let mut buf = ReadBuffer::lend(ev);
        let result = catch(|| self.receive_into(ev, &mut buf, errored));
        ReadBuffer::give_back(ev, buf);
        if let Err(p) = result {
            std::panic::resume_unwind(p);
        }
    }

    fn receive_into(&self, ev: &mut EventLoop, buf: &mut [u8], errored: bool) {
        for _ in 0..RECVS_PER_EVENT {
            let (result, mut lent) = {
                let mut i = self.inner.borrow_mut();
                let Some(socket) = i.socket.clone() else {
                    return;
                };
                if !i.receiving {
                    if !errored {
                        return;
                    }
                    // Nobody receives to hear it. The error queue's copies
                    // are dropped (they would keep the fd "in error" and
                    // spin). The socket's pending error goes to the next
                    // send, as the kernel would report it there: to the
                    // queued send due now, if any (the fd is in the poller
                    // for it, and must not stay "in error"), or else to the
                    // next send made (the watcher is out of the poller
                    // meanwhile, so nothing spins).
                    while sys::dequeue_socket_error(&*socket) {}
                    if i.sends.is_empty() {
                        return;
                    }
                    let Ok(Some(e)) = socket.take_error() else {
                        return;
                    };
                    let send = i.sends.pop_front().expect("not empty");
                    drop(i);
                    if let Some(done) = send.done {
                        done(ev, Err(e));
                    }
                    return;
                }
                let result = match socket.recv_from(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if !errored {
                            return;
                        }
                        // recv_from reports the socket's pending error
                        // (SO_ERROR) once; the queue's copies are dropped,
                        // and whatever error their removal left pending is
                        // reported last.
                        while sys::dequeue_socket_error(&*socket) {}
                        match socket.take_error() {
                            Ok(Some(e)) => Err(e),
                            _ => return,
                        }
                    }
                    r => r,
                };
                let Some(lent) = i.on_recv.lend() else { return };
                (result, lent)
            };
            let called = catch(|| match result {
                Ok((n, from)) => (lent.f)(ev, self, Ok((&buf[..n], from))),
                Err(e) => (lent.f)(ev, self, Err(e)),
            });
            self.inner.borrow_mut().on_recv.give_back(lent);
            if let Err(p) = called {
                std::panic::resume_unwind(p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `try_send` while a send is queued is `WouldBlock`, even though the
    /// socket could send now: sending would overtake the queued datagram
    /// (libuv's `uv_udp_try_send` answers `EAGAIN` the same way). A unit
    /// test because loopback sends never find a full socket buffer, so a
    /// real queue cannot be built from outside.
    #[test]
    fn try_send_while_a_send_is_queued_would_block() {
        let mut ev = EventLoop::new().unwrap();
        let sock = UdpSocket::bind(&mut ev, "127.0.0.1:0".parse().unwrap()).unwrap();
        let to = sock.local_addr().unwrap();
        let cancelled = Rc::new(RefCell::new(None));
        let c = cancelled.clone();
        sock.inner.borrow_mut().sends.push_back(QueuedSend {
            data: b"queued".to_vec(),
            to: Some(to),
            done: Some(Box::new(move |_, r| {
                *c.borrow_mut() = Some(r.unwrap_err().raw_os_error())
            })),
        });
        let err = sock.try_send_to(b"now", to).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        // The destination is still checked first.
        sock.connect(to).unwrap();
        assert_eq!(
            sock.try_send_to(b"now", to).unwrap_err().raw_os_error(),
            Some(libc::EISCONN)
        );
        assert_eq!(
            sock.try_send(b"now").unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        assert!(sock.close(&mut ev));
        ev.run().unwrap();
        assert_eq!(*cancelled.borrow(), Some(Some(libc::ECANCELED)));
    }
}
