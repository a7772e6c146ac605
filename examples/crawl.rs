//! A small crawler: fetches a list of URLs from an HTTP server running in the
//! same loop, at most 4 requests in flight through a `Queue`, each attempt
//! under a `timeout`, each URL `retry`'d up to 3 times, then prints a
//! summary. Some URLs are slow (the timeout and retry paths) and one is
//! missing (an error after every attempt), so the summary shows all paths.
//!
//!     cargo run --example crawl
//!
//! No callback nests more than one level: the queue, retry and timeout carry
//! the control flow, and each final callback runs exactly once.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use evloop::net::{tcp, TcpServer, TcpStream};
use evloop::{retry, timeout, Completion, EventLoop, Queue, TimerId};

/// How long the server sits on a slow request: far past the timeout.
const SLOW: Duration = Duration::from_secs(3);
/// Each attempt's deadline.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(500);
/// Attempts per URL, and the pause after a failed one.
const ATTEMPTS: usize = 3;
const RETRY_DELAY: Duration = Duration::from_millis(100);
/// Requests in flight at most.
const CONCURRENCY: usize = 4;

const PATHS: &[&str] = &[
    "/page/1",
    "/page/2",
    "/slow-once",
    "/page/3",
    "/page/4",
    "/slow",
    "/page/5",
    "/missing",
    "/page/6",
    "/page/7",
];

/// The server: answers `/page/N`, 404s anything unknown, sits on `/slow`
/// always and on `/slow-once` the first time.
struct Site {
    hits: HashMap<String, u32>,
    /// Slow answers not yet sent: their timers and connections.
    parked: Vec<(TimerId, TcpStream)>,
}

fn serve(ev: &mut EventLoop, site: &Rc<RefCell<Site>>) -> io::Result<TcpServer> {
    let site = site.clone();
    tcp::listen(
        ev,
        "127.0.0.1:0".parse().unwrap(),
        Default::default(),
        move |ev, conn| {
            let Ok(conn) = conn else { return };
            let site = site.clone();
            let mut request = Vec::new();
            let reading = conn.read_start(ev, move |ev, conn, data| match data {
                Ok([]) | Err(_) => {
                    conn.close(ev);
                }
                Ok(bytes) => {
                    request.extend_from_slice(bytes);
                    if request.windows(4).any(|w| w == b"\r\n\r\n") {
                        let path = request_path(&request);
                        answer(ev, &site, conn, &path);
                    }
                }
            });
            if let Err(e) = reading {
                eprintln!("server: read_start: {e}");
            }
        },
    )
}

fn request_path(request: &[u8]) -> String {
    String::from_utf8_lossy(request)
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string()
}

fn answer(ev: &mut EventLoop, site: &Rc<RefCell<Site>>, conn: &TcpStream, path: &str) {
    let hit = {
        let mut s = site.borrow_mut();
        let n = s.hits.entry(path.to_string()).or_default();
        *n += 1;
        *n
    };
    let slow = path == "/slow" || (path == "/slow-once" && hit == 1);
    let (status, body) = if path.starts_with("/page/") || path.starts_with("/slow") {
        ("200 OK", format!("content of {path}\n"))
    } else {
        ("404 Not Found", "no such page\n".to_string())
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if slow {
        let later = conn.clone();
        let timer = ev.set_timeout(SLOW, move |ev| send(ev, &later, response));
        site.borrow_mut().parked.push((timer, conn.clone()));
    } else {
        send(ev, conn, response);
    }
}

fn send(ev: &mut EventLoop, conn: &TcpStream, response: String) {
    if conn.write(ev, response).is_ok() {
        let _ = conn.shutdown(ev); // the client reads to EOF
    }
}

/// What a fetch got: the status line's code and the body length.
struct Page {
    status: u16,
    body_len: usize,
}

/// One GET with `Connection: close`, read to EOF; completes `done` with the
/// page, or `Err` for a transport error or a status other than 200.
fn fetch(ev: &mut EventLoop, addr: SocketAddr, path: &'static str, done: Completion<Page>) {
    let connecting = tcp::connect(ev, addr, move |ev, conn| {
        let conn = match conn {
            Ok(conn) => conn,
            Err(e) => return done.complete(ev, Err(e)),
        };
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        let _ = conn.write(ev, request);
        let mut raw = Vec::new();
        let mut done = Some(done);
        let reading = conn.read_start(ev, move |ev, conn, data| {
            let result = match data {
                Ok([]) => parse(&raw),
                Ok(bytes) => return raw.extend_from_slice(bytes),
                Err(e) => Err(e),
            };
            conn.close(ev);
            if let Some(done) = done.take() {
                done.complete(ev, result);
            }
        });
        if let Err(e) = reading {
            eprintln!("client: read_start: {e}"); // `done` drops: Dropped
        }
    });
    if let Err(e) = connecting {
        eprintln!("client: connect: {e}");
    }
}

fn parse(raw: &[u8]) -> io::Result<Page> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed response"))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed status"))?;
    if status != 200 {
        return Err(io::Error::other(format!("HTTP {status}")));
    }
    Ok(Page {
        status,
        body_len: body.len(),
    })
}

/// One line of the summary.
struct Report {
    result: io::Result<Page>,
    attempts: u32,
}

/// Counts requests and how many are in flight.
#[derive(Default)]
struct Traffic {
    requests: Cell<u32>,
    in_flight: Cell<u32>,
    max_in_flight: Cell<u32>,
}

fn main() -> io::Result<()> {
    env_logger::init();
    let mut ev = EventLoop::new()?;
    let site = Rc::new(RefCell::new(Site {
        hits: HashMap::new(),
        parked: Vec::new(),
    }));
    let server = serve(&mut ev, &site)?;
    let addr = server.local_addr()?;
    let traffic = Rc::new(Traffic::default());
    let reports: Rc<RefCell<Vec<Option<Report>>>> =
        Rc::new(RefCell::new(PATHS.iter().map(|_| None).collect()));

    // The worker: one URL, retried, each attempt under a timeout.
    let t = traffic.clone();
    let queue = Queue::new(
        CONCURRENCY,
        move |ev: &mut EventLoop, path: &'static str, done: Completion<Report>| {
            let attempts = Rc::new(Cell::new(0));
            let (a, t) = (attempts.clone(), t.clone());
            let attempt = move |ev: &mut EventLoop, done: Completion<Page>| {
                a.set(a.get() + 1);
                t.requests.set(t.requests.get() + 1);
                t.in_flight.set(t.in_flight.get() + 1);
                t.max_in_flight
                    .set(t.max_in_flight.get().max(t.in_flight.get()));
                let t = t.clone();
                timeout(
                    ev,
                    ATTEMPT_TIMEOUT,
                    move |ev, answer| fetch(ev, addr, path, answer),
                    move |ev, result| {
                        t.in_flight.set(t.in_flight.get() - 1);
                        done.complete(ev, result);
                    },
                );
            };
            let finished = move |ev: &mut EventLoop, result| {
                let attempts = attempts.get();
                done.complete(ev, Ok(Report { result, attempts }));
            };
            if let Err(e) = retry(ev, ATTEMPTS, RETRY_DELAY, attempt, finished) {
                eprintln!("retry: {e}");
            }
        },
    )?;

    for (i, &path) in PATHS.iter().enumerate() {
        let reports = reports.clone();
        queue.push(&mut ev, path, move |_, report| {
            reports.borrow_mut()[i] = report.ok();
        })?;
    }

    // Once the queue ran dry: the summary, then the server goes away (with
    // the slow answers it still sits on).
    let (q, reports, traffic) = (queue.clone(), reports.clone(), traffic.clone());
    queue.set_drain(move |ev| {
        let (mut ok, mut failed) = (0, 0);
        for (path, report) in PATHS.iter().zip(reports.borrow().iter()) {
            let Some(report) = report else {
                println!("{path}: no report");
                continue;
            };
            let tries = match report.attempts {
                1 => "1 attempt".to_string(),
                n => format!("{n} attempts"),
            };
            match &report.result {
                Ok(page) => {
                    ok += 1;
                    println!(
                        "{path}: {} ({} bytes) after {tries}",
                        page.status, page.body_len
                    );
                }
                Err(e) => {
                    failed += 1;
                    let why = match e.kind() {
                        io::ErrorKind::TimedOut => "timed out".to_string(),
                        _ => e.to_string(),
                    };
                    println!("{path}: failed ({why}) after {tries}");
                }
            }
        }
        println!(
            "{ok} ok, {failed} failed, {} requests, at most {} in flight",
            traffic.requests.get(),
            traffic.max_in_flight.get()
        );
        let parked = std::mem::take(&mut site.borrow_mut().parked);
        for (timer, conn) in parked {
            ev.clear_timer(timer);
            conn.close(ev);
        }
        server.close(ev);
        q.kill(ev); // drops this drain callback, which holds the queue: no cycle left
    });
    ev.run()
}
