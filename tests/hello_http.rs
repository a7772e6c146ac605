//! examples/hello_http.rs speaks HTTP/1.1: keep-alive, pipelining, bodies,
//! Connection: close, HTTP/1.0, bad requests; and wrk, a client nobody
//! here wrote, gets every response without an error.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::ExampleServer;

const OK_KEEP: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: keep-alive\r\n\r\nHello, World!";
const OK_CLOSE: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\n\r\nHello, World!";
const BAD: &str = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn read_n(s: &mut TcpStream, want: usize) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < want {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("{e}"),
        }
    }
    String::from_utf8(got).unwrap()
}

#[test]
fn pipelined_keep_alive_requests_get_responses_in_order_then_close() {
    let server = ExampleServer::start("hello_http");
    let mut s = connect(server.port);
    s.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\
POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n\
GET /never HTTP/1.1\r\n\r\n",
    )
    .unwrap();
    let want = format!("{OK_KEEP}{OK_KEEP}{OK_CLOSE}");
    assert_eq!(
        read_n(&mut s, usize::MAX),
        want,
        "nothing after Connection: close"
    );
}

#[test]
fn a_request_split_across_reads_is_answered_once_complete() {
    let server = ExampleServer::start("hello_http");
    let mut s = connect(server.port);
    s.set_nodelay(true).unwrap();
    for part in [
        &b"GET / HT"[..],
        b"TP/1.1\r\nHo",
        b"st: x\r\nContent-Length: 3\r\n",
        b"\r\nab",
        b"c",
    ] {
        s.write_all(part).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(read_n(&mut s, OK_KEEP.len()), OK_KEEP);
}

#[test]
fn http_1_0_closes_unless_keep_alive_and_bad_requests_get_400() {
    let server = ExampleServer::start("hello_http");
    let mut s = connect(server.port);
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(read_n(&mut s, usize::MAX), OK_CLOSE);
    let mut s = connect(server.port);
    s.write_all(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n")
        .unwrap();
    assert_eq!(read_n(&mut s, usize::MAX), format!("{OK_KEEP}{OK_CLOSE}"));
    for bad in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/2.0\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: lots\r\n\r\n",
    ] {
        let mut s = connect(server.port);
        s.write_all(bad).unwrap();
        assert_eq!(read_n(&mut s, usize::MAX), BAD);
    }
    let mut s = connect(server.port);
    let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(9000));
    s.write_all(huge.as_bytes()).unwrap();
    assert_eq!(read_n(&mut s, usize::MAX), BAD, "a head over 8 KiB");
}

#[test]
fn wrk_gets_only_good_responses() {
    assert!(
        Command::new("sh")
            .args(["-c", "command -v wrk"])
            .output()
            .unwrap()
            .status
            .success(),
        "wrk is not installed (apt-get install wrk; .ci/run does)"
    );
    let server = ExampleServer::start("hello_http");
    let out = Command::new("wrk")
        .args(["-t1", "-c10", "-d1s", "--latency"])
        .arg(format!("http://127.0.0.1:{}/", server.port))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("Requests/sec:"), "{stdout}");
    assert!(!stdout.contains("Non-2xx"), "{stdout}");
    assert!(!stdout.contains("Socket errors"), "{stdout}");
    let requests: u64 = stdout
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(requests > 100, "{stdout}");
}
