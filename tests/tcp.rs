//! TCP streams, listeners and connects.

mod common;

use std::cell::{Cell, RefCell};
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

use common::{assert_fds_back_to, echo_server, open_fds, serial};
use evloop::net::{tcp, TcpStream};
use evloop::EventLoop;

#[test]
fn thousand_ping_pong_round_trips() {
    let _g = serial();
    let fds = open_fds();
    let mut ev = EventLoop::new().unwrap();
    let (server, addr) = echo_server(&mut ev);
    let trips = Rc::new(Cell::new(0u32));
    let t = trips.clone();
    let started = std::time::Instant::now();
    tcp::connect(&mut ev, addr, move |ev, conn| {
        let conn = conn.unwrap();
        assert_eq!(conn.peer_addr().unwrap(), addr);
        let mut pending = Vec::new();
        conn.read_start(ev, move |ev, s, data| {
            pending.extend_from_slice(data.unwrap());
            if pending.len() < 5 {
                return;
            }
            assert_eq!(&pending[..], b"PING\n");
            pending.clear();
            t.set(t.get() + 1);
            if t.get() == 1000 {
                s.close(ev);
                server.close(ev);
            } else {
                s.write_with(ev, b"PING\n", |_, r| r.unwrap()).unwrap();
            }
        })
        .unwrap();
        conn.write_with(ev, b"PING\n", |_, r| r.unwrap()).unwrap();
    })
    .unwrap();
    ev.run().unwrap();
    assert_eq!(trips.get(), 1000);
    // For the record (run with --release --nocapture); not asserted.
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "1000 round trips in {secs:.4} s: {:.0} round trips/s",
        1000.0 / secs
    );
    drop(ev);
    assert_fds_back_to(fds);
}

#[test]
fn eight_mebibytes_echoed_back_byte_exact() {
    let _g = serial();
    let fds = open_fds();
    const N: usize = 8 << 20;
    let mut ev = EventLoop::new().unwrap();
    let (server, addr) = echo_server(&mut ev);
    let data: Vec<u8> = (0..N).map(|i| (i % 253) as u8 ^ (i >> 16) as u8).collect();
    let received = Rc::new(RefCell::new(Vec::with_capacity(N)));
    let r = received.clone();
    let d = data.clone();
    let wrote = Rc::new(Cell::new(false));
    let w = wrote.clone();
    tcp::connect(&mut ev, addr, move |ev, conn| {
        let conn = conn.unwrap();
        let below = conn.write_with(ev, d, move |_, res| {
            res.unwrap();
            w.set(true);
        });
        assert!(!below.unwrap(), "8 MiB is above the high water mark");
        assert!(conn.write_queue_size() > 0);
        conn.read_start(ev, move |ev, s, chunk| {
            let chunk = chunk.unwrap();
            r.borrow_mut().extend_from_slice(chunk);
            if r.borrow().len() == N {
                s.close(ev);
                server.close(ev);
            }
        })
        .unwrap();
    })
    .unwrap();
    ev.run().unwrap();
    assert!(wrote.get());
    assert_eq!(received.borrow().len(), N);
    assert!(*received.borrow() == data, "byte-exact");
    drop(ev);
    assert_fds_back_to(fds);
}

#[test]
fn five_hundred_concurrent_connections_on_one_loop() {
    let _g = serial();
    let fds = open_fds();
    let mut ev = EventLoop::new().unwrap();
    let (server, addr) = echo_server(&mut ev);
    let done = Rc::new(Cell::new(0));
    let open = Rc::new(RefCell::new(Vec::new()));
    for i in 0..500u32 {
        let (done, open, server) = (done.clone(), open.clone(), server.clone());
        tcp::connect(&mut ev, addr, move |ev, conn| {
            let conn = conn.unwrap();
            open.borrow_mut().push(conn.clone());
            let msg = format!("hello {i}\n");
            let expect = msg.clone().into_bytes();
            let mut got = Vec::new();
            conn.read_start(ev, move |ev, s, data| {
                got.extend_from_slice(data.unwrap());
                if got.len() == expect.len() {
                    assert_eq!(got, expect);
                    done.set(done.get() + 1);
                    s.close(ev);
                    if done.get() == 500 {
                        server.close(ev);
                    }
                }
            })
            .unwrap();
            conn.write_with(ev, msg, |_, r| r.unwrap()).unwrap();
        })
        .unwrap();
    }
    ev.run().unwrap();
    assert_eq!(done.get(), 500);
    assert_eq!(open.borrow().len(), 500, "all 500 connected");
    drop(open);
    drop(ev);
    assert_fds_back_to(fds);
}

#[test]
fn connect_refused_is_an_error_in_the_callback() {
    let _g = serial();
    let fds = open_fds();
    let mut ev = EventLoop::new().unwrap();
    // Find a port nobody listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = Rc::new(RefCell::new(None));
    let e = err.clone();
    tcp::connect(&mut ev, ([127, 0, 0, 1], port).into(), move |_, r| {
        *e.borrow_mut() = Some(r.unwrap_err().kind());
    })
    .unwrap();
    assert!(err.borrow().is_none(), "never inside connect");
    ev.run().unwrap();
    assert_eq!(*err.borrow(), Some(io::ErrorKind::ConnectionRefused));
    drop(ev);
    assert_fds_back_to(fds);
}

#[test]
fn connect_timeout_uses_the_loops_timers() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    // A listener whose backlog is full and never accepts: SYNs go unanswered.
    let full = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    full.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    full.listen(0).unwrap();
    let addr = full.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    let result = Rc::new(RefCell::new(None));
    // Fill the backlog until a connect stalls.
    for _ in 0..8 {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.set_nonblocking(true).unwrap();
        let _ = s.connect(&addr.into());
        fillers.push(s);
    }
    let r = result.clone();
    tcp::connect_timeout(&mut ev, addr, Duration::from_millis(200), move |_, res| {
        *r.borrow_mut() = Some(res.map(|_| ()).map_err(|e| e.kind()));
    })
    .unwrap();
    ev.run().unwrap();
    assert_eq!(*result.borrow(), Some(Err(io::ErrorKind::TimedOut)));
}

#[test]
fn peer_reset_mid_stream_reaches_the_read_callback() {
    let _g = serial();
    let fds = open_fds();
    let mut ev = EventLoop::new().unwrap();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s2 = seen.clone();
    let server = tcp::listen(
        &mut ev,
        "127.0.0.1:0".parse().unwrap(),
        Default::default(),
        move |ev, conn| {
            let conn = conn.unwrap();
            let seen = s2.clone();
            conn.read_start(ev, move |ev, s, data| match data {
                Ok(bytes) if !bytes.is_empty() => seen.borrow_mut().push(Ok(bytes.to_vec())),
                Ok(_) => seen.borrow_mut().push(Err(io::ErrorKind::UnexpectedEof)),
                Err(e) => {
                    seen.borrow_mut().push(Err(e.kind()));
                    s.close(ev);
                }
            })
            .unwrap();
        },
    )
    .unwrap();
    let addr = server.local_addr().unwrap();
    let srv = server.clone();
    tcp::connect(&mut ev, addr, move |ev, conn| {
        let conn = conn.unwrap();
        conn.write_with(ev, b"partial", |_, r| r.unwrap()).unwrap();
        // After the data went out, reset: SO_LINGER 0 then close sends RST.
        ev.set_timeout(Duration::from_millis(20), move |ev| {
            conn.with_socket(|s| s.set_linger(Some(Duration::ZERO)))
                .unwrap();
            conn.close(ev);
            srv.close(ev);
        });
    })
    .unwrap();
    ev.run().unwrap();
    let seen = seen.borrow();
    assert_eq!(seen[0], Ok(b"partial".to_vec()));
    assert_eq!(seen[1], Err(io::ErrorKind::ConnectionReset));
    assert_eq!(seen.len(), 2);
    drop(ev);
    assert_fds_back_to(fds);
}

#[test]
fn write_after_close_is_an_error_and_close_twice_too() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let (server, addr) = echo_server(&mut ev);
    let checked = Rc::new(Cell::new(false));
    let c = checked.clone();
    tcp::connect(&mut ev, addr, move |ev, conn| {
        let conn = conn.unwrap();
        conn.close(ev);
        assert!(conn.is_closed());
        let err = conn
            .write_with(ev, b"x", |_, _| panic!("callback of a refused write"))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotConnected);
        assert!(!conn.close_with(ev, |_| panic!("second close callback")));
        assert!(conn.read_start(ev, |_, _, _| {}).is_err());
        server.close(ev);
        c.set(true);
    })
    .unwrap();
    ev.run().unwrap();
    assert!(checked.get());
}

#[test]
fn close_with_32_queued_writes_runs_all_write_callbacks_before_the_close_callback() {
    let _g = serial();
    let fds = open_fds();
    let mut ev = EventLoop::new().unwrap();
    // A server that accepts and never reads, so writes pile up.
    let held = Rc::new(RefCell::new(Vec::<TcpStream>::new()));
    let h = held.clone();
    let server = tcp::listen(
        &mut ev,
        "127.0.0.1:0".parse().unwrap(),
        Default::default(),
        move |_, c| h.borrow_mut().push(c.unwrap()),
    )
    .unwrap();
    let addr = server.local_addr().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    // The server side goes when the client's close callback ran (not at a
    // fixed time, which a slow run under valgrind could beat).
    let server_side = Rc::new(RefCell::new(Some((server, held))));
    tcp::connect(&mut ev, addr, move |ev, conn| {
        let conn = conn.unwrap();
        for i in 0..32 {
            let l = l.clone();
            conn.write_with(ev, vec![b'x'; 256 * 1024], move |_, r| {
                l.borrow_mut().push(match r {
                    Ok(()) => format!("ok {i}"),
                    Err(e) if e.raw_os_error() == Some(libc::ECANCELED) => format!("cancelled {i}"),
                    Err(e) => format!("error {i}: {e}"),
                })
            })
            .unwrap();
        }
        assert!(conn.write_queue_size() > 0, "some writes are still queued");
        let l = l.clone();
        let closing = conn.close_with(ev, move |ev| {
            l.borrow_mut().push("closed".into());
            let (server, held) = server_side.borrow_mut().take().unwrap();
            server.close(ev); // at once: no accept after this
            for c in held.borrow().iter() {
                c.close(ev);
            }
        });
        assert!(closing);
    })
    .unwrap();
    ev.run().unwrap();
    let log = log.borrow();
    assert_eq!(log.len(), 33);
    assert_eq!(log[32], "closed");
    for (i, line) in log[..32].iter().enumerate() {
        assert!(
            line == &format!("ok {i}") || line == &format!("cancelled {i}"),
            "{line}"
        );
    }
    assert!(log.iter().any(|l| l.starts_with("cancelled")), "{log:?}");
    drop(ev);
    assert_fds_back_to(fds);
}

#[test]
fn read_stop_really_stops_callbacks() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let (server, addr) = echo_server(&mut ev);
    let reads = Rc::new(Cell::new(0));
    let r = reads.clone();
    tcp::connect(&mut ev, addr, move |ev, conn| {
        let conn = conn.unwrap();
        conn.read_start(ev, move |ev, s, _| {
            r.set(r.get() + 1);
            s.read_stop(ev).unwrap();
        })
        .unwrap();
        for _ in 0..5 {
            conn.write_with(ev, b"data", |_, res| res.unwrap()).unwrap();
        }
        ev.set_timeout(Duration::from_millis(50), move |ev| {
            conn.close(ev);
            server.close(ev);
        });
    })
    .unwrap();
    ev.run().unwrap();
    assert_eq!(
        reads.get(),
        1,
        "nothing after read_stop, though echoes kept coming"
    );
}

#[test]
fn shutdown_half_closes_after_flushing() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let (server, addr) = echo_server(&mut ev);
    let echoed = Rc::new(RefCell::new(Vec::new()));
    let e = echoed.clone();
    let order = Rc::new(RefCell::new(Vec::new()));
    let o = order.clone();
    tcp::connect(&mut ev, addr, move |ev, conn| {
        let conn = conn.unwrap();
        let o2 = o.clone();
        conn.write_with(ev, vec![7u8; 300_000], move |_, r| {
            r.unwrap();
            o2.borrow_mut().push("write");
        })
        .unwrap();
        let o3 = o.clone();
        conn.shutdown_with(ev, move |_, r| {
            r.unwrap();
            o3.borrow_mut().push("shutdown");
        })
        .unwrap();
        assert!(conn.write(ev, b"late").is_err(), "write after shutdown");
        conn.read_start(ev, move |ev, s, data| match data.unwrap() {
            [] => {
                s.close(ev);
                server.close(ev);
            }
            bytes => e.borrow_mut().extend_from_slice(bytes),
        })
        .unwrap();
    })
    .unwrap();
    ev.run().unwrap();
    assert_eq!(*order.borrow(), ["write", "shutdown"]);
    assert_eq!(
        echoed.borrow().len(),
        300_000,
        "the echo came back, then EOF"
    );
}

#[test]
fn socket_options_and_addresses() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let (server, addr) = echo_server(&mut ev);
    tcp::connect(&mut ev, addr, move |ev, conn| {
        let conn = conn.unwrap();
        assert!(
            conn.with_socket(|s| s.tcp_nodelay()).unwrap(),
            "nodelay on by default"
        );
        conn.set_nodelay(false).unwrap();
        assert!(!conn.with_socket(|s| s.tcp_nodelay()).unwrap());
        conn.set_keepalive(Some(Duration::from_secs(30))).unwrap();
        assert!(conn.with_socket(|s| s.keepalive()).unwrap());
        assert_eq!(conn.peer_addr().unwrap(), addr);
        assert_eq!(conn.local_addr().unwrap().ip(), addr.ip());
        conn.close(ev);
        server.close(ev);
    })
    .unwrap();
    ev.run().unwrap();
}

#[test]
fn reuse_port_lets_two_listeners_share_a_port() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let opts = tcp::ListenOptions {
        backlog: 16,
        reuse_port: true,
    };
    let a = tcp::listen(&mut ev, "127.0.0.1:0".parse().unwrap(), opts, |_, _| {}).unwrap();
    let b = tcp::listen(&mut ev, a.local_addr().unwrap(), opts, |_, _| {}).unwrap();
    assert_eq!(a.local_addr().unwrap(), b.local_addr().unwrap());
    let plain = tcp::listen(
        &mut ev,
        a.local_addr().unwrap(),
        Default::default(),
        |_, _| {},
    );
    assert_eq!(plain.unwrap_err().kind(), io::ErrorKind::AddrInUse);
    a.close(&mut ev);
    b.close(&mut ev);
}

#[test]
fn writing_to_a_peer_that_is_gone_is_epipe_not_sigpipe() {
    let _g = serial();
    // Rust programs start with SIGPIPE ignored; C programs do not. Put the
    // default (deadly) action back so that this test would die without
    // MSG_NOSIGNAL.
    // SAFETY: setting a signal disposition with valid arguments.
    let old = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let mut ev = EventLoop::new().unwrap();
    let server = tcp::listen(
        &mut ev,
        "127.0.0.1:0".parse().unwrap(),
        Default::default(),
        |ev, c| {
            c.unwrap().close(ev);
        },
    )
    .unwrap();
    let addr = server.local_addr().unwrap();
    let errors = Rc::new(RefCell::new(Vec::new()));
    let e = errors.clone();
    tcp::connect(&mut ev, addr, move |ev, conn| {
        let conn = conn.unwrap();
        let e = e.clone();
        ev.set_timeout(Duration::from_millis(30), move |ev| {
            for _ in 0..50 {
                let e = e.clone();
                if conn
                    .write_with(ev, vec![1u8; 4096], move |_, r| {
                        if let Err(err) = r {
                            e.borrow_mut().push(err.kind());
                        }
                    })
                    .is_err()
                {
                    break;
                }
            }
            let c2 = conn.clone();
            ev.set_timeout(Duration::from_millis(30), move |ev| {
                let _ = c2.close(ev);
                server.close(ev);
            });
        });
    })
    .unwrap();
    ev.run().unwrap();
    let errors = errors.borrow();
    assert!(
        errors
            .iter()
            .any(|k| *k == io::ErrorKind::BrokenPipe || *k == io::ErrorKind::ConnectionReset),
        "{errors:?}"
    );
    // SAFETY: as above, restoring the previous action.
    unsafe { libc::signal(libc::SIGPIPE, old) };
}

#[test]
fn water_marks_and_drain_callback() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    // A server that starts reading only after 50 ms.
    let server = tcp::listen(
        &mut ev,
        "127.0.0.1:0".parse().unwrap(),
        Default::default(),
        |ev, c| {
            let c = c.unwrap();
            ev.set_timeout(Duration::from_millis(50), move |ev| {
                c.read_start(ev, |ev, s, data| {
                    if data.map_or(true, |d| d.is_empty()) {
                        s.close(ev);
                    }
                })
                .unwrap();
            });
        },
    )
    .unwrap();
    let addr = server.local_addr().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    tcp::connect(&mut ev, addr, move |ev, conn| {
        let conn = conn.unwrap();
        assert!(
            conn.set_write_water_marks(10, 20).is_err(),
            "low above high"
        );
        conn.set_write_water_marks(64 * 1024, 1024).unwrap();
        let l2 = l.clone();
        conn.on_drain(move |ev, s| {
            l2.borrow_mut()
                .push(format!("drained at {}", s.write_queue_size()));
            s.close(ev);
        });
        // Fill the socket buffers until write says "above the high mark".
        let mut writes = 0;
        while conn
            .write_with(ev, vec![0u8; 64 * 1024], |_, r| r.unwrap())
            .unwrap()
        {
            writes += 1;
            assert!(
                writes < 1000,
                "the queue never rose above the high water mark"
            );
        }
        assert!(conn.write_queue_size() > 64 * 1024);
        l.borrow_mut().push("above high".to_string());
        let s2 = server.clone();
        ev.set_timeout(Duration::from_millis(200), move |ev| {
            s2.close(ev);
        });
    })
    .unwrap();
    ev.run().unwrap();
    let log = log.borrow();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0], "above high");
    let left: usize = log[1].strip_prefix("drained at ").unwrap().parse().unwrap();
    assert!(
        left <= 1024,
        "drain runs at or below the low water mark: {left}"
    );
}

/// Ten clients wait in the backlog; closing the server inside the first
/// connection callback delivers no other (the rest are refused by the OS).
#[test]
fn server_close_inside_the_connection_callback_takes_effect_at_once() {
    let _g = serial();
    let fds = open_fds();
    let mut ev = EventLoop::new().unwrap();
    let calls = Rc::new(Cell::new(0));
    let server_cell: Rc<RefCell<Option<evloop::net::TcpServer>>> = Rc::new(RefCell::new(None));
    let (c, sc) = (calls.clone(), server_cell.clone());
    let server = tcp::listen(
        &mut ev,
        "127.0.0.1:0".parse().unwrap(),
        Default::default(),
        move |ev, conn| {
            c.set(c.get() + 1);
            conn.unwrap().close(ev);
            let server = sc.borrow().clone().unwrap();
            assert!(server.close(ev));
            assert!(!server.close(ev), "closing twice says so");
        },
    )
    .unwrap();
    let addr = server.local_addr().unwrap();
    *server_cell.borrow_mut() = Some(server);
    let clients: Vec<_> = (0..10)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    ev.run().unwrap();
    assert_eq!(calls.get(), 1);
    drop(clients);
    server_cell.borrow_mut().take();
    drop(ev);
    assert_fds_back_to(fds);
}

fn quiet_panics() {
    std::panic::set_hook(Box::new(|_| {}));
}

/// A read callback that panics (with a panic handler set) is kept, as if it
/// had returned: later bytes reach it, EOF reaches it once, and the loop
/// does not spin afterwards.
#[test]
fn a_panicking_read_callback_keeps_the_stream_defined() {
    let _g = serial();
    quiet_panics();
    let mut ev = EventLoop::new().unwrap();
    let panics = Rc::new(Cell::new(0));
    let p = panics.clone();
    ev.set_panic_handler(move |_, _| p.set(p.get() + 1));
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let stream = evloop::net::UnixStream::from_std(a).unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    stream
        .read_start(&mut ev, move |ev, s, data| {
            let data = data.unwrap();
            g.borrow_mut().push(data.to_vec());
            if data == b"panic" {
                panic!("in the read callback");
            }
            if data.is_empty() {
                s.close(ev);
            }
        })
        .unwrap();
    let mut b = b;
    io::Write::write_all(&mut b, b"panic").unwrap();
    ev.run_once().unwrap();
    assert_eq!(panics.get(), 1);
    io::Write::write_all(&mut b, b"after").unwrap();
    drop(b);
    ev.run().unwrap();
    assert_eq!(
        *got.borrow(),
        [b"panic".to_vec(), b"after".to_vec(), Vec::new()],
        "nothing read is lost; EOF comes once"
    );

    // EOF itself panics: reading had ended, so nothing is polled again.
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let stream = evloop::net::UnixStream::from_std(a).unwrap();
    stream
        .read_start(&mut ev, |_, _, data| {
            assert!(!data.unwrap().is_empty(), "EOF");
        })
        .unwrap();
    drop(b);
    let before = ev.iterations();
    let t = ev.set_timeout(Duration::from_millis(200), |ev| ev.stop());
    ev.run().unwrap();
    ev.clear_timer(t);
    assert_eq!(panics.get(), 2);
    assert!(ev.iterations() - before < 20, "no spin after the panic");
    stream.close(&mut ev);
    ev.run().unwrap();
    let _ = std::panic::take_hook();
}

/// 200 queued writes, the 5th callback panics: every other callback still
/// runs exactly once, in order, with or without a panic handler.
#[test]
fn a_panicking_write_callback_loses_no_other_callback() {
    let _g = serial();
    quiet_panics();
    for with_handler in [true, false] {
        let mut ev = EventLoop::new().unwrap();
        let panics = Rc::new(Cell::new(0));
        if with_handler {
            let p = panics.clone();
            ev.set_panic_handler(move |_, _| p.set(p.get() + 1));
        }
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let stream = evloop::net::UnixStream::from_std(a).unwrap();
        stream.set_write_water_marks(1 << 30, 0).unwrap();
        let done = Rc::new(RefCell::new(Vec::new()));
        let chunk = vec![7u8; 16 * 1024];
        for i in 0..200 {
            let d = done.clone();
            stream
                .write_with(&mut ev, &chunk, move |_, r| {
                    r.unwrap();
                    d.borrow_mut().push(i);
                    if i == 4 {
                        panic!("in write callback {i}");
                    }
                })
                .unwrap();
        }
        // The peer reads everything on a thread.
        let reader = std::thread::spawn(move || {
            let mut b = b;
            let mut all = Vec::new();
            io::Read::read_to_end(&mut b, &mut all).unwrap();
            all.len()
        });
        let s = stream.clone();
        let d = done.clone();
        let closer = ev.set_interval(Duration::from_millis(1), move |ev| {
            if d.borrow().len() == 200 && !s.is_closed() {
                s.close(ev);
            }
        });
        loop {
            match catch_unwind(AssertUnwindSafe(|| ev.run_once())) {
                Ok(_) if stream.is_closed() => break,
                Ok(r) => {
                    r.unwrap();
                }
                Err(_) => panics.set(panics.get() + 1),
            }
        }
        ev.clear_timer(closer);
        ev.run().unwrap();
        assert_eq!(reader.join().unwrap(), 200 * 16 * 1024);
        assert_eq!(*done.borrow(), (0..200).collect::<Vec<_>>());
        assert_eq!(panics.get(), 1);
    }
    let _ = std::panic::take_hook();
}
