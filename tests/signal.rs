//! Signals as callbacks. Each test uses its own signal: handlers are
//! process-wide and tests run in parallel.

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use evloop::{signal, EventLoop};

fn raise(sig: i32) {
    // SAFETY: raise only sends a signal to this process.
    assert_eq!(unsafe { libc::raise(sig) }, 0);
}

#[test]
fn sigusr1_raised_to_self_is_delivered_as_a_callback() {
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
