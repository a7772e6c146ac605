//! A TCP proxy with backpressure both ways and per-connection state.
//!
//! Each client gets a connection to the upstream; bytes flow both ways. When
//! one side writes faster than the other reads, the writer's queue passes
//! the high water mark, `write` returns `false`, and reading from the source
//! pauses until the queue drains: memory stays bounded whatever the speeds.
//! Each connection counts its bytes and prints them when both sides ended.
//!
//!     cargo run --example proxy -- 127.0.0.1:8000 127.0.0.1:7000

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use evloop::net::{tcp, TcpStream};
use evloop::EventLoop;

/// What one proxied connection keeps.
struct Conn {
    id: u64,
    /// Bytes client -> upstream, and upstream -> client.
    bytes: [Cell<u64>; 2],
    /// Directions that ended: EOF passed on and the queue flushed.
    ended: Cell<u8>,
}

/// One direction ended; when both have, the connection closes.
fn direction_ended(ev: &mut EventLoop, conn: &Conn, a: &TcpStream, b: &TcpStream) {
    conn.ended.set(conn.ended.get() + 1);
    if conn.ended.get() == 2 {
        let (up, down) = (conn.bytes[0].get(), conn.bytes[1].get());
        println!("connection {}: {up} bytes up, {down} bytes down", conn.id);
        a.close(ev);
        b.close(ev);
    }
}

/// Copies `from` into `to`, pausing `from` while `to` is above its high
/// water mark. `dir` is 0 (client to upstream) or 1.
fn relay(ev: &mut EventLoop, from: &TcpStream, to: &TcpStream, conn: &Rc<Conn>, dir: usize) {
    let source = from.clone();
    to.on_drain(move |ev, _| {
        let _ = source.resume_reading(ev);
    });
    let (sink, conn) = (to.clone(), conn.clone());
    let started = from.read_start(ev, move |ev, from, data| match data {
        Ok([]) | Err(_) => {
            // Pass the EOF on once the queue is flushed.
            let (a, b, c) = (from.clone(), sink.clone(), conn.clone());
            let shut = sink.shutdown_with(ev, move |ev, _| direction_ended(ev, &c, &a, &b));
            if shut.is_err() {
                direction_ended(ev, &conn, from, &sink); // already shut or closed
            }
        }
        Ok(bytes) => {
            conn.bytes[dir].set(conn.bytes[dir].get() + bytes.len() as u64);
            match sink.write(ev, bytes) {
                Ok(true) => {}
                Ok(false) => drop(from.pause_reading(ev)),
                Err(_) => {
                    from.close(ev);
                    sink.close(ev);
                }
            }
        }
    });
    if started.is_err() {
        to.close(ev);
    }
}

fn main() -> io::Result<()> {
    env_logger::init();
    let mut args = std::env::args().skip(1);
    let parse = |s: Option<String>, default: &str| -> io::Result<SocketAddr> {
        s.unwrap_or_else(|| default.into())
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
    };
    let listen = parse(args.next(), "127.0.0.1:8000")?;
    let upstream = parse(args.next(), "127.0.0.1:7000")?;
    let mut ev = EventLoop::new()?;
    let next_id = Cell::new(0);
    let server = tcp::listen(&mut ev, listen, Default::default(), move |ev, client| {
        let Ok(client) = client else { return };
        next_id.set(next_id.get() + 1);
        let id = next_id.get();
        let connecting = tcp::connect(ev, upstream, move |ev, up| match up {
            Ok(up) => {
                let conn = Rc::new(Conn {
                    id,
                    bytes: Default::default(),
                    ended: Cell::new(0),
                });
                relay(ev, &client, &up, &conn, 0);
                relay(ev, &up, &client, &conn, 1);
            }
            Err(e) => {
                eprintln!("connection {id}: upstream {upstream}: {e}");
                client.close(ev);
            }
        });
        if let Err(e) = connecting {
            eprintln!("connection {id}: {e}");
        }
    })?;
    println!("proxy on {} to {upstream}", server.local_addr()?);
    ev.run()
}
