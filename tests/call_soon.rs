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

/// A chain of `call_soon` with nothing else to do: each link is a pass of
/// its own (the loop runs such passes without polling, so this checks that
/// they still behave as passes), and whatever a link starts (a timer, a
/// watcher) gets its turn before the next link.
fn chain(ev: &mut EventLoop, link: u32, l: Log, at: fn(&mut EventLoop, u32, &Log)) {
    l.borrow_mut()
        .push(format!("link {link} pass {}", ev.iterations()));
    at(ev, link, &l);
    if link < 6 {
        ev.call_soon(move |ev| chain(ev, link + 1, l, at));
    }
}

/// Queues a chain of six links on `ev` whose link n also does `at(ev, n,
/// log)`; returns its log.
fn start_chain(ev: &mut EventLoop, at: fn(&mut EventLoop, u32, &Log)) -> Log {
    let l = log();
    let c = l.clone();
    ev.call_soon(move |ev| chain(ev, 1, c, at));
    l
}

#[test]
fn g4_each_link_of_a_chain_is_a_pass_and_a_timer_set_midway_runs_between_links() {
    let mut ev = EventLoop::new().unwrap();
    let l = start_chain(&mut ev, |ev, link, l| {
        if link == 3 {
            let l = l.clone();
            let pass = ev.iterations();
            ev.set_timeout(Duration::ZERO, move |ev| {
                l.borrow_mut()
                    .push(format!("timer, {} pass later", ev.iterations() - pass));
            });
        }
    });
    ev.run().unwrap();
    assert_eq!(
        *l.borrow(),
        [
            "link 1 pass 1",
            "link 2 pass 2",
            "link 3 pass 3",
            "timer, 1 pass later",
            "link 4 pass 4",
            "link 5 pass 5",
            "link 6 pass 6",
        ]
    );
}

#[test]
fn g4_a_watcher_started_by_a_link_runs_before_the_next_link() {
    let mut ev = EventLoop::new().unwrap();
    let l = start_chain(&mut ev, |ev, link, l| {
        if link == 2 {
            let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
            std::io::Write::write_all(&mut a, b"x").unwrap();
            let l = l.clone();
            let me = Rc::new(Cell::new(None));
            let me2 = me.clone();
            let id = ev
                .watch(b, evloop::Interest::READABLE, move |ev, _, _| {
                    l.borrow_mut().push(format!("io pass {}", ev.iterations()));
                    let _ = &a;
                    ev.unwatch(me2.get().unwrap());
                })
                .unwrap();
            me.set(Some(id));
        }
    });
    ev.run().unwrap();
    assert_eq!(
        *l.borrow(),
        [
            "link 1 pass 1",
            "link 2 pass 2",
            "io pass 2",
            "link 3 pass 3",
            "link 4 pass 4",
            "link 5 pass 5",
            "link 6 pass 6",
        ]
    );
}

#[test]
fn g7_stop_inside_a_chain_returns_after_that_link_and_run_resumes_it() {
    let mut ev = EventLoop::new().unwrap();
    let l = start_chain(&mut ev, |ev, link, _| {
        if link == 3 {
            ev.stop();
        }
    });
    ev.run().unwrap();
    assert_eq!(l.borrow().len(), 3);
    assert!(ev.is_alive(), "link 4 is queued");
    ev.run().unwrap();
    assert_eq!(l.borrow().last().unwrap(), "link 6 pass 6");
}

#[test]
fn g8_a_panicking_link_unwinds_out_of_run_and_the_chain_goes_on_after() {
    let mut ev = EventLoop::new().unwrap();
    let l = start_chain(&mut ev, |_, link, _| {
        if link == 4 {
            panic!("link 4");
        }
    });
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ev.run()));
    assert!(result.is_err());
    // Link 4 panicked before queueing link 5: the chain ends there.
    assert_eq!(l.borrow().len(), 4);
    assert!(!ev.is_alive());
    // A chain whose panicking link queued its successor first goes on.
    let l = start_chain(&mut ev, |ev, link, _| {
        if link == 2 {
            ev.call_soon(|_| panic!("queued by link 2"));
        }
    });
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ev.run()));
    assert!(result.is_err());
    ev.run().unwrap();
    assert_eq!(l.borrow().len(), 6, "{:?}", l.borrow());
}

thread_local! {
    /// Set by what should end [`spin`]'s chain: a post, a job's callback.
    /// Per test thread, which is the loop's thread.
    static END: Cell<bool> = const { Cell::new(false) };
    /// Set if the chain ran out of links first.
    static RAN_OUT: Cell<bool> = const { Cell::new(false) };
}

/// A chain that goes on until `END` is set: bounded, so that a loop that
/// never lets the ender run fails the test instead of hanging it.
fn spin(ev: &mut EventLoop, left: u64) {
    RAN_OUT.with(|r| r.set(left == 0));
    if !END.with(Cell::get) && left > 0 {
        ev.call_soon(move |ev| spin(ev, left - 1));
    }
}

/// A post from another thread reaches a loop busy with nothing but a chain.
#[test]
fn g4_a_post_reaches_a_loop_running_only_a_chain() {
    let mut ev = EventLoop::new().unwrap();
    let handle = ev.handle();
    ev.call_soon(|ev| spin(ev, 500_000_000));
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(2));
        handle.call_soon(|_| END.with(|p| p.set(true))).unwrap();
    });
    ev.run().unwrap();
    assert!(END.with(Cell::get), "the post ran");
    assert!(!RAN_OUT.with(Cell::get), "the post ended the chain");
}

/// A link that makes the loop's first handle and posts through it: the post
/// runs in that pass's post step, before the next link (the loop looks for
/// posts in a chain only once something could post, so this checks that
/// sharing the loop mid-chain is noticed).
#[test]
fn g4_a_post_made_by_a_link_runs_before_the_next_link() {
    thread_local!(static POST_PASS: Cell<u64> = const { Cell::new(0) });
    let mut ev = EventLoop::new().unwrap();
    let l = start_chain(&mut ev, |ev, link, _| {
        if link == 3 {
            ev.handle()
                .call_soon(|ev| POST_PASS.with(|p| p.set(ev.iterations())))
                .unwrap();
        }
    });
    ev.run().unwrap();
    assert_eq!(POST_PASS.with(Cell::get), 3, "in link 3's pass");
    assert_eq!(
        *l.borrow(),
        [
            "link 1 pass 1",
            "link 2 pass 2",
            "link 3 pass 3",
            "link 4 pass 4",
            "link 5 pass 5",
            "link 6 pass 6",
        ]
    );
}

/// A pool job queued by a link of an endless chain: its completion reaches
/// the loop, and its callback ends the chain.
#[test]
fn g4_a_pool_job_queued_by_a_chain_completes_into_it() {
    let mut ev = EventLoop::new().unwrap();
    ev.call_soon(|ev| {
        ev.spawn_blocking(
            || 6 * 7,
            |_, r| {
                assert_eq!(r.unwrap(), 42);
                END.with(|d| d.set(true));
            },
        )
        .unwrap();
        spin(ev, 500_000_000);
    });
    ev.run().unwrap();
    assert!(END.with(Cell::get), "the job's callback ran");
    assert!(!RAN_OUT.with(Cell::get), "it ended the chain");
}

/// The loop time of a pass that begins with no timer pending is read when
/// first asked for: never before the pass began, and the same for the rest
/// of the pass.
#[test]
fn g3_the_loop_time_of_a_pass_without_timers_is_cached_when_first_read() {
    let mut ev = EventLoop::new().unwrap();
    let before = std::time::Instant::now();
    ev.call_soon(move |ev| {
        let first = ev.now();
        assert!(first >= before);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(ev.now(), first, "cached for the pass");
        ev.call_soon(move |ev| assert!(ev.now() >= first + Duration::from_millis(5)));
    });
    ev.run().unwrap();
}
