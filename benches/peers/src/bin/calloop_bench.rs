//! calloop's side of the workload comparison.
//!
//! calloop has no "run soon" queue but idle callbacks (run once, when the
//! loop would otherwise block): W1 re-inserts an idle callback from itself,
//! W2 inserts n idle callbacks. The shared state is the loop's `Data`.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use calloop::channel::{channel, Event as ChannelEvent};
use calloop::generic::Generic;
use calloop::timer::{TimeoutAction, Timer};
use calloop::{EventLoop, Interest, LoopHandle, LoopSignal, Mode, PostAction};
use evloop_peers::{args, report, w3_delay};

struct Data {
    count: u64,
    n: u64,
    late_ms: f64,
    open: u64,
    signal: LoopSignal,
}

fn main() {
    let (w, n) = args();
    let mut ev: EventLoop<Data> = EventLoop::try_new().unwrap();
    let mut data = Data {
        count: 0,
        n,
        late_ms: 0.0,
        open: 0,
        signal: ev.get_signal(),
    };
    let handle = ev.handle();
    // Idle callbacks only run after a dispatch's wait: with idles pending,
    // the wait must not block (timeout zero), as calloop users do.
    let until_done = |ev: &mut EventLoop<Data>, data: &mut Data, timeout: Option<Duration>| {
        ev.run(timeout, data, |d| {
            if d.count >= d.n {
                d.signal.stop();
            }
        })
        .unwrap();
    };
    match w.as_str() {
        "W1" => {
            fn again(h: LoopHandle<'static, Data>, d: &mut Data) {
                d.count += 1;
                if d.count < d.n {
                    let h2 = h.clone();
                    h.insert_idle(move |d| again(h2, d));
                }
            }
            let t = Instant::now();
            let h = handle.clone();
            handle.insert_idle(move |d| again(h, d));
            until_done(&mut ev, &mut data, Some(Duration::ZERO));
            report("calloop", &w, n, t.elapsed().as_secs_f64(), "");
        }
        "W2" => {
            let t = Instant::now();
            for _ in 0..n {
                handle.insert_idle(|d: &mut Data| d.count += 1);
            }
            until_done(&mut ev, &mut data, Some(Duration::ZERO));
            report("calloop", &w, n, t.elapsed().as_secs_f64(), "");
        }
        "W3" => {
            let t = Instant::now();
            let base = Instant::now();
            for i in 0..n {
                let due = base + w3_delay(i);
                handle
                    .insert_source(Timer::from_deadline(due), move |_, _, d: &mut Data| {
                        d.count += 1;
                        d.late_ms = Instant::now().duration_since(due).as_secs_f64() * 1e3;
                        TimeoutAction::Drop
                    })
                    .unwrap();
            }
            let setup = t.elapsed().as_secs_f64();
            let t2 = Instant::now();
            until_done(&mut ev, &mut data, None);
            let run = t2.elapsed().as_secs_f64();
            let extra = format!(
                ",\"setup_secs\":{setup:.6},\"run_secs\":{run:.6},\"last_late_ms\":{:.3}",
                data.late_ms
            );
            report("calloop", &w, n, setup + run, &extra);
        }
        "W4" => {
            let t = Instant::now();
            let tokens: Vec<_> = (0..n)
                .map(|_| {
                    handle
                        .insert_source(Timer::from_duration(Duration::from_secs(10)), |_, _, _| {
                            TimeoutAction::Drop
                        })
                        .unwrap()
                })
                .collect();
            for tok in tokens {
                handle.remove(tok);
            }
            ev.dispatch(Some(Duration::ZERO), &mut data).unwrap();
            report("calloop", &w, n, t.elapsed().as_secs_f64(), "");
        }
        "W5" => ping_pong(&mut ev, &mut data, n, 1, "W5"),
        "W5c" => ping_pong(&mut ev, &mut data, n, 100, "W5c"),
        "W6" => {
            let (tx, rx) = channel::<Box<dyn FnOnce(&mut Data) + Send>>();
            handle
                .insert_source(rx, |e, _, d| {
                    if let ChannelEvent::Msg(f) = e {
                        f(d)
                    }
                })
                .unwrap();
            let t = Instant::now();
            let poster = std::thread::spawn(move || {
                for _ in 0..n {
                    tx.send(Box::new(|d: &mut Data| d.count += 1)).unwrap();
                }
            });
            until_done(&mut ev, &mut data, None);
            poster.join().unwrap();
            report("calloop", &w, n, t.elapsed().as_secs_f64(), "");
        }
        other => panic!("unknown workload {other}"),
    }
}

fn ping_pong(ev: &mut EventLoop<Data>, data: &mut Data, n: u64, conns: u64, name: &str) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = ev.handle();
    let per = n / conns;
    let mut clients = Vec::new();
    for _ in 0..conns {
        let c = TcpStream::connect(addr).unwrap();
        let (s, _) = listener.accept().unwrap();
        for sock in [&c, &s] {
            sock.set_nodelay(true).unwrap();
            sock.set_nonblocking(true).unwrap();
        }
        // The echo side.
        handle
            .insert_source(Generic::new(s, Interest::READ, Mode::Level), |_, s, _| {
                let mut buf = [0u8; 65536];
                // SAFETY: the socket is not dropped while registered.
                let s = unsafe { s.get_mut() };
                match s.read(&mut buf) {
                    Ok(0) => Ok(PostAction::Remove),
                    Ok(k) => {
                        s.write_all(&buf[..k]).unwrap();
                        Ok(PostAction::Continue)
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(PostAction::Continue),
                    Err(_) => Ok(PostAction::Remove),
                }
            })
            .unwrap();
        clients.push(c);
    }
    data.open = conns;
    data.n = 1;
    let t = Instant::now();
    for mut c in clients {
        c.write_all(b"PING\n").unwrap();
        let mut left = per;
        let mut got = 0;
        handle
            .insert_source(
                Generic::new(c, Interest::READ, Mode::Level),
                move |_, c, d: &mut Data| {
                    let mut buf = [0u8; 64];
                    // SAFETY: the socket is not dropped while registered.
                    let c = unsafe { c.get_mut() };
                    match c.read(&mut buf) {
                        Ok(k) => got += k,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            return Ok(PostAction::Continue)
                        }
                        Err(e) => panic!("{e}"),
                    }
                    while got >= 5 {
                        got -= 5;
                        left -= 1;
                        if left == 0 {
                            d.open -= 1;
                            if d.open == 0 {
                                d.count = 1;
                            }
                            return Ok(PostAction::Remove);
                        }
                        c.write_all(b"PING\n").unwrap();
                    }
                    Ok(PostAction::Continue)
                },
            )
            .unwrap();
    }
    ev.run(None, data, |d| {
        if d.count >= 1 {
            d.signal.stop();
        }
    })
    .unwrap();
    report(
        "calloop",
        name,
        per * conns,
        t.elapsed().as_secs_f64(),
        &format!(",\"conns\":{conns}"),
    );
}
