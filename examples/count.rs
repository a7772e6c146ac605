//! The asynchronous count: three counts share one thread. Each prints "One",
//! hands the loop a one-second timer with a callback, and returns at once; the
//! loop runs the three callbacks when their timers are due. Output: One One
//! One Two Two Two, in one second. `gather` calls a final callback when all
//! three are done (asyncio's `gather`).
//!
//! As asyncio's `gather(count(), count(), count())`, each count is a task the
//! loop runs, so its timeline shows them: record it with
//!
//! ```text
//! EVLOOP_TRACE=count.json cargo run --example count
//! ```
//!
//! and open `count.json` in <https://ui.perfetto.dev> or `chrome://tracing`:
//! three `call_soon` callbacks ("One") at 0 s, three `timer` callbacks
//! ("Two") at 1 s, each named by its line in this file.

use std::time::{Duration, Instant};

use evloop::{gather, Completion, EventLoop};

fn count(ev: &mut EventLoop, done: Completion<()>) {
    println!("One");
    ev.set_timeout(Duration::from_secs(1), move |ev| {
        println!("Two");
        done.complete(ev, Ok(()));
    });
}

fn main() -> std::io::Result<()> {
    env_logger::init();
    let start = Instant::now();
    let mut ev = EventLoop::new()?;
    let tokens = gather(&mut ev, 3, move |_ev, _: std::io::Result<Vec<()>>| {
        eprintln!(
            "count executed in {:.2} seconds",
            start.elapsed().as_secs_f64()
        );
    });
    for done in tokens {
        ev.call_soon(move |ev| count(ev, done));
    }
    ev.run()
}
