//! The timeline: a Chrome trace-event JSON file of passes, polls and
//! callbacks with their creation sites. The file is parsed here with a small
//! JSON parser (the format's whole grammar, so a malformed file fails).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use evloop::EventLoop;

#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(BTreeMap<String, Json>),
}

impl Json {
    fn get(&self, k: &str) -> Option<&Json> {
        match self {
            Json::Obj(m) => m.get(k),
            _ => None,
        }
    }
    fn str(&self, k: &str) -> Option<&str> {
        match self.get(k) {
            Some(Json::Str(s)) => Some(s),
            _ => None,
        }
    }
    fn num(&self, k: &str) -> Option<f64> {
        match self.get(k) {
            Some(Json::Num(n)) => Some(*n),
            _ => None,
        }
    }
}

fn parse(text: &str) -> Json {
    let b = text.as_bytes();
    let mut i = 0;
    let v = value(b, &mut i);
    ws(b, &mut i);
    assert_eq!(i, b.len(), "trailing bytes after the JSON value");
    v
}

fn ws(b: &[u8], i: &mut usize) {
    while *i < b.len() && b" \t\r\n".contains(&b[*i]) {
        *i += 1;
    }
}

fn value(b: &[u8], i: &mut usize) -> Json {
    ws(b, i);
    match b[*i] {
        b'{' => {
            *i += 1;
            let mut m = BTreeMap::new();
            ws(b, i);
            if b[*i] == b'}' {
                *i += 1;
                return Json::Obj(m);
            }
            loop {
                ws(b, i);
                let Json::Str(k) = value(b, i) else {
                    panic!("object key at {i}")
                };
                ws(b, i);
                assert_eq!(b[*i], b':', "':' at {i}");
                *i += 1;
                m.insert(k, value(b, i));
                ws(b, i);
                *i += 1;
                match b[*i - 1] {
                    b',' => continue,
                    b'}' => return Json::Obj(m),
                    c => panic!("unexpected {:?} at {i}", c as char),
                }
            }
        }
        b'[' => {
            *i += 1;
            let mut v = Vec::new();
            ws(b, i);
            if b[*i] == b']' {
                *i += 1;
                return Json::Arr(v);
            }
            loop {
                v.push(value(b, i));
                ws(b, i);
                *i += 1;
                match b[*i - 1] {
                    b',' => continue,
                    b']' => return Json::Arr(v),
                    c => panic!("unexpected {:?} at {i}", c as char),
                }
            }
        }
        b'"' => {
            *i += 1;
            let mut s = String::new();
            loop {
                let c = b[*i];
                *i += 1;
                match c {
                    b'"' => return Json::Str(s),
                    b'\\' => {
                        let e = b[*i];
                        *i += 1;
                        match e {
                            b'"' | b'\\' | b'/' => s.push(e as char),
                            b'n' => s.push('\n'),
                            b't' => s.push('\t'),
                            b'r' => s.push('\r'),
                            b'b' => s.push('\u{8}'),
                            b'f' => s.push('\u{c}'),
                            b'u' => {
                                let hex = std::str::from_utf8(&b[*i..*i + 4]).unwrap();
                                s.push(
                                    char::from_u32(u32::from_str_radix(hex, 16).unwrap()).unwrap(),
                                );
                                *i += 4;
                            }
                            _ => panic!("bad escape at {i}"),
                        }
                    }
                    c if c < 0x20 => panic!("control character in a string at {i}"),
                    _ => {
                        // Copy one UTF-8 sequence.
                        let start = *i - 1;
                        while *i < b.len() && (b[*i] & 0xC0) == 0x80 {
                            *i += 1;
                        }
                        s.push_str(std::str::from_utf8(&b[start..*i]).unwrap());
                    }
                }
            }
        }
        b't' => lit(b, i, "true", Json::Bool(true)),
        b'f' => lit(b, i, "false", Json::Bool(false)),
        b'n' => lit(b, i, "null", Json::Null),
        _ => {
            let start = *i;
            while *i < b.len() && b"+-0123456789.eE".contains(&b[*i]) {
                *i += 1;
            }
            let t = std::str::from_utf8(&b[start..*i]).unwrap();
            Json::Num(
                t.parse()
                    .unwrap_or_else(|_| panic!("bad number {t:?} at {start}")),
            )
        }
    }
}

fn lit(b: &[u8], i: &mut usize, word: &str, v: Json) -> Json {
    assert!(b[*i..].starts_with(word.as_bytes()), "bad literal at {i}");
    *i += word.len();
    v
}

fn events(path: &std::path::Path) -> Vec<Json> {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = parse(&text);
    match doc.get("traceEvents") {
        Some(Json::Arr(v)) => v.clone(),
        _ => panic!("no traceEvents array"),
    }
}

/// The recording's one `call_soon` event, made at `line` of this file.
fn only_call_soon_event(events: &[Json], line: u32) -> &Json {
    let soon: Vec<_> = events
        .iter()
        .filter(|e| e.str("cat") == Some("call_soon"))
        .collect();
    assert_eq!(soon.len(), 1, "{events:#?}");
    let site = format!("{}:{line}:", file!());
    let name = soon[0].str("name").unwrap();
    assert!(name.contains(&site), "{:?}", soon[0]);
    soon[0]
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("evloop-{}-{name}", std::process::id()))
}

#[test]
fn the_count_example_shows_three_ones_at_0s_and_three_twos_at_1s() {
    let path = temp("count.json");
    let out = Command::new(common::example_path("count"))
        .env("EVLOOP_TRACE", &path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = events(&path);
    std::fs::remove_file(&path).unwrap();
    let at = |cat: &str| -> Vec<f64> {
        events
            .iter()
            .filter(|e| e.str("ph") == Some("X") && e.str("cat") == Some(cat))
            .filter(|e| {
                let site = e.get("args").and_then(|a| a.str("site")).unwrap_or("");
                site.starts_with("examples/count.rs:")
            })
            .map(|e| e.num("ts").unwrap() / 1e6)
            .collect()
    };
    // "One": the three counts, each a call_soon task; "Two": their timers.
    let ones = at("call_soon");
    let twos = at("timer");
    assert_eq!(ones.len(), 3, "{events:#?}");
    assert_eq!(twos.len(), 3, "{events:#?}");
    for t in &ones {
        assert!((0.0..0.5).contains(t), "One at {t} s");
    }
    for t in &twos {
        assert!((0.99..2.0).contains(t), "Two at {t} s");
    }
    assert!(events.iter().any(|e| e.str("cat") == Some("pass")));
    assert!(
        events.iter().any(|e| e.str("name") == Some("poll")),
        "the one-second wait"
    );
}

#[test]
fn start_and_stop_record_callbacks_with_sites_and_durations() {
    let path = temp("direct.json");
    let mut ev = EventLoop::new().unwrap();
    assert!(!ev.is_tracing());
    assert!(!ev.stop_trace().unwrap(), "nothing to stop");
    ev.start_trace(&path).unwrap();
    assert!(ev.is_tracing());
    let again = ev.start_trace(&path).unwrap_err();
    assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists);
    ev.call_soon(|_| std::thread::sleep(Duration::from_millis(20)));
    let line = line!() - 1;
    ev.set_timeout(Duration::from_millis(1), |_| {});
    ev.run().unwrap();
    assert!(ev.stop_trace().unwrap());
    assert!(!ev.is_tracing());
    ev.call_soon(|_| {}); // not recorded: the recording stopped
    ev.run().unwrap();
    let events = events(&path);
    std::fs::remove_file(&path).unwrap();
    let soon = only_call_soon_event(&events, line);
    assert!(
        soon.num("dur").unwrap() >= 20_000.0,
        "microseconds: {soon:?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e.str("cat") == Some("timer"))
            .count(),
        1
    );
}

#[test]
fn a_file_that_cannot_be_created_is_an_error_and_the_loop_runs_on() {
    let mut ev = EventLoop::new().unwrap();
    let e = ev
        .start_trace("/nonexistent-dir/evloop/trace.json")
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    assert!(!ev.is_tracing());
    ev.call_soon(|_| {});
    ev.run().unwrap();
}

#[test]
fn dropping_the_loop_completes_the_file_and_a_panicking_callback_is_survived() {
    let path = temp("drop.json");
    let mut ev = EventLoop::new().unwrap();
    ev.start_trace(&path).unwrap();
    ev.call_soon(|_| panic!("boom"));
    ev.call_soon(|_| {});
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ev.run()));
    ev.run().unwrap();
    drop(ev);
    let events = events(&path);
    std::fs::remove_file(&path).unwrap();
    // The panicking callback left no event; the other one did.
    assert_eq!(
        events
            .iter()
            .filter(|e| e.str("cat") == Some("call_soon"))
            .count(),
        1
    );
}

/// A chain of `call_soon` runs as light passes, which the timeline cannot
/// see; a link that starts a recording makes the loop record the passes
/// after it in full, each link with its pass.
#[test]
fn a_recording_started_by_a_link_of_a_chain_records_every_later_pass() {
    fn link(ev: &mut EventLoop, n: u64, path: &'static Path) {
        if n == 3 {
            ev.start_trace(path).unwrap();
        }
        if n < 6 {
            ev.call_soon(move |ev| link(ev, n + 1, path));
        }
    }
    let path: &'static Path = Box::leak(temp("chain.json").into_boxed_path());
    let mut ev = EventLoop::new().unwrap();
    ev.call_soon(move |ev| link(ev, 1, path));
    ev.run().unwrap();
    assert_eq!(ev.iterations(), 6, "one pass per link");
    assert!(ev.stop_trace().unwrap());
    let events = events(path);
    std::fs::remove_file(path).unwrap();
    let names = |cat: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e.str("cat") == Some(cat))
            .map(|e| e.str("name").unwrap().to_string())
            .collect()
    };
    assert_eq!(names("pass"), ["pass 4", "pass 5", "pass 6"], "{events:#?}");
    assert_eq!(names("call_soon").len(), 3, "links 4 to 6: {events:#?}");
}

/// A recording started by the last pass of a `run`: what is queued before
/// the next `run` is recorded with its creation site. Also when the callback
/// that started it then panicked out of `run`.
#[test]
fn a_recording_started_by_the_last_callback_of_a_run_names_later_sites() {
    last_callback_starts_recording(false);
    last_callback_starts_recording(true);
}

fn last_callback_starts_recording(then_panic: bool) {
    let name = format!("last-{then_panic}.json");
    let path: &'static Path = Box::leak(temp(&name).into_boxed_path());
    let mut ev = EventLoop::new().unwrap();
    ev.call_soon(move |ev| {
        ev.start_trace(path).unwrap();
        if then_panic {
            panic!("after start_trace");
        }
    });
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ev.run()));
    assert_eq!(ran.is_err(), then_panic);
    assert!(ev.is_tracing());
    ev.call_soon(|_| {});
    let line = line!() - 1;
    ev.run().unwrap();
    assert!(ev.stop_trace().unwrap());
    let events = events(path);
    std::fs::remove_file(path).unwrap();
    only_call_soon_event(&events, line);
}
