//! A TCP echo server: every byte a client sends comes back. A client that
//! does not read its echo gets backpressure: reading from it pauses while its
//! write queue is above the high water mark, and resumes (same callback)
//! once the queue drained.
//!
//!     cargo run --example echo_server -- 127.0.0.1:7000
//!     (then, elsewhere: nc 127.0.0.1 7000)

use std::io;
use std::net::SocketAddr;

use evloop::net::{tcp, TcpStream};
use evloop::EventLoop;

fn on_data(ev: &mut EventLoop, conn: &TcpStream, data: io::Result<&[u8]>) {
    match data {
        // EOF: close once the echo still queued went out.
        Ok([]) => {
            let c = conn.clone();
            let _ = conn.shutdown_with(ev, move |ev, _| {
                c.close(ev);
            });
        }
        Err(_) => {
            conn.close(ev);
        }
        Ok(bytes) => {
            if let Ok(false) = conn.write(ev, bytes) {
                let _ = conn.pause_reading(ev); // resumed by the drain callback
            }
        }
    }
}

fn main() -> io::Result<()> {
    env_logger::init();
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7000".into())
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut ev = EventLoop::new()?;
    let server = tcp::listen(&mut ev, addr, Default::default(), |ev, conn| match conn {
        Ok(conn) => {
            conn.on_drain(|ev, conn| {
                let _ = conn.resume_reading(ev);
            });
            let _ = conn.read_start(ev, on_data);
        }
        Err(e) => eprintln!("accept: {e}"),
    })?;
    println!("echo server on {}", server.local_addr()?);
    ev.run()
}
