//! A Redis-protocol key-value server on evloop: PING, ECHO, SET, GET, DEL,
//! INCR, EXISTS, in RESP arrays or inline commands, pipelined or split over
//! many reads. Bad input gets a Redis-style `-ERR` reply (a protocol error
//! also closes the connection, as Redis does). Measured against
//! redis-server with redis-benchmark in benches/compare.sh.
//!
//!     cargo run --release --example minikv -- [PORT]     (default 6380; 0: any)
//!     redis-cli -p 6380 set greeting hello

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::rc::Rc;

use evloop::net::{tcp, TcpStream};
use evloop::EventLoop;

type Store = Rc<RefCell<HashMap<Vec<u8>, Vec<u8>>>>;

/// Bulk strings up to 512 MiB and arrays up to 1M items, as Redis allows.
const MAX_BULK: usize = 512 << 20;
const MAX_ITEMS: usize = 1 << 20;
/// An inline command line longer than this is a protocol error (Redis: 64 KiB).
const MAX_INLINE: usize = 64 << 10;

/// One parse step over the front of the buffer.
enum Parsed {
    Command(Vec<Vec<u8>>, usize), // arguments, bytes used
    Incomplete,
    Error(&'static str),
}

fn line_at(buf: &[u8], from: usize) -> Option<(&[u8], usize)> {
    let end = buf[from..].iter().position(|&b| b == b'\n')? + from;
    let line = buf[from..end]
        .strip_suffix(b"\r")
        .unwrap_or(&buf[from..end]);
    Some((line, end + 1))
}

fn number(bytes: &[u8]) -> Option<i64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

fn parse(buf: &[u8]) -> Parsed {
    if buf[0] != b'*' {
        return match line_at(buf, 0) {
            None if buf.len() > MAX_INLINE => Parsed::Error("too big inline request"),
            None => Parsed::Incomplete,
            Some((line, used)) => Parsed::Command(
                line.split(|b| b.is_ascii_whitespace())
                    .filter(|w| !w.is_empty())
                    .map(<[u8]>::to_vec)
                    .collect(),
                used,
            ),
        };
    }
    let Some((header, mut at)) = line_at(buf, 0) else {
        return Parsed::Incomplete;
    };
    let count = match number(&header[1..]) {
        Some(n) if (0..=MAX_ITEMS as i64).contains(&n) => n as usize,
        Some(n) if n < 0 => return Parsed::Command(Vec::new(), at), // null array
        _ => return Parsed::Error("invalid multibulk length"),
    };
    let mut args = Vec::with_capacity(count);
    for _ in 0..count {
        let Some((header, data_at)) = line_at(buf, at) else {
            return Parsed::Incomplete;
        };
        if header.first() != Some(&b'$') {
            return Parsed::Error("expected '$'");
        }
        let len = match number(&header[1..]) {
            Some(n) if (0..=MAX_BULK as i64).contains(&n) => n as usize,
            _ => return Parsed::Error("invalid bulk length"),
        };
        if buf.len() < data_at + len + 2 {
            return Parsed::Incomplete;
        }
        if &buf[data_at + len..data_at + len + 2] != b"\r\n" {
            return Parsed::Error("bulk string not ended by CRLF");
        }
        args.push(buf[data_at..data_at + len].to_vec());
        at = data_at + len + 2;
    }
    Parsed::Command(args, at)
}

fn bulk(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(v) => {
            out.extend_from_slice(format!("${}\r\n", v.len()).as_bytes());
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
        None => out.extend_from_slice(b"$-1\r\n"),
    }
}

fn integer(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(format!(":{n}\r\n").as_bytes());
}

/// Runs one command, appending its reply to `out`.
fn execute(store: &Store, args: &[Vec<u8>], out: &mut Vec<u8>) {
    let Some(name) = args.first() else { return };
    let name = String::from_utf8_lossy(name).to_ascii_lowercase();
    let arity_ok = match name.as_str() {
        "ping" => args.len() <= 2,
        "echo" | "get" | "incr" => args.len() == 2,
        "set" => args.len() == 3,
        "del" | "exists" => args.len() >= 2,
        _ => {
            let shown: String = args[1..]
                .iter()
                .map(|a| format!("'{}' ", String::from_utf8_lossy(a)))
                .collect();
            let reply = format!(
                "-ERR unknown command '{}', with args beginning with: {shown}\r\n",
                String::from_utf8_lossy(&args[0])
            );
            out.extend_from_slice(reply.as_bytes());
            return;
        }
    };
    if !arity_ok {
        out.extend_from_slice(
            format!("-ERR wrong number of arguments for '{name}' command\r\n").as_bytes(),
        );
        return;
    }
    let mut db = store.borrow_mut();
    match name.as_str() {
        "ping" if args.len() == 2 => bulk(out, Some(&args[1])),
        "ping" => out.extend_from_slice(b"+PONG\r\n"),
        "echo" => bulk(out, Some(&args[1])),
        "get" => bulk(out, db.get(&args[1]).map(Vec::as_slice)),
        "set" => {
            db.insert(args[1].clone(), args[2].clone());
            out.extend_from_slice(b"+OK\r\n");
        }
        "del" => integer(
            out,
            args[1..].iter().filter(|k| db.remove(*k).is_some()).count() as i64,
        ),
        "exists" => integer(
            out,
            args[1..].iter().filter(|k| db.contains_key(*k)).count() as i64,
        ),
        "incr" => {
            let current = match db.get(&args[1]) {
                None => Some(0),
                Some(v) => number(v),
            };
            match current.and_then(|n| n.checked_add(1)) {
                Some(n) => {
                    db.insert(args[1].clone(), n.to_string().into_bytes());
                    integer(out, n);
                }
                None => out.extend_from_slice(b"-ERR value is not an integer or out of range\r\n"),
            }
        }
        _ => unreachable!("arity checked every known command"),
    }
}

/// Parses and runs every complete command in `buf`, replying to all of them
/// with one write; leaves a partial command in `buf` for the next read.
fn serve(ev: &mut EventLoop, conn: &TcpStream, store: &Store, buf: &mut Vec<u8>) {
    let mut out = Vec::new();
    let mut used = 0;
    let mut fatal = false;
    while used < buf.len() {
        match parse(&buf[used..]) {
            Parsed::Command(args, n) => {
                used += n;
                execute(store, &args, &mut out);
            }
            Parsed::Incomplete => break,
            Parsed::Error(why) => {
                out.extend_from_slice(format!("-ERR Protocol error: {why}\r\n").as_bytes());
                fatal = true;
                break;
            }
        }
    }
    buf.drain(..used);
    if !out.is_empty() {
        if let Ok(false) = conn.write(ev, &out) {
            let _ = conn.pause_reading(ev); // resumed by the drain callback
        }
    }
    if fatal {
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
        .unwrap_or(6380);
    let mut ev = EventLoop::new()?;
    let store: Store = Rc::default();
    let options = tcp::ListenOptions::default();
    let server = tcp::listen(
        &mut ev,
        ([127, 0, 0, 1], port).into(),
        options,
        move |ev, conn| {
            let Ok(conn) = conn else { return };
            conn.on_drain(|ev, conn| {
                let _ = conn.resume_reading(ev);
            });
            let store = store.clone();
            let _ = conn.read_start_into(ev, Vec::new(), move |ev, conn, buf, n| match n {
                Ok(0) | Err(_) => {
                    conn.close(ev);
                }
                Ok(_) => serve(ev, conn, &store, buf),
            });
        },
    )?;
    println!("minikv listening on {}", server.local_addr()?);
    ev.run()
}
