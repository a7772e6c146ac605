//! A small HTTP/1.1 GET client: resolve, connect, send, read to EOF, print
//! the status and the body length.
//!
//!     cargo run --example http_get -- http://127.0.0.1:8000/

use std::io;

use evloop::net::{self, tcp};
use evloop::EventLoop;

/// The parts of a response this example reports.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body_len: usize,
}

/// GETs `path` from `host:port` with `Connection: close` and calls `done`.
pub fn get(
    ev: &mut EventLoop,
    host: &str,
    port: u16,
    path: &str,
    done: impl FnOnce(&mut EventLoop, io::Result<Response>) + 'static,
) -> io::Result<()> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    net::resolve(ev, host, port, move |ev, addrs| {
        let addr = match addrs {
            Ok(addrs) => addrs[0],
            Err(e) => return done(ev, Err(e)),
        };
        let connected = tcp::connect(ev, addr, move |ev, conn| {
            let conn = match conn {
                Ok(c) => c,
                Err(e) => return done(ev, Err(e)),
            };
            let _ = conn.write(ev, request);
            let mut response = Vec::new();
            let mut done = Some(done);
            let reading = conn.read_start(ev, move |ev, conn, data| {
                let result = match data {
                    Ok([]) => parse(&response),
                    Ok(bytes) => return response.extend_from_slice(bytes),
                    Err(e) => Err(e),
                };
                let _ = conn.close(ev);
                if let Some(done) = done.take() {
                    done(ev, result);
                }
            });
            if let Err(e) = reading {
                eprintln!("read_start: {e}");
            }
        });
        if let Err(e) = connected {
            eprintln!("connect: {e}");
        }
    })?;
    Ok(())
}

fn parse(raw: &[u8]) -> io::Result<Response> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed HTTP response");
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(bad)?;
    let head = std::str::from_utf8(&raw[..head_end]).map_err(|_| bad())?;
    let status = head
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(bad)?;
    Ok(Response {
        status,
        body_len: raw.len() - head_end - 4,
    })
}

/// `http://host[:port][/path]` into its parts.
fn split_url(url: &str) -> Option<(String, u16, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (authority, 80),
    };
    Some((host.to_string(), port, path.to_string()))
}

#[allow(dead_code)] // unused when tests include this file as a module
fn main() -> io::Result<()> {
    env_logger::init();
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:8000/".into());
    let (host, port, path) = split_url(&url).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "usage: http_get http://host[:port]/path",
        )
    })?;
    let mut ev = EventLoop::new()?;
    get(&mut ev, &host, port, &path, |_, response| match response {
        Ok(r) => println!("status: {}\nbody: {} bytes", r.status, r.body_len),
        Err(e) => eprintln!("error: {e}"),
    })?;
    ev.run()
}
