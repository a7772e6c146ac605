//! tokio's side of the workload comparison: a current-thread runtime.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use evloop_peers::{args, report, w3_delay};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn main() {
    let (w, n) = args();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        match w.as_str() {
            "W1" => {
                let t = Instant::now();
                for _ in 0..n {
                    tokio::task::yield_now().await;
                }
                report("tokio", &w, n, t.elapsed().as_secs_f64(), "");
            }
            "W2" => {
                let count = Rc::new(Cell::new(0u64));
                let t = Instant::now();
                for _ in 0..n {
                    let c = count.clone();
                    tokio::task::spawn_local(async move { c.set(c.get() + 1) });
                }
                while count.get() < n {
                    tokio::task::yield_now().await;
                }
                report("tokio", &w, n, t.elapsed().as_secs_f64(), "");
            }
            "W3" => {
                let count = Rc::new(Cell::new(0u64));
                let late = Rc::new(Cell::new(0f64));
                let t = Instant::now();
                let base = tokio::time::Instant::now();
                for i in 0..n {
                    let (c, l) = (count.clone(), late.clone());
                    let due = base + w3_delay(i);
                    tokio::task::spawn_local(async move {
                        tokio::time::sleep_until(due).await;
                        c.set(c.get() + 1);
                        l.set((tokio::time::Instant::now() - due).as_secs_f64() * 1e3);
                    });
                }
                let setup = t.elapsed().as_secs_f64();
                let t2 = Instant::now();
                while count.get() < n {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
                let run = t2.elapsed().as_secs_f64();
                let extra = format!(
                    ",\"setup_secs\":{setup:.6},\"run_secs\":{run:.6},\"last_late_ms\":{:.3}",
                    late.get()
                );
                report("tokio", &w, n, setup + run, &extra);
            }
            "W4" => {
                let t = Instant::now();
                let handles: Vec<_> = (0..n)
                    .map(|_| {
                        tokio::task::spawn_local(async {
                            tokio::time::sleep(std::time::Duration::from_secs(10)).await;
                        })
                    })
                    .collect();
                for h in &handles {
                    h.abort();
                }
                for h in handles {
                    let _ = h.await;
                }
                report("tokio", &w, n, t.elapsed().as_secs_f64(), "");
            }
            "W5" => ping_pong(n, 1, "W5").await,
            "W5c" => ping_pong(n, 100, "W5c").await,
            "W6" => {
                let (tx, mut rx) =
                    tokio::sync::mpsc::unbounded_channel::<Box<dyn FnOnce(&mut u64) + Send>>();
                let t = Instant::now();
                let poster = std::thread::spawn(move || {
                    for _ in 0..n {
                        tx.send(Box::new(|c: &mut u64| *c += 1)).unwrap();
                    }
                });
                let mut count = 0u64;
                while let Some(f) = rx.recv().await {
                    f(&mut count);
                }
                poster.join().unwrap();
                assert_eq!(count, n);
                report("tokio", &w, n, t.elapsed().as_secs_f64(), "");
            }
            other => panic!("unknown workload {other}"),
        }
    });
}

async fn ping_pong(n: u64, conns: u64, name: &str) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::task::spawn_local(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            s.set_nodelay(true).unwrap();
            tokio::task::spawn_local(async move {
                let mut buf = vec![0u8; 65536];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => {
                            if s.write_all(&buf[..k]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    let per = n / conns;
    let mut streams = Vec::new();
    for _ in 0..conns {
        let s = TcpStream::connect(addr).await.unwrap();
        s.set_nodelay(true).unwrap();
        streams.push(s);
    }
    let t = Instant::now();
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|mut s| {
            tokio::task::spawn_local(async move {
                let mut buf = [0u8; 64];
                let mut got = 0;
                s.write_all(b"PING\n").await.unwrap();
                let mut left = per;
                loop {
                    got += s.read(&mut buf).await.unwrap();
                    while got >= 5 {
                        got -= 5;
                        left -= 1;
                        if left == 0 {
                            return;
                        }
                        s.write_all(b"PING\n").await.unwrap();
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    report(
        "tokio",
        name,
        per * conns,
        t.elapsed().as_secs_f64(),
        &format!(",\"conns\":{conns}"),
    );
}
