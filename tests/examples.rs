//! The seed's examples: the synchronous and the asynchronous count.
//! `cargo test` builds examples; this runs the built binaries.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn run(name: &str) -> (Vec<String>, Duration) {
    let start = Instant::now();
    let out = Command::new(common::example_path(name))
        .output()
        .expect("example built by cargo test");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    (lines, took)
}

#[test]
fn count_runs_the_three_counts_concurrently() {
    let (lines, took) = run("count");
    assert_eq!(lines, ["One", "One", "One", "Two", "Two", "Two"]);
    assert!(
        took >= Duration::from_secs(1),
        "the timers never run early: {took:?}"
    );
    assert!(took < Duration::from_secs(2), "count took {took:?}");
}

/// examples/crawl.rs: a queue of 4, retry over timeout, against a server in
/// the same loop; every path (ok, ok after a retry, timed out, HTTP error)
/// shows in the summary.
#[test]
fn crawl_fetches_through_the_queue_with_timeout_and_retry() {
    let (lines, took) = run("crawl");
    assert_eq!(
        lines,
        [
            "/page/1: 200 (19 bytes) after 1 attempt",
            "/page/2: 200 (19 bytes) after 1 attempt",
            "/slow-once: 200 (22 bytes) after 2 attempts",
            "/page/3: 200 (19 bytes) after 1 attempt",
            "/page/4: 200 (19 bytes) after 1 attempt",
            "/slow: failed (timed out) after 3 attempts",
            "/page/5: 200 (19 bytes) after 1 attempt",
            "/missing: failed (HTTP 404) after 3 attempts",
            "/page/6: 200 (19 bytes) after 1 attempt",
            "/page/7: 200 (19 bytes) after 1 attempt",
            "8 ok, 2 failed, 15 requests, at most 4 in flight",
        ]
    );
    // Three 500 ms attempts of /slow and two 100 ms pauses: 1.7 s at least;
    // the server's 3 s answers are never waited for.
    assert!(took >= Duration::from_millis(1700), "{took:?}");
    assert!(took < Duration::from_secs(30), "{took:?}");
}

#[test]
fn count_sync_runs_them_one_after_another() {
    let (lines, took) = run("count_sync");
    assert_eq!(lines, ["One", "Two", "One", "Two", "One", "Two"]);
    assert!(took >= Duration::from_secs(3), "count_sync took {took:?}");
}

#[test]
fn cat_copies_a_pipe_and_a_regular_file() {
    let mut child = Command::new(common::example_path("cat"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut stdin = child.stdin.take().unwrap();
    let d = data.clone();
    let writer = std::thread::spawn(move || stdin.write_all(&d).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success());
    assert!(out.stdout == data, "piped stdin copied byte-exact");

    let file = std::fs::File::open("Cargo.toml").unwrap();
    let out = Command::new(common::example_path("cat"))
        .stdin(file)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, std::fs::read("Cargo.toml").unwrap());
}

#[test]
fn signals_stops_on_sigint() {
    let mut child = Command::new(common::example_path("signals"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(
        lines.next().unwrap().unwrap(),
        "running; press Ctrl-C to stop"
    );
    // SAFETY: kill sends a signal to our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert_eq!(rest.len(), 2, "{rest:?}");
    assert!(rest[0].starts_with("got SIGINT after ") && rest[0].ends_with(" ticks, stopping"));
    assert_eq!(rest[1], "bye");
    assert!(child.wait().unwrap().success());
}

#[test]
fn spawn_streams_ls_output_and_the_exit_status() {
    let dir = std::env::temp_dir().join(format!("evloop-spawn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("marker-file"), "x").unwrap();
    let out = Command::new(common::example_path("spawn"))
        .arg(&dir)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines[0].starts_with("total "));
    assert!(lines[1].ends_with(" marker-file"));
    assert_eq!(lines[2], "exit status: 0");
}

#[test]
fn echo_server_echoes() {
    // Port 0: the server prints the port it got.
    let mut child = Command::new(common::example_path("echo_server"))
        .arg("127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .strip_prefix("echo server on ")
        .expect(&first)
        .to_string();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 256) as u8).collect();
    let mut reader = conn.try_clone().unwrap();
    let expect = data.clone();
    let t = std::thread::spawn(move || {
        let mut got = vec![0u8; expect.len()];
        std::io::Read::read_exact(&mut reader, &mut got).unwrap();
        assert!(got == expect);
    });
    conn.write_all(&data).unwrap();
    t.join().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The proxy carries 8 MB each way byte-exact through an echo server, to a
/// client that starts reading only after a pause: backpressure keeps the
/// proxy's memory flat (no 8 MB queue), and it reports the connection.
#[test]
fn proxy_relays_with_backpressure() {
    let spawn_reading_first_line = |name: &str, args: &[&str], prefix: &str| {
        let mut child = Command::new(common::example_path(name))
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let addr = first.strip_prefix(prefix).expect(&first).to_string();
        (child, lines, addr)
    };
    let (mut echo, _, echo_addr) =
        spawn_reading_first_line("echo_server", &["127.0.0.1:0"], "echo server on ");
    let (mut proxy, mut proxy_lines, proxy_line) =
        spawn_reading_first_line("proxy", &["127.0.0.1:0", &echo_addr], "proxy on ");
    let proxy_addr = proxy_line.split(' ').next().unwrap().to_string();
    let rss_before = peak_rss_kib(proxy.id());
    let mut conn = std::net::TcpStream::connect(&proxy_addr).unwrap();
    // A small receive window, so the kernel cannot absorb the flood.
    let small: libc::c_int = 16 * 1024;
    // SAFETY: setsockopt with a valid int option on a live socket.
    let rc = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&conn),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&small as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
    let data: Vec<u8> = (0..8_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut reader = conn.try_clone().unwrap();
    let expect = data.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(500)); // a slow reader
        let mut got = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut got).unwrap();
        assert!(got == expect, "byte-exact both ways");
    });
    conn.write_all(&data).unwrap();
    conn.shutdown(std::net::Shutdown::Write).unwrap();
    t.join().unwrap();
    let report = proxy_lines.next().unwrap().unwrap();
    assert_eq!(report, "connection 1: 8000000 bytes up, 8000000 bytes down");
    let grew = peak_rss_kib(proxy.id()) - rss_before;
    assert!(
        grew < 2048,
        "the proxy's peak RSS grew {grew} KiB: no backpressure?"
    );
    proxy.kill().unwrap();
    proxy.wait().unwrap();
    echo.kill().unwrap();
    echo.wait().unwrap();
}

/// examples/cluster.rs: connections accepted in one process are passed
/// (SCM_RIGHTS) to two worker processes, each with its own loop; every
/// client is answered, the work is split evenly, and everything exits.
#[test]
fn cluster_hands_connections_to_worker_processes() {
    let (lines, _) = run("cluster");
    assert_eq!(lines.len(), 6, "{lines:?}");
    let mut per_worker = [0; 2];
    for (k, line) in lines.iter().enumerate() {
        let prefix = format!("client {k}: served by worker ");
        let worker = line
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{line}"));
        per_worker[worker.parse::<usize>().unwrap()] += 1;
    }
    assert_eq!(per_worker, [3, 3], "round robin: {lines:?}");
}

/// examples/multicore.rs: two threads, each its own loop on one
/// SO_REUSEPORT port; the kernel spreads 40 connections over both.
#[test]
fn multicore_spreads_connections_over_the_loops() {
    let (lines, _) = run("multicore");
    assert_eq!(lines.len(), 2, "{lines:?}");
    let counts: Vec<usize> = lines
        .iter()
        .enumerate()
        .map(|(k, l)| {
            l.strip_prefix(&format!("loop {k} served "))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{l}"))
        })
        .collect();
    assert_eq!(counts.iter().sum::<usize>(), 40);
    assert!(
        counts.iter().all(|&c| c > 0),
        "both loops served: {counts:?}"
    );
}

#[test]
fn watch_dir_reports_the_changes_it_makes() {
    let (lines, _) = run("watch_dir");
    assert_eq!(
        lines,
        [
            "Created notes.txt",
            "Modified notes.txt",
            "Renamed { to: \"renamed.txt\" } notes.txt",
            "Removed renamed.txt",
            "SelfRemoved ",
        ]
    );
}
