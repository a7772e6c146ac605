//! LoopHandle: posts from other threads, wakeups, and dropping the loop
//! (guarantee 9).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use evloop::{Closed, EventLoop, LoopHandle};

fn assert_send_sync<T: Send + Sync + Clone>() {}

#[test]
fn handle_is_send_sync_clone() {
    assert_send_sync::<LoopHandle>();
}

#[test]
fn posts_from_many_threads_all_run_in_per_thread_order() {
    let mut ev = EventLoop::new().unwrap();
    thread_local!(static SEEN: std::cell::RefCell<Vec<(usize, usize)>> = Default::default());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let h = ev.handle();
            std::thread::spawn(move || {
                for i in 0..10_000 {
                    h.call_soon(move |_| SEEN.with(|s| s.borrow_mut().push((t, i))))
                        .unwrap();
                }
            })
        })
        .collect();
    ev.run().unwrap(); // ends when every thread's handle dropped and posts ran
    for t in threads {
        t.join().unwrap();
    }
    SEEN.with(|s| {
        let s = s.borrow();
        assert_eq!(s.len(), 40_000);
        for t in 0..4 {
            let mine: Vec<_> = s
                .iter()
                .filter(|(tt, _)| *tt == t)
                .map(|(_, i)| *i)
                .collect();
            assert_eq!(mine, (0..10_000).collect::<Vec<_>>());
        }
    });
}

#[test]
fn a_post_wakes_a_loop_blocked_on_a_long_timer() {
    let mut ev = EventLoop::new().unwrap();
    let long = ev.set_timeout(Duration::from_secs(3600), |_| panic!("never"));
    let h = ev.handle();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        h.call_soon(move |ev| {
            ev.clear_timer(long);
        })
        .unwrap();
    });
    ev.run().unwrap();
    assert_eq!(ev.pending_timers(), 0);
}

struct CountDrop(Arc<AtomicUsize>);
impl Drop for CountDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn g9_dropping_the_loop_drops_every_pending_callback_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let ran = Rc::new(Cell::new(false));
    let handle;
    {
        let mut ev = EventLoop::new().unwrap();
        handle = ev.handle();
        for _ in 0..3 {
            let d = CountDrop(drops.clone());
            let r = ran.clone();
            ev.call_soon(move |_| {
                let _d = d;
                r.set(true);
            });
        }
        for _ in 0..3 {
            let d = CountDrop(drops.clone());
            let r = ran.clone();
            ev.set_timeout(Duration::from_secs(10), move |_| {
                let _d = d;
                r.set(true);
            });
            let d = CountDrop(drops.clone());
            let r = ran.clone();
            ev.set_interval(Duration::from_secs(10), move |_| {
                let _ = &d;
                r.set(true);
            });
        }
        for _ in 0..3 {
            let d = CountDrop(drops.clone());
            handle
                .call_soon(move |_| {
                    let _d = d;
                    panic!("posted callback ran after the drop");
                })
                .unwrap();
        }
        assert_eq!(drops.load(Ordering::SeqCst), 0);
    }
    assert_eq!(
        drops.load(Ordering::SeqCst),
        12,
        "each closure dropped exactly once"
    );
    assert!(!ran.get(), "no callback ran");
    let d = CountDrop(drops.clone());
    assert_eq!(handle.call_soon(move |_| drop(d)), Err(Closed));
    assert_eq!(
        drops.load(Ordering::SeqCst),
        13,
        "a refused closure is dropped too"
    );
    assert!(handle.is_closed());
}

#[test]
fn g9_a_destructor_that_posts_during_the_drop_gets_closed() {
    struct PostOnDrop(LoopHandle, Arc<AtomicUsize>);
    impl Drop for PostOnDrop {
        fn drop(&mut self) {
            if self.0.call_soon(|_| {}) == Err(Closed) {
                self.1.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    let refused = Arc::new(AtomicUsize::new(0));
    let mut ev = EventLoop::new().unwrap();
    let p = PostOnDrop(ev.handle(), refused.clone());
    ev.call_soon(move |_| drop(p));
    drop(ev);
    assert_eq!(refused.load(Ordering::SeqCst), 1);
}

#[test]
fn unref_handle_lets_run_return_but_posts_still_run_while_alive() {
    let mut ev = EventLoop::new().unwrap();
    let mut h = ev.handle();
    h.set_ref(false);
    assert!(!h.has_ref());
    ev.run().unwrap(); // returns at once
    thread_local!(static N: Cell<u32> = const { Cell::new(0) });
    h.call_soon(|_| N.with(|n| n.set(n.get() + 1))).unwrap();
    assert!(ev.is_alive(), "a queued post keeps it alive");
    ev.run().unwrap();
    assert_eq!(N.with(Cell::get), 1);
}
