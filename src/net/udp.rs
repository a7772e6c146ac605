//! UDP sockets with callbacks: `send_to` with a completion callback, and a
//! receive callback per datagram with its source address.
//!
//! A send is tried at once; if the socket buffer is full it is queued and
//! sent when the socket is writable. Either way the callback runs on a later
//! pass.
//!
//! Errors reported by ICMP (a port with no listener: `ECONNREFUSED`) reach
//! the receive callback as `Err`, and receiving goes on. With `IP_RECVERR`
//! on, Linux also keeps each such error on the socket's error queue, which
//! makes the socket report an error to the poller until the queue is read;
//! the socket reads (and drops) those entries, so it neither spins nor stops.
//! [`UdpSocket::close`] releases the fd at once, whatever handles remain.
//! A receive callback that panics is kept, as if it had returned.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket as StdUdp};
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

struct Inner {
    /// `None` once closed.
    socket: Option<Rc<StdUdp>>,
    watch: Option<WatchId>,
    on_recv: Lendable<RecvCallback>,
    receiving: bool,
    sends: VecDeque<(Vec<u8>, SocketAddr, Option<SendDone>)>,
    interest: Interest,
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
            .field("receiving", &i.receiving)
            .field("queued_sends", &i.sends.len())
            .finish()
    }
}

/// The socket, shared by the handles and the watcher.
struct UdpFd(Rc<StdUdp>);
impl std::os::fd::AsFd for UdpFd {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl UdpSocket {
    /// Binds a UDP socket to `addr` (port 0 picks a free port).
    ///
    /// # Errors
    /// The OS error of `socket` or `bind`, naming the call and the address.
    #[track_caller]
    pub fn bind(ev: &mut EventLoop, addr: SocketAddr) -> io::Result<UdpSocket> {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
            .map_err(|e| with_context(e, "socket"))?;
        socket
            .bind(&addr.into())
            .map_err(|e| with_context(e, format!("bind {addr}")))?;
        socket.set_nonblocking(true)?;
        let socket = Rc::new(StdUdp::from(socket));
        let inner = Rc::new(RefCell::new(Inner {
            socket: Some(socket.clone()),
            watch: None,
            on_recv: Lendable::default(),
            receiving: false,
            sends: VecDeque::new(),
            interest: Interest::NONE,
        }));
        let udp = UdpSocket { inner };
        let me = udp.clone();
        let watch = ev.watch(UdpFd(socket), Interest::NONE, move |ev, _, r| {
            if r.writable {
                me.flush(ev);
            }
            if r.readable || r.error {
                me.receive(ev, r.error);
            }
            me.update_interest(ev);
        })?;
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

    /// Sends one datagram to `addr`, with no completion callback (see
    /// [`send_to_with`](UdpSocket::send_to_with)).
    ///
    /// # Errors
    /// `NotConnected` if the socket is closed.
    pub fn send_to(
        &self,
        ev: &mut EventLoop,
        data: impl Into<Vec<u8>>,
        addr: SocketAddr,
    ) -> io::Result<()> {
        self.send_inner(ev, data.into(), addr, None)
    }

    /// Sends one datagram to `addr`; `done` runs on a later pass with the
    /// outcome.
    ///
    /// # Errors
    /// `NotConnected` if the socket is closed; `done` then never runs.
    pub fn send_to_with(
        &self,
        ev: &mut EventLoop,
        data: impl Into<Vec<u8>>,
        addr: SocketAddr,
        done: impl FnOnce(&mut EventLoop, io::Result<()>) + 'static,
    ) -> io::Result<()> {
        self.send_inner(ev, data.into(), addr, Some(Box::new(done)))
    }

    fn send_inner(
        &self,
        ev: &mut EventLoop,
        data: Vec<u8>,
        addr: SocketAddr,
        done: Option<SendDone>,
    ) -> io::Result<()> {
        let socket = self.socket()?;
        let mut i = self.inner.borrow_mut();
        if i.sends.is_empty() {
            match socket.send_to(&data, addr) {
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
        i.sends.push_back((data, addr, done));
        drop(i);
        self.update_interest(ev);
        Ok(())
    }

    /// Starts receiving: `on_recv` gets each datagram and its source, or an
    /// error (e.g. `ECONNREFUSED` reported by ICMP), and keeps receiving.
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
    /// sending (it does by default; Node's `unref()`).
    ///
    /// # Errors
    /// `NotConnected` if closed.
    pub fn set_ref(&self, ev: &mut EventLoop, keep_alive: bool) -> io::Result<()> {
        let watch = self.inner.borrow().watch.ok_or_else(closed_error)?;
        ev.set_watch_ref(watch, keep_alive)
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
    /// bound again), whatever handles remain; queued sends fail with
    /// `ECANCELED` on a later pass. False if already closed.
    pub fn close(&self, ev: &mut EventLoop) -> bool {
        let (watch, sends, on_recv) = {
            let mut i = self.inner.borrow_mut();
            i.receiving = false;
            i.socket = None;
            (
                i.watch.take(),
                std::mem::take(&mut i.sends),
                i.on_recv.clear(),
            )
        };
        drop(on_recv);
        let Some(watch) = watch else { return false };
        ev.unwatch(watch);
        for (_, _, done) in sends {
            if let Some(done) = done {
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
    }

    fn flush(&self, ev: &mut EventLoop) {
        loop {
            let sent = {
                let mut i = self.inner.borrow_mut();
                let Some(socket) = i.socket.clone() else {
                    return;
                };
                let Some((data, addr, _)) = i.sends.front() else {
                    return;
                };
                match socket.send_to(data, *addr) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    result => {
                        let (_, _, done) = i.sends.pop_front().expect("front exists");
                        (done, result.map(|_| ()))
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
                    if errored {
                        // Nobody to tell: clear the error so it cannot spin.
                        while sys::dequeue_socket_error(&*socket) {}
                        let _ = socket.take_error();
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
