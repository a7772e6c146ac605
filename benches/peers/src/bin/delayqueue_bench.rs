//! tokio-util's `DelayQueue` on the timer workloads (W3, W4), reported as
//! the peer "delayqueue".
//!
//! `tokio_bench` gives each W3 timer a task of its own (`sleep_until`), which
//! prices a task as well as a timer. A `DelayQueue` is tokio's way to hold
//! many timeouts in one place: one task polls it, and each entry is a slab
//! slot in its own timer wheel. It is the fairer tokio figure for "n timers",
//! so evloop's W3 setup is compared against it too.

use std::future::poll_fn;
use std::time::{Duration, Instant};

use evloop_peers::{args, report, w3_delay};
use tokio_util::time::DelayQueue;

fn main() {
    let (w, n) = args();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        match w.as_str() {
            "W3" => timers(n).await,
            "W4" => cancel(n).await,
            other => panic!("unknown workload {other}; delayqueue has W3 and W4"),
        }
    });
}

/// W3: libuv's million timers, the timeout 1 ms more every 1,000, all in
/// one queue; the run ends when the queue is empty.
async fn timers(n: u64) {
    let mut queue = DelayQueue::new();
    let t = Instant::now();
    let base = tokio::time::Instant::now();
    for i in 0..n {
        // The entry carries its own due time: `Expired::deadline` is the
        // queue's rounded-up millisecond, which would hide up to 1 ms of
        // lateness.
        let due = base + w3_delay(i);
        queue.insert_at(due, due);
    }
    let setup = t.elapsed().as_secs_f64();
    let t2 = Instant::now();
    let (mut fired, mut late) = (0u64, Duration::ZERO);
    while let Some(expired) = poll_fn(|cx| queue.poll_expired(cx)).await {
        fired += 1;
        late = tokio::time::Instant::now().saturating_duration_since(expired.into_inner());
    }
    let run = t2.elapsed().as_secs_f64();
    assert_eq!(fired, n);
    let extra = format!(
        ",\"setup_secs\":{setup:.6},\"run_secs\":{run:.6},\"last_late_ms\":{:.3}",
        late.as_secs_f64() * 1e3
    );
    report("delayqueue", "W3", n, setup + run, &extra);
}

/// W4: n timeouts of 10 s inserted, then all removed; polling the empty
/// queue must then end at once.
async fn cancel(n: u64) {
    let mut queue = DelayQueue::new();
    let t = Instant::now();
    let keys: Vec<_> = (0..n)
        .map(|_| queue.insert((), Duration::from_secs(10)))
        .collect();
    for key in &keys {
        queue.remove(key);
    }
    assert!(poll_fn(|cx| queue.poll_expired(cx)).await.is_none());
    report("delayqueue", "W4", n, t.elapsed().as_secs_f64(), "");
}
