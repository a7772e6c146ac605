//! examples/minikv.rs speaks the Redis protocol: checked byte for byte with
//! a raw socket (pipelining, partial frames, inline commands, bad input),
//! and with the real clients, redis-cli and redis-benchmark.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::ExampleServer;

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Reads until `want` bytes arrived (or EOF).
fn read_n(s: &mut TcpStream, want: usize) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < want {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(got).unwrap()
}

#[test]
fn pipelined_commands_get_their_replies_in_order() {
    let server = ExampleServer::start("minikv");
    let mut s = connect(server.port);
    s.write_all(
        b"*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n41\r\n*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n\
*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*3\r\n$6\r\nEXISTS\r\n$1\r\nk\r\n$1\r\nx\r\n*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n\
*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*2\r\n$4\r\nECHO\r\n$0\r\n\r\n",
    )
    .unwrap();
    let want = "+PONG\r\n+OK\r\n:42\r\n$2\r\n42\r\n:1\r\n:1\r\n$-1\r\n$0\r\n\r\n";
    assert_eq!(read_n(&mut s, want.len()), want);
}

#[test]
fn a_command_split_into_single_bytes_is_answered_once_complete() {
    let server = ExampleServer::start("minikv");
    let mut s = connect(server.port);
    s.set_nodelay(true).unwrap();
    let frame = b"*3\r\n$3\r\nSET\r\n$5\r\nsplit\r\n$12\r\nhello\r\nworld\r\n*2\r\n$3\r\nGET\r\n$5\r\nsplit\r\n";
    for b in frame {
        s.write_all(&[*b]).unwrap();
        std::thread::sleep(Duration::from_micros(200));
    }
    // The value holds a CRLF: lengths, not delimiters, frame it.
    let want = "+OK\r\n$12\r\nhello\r\nworld\r\n";
    assert_eq!(read_n(&mut s, want.len()), want);
}

#[test]
fn inline_commands_and_errors_are_redis_style() {
    let server = ExampleServer::start("minikv");
    let mut s = connect(server.port);
    s.write_all(b"ping\r\n\r\nSET a notanumber\nINCR a\r\nGET\r\nFLY away now\r\nPING hello\r\n")
        .unwrap();
    let want = "+PONG\r\n+OK\r\n-ERR value is not an integer or out of range\r\n\
-ERR wrong number of arguments for 'get' command\r\n\
-ERR unknown command 'FLY', with args beginning with: 'away' 'now' \r\n$5\r\nhello\r\n";
    assert_eq!(read_n(&mut s, want.len()), want);
}

#[test]
fn a_protocol_error_is_reported_and_closes_the_connection() {
    let server = ExampleServer::start("minikv");
    for (bad, why) in [
        (&b"*2\r\n$3\r\nGET\r\n:1\r\n"[..], "expected '$'"),
        (&b"*1\r\n$-5\r\n"[..], "invalid bulk length"),
        (&b"*x\r\n"[..], "invalid multibulk length"),
        (&b"*1\r\n$4\r\nPINGxx"[..], "bulk string not ended by CRLF"),
    ] {
        let mut s = connect(server.port);
        s.write_all(bad).unwrap();
        let reply = read_n(&mut s, usize::MAX);
        assert_eq!(reply, format!("-ERR Protocol error: {why}\r\n"));
    }
    // The server is still fine for others.
    let mut s = connect(server.port);
    s.write_all(b"PING\r\n").unwrap();
    assert_eq!(read_n(&mut s, 7), "+PONG\r\n");
}

fn tool(name: &str) -> Command {
    assert!(
        Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {name}"))
            .output()
            .unwrap()
            .status
            .success(),
        "{name} is not installed (apt-get install redis-tools; .ci/run does)"
    );
    Command::new(name)
}

#[test]
fn redis_cli_talks_to_it() {
    let server = ExampleServer::start("minikv");
    let port = server.port.to_string();
    let cli = |args: &[&str]| {
        let out = tool("redis-cli")
            .args(["-p", &port])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout)
            .unwrap()
            .trim_end()
            .to_string()
    };
    assert_eq!(cli(&["ping"]), "PONG");
    assert_eq!(cli(&["set", "greeting", "hello world"]), "OK");
    assert_eq!(cli(&["get", "greeting"]), "hello world");
    assert_eq!(cli(&["incr", "n"]), "1");
    assert_eq!(cli(&["incr", "n"]), "2");
    assert_eq!(cli(&["exists", "n", "greeting", "nope"]), "2");
    assert_eq!(cli(&["del", "n"]), "1");
    assert_eq!(cli(&["get", "n"]), "");
}

#[test]
fn redis_benchmark_runs_against_it_pipelined() {
    let server = ExampleServer::start("minikv");
    let out = tool("redis-benchmark")
        .args([
            "-p",
            &server.port.to_string(),
            "-n",
            "5000",
            "-P",
            "16",
            "-c",
            "10",
        ])
        .args(["-t", "ping,set,get,incr", "-q"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let finished = stdout
        .split(['\r', '\n'])
        .filter(|l| l.contains("requests per second, p50"))
        .count();
    assert!(finished >= 5, "every test finished: {stdout}");
    let mut s = connect(server.port);
    s.write_all(b"GET key:__rand_int__\r\n").unwrap();
    // redis-benchmark's SET stored its 3-byte value there.
    assert!(read_n(&mut s, 9).starts_with("$3\r\n"));
}
