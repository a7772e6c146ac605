//! UDP sockets.

mod common;

use std::cell::RefCell;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;

use common::{assert_fds_back_to, fd_count, open_fds, serial};
use evloop::net::udp::{BindOptions, UdpSocket};
use evloop::{ErrorContext, EventLoop};

fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Waits (up to 10 s, no timing assumption) until the socket reports an
/// error to `poll`, e.g. a pending ICMP "port unreachable".
fn wait_for_socket_error(sock: &UdpSocket) {
    use std::os::fd::AsRawFd;
    let fd = sock.with_socket(|s| Ok(s.as_raw_fd())).unwrap();
    let mut p = libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid pollfd on a live socket.
    let n = unsafe { libc::poll(&mut p, 1, 10_000) };
    assert_eq!(n, 1, "an error is pending");
    assert_ne!(p.revents & libc::POLLERR, 0);
}

/// A port nobody listens on: bind one, note it, close it.
fn closed_port() -> SocketAddr {
    std::net::UdpSocket::bind(localhost())
        .unwrap()
        .local_addr()
        .unwrap()
}

#[test]
fn datagrams_both_ways_with_source_addresses() {
    let _g = serial();
    let fds = open_fds();
    let mut ev = EventLoop::new().unwrap();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let a = UdpSocket::bind(&mut ev, any).unwrap();
    let b = UdpSocket::bind(&mut ev, any).unwrap();
    let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    let log = Rc::new(RefCell::new(Vec::new()));
    // b echoes every datagram back to its source, uppercased.
    b.recv_start(&mut ev, |ev, sock, r| {
        let (data, from) = r.unwrap();
        let reply = data.to_ascii_uppercase();
        sock.send_to_with(ev, reply, from, |_, r| r.unwrap())
            .unwrap();
    })
    .unwrap();
    let l = log.clone();
    let b2 = b.clone();
    a.recv_start(&mut ev, move |ev, sock, r| {
        let (data, from) = r.unwrap();
        assert_eq!(from, b_addr);
        l.borrow_mut()
            .push(String::from_utf8(data.to_vec()).unwrap());
        if l.borrow().len() == 3 {
            sock.close(ev);
            b2.close(ev);
        }
    })
    .unwrap();
    let sent = Rc::new(RefCell::new(Vec::new()));
    for msg in ["one", "two", "three"] {
        let s = sent.clone();
        a.send_to_with(&mut ev, msg, b_addr, move |_, r| {
            s.borrow_mut().push(r.is_ok())
        })
        .unwrap();
    }
    assert!(
        sent.borrow().is_empty(),
        "send callbacks never run inside send_to"
    );
    ev.run().unwrap();
    assert_eq!(*sent.borrow(), [true, true, true]);
    assert_eq!(*log.borrow(), ["ONE", "TWO", "THREE"]);
    assert_ne!(a_addr, b_addr);
    assert!(!a.close(&mut ev), "already closed");
    let err = a
        .send_to_with(&mut ev, "x", b_addr, |_, _| panic!("never"))
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotConnected);
    drop((a, b));
    drop(ev);
    assert_fds_back_to(fds);
}

#[test]
fn recv_stop_stops_callbacks() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let a = UdpSocket::bind(&mut ev, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = a.local_addr().unwrap();
    let got = Rc::new(RefCell::new(0));
    let g = got.clone();
    a.recv_start(&mut ev, move |ev, sock, _| {
        *g.borrow_mut() += 1;
        sock.recv_stop(ev);
    })
    .unwrap();
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..5 {
        sender.send_to(b"x", addr).unwrap();
    }
    let a2 = a.clone();
    ev.set_timeout(std::time::Duration::from_millis(30), move |ev| {
        a2.close(ev);
    });
    ev.run().unwrap();
    assert_eq!(*got.borrow(), 1);
}

#[test]
fn broadcast_and_multicast_options() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let s = UdpSocket::bind(&mut ev, "0.0.0.0:0".parse().unwrap()).unwrap();
    s.set_broadcast(true).unwrap();
    assert!(s.with_socket(|s| s.broadcast()).unwrap());
    s.set_multicast_loop_v4(true).unwrap();
    s.set_multicast_ttl_v4(2).unwrap();
    assert_eq!(s.with_socket(|s| s.multicast_ttl_v4()).unwrap(), 2);
    // Join and leave a group on the loopback interface (nothing is sent).
    let group = Ipv4Addr::new(239, 255, 0, 1);
    s.join_multicast_v4(group, Ipv4Addr::LOCALHOST).unwrap();
    s.leave_multicast_v4(group, Ipv4Addr::LOCALHOST).unwrap();
    let again = s
        .leave_multicast_v4(group, Ipv4Addr::LOCALHOST)
        .unwrap_err();
    assert_eq!(
        again.raw_os_error(),
        Some(libc::EADDRNOTAVAIL),
        "not a member any more"
    );
    assert!(s.close(&mut ev));
}

/// Close releases the fd at once, even while other handles live: the port
/// can be bound again, and the clone's calls fail.
#[test]
fn close_releases_the_fd_while_clones_live() {
    let _g = serial();
    let fds = open_fds();
    let mut ev = EventLoop::new().unwrap();
    let with_loop = fd_count();
    let sock = UdpSocket::bind(&mut ev, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = sock.local_addr().unwrap();
    let clone = sock.clone();
    assert!(sock.close(&mut ev));
    assert_eq!(fd_count(), with_loop, "the fd is closed now");
    let again = UdpSocket::bind(&mut ev, addr).expect("the port is free again");
    for err in [
        clone.set_broadcast(true).unwrap_err(),
        clone.local_addr().unwrap_err(),
        clone.with_socket(|s| s.ttl_v4()).unwrap_err(),
        clone
            .recv_start(&mut ev, |_, _, _| panic!("never"))
            .unwrap_err(),
    ] {
        assert_eq!(err.kind(), io::ErrorKind::NotConnected);
    }
    assert!(!clone.close(&mut ev), "closing twice says so");
    assert!(again.close(&mut ev));
    ev.run().unwrap();
    drop((sock, clone, again));
    drop(ev);
    assert_fds_back_to(fds);
}

/// With IP_RECVERR on, an ICMP "port unreachable" is reported, and the
/// socket goes on receiving (Linux queues the error, which keeps the socket
/// "in error" for the poller until the queue is read).
#[test]
fn icmp_errors_are_reported_and_receiving_goes_on() {
    use std::os::fd::AsRawFd;
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let a = UdpSocket::bind(&mut ev, any).unwrap();
    a.with_socket(|s| {
        let on: libc::c_int = 1;
        // SAFETY: setsockopt with a valid int option on a live socket.
        let rc = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_IP,
                libc::IP_RECVERR,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0);
        Ok(())
    })
    .unwrap();
    // A port nobody listens on: bind one, note it, close it.
    let closed_port = std::net::UdpSocket::bind(any)
        .unwrap()
        .local_addr()
        .unwrap();
    let peer = std::net::UdpSocket::bind(any).unwrap();
    let peer_addr = peer.local_addr().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    a.recv_start(&mut ev, move |ev, sock, r| {
        match r {
            Ok((data, from)) => {
                assert_eq!(from, peer_addr);
                l.borrow_mut()
                    .push(String::from_utf8(data.to_vec()).unwrap());
            }
            Err(e) => l.borrow_mut().push(format!("{:?}", e.kind())),
        }
        if l.borrow().iter().filter(|m| m.starts_with("data")).count() == 2 {
            sock.close(ev);
        }
    })
    .unwrap();
    for _ in 0..3 {
        a.send_to(&mut ev, "to nobody", closed_port).unwrap();
    }
    let p = Rc::new(peer);
    let p2 = p.clone();
    let a_addr = a.local_addr().unwrap();
    ev.set_timeout(std::time::Duration::from_millis(50), move |_| {
        p2.send_to(b"data 1", a_addr).unwrap();
        p2.send_to(b"data 2", a_addr).unwrap();
    });
    let guard = ev.set_timeout(std::time::Duration::from_secs(10), |ev| ev.stop());
    ev.set_timer_ref(guard, false).unwrap(); // only a guard against a hang
    ev.run().unwrap();
    ev.clear_timer(guard);
    let log = log.borrow();
    assert!(
        log.iter().any(|m| m == "ConnectionRefused"),
        "the ICMP error is reported: {log:?}"
    );
    assert_eq!(
        log.iter()
            .filter(|m| m.starts_with("data"))
            .collect::<Vec<_>>(),
        ["data 1", "data 2"],
        "receiving went on after the error"
    );
}

/// Closing inside the socket's own receive callback releases the fd at once:
/// the port can be bound again before the callback returns. (Found by a
/// hostile review: the watcher's copy of the socket kept it open.)
#[test]
fn udp_close_inside_recv_callback_releases_the_port_at_once() {
    let _g = serial();
    let fds = open_fds();
    let mut ev = EventLoop::new().unwrap();
    let sock = UdpSocket::bind(&mut ev, localhost()).unwrap();
    let addr = sock.local_addr().unwrap();
    let rebound = Rc::new(RefCell::new(None));
    let rb = rebound.clone();
    let calls = Rc::new(RefCell::new(0));
    let c = calls.clone();
    sock.recv_start(&mut ev, move |ev, s, r| {
        *c.borrow_mut() += 1;
        assert_eq!(r.unwrap().0, b"x");
        assert!(s.close(ev));
        assert!(!s.close(ev), "closing twice says so");
        assert_eq!(
            s.local_addr().unwrap_err().kind(),
            io::ErrorKind::NotConnected
        );
        *rb.borrow_mut() = Some(
            UdpSocket::bind(ev, addr)
                .map(|s2| {
                    s2.close(ev);
                })
                .map_err(|e| e.to_string()),
        );
    })
    .unwrap();
    let sender = std::net::UdpSocket::bind(localhost()).unwrap();
    for _ in 0..3 {
        sender.send_to(b"x", addr).unwrap();
    }
    ev.run().unwrap();
    assert_eq!(*rebound.borrow(), Some(Ok(())), "port free after close");
    assert_eq!(*calls.borrow(), 1, "no datagram delivered after close");
    drop((sock, sender));
    drop(ev);
    assert_fds_back_to(fds);
}

/// follows libuv test/test-udp-connect.c and Node
/// test/parallel/test-dgram-connect.js: a connected socket sends with no
/// address and refuses one (EISCONN), connecting twice is EISCONN,
/// disconnecting twice ENOTCONN, `peer_addr` answers only while connected,
/// and an unconnected socket needs an address (EDESTADDRREQ).
#[test]
fn connect_send_and_disconnect_as_libuv() {
    let _g = serial();
    let fds = open_fds();
    let mut ev = EventLoop::new().unwrap();
    let server = UdpSocket::bind(&mut ev, localhost()).unwrap();
    let server_addr = server.local_addr().unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    server
        .recv_start(&mut ev, move |ev, s, r| {
            let (data, _) = r.unwrap();
            g.borrow_mut()
                .push(String::from_utf8(data.to_vec()).unwrap());
            if g.borrow().len() == 4 {
                s.close(ev);
            }
        })
        .unwrap();
    let client = UdpSocket::bind(&mut ev, localhost()).unwrap();
    let client_port = client.local_addr().unwrap().port();
    let os = |e: io::Error| e.raw_os_error();

    // Not connected yet.
    assert_eq!(
        client.peer_addr().unwrap_err().kind(),
        io::ErrorKind::NotConnected
    );
    assert_eq!(os(client.disconnect().unwrap_err()), Some(libc::ENOTCONN));
    assert_eq!(
        os(client.send(&mut ev, "x").unwrap_err()),
        Some(libc::EDESTADDRREQ)
    );
    assert_eq!(
        os(client.try_send(b"x").unwrap_err()),
        Some(libc::EDESTADDRREQ)
    );

    // The unspecified address means this host (libuv connects to 0.0.0.0).
    client
        .connect(SocketAddr::new(
            Ipv4Addr::UNSPECIFIED.into(),
            server_addr.port(),
        ))
        .unwrap();
    client.disconnect().unwrap();

    client.connect(server_addr).unwrap();
    let elsewhere: SocketAddr = "127.0.0.1:9".parse().unwrap();
    assert_eq!(
        os(client.connect(elsewhere).unwrap_err()),
        Some(libc::EISCONN)
    );
    assert_eq!(
        client.peer_addr().unwrap(),
        server_addr,
        "still the first peer"
    );
    assert_eq!(
        os(client.try_send_to(b"x", server_addr).unwrap_err()),
        Some(libc::EISCONN)
    );
    assert_eq!(
        os(client.send_to(&mut ev, "x", elsewhere).unwrap_err()),
        Some(libc::EISCONN)
    );
    assert_eq!(client.try_send(b"EXIT").unwrap(), 4);
    let sent = Rc::new(RefCell::new(Vec::new()));
    let s1 = sent.clone();
    client
        .send_with(&mut ev, "SENT", move |_, r| {
            s1.borrow_mut().push(r.map_err(|e| e.kind()))
        })
        .unwrap();

    client.disconnect().unwrap();
    assert_eq!(os(client.disconnect().unwrap_err()), Some(libc::ENOTCONN));
    assert_eq!(
        client.peer_addr().unwrap_err().kind(),
        io::ErrorKind::NotConnected
    );
    assert_eq!(
        client.local_addr().unwrap().port(),
        client_port,
        "disconnect keeps the port the OS chose at bind"
    );
    assert_eq!(
        os(client.try_send(b"x").unwrap_err()),
        Some(libc::EDESTADDRREQ)
    );
    assert_eq!(client.try_send_to(b"TOAD", server_addr).unwrap(), 4);
    let s2 = sent.clone();
    client
        .send_to_with(&mut ev, "LAST", server_addr, move |_, r| {
            s2.borrow_mut().push(r.map_err(|e| e.kind()))
        })
        .unwrap();
    assert!(sent.borrow().is_empty(), "no callback inside a send");
    ev.run().unwrap();
    assert_eq!(*sent.borrow(), [Ok(()), Ok(())]);
    assert_eq!(*got.borrow(), ["EXIT", "SENT", "TOAD", "LAST"]);
    assert!(client.close(&mut ev));
    drop((client, server));
    drop(ev);
    assert_fds_back_to(fds);
}

/// A connected socket hears only its peer: a datagram from anyone else is
/// dropped by the kernel; after `disconnect` everyone is heard again (Node
/// test/parallel/test-dgram-connect.js checks the peer, this the filter).
#[test]
fn a_connected_socket_receives_only_from_its_peer() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let sock = UdpSocket::bind(&mut ev, localhost()).unwrap();
    let addr = sock.local_addr().unwrap();
    let peer = std::net::UdpSocket::bind(localhost()).unwrap();
    let stranger = std::net::UdpSocket::bind(localhost()).unwrap();
    let (peer_addr, stranger_addr) = (peer.local_addr().unwrap(), stranger.local_addr().unwrap());
    sock.connect(peer_addr).unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    sock.recv_start(&mut ev, move |ev, s, r| {
        let (data, from) = r.unwrap();
        g.borrow_mut()
            .push((String::from_utf8(data.to_vec()).unwrap(), from));
        match g.borrow().len() {
            1 => s.disconnect().unwrap(),
            2 => {
                s.close(ev);
            }
            _ => unreachable!(),
        }
    })
    .unwrap();
    // The stranger's datagram goes first, and is dropped; the peer's comes.
    stranger.send_to(b"stranger 1", addr).unwrap();
    peer.send_to(b"peer", addr).unwrap();
    let st = Rc::new(stranger);
    let st2 = st.clone();
    // Once disconnected (inside the first callback), the stranger is heard:
    // it sends until then (the interval does not keep the loop alive).
    let guard = ev.set_interval(std::time::Duration::from_millis(20), move |_| {
        let _ = st2.send_to(b"stranger 2", addr);
    });
    ev.set_timer_ref(guard, false).unwrap();
    ev.run().unwrap();
    ev.clear_timer(guard);
    let got = got.borrow();
    assert_eq!(got[0], ("peer".to_string(), peer_addr));
    assert_eq!(got[1], ("stranger 2".to_string(), stranger_addr));
}

/// Bad peers: port 0 is `InvalidInput` (Node: ERR_SOCKET_BAD_PORT), an
/// address of the other family is the OS's error, a closed socket is
/// `NotConnected`; a failed connect leaves the socket unconnected.
#[test]
fn connect_to_bad_addresses_fails_and_leaves_the_socket_unconnected() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let sock = UdpSocket::bind(&mut ev, localhost()).unwrap();
    let port0: SocketAddr = "127.0.0.1:0".parse().unwrap();
    assert_eq!(
        sock.connect(port0).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    let v6: SocketAddr = "[::1]:9".parse().unwrap();
    let err = sock.connect(v6).unwrap_err();
    assert!(
        matches!(
            ErrorContext::os_error(&err),
            Some(libc::EAFNOSUPPORT) | Some(libc::EINVAL)
        ),
        "{err}"
    );
    assert!(err.to_string().starts_with("connect [::1]:9"), "{err}");
    assert_eq!(
        sock.peer_addr().unwrap_err().kind(),
        io::ErrorKind::NotConnected
    );
    assert_eq!(
        sock.disconnect().unwrap_err().raw_os_error(),
        Some(libc::ENOTCONN)
    );
    assert!(sock.close(&mut ev));
    let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
    assert_eq!(
        sock.connect(peer).unwrap_err().kind(),
        io::ErrorKind::NotConnected
    );
    assert_eq!(
        sock.disconnect().unwrap_err().kind(),
        io::ErrorKind::NotConnected
    );
    assert_eq!(
        sock.try_send(b"x").unwrap_err().kind(),
        io::ErrorKind::NotConnected
    );
    assert_eq!(
        sock.send(&mut ev, "x").unwrap_err().kind(),
        io::ErrorKind::NotConnected
    );
    assert!(!sock.has_ref(), "a closed socket keeps nothing alive");
    ev.run().unwrap();
}

/// An ICMP "port unreachable" for a connected socket, no IP_RECVERR needed:
/// while receiving, the receive callback gets ECONNREFUSED and receiving
/// goes on; while not receiving, the error waits and the next send fails
/// with it, then sending works again (as the system calls behave, and as
/// libuv reports it).
#[test]
fn icmp_errors_on_a_connected_socket_reach_the_next_receive_or_send() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let sock = UdpSocket::bind(&mut ev, localhost()).unwrap();
    sock.connect(closed_port()).unwrap();

    // Not receiving: the next send fails with it (and sends nothing); the
    // one after is sent again.
    sock.send(&mut ev, "to nobody").unwrap();
    ev.run().unwrap();
    wait_for_socket_error(&sock);
    let results = Rc::new(RefCell::new(Vec::new()));
    for _ in 0..2 {
        let r = results.clone();
        sock.send_with(&mut ev, "again", move |_, res| {
            r.borrow_mut().push(res.map_err(|e| e.kind()))
        })
        .unwrap();
        ev.run().unwrap();
    }
    assert_eq!(
        *results.borrow(),
        [Err(io::ErrorKind::ConnectionRefused), Ok(())],
        "the first send reports the error, the second is sent"
    );
    // try_send reports it too.
    wait_for_socket_error(&sock);
    assert_eq!(
        sock.try_send(b"x").unwrap_err().kind(),
        io::ErrorKind::ConnectionRefused
    );
    assert_eq!(sock.try_send(b"x").unwrap(), 1);

    // Receiving: the callback gets it, and goes on receiving.
    wait_for_socket_error(&sock);
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    sock.recv_start(&mut ev, move |ev, s, r| {
        l.borrow_mut().push(r.map(|_| ()).map_err(|e| e.kind()));
        if l.borrow().len() == 1 {
            s.send(ev, "once more").unwrap(); // refused again
        } else {
            s.close(ev);
        }
    })
    .unwrap();
    ev.run().unwrap();
    assert_eq!(
        *log.borrow(),
        [
            Err(io::ErrorKind::ConnectionRefused),
            Err(io::ErrorKind::ConnectionRefused)
        ]
    );
}

/// follows libuv test/test-udp-try-send.c: a datagram too large is
/// EMSGSIZE, a small one is sent at once and its length returned; nothing
/// is queued and no callback runs.
#[test]
fn try_send_sends_now_or_fails() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let server = UdpSocket::bind(&mut ev, localhost()).unwrap();
    let server_addr = server.local_addr().unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    server
        .recv_start(&mut ev, move |ev, s, r| {
            let (data, _) = r.unwrap();
            g.borrow_mut().push(data.to_vec());
            if data == b"EXIT" {
                s.close(ev);
            }
        })
        .unwrap();
    let client = UdpSocket::bind(&mut ev, localhost()).unwrap();
    let huge = vec![0u8; 64 * 1024];
    assert_eq!(
        client
            .try_send_to(&huge, server_addr)
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EMSGSIZE)
    );
    assert_eq!(client.try_send_to(b"HELO", server_addr).unwrap(), 4);
    assert_eq!(
        client.try_send_to(b"", server_addr).unwrap(),
        0,
        "an empty datagram"
    );
    assert_eq!(client.try_send_to(b"EXIT", server_addr).unwrap(), 4);
    ev.run().unwrap();
    assert_eq!(
        *got.borrow(),
        [b"HELO".to_vec(), Vec::new(), b"EXIT".to_vec()]
    );
    client.close(&mut ev);
    assert_eq!(
        client.try_send_to(b"x", server_addr).unwrap_err().kind(),
        io::ErrorKind::NotConnected
    );
}

/// `SO_REUSEPORT`: two sockets share a port and both get datagrams; without
/// it the second bind is `AddrInUse` (follows libuv
/// test/test-udp-reuseport.c, which binds twice with UV_UDP_REUSEPORT and
/// checks both receive, and test/test-udp-options.c).
#[test]
fn reuse_port_lets_two_sockets_share_a_port() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let reuse = BindOptions {
        reuse_port: true,
        ..Default::default()
    };
    let a = UdpSocket::bind_with(&mut ev, localhost(), reuse).unwrap();
    let addr = a.local_addr().unwrap();
    let b = UdpSocket::bind_with(&mut ev, addr, reuse).unwrap();
    assert_eq!(b.local_addr().unwrap(), addr);
    assert!(b.with_socket(|s| s.reuse_port()).unwrap());
    let plain = UdpSocket::bind(&mut ev, addr).unwrap_err();
    assert_eq!(plain.kind(), io::ErrorKind::AddrInUse, "{plain}");
    assert!(
        plain.to_string().contains(&format!("bind {addr}")),
        "{plain}"
    );

    // 64 senders (64 source ports): the kernel spreads them over both by a
    // hash of the source; all arrive, and each socket gets some (the chance
    // that one gets none is 2 in 2^64).
    const SENDERS: usize = 64;
    let counts = Rc::new(RefCell::new([0usize; 2]));
    for (k, sock) in [&a, &b].into_iter().enumerate() {
        let c = counts.clone();
        let (a2, b2) = (a.clone(), b.clone());
        sock.recv_start(&mut ev, move |ev, _, r| {
            r.unwrap();
            c.borrow_mut()[k] += 1;
            if c.borrow().iter().sum::<usize>() == SENDERS {
                a2.close(ev);
                b2.close(ev);
            }
        })
        .unwrap();
    }
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| std::net::UdpSocket::bind(localhost()).unwrap())
        .collect();
    for s in &senders {
        s.send_to(b"hi", addr).unwrap();
    }
    ev.run().unwrap();
    let counts = *counts.borrow();
    assert_eq!(counts.iter().sum::<usize>(), SENDERS);
    assert!(
        counts[0] > 0 && counts[1] > 0,
        "both sockets receive: {counts:?}"
    );
}

/// `SO_REUSEADDR` (libuv UV_UDP_REUSEADDR, Node's reuseAddr): sockets that
/// all set it may bind one address; one that does not set it may not join.
#[test]
fn reuse_address_lets_sockets_bind_one_address() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let reuse = BindOptions {
        reuse_address: true,
        ..Default::default()
    };
    let a = UdpSocket::bind_with(&mut ev, localhost(), reuse).unwrap();
    let addr = a.local_addr().unwrap();
    assert!(a.with_socket(|s| s.reuse_address()).unwrap());
    let b = UdpSocket::bind_with(&mut ev, addr, reuse).unwrap();
    assert_eq!(
        UdpSocket::bind(&mut ev, addr).unwrap_err().kind(),
        io::ErrorKind::AddrInUse
    );
    assert!(a.close(&mut ev) && b.close(&mut ev));
    // Without the option, a second bind fails even if the first had it.
    let c = UdpSocket::bind(&mut ev, localhost()).unwrap();
    assert_eq!(
        UdpSocket::bind_with(&mut ev, c.local_addr().unwrap(), reuse)
            .unwrap_err()
            .kind(),
        io::ErrorKind::AddrInUse
    );
    c.close(&mut ev);
}

/// follows libuv test/test-ref.c udp_ref2 and Node
/// test/parallel/test-dgram-unref.js: an unref'd socket that waits for
/// datagrams lets `run()` return; ref'd again, it keeps the loop alive.
#[test]
fn an_unrefd_receiving_socket_lets_run_return() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let sock = UdpSocket::bind(&mut ev, localhost()).unwrap();
    assert!(sock.has_ref(), "ref'd by default");
    sock.recv_start(&mut ev, |_, _, _| panic!("nothing is sent"))
        .unwrap();
    sock.set_ref(&mut ev, false).unwrap();
    assert!(!sock.has_ref());
    assert!(!ev.is_alive());
    ev.run().unwrap(); // returns at once
    sock.set_ref(&mut ev, true).unwrap();
    assert!(sock.has_ref());
    assert!(ev.is_alive());
    assert!(sock.close(&mut ev));
    assert!(!sock.has_ref());
    assert_eq!(
        sock.set_ref(&mut ev, true).unwrap_err().kind(),
        io::ErrorKind::NotConnected
    );
    assert!(!ev.is_alive());
}

/// follows libuv test/test-ref.c udp_ref3: a send on an unref'd socket
/// still calls back (the send, not the socket, keeps the loop alive).
#[test]
fn a_send_on_an_unrefd_socket_still_calls_back() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let sock = UdpSocket::bind(&mut ev, localhost()).unwrap();
    sock.set_ref(&mut ev, false).unwrap();
    let done = Rc::new(RefCell::new(None));
    let d = done.clone();
    sock.send_to_with(&mut ev, "PING", closed_port(), move |_, r| {
        *d.borrow_mut() = Some(r.is_ok())
    })
    .unwrap();
    ev.run().unwrap();
    assert_eq!(*done.borrow(), Some(true));
    sock.close(&mut ev);
}
