//! The manual clock: time moves by `advance` or jumps to the next timer, so
//! an hour of timeouts runs in milliseconds, in the real clock's order (the
//! model test in tests/model_clock.rs runs on both clocks). Modelled on the
//! fake-time tests of asyncio (test_asyncio/utils.py `TestLoop`, advancing
//! time by generator) and trio's `MockClock(autojump_threshold=0)`.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use evloop::{EventLoop, Interest};

type Log = Rc<RefCell<Vec<(String, Duration)>>>;

fn note(log: &Log, ev: &EventLoop, start: Instant, what: impl Into<String>) {
    log.borrow_mut().push((what.into(), ev.now() - start));
}

#[test]
fn an_hour_of_timeouts_and_retries_runs_in_milliseconds() {
    let real = Instant::now();
    let mut ev = EventLoop::with_manual_clock().unwrap();
    let start = ev.now();
    let log: Log = Rc::default();
    // A job retried with exponential backoff (1 s, 2 s, 4 s, ...) until it
    // succeeds on the 12th try; an overall deadline of one hour; a heartbeat
    // every 10 minutes.
    fn attempt(ev: &mut EventLoop, n: u32, log: Log, start: Instant) {
        note(&log, ev, start, format!("try {n}"));
        if n == 12 {
            return;
        }
        let delay = Duration::from_secs(1 << (n - 1));
        ev.set_timeout(delay, move |ev| attempt(ev, n + 1, log, start));
    }
    let l = log.clone();
    ev.call_soon(move |ev| attempt(ev, 1, l, start));
    let l = log.clone();
    let beats = Rc::new(RefCell::new(0));
    let b = beats.clone();
    let heartbeat = ev.set_interval(Duration::from_secs(600), move |ev| {
        *b.borrow_mut() += 1;
        note(&l, ev, start, "beat");
    });
    let l = log.clone();
    ev.set_timeout(Duration::from_secs(3600), move |ev| {
        note(&l, ev, start, "deadline");
        ev.clear_timer(heartbeat);
    });
    ev.run().unwrap();
    assert!(
        real.elapsed() < Duration::from_secs(30),
        "{:?}",
        real.elapsed()
    );
    assert_eq!(ev.now() - start, Duration::from_secs(3600));
    let log = log.borrow();
    // Tries at 0, 1, 3, 7, ... 2^(n-1) - 1 seconds.
    let tries: Vec<_> = log
        .iter()
        .filter(|(w, _)| w.starts_with("try"))
        .map(|e| e.1)
        .collect();
    let want: Vec<_> = (1..=12u32)
        .map(|n| Duration::from_secs((1 << (n - 1)) - 1))
        .collect();
    assert_eq!(tries, want);
    let beats: Vec<_> = log
        .iter()
        .filter(|(w, _)| w == "beat")
        .map(|e| e.1)
        .collect();
    let want: Vec<_> = (1..=5).map(|k| Duration::from_secs(600 * k)).collect();
    assert_eq!(beats, want);
    // At 3600 s both are due: the deadline timer was armed at 0 s, the
    // heartbeat's sixth call at 3000 s, so the deadline runs first (equal
    // deadlines run in the order armed, guarantee 2) and clears it.
    assert_eq!(
        log.last().unwrap(),
        &("deadline".to_string(), Duration::from_secs(3600))
    );
    // No lag on a manual clock: timers run exactly at their deadlines.
    assert_eq!(ev.metrics().lag_max, Duration::ZERO);
}

#[test]
fn advance_and_run_nowait_move_time_by_hand() {
    let mut ev = EventLoop::with_manual_clock().unwrap();
    assert!(ev.has_manual_clock());
    let start = ev.now();
    let log: Log = Rc::default();
    for ms in [30, 10, 20, 10] {
        let l = log.clone();
        ev.set_timeout(Duration::from_millis(ms), move |ev| {
            note(&l, ev, start, ms.to_string())
        });
    }
    assert!(ev.run_nowait().unwrap(), "run_nowait never jumps");
    assert!(log.borrow().is_empty());
    assert_eq!(ev.now(), start);
    ev.advance(Duration::from_millis(15)).unwrap();
    assert_eq!(ev.now(), start, "now() is the cached pass time");
    ev.run_nowait().unwrap();
    let ran: Vec<_> = log.borrow().iter().map(|e| e.0.clone()).collect();
    assert_eq!(ran, ["10", "10"]);
    assert_eq!(ev.now() - start, Duration::from_millis(15));
    ev.advance(Duration::from_millis(100)).unwrap();
    ev.update_time();
    assert_eq!(ev.now() - start, Duration::from_millis(115));
    assert!(!ev.run_nowait().unwrap());
    let ran: Vec<_> = log.borrow().iter().map(|e| e.0.clone()).collect();
    assert_eq!(ran, ["10", "10", "20", "30"]);
    // The deadline is now() + delay on the manual clock too.
    let id = ev.set_timeout(Duration::from_secs(2), |_| {});
    assert_eq!(ev.timer_due_in(id), Some(Duration::from_secs(2)));
    assert_eq!(ev.backend_timeout(), Some(Duration::from_secs(2)));
}

#[test]
fn advance_on_a_real_clock_is_invalid_input() {
    let mut ev = EventLoop::new().unwrap();
    assert!(!ev.has_manual_clock());
    let e = ev.advance(Duration::from_secs(1)).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn huge_advances_saturate_and_never_timers_are_not_jumped_to() {
    let mut ev = EventLoop::with_manual_clock().unwrap();
    ev.advance(Duration::MAX).unwrap();
    ev.advance(Duration::MAX).unwrap();
    ev.update_time();
    // A Duration::MAX delay means never: run_once must not jump to it, so
    // the timer is unref'd and the loop ends.
    let id = ev.set_timeout(Duration::MAX, |_| panic!("never"));
    ev.set_timer_ref(id, false).unwrap();
    ev.run().unwrap();
    assert!(ev.clear_timer(id));
}

#[test]
fn io_runs_beside_the_manual_clock_before_any_jump() {
    let mut ev = EventLoop::with_manual_clock().unwrap();
    let start = ev.now();
    let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    b.set_nonblocking(true).unwrap();
    let log: Log = Rc::default();
    let l = log.clone();
    let timeout = ev.set_timeout(Duration::from_secs(30), move |ev| {
        note(&l, ev, start, "timeout")
    });
    let l = log.clone();
    let watch = ev
        .watch(b, Interest::READABLE, move |ev, b, _| {
            let mut buf = [0; 8];
            let n = b.read(&mut buf).unwrap();
            note(&l, ev, start, format!("read {n}"));
        })
        .unwrap();
    a.write_all(b"ping").unwrap();
    // The data is there: it is read at time 0, before the clock jumps.
    ev.run_once().unwrap();
    ev.run_once().unwrap();
    assert_eq!(log.borrow()[0], ("read 4".to_string(), Duration::ZERO));
    // Nothing else is ready: the next blocking pass jumps to the timeout.
    ev.unwatch(watch);
    ev.run().unwrap();
    assert_eq!(
        log.borrow().last().unwrap(),
        &("timeout".to_string(), Duration::from_secs(30))
    );
    assert!(!ev.clear_timer(timeout));
}

#[test]
fn a_pending_pool_job_holds_the_jump() {
    let mut ev = EventLoop::with_manual_clock().unwrap();
    let start = ev.now();
    let log: Log = Rc::default();
    let l = log.clone();
    let timeout = ev.set_timeout(Duration::from_secs(5), move |ev| {
        note(&l, ev, start, "timed out")
    });
    let l = log.clone();
    ev.spawn_blocking(
        || std::thread::sleep(Duration::from_millis(30)),
        move |ev, r| {
            r.unwrap();
            note(&l, ev, start, "job done");
            ev.clear_timer(timeout);
        },
    )
    .unwrap();
    ev.run().unwrap();
    assert_eq!(*log.borrow(), [("job done".to_string(), Duration::ZERO)]);
}
