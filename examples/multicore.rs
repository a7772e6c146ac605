//! One loop per core: N threads each run their own `EventLoop` with their
//! own listening socket on the same port (`SO_REUSEPORT`), and the kernel
//! spreads new connections across them. Nothing is shared between the
//! loops, so nothing needs a lock; this is how a callback server uses more
//! than one core (Node's `cluster` and libuv do the same with processes;
//! examples/cluster.rs shows that way, with fd passing).
//!
//!     cargo run --release --example multicore -- [THREADS] [CLIENTS]
//!
//! It serves a line protocol ("which\n" gets "loop K\n"), makes CLIENTS
//! connections itself (default 2 threads, 40 clients), and prints how many
//! each loop served.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::mpsc;

use evloop::net::{tcp, TcpServer};
use evloop::EventLoop;

fn serve(k: usize, addr: SocketAddr, ready: mpsc::Sender<SocketAddr>, stop: mpsc::Receiver<()>) {
    let mut ev = EventLoop::new().expect("loop");
    let options = tcp::ListenOptions {
        reuse_port: true,
        ..Default::default()
    };
    let server = tcp::listen(&mut ev, addr, options, move |ev, conn| {
        let Ok(conn) = conn else { return };
        let _ = conn.read_start(ev, move |ev, conn, data| match data {
            Ok([]) | Err(_) => {
                conn.close(ev);
            }
            Ok(_) => {
                let _ = conn.write(ev, format!("loop {k}\n"));
            }
        });
    })
    .expect("listen");
    ready.send(server.local_addr().unwrap()).unwrap();
    // The main thread says when to stop, through a handle: the posted
    // closure must be Send, so it finds the server in the loop's state.
    *ev.layer_state::<Option<TcpServer>>() = Some(server);
    let handle = ev.handle();
    std::thread::spawn(move || {
        let _ = stop.recv();
        let _ = handle.call_soon(|ev| {
            if let Some(server) = ev.layer_state::<Option<TcpServer>>().take() {
                server.close(ev);
            }
        });
    });
    ev.run().expect("run");
}

fn main() -> std::io::Result<()> {
    env_logger::init();
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let threads = args.first().copied().unwrap_or(2).max(1);
    let clients = args.get(1).copied().unwrap_or(40);

    // The first loop picks a free port; the others bind the same one.
    let mut addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut stops = Vec::new();
    let mut joins = Vec::new();
    for k in 0..threads {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel();
        joins.push(std::thread::spawn(move || {
            serve(k, addr, ready_tx, stop_rx)
        }));
        addr = ready_rx.recv().expect("server started");
        stops.push(stop_tx);
    }

    // The clients, on this thread's loop.
    let mut ev = EventLoop::new()?;
    let served = Rc::new(RefCell::new(vec![0usize; threads]));
    for _ in 0..clients {
        let served = served.clone();
        tcp::connect(&mut ev, addr, move |ev, conn| {
            let conn = conn.expect("connect");
            conn.write(ev, b"which\n").expect("write");
            conn.read_start(ev, move |ev, conn, data| {
                if let Ok(line) = data {
                    let text = String::from_utf8_lossy(line);
                    if let Some(k) = text
                        .trim()
                        .strip_prefix("loop ")
                        .and_then(|k| k.parse::<usize>().ok())
                    {
                        served.borrow_mut()[k] += 1;
                    }
                }
                conn.close(ev);
            })
            .expect("read");
        })?;
    }
    ev.run()?;
    for stop in stops {
        let _ = stop.send(());
    }
    for j in joins {
        j.join().expect("server thread");
    }
    for (k, n) in served.borrow().iter().enumerate() {
        println!("loop {k} served {n}");
    }
    Ok(())
}
