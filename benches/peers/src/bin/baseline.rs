//! Hand-written baselines: what the workloads cost with no event-loop
//! library at all.
//!
//! - W2: a `VecDeque` of boxed closures run in a loop.
//! - W5 / W5c: the ping-pong on `polling` alone: non-blocking sockets,
//!   level-triggered, one `Poller::wait` per pass, buffers on the stack.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use evloop_peers::{args, report};
use polling::{Event, Events, PollMode, Poller};

fn main() {
    let (w, n) = args();
    match w.as_str() {
        "W1" => chain(n),
        "W2" => fanout(n),
        "W5" => ping_pong(n, 1, "W5"),
        "W5c" => ping_pong(n, 100, "W5c"),
        other => {
            eprintln!("the baseline has no {other}");
            std::process::exit(2);
        }
    }
}

thread_local! {
    static COUNT: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// W1 by hand: one callback re-queues itself n times in a `VecDeque` of
/// boxed closures, each given the queue (as evloop's are given the loop).
fn chain(n: u64) {
    struct Queue(VecDeque<Box<dyn FnOnce(&mut Queue)>>);
    fn step(q: &mut Queue) {
        let left = COUNT.with(|c| c.replace(c.get().saturating_sub(1)));
        if left > 1 {
            q.0.push_back(Box::new(step));
        }
    }
    COUNT.with(|c| c.set(n));
    let t = Instant::now();
    let mut queue = Queue(VecDeque::new());
    queue.0.push_back(Box::new(step));
    while let Some(f) = queue.0.pop_front() {
        f(&mut queue);
    }
    report("baseline", "W1", n, t.elapsed().as_secs_f64(), "");
}

/// The same closures as evloop's W2 (they count in a thread-local), in a
/// `VecDeque`, run front to back.
fn fanout(n: u64) {
    let t = Instant::now();
    let mut queue: VecDeque<Box<dyn FnOnce()>> = VecDeque::new();
    for _ in 0..n {
        queue.push_back(Box::new(|| COUNT.with(|c| c.set(c.get() + 1))));
    }
    while let Some(f) = queue.pop_front() {
        f();
    }
    assert_eq!(COUNT.with(|c| c.get()), n);
    report("baseline", "W2", n, t.elapsed().as_secs_f64(), "");
}

struct Conn {
    stream: TcpStream,
    client: bool,
    left: u64,
    got: usize,
}

fn ping_pong(n: u64, conns: u64, name: &str) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let poller = Poller::new().unwrap();
    let per = n / conns;
    let mut socks: Vec<Conn> = Vec::new();
    for _ in 0..conns {
        let c = TcpStream::connect(addr).unwrap();
        let (s, _) = listener.accept().unwrap();
        for (stream, client) in [(c, true), (s, false)] {
            stream.set_nodelay(true).unwrap();
            stream.set_nonblocking(true).unwrap();
            socks.push(Conn {
                stream,
                client,
                left: per,
                got: 0,
            });
        }
    }
    for (key, c) in socks.iter().enumerate() {
        // SAFETY: each socket is deleted from the poller before it drops.
        unsafe {
            poller
                .add_with_mode(&c.stream, Event::readable(key), PollMode::Level)
                .unwrap()
        };
    }
    let t = Instant::now();
    for c in socks.iter_mut().filter(|c| c.client) {
        c.stream.write_all(b"PING\n").unwrap();
    }
    let mut open = conns;
    let mut events = Events::new();
    let mut buf = [0u8; 65536];
    while open > 0 {
        events.clear();
        poller
            .wait(&mut events, Some(Duration::from_secs(5)))
            .unwrap();
        for ev in events.iter() {
            let c = &mut socks[ev.key];
            let k = match c.stream.read(&mut buf) {
                Ok(0) => continue,
                Ok(k) => k,
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(e) => panic!("{e}"),
            };
            if !c.client {
                c.stream.write_all(&buf[..k]).unwrap();
                continue;
            }
            c.got += k;
            while c.got >= 5 {
                c.got -= 5;
                c.left -= 1;
                if c.left == 0 {
                    poller.delete(&c.stream).unwrap();
                    open -= 1;
                    break;
                }
                c.stream.write_all(b"PING\n").unwrap();
            }
        }
    }
    let secs = t.elapsed().as_secs_f64();
    for c in &socks {
        let _ = poller.delete(&c.stream);
    }
    report(
        "baseline",
        name,
        per * conns,
        secs,
        &format!(",\"conns\":{conns}"),
    );
}
