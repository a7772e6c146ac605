//! fd readiness watchers.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

use evloop::{EventLoop, Interest, Readiness, WatchId};

fn pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}

fn pipe() -> (File, File) {
    let mut fds = [0; 2];
    // SAFETY: pipe writes two fds into the array, which we then own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    use std::os::fd::FromRawFd;
    // SAFETY: both fds were just created and are owned by nobody else.
    unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
}

/// Stops the loop after `ms`, even if watchers remain.
fn deadline(ev: &mut EventLoop, ms: u64) {
    ev.set_timeout(Duration::from_millis(ms), |ev| ev.stop());
}

/// A guard against a hang that does not keep the loop alive: `run()` still
/// returns as soon as nothing else is left, however slow the machine.
fn hang_guard(ev: &mut EventLoop) {
    let t = ev.set_timeout(Duration::from_secs(30), |ev| ev.stop());
    ev.set_timer_ref(t, false).unwrap();
}

#[test]
fn readable_watcher_gets_data_and_level_triggering_repeats() {
    let mut ev = EventLoop::new().unwrap();
    let (a, mut b) = pair();
    b.write_all(b"hello").unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    ev.watch(a, Interest::READABLE, move |ev, a, r| {
        assert!(r.readable && !r.writable);
        // Read one byte per call: the watcher must be called again while
        // bytes are left (level-triggered).
        let mut byte = [0u8; 1];
        match a.read(&mut byte) {
            Ok(1) => g.borrow_mut().push(byte[0]),
            other => panic!("{other:?}"),
        }
        if g.borrow().len() == 5 {
            ev.stop();
        }
    })
    .unwrap();
    ev.run().unwrap();
    assert_eq!(&*got.borrow(), b"hello");
}

#[test]
fn one_mebibyte_each_way_through_a_socket_pair() {
    const N: usize = 1 << 20;
    let mut ev = EventLoop::new().unwrap();
    let (a, b) = pair();
    let received = Rc::new(RefCell::new([Vec::new(), Vec::new()]));
    for (side, sock) in [(0usize, a), (1, b)] {
        let data: Vec<u8> = (0..N).map(|i| (i * (side + 3) % 251) as u8).collect();
        let mut sent = 0;
        let rx = received.clone();
        let mut read_done = false;
        let me: Rc<Cell<Option<WatchId>>> = Rc::new(Cell::new(None));
        let me2 = me.clone();
        let id = ev
            .watch(sock, Interest::BOTH, move |ev, s, r| {
                if r.writable && sent < N {
                    match s.write(&data[sent..]) {
                        Ok(n) => sent += n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => panic!("{e}"),
                    }
                    if sent == N {
                        s.shutdown(std::net::Shutdown::Write).unwrap();
                    }
                }
                if r.readable && !read_done {
                    let mut buf = [0u8; 65536];
                    loop {
                        match s.read(&mut buf) {
                            Ok(0) => {
                                read_done = true;
                                break;
                            }
                            Ok(n) => rx.borrow_mut()[side].extend_from_slice(&buf[..n]),
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
                if sent == N && read_done {
                    // Done both ways: drop the socket from inside its callback.
                    assert!(ev.unwatch(me2.get().unwrap()));
                } else if sent == N {
                    ev.set_interest(me2.get().unwrap(), Interest::READABLE)
                        .unwrap();
                }
            })
            .unwrap();
        me.set(Some(id));
    }
    ev.run().unwrap();
    let rx = received.borrow();
    for side in 0..2 {
        let other = 1 - side;
        let expect: Vec<u8> = (0..N).map(|i| (i * (other + 3) % 251) as u8).collect();
        assert_eq!(rx[side].len(), N);
        assert!(
            rx[side] == expect,
            "side {side} got the other side's bytes intact"
        );
    }
}

#[test]
fn two_hundred_watchers_at_once() {
    let mut ev = EventLoop::new().unwrap();
    let hits = Rc::new(RefCell::new(vec![0u32; 200]));
    let mut writers = Vec::new();
    for i in 0..200 {
        let (a, b) = pair();
        writers.push(b);
        let h = hits.clone();
        let me = Rc::new(Cell::new(None));
        let m = me.clone();
        me.set(Some(
            ev.watch(a, Interest::READABLE, move |ev, a, _| {
                let mut buf = [0u8; 8];
                let n = a.read(&mut buf).unwrap();
                assert_eq!(&buf[..n], format!("{i}").as_bytes());
                h.borrow_mut()[i] += 1;
                ev.unwatch(m.get().unwrap());
            })
            .unwrap(),
        ));
    }
    assert_eq!(ev.watcher_count(), 200);
    for (i, w) in writers.iter_mut().enumerate() {
        w.write_all(format!("{i}").as_bytes()).unwrap();
    }
    ev.run().unwrap(); // ends once every watcher removed itself
    assert!(hits.borrow().iter().all(|&n| n == 1));
    assert_eq!(ev.watcher_count(), 0);
}

/// Two ready watchers; whichever runs first removes itself and the other, so
/// the event already collected for the other must not be delivered.
#[test]
fn watcher_removes_itself_and_another_in_the_same_pass() {
    let mut ev = EventLoop::new().unwrap();
    let ids: Rc<RefCell<Vec<WatchId>>> = Rc::new(RefCell::new(Vec::new()));
    let calls = Rc::new(Cell::new(0));
    let mut keep = Vec::new();
    for _ in 0..2 {
        let (a, mut b) = pair();
        b.write_all(b"x").unwrap();
        keep.push(b);
        let (ids2, calls2) = (ids.clone(), calls.clone());
        let id = ev
            .watch(a, Interest::READABLE, move |ev, _a, _| {
                calls2.set(calls2.get() + 1);
                let all = ids2.borrow().clone();
                for id in all {
                    assert!(ev.unwatch(id), "both still live in the first call");
                }
                // A new watcher may reuse a slot; it must not get the stale event.
                let (c, mut d) = pair();
                d.write_all(b"y").unwrap();
                std::mem::forget(d);
                let fresh = ev.watch(c, Interest::READABLE, |ev, c, _| {
                    let mut b = [0u8; 1];
                    assert_eq!(c.read(&mut b).unwrap(), 1);
                    ev.stop();
                });
                assert!(fresh.is_ok());
            })
            .unwrap();
        ids.borrow_mut().push(id);
    }
    ev.run_once().unwrap();
    assert_eq!(
        calls.get(),
        1,
        "the removed watcher's event was not delivered"
    );
    assert_eq!(ev.watcher_count(), 1);
}

#[test]
fn hangup_reaches_the_callback_and_does_not_spin() {
    let mut ev = EventLoop::new().unwrap();
    let (r, w) = pipe();
    drop(w);
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    let id = ev
        .watch(r, Interest::READABLE, move |_, _, readiness: Readiness| {
            // Ignore it on purpose: a loop that re-reported it every pass
            // would spin.
            s.borrow_mut().push(readiness);
        })
        .unwrap();
    let start_passes = ev.iterations();
    deadline(&mut ev, 100);
    ev.run().unwrap();
    let seen = seen.borrow();
    assert_eq!(seen.len(), 1, "delivered once, then parked");
    assert!(seen[0].hangup);
    assert!(
        ev.iterations() - start_passes < 10,
        "the loop slept, it did not spin"
    );
    assert!(ev.is_watching(id), "parked, not removed");
    assert!(
        !ev.is_alive(),
        "a parked watcher does not keep the loop alive"
    );
}

#[test]
fn data_before_a_hangup_is_all_delivered() {
    let mut ev = EventLoop::new().unwrap();
    let (r, mut w) = pipe();
    w.write_all(b"0123456789").unwrap();
    drop(w);
    let got = Rc::new(RefCell::new(Vec::new()));
    let eof = Rc::new(Cell::new(0));
    let (g, e) = (got.clone(), eof.clone());
    ev.watch(r, Interest::READABLE, move |_, r, _| {
        let mut byte = [0u8; 1];
        match r.read(&mut byte).unwrap() {
            0 => e.set(e.get() + 1),
            _ => g.borrow_mut().push(byte[0]),
        }
    })
    .unwrap();
    hang_guard(&mut ev); // run() returns once the watcher is parked
    ev.run().unwrap();
    assert_eq!(&*got.borrow(), b"0123456789");
    assert_eq!(eof.get(), 1, "EOF seen once, then parked");
}

#[test]
fn parked_watcher_is_rearmed_by_set_interest() {
    let mut ev = EventLoop::new().unwrap();
    let (r, w) = pipe();
    drop(w);
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    let id = ev
        .watch(r, Interest::READABLE, move |_, _, _| c.set(c.get() + 1))
        .unwrap();
    ev.run_once().unwrap();
    assert_eq!(calls.get(), 1);
    ev.set_interest(id, Interest::READABLE).unwrap();
    ev.run_once().unwrap();
    assert_eq!(calls.get(), 2);
    assert!(ev.unwatch(id));
}

#[test]
fn writable_interest_and_interest_changes() {
    let mut ev = EventLoop::new().unwrap();
    let (a, b) = pair();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let me = Rc::new(Cell::new(None));
    let m = me.clone();
    me.set(Some(
        ev.watch(a, Interest::WRITABLE, move |ev, _, r| {
            l.borrow_mut().push(r);
            // Pause: nothing more until someone changes the interest.
            ev.set_interest(m.get().unwrap(), Interest::NONE).unwrap();
        })
        .unwrap(),
    ));
    deadline(&mut ev, 30);
    ev.run().unwrap();
    assert_eq!(log.borrow().len(), 1);
    assert!(log.borrow()[0].writable);
    assert!(
        !ev.is_alive(),
        "a paused watcher does not keep the loop alive"
    );
    drop(b); // hang-up while paused: must not spin or be delivered
    deadline(&mut ev, 30);
    let passes = ev.iterations();
    ev.run().unwrap();
    assert!(ev.iterations() - passes < 10);
    assert_eq!(log.borrow().len(), 1);
}

#[test]
fn regular_files_and_directories_cannot_be_watched() {
    let mut ev = EventLoop::new().unwrap();
    let file = File::open("Cargo.toml").unwrap();
    let err = ev
        .watch(file, Interest::READABLE, |_, _, _| {})
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    let dir = File::open("src").unwrap();
    let err = ev.watch(dir, Interest::NONE, |_, _, _| {}).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    assert_eq!(ev.watcher_count(), 0);
    assert!(!ev.is_alive());
}

#[test]
fn the_same_fd_twice_is_an_error() {
    let mut ev = EventLoop::new().unwrap();
    let (a, _b) = pair();
    let fd = a.as_raw_fd();
    // SAFETY: `a` stays open until after both watchers are gone.
    let first = unsafe { ev.watch_raw_fd(fd, Interest::READABLE, |_, _, _| {}) }.unwrap();
    // SAFETY: as above.
    let err = unsafe { ev.watch_raw_fd(fd, Interest::READABLE, |_, _, _| {}) }.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    // SAFETY: as above.
    let err = unsafe { ev.watch_raw_fd(-1, Interest::READABLE, |_, _, _| {}) }.unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EBADF));
    assert!(ev.unwatch(first));
    drop(a);
}

/// A watcher with no interest is not in the poller, but still owns its fd:
/// a second watch fails at once, whatever the two interests.
#[test]
fn a_paused_fd_cannot_be_watched_twice() {
    let mut ev = EventLoop::new().unwrap();
    let (a, _b) = pair();
    let fd = a.as_raw_fd();
    for (first, second) in [
        (Interest::NONE, Interest::READABLE),
        (Interest::NONE, Interest::NONE),
        (Interest::WRITABLE, Interest::NONE),
    ] {
        // SAFETY: `a` stays open until after every watcher is gone.
        let id = unsafe { ev.watch_raw_fd(fd, first, |_, _, _| {}) }.unwrap();
        // SAFETY: as above.
        let err = unsafe { ev.watch_raw_fd(fd, second, |_, _, _| {}) }.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        // The first watcher is untouched: it can be armed and removed.
        ev.set_interest(id, Interest::READABLE).unwrap();
        assert!(ev.unwatch(id));
    }
    // Once unwatched (or taken back), the fd can be watched again.
    // SAFETY: as above.
    let id = unsafe { ev.watch_raw_fd(fd, Interest::NONE, |_, _, _| {}) }.unwrap();
    assert!(ev.unwatch(id));
    let owned = ev.watch(a, Interest::NONE, |_, _, _| {}).unwrap();
    let a: UnixStream = ev.take_watched(owned).unwrap();
    let again = ev.watch(a, Interest::READABLE, |_, _, _| {}).unwrap();
    assert!(ev.unwatch(again));
}

#[test]
fn raw_fd_watcher_reports_the_fd() {
    let mut ev = EventLoop::new().unwrap();
    let (a, mut b) = pair();
    b.write_all(b"!").unwrap();
    let fd = a.as_raw_fd();
    let seen = Rc::new(Cell::new(-1));
    let s = seen.clone();
    let me = Rc::new(Cell::new(None));
    let m = me.clone();
    // SAFETY: `a` outlives the watcher, which removes itself on its first call.
    me.set(Some(
        unsafe {
            ev.watch_raw_fd(fd, Interest::READABLE, move |ev, fd, r| {
                assert!(r.readable);
                s.set(fd);
                ev.unwatch(m.get().unwrap());
            })
        }
        .unwrap(),
    ));
    ev.run().unwrap();
    assert_eq!(seen.get(), fd);
    drop(a);
}

#[test]
fn take_watched_gives_the_source_back() {
    let mut ev = EventLoop::new().unwrap();
    let (a, mut b) = pair();
    let id = ev.watch(a, Interest::READABLE, |_, _, _| {}).unwrap();
    assert_eq!(
        ev.take_watched::<File>(id).unwrap_err().kind(),
        io::ErrorKind::InvalidInput,
        "wrong type leaves the watcher"
    );
    let mut a: UnixStream = ev.take_watched(id).unwrap();
    assert!(!ev.is_watching(id));
    assert_eq!(
        ev.take_watched::<UnixStream>(id).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    b.write_all(b"z").unwrap();
    let mut buf = [0u8; 1];
    a.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"z");
}

#[test]
fn take_watched_inside_its_own_callback_is_busy_and_unwatch_works_there() {
    let mut ev = EventLoop::new().unwrap();
    let (a, mut b) = pair();
    b.write_all(b"z").unwrap();
    let me = Rc::new(Cell::new(None));
    let m = me.clone();
    let outcome = Rc::new(RefCell::new(None));
    let o = outcome.clone();
    me.set(Some(
        ev.watch(OwnedFd::from(a), Interest::READABLE, move |ev, fd, _| {
            let mut byte = [0u8; 1];
            assert_eq!(
                File::from(fd.try_clone().unwrap()).read(&mut byte).unwrap(),
                1
            );
            let id = m.get().unwrap();
            *o.borrow_mut() = Some(ev.take_watched::<OwnedFd>(id).unwrap_err().kind());
            assert!(ev.unwatch(id));
            assert!(!ev.unwatch(id));
        })
        .unwrap(),
    ));
    ev.run().unwrap();
    assert_eq!(*outcome.borrow(), Some(io::ErrorKind::ResourceBusy));
    // The source was dropped after the callback: the peer sees EOF.
    let mut buf = [0u8; 1];
    b.set_nonblocking(false).unwrap();
    assert_eq!(b.read(&mut buf).unwrap(), 0);
}

#[test]
fn unref_watcher_does_not_keep_the_loop_alive() {
    let mut ev = EventLoop::new().unwrap();
    let (a, _b) = pair();
    let id = ev.watch(a, Interest::READABLE, |_, _, _| {}).unwrap();
    assert!(ev.is_alive());
    ev.set_watch_ref(id, false).unwrap();
    assert!(!ev.is_alive());
    ev.run().unwrap();
    ev.set_watch_ref(id, true).unwrap();
    assert!(ev.is_alive());
    assert!(ev.unwatch(id));
    assert_eq!(
        ev.set_watch_ref(id, true).unwrap_err().kind(),
        io::ErrorKind::NotFound,
        "stale id"
    );
}

#[test]
fn dropping_the_loop_drops_watched_sources() {
    let (a, mut b) = pair();
    {
        let mut ev = EventLoop::new().unwrap();
        ev.watch(a, Interest::READABLE, |_, _, _| {}).unwrap();
    }
    b.set_nonblocking(false).unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(b.read(&mut buf).unwrap(), 0, "the watched end was closed");
}
