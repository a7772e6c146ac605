//! The timeline: an opt-in recorder of the loop's passes, polls and
//! callbacks, written as a Chrome trace-event JSON file that Perfetto
//! (ui.perfetto.dev) and `chrome://tracing` open.
//!
//! Each event is a complete event (`"ph":"X"`) with a start and a duration
//! in microseconds since the recorder started (real time, also under the
//! manual clock). A callback's event is named after its kind and creation
//! site (`timer examples/count.rs:13:5`), with the site and kind again in
//! `args`. Events are written as they end, through a buffer; the file is
//! complete (valid JSON) once the recording stops: at
//! [`EventLoop::stop_trace`](crate::EventLoop::stop_trace) or when the loop
//! is dropped.
//!
//! When off, the loop holds `None` here and pays one branch per callback.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{CallbackKind, Site};

/// A timeline being written.
pub(crate) struct Recorder {
    out: BufWriter<File>,
    path: PathBuf,
    started: Instant,
    pid: u32,
    events: u64,
    line: String,
    /// The first write error; recording stops at it.
    failed: Option<io::Error>,
}

fn micros(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1000.0
}

/// Appends `s` as a JSON string body (without quotes).
fn escape(into: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => into.push_str("\\\""),
            '\\' => into.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(into, "\\u{:04x}", c as u32);
            }
            c => into.push(c),
        }
    }
}

impl Recorder {
    /// Creates (truncates) `path` and writes the file's head.
    pub(crate) fn create(path: &Path) -> io::Result<Recorder> {
        let mut out = BufWriter::new(File::create(path)?);
        out.write_all(b"{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n")?;
        let pid = std::process::id();
        let mut rec = Recorder {
            out,
            path: path.to_path_buf(),
            started: Instant::now(),
            pid,
            events: 0,
            line: String::new(),
            failed: None,
        };
        rec.line.clear();
        let _ = write!(
            rec.line,
            "{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":{pid},\"tid\":1,\"args\":{{\"name\":\"evloop\"}}}}"
        );
        rec.flush_line();
        Ok(rec)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn flush_line(&mut self) {
        if self.failed.is_some() {
            return;
        }
        let sep: &[u8] = if self.events == 0 { b"" } else { b",\n" };
        let result = self
            .out
            .write_all(sep)
            .and_then(|()| self.out.write_all(self.line.as_bytes()));
        match result {
            Ok(()) => self.events += 1,
            Err(e) => {
                log::warn!(
                    "evloop: timeline {}: {e}; recording stopped",
                    self.path.display()
                );
                self.failed = Some(e);
            }
        }
    }

    fn complete(&mut self, name: &str, cat: &str, at: Instant, dur: Duration, site: Option<Site>) {
        if self.failed.is_some() {
            return;
        }
        let ts = micros(at.saturating_duration_since(self.started));
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        line.push_str("{\"name\":\"");
        escape(&mut line, name);
        if let Some(site) = site {
            line.push(' ');
            escape(&mut line, site.file());
            let _ = write!(line, ":{}:{}", site.line(), site.column());
        }
        let _ = write!(
            line,
            "\",\"cat\":\"{cat}\",\"ph\":\"X\",\"ts\":{ts:.3},\"dur\":{:.3},\"pid\":{},\"tid\":1",
            micros(dur),
            self.pid
        );
        if let Some(site) = site {
            line.push_str(",\"args\":{\"site\":\"");
            escape(&mut line, site.file());
            let _ = write!(
                line,
                ":{}:{}\",\"kind\":\"{cat}\"}}",
                site.line(),
                site.column()
            );
        }
        line.push('}');
        self.line = line;
        self.flush_line();
    }

    /// A callback that ran from `at` for `dur`.
    pub(crate) fn callback(
        &mut self,
        kind: CallbackKind,
        site: Option<Site>,
        at: Instant,
        dur: Duration,
    ) {
        self.complete(kind.name(), kind.name(), at, dur, site);
    }

    /// A pass of the loop.
    pub(crate) fn pass(&mut self, number: u64, at: Instant, dur: Duration) {
        let name = format!("pass {number}");
        self.complete(&name, "pass", at, dur, None);
    }

    /// Time blocked in the poller.
    pub(crate) fn poll(&mut self, at: Instant, dur: Duration) {
        self.complete("poll", "poll", at, dur, None);
    }

    /// Writes the tail and flushes: the file is complete JSON.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        self.out.write_all(b"\n]}\n")?;
        self.out.flush()
    }
}
