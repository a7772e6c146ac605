//! Watching paths for changes (inotify, one instance per loop).
//!
//! Changes are made synchronously before `run()` (or from a callback), so
//! the kernel has queued their events before the loop reads: the expected
//! sequences are exact, with no sleeps. A sentinel file (`STOP`) created
//! last tells the callback that everything before it was delivered.

mod common;

use std::cell::RefCell;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use common::TempDir;
use evloop::fs::{self, FsEvent, FsEventKind, FsWatcher, WatchOptions};
use evloop::EventLoop;

use FsEventKind::*;

/// A test that goes wrong fails instead of hanging: an unref'd timer that
/// only fires while the loop is still running for other reasons.
fn guard(ev: &mut EventLoop) {
    let t = ev.set_timeout(Duration::from_secs(30), |_| {
        panic!("the watch test did not finish in 30 s")
    });
    ev.set_timer_ref(t, false).unwrap();
}

fn ev(kind: FsEventKind, path: &str, is_dir: bool) -> FsEvent {
    FsEvent {
        kind,
        path: PathBuf::from(path),
        is_dir,
    }
}

fn file(kind: FsEventKind, path: &str) -> FsEvent {
    ev(kind, path, false)
}

fn dir(kind: FsEventKind, path: &str) -> FsEvent {
    ev(kind, path, true)
}

type Log = Rc<RefCell<Vec<FsEvent>>>;

/// Watches `path`, logging every event; closes the watcher when it sees a
/// `Created` whose name starts with `STOP`.
fn record_until_stop(ev: &mut EventLoop, path: &Path, options: WatchOptions) -> (FsWatcher, Log) {
    let log: Log = Rc::default();
    let l = log.clone();
    let watcher = fs::watch(ev, path, options, move |ev, watcher, event| {
        let stop = event.kind == Created && event.path.to_string_lossy().starts_with("STOP");
        l.borrow_mut().push(event);
        if stop {
            assert!(watcher.close(ev));
        }
    })
    .unwrap();
    (watcher, log)
}

fn touch(path: impl AsRef<Path>) {
    std::fs::File::create(path).unwrap();
}

/// follows libuv test/test-fs-event.c fs_event_watch_dir and Node's
/// test/parallel/test-fs-watch.js: names relative to the directory, a rename
/// paired into one event.
#[test]
fn a_directory_watch_reports_create_modify_metadata_rename_remove() {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let tmp = TempDir::new("watch-dir");
    let mut ev = EventLoop::new().unwrap();
    guard(&mut ev);
    let (watcher, log) = record_until_stop(&mut ev, &tmp.0, Default::default());
    let a = tmp.0.join("a");
    std::fs::File::create(&a)
        .unwrap()
        .write_all(b"data")
        .unwrap();
    std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&a, tmp.0.join("b")).unwrap();
    std::fs::remove_file(tmp.0.join("b")).unwrap();
    std::fs::create_dir(tmp.0.join("sub")).unwrap();
    std::fs::remove_dir(tmp.0.join("sub")).unwrap();
    touch(tmp.0.join("STOP"));
    ev.run().unwrap();
    assert_eq!(
        *log.borrow(),
        [
            file(Created, "a"),
            file(Modified, "a"),
            file(Metadata, "a"),
            file(Renamed { to: "b".into() }, "a"),
            file(Removed, "b"),
            dir(Created, "sub"),
            dir(Removed, "sub"),
            file(Created, "STOP"),
        ]
    );
    assert!(!watcher.is_active(&mut ev));
    assert!(!watcher.close(&mut ev), "closing twice is a harmless false");
    assert_eq!(ev.watcher_count(), 0, "the inotify fd is closed");
}

/// follows libuv test/test-fs-event.c fs_event_watch_file and Node's
/// test/parallel/test-fs-watch-file... : a watched file reports changes with
/// its own name; its removal is reported and ends the watch, and run()
/// returns on its own.
#[test]
fn a_file_watch_reports_changes_and_ends_when_the_file_is_removed() {
    let tmp = TempDir::new("watch-file");
    let f = tmp.0.join("watched.txt");
    std::fs::write(&f, "v1").unwrap();
    let mut ev = EventLoop::new().unwrap();
    guard(&mut ev);
    let log: Log = Rc::default();
    let l = log.clone();
    let watcher = fs::watch(&mut ev, &f, Default::default(), move |_, _, e| {
        l.borrow_mut().push(e)
    })
    .unwrap();
    assert_eq!(watcher.path(), f);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&f)
        .and_then(|mut h| io::Write::write_all(&mut h, b"v2"))
        .unwrap();
    touch(tmp.0.join("not-watched")); // a sibling: no event
    std::fs::remove_file(&f).unwrap();
    ev.run().unwrap(); // returns: the watch ended
    assert_eq!(
        *log.borrow(),
        [
            file(Modified, "watched.txt"),
            file(Metadata, "watched.txt"), // the link count went to 0
            file(SelfRemoved, "watched.txt"),
        ]
    );
    assert!(!watcher.is_active(&mut ev));
    assert!(!watcher.close(&mut ev));
    assert_eq!(
        watcher.set_ref(&mut ev, false).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
}

/// follows libuv test/test-fs-event.c fs_event_watch_delete_dir: the watched
/// directory removed is reported and the watch ends.
#[test]
fn removing_the_watched_directory_ends_the_watch() {
    let tmp = TempDir::new("watch-rmdir");
    let d = tmp.0.join("d");
    std::fs::create_dir(&d).unwrap();
    let mut ev = EventLoop::new().unwrap();
    guard(&mut ev);
    let log: Log = Rc::default();
    let l = log.clone();
    fs::watch(&mut ev, &d, Default::default(), move |_, _, e| {
        l.borrow_mut().push(e)
    })
    .unwrap();
    touch(d.join("x"));
    std::fs::remove_file(d.join("x")).unwrap();
    std::fs::remove_dir(&d).unwrap();
    ev.run().unwrap();
    assert_eq!(
        *log.borrow(),
        [file(Created, "x"), file(Removed, "x"), dir(SelfRemoved, ""),]
    );
}

/// The watched directory moved: reported, and the watch ends (nothing is
/// reported for changes at its new place).
#[test]
fn moving_the_watched_directory_ends_the_watch() {
    let tmp = TempDir::new("watch-mvdir");
    let (d, moved) = (tmp.0.join("d"), tmp.0.join("moved"));
    std::fs::create_dir(&d).unwrap();
    let mut ev = EventLoop::new().unwrap();
    guard(&mut ev);
    let log: Log = Rc::default();
    let l = log.clone();
    let watcher = fs::watch(&mut ev, &d, Default::default(), move |_, _, e| {
        l.borrow_mut().push(e)
    })
    .unwrap();
    std::fs::rename(&d, &moved).unwrap();
    touch(moved.join("after"));
    ev.run().unwrap();
    assert_eq!(*log.borrow(), [dir(SelfMoved, "")]);
    assert!(!watcher.is_active(&mut ev));
}

/// follows libuv test/test-fs-event.c fs_event_watch_invalid_path and Node's
/// test/parallel/test-fs-watch-enoent.js: a clear error, nothing left
/// behind.
#[test]
fn watching_a_missing_path_is_a_clear_error() {
    let tmp = TempDir::new("watch-missing");
    let missing = tmp.0.join("no-such-dir");
    let mut ev = EventLoop::new().unwrap();
    let e = fs::watch(&mut ev, &missing, Default::default(), |_, _, _| {
        panic!("never runs")
    })
    .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    assert!(e.to_string().contains("no-such-dir"), "{e}");
    assert_eq!(ev.watcher_count(), 0, "no inotify fd left open");
    assert!(!ev.is_alive());
    let e = fs::watch(&mut ev, "", Default::default(), |_, _, _| panic!()).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
}

/// follows libuv test/test-fs-event.c fs_event_close_in_callback and
/// fs_event_stop_in_cb: after close inside the callback, no event reaches it.
#[test]
fn closing_inside_the_callback_stops_at_once() {
    let tmp = TempDir::new("watch-close-in-cb");
    let mut ev = EventLoop::new().unwrap();
    guard(&mut ev);
    let log: Log = Rc::default();
    let l = log.clone();
    fs::watch(&mut ev, &tmp.0, Default::default(), move |ev, w, e| {
        l.borrow_mut().push(e);
        assert!(w.close(ev));
        assert!(!w.close(ev), "the second close is a no-op");
        assert!(!w.is_active(ev));
    })
    .unwrap();
    for name in ["1", "2", "3"] {
        touch(tmp.0.join(name));
    }
    ev.run().unwrap();
    assert_eq!(*log.borrow(), [file(Created, "1")]);
}

/// follows libuv test/test-fs-event.c fs_event_close_with_pending_event and
/// fs_event_no_callback_after_close: events queued in the kernel for a
/// watcher closed before the loop read them never reach it.
#[test]
fn no_callback_after_close_even_with_events_pending() {
    let tmp = TempDir::new("watch-pending");
    let mut ev = EventLoop::new().unwrap();
    guard(&mut ev);
    let w = fs::watch(&mut ev, &tmp.0, Default::default(), |_, _, _| {
        panic!("no callback after close")
    })
    .unwrap();
    // A second watcher on the same directory keeps the instance (and so the
    // queued events) alive and shows they were there.
    let (_, log) = record_until_stop(&mut ev, &tmp.0, Default::default());
    touch(tmp.0.join("a"));
    touch(tmp.0.join("STOP"));
    assert!(w.close(&mut ev));
    ev.run().unwrap();
    assert_eq!(*log.borrow(), [file(Created, "a"), file(Created, "STOP")]);
}

/// follows libuv test/test-fs-event.c fs_event_watch_file_twice: two
/// watchers of one path share the kernel's watch, both get every event, and
/// closing one leaves the other working.
#[test]
fn two_watchers_of_one_path_both_get_events() {
    let tmp = TempDir::new("watch-twice");
    let mut ev = EventLoop::new().unwrap();
    guard(&mut ev);
    let (first, log1) = record_until_stop(&mut ev, &tmp.0, Default::default());
    let (_, log2) = record_until_stop(&mut ev, &tmp.0, Default::default());
    touch(tmp.0.join("both"));
    ev.run_nowait().unwrap();
    ev.run_nowait().unwrap();
    assert!(first.close(&mut ev));
    touch(tmp.0.join("second-only"));
    touch(tmp.0.join("STOP"));
    ev.run().unwrap();
    assert_eq!(*log1.borrow(), [file(Created, "both")]);
    assert_eq!(
        *log2.borrow(),
        [
            file(Created, "both"),
            file(Created, "second-only"),
            file(Created, "STOP")
        ]
    );
}

/// A rename from one watched directory to another: each watcher sees its
/// half (the cookie pairs them only within one watcher).
#[test]
fn a_move_between_two_watched_directories_is_out_for_one_in_for_the_other() {
    let tmp = TempDir::new("watch-between");
    let (a, b) = (tmp.0.join("a"), tmp.0.join("b"));
    std::fs::create_dir(&a).unwrap();
    std::fs::create_dir(&b).unwrap();
    let mut ev = EventLoop::new().unwrap();
    guard(&mut ev);
    let (_, log_a) = record_until_stop(&mut ev, &a, Default::default());
    let (_, log_b) = record_until_stop(&mut ev, &b, Default::default());
    touch(a.join("x"));
    std::fs::rename(a.join("x"), b.join("y")).unwrap();
    std::fs::rename(&a, tmp.0.join("a2")).unwrap();
    touch(tmp.0.join("a2/STOP"));
    touch(b.join("STOP"));
    ev.run().unwrap();
    assert_eq!(
        *log_a.borrow(),
        [file(Created, "x"), file(MovedOut, "x"), dir(SelfMoved, "")]
    );
    assert_eq!(*log_b.borrow(), [file(MovedIn, "y"), file(Created, "STOP")]);
}

/// follows Node's test/parallel/test-fs-watch-ref-unref.js: an unref'd
/// watcher does not keep the loop alive; ref'd again, it does.
#[test]
fn an_unrefd_watcher_lets_run_return() {
    let tmp = TempDir::new("watch-unref");
    let mut ev = EventLoop::new().unwrap();
    let w = fs::watch(&mut ev, &tmp.0, Default::default(), |_, _, _| {}).unwrap();
    assert!(ev.is_alive());
    w.set_ref(&mut ev, false).unwrap();
    assert!(!ev.is_alive());
    ev.run().unwrap(); // returns at once
    assert!(w.is_active(&mut ev), "unref'd, still watching");
    w.set_ref(&mut ev, true).unwrap();
    assert!(ev.is_alive());
    assert!(w.close(&mut ev));
    assert!(!ev.is_alive());
}

/// A panic in the callback goes out of run() (the loop's panic policy); the
/// watcher stays, and the events read after the panicking one are delivered
/// when the loop runs again. With a panic handler, the loop goes on.
#[test]
fn a_panicking_callback_leaves_the_watcher_and_the_queued_events() {
    let tmp = TempDir::new("watch-panic");
    let mut ev = EventLoop::new().unwrap();
    guard(&mut ev);
    let log: Log = Rc::default();
    let l = log.clone();
    fs::watch(&mut ev, &tmp.0, Default::default(), move |ev, w, e| {
        let name = e.path.to_string_lossy().into_owned();
        l.borrow_mut().push(e);
        match name.as_str() {
            "boom" | "boom2" => panic!("callback panics on {name}"),
            "STOP" => assert!(w.close(ev)),
            _ => {}
        }
    })
    .unwrap();
    for name in ["a", "boom", "b"] {
        touch(tmp.0.join(name));
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ev.run()));
    assert!(result.is_err(), "the panic unwinds out of run()");
    assert_eq!(log.borrow().len(), 2, "a, boom");
    let caught = Rc::new(RefCell::new(0));
    let c = caught.clone();
    ev.set_panic_handler(move |_, _| *c.borrow_mut() += 1);
    touch(tmp.0.join("boom2"));
    touch(tmp.0.join("STOP"));
    ev.run().unwrap();
    let names: Vec<_> = log.borrow().iter().map(|e| e.path.clone()).collect();
    assert_eq!(
        names,
        ["a", "boom", "b", "boom2", "STOP"].map(PathBuf::from)
    );
    assert_eq!(*caught.borrow(), 1);
}

/// follows libuv test/test-fs-event.c fs_event_watch_dir_recursive and
/// Node's test/parallel/test-fs-watch-recursive-*.js: existing and new
/// subdirectories are watched, a directory created with files already in it
/// reports them (the inotify race), renamed directories report under their
/// new name, directories moved out stop reporting, moved-in ones start.
#[test]
fn a_recursive_watch_follows_the_tree() {
    let tmp = TempDir::new("watch-recursive");
    let root = tmp.0.join("root");
    let outside = tmp.0.join("outside");
    std::fs::create_dir_all(root.join("sub/deep")).unwrap();
    let mut ev = EventLoop::new().unwrap();
    guard(&mut ev);
    let log: Log = Rc::default();
    let l = log.clone();
    let (r, o) = (root.clone(), outside.clone());
    fs::watch(
        &mut ev,
        &root,
        WatchOptions { recursive: true },
        move |ev, w, e| {
            let name = e.path.to_string_lossy().into_owned();
            l.borrow_mut().push(e);
            // Each phase's changes are made when the previous one's last
            // event arrives, so the watcher has caught up with the tree.
            match name.as_str() {
                "STOP1" => {
                    std::fs::rename(r.join("sub"), r.join("moved")).unwrap();
                    touch(r.join("moved/deep/f2"));
                    std::fs::rename(r.join("new"), &o).unwrap();
                    touch(o.join("unseen"));
                    touch(r.join("STOP2"));
                }
                "STOP2" => {
                    std::fs::remove_file(r.join("moved/deep/f1")).unwrap();
                    std::fs::remove_file(r.join("moved/deep/f2")).unwrap();
                    std::fs::remove_dir(r.join("moved/deep")).unwrap();
                    std::fs::rename(&o, r.join("back")).unwrap();
                    touch(r.join("STOP3"));
                }
                "STOP3" => {
                    touch(r.join("back/inner3"));
                    touch(r.join("STOP4"));
                }
                "STOP4" => assert!(w.close(ev)),
                _ => {}
            }
        },
    )
    .unwrap();
    touch(root.join("sub/deep/f1"));
    std::fs::create_dir(root.join("new")).unwrap();
    touch(root.join("new/inner")); // before the loop adds the new watch
    touch(root.join("STOP1"));
    ev.run().unwrap();
    assert_eq!(
        *log.borrow(),
        [
            file(Created, "sub/deep/f1"),
            dir(Created, "new"),
            file(Created, "new/inner"), // found by listing the new directory
            file(Created, "STOP1"),
            dir(Renamed { to: "moved".into() }, "sub"),
            file(Created, "moved/deep/f2"),
            dir(MovedOut, "new"),
            file(Created, "STOP2"),
            file(Removed, "moved/deep/f1"),
            file(Removed, "moved/deep/f2"),
            dir(Removed, "moved/deep"),
            dir(MovedIn, "back"),
            file(Created, "STOP3"),
            file(Created, "back/inner3"),
            file(Created, "STOP4"),
        ]
    );
    assert_eq!(ev.watcher_count(), 0);
}

/// A recursive watch of a file is a plain file watch.
#[test]
fn recursive_on_a_file_watches_the_file() {
    let tmp = TempDir::new("watch-recursive-file");
    let f = tmp.0.join("f");
    std::fs::write(&f, "").unwrap();
    let mut ev = EventLoop::new().unwrap();
    guard(&mut ev);
    let log: Log = Rc::default();
    let l = log.clone();
    fs::watch(
        &mut ev,
        &f,
        WatchOptions { recursive: true },
        move |_, _, e| l.borrow_mut().push(e),
    )
    .unwrap();
    std::fs::rename(&f, tmp.0.join("g")).unwrap();
    ev.run().unwrap();
    assert_eq!(*log.borrow(), [file(SelfMoved, "f")]);
}

/// More events than the kernel queues (`max_queued_events`) without the
/// loop reading: the watcher gets `Overflow`, and goes on working.
#[test]
fn a_queue_overflow_is_reported_and_watching_goes_on() {
    let Some(max) = std::fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .filter(|&n| n <= 1 << 20)
    else {
        return; // unknown or huge limit: cannot overflow cheaply
    };
    let tmp = TempDir::new("watch-overflow");
    let mut ev = EventLoop::new().unwrap();
    guard(&mut ev);
    let (_, log) = record_until_stop(&mut ev, &tmp.0, Default::default());
    // Alternate two files: identical consecutive events would be merged.
    let files = [tmp.0.join("a"), tmp.0.join("b")].map(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap()
    });
    for i in 0..max + 10 {
        io::Write::write_all(&mut &files[i % 2], b"x").unwrap();
    }
    touch(tmp.0.join("STOP-lost")); // no room left in the queue
    ev.run_nowait().unwrap(); // reads the full queue, overflow included
    touch(tmp.0.join("STOP"));
    ev.run().unwrap();
    let log = log.borrow();
    let overflows = log.iter().filter(|e| e.kind == Overflow).count();
    assert_eq!(overflows, 1, "one overflow event");
    assert_eq!(log.last().unwrap(), &file(Created, "STOP"));
    assert!(log.len() >= max, "{} events", log.len());
}

/// A watcher's handle means nothing to another loop: ids are unique across
/// loops, so it can never reach that loop's watchers.
#[test]
fn a_watcher_handle_does_nothing_on_another_loop() {
    let tmp = TempDir::new("watch-other-loop");
    let mut ev = EventLoop::new().unwrap();
    let mut other = EventLoop::new().unwrap();
    let w = fs::watch(&mut ev, &tmp.0, Default::default(), |_, _, _| {}).unwrap();
    let w2 = fs::watch(&mut other, &tmp.0, Default::default(), |_, _, _| {}).unwrap();
    assert!(!w.close(&mut other));
    assert!(!w.is_active(&mut other));
    assert!(w.set_ref(&mut other, false).is_err());
    assert!(
        w2.is_active(&mut other),
        "the other loop's watcher is untouched"
    );
    assert!(w.close(&mut ev) && w2.close(&mut other));
}
