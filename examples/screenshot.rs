//! The seed's screenshot example: pyppeteer's "launch a browser, open a
//! page, go to a URL, take a screenshot, close", each step an asynchronous
//! task, here in callback style on one evloop loop with no async runtime.
//!
//!     cargo run --example screenshot -- OUT.png [URL] [WIDTHxHEIGHT]
//!
//! Without a URL it serves its own page from a small HTTP server on
//! 127.0.0.1 in the same loop: a picture of the count example's output (three
//! counts print "One" at once and "Two" a second later).
//!
//! Debian's Chromium (`apt-get install chromium`) runs headless with
//! `--remote-debugging-pipe`: it reads DevTools protocol commands from its fd 3
//! and writes replies and events to its fd 4, JSON messages each ended by a
//! NUL byte. Both pipe ends are evloop [`Pipe`] streams; every command is a
//! write plus a callback for its reply. Each step has a timeout and prints
//! how long it took. The steps, as in pyppeteer:
//!
//! | pyppeteer                          | here (function: DevTools calls)                          |
//! |------------------------------------|----------------------------------------------------------|
//! | `browser = await launch()`         | `launch`: spawn, `Browser.getVersion`                    |
//! | `page = await browser.newPage()`   | `new_page`: `Target.createTarget`, `Target.attachToTarget` |
//! | `await page.setViewport(...)`      | `set_viewport`: `Emulation.setDeviceMetricsOverride`     |
//! | `await page.goto(url)`             | `goto`: `Page.enable`, `Page.navigate`, `Page.loadEventFired` |
//! | `await page.screenshot(path=...)`  | `screenshot`: `Page.captureScreenshot`, `fs::write_file` |
//! | `await browser.close()`            | `close`: `Browser.close`, then the exit callback         |
//!
//! Errors: no Chromium on the machine says how to install it and exits with
//! 2; a browser that crashes, hangs past a step's timeout, sends something
//! that is not JSON or answers with a protocol error ends the run with an
//! error naming the step, exit code 1. The browser never outlives the
//! example: it runs in its own process group (started through `setsid`),
//! and every way out kills that whole group (Chromium's helper processes
//! too) and the crash handler that leaves it, and waits until they are gone
//! before the loop ends. SIGINT and SIGTERM end the run the same way. The
//! fresh `--user-data-dir` is removed at the end. (Only a SIGKILL of the
//! example itself skips all this; Chromium then sees its pipe close and
//! quits by itself, in about 2 s here.)
//!
//! Environment, for tests and other browsers: `SCREENSHOT_BROWSER` (program
//! to run instead of `chromium`), `SCREENSHOT_STEP_TIMEOUT_MS` (per-step
//! timeout, default 20000).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, ExitStatus};
use std::rc::Rc;
use std::time::{Duration, Instant};

use base64::Engine;
use evloop::net::{tcp, Pipe, TcpServer};
use evloop::process::{self, Child, Command, Stdio};
use evloop::signal;
use evloop::{fs, EventLoop, TimerId};
use serde_json::{json, Value};

const USAGE: &str = "usage: screenshot OUT.png [URL] [WIDTHxHEIGHT]";
const DEFAULT_SIZE: (u32, u32) = (800, 600);
const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(20);
/// Lines of the browser's stderr kept to show when it fails.
const STDERR_TAIL: usize = 15;
/// How long to wait for killed processes to be gone.
const SWEEP_FOR: Duration = Duration::from_secs(3);

/// What to capture, and where to put it.
struct Job {
    out: PathBuf,
    url: String,
    width: u32,
    height: u32,
}

// ---------------------------------------------------------------------------
// The steps. Each one starts DevTools calls and names the next step in its
// last callback; an error or a timeout in any of them goes to
// `Browser::fail`, which ends the run.

/// `browser = await launch()`: spawn Chromium (done by `Browser::spawn`),
/// then ask for its version: the first answer means it is up and speaking
/// the protocol.
fn launch(ev: &mut EventLoop, b: &Browser, job: Rc<Job>) {
    let (method, params) = ("Browser.getVersion", json!({}));
    b.call(ev, "launch", method, params, move |ev, b, version| {
        println!("browser: {}", version["product"].as_str().unwrap_or("?"));
        new_page(ev, b, job);
    });
}

/// `page = await browser.newPage()`: a new tab, and a session attached to it
/// (flat mode: the page's messages carry its `sessionId`).
fn new_page(ev: &mut EventLoop, b: &Browser, job: Rc<Job>) {
    let (method, params) = ("Target.createTarget", json!({"url": "about:blank"}));
    b.call(ev, "create target", method, params, move |ev, b, target| {
        let Some(target_id) = b.field(ev, &target, "targetId") else {
            return;
        };
        let method = "Target.attachToTarget";
        let params = json!({"targetId": target_id, "flatten": true});
        b.call(ev, "attach", method, params, move |ev, b, attached| {
            let Some(session) = b.field(ev, &attached, "sessionId") else {
                return;
            };
            let page = Page {
                browser: b.clone(),
                session: session.into(),
            };
            set_viewport(ev, &page, job);
        });
    });
}

/// `await page.setViewport({'width': w, 'height': h})`.
fn set_viewport(ev: &mut EventLoop, page: &Page, job: Rc<Job>) {
    let method = "Emulation.setDeviceMetricsOverride";
    let params = json!({
        "width": job.width, "height": job.height, "deviceScaleFactor": 1, "mobile": false,
    });
    page.call(ev, "set viewport", method, params, move |ev, page, _| {
        goto(ev, page, job);
    });
}

/// `await page.goto(url)`: navigate, then wait for the page's load event.
fn goto(ev: &mut EventLoop, page: &Page, job: Rc<Job>) {
    let (method, params) = ("Page.enable", json!({}));
    page.call(ev, "enable events", method, params, move |ev, page, _| {
        // A load event from here on is the new page's.
        page.browser.forget_events();
        let (method, params) = ("Page.navigate", json!({"url": job.url}));
        page.call(ev, "navigate", method, params, move |ev, page, nav| {
            if let Some(error) = nav["errorText"].as_str() {
                return page.browser.fail(ev, format!("{}: {error}", job.url));
            }
            page.wait_event(ev, "load event", "Page.loadEventFired", move |ev, page| {
                screenshot(ev, page, job);
            });
        });
    });
}

/// `await page.screenshot({'path': out})`: capture a PNG, write it (on the
/// loop's thread pool, atomically).
fn screenshot(ev: &mut EventLoop, page: &Page, job: Rc<Job>) {
    let (method, params) = ("Page.captureScreenshot", json!({"format": "png"}));
    page.call(ev, "capture PNG", method, params, move |ev, page, shot| {
        let b = &page.browser;
        let Some(data) = b.field(ev, &shot, "data") else {
            return;
        };
        let png = match base64::engine::general_purpose::STANDARD.decode(data) {
            Ok(png) => png,
            Err(e) => return b.fail(ev, format!("the PNG is not valid base64: {e}")),
        };
        let len = png.len();
        let out = job.out.clone();
        b.write_file(ev, "write PNG", &out, png, move |ev, b| {
            println!(
                "wrote {} ({}x{}, {len} bytes)",
                job.out.display(),
                job.width,
                job.height
            );
            close(ev, b);
        });
    });
}

/// `await browser.close()`: ask the browser to quit; the step ends when its
/// exit callback ran.
fn close(ev: &mut EventLoop, b: &Browser) {
    b.close(ev, "close browser");
}

// ---------------------------------------------------------------------------
// The browser: its process, the two protocol pipes, the step in progress.

/// What the current step waits for.
enum Waiting {
    Nothing,
    Reply(u64, Then),
    Event(&'static str, Then),
    Exit,
}

type Then = Box<dyn FnOnce(&mut EventLoop, &Browser, Value)>;
type OnEnd = Box<dyn FnOnce(&mut EventLoop)>;

struct Step {
    name: &'static str,
    started: Instant,
    timer: TimerId,
}

struct Inner {
    child: Child,
    /// Commands to the browser's fd 3.
    commands: Pipe,
    /// Replies and events from the browser's fd 4.
    replies: Pipe,
    stderr: Option<Pipe>,
    stderr_tail: VecDeque<String>,
    next_id: u64,
    step: Option<Step>,
    /// The step in progress, or the last one (a failure in the code between
    /// two steps belongs to the one that just ended).
    step_name: &'static str,
    waiting: Waiting,
    /// Events seen since `forget_events`.
    events: Vec<String>,
    step_timeout: Duration,
    /// `Some(true)` once closed cleanly, `Some(false)` once failed.
    outcome: Option<bool>,
    exit: Option<ExitStatus>,
    /// After a kill: stops the loop if the exit never comes.
    exit_deadline: Option<TimerId>,
    /// Runs once, when the browser is gone.
    on_end: Option<OnEnd>,
    /// The browser's `--user-data-dir`.
    profile: PathBuf,
}

impl Inner {
    /// SIGKILL to the browser and its process group; the exit callback
    /// follows. The browser itself first: right after the spawn, `setsid`
    /// may not have made the group yet (the group kill then finds no one).
    /// Not reaped yet, so neither its pid nor its group id can name anyone
    /// else.
    fn kill(&self) {
        let _ = self.child.kill(libc::SIGKILL);
        os::kill_group(self.child.id());
    }
}

/// A tab the browser has a session with: its commands carry the session id.
#[derive(Clone)]
struct Page {
    browser: Browser,
    session: Rc<str>,
}

impl Page {
    /// As `Browser::call`, in this page's session.
    fn call(
        &self,
        ev: &mut EventLoop,
        step: &'static str,
        method: &str,
        params: Value,
        then: impl FnOnce(&mut EventLoop, &Page, Value) + 'static,
    ) {
        let page = self.clone();
        let session = Some(&*self.session);
        self.browser
            .call_in(ev, session, step, method, params, move |ev, _, result| {
                then(ev, &page, result)
            });
    }

    /// As `Browser::wait_event`.
    fn wait_event(
        &self,
        ev: &mut EventLoop,
        step: &'static str,
        method: &'static str,
        then: impl FnOnce(&mut EventLoop, &Page) + 'static,
    ) {
        let page = self.clone();
        self.browser
            .wait_event(ev, step, method, move |ev, _, _| then(ev, &page));
    }
}

/// A running browser. Clones share it.
#[derive(Clone)]
struct Browser(Rc<RefCell<Inner>>);

impl Browser {
    /// Spawns the browser in its own process group, its fds 3 and 4 wired
    /// to two pipes of ours.
    fn spawn(
        ev: &mut EventLoop,
        program: &Path,
        profile: &Path,
        step_timeout: Duration,
        on_end: impl FnOnce(&mut EventLoop) + 'static,
    ) -> io::Result<Browser> {
        // The browser's ends stay blocking (Chromium reads them with blocking
        // calls on a thread of its own); ours become non-blocking streams.
        let (to_browser_r, to_browser_w) = os::pipe()?;
        let (from_browser_r, from_browser_w) = os::pipe()?;
        let mut cmd = Command::new("setsid");
        // Chromium's crash handler daemonizes itself, leaving our process
        // group; with its database in the profile, its command line names
        // the profile and `sweep` can find it.
        cmd.env("XDG_CONFIG_HOME", profile)
            .env("XDG_CACHE_HOME", profile)
            .arg(program)
            .args(chromium_flags(profile))
            .stdin(Stdio::Null)
            .stdout(Stdio::Null)
            .stderr(Stdio::Pipe)
            .fd(3, to_browser_r)
            .fd(4, from_browser_w);
        let cell: Rc<RefCell<Option<Browser>>> = Rc::new(RefCell::new(None));
        let c = cell.clone();
        let mut child = process::spawn(ev, cmd, move |ev, status| {
            if let Some(b) = c.borrow_mut().take() {
                b.exited(ev, status);
            }
        })?;
        println!("browser pid {}, profile {}", child.id(), profile.display());
        let stderr = child.stderr.take();
        let b = Browser(Rc::new(RefCell::new(Inner {
            child,
            commands: Pipe::open(to_browser_w)?,
            replies: Pipe::open(from_browser_r)?,
            stderr: stderr.clone(),
            stderr_tail: VecDeque::new(),
            next_id: 1,
            step: None,
            step_name: "launch",
            waiting: Waiting::Nothing,
            events: Vec::new(),
            step_timeout,
            outcome: None,
            exit: None,
            exit_deadline: None,
            on_end: Some(Box::new(on_end)),
            profile: profile.to_path_buf(),
        })));
        *cell.borrow_mut() = Some(b.clone());
        if let Err(e) = b.start_reading(ev, stderr) {
            b.fail(ev, format!("reading the browser's pipes: {e}"));
        }
        Ok(b)
    }

    fn start_reading(&self, ev: &mut EventLoop, stderr: Option<Pipe>) -> io::Result<()> {
        let replies = self.0.borrow().replies.clone();
        let b = self.clone();
        replies.read_start_into(ev, Vec::new(), move |ev, _, buf, n| match n {
            // The pipe closed: the browser is exiting; its exit callback
            // (or the step's timeout) tells the rest.
            Ok(0) => {}
            Ok(_) => {
                while let Some(end) = buf.iter().position(|&c| c == 0) {
                    let message: Vec<u8> = buf.drain(..=end).collect();
                    match serde_json::from_slice(&message[..end]) {
                        Ok(message) => b.on_message(ev, message),
                        Err(e) => {
                            let text = String::from_utf8_lossy(&message[..end.min(200)]);
                            return b.fail(ev, format!("the browser sent {text:?}, not JSON: {e}"));
                        }
                    }
                }
            }
            Err(e) => b.fail(ev, format!("reading the browser's replies: {e}")),
        })?;
        if let Some(stderr) = stderr {
            // Chromium's chatter is kept only to explain a failure, and does
            // not keep the loop alive: the exit callback does.
            stderr.set_ref(ev, false)?;
            let b = self.clone();
            let mut partial = Vec::new();
            stderr.read_start(ev, move |ev, stderr, data| match data {
                Ok([]) | Err(_) => {
                    stderr.close(ev);
                }
                Ok(bytes) => {
                    partial.extend_from_slice(bytes);
                    while let Some(end) = partial.iter().position(|&c| c == b'\n') {
                        let line: Vec<u8> = partial.drain(..=end).collect();
                        let line = String::from_utf8_lossy(&line).trim_end().to_string();
                        if line.contains(":ERROR:dbus/") {
                            continue; // no D-Bus in a container: noise
                        }
                        let mut s = b.0.borrow_mut();
                        if s.stderr_tail.len() == STDERR_TAIL {
                            s.stderr_tail.pop_front();
                        }
                        s.stderr_tail.push_back(line);
                    }
                }
            })?;
        }
        Ok(())
    }

    /// Starts step `step`: sends the browser-wide command `method` and
    /// calls `then` with the reply's `result`. A protocol error, a timeout
    /// or a dead browser fails the step instead.
    fn call(
        &self,
        ev: &mut EventLoop,
        step: &'static str,
        method: &str,
        params: Value,
        then: impl FnOnce(&mut EventLoop, &Browser, Value) + 'static,
    ) {
        self.call_in(ev, None, step, method, params, then);
    }

    /// As `call`, in a page's session if one is given.
    fn call_in(
        &self,
        ev: &mut EventLoop,
        session: Option<&str>,
        step: &'static str,
        method: &str,
        params: Value,
        then: impl FnOnce(&mut EventLoop, &Browser, Value) + 'static,
    ) {
        if !self.begin(ev, step) {
            return;
        }
        let id = self.send(ev, method, params, session);
        let mut s = self.0.borrow_mut();
        if s.outcome.is_none() {
            s.waiting = Waiting::Reply(id, Box::new(then));
        }
    }

    /// Sends one command, returns its id.
    fn send(&self, ev: &mut EventLoop, method: &str, params: Value, session: Option<&str>) -> u64 {
        let (id, commands) = {
            let mut s = self.0.borrow_mut();
            s.next_id += 1;
            (s.next_id - 1, s.commands.clone())
        };
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = session.into();
        }
        let mut bytes = message.to_string().into_bytes();
        bytes.push(0);
        if let Err(e) = commands.write(ev, bytes) {
            self.fail(ev, format!("sending {method}: {e}"));
        }
        id
    }

    /// Starts step `step`: waits for the event `method` (at once if it came
    /// since `forget_events`).
    fn wait_event(
        &self,
        ev: &mut EventLoop,
        step: &'static str,
        method: &'static str,
        then: impl FnOnce(&mut EventLoop, &Browser, Value) + 'static,
    ) {
        if !self.begin(ev, step) {
            return;
        }
        if self.0.borrow().events.iter().any(|m| m == method) {
            self.end_step(ev);
            then(ev, self, Value::Null);
        } else {
            self.0.borrow_mut().waiting = Waiting::Event(method, Box::new(then));
        }
    }

    fn forget_events(&self) {
        self.0.borrow_mut().events.clear();
    }

    /// Starts step `step`: writes `data` to `path` on the pool.
    fn write_file(
        &self,
        ev: &mut EventLoop,
        step: &'static str,
        path: &Path,
        data: Vec<u8>,
        then: impl FnOnce(&mut EventLoop, &Browser) + 'static,
    ) {
        if !self.begin(ev, step) {
            return;
        }
        let b = self.clone();
        let path_shown = path.display().to_string();
        let started = fs::write_file(ev, path, data, move |ev, written| match written {
            Ok(()) if b.0.borrow().outcome.is_none() => {
                b.end_step(ev);
                then(ev, &b);
            }
            Ok(()) => {}
            Err(e) => b.fail(ev, format!("{path_shown}: {e}")),
        });
        if let Err(e) = started {
            self.fail(ev, format!("{}: {e}", path.display()));
        }
    }

    /// Starts the last step: `Browser.close`; it ends when the browser did.
    fn close(&self, ev: &mut EventLoop, step: &'static str) {
        if !self.begin(ev, step) {
            return;
        }
        self.0.borrow_mut().waiting = Waiting::Exit;
        self.send(ev, "Browser.close", json!({}), None);
    }

    /// The string `key` of a reply, or fails the step.
    fn field(&self, ev: &mut EventLoop, reply: &Value, key: &str) -> Option<String> {
        let value = reply[key].as_str().map(str::to_string);
        if value.is_none() {
            self.fail(ev, format!("the reply has no {key:?}: {reply}"));
        }
        value
    }

    /// Notes the start of a step and arms its timeout. False if the run
    /// already ended.
    fn begin(&self, ev: &mut EventLoop, name: &'static str) -> bool {
        let timeout = {
            let s = self.0.borrow();
            if s.outcome.is_some() {
                return false;
            }
            s.step_timeout
        };
        let b = self.clone();
        let timer = ev.set_timeout(timeout, move |ev| {
            b.fail(
                ev,
                format!("no answer within {:.1} s", timeout.as_secs_f64()),
            );
        });
        let old = {
            let mut s = self.0.borrow_mut();
            s.step_name = name;
            s.step.replace(Step {
                name,
                started: Instant::now(),
                timer,
            })
        };
        if let Some(old) = old {
            ev.clear_timer(old.timer);
        }
        true
    }

    /// Ends the current step: clears its timeout, prints its duration.
    fn end_step(&self, ev: &mut EventLoop) {
        let step = self.0.borrow_mut().step.take();
        if let Some(step) = step {
            ev.clear_timer(step.timer);
            let ms = step.started.elapsed().as_secs_f64() * 1e3;
            println!("  {:<20}{ms:>9.1} ms", step.name);
        }
    }

    fn on_message(&self, ev: &mut EventLoop, message: Value) {
        if let Some(id) = message["id"].as_u64() {
            let then = {
                let mut s = self.0.borrow_mut();
                match std::mem::replace(&mut s.waiting, Waiting::Nothing) {
                    Waiting::Reply(want, then) if want == id => then,
                    other => {
                        s.waiting = other; // a reply nobody waits for (Browser.close's)
                        return;
                    }
                }
            };
            if let Some(error) = message.get("error") {
                let code = error["code"].as_i64().unwrap_or(0);
                let text = error["message"].as_str().unwrap_or("(no message)");
                return self.fail(ev, format!("protocol error {code}: {text}"));
            }
            self.end_step(ev);
            then(ev, self, message["result"].clone());
        } else if let Some(method) = message["method"].as_str() {
            if matches!(method, "Inspector.targetCrashed" | "Target.targetCrashed") {
                return self.fail(ev, "the page crashed".to_string());
            }
            let then = {
                let mut s = self.0.borrow_mut();
                s.events.push(method.to_string());
                match std::mem::replace(&mut s.waiting, Waiting::Nothing) {
                    Waiting::Event(want, then) if want == method => then,
                    other => {
                        s.waiting = other;
                        return;
                    }
                }
            };
            self.end_step(ev);
            then(ev, self, message["params"].clone());
        }
    }

    /// Ends the run with an error naming the step: kills the browser's
    /// process group; the loop ends once its exit callback ran.
    fn fail(&self, ev: &mut EventLoop, error: String) {
        let (step, name) = {
            let mut s = self.0.borrow_mut();
            if s.outcome.is_some() {
                return;
            }
            s.outcome = Some(false);
            s.waiting = Waiting::Nothing;
            (s.step.take(), s.step_name)
        };
        if let Some(step) = step {
            ev.clear_timer(step.timer);
        }
        eprintln!("screenshot: step '{name}' failed: {error}");
        let tail: Vec<String> = self.0.borrow().stderr_tail.iter().cloned().collect();
        if !tail.is_empty() {
            eprintln!("screenshot: the browser's last stderr lines:");
            for line in tail {
                eprintln!("    {line}");
            }
        }
        let (commands, replies, exited) = {
            let s = self.0.borrow();
            (s.commands.clone(), s.replies.clone(), s.exit.is_some())
        };
        commands.close(ev);
        replies.close(ev);
        if exited {
            self.finish(ev);
        } else {
            self.0.borrow().kill();
            // SIGKILL cannot be caught, but a process stuck in the kernel
            // can take its time: do not wait forever.
            let timer = ev.set_timeout(SWEEP_FOR, |ev| {
                eprintln!("screenshot: the browser did not exit after SIGKILL; giving up");
                ev.stop();
            });
            self.0.borrow_mut().exit_deadline = Some(timer);
        }
    }

    /// The exit callback.
    fn exited(&self, ev: &mut EventLoop, status: ExitStatus) {
        let (outcome, closing, deadline) = {
            let mut s = self.0.borrow_mut();
            s.exit = Some(status);
            (
                s.outcome,
                matches!(s.waiting, Waiting::Exit),
                s.exit_deadline.take(),
            )
        };
        if let Some(timer) = deadline {
            ev.clear_timer(timer);
        }
        match outcome {
            None if closing => {
                self.end_step(ev);
                self.0.borrow_mut().outcome = Some(true);
                self.finish(ev);
            }
            None => {
                // Let the loop read what the browser wrote before it died
                // (its last replies, its stderr) first: a queued callback
                // runs after the loop looked at IO again.
                let b = self.clone();
                ev.call_soon(move |ev| b.fail(ev, format!("the browser exited ({status})")));
            }
            Some(_) => self.finish(ev),
        }
    }

    /// The browser exited: kills what is left of its group (helpers that
    /// outlived it), closes every pipe, runs `on_end` once.
    fn finish(&self, ev: &mut EventLoop) {
        let on_end = {
            let mut s = self.0.borrow_mut();
            // The leader is reaped; while any of its group lives, the group
            // id cannot be handed to anyone else.
            os::kill_group(s.child.id());
            s.on_end.take()
        };
        let Some(on_end) = on_end else { return };
        let pipes = {
            let s = self.0.borrow();
            [
                Some(s.commands.clone()),
                Some(s.replies.clone()),
                s.stderr.clone(),
            ]
        };
        for pipe in pipes.into_iter().flatten() {
            pipe.close(ev);
        }
        let (pgid, profile) = {
            let s = self.0.borrow();
            (s.child.id(), s.profile.clone())
        };
        sweep(ev, pgid, profile, Instant::now() + SWEEP_FOR, on_end);
    }

    fn succeeded(&self) -> bool {
        self.0.borrow().outcome == Some(true)
    }
}

/// Kills what is left of the browser and waits until it is gone: the live
/// processes of its group (SIGKILL takes effect asynchronously) and those
/// outside it that name its profile (the crash handler daemonizes itself and
/// outlives the browser by seconds). Checks every 10 ms, for `SWEEP_FOR` at
/// most; then `on_end`.
fn sweep(ev: &mut EventLoop, pgid: u32, profile: PathBuf, deadline: Instant, on_end: OnEnd) {
    let left = os::leftovers(pgid, &profile);
    if left.is_empty() || Instant::now() >= deadline {
        if !left.is_empty() {
            eprintln!("screenshot: processes {left:?} did not die after SIGKILL");
        }
        return on_end(ev);
    }
    for pid in left {
        os::kill(pid);
    }
    ev.set_timeout(Duration::from_millis(10), move |ev| {
        sweep(ev, pgid, profile, deadline, on_end)
    });
}

/// Kills the browser's process group on drop unless the browser's exit was
/// seen (its group id may be reused after that).
struct KillGroupOnDrop(Browser);

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        let s = self.0 .0.borrow();
        if s.exit.is_none() {
            s.kill();
        }
    }
}

/// Headless, talking over fds 3 and 4, and quiet on a closed network: no
/// background fetches, updates, sync or first-run UI. The sandbox needs user
/// namespaces that root in a container usually lacks.
fn chromium_flags(profile: &Path) -> Vec<String> {
    let mut flags: Vec<String> = [
        "--headless",
        "--remote-debugging-pipe",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--mute-audio",
    ]
    .map(String::from)
    .into();
    if os::is_root() {
        flags.push("--no-sandbox".into());
    }
    flags.push(format!("--user-data-dir={}", profile.display()));
    flags.push("about:blank".into());
    flags
}

// ---------------------------------------------------------------------------
// The page to capture, served on 127.0.0.1 from the same loop.

/// The count example's output as a picture: three counts, each printing
/// "One" at 0 s and "Two" at 1 s.
const PAGE: &str = r##"<!doctype html>
<html><head><meta charset="utf-8"><title>evloop: the asynchronous count</title>
<style>
  html, body { margin: 0; height: 100%; background: #fdf6e3; }
  svg { display: block; width: 100vw; height: 100vh; }
  text { font-family: sans-serif; }
</style></head>
<body><svg viewBox="0 0 800 600" preserveAspectRatio="xMidYMid meet">
  <rect x="0" y="0" width="800" height="600" fill="#fdf6e3"/>
  <text x="400" y="70" font-size="40" text-anchor="middle" fill="#073642">evloop: the asynchronous count</text>
  <line x1="150" y1="440" x2="700" y2="440" stroke="#586e75" stroke-width="3"/>
  <text x="200" y="475" font-size="22" text-anchor="middle" fill="#586e75">0 s</text>
  <text x="650" y="475" font-size="22" text-anchor="middle" fill="#586e75">1 s</text>
  <g font-size="26">
    <text x="40" y="178" fill="#268bd2">count 1</text>
    <rect x="150" y="150" width="100" height="40" rx="8" fill="#268bd2"/>
    <rect x="600" y="150" width="100" height="40" rx="8" fill="#268bd2"/>
    <line x1="250" y1="170" x2="600" y2="170" stroke="#268bd2" stroke-width="3" stroke-dasharray="10 8"/>
    <text x="40" y="268" fill="#cb4b16">count 2</text>
    <rect x="150" y="240" width="100" height="40" rx="8" fill="#cb4b16"/>
    <rect x="600" y="240" width="100" height="40" rx="8" fill="#cb4b16"/>
    <line x1="250" y1="260" x2="600" y2="260" stroke="#cb4b16" stroke-width="3" stroke-dasharray="10 8"/>
    <text x="40" y="358" fill="#859900">count 3</text>
    <rect x="150" y="330" width="100" height="40" rx="8" fill="#859900"/>
    <rect x="600" y="330" width="100" height="40" rx="8" fill="#859900"/>
    <line x1="250" y1="350" x2="600" y2="350" stroke="#859900" stroke-width="3" stroke-dasharray="10 8"/>
    <g fill="#fdf6e3" text-anchor="middle">
      <text x="200" y="179">One</text><text x="650" y="179">Two</text>
      <text x="200" y="269">One</text><text x="650" y="269">Two</text>
      <text x="200" y="359">One</text><text x="650" y="359">Two</text>
    </g>
  </g>
  <text x="400" y="540" font-size="30" text-anchor="middle" font-family="monospace" fill="#073642">One One One Two Two Two</text>
</svg></body></html>
"##;

/// Answers `GET /` with the page and anything else with 404, one request
/// per connection.
fn serve_page(ev: &mut EventLoop) -> io::Result<TcpServer> {
    tcp::listen(
        ev,
        ([127, 0, 0, 1], 0).into(),
        Default::default(),
        |ev, conn| {
            let Ok(conn) = conn else { return };
            let _ = conn.read_start_into(ev, Vec::new(), |ev, conn, buf, n| {
            if !matches!(n, Ok(n) if n > 0) {
                conn.close(ev);
                return;
            }
            let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                if buf.len() > 8192 {
                    conn.close(ev);
                }
                return;
            };
            let head = String::from_utf8_lossy(&buf[..head_end]);
            let target = head.split(' ').nth(1).unwrap_or("");
            let (status, kind, body) = if target == "/" {
                ("200 OK", "text/html; charset=utf-8", PAGE)
            } else {
                ("404 Not Found", "text/plain", "not found\n")
            };
            println!("served {target} ({status})");
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.read_stop(ev);
            let _ = conn.write(ev, response);
            let c = conn.clone();
            if conn.shutdown_with(ev, move |ev, _| { c.close(ev); }).is_err() {
                conn.close(ev);
            }
        });
        },
    )
}

// ---------------------------------------------------------------------------
// Command line, finding the browser, the profile directory.

fn parse_size(s: &str) -> Option<(u32, u32)> {
    let (w, h) = s.split_once('x')?;
    let (w, h) = (w.parse().ok()?, h.parse().ok()?);
    let fits = |n: u32| (1..=8192).contains(&n);
    (fits(w) && fits(h)).then_some((w, h))
}

/// The command line: output file, URL (if not our own page), size.
type Args = (PathBuf, Option<String>, (u32, u32));

fn parse_args() -> Result<Args, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (out, rest) = args.split_first().ok_or("no output file given")?;
    let (mut url, mut size) = (None, None);
    for arg in rest {
        if let Some(s) = parse_size(arg).filter(|_| size.is_none()) {
            size = Some(s);
        } else if arg.contains("://") && url.is_none() {
            url = Some(arg.clone());
        } else {
            return Err(format!(
                "{arg:?} is neither a URL nor WIDTHxHEIGHT (1 to 8192 each)"
            ));
        }
    }
    Ok((out.into(), url, size.unwrap_or(DEFAULT_SIZE)))
}

/// `SCREENSHOT_BROWSER` or `chromium`, looked up in `PATH` unless it has a
/// slash; only an executable file counts.
fn find_browser() -> Option<PathBuf> {
    let name = std::env::var_os("SCREENSHOT_BROWSER").unwrap_or_else(|| "chromium".into());
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let name = PathBuf::from(name);
    if name.components().count() > 1 {
        return executable(&name).then_some(name);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(&name))
        .find(|p| executable(p))
}

/// A fresh directory (mode 0700), removed with everything in it on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> io::Result<TempDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path =
            std::env::temp_dir().join(format!("evloop-screenshot-{}-{nanos}", std::process::id()));
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The few raw calls the library has no wrapper for.
mod os {
    use super::*;

    /// A pipe with both ends blocking and close-on-exec: `(read, write)`.
    /// (`evloop::net::unix::pipe` makes both ends non-blocking, which the
    /// file description shares with the child.)
    pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two fds pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both are open fds that nothing else owns.
        Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
    }

    /// SIGKILL to every process in group `pgid` (ESRCH, an empty group, is
    /// fine).
    pub fn kill_group(pgid: u32) {
        let Ok(pgid) = libc::pid_t::try_from(pgid) else {
            return;
        };
        // SAFETY: kill has no memory-safety preconditions; a negative pid
        // names the process group.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }

    /// SIGKILL to `pid`.
    pub fn kill(pid: u32) {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return;
        };
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }

    /// The live processes, other than this one, in process group `pgid`
    /// or with `path` in their command line. Zombies are dead already and
    /// do not count.
    pub fn leftovers(pgid: u32, path: &Path) -> Vec<u32> {
        let needle = path.as_os_str().as_encoded_bytes();
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        let alive_in_group = |pid: u32| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // "pid (comm) state ppid pgrp ...": comm may hold anything but ')'
            // is the last one.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
            let live = !matches!(fields.first(), Some(&"Z") | Some(&"X") | None);
            live && fields.get(2) == Some(&pgid.to_string().as_str())
        };
        let names_path = |pid: u32| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| cmdline.windows(needle.len()).any(|w| w == needle))
        };
        dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&pid| pid != std::process::id())
            .filter(|&pid| alive_in_group(pid) || names_path(pid))
            .collect()
    }

    pub fn is_root() -> bool {
        // SAFETY: geteuid cannot fail and touches no memory of ours.
        unsafe { libc::geteuid() == 0 }
    }
}

// ---------------------------------------------------------------------------

fn main() -> ExitCode {
    env_logger::init();
    let (out, url, (width, height)) = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("screenshot: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let Some(program) = find_browser() else {
        let looked_for = match std::env::var_os("SCREENSHOT_BROWSER") {
            Some(b) => format!("SCREENSHOT_BROWSER={}", b.to_string_lossy()),
            None => "`chromium` in PATH".to_string(),
        };
        eprintln!(
            "screenshot: no Chromium found (looked for {looked_for}). \
             Install it with:\n    apt-get install chromium"
        );
        return ExitCode::from(2);
    };
    let step_timeout = std::env::var("SCREENSHOT_STEP_TIMEOUT_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(DEFAULT_STEP_TIMEOUT, Duration::from_millis);
    match run(program, out, url, width, height, step_timeout) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("screenshot: step 'launch' failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(
    program: PathBuf,
    out: PathBuf,
    url: Option<String>,
    width: u32,
    height: u32,
    step_timeout: Duration,
) -> io::Result<bool> {
    let started = Instant::now();
    let mut ev = EventLoop::new()?;
    let profile = TempDir::new()?;
    let server = match url {
        Some(_) => None,
        None => Some(serve_page(&mut ev)?),
    };
    let url = match (url, &server) {
        (Some(url), _) => url,
        (None, Some(server)) => format!("http://{}/", server.local_addr()?),
        (None, None) => unreachable!("a server runs when no URL was given"),
    };
    println!(
        "capturing {url} at {width}x{height} with {}",
        program.display()
    );
    let job = Rc::new(Job {
        out,
        url,
        width,
        height,
    });

    // SIGINT and SIGTERM end the run like any failure: browser killed,
    // profile removed. The watchers are in place before the browser starts
    // (a signal in between would kill us and leave it running); they do not
    // keep the loop alive.
    let slot: Rc<RefCell<Option<Browser>>> = Rc::default();
    let mut signals = Vec::new();
    for signo in [libc::SIGINT, libc::SIGTERM] {
        let s = slot.clone();
        let id = signal::on_signal(&mut ev, signo, move |ev| {
            let browser = s.borrow().clone();
            if let Some(b) = browser {
                b.fail(ev, format!("interrupted by signal {signo}"));
            }
        })?;
        signals.push(id);
    }
    let on_end = move |ev: &mut EventLoop| {
        if let Some(server) = &server {
            server.close(ev);
        }
        for id in signals {
            signal::stop_signal(ev, id);
        }
    };
    let browser = Browser::spawn(&mut ev, &program, &profile.0, step_timeout, on_end)?;
    *slot.borrow_mut() = Some(browser.clone());
    // Should the loop fail or a callback panic, the browser still dies.
    let _kill_on_unwind = KillGroupOnDrop(browser.clone());
    launch(&mut ev, &browser, job);
    ev.run()?;
    drop(profile); // the browser is gone: remove its profile
    let ok = browser.succeeded();
    if ok {
        println!("done in {:.2} s", started.elapsed().as_secs_f64());
    }
    Ok(ok)
}
