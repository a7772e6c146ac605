//! libuv/Node stream features: `try_write`, `close_reset`, gathered writes,
//! bind before connect, cancellable connects, opening existing fds, and
//! write-callback order.

mod common;

use std::cell::{Cell, RefCell};
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;

use common::{assert_fds_back_to, echo_server, fd_count, open_fds, serial};
use evloop::net::Stream;
use evloop::net::{
    guess_kind, tcp, unix, FdKind, Pipe, TcpServer, TcpStream, UnixServer, UnixStream,
};
use evloop::EventLoop;

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Follows libuv test/test-tcp-try-write.c: try_write writes now or says
/// WouldBlock, and never queues.
#[test]
fn try_write_writes_now_or_would_block_and_never_queues() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    assert_eq!(a.try_write(b"hello").unwrap(), 5);
    assert_eq!(a.write_queue_size(), 0);
    // Fill the socket buffer: try_write then takes part or nothing.
    let chunk = vec![7u8; 64 * 1024];
    let mut total = 5;
    loop {
        match a.try_write(&chunk) {
            Ok(n) => total += n,
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::WouldBlock);
                break;
            }
        }
    }
    assert_eq!(a.write_queue_size(), 0, "nothing queued");
    // A queued write makes try_write refuse, so bytes cannot be reordered.
    a.write(&mut ev, b"queued").unwrap();
    assert!(a.write_queue_size() > 0);
    assert_eq!(a.try_write(b"x").unwrap_err().kind(), ErrorKind::WouldBlock);
    // Drain the peer: every byte arrives, in order, the queued ones last.
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    let want = total + 6;
    b.read_start(&mut ev, move |ev, b, data| {
        g.borrow_mut().extend_from_slice(data.unwrap());
        if g.borrow().len() == want {
            b.close(ev);
        }
    })
    .unwrap();
    ev.run().unwrap();
    let got = got.borrow();
    assert_eq!(&got[..5], b"hello");
    assert_eq!(&got[got.len() - 6..], b"queued");
    a.shutdown(&mut ev).unwrap();
    assert_eq!(
        a.try_write(b"x").unwrap_err().raw_os_error(),
        Some(libc::EPIPE)
    );
    a.close(&mut ev);
    assert_eq!(
        a.try_write(b"x").unwrap_err().kind(),
        ErrorKind::NotConnected
    );
}

/// Follows libuv test/test-tcp-close-reset.c: the peer sees ECONNRESET,
/// not EOF; queued writes are cancelled; a second close is a no-op.
#[test]
fn close_reset_sends_rst_and_the_peer_reads_econnreset() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let peer_saw: Rc<RefCell<Option<io::Result<usize>>>> = Rc::default();
    let p = peer_saw.clone();
    let server = tcp::listen(&mut ev, any_port(), Default::default(), move |ev, conn| {
        let conn = conn.unwrap();
        let p = p.clone();
        conn.read_start(ev, move |ev, s, data| {
            *p.borrow_mut() = Some(data.map(|d| d.len()));
            s.close(ev);
        })
        .unwrap();
    })
    .unwrap();
    let addr = server.local_addr().unwrap();
    let cancelled = Rc::new(Cell::new(None));
    let c = cancelled.clone();
    tcp::connect(&mut ev, addr, move |ev, conn| {
        let conn = conn.unwrap();
        let c2 = c.clone();
        let c3 = c.clone();
        // Give the server a moment to accept, then reset.
        ev.set_timeout(std::time::Duration::from_millis(20), move |ev| {
            let big = vec![0u8; 8 << 20]; // cannot all go out at once
            conn.write_with(ev, big, move |_, r| {
                c2.set(Some(r.unwrap_err().raw_os_error()))
            })
            .unwrap();
            assert!(conn.close_reset(ev));
            assert!(!conn.close_reset(ev), "twice: a no-op");
            assert!(!conn.close(ev));
            let _ = c3;
        });
    })
    .unwrap();
    let s = server.clone();
    ev.set_timeout(std::time::Duration::from_millis(500), move |ev| {
        s.close(ev);
    });
    ev.run().unwrap();
    assert_eq!(cancelled.get(), Some(Some(libc::ECANCELED)));
    let saw = peer_saw
        .borrow_mut()
        .take()
        .expect("the server read something");
    // The server may have read some of the big write before the reset
    // arrived; what must never happen is a clean EOF.
    match saw {
        Err(e) => assert_eq!(e.raw_os_error(), Some(libc::ECONNRESET)),
        Ok(n) => assert!(n > 0, "a reset is not an EOF"),
    }
}

/// A stream on which the peer only reads with RST semantics: directly
/// checked with std, without a race on what the server read first.
#[test]
fn close_reset_with_nothing_queued_is_a_reset_for_a_std_peer() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let listener = std::net::TcpListener::bind(any_port()).unwrap();
    let addr = listener.local_addr().unwrap();
    let done = Rc::new(Cell::new(false));
    let d = done.clone();
    tcp::connect(&mut ev, addr, move |ev, conn| {
        assert!(conn.unwrap().close_reset(ev));
        d.set(true);
    })
    .unwrap();
    ev.run().unwrap();
    assert!(done.get());
    let (mut peer, _) = listener.accept().unwrap();
    let mut buf = [0u8; 16];
    let err = peer.read(&mut buf).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
}

/// Follows libuv test/test-tcp-bind-error.c and test-tcp-connect-error
/// cases, and Node's test-net-local-address-port.js: the connection comes
/// from the local address asked for.
#[test]
fn bind_before_connect_uses_the_local_address() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let (server, addr) = echo_server(&mut ev);
    // Pick a free local port by binding and releasing it.
    let local = std::net::TcpListener::bind(any_port())
        .unwrap()
        .local_addr()
        .unwrap();
    let seen = Rc::new(Cell::new(None));
    let s = seen.clone();
    let options = tcp::ConnectOptions {
        local_addr: Some(local),
        ..Default::default()
    };
    tcp::connect_with(&mut ev, addr, options, move |ev, conn| {
        let conn = conn.unwrap();
        s.set(Some(conn.local_addr().unwrap()));
        conn.close(ev);
        server.close(ev);
    })
    .unwrap();
    ev.run().unwrap();
    assert_eq!(seen.get(), Some(local));
    // Errors come from the call, and the callback never runs.
    let v6: SocketAddr = "[::1]:0".parse().unwrap();
    let bad = tcp::ConnectOptions {
        local_addr: Some(v6),
        ..Default::default()
    };
    let err = tcp::connect_with(&mut ev, addr, bad, |_, _| panic!("never")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let taken = std::net::TcpListener::bind(any_port()).unwrap();
    let busy = tcp::ConnectOptions {
        local_addr: Some(taken.local_addr().unwrap()),
        ..Default::default()
    };
    let err = tcp::connect_with(&mut ev, addr, busy, |_, _| panic!("never")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err}");
    ev.run().unwrap();
}

/// Follows libuv test/test-tcp-close-while-connecting.c: a connect that is
/// cancelled before it ends gets ECANCELED once; the socket is closed at
/// once; cancelling twice, or after the callback, is a harmless false.
#[test]
fn a_connect_in_progress_can_be_cancelled() {
    let _g = serial();
    let fds = open_fds();
    let mut ev = EventLoop::new().unwrap();
    // A listener nobody accepts on: the cancel below runs right after the
    // call, so the callback cannot have run, whatever the kernel did.
    let listener = std::net::TcpListener::bind(any_port()).unwrap();
    let results = Rc::new(RefCell::new(Vec::new()));
    let r = results.clone();
    let pending = tcp::connect(&mut ev, listener.local_addr().unwrap(), move |_, conn| {
        r.borrow_mut()
            .push(conn.map(|_| ()).unwrap_err().raw_os_error());
    })
    .unwrap();
    assert!(pending.is_pending());
    assert!(pending.cancel(&mut ev));
    assert!(!pending.is_pending());
    assert!(!pending.cancel(&mut ev), "twice: false");
    assert!(results.borrow().is_empty(), "never inside the call");
    ev.run().unwrap();
    assert_eq!(*results.borrow(), [Some(libc::ECANCELED)]);
    // After the callback ran, cancel does nothing.
    let (server, addr) = echo_server(&mut ev);
    let ok = Rc::new(Cell::new(false));
    let o = ok.clone();
    let c = tcp::connect(&mut ev, addr, move |ev, conn| {
        conn.unwrap().close(ev);
        server.close(ev);
        o.set(true);
    })
    .unwrap();
    ev.run().unwrap();
    assert!(ok.get());
    assert!(!c.cancel(&mut ev));
    drop((ev, listener));
    assert_fds_back_to(fds);
}

/// Cancelling from inside another callback, with a timeout armed: the
/// timer goes too (the loop ends at once rather than after the timeout).
#[test]
fn cancel_clears_the_connect_timeout() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let got = Rc::new(Cell::new(None));
    let g = got.clone();
    // The cancel runs in the ready phase of the first pass, before the
    // poller could report the connect's outcome.
    let listener = std::net::TcpListener::bind(any_port()).unwrap();
    let pending = tcp::connect_timeout(
        &mut ev,
        listener.local_addr().unwrap(),
        std::time::Duration::from_secs(3600),
        move |_, r| g.set(Some(r.map(|_| ()).unwrap_err().raw_os_error())),
    )
    .unwrap();
    ev.call_soon(move |ev| {
        pending.cancel(ev);
    });
    ev.run().unwrap();
    assert_eq!(got.get(), Some(Some(libc::ECANCELED)));
    assert_eq!(ev.pending_timers(), 0);
}

/// Review finding: a Unix connect refused with EAGAIN (the listener's
/// backlog is full) is an error, not a connected stream.
#[test]
fn unix_connect_to_a_full_backlog_fails_with_eagain() {
    let _g = serial();
    let dir = std::env::temp_dir().join(format!("evloop-backlog-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    let path = dir.join("s");
    // A std listener with backlog 0 that nobody accepts on.
    let sock = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).unwrap();
    sock.bind(&socket2::SockAddr::unix(&path).unwrap()).unwrap();
    sock.listen(0).unwrap();
    let mut ev = EventLoop::new().unwrap();
    let outcomes = Rc::new(RefCell::new(Vec::new()));
    for _ in 0..4 {
        let o = outcomes.clone();
        unix::connect(&mut ev, &path, move |ev, r| {
            o.borrow_mut().push(match r {
                Ok(s) => {
                    // A connected stream must really be connected.
                    let connected = s.with_socket(|s| s.peer_addr()).is_ok();
                    s.close(ev);
                    Ok(connected)
                }
                Err(e) => Err(e.raw_os_error()),
            });
        })
        .unwrap();
    }
    ev.run().unwrap();
    let outcomes = outcomes.borrow();
    assert_eq!(outcomes.len(), 4);
    assert!(outcomes.contains(&Err(Some(libc::EAGAIN))), "{outcomes:?}");
    assert!(outcomes
        .iter()
        .all(|o| *o == Ok(true) || *o == Err(Some(libc::EAGAIN))));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Follows libuv test/test-pipe-open / test-tcp-open.c and
/// uv_guess_handle: fds made elsewhere open as the right typed handle, and
/// the wrong constructor is a clear InvalidInput.
#[test]
fn existing_fds_open_as_the_right_kind() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let listener = std::net::TcpListener::bind(any_port()).unwrap();
    let addr = listener.local_addr().unwrap();
    let client = std::net::TcpStream::connect(addr).unwrap();
    let (pr, pw) = std::io::pipe().unwrap();
    let (ua, _ub) = std::os::unix::net::UnixStream::pair().unwrap();
    let dir = std::env::temp_dir().join(format!("evloop-adopt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    let ul = std::os::unix::net::UnixListener::bind(dir.join("l")).unwrap();
    let udp = std::net::UdpSocket::bind(any_port()).unwrap();
    let file = std::fs::File::open("/etc/hostname")
        .or_else(|_| std::fs::File::open("/proc/self/status"))
        .unwrap();
    assert_eq!(guess_kind(listener.as_fd()).unwrap(), FdKind::TcpListener);
    assert_eq!(guess_kind(client.as_fd()).unwrap(), FdKind::TcpStream);
    assert_eq!(guess_kind(pr.as_fd()).unwrap(), FdKind::Pipe);
    assert_eq!(guess_kind(ua.as_fd()).unwrap(), FdKind::UnixStream);
    assert_eq!(guess_kind(ul.as_fd()).unwrap(), FdKind::UnixListener);
    assert_eq!(guess_kind(udp.as_fd()).unwrap(), FdKind::Udp);
    assert_eq!(guess_kind(file.as_fd()).unwrap(), FdKind::File);
    let devnull = std::fs::File::open("/dev/null").unwrap();
    assert_eq!(guess_kind(devnull.as_fd()).unwrap(), FdKind::CharDevice);

    // The wrong constructor says what it got.
    let err = TcpStream::from_fd(OwnedFd::from(listener.try_clone().unwrap())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("TcpListener"), "{err}");
    assert_eq!(
        UnixStream::from_fd(OwnedFd::from(client.try_clone().unwrap()))
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        Pipe::open(OwnedFd::from(client.try_clone().unwrap()))
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    assert!(TcpServer::from_fd(&mut ev, OwnedFd::from(udp), |_, _| {}).is_err());
    assert!(UnixServer::from_fd(&mut ev, OwnedFd::from(pr), |_, _| {}).is_err());

    // The right ones work: an adopted listener serves, an adopted
    // connection talks, an adopted pipe end writes.
    let served = Rc::new(Cell::new(0));
    let s = served.clone();
    let server = TcpServer::from_fd(&mut ev, OwnedFd::from(listener), move |ev, conn| {
        let conn = conn.unwrap();
        conn.write(ev, b"hi").unwrap();
        let c = conn.clone();
        conn.shutdown_with(ev, move |ev, _| {
            c.close(ev);
        })
        .unwrap();
        s.set(s.get() + 1);
    })
    .unwrap();
    assert_eq!(server.local_addr().unwrap(), addr);
    let adopted = TcpStream::from_fd(OwnedFd::from(client)).unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    adopted
        .read_start(&mut ev, move |ev, s, data| match data.unwrap() {
            [] => {
                s.close(ev);
                server.close(ev);
            }
            d => g.borrow_mut().extend_from_slice(d),
        })
        .unwrap();
    let w = Pipe::open(OwnedFd::from(pw)).unwrap();
    w.write(&mut ev, b"pipe").unwrap();
    w.close(&mut ev);
    let unix_adopted = UnixStream::from_fd(OwnedFd::from(ua)).unwrap();
    unix_adopted.close(&mut ev);
    let unix_server = UnixServer::from_fd(&mut ev, OwnedFd::from(ul), |_, _| {}).unwrap();
    unix_server.close(&mut ev);
    ev.run().unwrap();
    assert_eq!(served.get(), 1);
    assert_eq!(*got.borrow(), b"hi");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Review finding: a write that completes at once and one that completes
/// later from the queue call back in the order they were issued, even when
/// issued from an IO callback (where queued writes finish in the IO phase).
#[test]
fn write_callbacks_run_in_order_whatever_path_each_write_took() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    let order = Rc::new(RefCell::new(Vec::new()));
    let o = order.clone();
    let writer = a.clone();
    // Read on `a` so the writes are issued from an IO callback.
    b.write(&mut ev, b"go").unwrap();
    a.read_start(&mut ev, move |ev, a, data| {
        assert_eq!(data.unwrap(), b"go");
        a.read_stop(ev).unwrap();
        let big = vec![1u8; 4 << 20];
        for k in 0..3 {
            let o1 = o.clone();
            writer
                .write_with(ev, b"small", move |_, r| {
                    r.unwrap();
                    o1.borrow_mut().push(format!("small{k}"));
                })
                .unwrap();
            let o2 = o.clone();
            writer
                .write_with(ev, &big, move |_, r| {
                    r.unwrap();
                    o2.borrow_mut().push(format!("big{k}"));
                })
                .unwrap();
        }
        let o3 = o.clone();
        writer
            .shutdown_with(ev, move |_, r| {
                r.unwrap();
                o3.borrow_mut().push("shutdown".into());
            })
            .unwrap();
    })
    .unwrap();
    let total = Rc::new(Cell::new(0usize));
    let t = total.clone();
    b.read_start(&mut ev, move |ev, b, data| match data.unwrap() {
        [] => {
            b.close(ev);
        }
        d => t.set(t.get() + d.len()),
    })
    .unwrap();
    ev.run().unwrap();
    assert_eq!(total.get(), 3 * (5 + (4 << 20)));
    assert_eq!(
        *order.borrow(),
        ["small0", "big0", "small1", "big1", "small2", "big2", "shutdown"]
    );
    a.close(&mut ev);
}

/// Follows libuv's uv__write gathering (test-tcp-writealot.c, and
/// test-ipc-send-recv for mixed fds): many queued small writes go out in
/// order through gathered writes; their callbacks run once each, in order.
#[test]
fn many_queued_small_writes_arrive_in_order_with_their_callbacks() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    // Fill the socket so everything after queues.
    let filler = vec![0u8; 64 * 1024];
    let mut filled = 0;
    while let Ok(n) = a.try_write(&filler) {
        filled += n;
    }
    let calls = Rc::new(RefCell::new(Vec::new()));
    let n = 10_000u32;
    for k in 0..n {
        let c = calls.clone();
        a.write_with(&mut ev, k.to_be_bytes(), move |_, r| {
            r.unwrap();
            c.borrow_mut().push(k);
        })
        .unwrap();
    }
    assert_eq!(a.write_queue_size(), 4 * n as usize);
    let a2 = a.clone();
    a.shutdown_with(&mut ev, move |ev, _| {
        a2.close(ev);
    })
    .unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    b.read_start(&mut ev, move |ev, b, data| match data.unwrap() {
        [] => {
            b.close(ev);
        }
        d => g.borrow_mut().extend_from_slice(d),
    })
    .unwrap();
    ev.run().unwrap();
    let got = got.borrow();
    assert_eq!(got.len(), filled + 4 * n as usize);
    let tail: Vec<u32> = got[filled..]
        .chunks(4)
        .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(tail, (0..n).collect::<Vec<_>>());
    assert_eq!(*calls.borrow(), (0..n).collect::<Vec<_>>());
}

/// Gathered writes on a pipe (writev rather than sendmsg) behave the same.
#[test]
fn gathered_writes_on_a_pipe_keep_order() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let (r, w) = unix::pipe().unwrap();
    let filler = vec![0u8; 64 * 1024];
    let mut filled = 0;
    while let Ok(n) = w.try_write(&filler) {
        filled += n;
    }
    for k in 0..5000u32 {
        w.write(&mut ev, k.to_be_bytes()).unwrap();
    }
    w.shutdown(&mut ev).unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    r.read_start(&mut ev, move |ev, r, data| match data.unwrap() {
        [] => {
            r.close(ev);
        }
        d => g.borrow_mut().extend_from_slice(d),
    })
    .unwrap();
    ev.run().unwrap();
    let got = got.borrow();
    let tail: Vec<u32> = got[filled..]
        .chunks(4)
        .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(tail, (0..5000).collect::<Vec<_>>());
    w.close(&mut ev);
    let _ = (std::io::stdout().flush(),);
}

/// Review finding (fixed): a write callback that writes again (with a callback) on a fd that
/// takes the data at once is run by the *same* `finish_writes_now` loop that
/// ran the previous callback (the new completion is pushed to `completed`,
/// which that loop keeps popping). A self-re-writing callback therefore runs
/// forever inside one ready callback: timers, IO and other threads starve
/// (guarantee 4), and `done` does not run "on a later pass" as `write_with`
/// documents. Before 5e4c8a5 each immediate completion went through its own
/// `call_soon`, so it ran next pass.
#[test]
fn a_chain_of_writes_from_write_callbacks_cannot_starve_the_loop() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap();
    let pipe = Pipe::open(null).unwrap();
    let writes = Rc::new(Cell::new(0u32));
    let seen_by_timer = Rc::new(Cell::new(None));
    fn again<K: 'static>(
        ev: &mut EventLoop,
        s: Stream<K>,
        n: Rc<Cell<u32>>,
        seen: Rc<Cell<Option<u32>>>,
    ) {
        if n.get() == 1 {
            // Set from the first write callback: due at the very next pass.
            let (n, seen) = (n.clone(), seen.clone());
            ev.set_timeout(std::time::Duration::ZERO, move |_| seen.set(Some(n.get())));
        }
        if n.get() >= 200_000 {
            s.close(ev);
            return;
        }
        n.set(n.get() + 1);
        let s2 = s.clone();
        s.write_with(ev, b"x", move |ev, r| {
            r.unwrap();
            again(ev, s2, n, seen)
        })
        .unwrap();
    }
    again(&mut ev, pipe.clone(), writes.clone(), seen_by_timer.clone());
    ev.run().unwrap();
    let at_timer = seen_by_timer.get().unwrap();
    assert!(
        at_timer < 1_000,
        "a zero-delay timer set in the first write callback only ran after {at_timer} \
         chained write callbacks: one pass ran them all"
    );
}

/// Same bug, smaller: a write completed from inside a write callback runs
/// its `done` in the same pass, before a `call_soon` that was queued first.
#[test]
fn a_write_made_in_a_write_callback_completes_on_a_later_pass() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap();
    let pipe = Pipe::open(null).unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let (l, p) = (log.clone(), pipe.clone());
    pipe.write_with(&mut ev, b"a", move |ev, _| {
        l.borrow_mut().push("a done");
        let l2 = l.clone();
        ev.call_soon(move |_| l2.borrow_mut().push("soon queued in a's callback"));
        let l3 = l.clone();
        p.write_with(ev, b"b", move |_, _| l3.borrow_mut().push("b done"))
            .unwrap();
    })
    .unwrap();
    ev.run().unwrap();
    assert_eq!(
        *log.borrow(),
        ["a done", "soon queued in a's callback", "b done"],
        "b's done ran before a call_soon queued before b was written"
    );
}

/// Review finding (fixed): `Pipe::open` documents "`InvalidInput` for a socket", but
/// `refuse_socket` only refuses the kinds `guess_kind` names; a Unix datagram
/// or seqpacket socket (`FdKind::Other`) is accepted as a Pipe, then driven
/// with `read`/`write` (datagram boundaries and passed fds silently lost).
#[test]
fn pipe_open_refuses_unix_datagram_and_seqpacket_sockets() {
    let _g = serial();
    let (a, _b) = std::os::unix::net::UnixDatagram::pair().unwrap();
    let r = Pipe::open(std::os::fd::OwnedFd::from(a));
    assert_eq!(
        r.as_ref().err().map(std::io::Error::kind),
        Some(std::io::ErrorKind::InvalidInput),
        "a datagram socket opened as a Pipe: {r:?}"
    );
    let (s, _t) =
        socket2::Socket::pair(socket2::Domain::UNIX, socket2::Type::SEQPACKET, None).unwrap();
    let r = Pipe::open(std::os::fd::OwnedFd::from(s));
    assert_eq!(
        r.as_ref().err().map(std::io::Error::kind),
        Some(std::io::ErrorKind::InvalidInput),
        "a seqpacket socket opened as a Pipe: {r:?}"
    );
}

/// Review finding (fixed): `guess_kind` (and so every `from_fd` constructor and
/// `Pipe::open`) duplicates the fd just to `fstat` it. At the fd limit the
/// dup fails with EMFILE, so a worker that just received a connection (its
/// fd already counted) cannot adopt it: `TcpStream::from_fd` fails and
/// closes the connection, although adopting it needs no new fd. Runs in a
/// child process, since it lowers RLIMIT_NOFILE.
#[test]
fn from_fd_works_at_the_fd_limit() {
    if std::env::var_os("EVLOOP_FD_LIMIT_CHILD").is_some() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (conn, _) = listener.accept().unwrap();
        // Fill the table up to the limit.
        let used = fd_count() as u64 + 1;
        let lim = libc::rlimit {
            rlim_cur: used,
            rlim_max: 20000,
        };
        // SAFETY: setrlimit reads a valid rlimit; this child process is ours.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
        let mut hold = Vec::new();
        while let Ok(f) = std::fs::File::open("/dev/null") {
            hold.push(f);
        }
        let r = evloop::net::guess_kind(std::os::fd::AsFd::as_fd(&conn));
        let r2 = evloop::net::TcpStream::from_fd(conn.into()).map(drop);
        drop((hold, client, listener));
        assert!(r.is_ok(), "guess_kind at the fd limit: {r:?}");
        assert!(r2.is_ok(), "TcpStream::from_fd at the fd limit: {r2:?}");
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "from_fd_works_at_the_fd_limit",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("EVLOOP_FD_LIMIT_CHILD", "1")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{text}");
}
