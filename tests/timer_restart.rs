//! Restarting timers and cancelling queued callbacks: `refresh_timer`,
//! `timer_period`/`set_timer_period`, `timer_due_in`, and
//! `call_soon_cancellable`/`cancel_soon`.
//!
//! Times are read from the loop's own clock (`now()` inside callbacks), so
//! the assertions are exact bounds that a loaded machine cannot break.

use std::cell::{Cell, RefCell};
use std::io::ErrorKind;
use std::rc::Rc;
use std::time::{Duration, Instant};

use evloop::{EventLoop, SoonId, TimerId};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Follows libuv test/test-timer-again.c and Node
/// test/parallel/test-timers-refresh.js: an idle timeout refreshed by
/// activity runs once, one full delay after the last refresh, with its id.
#[test]
fn refresh_restarts_a_timeout_from_now_keeping_its_id() {
    let mut ev = EventLoop::new().unwrap();
    let fired_at: Rc<Cell<Option<Instant>>> = Rc::default();
    let f = fired_at.clone();
    let idle = ev.set_timeout(ms(40), move |ev| f.set(Some(ev.now())));
    let last_refresh: Rc<Cell<Option<Instant>>> = Rc::default();
    let activity: Rc<Cell<Option<TimerId>>> = Rc::default();
    let (lr, me, n) = (
        last_refresh.clone(),
        activity.clone(),
        Rc::new(Cell::new(0)),
    );
    activity.set(Some(ev.set_interval(ms(10), move |ev| {
        assert_eq!(ev.timer_has_ref(idle), Some(true), "refreshed, never fired");
        ev.refresh_timer(idle).unwrap();
        lr.set(Some(ev.now()));
        n.set(n.get() + 1);
        if n.get() == 5 {
            ev.clear_timer(me.get().unwrap());
        }
    })));
    ev.run().unwrap();
    let fired = fired_at.get().expect("the idle timeout ran");
    let last = last_refresh.get().unwrap();
    assert!(
        fired >= last + ms(40),
        "ran {:?} after the last refresh",
        fired - last
    );
    assert!(
        !ev.clear_timer(idle),
        "a one-shot timer is gone once it ran"
    );
}

/// Follows libuv test-timer-again.c's error case: restarting a timer that
/// is not pending is an error, never a resurrection.
#[test]
fn refresh_of_a_fired_cleared_or_running_one_shot_is_not_found() {
    let mut ev = EventLoop::new().unwrap();
    let cleared = ev.set_timeout(ms(5), |_| {});
    ev.clear_timer(cleared);
    assert_eq!(
        ev.refresh_timer(cleared).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let me: Rc<Cell<Option<TimerId>>> = Rc::default();
    let inner = me.clone();
    let seen = Rc::new(RefCell::new(None));
    let s = seen.clone();
    me.set(Some(ev.set_timeout(ms(1), move |ev| {
        *s.borrow_mut() = Some(ev.refresh_timer(inner.get().unwrap()).unwrap_err().kind());
    })));
    ev.run().unwrap();
    assert_eq!(*seen.borrow(), Some(ErrorKind::NotFound));
    assert_eq!(
        ev.refresh_timer(me.get().unwrap()).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

/// Guarantee 2 for refreshed timers: a refresh counts as setting the timer
/// again, so among equal deadlines it runs after timers set before it.
#[test]
fn a_refreshed_timer_orders_as_if_set_at_the_refresh() {
    let mut ev = EventLoop::new().unwrap();
    let order = Rc::new(RefCell::new(Vec::new()));
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        let o = order.clone();
        ids.push(ev.set_timeout(ms(10), move |_| o.borrow_mut().push(name)));
    }
    // Same loop time: same deadline, but "a" now comes last.
    ev.refresh_timer(ids[0]).unwrap();
    ev.refresh_timer(ids[0]).unwrap(); // twice is fine: one run
    ev.run().unwrap();
    assert_eq!(*order.borrow(), ["b", "c", "a"]);
}

/// Many refreshes leave stale places in the queue; they must neither run
/// the callback twice nor keep the loop alive, and memory is reclaimed.
#[test]
fn a_thousand_refreshes_run_the_timer_once_and_keep_nothing_alive() {
    let mut ev = EventLoop::new().unwrap();
    let runs = Rc::new(Cell::new(0));
    let r = runs.clone();
    let t = ev.set_timeout(ms(1), move |_| r.set(r.get() + 1));
    for _ in 0..1000 {
        ev.refresh_timer(t).unwrap();
    }
    ev.set_timer_ref(t, false).unwrap();
    ev.set_timer_ref(t, true).unwrap();
    ev.run().unwrap();
    assert_eq!(runs.get(), 1);
    assert_eq!(ev.pending_timers(), 0);
    assert!(!ev.is_alive());
}

/// An interval keeps its callback across refreshes and keeps running.
#[test]
fn refresh_of_an_interval_restarts_its_period_and_it_keeps_running() {
    let mut ev = EventLoop::new().unwrap();
    let times = Rc::new(RefCell::new(Vec::new()));
    let t2 = times.clone();
    let me: Rc<Cell<Option<TimerId>>> = Rc::default();
    let m = me.clone();
    let id = ev.set_interval(ms(20), move |ev| {
        t2.borrow_mut().push(ev.now());
        // Inside its own call: nothing to do, and no error.
        ev.refresh_timer(m.get().unwrap()).unwrap();
        if t2.borrow().len() == 3 {
            ev.clear_timer(m.get().unwrap());
        }
    });
    me.set(Some(id));
    let refreshed_at: Rc<Cell<Option<Instant>>> = Rc::default();
    let ra = refreshed_at.clone();
    ev.set_timeout(ms(10), move |ev| {
        ev.refresh_timer(id).unwrap();
        ra.set(Some(ev.now()));
    });
    ev.run().unwrap();
    let times = times.borrow();
    assert_eq!(times.len(), 3);
    assert!(times[0] >= refreshed_at.get().unwrap() + ms(20));
    assert!(times[1] >= times[0] + ms(20) && times[2] >= times[1] + ms(20));
}

/// Follows libuv test/test-timer.c (timer_get_repeat / set_repeat): the
/// period can be read and changed; a change applies from the next re-arm,
/// also when made inside the interval's own callback.
#[test]
fn an_interval_period_can_be_read_and_changed() {
    let mut ev = EventLoop::new().unwrap();
    let times = Rc::new(RefCell::new(Vec::new()));
    let t2 = times.clone();
    let me: Rc<Cell<Option<TimerId>>> = Rc::default();
    let m = me.clone();
    let id = ev.set_interval(ms(5), move |ev| {
        let id = m.get().unwrap();
        t2.borrow_mut().push(ev.now());
        match t2.borrow().len() {
            1 => {
                assert_eq!(ev.timer_period(id).unwrap(), ms(5));
                ev.set_timer_period(id, ms(30)).unwrap();
                assert_eq!(ev.timer_period(id).unwrap(), ms(30));
                assert_eq!(ev.timer_due_in(id), Some(ms(30)));
            }
            3 => {
                ev.clear_timer(id);
            }
            _ => {}
        }
    });
    me.set(Some(id));
    assert_eq!(ev.timer_period(id).unwrap(), ms(5));
    ev.run().unwrap();
    let times = times.borrow();
    assert_eq!(times.len(), 3);
    assert!(times[1] >= times[0] + ms(30), "{:?}", times[1] - times[0]);
    assert!(times[2] >= times[1] + ms(30));
    assert_eq!(ev.timer_period(id).unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn period_calls_on_a_one_shot_timer_are_invalid_input() {
    let mut ev = EventLoop::new().unwrap();
    let t = ev.set_timeout(ms(10), |_| {});
    assert_eq!(
        ev.timer_period(t).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        ev.set_timer_period(t, ms(1)).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    // The timer is untouched by the refused calls.
    assert_eq!(ev.timer_due_in(t), Some(ms(10)));
    ev.clear_timer(t);
    assert_eq!(
        ev.set_timer_period(t, ms(1)).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

/// Follows libuv test/test-timer.c (timer_get_due_in): the time left until
/// a timer is due, from the loop's own clock; zero once overdue; none once
/// it is gone.
#[test]
fn due_in_counts_down_on_the_loop_clock() {
    let mut ev = EventLoop::new().unwrap();
    let t = ev.set_timeout(ms(100), |_| {});
    assert_eq!(
        ev.timer_due_in(t),
        Some(ms(100)),
        "same loop time: the full delay"
    );
    let huge = ev.set_timeout(Duration::MAX, |_| {});
    assert!(ev.timer_due_in(huge).unwrap() > Duration::from_secs(100 * 365 * 86400));
    ev.clear_timer(huge);
    let seen = Rc::new(Cell::new(None));
    let s = seen.clone();
    ev.set_timeout(ms(30), move |ev| s.set(ev.timer_due_in(t)));
    ev.run_once().unwrap(); // waits for the 30 ms timer
    let left = seen.get().expect("the 30 ms timer ran");
    assert!(left <= ms(70), "{left:?}");
    std::thread::sleep(ms(120));
    ev.update_time();
    assert_eq!(ev.timer_due_in(t), Some(Duration::ZERO), "overdue");
    ev.run().unwrap();
    assert_eq!(ev.timer_due_in(t), None);
}

/// Follows Node test/parallel/test-timers-clearImmediate.js: a cancelled
/// callback never runs and is dropped at once; the rest keep their order.
#[test]
fn cancel_soon_takes_a_queued_callback_back() {
    struct Guard(Rc<Cell<bool>>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let mut ev = EventLoop::new().unwrap();
    let order = Rc::new(RefCell::new(Vec::new()));
    let dropped = Rc::new(Cell::new(false));
    let b_id: Rc<Cell<Option<SoonId>>> = Rc::default();
    let (o, d, bid) = (order.clone(), dropped.clone(), b_id.clone());
    ev.call_soon(move |ev| {
        o.borrow_mut().push("a");
        assert!(!d.get());
        assert!(ev.cancel_soon(bid.get().unwrap()));
        assert!(d.get(), "dropped when cancelled, not later");
        assert!(!ev.cancel_soon(bid.get().unwrap()), "twice: false");
    });
    let (o, guard) = (order.clone(), Guard(dropped.clone()));
    b_id.set(Some(ev.call_soon_cancellable(move |_| {
        let _keep = &guard;
        o.borrow_mut().push("b");
    })));
    let o = order.clone();
    let c = ev.call_soon_cancellable(move |_| o.borrow_mut().push("c"));
    ev.run().unwrap();
    assert_eq!(*order.borrow(), ["a", "c"]);
    assert!(!ev.cancel_soon(c), "already ran: false");
    assert!(!ev.is_alive());
}

/// A cancellable callback runs where a `call_soon` made at the same point
/// would (FIFO with plain ones); cancelling itself while running is a
/// harmless false; a panic in it is handled like any other callback's.
#[test]
fn cancellable_callbacks_keep_fifo_order_and_survive_self_cancel_and_panics() {
    let mut ev = EventLoop::new().unwrap();
    ev.set_panic_handler(|_, _| {});
    let order = Rc::new(RefCell::new(Vec::new()));
    let me: Rc<Cell<Option<SoonId>>> = Rc::default();
    let o = order.clone();
    ev.call_soon(move |_| o.borrow_mut().push(1));
    let (o, m) = (order.clone(), me.clone());
    me.set(Some(ev.call_soon_cancellable(move |ev| {
        o.borrow_mut().push(2);
        assert!(!ev.cancel_soon(m.get().unwrap()));
    })));
    let o = order.clone();
    ev.call_soon_cancellable(move |_| {
        o.borrow_mut().push(3);
        panic!("boom");
    });
    let o = order.clone();
    ev.call_soon(move |_| o.borrow_mut().push(4));
    ev.run().unwrap();
    assert_eq!(*order.borrow(), [1, 2, 3, 4]);
}

/// Review finding (fixed): a cancelled callback's place in the ready queue
/// is not work: the loop is not alive and would not spin an embedder.
#[test]
fn a_cancelled_callback_does_not_keep_the_loop_alive() {
    let mut ev = EventLoop::new().unwrap();
    let id = ev.call_soon_cancellable(|_| unreachable!());
    assert!(ev.is_alive());
    assert!(ev.cancel_soon(id));
    assert!(!ev.is_alive(), "nothing queued, pending or watched");
    assert_eq!(
        ev.backend_timeout(),
        Some(Duration::ZERO),
        "not alive: zero, by its docs"
    );
    ev.call_soon(|_| {});
    let t = ev.set_timeout(ms(3_600_000), |_| {});
    let id = ev.call_soon_cancellable(|_| unreachable!());
    ev.cancel_soon(id);
    ev.run_nowait().unwrap(); // runs the plain one and the cancelled place
    assert!(ev.is_alive());
    assert!(
        ev.backend_timeout().unwrap() > ms(3_000_000),
        "only the timer is left"
    );
    ev.clear_timer(t);
    assert!(!ev.is_alive());
}
