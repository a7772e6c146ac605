//! Passing fds over Unix stream sockets (SCM_RIGHTS): libuv's IPC pipes
//! (`uv_write2` / `uv_pipe_pending_count` / `uv_accept`) and Node's
//! cluster module do this to hand connections to worker processes.

mod common;

use std::cell::{Cell, RefCell};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::OwnedFd;
use std::rc::Rc;

use common::{assert_fds_back_to, open_fds, serial};
use evloop::net::{TcpStream, UnixStream};
use evloop::EventLoop;

/// Follows libuv test/test-ipc-send-recv.c: a TCP connection and a pipe end
/// sent over a Unix socket arrive as working fds with their bytes.
#[test]
fn a_tcp_socket_and_a_pipe_end_arrive_with_their_bytes_and_work() {
    let _g = serial();
    let fds_before = open_fds();
    let mut ev = EventLoop::new().unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    b.receive_fds(true);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (conn, _) = listener.accept().unwrap();
    let (mut pipe_r, pipe_w) = std::io::pipe().unwrap();
    let sent = Rc::new(Cell::new(false));
    let s = sent.clone();
    a.write_with_fds(&mut ev, b"T", vec![conn.into()], move |_, r| {
        r.unwrap();
        s.set(true);
    })
    .unwrap();
    a.write_with_fds(&mut ev, b"P", vec![pipe_w.into()], |_, r| r.unwrap())
        .unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    let mut seen = Vec::new();
    b.read_start(&mut ev, move |ev, b, data| {
        let data = data.unwrap();
        for &byte in data {
            seen.push(byte);
        }
        // The fds of every byte read so far are here.
        for fd in b.take_fds() {
            g.borrow_mut().push(fd);
        }
        if seen.len() == 2 {
            assert_eq!(seen, b"TP");
            b.close(ev);
        }
    })
    .unwrap();
    ev.run().unwrap();
    assert!(sent.get());
    let mut fds = std::mem::take(&mut *got.borrow_mut()).into_iter();
    let (tcp_fd, pipe_fd) = (fds.next().unwrap(), fds.next().unwrap());
    assert!(fds.next().is_none());
    // The received TCP socket talks to the client.
    let tcp = TcpStream::from_fd(tcp_fd).unwrap();
    tcp.write(&mut ev, b"over the passed socket").unwrap();
    tcp.close(&mut ev);
    let mut buf = [0u8; 22];
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"over the passed socket");
    // The received pipe end writes into our pipe.
    let mut w = std::fs::File::from(pipe_fd);
    w.write_all(b"via pipe").unwrap();
    drop(w);
    let mut out = String::new();
    pipe_r.read_to_string(&mut out).unwrap();
    assert_eq!(out, "via pipe");
    a.close(&mut ev);
    ev.run().unwrap();
    drop((ev, client, listener, pipe_r));
    assert_fds_back_to(fds_before);
}

/// Several fds in one write arrive together, in order; fds that nobody
/// takes are closed with the stream (no leak).
#[test]
fn several_fds_in_one_write_and_untaken_fds_are_closed_with_the_stream() {
    let _g = serial();
    let fds_before = open_fds();
    let mut ev = EventLoop::new().unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    b.receive_fds(true);
    let files: Vec<OwnedFd> = (0..3)
        .map(|_| std::fs::File::open("/dev/null").unwrap().into())
        .collect();
    a.write_with_fds(&mut ev, b"xyz", files, |_, r| r.unwrap())
        .unwrap();
    let counts = Rc::new(Cell::new((0, 0)));
    let c = counts.clone();
    b.read_start(&mut ev, move |ev, b, data| {
        c.set((data.unwrap().len(), b.pending_fds()));
        b.close(ev); // the three fds were never taken
    })
    .unwrap();
    ev.run().unwrap();
    assert_eq!(counts.get(), (3, 3));
    a.close(&mut ev);
    drop(ev);
    assert_fds_back_to(fds_before);
}

/// Fds stay with their own bytes when the write had to queue behind others
/// (gathered writes never merge a write that carries fds into an earlier
/// one).
#[test]
fn queued_writes_with_fds_keep_each_fd_with_its_bytes() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    b.receive_fds(true);
    let filler = vec![b'.'; 64 * 1024];
    let mut filled = 0;
    while let Ok(n) = a.try_write(&filler) {
        filled += n;
    }
    // Three writes, the middle one with an fd, all queued.
    a.write(&mut ev, b"A").unwrap();
    let null: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
    a.write_with_fds(&mut ev, b"B", vec![null], |_, r| r.unwrap())
        .unwrap();
    a.write(&mut ev, b"C").unwrap();
    assert_eq!(a.write_queue_size(), 3);
    let when = Rc::new(RefCell::new(Vec::new()));
    let w = when.clone();
    let mut total = 0;
    b.read_start(&mut ev, move |ev, b, data| {
        let data = data.unwrap();
        total += data.len();
        let fds = b.take_fds().len();
        if fds > 0 {
            // The fd came with the chunk holding "B" (after the filler and "A").
            w.borrow_mut().push((total, fds, *data.last().unwrap()));
        }
        if total == filled + 3 {
            b.close(ev);
        }
    })
    .unwrap();
    ev.run().unwrap();
    let when = when.borrow();
    assert_eq!(when.len(), 1, "{when:?}");
    let (at, n, last) = when[0];
    assert_eq!(n, 1);
    // recvmsg stops a read at a message that carries fds, so the chunk
    // with the fd starts at "B": it ends at B or at C.
    assert!(
        at == filled + 2 || at == filled + 3,
        "at {at}, filled {filled}"
    );
    assert!(last == b'B' || last == b'C');
    a.close(&mut ev);
}

/// Bad input: empty data, too many fds, a closed stream. Each is a clear
/// error, the fds are closed, and the callback never runs.
#[test]
fn bad_fd_passing_input_is_refused_and_the_fds_are_closed() {
    let _g = serial();
    let fds_before = open_fds();
    let mut ev = EventLoop::new().unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    b.receive_fds(true);
    let null = || -> OwnedFd { std::fs::File::open("/dev/null").unwrap().into() };
    let err = a
        .write_with_fds(&mut ev, b"", vec![null()], |_, _| panic!("never"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let many: Vec<OwnedFd> = (0..254).map(|_| null()).collect();
    let err = a
        .write_with_fds(&mut ev, b"x", many, |_, _| panic!("never"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    a.close(&mut ev);
    let err = a
        .write_with_fds(&mut ev, b"x", vec![null()], |_, _| panic!("never"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected);
    b.close(&mut ev);
    ev.run().unwrap();
    drop(ev);
    assert_fds_back_to(fds_before);
}

/// A peer that vanished: the write with fds fails with EPIPE in its
/// callback, and the fds are closed.
#[test]
fn passing_fds_to_a_vanished_peer_fails_with_epipe() {
    let _g = serial();
    let fds_before = open_fds();
    let mut ev = EventLoop::new().unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    b.receive_fds(true);
    b.close(&mut ev);
    let got = Rc::new(Cell::new(None));
    let g = got.clone();
    let null: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
    a.write_with_fds(&mut ev, b"x", vec![null], move |_, r| {
        g.set(Some(r.unwrap_err().raw_os_error()));
    })
    .unwrap();
    ev.run().unwrap();
    assert_eq!(got.get(), Some(Some(libc::EPIPE)));
    a.close(&mut ev);
    drop(ev);
    assert_fds_back_to(fds_before);
}

/// Review finding: receiving fds is opt-in (libuv's IPC flag). Without it
/// the kernel closes what a peer sends, so a server that never asked for
/// fds cannot be made to hold them; with it, at most 1,024 wait.
#[test]
fn fds_are_received_only_when_asked_for_and_at_most_1024_wait() {
    let _g = serial();
    let fds_before = open_fds();
    let mut ev = EventLoop::new().unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    let (c, d) = UnixStream::pair().unwrap();
    d.receive_fds(true);
    // 5 writes of 253 fds each (1,265) to both receivers.
    for _ in 0..5 {
        for s in [&a, &c] {
            let fds: Vec<OwnedFd> = (0..253)
                .map(|_| std::fs::File::open("/dev/null").unwrap().into())
                .collect();
            s.write_with_fds(&mut ev, b"x", fds, |_, r| r.unwrap())
                .unwrap();
        }
    }
    let got = Rc::new(Cell::new((0, 0)));
    for (s, slot) in [(&b, 0), (&d, 1)] {
        let g = got.clone();
        let mut bytes = 0;
        s.read_start(&mut ev, move |ev, s, data| {
            bytes += data.unwrap().len();
            if bytes == 5 {
                let mut v = g.get();
                if slot == 0 {
                    v.0 = s.pending_fds();
                } else {
                    v.1 = s.pending_fds();
                }
                g.set(v);
                s.close(ev);
            }
        })
        .unwrap();
    }
    ev.run().unwrap();
    assert_eq!(got.get(), (0, 1024));
    a.close(&mut ev);
    c.close(&mut ev);
    drop(ev);
    assert_fds_back_to(fds_before);
}
