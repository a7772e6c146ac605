//! A TCP echo server: every byte a client sends comes back. A client that
//! does not read its echo gets backpressure: reading from it pauses while its
//! write queue is above the high water mark.
//!
//!     cargo run --example echo_server -- 127.0.0.1:7000
//!     (then, elsewhere: nc 127.0.0.1 7000)

use std::io;
use std::net::SocketAddr;

use evloop::net::{tcp, Stream};
use evloop::EventLoop;

fn on_data(ev: &mut EventLoop, conn: &Stream, data: io::Result<&[u8]>) {
    match data {
        Ok([]) => {
            // EOF: flush the echo still queued, then close.
            let c = conn.clone();
            let _ = conn.shutdown(ev, move |ev, _| {
                let _ = c.close(ev, |_| {});
            });
        }
        Err(_) => {
            let _ = conn.close(ev, |_| {});
        }
        Ok(bytes) => {
            let below_high_water = conn.write(ev, bytes, |_, _| {}).unwrap_or(true);
            if !below_high_water {
                let _ = conn.read_stop(ev);
                conn.on_drain(|ev, conn| {
                    let _ = conn.read_start(ev, on_data);
                });
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
            let _ = conn.read_start(ev, on_data);
        }
        Err(e) => eprintln!("accept: {e}"),
    })?;
    println!("echo server on {}", server.local_addr()?);
    ev.run()
}
