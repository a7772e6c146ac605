//! One process accepts TCP connections and hands each to a worker process
//! over a Unix socket (SCM_RIGHTS fd passing), as Node's `cluster` module
//! and libuv's IPC pipes do. Each worker runs its own loop and answers on
//! the connection it was given. (Threads on a `SO_REUSEPORT` port are the
//! other way to use more cores: see `tcp::ListenOptions::reuse_port`.)
//!
//!     cargo run --example cluster [-- WORKERS CLIENTS]
//!
//! The parent also plays the clients (default: 2 workers, 6 clients), then
//! closes the worker sockets; the workers see EOF and exit.

use std::cell::RefCell;
use std::os::fd::{FromRawFd, OwnedFd};
use std::rc::Rc;

use evloop::net::{tcp, TcpStream, UnixStream};
use evloop::process::{self, Command};
use evloop::EventLoop;

fn main() -> std::io::Result<()> {
    env_logger::init();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--worker") {
        return worker(&args[2]);
    }
    let workers: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2);
    let clients: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(6);
    let mut ev = EventLoop::new()?;

    // Start the workers, each with one end of a socket pair as its fd 3.
    let mut channels = Vec::new();
    for n in 0..workers {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.arg("--worker").arg(n.to_string()).fd(3, theirs);
        process::spawn(&mut ev, cmd, move |_, status| {
            assert!(status.success(), "worker {n}: {status}");
        })?;
        channels.push(UnixStream::from_std(ours)?);
    }

    // Accept here; pass each connection to the next worker, round robin.
    let next = RefCell::new(0);
    let ch = channels.clone();
    let server = tcp::listen(
        &mut ev,
        "127.0.0.1:0".parse().unwrap(),
        Default::default(),
        move |ev, conn| {
            let Ok(conn) = conn else { return };
            // A duplicate of the socket travels; our copy closes right away.
            let fd: OwnedFd = conn.with_socket(|s| s.try_clone()).expect("dup").into();
            conn.close(ev);
            let mut n = next.borrow_mut();
            let channel = &ch[*n % ch.len()];
            *n += 1;
            channel
                .write_with_fds(ev, b"c", vec![fd], |_, r| r.expect("handing over"))
                .expect("handing over");
        },
    )?;
    let addr = server.local_addr()?;

    // The clients, in the same loop.
    let replies = Rc::new(RefCell::new(vec![String::new(); clients]));
    let left = Rc::new(RefCell::new(clients));
    for k in 0..clients {
        let (replies, left, server, channels) = (
            replies.clone(),
            left.clone(),
            server.clone(),
            channels.clone(),
        );
        tcp::connect(&mut ev, addr, move |ev, conn| {
            let conn = conn.expect("connect");
            conn.read_start(ev, move |ev, conn, data| match data {
                Ok([]) | Err(_) => {
                    conn.close(ev);
                    *left.borrow_mut() -= 1;
                    if *left.borrow() == 0 {
                        // All served: stop accepting, let the workers go.
                        server.close(ev);
                        channels.iter().for_each(|c| {
                            c.close(ev);
                        });
                    }
                }
                Ok(bytes) => replies.borrow_mut()[k].push_str(&String::from_utf8_lossy(bytes)),
            })
            .expect("read");
        })?;
    }
    ev.run()?;
    for (k, reply) in replies.borrow().iter().enumerate() {
        println!("client {k}: {}", reply.trim_end());
    }
    Ok(())
}

/// A worker: takes connections from fd 3 and answers each with its name.
fn worker(name: &str) -> std::io::Result<()> {
    let mut ev = EventLoop::new()?;
    // SAFETY: the parent passed fd 3 to this process for us alone.
    let fd3 = unsafe { OwnedFd::from_raw_fd(3) };
    let channel = UnixStream::from_fd(fd3)?;
    channel.receive_fds(true); // the parent passes connections
    let name = name.to_string();
    channel.read_start(&mut ev, move |ev, channel, data| match data {
        Ok([]) | Err(_) => {
            channel.close(ev); // the parent is done with us
        }
        Ok(_) => {
            for fd in channel.take_fds() {
                let conn = TcpStream::from_fd(fd).expect("a TCP connection");
                conn.write(ev, format!("served by worker {name}\n"))
                    .expect("write");
                let c = conn.clone();
                conn.shutdown_with(ev, move |ev, _| {
                    c.close(ev);
                })
                .expect("shutdown");
            }
        }
    })?;
    ev.run()
}
