//! The ready queue: FIFO order (guarantee 1), later-pass rule and fairness
//! (guarantee 4), no callback inside its scheduling call (guarantee 11).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use evloop::EventLoop;

type Log = Rc<RefCell<Vec<String>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

#[test]
fn g1_call_soon_runs_fifo() {
    let mut ev = EventLoop::new().unwrap();
    let order = Rc::new(RefCell::new(Vec::new()));
    for i in 0..1000 {
        let order = order.clone();
        ev.call_soon(move |_| order.borrow_mut().push(i));
    }
    ev.run().unwrap();
    assert_eq!(*order.borrow(), (0..1000).collect::<Vec<_>>());
}

#[test]
fn g1_callbacks_queued_by_callbacks_keep_fifo_among_themselves() {
    let mut ev = EventLoop::new().unwrap();
    let l = log();
    for name in ["a", "b"] {
        let l = l.clone();
        ev.call_soon(move |ev| {
            l.borrow_mut().push(name.to_string());
            for k in 0..2 {
                let l = l.clone();
                ev.call_soon(move |_| l.borrow_mut().push(format!("{name}{k}")));
            }
        });
    }
    ev.run().unwrap();
    assert_eq!(*l.borrow(), ["a", "b", "a0", "a1", "b0", "b1"]);
}

#[test]
fn g4_callback_queued_by_a_callback_runs_in_a_later_pass() {
    let mut ev = EventLoop::new().unwrap();
    let l = log();
    let l2 = l.clone();
    ev.call_soon(move |ev| {
        l2.borrow_mut().push("first".into());
        let l3 = l2.clone();
        ev.call_soon(move |_| l3.borrow_mut().push("second".into()));
    });
    assert!(
        ev.run_nowait().unwrap(),
        "the second callback is still queued"
    );
    assert_eq!(*l.borrow(), ["first"]);
    assert!(!ev.run_nowait().unwrap());
    assert_eq!(*l.borrow(), ["first", "second"]);
}

/// A callback that re-queues itself forever must leave room for a timer and
/// for a post from another thread.
#[test]
fn g4_self_requeueing_callback_cannot_starve_a_timer_or_a_post() {
    let mut ev = EventLoop::new().unwrap();
    let spins = Rc::new(Cell::new(0u64));
    let timer_fired = Rc::new(Cell::new(false));
    let posted = Rc::new(Cell::new(false));

    fn spin(ev: &mut EventLoop, spins: Rc<Cell<u64>>, done: Rc<Cell<bool>>) {
        spins.set(spins.get() + 1);
        // Bounded so that a broken loop fails the test instead of hanging it.
        if !done.get() && spins.get() < 50_000_000 {
            ev.call_soon(move |ev| spin(ev, spins, done));
        }
    }
    let both = Rc::new(Cell::new(false));
    spin(&mut ev, spins.clone(), both.clone());

    let (t, p, b) = (timer_fired.clone(), posted.clone(), both.clone());
    ev.set_timeout(Duration::from_millis(5), move |_| {
        t.set(true);
        b.set(p.get());
    });
    let handle = ev.handle();
    let (p, t, b) = (posted.clone(), timer_fired.clone(), both.clone());
    // The post needs a way back to loop-local state: a thread-local flag.
    thread_local!(static POSTED: Cell<bool> = const { Cell::new(false) });
    let watcher = ev.set_interval(Duration::ZERO, move |ev| {
        if POSTED.with(Cell::get) {
            p.set(true);
            b.set(t.get());
        }
        if b.get() {
            ev.stop();
        }
    });
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(2));
        handle.call_soon(|_| POSTED.with(|c| c.set(true))).unwrap();
    });
    ev.run().unwrap();
    ev.clear_timer(watcher);
    assert!(timer_fired.get(), "the timer ran");
    assert!(posted.get(), "the post ran");
    assert!(
        spins.get() < 50_000_000,
        "both ran while the spinner was still going"
    );
}

#[test]
fn g11_call_soon_never_runs_its_callback_inside_the_call() {
    let mut ev = EventLoop::new().unwrap();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    ev.call_soon(move |ev| {
        let inner = Rc::new(Cell::new(false));
        let i = inner.clone();
        ev.call_soon(move |_| i.set(true));
        assert!(!inner.get(), "ran inside call_soon");
        ev.set_timeout(Duration::ZERO, |_| {});
        r.set(true);
    });
    assert!(!ran.get());
    ev.run().unwrap();
    assert!(ran.get());
}
