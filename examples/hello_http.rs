//! A minimal HTTP/1.1 server on evloop: "Hello, World!" for every GET,
//! keep-alive by default, pipelined requests answered in order, a body
//! skipped by its Content-Length, `Connection: close` (and HTTP/1.0 without
//! keep-alive) honoured, and 400 then close for what it cannot parse.
//! Measured with wrk beside the same server on Node's `http` and on asyncio
//! in benches/compare.sh.
//!
//!     cargo run --release --example hello_http -- [PORT]     (default 8080; 0: any)
//!     curl -v http://127.0.0.1:8080/

use std::io;

use evloop::net::{tcp, TcpStream};
use evloop::EventLoop;

const BODY: &str = "Hello, World!";
/// Request heads above this are refused (400), as most servers do (8 KiB).
const MAX_HEAD: usize = 8 << 10;

enum Request {
    /// A complete request of `len` bytes (head and body).
    Complete {
        len: usize,
        keep_alive: bool,
    },
    Incomplete,
    Bad,
}

fn parse(buf: &[u8]) -> Request {
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD {
            Request::Bad
        } else {
            Request::Incomplete
        };
    };
    let Ok(head) = std::str::from_utf8(&buf[..head_end]) else {
        return Request::Bad;
    };
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or("").split(' ');
    let (Some(_method), Some(_target), Some(version), None) = (
        request_line.next(),
        request_line.next(),
        request_line.next(),
        request_line.next(),
    ) else {
        return Request::Bad;
    };
    let mut keep_alive = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Request::Bad,
    };
    let mut body = 0usize;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Request::Bad;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            match value.parse() {
                Ok(n) => body = n,
                Err(_) => return Request::Bad,
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Request::Bad; // chunked bodies: not in this small server
        } else if name.eq_ignore_ascii_case("connection") {
            if value.eq_ignore_ascii_case("close") {
                keep_alive = false;
            } else if value.eq_ignore_ascii_case("keep-alive") {
                keep_alive = true;
            }
        }
    }
    let len = head_end + 4 + body;
    if buf.len() < len {
        return Request::Incomplete;
    }
    Request::Complete { len, keep_alive }
}

fn response(out: &mut Vec<u8>, keep_alive: bool) {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    out.extend_from_slice(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n{BODY}",
            BODY.len()
        )
        .as_bytes(),
    );
}

/// Answers every complete request in `buf` with one write; a partial one
/// stays for the next read.
fn serve(ev: &mut EventLoop, conn: &TcpStream, buf: &mut Vec<u8>) {
    let mut out = Vec::new();
    let mut used = 0;
    let mut close = false;
    while used < buf.len() && !close {
        match parse(&buf[used..]) {
            Request::Complete { len, keep_alive } => {
                used += len;
                response(&mut out, keep_alive);
                close = !keep_alive;
            }
            Request::Incomplete => break,
            Request::Bad => {
                out.extend_from_slice(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                close = true;
            }
        }
    }
    buf.drain(..used);
    if !out.is_empty() {
        if let Ok(false) = conn.write(ev, &out) {
            let _ = conn.pause_reading(ev); // resumed by the drain callback
        }
    }
    if close {
        let _ = conn.read_stop(ev);
        let c = conn.clone();
        let _ = conn.shutdown_with(ev, move |ev, _| {
            c.close(ev);
        });
    }
}

fn main() -> io::Result<()> {
    env_logger::init();
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    let mut ev = EventLoop::new()?;
    let server = tcp::listen(
        &mut ev,
        ([127, 0, 0, 1], port).into(),
        Default::default(),
        |ev, conn| {
            let Ok(conn) = conn else { return };
            conn.on_drain(|ev, conn| {
                let _ = conn.resume_reading(ev);
            });
            let _ = conn.read_start_into(ev, Vec::new(), |ev, conn, buf, n| match n {
                Ok(0) | Err(_) => {
                    conn.close(ev);
                }
                Ok(_) => serve(ev, conn, buf),
            });
        },
    )?;
    println!("hello_http listening on {}", server.local_addr()?);
    ev.run()
}
