//! run / run_once / run_nowait, stop (guarantee 7), liveness (6) and
//! re-entrancy (12).

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::time::Duration;

use evloop::EventLoop;

#[test]
fn g6_run_returns_at_once_on_an_empty_loop() {
    let mut ev = EventLoop::new().unwrap();
    assert!(!ev.is_alive());
    ev.run().unwrap();
    assert!(!ev.run_once().unwrap());
    assert!(!ev.run_nowait().unwrap());
}

#[test]
fn g6_each_kind_of_work_keeps_the_loop_alive() {
    let mut ev = EventLoop::new().unwrap();
    ev.call_soon(|_| {});
    assert!(ev.is_alive(), "queued callback");
    ev.run().unwrap();

    let id = ev.set_timeout(Duration::from_secs(60), |_| {});
    assert!(ev.is_alive(), "pending timer");
    ev.clear_timer(id);
    assert!(!ev.is_alive());

    let mut handle = ev.handle();
    assert!(ev.is_alive(), "live handle");
    let clone = handle.clone();
    handle.set_ref(false);
    assert!(ev.is_alive(), "the clone still has its ref");
    drop(clone);
    assert!(!ev.is_alive(), "only an unref'd handle is left");
    handle.set_ref(true);
    assert!(ev.is_alive());
    drop(handle);
    assert!(!ev.is_alive());
}

#[test]
fn g6_run_returns_when_the_last_handle_drops_on_another_thread() {
    let mut ev = EventLoop::new().unwrap();
    let handle = ev.handle();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        drop(handle);
    });
    ev.run().unwrap(); // blocked with nothing but the handle; wakes when it drops
    t.join().unwrap();
    assert!(!ev.is_alive());
}

#[test]
fn g7_stop_returns_before_polling_again_and_a_later_run_resumes() {
    let mut ev = EventLoop::new().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    ev.call_soon(move |ev| {
        l.borrow_mut().push("a");
        ev.stop();
        let l2 = l.clone();
        ev.call_soon(move |_| l2.borrow_mut().push("b"));
    });
    let l = log.clone();
    ev.set_timeout(Duration::from_millis(5), move |_| {
        l.borrow_mut().push("timer")
    });
    ev.run().unwrap();
    assert_eq!(*log.borrow(), ["a"], "run returned at the end of the pass");
    assert!(ev.is_alive(), "nothing was dropped");
    ev.run().unwrap();
    assert_eq!(*log.borrow(), ["a", "b", "timer"]);
}

#[test]
fn g7_stop_from_an_interval_then_resume() {
    let mut ev = EventLoop::new().unwrap();
    let n = Rc::new(Cell::new(0));
    let c = n.clone();
    let id = ev.set_interval(Duration::from_millis(1), move |ev| {
        c.set(c.get() + 1);
        ev.stop();
    });
    ev.run().unwrap();
    assert_eq!(n.get(), 1);
    ev.run().unwrap();
    assert_eq!(n.get(), 2);
    assert!(ev.clear_timer(id));
    ev.run().unwrap();
}

#[test]
fn g7_stop_before_run_does_one_pass() {
    let mut ev = EventLoop::new().unwrap();
    let n = Rc::new(Cell::new(0));
    fn again(ev: &mut EventLoop, n: Rc<Cell<u32>>) {
        n.set(n.get() + 1);
        if n.get() < 10 {
            ev.call_soon(move |ev| again(ev, n));
        }
    }
    let c = n.clone();
    ev.call_soon(move |ev| again(ev, c));
    ev.stop();
    ev.run().unwrap();
    assert_eq!(n.get(), 1);
    ev.run().unwrap();
    assert_eq!(n.get(), 10);
}

#[test]
fn g12_reentrant_run_is_an_error() {
    let mut ev = EventLoop::new().unwrap();
    let errors = Rc::new(RefCell::new(Vec::new()));
    let e = errors.clone();
    ev.call_soon(move |ev| {
        ev.call_soon(|_| {});
        for r in [ev.run().err(), ev.run_once().err(), ev.run_nowait().err()] {
            e.borrow_mut().push(r.map(|e| e.kind()));
        }
    });
    ev.run().unwrap();
    assert_eq!(*errors.borrow(), vec![Some(io::ErrorKind::ResourceBusy); 3]);
    assert!(!ev.is_alive(), "the callback queued inside still ran");
}

#[test]
fn run_once_blocks_for_the_next_timer_and_runs_it() {
    let mut ev = EventLoop::new().unwrap();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    ev.set_timeout(Duration::from_millis(10), move |_| r.set(true));
    assert!(!ev.run_once().unwrap());
    assert!(ran.get());
}

#[test]
fn run_nowait_never_blocks() {
    let mut ev = EventLoop::new().unwrap();
    ev.set_timeout(Duration::from_secs(3600), |_| {});
    let t = std::time::Instant::now();
    assert!(ev.run_nowait().unwrap());
    assert!(t.elapsed() < Duration::from_secs(60));
    assert_eq!(ev.pending_timers(), 1);
}

#[test]
fn run_once_wakes_for_a_post_and_runs_it() {
    let mut ev = EventLoop::new().unwrap();
    let handle = ev.handle();
    thread_local!(static GOT: Cell<u32> = const { Cell::new(0) });
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        handle.call_soon(|_| GOT.with(|g| g.set(7))).unwrap();
    });
    ev.run_once().unwrap();
    assert_eq!(GOT.with(Cell::get), 7);
    t.join().unwrap();
}

/// `run_mode` is the one entry the three run calls share (libuv's uv_run).
#[test]
fn run_mode_runs_as_the_named_calls_do() {
    use evloop::RunMode;
    let mut ev = EventLoop::new().unwrap();
    let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let l = log.clone();
    ev.call_soon(move |ev| {
        l.borrow_mut().push("first");
        let l = l.clone();
        ev.call_soon(move |_| l.borrow_mut().push("second"));
    });
    assert!(ev.run_mode(RunMode::NoWait).unwrap(), "second still queued");
    assert_eq!(*log.borrow(), ["first"]);
    assert!(!ev.run_mode(RunMode::Once).unwrap());
    assert_eq!(*log.borrow(), ["first", "second"]);
    assert!(!ev.run_mode(RunMode::Default).unwrap());
    ev.call_soon(|ev| {
        assert_eq!(
            ev.run_mode(RunMode::Once).unwrap_err().kind(),
            std::io::ErrorKind::ResourceBusy
        );
    });
    ev.run().unwrap();
}
