//! UDP sockets.

mod common;

use std::cell::RefCell;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;

use common::{assert_fds_back_to, open_fds, serial};
use evloop::net::udp::UdpSocket;
use evloop::EventLoop;

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
    let with_loop = open_fds();
    let sock = UdpSocket::bind(&mut ev, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = sock.local_addr().unwrap();
    let clone = sock.clone();
    assert!(sock.close(&mut ev));
    assert_eq!(open_fds(), with_loop, "the fd is closed now");
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
