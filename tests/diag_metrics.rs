//! Loop metrics: counters by callback kind, IO events, idle time (libuv's
//! test/test-metrics.c `metrics_idle_time`: a loop blocked on a timer of
//! N ms reports at least about N ms idle) and loop lag.

use std::io::Write;
use std::time::Duration;

use evloop::{EventLoop, Interest, LoopMetrics};

#[test]
fn a_fresh_loop_has_all_zero_metrics() {
    let ev = EventLoop::new().unwrap();
    assert_eq!(ev.metrics(), LoopMetrics::default());
}

#[test]
fn callbacks_are_counted_by_kind() {
    let mut ev = EventLoop::new().unwrap();
    for _ in 0..3 {
        ev.call_soon(|ev| ev.call_soon(|_| {}));
    }
    ev.set_timeout(Duration::ZERO, |_| {});
    let mut left = 2;
    let every = ev.set_interval(Duration::ZERO, move |ev| {
        left -= 1;
        if left == 0 {
            ev.stop();
        }
    });
    let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    a.write_all(b"x").unwrap();
    let w = ev
        .watch(b, Interest::READABLE, |ev, b, _| {
            use std::io::Read;
            let _ = b.read(&mut [0; 4]);
            let id = ev.iterations(); // any use; the callback runs once here
            let _ = id;
        })
        .unwrap();
    let h = ev.handle();
    h.call_soon(|_| {}).unwrap();
    h.call_soon(|_| {}).unwrap();
    drop(h);
    ev.run().unwrap();
    ev.clear_timer(every);
    ev.unwatch(w);
    ev.run().unwrap();
    let m = ev.metrics();
    assert_eq!(m.ready_callbacks, 6);
    assert_eq!(m.timer_callbacks, 3, "one timeout, two interval calls");
    assert_eq!(m.posted_callbacks, 2);
    assert!(m.io_callbacks >= 1 && m.io_callbacks <= 2, "{m:?}");
    assert_eq!(m.io_events, m.io_callbacks);
    assert_eq!(m.iterations, ev.iterations());
}

#[test]
fn idle_time_counts_the_blocking_wait() {
    // follows libuv test/test-metrics.c metrics_idle_time
    let mut ev = EventLoop::new().unwrap();
    ev.set_timeout(Duration::from_millis(100), |_| {});
    ev.run().unwrap();
    let m = ev.metrics();
    assert!(m.idle_time >= Duration::from_millis(80), "{m:?}");
    assert!(m.idle_time < Duration::from_secs(10), "{m:?}");
}

#[test]
fn lag_is_how_late_timers_ran() {
    let mut ev = EventLoop::new().unwrap();
    // A 150 ms callback holds the loop: the 1 ms timer runs >= 100 ms late.
    ev.call_soon(|_| std::thread::sleep(Duration::from_millis(150)));
    ev.set_timeout(Duration::from_millis(1), |_| {});
    ev.run().unwrap();
    let m = ev.metrics();
    assert_eq!(m.timer_callbacks, 1);
    assert!(m.lag_max >= Duration::from_millis(100), "{m:?}");
    assert!(m.lag_p50 <= m.lag_max && m.lag_p99 <= m.lag_max, "{m:?}");
    assert!(
        m.lag_p99 >= m.lag_max * 7 / 8,
        "one sample: p99 is it, to 12.5 %: {m:?}"
    );
}

/// A ready callback that panics counts as run; the ones after it count when
/// they run (on the next `run`, or at once under a panic handler), also in
/// a chain of passes that need no poll.
#[test]
fn ready_callbacks_count_as_they_run_across_panics() {
    let mut ev = EventLoop::new().unwrap();
    ev.call_soon(|_| {});
    ev.call_soon(|_| panic!("second"));
    for _ in 0..3 {
        ev.call_soon(|_| {});
    }
    assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ev.run())).is_err());
    assert_eq!(ev.metrics().ready_callbacks, 2);
    ev.run().unwrap();
    assert_eq!(ev.metrics().ready_callbacks, 5);

    ev.set_panic_handler(|_, _| {});
    fn chain(ev: &mut EventLoop, left: u32) {
        if left > 0 {
            ev.call_soon(move |ev| chain(ev, left - 1));
        }
        if left == 5 {
            panic!("in the chain");
        }
    }
    ev.call_soon(|ev| chain(ev, 10));
    ev.call_soon(|_| panic!("beside it"));
    ev.run().unwrap();
    assert_eq!(ev.metrics().ready_callbacks, 5 + 12);
}
