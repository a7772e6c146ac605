//! Unix domain stream sockets and anonymous pipes.

mod common;

use std::cell::RefCell;
use std::io;
use std::rc::Rc;

use common::{assert_fds_back_to, echo, open_fds, serial};
use evloop::net::{unix, Pipe};
use evloop::EventLoop;

fn socket_path(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("evloop-{}-{name}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

#[test]
fn unix_socket_echo() {
    let _g = serial();
    let fds = open_fds();
    let path = socket_path("echo");
    let mut ev = EventLoop::new().unwrap();
    let server = unix::listen(&mut ev, &path, 16, |ev, c| echo(ev, &c.unwrap())).unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    unix::connect(&mut ev, &path, move |ev, conn| {
        let conn = conn.unwrap();
        conn.write_with(ev, b"over a unix socket", |_, r| r.unwrap())
            .unwrap();
        conn.read_start(ev, move |ev, s, data| {
            g.borrow_mut().extend_from_slice(data.unwrap());
            if g.borrow().len() == 18 {
                s.close(ev);
                server.close(ev);
            }
        })
        .unwrap();
    })
    .unwrap();
    ev.run().unwrap();
    assert_eq!(&*got.borrow(), b"over a unix socket");
    std::fs::remove_file(&path).unwrap();
    drop(ev);
    assert_fds_back_to(fds);
}

#[test]
fn unix_connect_to_a_missing_path_is_an_error_in_the_callback() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let err = Rc::new(RefCell::new(None));
    let e = err.clone();
    unix::connect(&mut ev, socket_path("missing"), move |_, r| {
        *e.borrow_mut() = Some(r.unwrap_err().kind())
    })
    .unwrap();
    assert!(err.borrow().is_none());
    ev.run().unwrap();
    assert_eq!(*err.borrow(), Some(io::ErrorKind::NotFound));
}

#[test]
fn pipe_carries_data_then_eof_with_the_stream_api() {
    let _g = serial();
    let fds = open_fds();
    let mut ev = EventLoop::new().unwrap();
    let (r, w) = unix::pipe().unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    r.read_start(&mut ev, move |ev, s, data| match data.unwrap() {
        [] => {
            s.close(ev);
        }
        bytes => g.borrow_mut().extend_from_slice(bytes),
    })
    .unwrap();
    let big = vec![9u8; 1 << 20];
    w.write_with(&mut ev, big, |_, r| r.unwrap()).unwrap();
    w.shutdown_with(&mut ev, |_, r| r.unwrap()).unwrap(); // closes the write end when flushed
    ev.run().unwrap();
    assert_eq!(got.borrow().len(), 1 << 20);
    w.close(&mut ev);
    ev.run().unwrap();
    drop(ev);
    assert_fds_back_to(fds);
}

#[test]
fn writing_to_a_pipe_whose_reader_is_gone_is_epipe() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let (r, w) = unix::pipe().unwrap();
    r.close(&mut ev);
    let err = Rc::new(RefCell::new(None));
    let e = err.clone();
    w.write_with(&mut ev, b"nobody reads", move |_, r| {
        *e.borrow_mut() = Some(r.unwrap_err().kind())
    })
    .unwrap();
    ev.run().unwrap();
    assert_eq!(*err.borrow(), Some(io::ErrorKind::BrokenPipe));
    w.close(&mut ev);
    ev.run().unwrap();
}

/// An fd that is not a socket cannot be half-closed. Shutting down one that
/// is open for reading too (here a FIFO opened read-write) ends writing but
/// keeps it open, so reading goes on: the bytes written before the shutdown
/// come back through the FIFO.
#[test]
fn shutdown_of_a_read_write_non_socket_keeps_reading() {
    let _g = serial();
    let path = socket_path("fifo-rdwr");
    let cpath = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(cpath.as_ptr(), 0o600) }, 0);
    let fifo = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let mut ev = EventLoop::new().unwrap();
    let s = Pipe::open(fifo).unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    s.read_start(&mut ev, move |ev, s, data| {
        g.borrow_mut().extend_from_slice(data.unwrap());
        if g.borrow().len() == 5 {
            s.close(ev);
        }
    })
    .unwrap();
    s.write_with(&mut ev, b"hello", |_, r| r.unwrap()).unwrap();
    let shut = Rc::new(RefCell::new(None));
    let sh = shut.clone();
    s.shutdown_with(&mut ev, move |_, r| *sh.borrow_mut() = Some(r.is_ok()))
        .unwrap();
    let err = s
        .write_with(&mut ev, b"late", |_, _| panic!("never"))
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPIPE));
    ev.run().unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(*shut.borrow(), Some(true));
    assert_eq!(&got.borrow()[..], b"hello");
}
