//! The stream API shared by TcpStream, UnixStream and Pipe: reading into the
//! caller's buffer, pause/resume, forms without callbacks, idempotent close,
//! errors with context.

mod common;

use std::cell::{Cell, RefCell};
use std::io::{self, Write};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::rc::Rc;

use common::{assert_fds_back_to, open_fds, serial};
use evloop::net::{tcp, unix, Pipe, UnixStream};
use evloop::{ErrorContext, EventLoop};

/// A line parser on `read_start_into`: each call consumes the complete lines
/// at the front of the buffer and leaves the partial one in place; EOF is
/// `Ok(0)`, once.
#[test]
fn read_start_into_keeps_leftovers_in_the_callers_buffer() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let (a, mut b) = StdUnixStream::pair().unwrap();
    let stream = UnixStream::from_std(a).unwrap();
    let lines = Rc::new(RefCell::new(Vec::new()));
    let calls = Rc::new(RefCell::new(Vec::new()));
    let (l, c) = (lines.clone(), calls.clone());
    stream
        .read_start_into(&mut ev, Vec::with_capacity(8), move |ev, s, buf, n| {
            let n = n.unwrap();
            c.borrow_mut().push((n, buf.len()));
            while let Some(end) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=end).collect();
                l.borrow_mut().push(String::from_utf8(line).unwrap());
            }
            if n == 0 {
                assert_eq!(&buf[..], b"tail", "the partial line is still there");
                s.close(ev);
            }
        })
        .unwrap();
    b.write_all(b"one\ntw").unwrap();
    ev.run_once().unwrap();
    assert_eq!(*lines.borrow(), ["one\n"]);
    b.write_all(b"o\nthree\ntail").unwrap();
    drop(b);
    ev.run().unwrap();
    assert_eq!(*lines.borrow(), ["one\n", "two\n", "three\n"]);
    let calls = calls.borrow();
    assert_eq!(calls[0], (6, 6));
    assert_eq!(*calls.last().unwrap(), (0, 4), "EOF once, leftovers kept");
    assert_eq!(calls.iter().filter(|(n, _)| *n == 0).count(), 1);
}

/// Paused reading delivers nothing and keeps the callback; resume delivers
/// what arrived meanwhile to the same callback.
#[test]
fn pause_and_resume_reading_keep_the_callback() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let (a, mut b) = StdUnixStream::pair().unwrap();
    let stream = UnixStream::from_std(a).unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    stream
        .read_start(&mut ev, move |ev, s, data| {
            let data = data.unwrap();
            g.borrow_mut().extend_from_slice(data);
            if data == b"first" {
                s.pause_reading(ev).unwrap(); // from inside the callback
            }
            if data.is_empty() {
                s.close(ev);
            }
        })
        .unwrap();
    b.write_all(b"first").unwrap();
    ev.run_once().unwrap();
    assert!(!stream.is_reading());
    b.write_all(b"second").unwrap();
    for _ in 0..3 {
        ev.run_nowait().unwrap();
    }
    assert_eq!(&got.borrow()[..], b"first", "nothing while paused");
    assert!(
        !ev.is_alive(),
        "a paused stream does not keep the loop alive"
    );
    stream.resume_reading(&mut ev).unwrap();
    assert!(stream.is_reading());
    drop(b);
    ev.run().unwrap();
    assert_eq!(&got.borrow()[..], b"firstsecond");
    // Pause and resume of a closed stream: NotConnected.
    assert_eq!(
        stream.pause_reading(&mut ev).unwrap_err().kind(),
        io::ErrorKind::NotConnected
    );
}

/// Forms without callbacks, and close that says whether it did anything.
#[test]
fn writes_without_callbacks_and_idempotent_close() {
    let _g = serial();
    let fds = open_fds();
    let mut ev = EventLoop::new().unwrap();
    let (r, w) = unix::pipe().unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    r.read_start(&mut ev, move |ev, r, data| match data.unwrap() {
        [] => {
            r.close(ev);
        }
        bytes => g.borrow_mut().extend_from_slice(bytes),
    })
    .unwrap();
    assert!(w.write(&mut ev, b"no ").unwrap());
    assert!(w.write(&mut ev, b"callbacks").unwrap());
    w.shutdown(&mut ev).unwrap(); // a write-only pipe: closes when flushed
    ev.run().unwrap();
    assert_eq!(&got.borrow()[..], b"no callbacks");
    let closed = Rc::new(Cell::new(0));
    let c = closed.clone();
    assert!(w.close_with(&mut ev, move |_| c.set(c.get() + 1)));
    assert!(!w.close(&mut ev), "already closed: a no-op that says so");
    assert!(!w.close_with(&mut ev, |_| panic!("never runs")));
    assert!(!r.close(&mut ev));
    ev.run().unwrap();
    assert_eq!(closed.get(), 1);
    assert_eq!(
        w.write(&mut ev, b"x").unwrap_err().kind(),
        io::ErrorKind::NotConnected
    );
    drop(ev);
    assert_fds_back_to(fds);
}

/// Setup errors say what was being done, keep their kind, and keep the OS
/// error reachable.
#[test]
fn os_errors_carry_what_evloop_was_doing() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = tcp::listen(&mut ev, addr, Default::default(), |_, _| {}).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    assert!(
        err.to_string().starts_with(&format!("bind {addr}: ")),
        "{err}"
    );
    assert_eq!(ErrorContext::os_error(&err), Some(libc::EADDRINUSE));
    let err =
        evloop::net::udp::UdpSocket::bind(&mut ev, "192.0.2.1:0".parse().unwrap()).unwrap_err();
    assert!(err.to_string().starts_with("bind 192.0.2.1:0: "), "{err}");
}

/// A regular file is not a pipe: refused at once. Every public type prints.
#[test]
fn pipes_refuse_regular_files_and_everything_has_debug() {
    let file = std::fs::File::open("/proc/self/status").unwrap();
    assert_eq!(
        Pipe::open(file).unwrap_err().kind(),
        io::ErrorKind::PermissionDenied
    );
    let mut ev = EventLoop::new().unwrap();
    let (r, _w) = unix::pipe().unwrap();
    assert!(format!("{r:?}").starts_with("Stream<Pipe>"));
    let server = tcp::listen(
        &mut ev,
        "127.0.0.1:0".parse().unwrap(),
        Default::default(),
        |_, _| {},
    )
    .unwrap();
    assert!(format!("{server:?}").contains("closed: false"));
    assert!(format!("{ev:?}").starts_with("EventLoop"));
    assert!(server.close(&mut ev));
}
