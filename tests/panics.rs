//! Panics in callbacks (guarantee 8).

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

use evloop::EventLoop;

fn quiet() {
    // Keep the expected panics out of the test output.
    std::panic::set_hook(Box::new(|_| {}));
}

#[test]
fn g8_panic_unwinds_out_of_run_and_the_rest_stays_queued() {
    quiet();
    let mut ev = EventLoop::new().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    for i in 0..5 {
        let l = log.clone();
        ev.call_soon(move |_| {
            if i == 2 {
                panic!("boom {i}");
            }
            l.borrow_mut().push(i);
        });
    }
    let l = log.clone();
    ev.set_timeout(Duration::from_millis(1), move |_| l.borrow_mut().push(100));
    let err = catch_unwind(AssertUnwindSafe(|| ev.run())).unwrap_err();
    assert_eq!(
        err.downcast_ref::<String>().map(String::as_str),
        Some("boom 2")
    );
    assert_eq!(*log.borrow(), [0, 1]);
    assert!(ev.is_alive());
    assert!(!ev.is_running());
    ev.run().expect("the loop is usable after a panic");
    assert_eq!(*log.borrow(), [0, 1, 3, 4, 100]);
}

#[test]
fn g8_panicking_interval_stays_armed_and_clearable() {
    quiet();
    let mut ev = EventLoop::new().unwrap();
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    let id = ev.set_interval(Duration::from_millis(1), move |_| {
        c.set(c.get() + 1);
        panic!("interval");
    });
    assert!(catch_unwind(AssertUnwindSafe(|| ev.run())).is_err());
    assert_eq!(calls.get(), 1);
    assert_eq!(ev.timer_has_ref(id), Some(true), "still armed");
    assert!(catch_unwind(AssertUnwindSafe(|| ev.run())).is_err());
    assert_eq!(calls.get(), 2);
    assert!(ev.clear_timer(id));
    ev.run().unwrap();
}

#[test]
fn g8_panic_handler_logs_and_keeps_going() {
    quiet();
    let mut ev = EventLoop::new().unwrap();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    ev.set_panic_handler(move |_ev, payload| {
        s.borrow_mut().push(
            payload
                .downcast_ref::<&str>()
                .copied()
                .unwrap_or("?")
                .to_string(),
        );
    });
    let done = Rc::new(Cell::new(0));
    for i in 0..3 {
        let d = done.clone();
        ev.call_soon(move |_| {
            if i == 1 {
                panic!("in call_soon");
            }
            d.set(d.get() + 1);
        });
    }
    ev.set_timeout(Duration::ZERO, |_| panic!("in timer"));
    ev.run().unwrap();
    assert_eq!(*seen.borrow(), ["in timer", "in call_soon"]);
    assert_eq!(done.get(), 2);

    ev.clear_panic_handler();
    ev.call_soon(|_| panic!("unhandled"));
    assert!(catch_unwind(AssertUnwindSafe(|| ev.run())).is_err());
}

#[test]
fn g8_panic_in_a_posted_callback() {
    quiet();
    let mut ev = EventLoop::new().unwrap();
    let h = ev.handle();
    h.call_soon(|_| panic!("posted")).unwrap();
    thread_local!(static AFTER: Cell<bool> = const { Cell::new(false) });
    h.call_soon(|_| AFTER.with(|a| a.set(true))).unwrap();
    drop(h);
    assert!(catch_unwind(AssertUnwindSafe(|| ev.run())).is_err());
    assert!(!AFTER.with(Cell::get));
    ev.run().unwrap();
    assert!(AFTER.with(Cell::get), "the next post survived");
}

/// A pending timer whose closure panics when dropped, dropped with the
/// loop: the panic unwinds out of the drop, and every other pending closure
/// is still dropped, once (guarantee 9).
#[test]
fn g9_a_panicking_drop_among_pending_timers_still_drops_the_others() {
    quiet();
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("bomb");
        }
    }
    struct Probe(Rc<Cell<u32>>);
    impl Drop for Probe {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let drops = Rc::new(Cell::new(0));
    let mut ev = EventLoop::new().unwrap();
    let later = Duration::from_secs(3600);
    let bomb = Bomb;
    ev.set_timeout(later, move |_| drop(bomb));
    for _ in 0..3 {
        let p = Probe(drops.clone());
        ev.set_timeout(later, move |_| drop(p));
        let p = Probe(drops.clone());
        ev.set_interval(later, move |_| {
            let _ = &p;
        });
    }
    let err = catch_unwind(AssertUnwindSafe(|| drop(ev))).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"bomb"));
    assert_eq!(drops.get(), 6);
}

/// A closure whose `Drop` panics, owned by a callback that ends itself: an
/// interval that clears itself, a watcher that unwatches itself. The loop
/// drops the closure once its callback returns; that panic is handled like
/// one in the callback (review finding: it left `run()` even with a
/// handler set).
struct Bomb(&'static str);
impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("{}", self.0);
    }
}

fn payload_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

fn self_ending_callbacks(ev: &mut EventLoop, after: &Rc<Cell<u32>>) {
    let bomb = Bomb("interval's drop");
    let timer = Rc::new(Cell::new(None));
    let t = timer.clone();
    timer.set(Some(ev.set_interval(Duration::ZERO, move |ev| {
        let _ = &bomb;
        ev.clear_timer(t.get().unwrap());
    })));
    let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    std::io::Write::write_all(&mut b, b"x").unwrap();
    let bomb = Bomb("watcher's drop");
    let id = Rc::new(Cell::new(None));
    let i = id.clone();
    id.set(Some(
        ev.watch(a, evloop::Interest::READABLE, move |ev, _, _| {
            let _ = &bomb;
            ev.unwatch(i.get().unwrap());
        })
        .unwrap(),
    ));
    // Work queued behind them still runs.
    let a = after.clone();
    ev.set_timeout(Duration::from_millis(1), move |_| a.set(a.get() + 1));
    drop(b);
}

#[test]
fn g8_a_panicking_drop_of_a_self_ended_callback_goes_to_the_handler() {
    quiet();
    let mut ev = EventLoop::new().unwrap();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    ev.set_panic_handler(move |_, p| s.borrow_mut().push(payload_text(&*p)));
    let after = Rc::new(Cell::new(0));
    self_ending_callbacks(&mut ev, &after);
    ev.run().unwrap();
    let mut seen = seen.take();
    seen.sort();
    assert_eq!(seen, ["interval's drop", "watcher's drop"]);
    assert_eq!(after.get(), 1);
    assert_eq!(ev.watcher_count(), 0);
}

#[test]
fn g8_without_a_handler_a_panicking_drop_unwinds_out_of_run_and_the_loop_goes_on() {
    quiet();
    let mut ev = EventLoop::new().unwrap();
    let after = Rc::new(Cell::new(0));
    self_ending_callbacks(&mut ev, &after);
    let mut panics = Vec::new();
    loop {
        match catch_unwind(AssertUnwindSafe(|| ev.run())) {
            Ok(r) => break r.unwrap(),
            Err(p) => panics.push(payload_text(&*p)),
        }
    }
    panics.sort();
    assert_eq!(panics, ["interval's drop", "watcher's drop"]);
    assert_eq!(after.get(), 1);
    assert_eq!(ev.watcher_count(), 0);
}
