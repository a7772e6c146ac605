//! Helpers shared by the networking tests.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};

use evloop::net::{tcp, Stream, TcpServer};
use evloop::EventLoop;

static SERIAL: Mutex<()> = Mutex::new(());

/// Tests that count open fds hold this, so others in the binary cannot
/// open or close fds meanwhile.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Asserts that the open fd count comes back to `before`. A pool thread may
/// still hold the dropped loop for a moment after posting its last result,
/// so this waits (up to 10 s) rather than reading the count once.
pub fn assert_fds_back_to(before: usize) {
    let start = std::time::Instant::now();
    while open_fds() != before && start.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(open_fds(), before, "no fd left open");
}

/// An echo server on 127.0.0.1 (port chosen by the OS): every byte read is
/// written back; at EOF the echo is flushed, then the connection closed.
pub fn echo_server(ev: &mut EventLoop) -> (TcpServer, SocketAddr) {
    let server = tcp::listen(
        ev,
        "127.0.0.1:0".parse().unwrap(),
        Default::default(),
        |ev, conn| {
            let conn = conn.expect("accept");
            echo(ev, &conn);
        },
    )
    .unwrap();
    let addr = server.local_addr().unwrap();
    (server, addr)
}

pub fn echo<K>(ev: &mut EventLoop, conn: &Stream<K>) {
    conn.read_start(ev, |ev, s, data| match data {
        Ok([]) => {
            let s2 = s.clone();
            let _ = s.shutdown_with(ev, move |ev, _| {
                let _ = s2.close(ev);
            });
        }
        Err(_) => {
            let _ = s.close(ev);
        }
        Ok(bytes) => {
            s.write_with(ev, bytes, |_, r| {
                let _ = r;
            })
            .unwrap();
        }
    })
    .unwrap();
}
