//! The client side of `scripts/soak.sh`: CLIENTS threads keep an echo server
//! busy for SECONDS. Each thread opens a connection, does 1 to 100 round
//! trips of 1 B to 32 KiB (checking every echoed byte), then ends it one of
//! three ways: a half-close waiting for the server's EOF, a plain close, or a
//! close with an echo still unread (the server then sees a reset). Then it
//! connects again.
//!
//!     cargo run --release --example soak -- 127.0.0.1:7000 30 8
//!
//! Prints a summary; exits 1 if any echo was wrong or any IO failed.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Totals {
    connections: AtomicU64,
    round_trips: AtomicU64,
    bytes: AtomicU64,
    connect_retries: AtomicU64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 3 {
        eprintln!("usage: soak ADDR SECONDS CLIENTS");
        std::process::exit(2);
    }
    let addr: SocketAddr = args[0].parse().expect("ADDR as 127.0.0.1:PORT");
    let seconds: u64 = args[1].parse().expect("SECONDS");
    let clients: u64 = args[2].parse().expect("CLIENTS");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let totals = Totals::default();
    let failures: Vec<String> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..clients)
            .map(|k| {
                let totals = &totals;
                s.spawn(move || client(addr, deadline, k + 1, totals))
            })
            .collect();
        threads
            .into_iter()
            .filter_map(|t| t.join().unwrap().err())
            .collect()
    });
    println!(
        "soak client: {clients} clients, {} connections, {} round trips, {} MiB echoed, \
         {} connect retries, {} failed clients",
        totals.connections.load(Ordering::Relaxed),
        totals.round_trips.load(Ordering::Relaxed),
        totals.bytes.load(Ordering::Relaxed) >> 20,
        totals.connect_retries.load(Ordering::Relaxed),
        failures.len(),
    );
    for f in &failures {
        println!("soak client failure: {f}");
    }
    std::process::exit(i32::from(!failures.is_empty()));
}

/// One client: connection after connection until the deadline.
fn client(addr: SocketAddr, deadline: Instant, seed: u64, totals: &Totals) -> Result<(), String> {
    let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut next = move |n: u64| {
        // xorshift64
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut echo = vec![0u8; 32 * 1024];
    while Instant::now() < deadline {
        let mut conn = match TcpStream::connect(addr) {
            Ok(c) => c,
            // Out of local ports for a moment (TIME_WAIT): not the server's fault.
            Err(e) if e.kind() == io::ErrorKind::AddrNotAvailable => {
                totals.connect_retries.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            Err(e) => return Err(format!("connect: {e}")),
        };
        totals.connections.fetch_add(1, Ordering::Relaxed);
        let io = |what: &str, e: io::Error| format!("{what}: {e}");
        conn.set_nodelay(true).map_err(|e| io("nodelay", e))?;
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| io("timeout", e))?;
        for _ in 0..=next(100) {
            let len = 1 + next(32 * 1024) as usize;
            let fill = next(256) as u8;
            let msg: Vec<u8> = (0..len).map(|i| fill ^ (i as u8)).collect();
            conn.write_all(&msg).map_err(|e| io("write", e))?;
            conn.read_exact(&mut echo[..len])
                .map_err(|e| io("read echo", e))?;
            if echo[..len] != msg[..] {
                return Err(format!("echo of {len} bytes differs"));
            }
            totals.round_trips.fetch_add(1, Ordering::Relaxed);
            totals.bytes.fetch_add(len as u64, Ordering::Relaxed);
        }
        match next(3) {
            0 => {
                conn.shutdown(Shutdown::Write)
                    .map_err(|e| io("shutdown", e))?;
                let n = conn.read(&mut echo).map_err(|e| io("read EOF", e))?;
                if n != 0 {
                    return Err(format!("{n} bytes after the last echo"));
                }
            }
            1 => drop(conn),
            _ => {
                // Leaves the echo unread: closing then resets the connection.
                conn.write_all(b"unread").map_err(|e| io("write", e))?;
                drop(conn);
            }
        }
    }
    Ok(())
}
