//! Slow callbacks: one that runs at least the threshold (default 100 ms,
//! asyncio's debug-mode `slow_callback_duration`) logs a warning naming its
//! kind, creation site and duration. Follows asyncio's
//! test_base_events.py `test_slow_callback_duration` (a callback that sleeps
//! past the threshold is reported).
//!
//! One test: the logger is global to the process.

use std::sync::Mutex;
use std::time::Duration;

use evloop::{EventLoop, Interest};
use log::{Level, LevelFilter, Log, Metadata, Record};

struct Capture(Mutex<Vec<(Level, String)>>);

impl Log for Capture {
    fn enabled(&self, _: &Metadata) -> bool {
        true
    }
    fn log(&self, r: &Record) {
        if r.level() == Level::Warn {
            self.0
                .lock()
                .unwrap()
                .push((r.level(), r.args().to_string()));
        }
    }
    fn flush(&self) {}
}

static LOGGER: Capture = Capture(Mutex::new(Vec::new()));

fn take() -> Vec<String> {
    std::mem::take(&mut *LOGGER.0.lock().unwrap())
        .into_iter()
        .map(|(_, m)| m)
        .collect()
}

#[test]
fn slow_callbacks_are_named_by_site_and_duration() {
    log::set_logger(&LOGGER).unwrap();
    log::set_max_level(LevelFilter::Warn);
    let mut ev = EventLoop::new().unwrap();
    assert_eq!(
        ev.slow_callback_threshold(),
        Some(Duration::from_millis(100))
    );
    ev.set_slow_callback_threshold(Some(Duration::from_millis(30)));

    // Each kind of callback, slow.
    let nap = || std::thread::sleep(Duration::from_millis(40));
    ev.call_soon(move |_| nap());
    let soon_line = line!() - 1;
    ev.set_timeout(Duration::ZERO, move |_| nap());
    let timer_line = line!() - 1;
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    drop(a); // readable at once (EOF)
    let w = ev.watch(b, Interest::READABLE, move |ev, _, _| {
        nap();
        ev.stop();
    });
    let io_line = line!() - 4;
    let h = ev.handle();
    h.call_soon(move |_| nap()).unwrap();
    let post_line = line!() - 1;
    drop(h);
    ev.call_soon(|_| {}); // fast: never reported
    ev.run().unwrap();
    ev.unwatch(w.unwrap());
    ev.run().unwrap();
    let logs = take();
    let here = file!();
    for (kind, line) in [
        ("call_soon", soon_line),
        ("timer", timer_line),
        ("io", io_line),
        ("posted", post_line),
    ] {
        let site = format!("{kind} callback created at {here}:{line}:");
        let hit = logs.iter().find(|m| m.contains(&site));
        let hit = hit.unwrap_or_else(|| panic!("no warning for {site} in {logs:#?}"));
        assert!(hit.contains("took "), "{hit}");
    }
    assert_eq!(logs.len(), 4, "only the slow ones: {logs:#?}");

    // Off: no warning, however slow.
    ev.set_slow_callback_threshold(None);
    ev.call_soon(move |_| nap());
    ev.run().unwrap();
    assert_eq!(take(), Vec::<String>::new());

    // A panicking slow callback is not reported (it did not finish), and the
    // loop goes on.
    ev.set_slow_callback_threshold(Some(Duration::ZERO));
    ev.call_soon(|_| panic!("boom"));
    assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ev.run())).is_err());
    ev.call_soon(|_| {});
    ev.run().unwrap();
    assert_eq!(take().len(), 1, "the one that finished");

    // Sites are kept only while a warning could be logged: a callback queued
    // while no logger took warnings is reported with its site unknown.
    log::set_max_level(LevelFilter::Off);
    let mut ev = EventLoop::new().unwrap();
    ev.set_slow_callback_threshold(Some(Duration::from_millis(30)));
    ev.call_soon(move |_| nap());
    log::set_max_level(LevelFilter::Warn);
    ev.run().unwrap();
    ev.call_soon(move |_| nap());
    let named_line = line!() - 1;
    ev.run().unwrap();
    let logs = take();
    assert_eq!(logs.len(), 2, "{logs:#?}");
    assert!(
        logs[0].contains("call_soon callback (site unknown)"),
        "{logs:#?}"
    );
    assert!(
        logs[1].contains(&format!("created at {here}:{named_line}:")),
        "{logs:#?}"
    );

    // Set from a callback, the threshold applies from the next pass: a pass
    // times its callbacks all or none. With a zero threshold every timed
    // callback is reported.
    let mut ev = EventLoop::new().unwrap();
    ev.set_slow_callback_threshold(None);
    ev.call_soon(|ev| {
        ev.set_slow_callback_threshold(Some(Duration::ZERO));
        ev.call_soon(|_| {}); // the next pass: reported
    });
    ev.call_soon(|_| {}); // the same pass as the setting: not timed
    ev.run().unwrap();
    let logs = take();
    assert_eq!(logs.len(), 1, "{logs:#?}");
    // Queued while sites were not kept.
    assert!(
        logs[0].contains("call_soon callback (site unknown)") && logs[0].contains("(pass 2)"),
        "{logs:#?}"
    );
}
