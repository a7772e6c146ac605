//! Timers: order (guarantee 2), deadlines from loop time (3), clearing (5),
//! resolution, early runs and stalls (13), huge delays and stale ids.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use evloop::EventLoop;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn g2_timers_run_in_deadline_order() {
    let mut ev = EventLoop::new().unwrap();
    let order = Rc::new(RefCell::new(Vec::new()));
    for (name, delay) in [("c", 30), ("a", 10), ("d", 40), ("b", 20)] {
        let order = order.clone();
        ev.set_timeout(ms(delay), move |_| order.borrow_mut().push(name));
    }
    ev.run().unwrap();
    assert_eq!(*order.borrow(), ["a", "b", "c", "d"]);
}

#[test]
fn g2_equal_deadlines_run_in_the_order_set() {
    let mut ev = EventLoop::new().unwrap();
    let order = Rc::new(RefCell::new(Vec::new()));
    // All in one pass, so they share the cached loop time and the deadline.
    for i in 0..25 {
        let order = order.clone();
        ev.set_timeout(ms(5), move |_| order.borrow_mut().push(i));
    }
    ev.run().unwrap();
    assert_eq!(*order.borrow(), (0..25).collect::<Vec<_>>());
}

#[test]
fn g2_equal_deadlines_keep_order_among_zero_delays() {
    let mut ev = EventLoop::new().unwrap();
    let order = Rc::new(RefCell::new(Vec::new()));
    for i in 0..100 {
        let order = order.clone();
        ev.set_timeout(Duration::ZERO, move |_| order.borrow_mut().push(i));
    }
    ev.run().unwrap();
    assert_eq!(*order.borrow(), (0..100).collect::<Vec<_>>());
}

#[test]
fn g3_deadline_is_loop_time_plus_delay_and_never_early() {
    let mut ev = EventLoop::new().unwrap();
    let checked = Rc::new(Cell::new(0));
    for delay in [0u64, 1, 3, 7, 15] {
        let set_at = ev.now();
        let checked = checked.clone();
        ev.set_timeout(ms(delay), move |ev| {
            assert!(
                ev.now() >= set_at + ms(delay),
                "loop time before the deadline"
            );
            assert!(
                Instant::now() >= set_at + ms(delay),
                "wall clock before the deadline"
            );
            checked.set(checked.get() + 1);
        });
    }
    ev.run().unwrap();
    assert_eq!(checked.get(), 5);
}

#[test]
fn g3_now_is_cached_for_the_pass() {
    let mut ev = EventLoop::new().unwrap();
    ev.call_soon(|ev| {
        let a = ev.now();
        std::thread::sleep(ms(3));
        assert_eq!(ev.now(), a, "now() moved inside a pass");
        ev.update_time();
        assert!(ev.now() >= a + ms(3));
    });
    ev.run().unwrap();
}

#[test]
fn g5_cleared_timer_never_runs() {
    let mut ev = EventLoop::new().unwrap();
    let id = ev.set_timeout(ms(1), |_| panic!("cleared timer ran"));
    assert!(ev.clear_timer(id));
    assert!(!ev.clear_timer(id), "second clear is a no-op");
    ev.run().unwrap();
}

#[test]
fn g5_clearing_a_later_timer_with_the_same_deadline_from_a_callback() {
    let mut ev = EventLoop::new().unwrap();
    let ran = Rc::new(RefCell::new(Vec::new()));
    let victim = Rc::new(Cell::new(None));
    let (r, v) = (ran.clone(), victim.clone());
    ev.set_timeout(ms(2), move |ev| {
        r.borrow_mut().push("first");
        assert!(ev.clear_timer(v.get().unwrap()), "it was pending");
    });
    let r = ran.clone();
    victim.set(Some(
        ev.set_timeout(ms(2), move |_| r.borrow_mut().push("victim")),
    ));
    let r = ran.clone();
    ev.set_timeout(ms(2), move |_| r.borrow_mut().push("third"));
    ev.run().unwrap();
    assert_eq!(*ran.borrow(), ["first", "third"]);
}

#[test]
fn g5_interval_clears_itself_inside_its_own_callback() {
    let mut ev = EventLoop::new().unwrap();
    let calls = Rc::new(Cell::new(0));
    let me = Rc::new(Cell::new(None));
    let (c, m) = (calls.clone(), me.clone());
    let id = ev.set_interval(ms(1), move |ev| {
        c.set(c.get() + 1);
        if c.get() == 3 {
            assert!(
                ev.clear_timer(m.get().unwrap()),
                "an interval is pending in its callback"
            );
            assert!(!ev.clear_timer(m.get().unwrap()));
        }
    });
    me.set(Some(id));
    ev.run().unwrap(); // returns: the cleared interval no longer keeps it alive
    assert_eq!(calls.get(), 3);
    assert_eq!(ev.pending_timers(), 0);
}

#[test]
fn g5_clearing_a_timer_due_in_the_same_pass_takes_effect_at_once() {
    let mut ev = EventLoop::new().unwrap();
    let other = Rc::new(Cell::new(None));
    let o = other.clone();
    ev.set_timeout(Duration::ZERO, move |ev| {
        assert!(ev.clear_timer(o.get().unwrap()));
    });
    other.set(Some(
        ev.set_timeout(Duration::ZERO, |_| panic!("ran after clear")),
    ));
    ev.run().unwrap();
}

#[test]
fn g13_timers_keep_sub_millisecond_resolution() {
    let mut ev = EventLoop::new().unwrap();
    let order = Rc::new(RefCell::new(Vec::new()));
    let o = order.clone();
    // Rounded to milliseconds these would tie and run in the order set.
    ev.set_timeout(Duration::from_micros(1_500), move |_| {
        o.borrow_mut().push("1.5ms")
    });
    let o = order.clone();
    ev.set_timeout(Duration::from_micros(1_100), move |_| {
        o.borrow_mut().push("1.1ms")
    });
    let o = order.clone();
    ev.set_timeout(Duration::from_nanos(1_000_001), move |_| {
        o.borrow_mut().push("1ms+1ns")
    });
    ev.run().unwrap();
    assert_eq!(*order.borrow(), ["1ms+1ns", "1.1ms", "1.5ms"]);
}

#[test]
fn g13_sub_millisecond_timer_never_runs_early() {
    let mut ev = EventLoop::new().unwrap();
    let start = ev.now();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    ev.set_timeout(Duration::from_micros(300), move |ev| {
        assert!(ev.now() >= start + Duration::from_micros(300));
        assert!(Instant::now() >= start + Duration::from_micros(300));
        r.set(true);
    });
    ev.run().unwrap();
    assert!(ran.get());
}

#[test]
fn g13_interval_never_runs_twice_in_one_pass_after_a_stall() {
    let mut ev = EventLoop::new().unwrap();
    let times = Rc::new(RefCell::new(Vec::new()));
    let passes = Rc::new(RefCell::new(Vec::new()));
    let (t, p) = (times.clone(), passes.clone());
    let period = ms(2);
    let id = Rc::new(Cell::new(None));
    let me = id.clone();
    id.set(Some(ev.set_interval(period, move |ev| {
        t.borrow_mut().push(ev.now());
        p.borrow_mut().push(ev.iterations());
        if t.borrow().len() == 1 {
            std::thread::sleep(ms(20)); // a stall of ten periods
        }
        if t.borrow().len() == 5 {
            ev.clear_timer(me.get().unwrap());
        }
    })));
    ev.run().unwrap();
    let times = times.borrow();
    let passes = passes.borrow();
    assert_eq!(times.len(), 5);
    for w in times.windows(2) {
        assert!(
            w[1] >= w[0] + period,
            "re-armed from the loop time its call started"
        );
    }
    for w in passes.windows(2) {
        assert!(w[1] > w[0], "two calls in one pass");
    }
}

#[test]
fn huge_delays_never_panic_or_overflow() {
    let mut ev = EventLoop::new().unwrap();
    let a = ev.set_timeout(Duration::MAX, |_| panic!("never"));
    let b = ev.set_timeout(Duration::from_secs(u64::MAX / 2), |_| panic!("never"));
    let c = ev.set_interval(Duration::MAX, |_| panic!("never"));
    let d = ev.set_timeout(Duration::new(u64::MAX, 999_999_999), |_| panic!("never"));
    let soon = Rc::new(Cell::new(false));
    let s = soon.clone();
    ev.set_timeout(ms(1), move |_| s.set(true));
    assert!(ev.run_once().unwrap());
    assert!(soon.get(), "the near timer ran, the far ones did not");
    assert_eq!(
        ev.backend_timeout()
            .map(|t| t > Duration::from_secs(1 << 30)),
        Some(true)
    );
    for id in [a, b, c, d] {
        assert!(ev.clear_timer(id));
    }
    ev.run().unwrap();
}

#[test]
fn stale_timer_ids_never_hit_a_newer_timer() {
    let mut ev = EventLoop::new().unwrap();
    let old = ev.set_timeout(ms(1), |_| {});
    ev.run().unwrap();
    // The new timer very likely reuses the old one's storage slot.
    let fired = Rc::new(Cell::new(false));
    let f = fired.clone();
    let new = ev.set_timeout(ms(1), move |_| f.set(true));
    assert_ne!(old, new);
    assert!(!ev.clear_timer(old), "a stale id is a harmless false");
    ev.run().unwrap();
    assert!(fired.get());
    assert!(!ev.clear_timer(new));
}

#[test]
fn zero_delay_timer_chain_leaves_room_for_a_timer_and_a_post() {
    let mut ev = EventLoop::new().unwrap();
    let hops = Rc::new(Cell::new(0u64));
    let stop = Rc::new(Cell::new(false));
    fn hop(ev: &mut EventLoop, hops: Rc<Cell<u64>>, stop: Rc<Cell<bool>>) {
        hops.set(hops.get() + 1);
        if !stop.get() && hops.get() < 20_000_000 {
            ev.set_timeout(Duration::ZERO, move |ev| hop(ev, hops, stop));
        }
    }
    hop(&mut ev, hops.clone(), stop.clone());
    let timer = Rc::new(Cell::new(false));
    let t = timer.clone();
    ev.set_timeout(ms(5), move |_| t.set(true));
    thread_local!(static POSTED: Cell<bool> = const { Cell::new(false) });
    let handle = ev.handle();
    std::thread::spawn(move || {
        std::thread::sleep(ms(2));
        handle.call_soon(|_| POSTED.with(|p| p.set(true))).unwrap();
    });
    let (t, s) = (timer.clone(), stop.clone());
    let watch = ev.set_interval(ms(1), move |_| {
        if t.get() && POSTED.with(Cell::get) {
            s.set(true);
        }
    });
    while !stop.get() {
        ev.run_once().unwrap();
    }
    ev.clear_timer(watch);
    ev.run().unwrap();
    assert!(timer.get() && POSTED.with(Cell::get));
    assert!(hops.get() < 20_000_000, "the chain was still going");
}

#[test]
fn unref_timer_does_not_keep_the_loop_alive_but_still_runs_if_it_is() {
    let mut ev = EventLoop::new().unwrap();
    let id = ev.set_timeout(Duration::from_secs(3600), |_| panic!("never"));
    assert_eq!(ev.timer_has_ref(id), Some(true));
    ev.set_timer_ref(id, false).unwrap();
    assert_eq!(ev.timer_has_ref(id), Some(false));
    assert!(!ev.is_alive());
    ev.run().unwrap(); // returns at once

    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let weak = ev.set_timeout(ms(1), move |_| r.set(true));
    ev.set_timer_ref(weak, false).unwrap();
    ev.set_timeout(ms(10), |_| {}); // keeps the loop alive past the weak one
    ev.run().unwrap();
    assert!(ran.get());
    assert!(ev.clear_timer(id));
    assert_eq!(
        ev.set_timer_ref(id, true).unwrap_err().kind(),
        std::io::ErrorKind::NotFound,
        "stale id"
    );
}

#[test]
fn many_timers_fire_exactly_once_in_order() {
    let mut ev = EventLoop::new().unwrap();
    let fired = Rc::new(RefCell::new(Vec::new()));
    let mut ids = Vec::new();
    for i in 0..10_000u64 {
        let f = fired.clone();
        let delay = Duration::from_micros((i * 7919) % 3000);
        ids.push((
            ev.set_timeout(delay, move |_| f.borrow_mut().push((delay, i))),
            i,
        ));
    }
    for (id, i) in &ids {
        if i % 2 == 1 {
            assert!(ev.clear_timer(*id));
        }
    }
    ev.run().unwrap();
    let fired = fired.borrow();
    assert_eq!(fired.len(), 5_000);
    assert!(fired.iter().all(|(_, i)| i % 2 == 0));
    assert!(
        fired.windows(2).all(|w| w[0] < w[1]),
        "deadline order, ties by set order"
    );
}

/// The `u64` form of an id round-trips; a made-up or stale one is simply
/// stale (it clears nothing, it changes nothing).
#[test]
fn timer_ids_have_a_u64_form_and_made_up_ones_are_stale() {
    let mut ev = EventLoop::new().unwrap();
    let id = ev.set_timeout(Duration::from_secs(60), |_| panic!("cleared"));
    let n = id.to_u64().unwrap();
    assert_eq!(evloop::TimerId::from_u64(n), id);
    for bogus in [0, 1, n + 1, n ^ (1 << 30), u64::MAX] {
        let b = evloop::TimerId::from_u64(bogus);
        assert!(!ev.clear_timer(b));
        assert!(ev.set_timer_ref(b, false).is_err());
    }
    assert!(ev.clear_timer(evloop::TimerId::from_u64(n)));
    assert!(!ev.clear_timer(id), "stale once cleared");
}

/// An interval whose callback clears thousands of timers: the queue gives
/// memory back while the interval runs (it has no place in the queue then),
/// and its count of stale places must stay exact (it went below zero: a
/// panic in debug builds, later timers run early in release builds).
#[test]
fn an_interval_can_clear_thousands_of_timers_from_its_callback() {
    let mut ev = EventLoop::new().unwrap();
    let ids = Rc::new(RefCell::new(Vec::new()));
    let list = ids.clone();
    let every = ev.set_interval(ms(1), move |ev| {
        for id in list.borrow_mut().drain(..).rev() {
            assert!(ev.clear_timer(id));
        }
    });
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    ev.set_timeout(ms(5), move |ev| {
        r.set(true);
        assert!(ev.clear_timer(every));
    });
    for _ in 0..10_000 {
        let id = ev.set_timeout(Duration::from_secs(3600), |_| panic!("cleared"));
        ids.borrow_mut().push(id);
    }
    ev.run().unwrap();
    assert!(ran.get());
    assert_eq!(ev.pending_timers(), 0);
}

/// A callback may swap its loop for another (safe code). An interval that
/// does must not be re-armed into the other loop's timer that has the same
/// id: that timer's closure is of another type (it was undefined behaviour).
#[test]
fn an_interval_that_swaps_its_loop_away_leaves_the_other_loops_timer_alone() {
    let spare = Rc::new(RefCell::new(Some(EventLoop::new().unwrap())));
    let ran = Rc::new(Cell::new(0));
    let r = ran.clone();
    let theirs = spare
        .borrow_mut()
        .as_mut()
        .unwrap()
        .set_timeout(Duration::ZERO, move |_| r.set(r.get() + 1));
    let mut ev = EventLoop::new().unwrap();
    let s = spare.clone();
    let ours = ev.set_interval(Duration::ZERO, move |ev| {
        let mut other = s.borrow_mut().take().unwrap();
        std::mem::swap(ev, &mut other);
        *s.borrow_mut() = Some(other);
    });
    assert_eq!(ours.to_u64(), theirs.to_u64(), "the same id in both loops");
    ev.run().unwrap(); // `ev` is the spare loop from the first call on
    assert_eq!(ran.get(), 1);
    assert_eq!(ev.pending_timers(), 0);
}

/// Memory is given back after a timer phase that ran most timers; the
/// cleared timers' places are dropped from the queue then, and the timers
/// left must still run in deadline order (they once did not).
#[test]
fn g2_timers_left_after_memory_is_given_back_run_in_deadline_order() {
    let mut ev = EventLoop::with_manual_clock().unwrap();
    let fired = Rc::new(RefCell::new(Vec::new()));
    let mut far = Vec::new();
    for i in 0..8192u64 {
        let f = fired.clone();
        let delay = match i {
            0..2000 => Duration::from_secs(60) + ms((i * 7919) % 2000),
            _ => ms(1),
        };
        far.push(ev.set_timeout(delay, move |_| f.borrow_mut().push(delay)));
    }
    for id in &far[1000..2000] {
        assert!(ev.clear_timer(*id));
    }
    ev.run().unwrap();
    let fired = fired.borrow();
    assert_eq!(fired.len(), 1000 + 6192);
    assert!(fired.windows(2).all(|w| w[0] <= w[1]), "deadline order");
}
