//! evloop's side of the workload comparison (see benches/README.md).
//!
//! `cargo bench --bench workloads -- W1 [n]` runs one workload and prints one
//! JSON line: peer, workload, n, secs, rate, rss_kb (plus extra fields for
//! some workloads). The measured part excludes start-up.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use evloop::net::{tcp, TcpStream};
use evloop::{series, Completion, EventLoop};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let workload = args.first().map(String::as_str).unwrap_or("W1");
    let n = |default: u64| args.get(1).and_then(|s| s.parse().ok()).unwrap_or(default);
    let threads = |default: usize| args.get(2).and_then(|s| s.parse().ok()).unwrap_or(default);
    match workload {
        "W1" => chain(n(1_000_000)),
        "W2" => fanout(n(1_000_000)),
        "W2t" => fanout_tokens(n(1_000_000)),
        "W2s" => series_sync(n(1_000_000)),
        "W3" => timers(n(1_000_000)),
        "W4" => cancel(n(1_000_000)),
        "W5" => ping_pong(n(100_000), 1, "W5"),
        "W5c" => ping_pong(n(100_000), 100, "W5c"),
        "W6" => cross_thread(n(1_000_000)),
        "W7" => one_loop_per_core(n(200_000), threads(2)),
        "W8" => small_writes(n(1_000_000)),
        other => {
            eprintln!("unknown workload {other}; known: W1 W2 W2t W2s W3 W4 W5 W5c W6 W7 W8");
            std::process::exit(2);
        }
    }
}

/// Peak resident set size in KiB (VmHWM), 0 where /proc is missing.
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn report(workload: &str, n: u64, secs: f64, extra: &str) {
    println!(
        "{{\"peer\":\"evloop\",\"workload\":\"{workload}\",\"n\":{n},\"secs\":{secs:.6},\"rate\":{:.0},\"rss_kb\":{}{extra}}}",
        n as f64 / secs,
        peak_rss_kb()
    );
}

thread_local! {
    static LEFT: Cell<u64> = const { Cell::new(0) };
}

/// One link of W1's chain; it captures nothing (as libuv's idle callback).
fn step(ev: &mut EventLoop) {
    let left = LEFT.with(|l| l.replace(l.get().saturating_sub(1)));
    if left > 1 {
        ev.call_soon(step);
    }
}

/// W1: one callback re-schedules itself n times.
fn chain(n: u64) {
    let mut ev = EventLoop::new().unwrap();
    LEFT.with(|l| l.set(n));
    let t = Instant::now();
    ev.call_soon(step);
    ev.run().unwrap();
    assert_eq!(LEFT.with(Cell::get), 0);
    report("W1", n, t.elapsed().as_secs_f64(), "");
}

thread_local! {
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

/// W2: n callbacks queued up front, then run. Each closure captures nothing
/// (it counts in a thread-local), like the baseline's.
fn fanout(n: u64) {
    let mut ev = EventLoop::new().unwrap();
    let t = Instant::now();
    for _ in 0..n {
        ev.call_soon(|_| COUNT.with(|c| c.set(c.get() + 1)));
    }
    ev.run().unwrap();
    assert_eq!(COUNT.with(Cell::get), n);
    report("W2", n, t.elapsed().as_secs_f64(), "");
}

/// W2t: W2 through completion tokens, to price a token against a plain
/// closure: n tokens made up front, each with a callback that counts in a
/// thread-local, each completed by a queued closure (so its callback runs
/// through the loop, one pass later).
fn fanout_tokens(n: u64) {
    let mut ev = EventLoop::new().unwrap();
    let t = Instant::now();
    for _ in 0..n {
        let token = Completion::new(&mut ev, |_, r: std::io::Result<()>| {
            if r.is_ok() {
                COUNT.with(|c| c.set(c.get() + 1));
            }
        });
        ev.call_soon(move |ev| token.complete(ev, Ok(())));
    }
    ev.run().unwrap();
    assert_eq!(COUNT.with(Cell::get), n);
    report("W2t", n, t.elapsed().as_secs_f64(), "");
}

/// W2s: `series` over n tasks that complete inside their start call (no
/// recursion, no pass per task).
fn series_sync(n: u64) {
    let mut ev = EventLoop::new().unwrap();
    let t = Instant::now();
    let tasks =
        (0..n).map(|_| |ev: &mut EventLoop, done: Completion<()>| done.complete(ev, Ok(())));
    series(&mut ev, tasks, move |_, r| {
        COUNT.with(|c| c.set(r.unwrap().len() as u64));
    });
    ev.run().unwrap();
    assert_eq!(COUNT.with(Cell::get), n);
    report(
        "W2s",
        n,
        t.elapsed().as_secs_f64(),
        &format!(",\"passes\":{}", ev.iterations()),
    );
}

thread_local! {
    static FIRED: Cell<u64> = const { Cell::new(0) };
    static LATE: Cell<Duration> = const { Cell::new(Duration::ZERO) };
    static BASE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// W3: libuv's million-timers: timeout goes up 1 ms every 1,000 timers.
/// Each closure captures its delay in ms only, one 8-byte word (libuv's
/// timers carry a data word).
fn timers(n: u64) {
    let mut ev = EventLoop::new().unwrap();
    let t = Instant::now();
    BASE.with(|b| b.set(Some(ev.now())));
    for i in 0..n {
        let ms: u64 = i / 1000 + 1;
        ev.set_timeout(Duration::from_millis(ms), move |_| {
            FIRED.with(|f| f.set(f.get() + 1));
            let due = BASE.with(Cell::get).expect("set") + Duration::from_millis(ms);
            LATE.with(|l| l.set(Instant::now().saturating_duration_since(due)));
        });
    }
    let setup = t.elapsed().as_secs_f64();
    let t = Instant::now();
    ev.run().unwrap();
    let run = t.elapsed().as_secs_f64();
    assert_eq!(FIRED.with(Cell::get), n);
    let extra = format!(
        ",\"setup_secs\":{setup:.6},\"run_secs\":{run:.6},\"last_late_ms\":{:.3}",
        LATE.with(Cell::get).as_secs_f64() * 1e3
    );
    report("W3", n, setup + run, &extra);
}

/// W4: n timers of 10 s, all cleared; the loop must then exit at once.
fn cancel(n: u64) {
    let mut ev = EventLoop::new().unwrap();
    let t = Instant::now();
    let ids: Vec<_> = (0..n)
        .map(|_| ev.set_timeout(Duration::from_secs(10), |_| unreachable!("cleared")))
        .collect();
    for id in ids {
        assert!(ev.clear_timer(id));
    }
    ev.run().unwrap();
    report("W4", n, t.elapsed().as_secs_f64(), "");
}

/// W5 / W5c: a TCP echo server and its clients in one loop on 127.0.0.1;
/// "PING\n" goes back and forth `n` times in all, over `conns` connections.
fn ping_pong(n: u64, conns: u64, name: &str) {
    let mut ev = EventLoop::new().unwrap();
    let server = tcp::listen(
        &mut ev,
        "127.0.0.1:0".parse().unwrap(),
        Default::default(),
        |ev, c| {
            c.unwrap()
                .read_start(ev, |ev, s, data| match data {
                    Ok([]) | Err(_) => drop(s.close(ev)),
                    Ok(bytes) => drop(s.write(ev, bytes)),
                })
                .unwrap();
        },
    )
    .unwrap();
    let addr = server.local_addr().unwrap();
    let per_conn = n / conns;
    let open = Rc::new(Cell::new(conns));
    let t = Rc::new(Cell::new(None));
    for _ in 0..conns {
        let (open, server, t) = (open.clone(), server.clone(), t.clone());
        tcp::connect(&mut ev, addr, move |ev, conn| {
            let conn: TcpStream = conn.unwrap();
            let mut left = per_conn;
            let mut got = 0;
            conn.read_start(ev, move |ev, s, data| {
                got += data.unwrap().len();
                while got >= 5 {
                    got -= 5;
                    left -= 1;
                    if left == 0 {
                        s.close(ev);
                        open.set(open.get() - 1);
                        if open.get() == 0 {
                            server.close(ev);
                        }
                        return;
                    }
                    s.write(ev, &b"PING\n"[..]).unwrap();
                }
            })
            .unwrap();
            if t.get().is_none() {
                t.set(Some(Instant::now()));
            }
            conn.write(ev, &b"PING\n"[..]).unwrap();
        })
        .unwrap();
    }
    ev.run().unwrap();
    let secs = t.get().unwrap().elapsed().as_secs_f64();
    report(name, per_conn * conns, secs, &format!(",\"conns\":{conns}"));
}

thread_local! {
    static POSTED: Cell<u64> = const { Cell::new(0) };
}

/// W6: another thread posts n callbacks through the thread-safe handle; the
/// loop runs until the poster is done and its handle dropped.
fn cross_thread(n: u64) {
    let mut ev = EventLoop::new().unwrap();
    let handle = ev.handle();
    let t = Instant::now();
    let poster = std::thread::spawn(move || {
        for _ in 0..n {
            handle
                .call_soon(|_| POSTED.with(|c| c.set(c.get() + 1)))
                .unwrap();
        }
    });
    ev.run().unwrap();
    poster.join().unwrap();
    assert_eq!(POSTED.with(Cell::get), n);
    report("W6", n, t.elapsed().as_secs_f64(), "");
}

/// W8: n small (16-byte) writes queued behind a full socket buffer, then
/// read by the peer in the same loop: how fast the queue drains. Gathered
/// writes (`writev`/`sendmsg` of up to 64 queued buffers) are what this
/// measures; evloop only (the peers' write paths differ too much).
fn small_writes(n: u64) {
    use std::io::Write;
    let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let mut filled = 0usize;
    let filler = [0u8; 4096];
    while let Ok(k) = a.write(&filler) {
        filled += k;
    }
    let mut ev = EventLoop::new().unwrap();
    let a = evloop::net::UnixStream::from_std(a).unwrap();
    let b = evloop::net::UnixStream::from_std(b).unwrap();
    let start = Instant::now();
    let message = [7u8; 16];
    for _ in 0..n {
        a.write(&mut ev, message).unwrap();
    }
    let want = filled + 16 * n as usize;
    let mut got = 0;
    b.read_start(&mut ev, move |ev, b, data| {
        got += data.unwrap().len();
        if got == want {
            b.close(ev);
        }
    })
    .unwrap();
    ev.run().unwrap();
    let secs = start.elapsed().as_secs_f64();
    a.close(&mut ev);
    report("W8", n, secs, "");
}

/// W7: one loop per core. `servers` threads each run a loop with its own
/// `SO_REUSEPORT` listener on one port, echoing "PING\n"; two client
/// threads (each its own loop, 50 connections) make n round trips in all.
/// Run at 1 and 2 servers, the ratio is the scaling (on a 2-core machine
/// the clients share the cores, so 2.0 is out of reach).
fn one_loop_per_core(n: u64, servers: usize) {
    use std::sync::mpsc;
    let mut addr: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    for _ in 0..servers {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut ev = EventLoop::new().unwrap();
            let options = tcp::ListenOptions {
                reuse_port: true,
                ..Default::default()
            };
            let server = tcp::listen(&mut ev, addr, options, |ev, c| {
                c.unwrap()
                    .read_start(ev, |ev, s, data| match data {
                        Ok([]) | Err(_) => drop(s.close(ev)),
                        Ok(bytes) => drop(s.write(ev, bytes)),
                    })
                    .unwrap();
            })
            .unwrap();
            tx.send(server.local_addr().unwrap()).unwrap();
            ev.run().unwrap(); // ends with the process
        });
        addr = rx.recv().unwrap();
    }
    let clients = 2u64;
    let conns = 50u64;
    let per_conn = n / (clients * conns);
    let start = Instant::now();
    let joins: Vec<_> = (0..clients)
        .map(|_| {
            std::thread::spawn(move || {
                let mut ev = EventLoop::new().unwrap();
                for _ in 0..conns {
                    tcp::connect(&mut ev, addr, move |ev, conn| {
                        let conn: TcpStream = conn.unwrap();
                        let (mut left, mut got) = (per_conn, 0);
                        conn.read_start(ev, move |ev, s, data| {
                            got += data.unwrap().len();
                            while got >= 5 {
                                got -= 5;
                                left -= 1;
                                if left == 0 {
                                    s.close(ev);
                                    return;
                                }
                                s.write(ev, &b"PING\n"[..]).unwrap();
                            }
                        })
                        .unwrap();
                        conn.write(ev, &b"PING\n"[..]).unwrap();
                    })
                    .unwrap();
                }
                ev.run().unwrap();
            })
        })
        .collect();
    for j in joins {
        j.join().unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    report(
        "W7",
        per_conn * clients * conns,
        secs,
        &format!(",\"servers\":{servers}"),
    );
}
