//! The loop logs through `log`: trace per pass, debug per registration,
//! warn for callbacks that keep the loop from polling.

use std::sync::Mutex;
use std::time::Duration;

use evloop::EventLoop;
use log::{Level, LevelFilter, Log, Metadata, Record};

struct Capture(Mutex<Vec<(Level, String)>>);

impl Log for Capture {
    fn enabled(&self, _: &Metadata) -> bool {
        true
    }
    fn log(&self, record: &Record) {
        if record.target().starts_with("evloop") {
            self.0
                .lock()
                .unwrap()
                .push((record.level(), record.args().to_string()));
        }
    }
    fn flush(&self) {}
}

static LOGGER: Capture = Capture(Mutex::new(Vec::new()));

#[test]
fn passes_registrations_and_slow_callbacks_are_logged() {
    log::set_logger(&LOGGER).unwrap();
    log::set_max_level(LevelFilter::Trace);
    let mut ev = EventLoop::new().unwrap();
    ev.set_timeout(Duration::from_millis(1), |_| {
        std::thread::sleep(Duration::from_millis(150))
    });
    ev.run().unwrap();
    let logs = LOGGER.0.lock().unwrap();
    let has = |level: Level, text: &str| logs.iter().any(|(l, m)| *l == level && m.contains(text));
    assert!(
        has(Level::Debug, "evloop: timeout"),
        "registration: {logs:?}"
    );
    assert!(has(Level::Trace, "evloop: pass 1 "), "each pass: {logs:?}");
    assert!(
        has(Level::Trace, "evloop: run timeout"),
        "each dispatch: {logs:?}"
    );
    assert!(has(Level::Warn, "took"), "slow callbacks: {logs:?}");
}
