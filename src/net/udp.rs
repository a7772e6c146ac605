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

use crate::event_loop::catch;
use crate::net::stream::closed_error;
use crate::net::ReadBuffer;
use crate::{EventLoop, Interest, WatchId};

type RecvCallback = Box<dyn FnMut(&mut EventLoop, &UdpSocket, io::Result<(&[u8], SocketAddr)>)>;
type SendDone = Box<dyn FnOnce(&mut EventLoop, io::Result<()>)>;

/// Datagrams read per readiness event at most.
const RECVS_PER_EVENT: usize = 32;

struct Inner {
    /// `None` once closed.
    socket: Option<Rc<StdUdp>>,
    watch: Option<WatchId>,
    on_recv: Option<RecvCallback>,
    receiving: bool,
    recv_epoch: u64,
    sends: VecDeque<(Vec<u8>, SocketAddr, SendDone)>,
    interest: Interest,
}

/// A UDP socket on the loop. Clones are handles to the same socket; it stays
/// open until [`UdpSocket::close`].
#[derive(Clone)]
pub struct UdpSocket {
    inner: Rc<RefCell<Inner>>,
}

struct Shared(Rc<StdUdp>);
impl std::os::fd::AsFd for Shared {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl UdpSocket {
    /// Binds a UDP socket to `addr` (port 0 picks a free port).
    pub fn bind(ev: &mut EventLoop, addr: SocketAddr) -> io::Result<UdpSocket> {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        socket.bind(&addr.into())?;
        socket.set_nonblocking(true)?;
        let socket = Rc::new(StdUdp::from(socket));
        let inner = Rc::new(RefCell::new(Inner {
            socket: Some(socket.clone()),
            watch: None,
            on_recv: None,
            receiving: false,
            recv_epoch: 0,
            sends: VecDeque::new(),
            interest: Interest::NONE,
        }));
        let udp = UdpSocket { inner };
        let me = udp.clone();
        let watch = ev.watch(Shared(socket), Interest::NONE, move |ev, _, r| {
            if r.writable {
                me.flush(ev);
            }
            if r.readable || r.error {
                me.receive(ev, r.error);
            }
            me.update_interest(ev);
        })?;
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

    /// Sends one datagram to `addr`; `done` runs on a later pass with the
    /// outcome. Fails at once (without `done`) if the socket is closed.
    pub fn send_to(
        &self,
        ev: &mut EventLoop,
        data: impl Into<Vec<u8>>,
        addr: SocketAddr,
        done: impl FnOnce(&mut EventLoop, io::Result<()>) + 'static,
    ) -> io::Result<()> {
        let data = data.into();
        let socket = self.socket()?;
        let mut i = self.inner.borrow_mut();
        if i.sends.is_empty() {
            match socket.send_to(&data, addr) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                result => {
                    drop(i);
                    ev.call_soon(move |ev| done(ev, result.map(|_| ())));
                    return Ok(());
                }
            }
        }
        i.sends.push_back((data, addr, Box::new(done)));
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
        {
            let mut i = self.inner.borrow_mut();
            if i.watch.is_none() {
                return Err(closed_error());
            }
            i.on_recv = Some(Box::new(on_recv));
            i.receiving = true;
            i.recv_epoch += 1;
        }
        self.update_interest(ev);
        Ok(())
    }

    /// Stops receiving; no receive callback runs after this returns.
    pub fn recv_stop(&self, ev: &mut EventLoop) {
        {
            let mut i = self.inner.borrow_mut();
            i.on_recv = None;
            i.receiving = false;
            i.recv_epoch += 1;
        }
        self.update_interest(ev);
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
        let (watch, sends) = {
            let mut i = self.inner.borrow_mut();
            i.on_recv = None;
            i.receiving = false;
            i.socket = None;
            (i.watch.take(), std::mem::take(&mut i.sends))
        };
        let Some(watch) = watch else { return false };
        ev.unwatch(watch);
        for (_, _, done) in sends {
            ev.call_soon(move |ev| done(ev, Err(io::Error::from_raw_os_error(libc::ECANCELED))));
        }
        true
    }

    fn update_interest(&self, ev: &mut EventLoop) {
        let (watch, want) = {
            let mut i = self.inner.borrow_mut();
            let want = Interest {
                readable: i.receiving,
                writable: !i.sends.is_empty(),
            };
            let Some(watch) = i.watch else { return };
            if want == i.interest {
                return;
            }
            i.interest = want;
            (watch, want)
        };
        if let Err(e) = ev.set_interest(watch, want) {
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
            let (done, result) = sent;
            done(ev, result);
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
            let (result, mut cb, epoch) = {
                let mut i = self.inner.borrow_mut();
                let Some(socket) = i.socket.clone() else {
                    return;
                };
                if !i.receiving {
                    if errored {
                        // Nobody to tell: clear the error so it cannot spin.
                        while dequeue_error(&socket) {}
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
                        while dequeue_error(&socket) {}
                        match socket.take_error() {
                            Ok(Some(e)) => Err(e),
                            _ => return,
                        }
                    }
                    r => r,
                };
                let Some(cb) = i.on_recv.take() else { return };
                (result, cb, i.recv_epoch)
            };
            let result = catch(|| match result {
                Ok((n, from)) => cb(ev, self, Ok((&buf[..n], from))),
                Err(e) => cb(ev, self, Err(e)),
            });
            let mut i = self.inner.borrow_mut();
            if i.recv_epoch == epoch && i.receiving {
                i.on_recv = Some(cb);
            }
            drop(i);
            if let Err(p) = result {
                std::panic::resume_unwind(p);
            }
        }
    }
}

/// Reads one entry of the socket's error queue (`IP_RECVERR`), dropping it.
/// False if the queue is empty.
fn dequeue_error(socket: &StdUdp) -> bool {
    use std::os::fd::AsRawFd;
    let mut data = [0u8; 64];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: an all-zero msghdr is valid (no name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    // SAFETY: `msg` points at one valid iovec over `data`, both live for the
    // call; MSG_DONTWAIT keeps it from blocking.
    let n = unsafe {
        libc::recvmsg(
            socket.as_raw_fd(),
            &mut msg,
            libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT,
        )
    };
    n >= 0
}
