//! Signals as callbacks. Dispositions are process-wide, so each test runs
//! in a child process of its own (`common::isolated`), where it may change
//! any signal's disposition without disturbing the others.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use evloop::net::unix;
use evloop::process::{self, Command};
use evloop::{signal, EventLoop};

mod common;

fn raise(sig: i32) {
    // SAFETY: raise only sends a signal to this process.
    assert_eq!(unsafe { libc::raise(sig) }, 0);
}

#[test]
fn sigusr1_raised_to_self_is_delivered_as_a_callback() {
    if !common::isolated("sigusr1_raised_to_self_is_delivered_as_a_callback") {
        return;
    }
    let mut ev = EventLoop::new().unwrap();
    let got = Rc::new(Cell::new(0));
    let g = got.clone();
    let id = signal::on_signal(&mut ev, libc::SIGUSR1, move |ev| {
        g.set(g.get() + 1);
        ev.stop();
    })
    .unwrap();
    assert!(
        !ev.is_alive(),
        "a signal watcher does not keep the loop alive by default"
    );
    signal::set_signal_ref(&mut ev, id, true).unwrap();
    raise(libc::SIGUSR1);
    assert_eq!(got.get(), 0, "never inside the signal handler");
    ev.run().unwrap();
    assert_eq!(got.get(), 1);
    assert!(signal::stop_signal(&mut ev, id));
    assert!(!signal::stop_signal(&mut ev, id));
    assert!(!ev.is_alive());
}

#[test]
fn every_watcher_of_a_signal_is_called_for_each_delivery() {
    if !common::isolated("every_watcher_of_a_signal_is_called_for_each_delivery") {
        return;
    }
    let mut ev = EventLoop::new().unwrap();
    let a = Rc::new(Cell::new(0));
    let b = Rc::new(Cell::new(0));
    let (a2, b2) = (a.clone(), b.clone());
    let ida = signal::on_signal(&mut ev, libc::SIGUSR2, move |_| a2.set(a2.get() + 1)).unwrap();
    let idb = signal::on_signal(&mut ev, libc::SIGUSR2, move |_| b2.set(b2.get() + 1)).unwrap();
    for round in 1..=3 {
        raise(libc::SIGUSR2);
        // Keep the loop alive until both callbacks saw this delivery.
        while a.get() < round || b.get() < round {
            ev.set_timeout(Duration::from_millis(1), |_| {});
            ev.run_once().unwrap();
        }
    }
    assert_eq!((a.get(), b.get()), (3, 3));
    signal::stop_signal(&mut ev, ida);
    signal::stop_signal(&mut ev, idb);
}

#[test]
fn a_watcher_can_stop_itself_inside_its_callback() {
    if !common::isolated("a_watcher_can_stop_itself_inside_its_callback") {
        return;
    }
    let mut ev = EventLoop::new().unwrap();
    let me = Rc::new(Cell::new(None));
    let calls = Rc::new(Cell::new(0));
    let (m, c) = (me.clone(), calls.clone());
    let id = signal::on_signal(&mut ev, libc::SIGWINCH, move |ev| {
        c.set(c.get() + 1);
        assert!(signal::stop_signal(ev, m.get().unwrap()));
    })
    .unwrap();
    me.set(Some(id));
    signal::set_signal_ref(&mut ev, id, true).unwrap();
    raise(libc::SIGWINCH);
    ev.run().unwrap(); // ends: the only thing alive stopped itself
    assert_eq!(calls.get(), 1);
}

#[test]
fn sigkill_sigstop_and_bad_numbers_are_errors() {
    if !common::isolated("sigkill_sigstop_and_bad_numbers_are_errors") {
        return;
    }
    let mut ev = EventLoop::new().unwrap();
    for sig in [libc::SIGKILL, libc::SIGSTOP, 0, -3, 999] {
        let err = signal::on_signal(&mut ev, sig, |_| panic!("never")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "signal {sig}");
    }
    assert_eq!(ev.watcher_count(), 0);
}

fn handler_of(sig: i32) -> libc::sighandler_t {
    // SAFETY: queries a disposition into a zeroed, valid struct.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(sig, std::ptr::null(), &mut sa), 0);
        sa.sa_sigaction
    }
}

static OLD_HANDLER_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
extern "C" fn old_handler(_: libc::c_int) {
    OLD_HANDLER_CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

/// When the last watcher of a signal stops, the disposition it replaced is
/// back: SIG_DFL (so SIGTERM would end the process again), or the program's
/// own handler, which then gets the signal. Watching again works too.
#[test]
fn the_last_watcher_restores_the_previous_disposition() {
    if !common::isolated("the_last_watcher_restores_the_previous_disposition") {
        return;
    }
    let mut ev = EventLoop::new().unwrap();
    // SIGTERM: default before, default after (not raised: it would end us).
    assert_eq!(handler_of(libc::SIGTERM), libc::SIG_DFL);
    let a = signal::on_signal(&mut ev, libc::SIGTERM, |_| {}).unwrap();
    let b = signal::on_signal(&mut ev, libc::SIGTERM, |_| {}).unwrap();
    assert_ne!(handler_of(libc::SIGTERM), libc::SIG_DFL);
    assert!(signal::stop_signal(&mut ev, a));
    assert_ne!(handler_of(libc::SIGTERM), libc::SIG_DFL, "b still watches");
    assert!(signal::stop_signal(&mut ev, b));
    assert_eq!(handler_of(libc::SIGTERM), libc::SIG_DFL);

    // SIGXFSZ with a handler of the program's own, across two episodes.
    let mine = old_handler as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: installs a valid handler.
    unsafe { libc::signal(libc::SIGXFSZ, mine) };
    for round in 1..=2 {
        let got = Rc::new(Cell::new(0));
        let g = got.clone();
        let id = signal::on_signal(&mut ev, libc::SIGXFSZ, move |ev| {
            g.set(g.get() + 1);
            ev.stop();
        })
        .unwrap();
        signal::set_signal_ref(&mut ev, id, true).unwrap();
        raise(libc::SIGXFSZ);
        ev.run().unwrap();
        assert_eq!(got.get(), 1, "round {round}: the watcher gets it");
        assert!(signal::stop_signal(&mut ev, id));
        assert_eq!(handler_of(libc::SIGXFSZ), mine, "round {round}");
        let before = OLD_HANDLER_CALLS.load(std::sync::atomic::Ordering::SeqCst);
        raise(libc::SIGXFSZ);
        assert_eq!(
            OLD_HANDLER_CALLS.load(std::sync::atomic::Ordering::SeqCst),
            before + 1,
            "round {round}: the program's handler gets it again"
        );
    }
    // Dropping a loop with an active watcher releases it too.
    let mut other = EventLoop::new().unwrap();
    signal::on_signal(&mut other, libc::SIGXFSZ, |_| {}).unwrap();
    assert_ne!(handler_of(libc::SIGXFSZ), mine);
    drop(other);
    assert_eq!(handler_of(libc::SIGXFSZ), mine);
    // SAFETY: back to the default action.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_DFL) };
}

// ---------------------------------------------------------------------------
// Sharing a signal with other handlers in the process (signal-hook, tokio,
// ctrlc, a C host's own). libuv has no such tests: `uv_signal_stop` sets the
// default action whatever was there; these pin down what evloop does instead.

/// A flag set by a `signal-hook` registration (the way tokio and ctrlc
/// register: a handler installed over the one found, chaining to it).
fn signal_hook_flag(sig: i32) -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(sig, flag.clone()).unwrap();
    flag
}

/// Runs the loop until `done` holds (up to 10 s), keeping it alive with a
/// short timer per pass (signal watchers do not keep it alive).
fn run_until(ev: &mut EventLoop, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(10), "timed out");
        ev.set_timeout(Duration::from_millis(1), |_| {});
        ev.run_once().unwrap();
    }
}

fn counter() -> (Rc<Cell<u32>>, impl FnMut(&mut EventLoop) + 'static) {
    let n = Rc::new(Cell::new(0));
    let n2 = n.clone();
    (n, move |_: &mut EventLoop| n2.set(n2.get() + 1))
}

/// After evloop's last watcher stopped, code that registers through
/// signal-hook gets the signal (evloop's restore once left signal-hook
/// believing its handler was installed while SIG_DFL was: the process died).
#[test]
fn a_signal_hook_registration_after_the_last_watcher_stopped_gets_the_signal() {
    if !common::isolated(
        "a_signal_hook_registration_after_the_last_watcher_stopped_gets_the_signal",
    ) {
        return;
    }
    let mut ev = EventLoop::new().unwrap();
    let id = signal::on_signal(&mut ev, libc::SIGUSR1, |_| {}).unwrap();
    assert!(signal::stop_signal(&mut ev, id));
    assert_eq!(handler_of(libc::SIGUSR1), libc::SIG_DFL);
    let flag = signal_hook_flag(libc::SIGUSR1);
    raise(libc::SIGUSR1);
    assert!(flag.load(Ordering::SeqCst), "signal-hook's flag was set");
}

/// A signal-hook registration made while evloop watches goes on working
/// after evloop's watcher stops; evloop's handler, still called by
/// signal-hook's, does nothing (there was no handler before it to pass the
/// signal on to). Watching again works, and each delivery reaches both.
#[test]
fn a_signal_hook_registration_made_while_watching_outlives_the_watcher() {
    if !common::isolated("a_signal_hook_registration_made_while_watching_outlives_the_watcher") {
        return;
    }
    let mut ev = EventLoop::new().unwrap();
    let (calls, count) = counter();
    let id = signal::on_signal(&mut ev, libc::SIGUSR2, count).unwrap();
    let flag = signal_hook_flag(libc::SIGUSR2);
    let signal_hooks = handler_of(libc::SIGUSR2);
    raise(libc::SIGUSR2);
    assert!(flag.swap(false, Ordering::SeqCst));
    run_until(&mut ev, || calls.get() == 1);

    assert!(signal::stop_signal(&mut ev, id));
    assert_eq!(handler_of(libc::SIGUSR2), signal_hooks, "left in place");
    raise(libc::SIGUSR2); // would kill the process if SIG_DFL were back
    assert!(
        flag.swap(false, Ordering::SeqCst),
        "signal-hook's flag was set"
    );

    // Watching again: evloop's handler is still in signal-hook's chain.
    let (again, count) = counter();
    let id = signal::on_signal(&mut ev, libc::SIGUSR2, count).unwrap();
    assert_eq!(
        handler_of(libc::SIGUSR2),
        signal_hooks,
        "not installed twice"
    );
    raise(libc::SIGUSR2);
    assert!(flag.swap(false, Ordering::SeqCst));
    run_until(&mut ev, || again.get() == 1);
    assert!(signal::stop_signal(&mut ev, id));
    raise(libc::SIGUSR2);
    assert!(flag.load(Ordering::SeqCst));
    assert_eq!(
        (calls.get(), again.get()),
        (1, 1),
        "stopped watchers never ran again"
    );
}

/// A handler installed before the watcher (here signal-hook's, as tokio's
/// or ctrlc's would be) keeps getting every delivery while evloop watches,
/// and is the installed handler again once evloop's watcher stopped.
#[test]
fn a_handler_installed_before_the_watcher_keeps_getting_the_signal() {
    if !common::isolated("a_handler_installed_before_the_watcher_keeps_getting_the_signal") {
        return;
    }
    let flag = signal_hook_flag(libc::SIGHUP);
    let before = handler_of(libc::SIGHUP);
    let mut ev = EventLoop::new().unwrap();
    let (calls, count) = counter();
    let id = signal::on_signal(&mut ev, libc::SIGHUP, count).unwrap();
    assert_ne!(handler_of(libc::SIGHUP), before);
    raise(libc::SIGHUP);
    assert!(flag.swap(false, Ordering::SeqCst), "chained while watching");
    run_until(&mut ev, || calls.get() == 1);
    assert!(signal::stop_signal(&mut ev, id));
    assert_eq!(handler_of(libc::SIGHUP), before, "put back");
    raise(libc::SIGHUP);
    assert!(flag.load(Ordering::SeqCst));
}

/// After the last watcher stops, SIGTERM ends the process again.
#[test]
fn sigterm_ends_the_process_again_after_the_last_watcher_stopped() {
    use std::os::unix::process::ExitStatusExt;
    const NAME: &str = "sigterm_ends_the_process_again_after_the_last_watcher_stopped";
    if let Some(out) = common::isolated_status(NAME) {
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.signal(), Some(libc::SIGTERM), "{text}");
        assert!(text.contains("watched one"), "{text}");
        return;
    }
    let mut ev = EventLoop::new().unwrap();
    let (calls, count) = counter();
    let id = signal::on_signal(&mut ev, libc::SIGTERM, count).unwrap();
    raise(libc::SIGTERM);
    run_until(&mut ev, || calls.get() == 1);
    println!("watched one");
    assert!(signal::stop_signal(&mut ev, id));
    raise(libc::SIGTERM);
    unreachable!("SIGTERM ended the process");
}

/// An ignored signal is ignored again after the last watcher stops.
#[test]
fn an_ignored_signal_stays_ignored_after_the_last_watcher_stopped() {
    if !common::isolated("an_ignored_signal_stays_ignored_after_the_last_watcher_stopped") {
        return;
    }
    // SAFETY: "ignore" is a valid disposition.
    unsafe { libc::signal(libc::SIGUSR1, libc::SIG_IGN) };
    let mut ev = EventLoop::new().unwrap();
    let (calls, count) = counter();
    let id = signal::on_signal(&mut ev, libc::SIGUSR1, count).unwrap();
    raise(libc::SIGUSR1);
    run_until(&mut ev, || calls.get() == 1);
    assert!(signal::stop_signal(&mut ev, id));
    assert_eq!(handler_of(libc::SIGUSR1), libc::SIG_IGN);
    raise(libc::SIGUSR1); // ignored: we are still here
}

/// A C host starts with SIGPIPE at its default action. A SIGPIPE watcher
/// made before any pipe stream, then stopped, must not bring that default
/// back: a write to a pipe whose reader is gone is EPIPE, not a dead process.
#[test]
fn a_pipe_write_is_epipe_after_a_sigpipe_watcher_stopped() {
    if !common::isolated("a_pipe_write_is_epipe_after_a_sigpipe_watcher_stopped") {
        return;
    }
    // SAFETY: as a C program starts: SIGPIPE at its default action.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let mut ev = EventLoop::new().unwrap();
    let id = signal::on_signal(&mut ev, libc::SIGPIPE, |_| {}).unwrap();
    let (r, w) = unix::pipe().unwrap();
    assert!(signal::stop_signal(&mut ev, id));
    assert_eq!(handler_of(libc::SIGPIPE), libc::SIG_IGN);
    r.close(&mut ev);
    let result = Rc::new(RefCell::new(None));
    let res = result.clone();
    w.write_with(&mut ev, b"x", move |_, r| {
        *res.borrow_mut() = Some(r.map_err(|e| e.raw_os_error()))
    })
    .unwrap();
    w.close(&mut ev);
    ev.run().unwrap();
    assert_eq!(*result.borrow(), Some(Err(Some(libc::EPIPE))));
}

/// SIGCHLD inherited as ignored, a SIGCHLD watcher, a spawn (which sets
/// SIGCHLD back to its default action so the kernel keeps the exit status):
/// stopping the watcher must not put "ignore" back, or the kernel would
/// reap the child and its exit callback would never run.
#[test]
fn exit_callback_runs_after_a_sigchld_watcher_stopped() {
    if !common::isolated("exit_callback_runs_after_a_sigchld_watcher_stopped") {
        return;
    }
    // SAFETY: as a supervisor may start us: SIGCHLD ignored.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    let mut ev = EventLoop::new().unwrap();
    let id = signal::on_signal(&mut ev, libc::SIGCHLD, |_| {}).unwrap();
    let code = Rc::new(Cell::new(None));
    let c = code.clone();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "sleep 0.2; exit 7"]);
    let _child = process::spawn(&mut ev, cmd, move |_, st| c.set(Some(st.code()))).unwrap();
    assert!(signal::stop_signal(&mut ev, id));
    assert_eq!(
        handler_of(libc::SIGCHLD),
        libc::SIG_DFL,
        "not ignored again"
    );
    ev.run().unwrap();
    assert_eq!(
        code.get(),
        Some(Some(7)),
        "exit callback ran with the status"
    );
}

/// The handler reads watchers' fds from a fixed table: 64 watchers of one
/// signal at once, then a clear error (and a freed slot can be used again).
/// Signals 32 and 33 belong to the C library and are refused.
#[test]
fn a_65th_watcher_of_one_signal_is_an_error() {
    if !common::isolated("a_65th_watcher_of_one_signal_is_an_error") {
        return;
    }
    let mut ev = EventLoop::new().unwrap();
    let (calls, _) = counter();
    let ids: Vec<_> = (0..64)
        .map(|_| {
            let c = calls.clone();
            signal::on_signal(&mut ev, libc::SIGUSR1, move |_| c.set(c.get() + 1)).unwrap()
        })
        .collect();
    let err = signal::on_signal(&mut ev, libc::SIGUSR1, |_| panic!("never")).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::OutOfMemory);
    assert_eq!(ev.watcher_count(), 64);
    raise(libc::SIGUSR1);
    run_until(&mut ev, || calls.get() == 64);
    assert!(signal::stop_signal(&mut ev, ids[10]));
    let c = calls.clone();
    let last = signal::on_signal(&mut ev, libc::SIGUSR1, move |_| c.set(c.get() + 100)).unwrap();
    raise(libc::SIGUSR1);
    run_until(&mut ev, || calls.get() == 64 + 63 + 100);
    for id in ids.into_iter().chain([last]) {
        signal::stop_signal(&mut ev, id);
    }
    assert_eq!(handler_of(libc::SIGUSR1), libc::SIG_DFL);
    for sig in [32, 33] {
        let err = signal::on_signal(&mut ev, sig, |_| panic!("never")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "signal {sig}");
    }
}
