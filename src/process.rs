//! Child processes with callbacks: spawn, stdio as streams, exit callback,
//! kill.
//!
//! The child's exit is watched through a pidfd (Linux 5.3+): an fd that turns
//! readable when the process ends, watched like any other fd, so no SIGCHLD
//! handler is needed and no other library's children are reaped by mistake.
//! Where pidfds are missing, a SIGCHLD watcher checks the child instead.
//! A running child keeps the loop alive.
//!
//! Inherited signal state is not left to chance. A child starts with every
//! signal at its default action and none blocked, whatever the spawning
//! thread had (as libuv does; std's `Command` keeps the caller's mask). The
//! parent blocks all signals in the spawning thread around the fork, so no
//! handler of the parent's can run in the child before the reset. And since a
//! `SIGCHLD` set to "ignore" (inherited through exec under some supervisors)
//! makes the kernel reap children itself, losing their exit status, `spawn`
//! sets it back to its default action first (libuv and Node install a
//! handler of their own for the same reason), for good: a `SIGCHLD` watcher
//! that stops later does not put "ignore" back either.
//!
//! If anything fails after the fork (an fd limit reached while setting up the
//! child's pipes or its pidfd), the child is killed and reaped, and its pipes
//! are closed, before `spawn` returns the error: no zombie, no leaked fd.
//!
//! Extra fds can be passed at chosen numbers (say 3 and 4, for a browser's
//! `--remote-debugging-pipe`): each is first duplicated above every target
//! number in the parent, then `dup2`'d into place between fork and exec, so
//! no target can clobber another's source.
//!
//! std's `Command` forks and sets up stdio and the working directory, but
//! the child then runs evloop's own setup and execs the program itself
//! (`execvp` with an environment made before the fork, so nothing is
//! allocated in the child): a new session for a detached child, the extra
//! fds, the user and group ids (supplementary groups dropped, as libuv),
//! the signal state. Any failure, the exec's included, is reported through
//! a close-on-exec pipe of evloop's whose write end sits above every target
//! number, and the child exits with 127; `spawn` reaps it and returns the
//! error. std's own error pipe is never written to (it may sit at a target
//! number and be replaced by a passed fd, which is then left untouched), so
//! a failed exec can neither look like a success nor leak bytes into a
//! passed fd.
//!
//! A child can be *detached* ([`Command::detached`]) and *unref'd*
//! ([`Child::set_ref`]) so the loop does not wait for it; [`kill`] signals
//! any pid, as libuv's `uv_kill` and Node's `process.kill`.

use std::cell::RefCell;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{self, ExitStatus};
use std::rc::Rc;

use crate::net::{with_context, Pipe};
use crate::signal::{self, SignalId};
use crate::{sys, EventLoop, Interest, WatchId};

/// Where a child's stdin, stdout or stderr goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stdio {
    /// The parent's own (the default).
    #[default]
    Inherit,
    /// `/dev/null`.
    Null,
    /// A pipe to the parent, as a [`Pipe`] on [`Child`].
    Pipe,
}

/// What to run: program, arguments, environment, directory, stdio, extra fds.
#[derive(Debug)]
pub struct Command {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, Option<OsString>)>,
    env_clear: bool,
    cwd: Option<PathBuf>,
    stdio: [Stdio; 3],
    fds: Vec<(RawFd, OwnedFd)>,
    detached: bool,
    uid: Option<u32>,
    gid: Option<u32>,
}

impl Command {
    /// A command running `program` (looked up in `PATH` if it has no slash).
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            env_clear: false,
            cwd: None,
            stdio: [Stdio::Inherit; 3],
            fds: Vec::new(),
            detached: false,
            uid: None,
            gid: None,
        }
    }

    /// Adds one argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&mut self, args: I) -> &mut Command {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Command {
        self.env
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Removes an environment variable for the child.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// Starts the child with an empty environment (plus what `env` adds).
    pub fn env_clear(&mut self) -> &mut Command {
        self.env_clear = true;
        self.env.clear();
        self
    }

    /// Sets the child's working directory.
    pub fn current_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Command {
        self.cwd = Some(dir.into());
        self
    }

    /// Sets the child's stdin.
    pub fn stdin(&mut self, s: Stdio) -> &mut Command {
        self.stdio[0] = s;
        self
    }

    /// Sets the child's stdout.
    pub fn stdout(&mut self, s: Stdio) -> &mut Command {
        self.stdio[1] = s;
        self
    }

    /// Sets the child's stderr.
    pub fn stderr(&mut self, s: Stdio) -> &mut Command {
        self.stdio[2] = s;
        self
    }

    /// Passes `fd` to the child as fd number `target` (3 or more; 0 to 2 are
    /// set with `stdin`/`stdout`/`stderr`). The parent's copy is closed once
    /// the child was spawned.
    pub fn fd(&mut self, target: RawFd, fd: impl Into<OwnedFd>) -> &mut Command {
        self.fds.push((target, fd.into()));
        self
    }

    /// Starts the child detached (libuv `UV_PROCESS_DETACHED`, Node's
    /// `detached: true`): it leads a new session and process group
    /// (`setsid`), with no controlling terminal, so the terminal's signals
    /// (Ctrl-C's `SIGINT`, a hang-up's `SIGHUP`) and signals sent to our
    /// process group do not reach it, and it can outlive us.
    ///
    /// Detaching does not stop the loop from waiting for it: also call
    /// [`Child::set_ref`]`(ev, false)` for that. Its exit is then still
    /// collected if the loop runs when it ends; if the loop has stopped
    /// running (or was dropped), nobody reaps it and it stays a zombie until
    /// our process exits, when init adopts and reaps it.
    pub fn detached(&mut self, on: bool) -> &mut Command {
        self.detached = on;
        self
    }

    /// Runs the child as user `uid` (libuv `UV_PROCESS_SETUID`, Node's
    /// `uid`). Changing ids also drops the supplementary groups, as libuv.
    /// Without the privilege to change it, `spawn` fails with `EPERM`
    /// (`PermissionDenied`).
    pub fn uid(&mut self, uid: u32) -> &mut Command {
        self.uid = Some(uid);
        self
    }

    /// Runs the child with group `gid` (libuv `UV_PROCESS_SETGID`, Node's
    /// `gid`), set before the user id; see [`uid`](Command::uid).
    pub fn gid(&mut self, gid: u32) -> &mut Command {
        self.gid = Some(gid);
        self
    }
}

/// A spawned child. Its piped stdio are streams; take them out to use them.
#[derive(Debug)]
pub struct Child {
    /// The child's stdin, if it was [`Stdio::Pipe`].
    pub stdin: Option<Pipe>,
    /// The child's stdout, if it was [`Stdio::Pipe`].
    pub stdout: Option<Pipe>,
    /// The child's stderr, if it was [`Stdio::Pipe`].
    pub stderr: Option<Pipe>,
    pid: u32,
    state: Rc<RefCell<State>>,
}

type OnExit = Box<dyn FnOnce(&mut EventLoop, ExitStatus)>;

#[derive(Debug)]
enum ExitWatch {
    Pidfd(WatchId),
    Sigchld(SignalId),
}

struct State {
    child: process::Child,
    status: Option<ExitStatus>,
    on_exit: Option<OnExit>,
    watch: Option<ExitWatch>,
    /// Keeps the loop alive while it runs ([`Child::set_ref`]).
    keep_alive: bool,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("evloop: {msg}"))
}

/// Spawns `cmd`; `on_exit` gets the exit status (code, or terminating
/// signal) on the loop thread once the child ended. A program that cannot be
/// started is an error here, and `on_exit` never runs.
#[track_caller]
pub fn spawn(
    ev: &mut EventLoop,
    cmd: Command,
    on_exit: impl FnOnce(&mut EventLoop, ExitStatus) + 'static,
) -> io::Result<Child> {
    let context = |e: io::Error| with_context(e, format!("spawn {:?}", cmd.program));
    let image = exec_image(&cmd)?;
    let mut std_cmd = process::Command::new(&cmd.program);
    if let Some(dir) = &cmd.cwd {
        std_cmd.current_dir(dir);
    }
    let to_std = |s: Stdio| match s {
        Stdio::Inherit => process::Stdio::inherit(),
        Stdio::Null => process::Stdio::null(),
        Stdio::Pipe => process::Stdio::piped(),
    };
    std_cmd.stdin(to_std(cmd.stdio[0]));
    std_cmd.stdout(to_std(cmd.stdio[1]));
    std_cmd.stderr(to_std(cmd.stdio[2]));

    let (moves, floor) = prepare_fds(&cmd.fds)?;
    let plan: Vec<(RawFd, RawFd)> = moves.iter().map(|(t, s)| (*t, s.as_raw_fd())).collect();
    // Our own report pipe, its write end above every target number so no
    // `dup2` can hit it (std's own error pipe may sit at a target number:
    // the child never uses it, see the module docs).
    let (report_r, low_report_w) = sys::pipe().map_err(context)?;
    let report_w = sys::dup_above(&low_report_w, floor).map_err(context)?;
    drop(low_report_w);
    let report_fd = report_w.as_raw_fd();
    let setup = ChildSetup {
        plan,
        detached: cmd.detached,
        uid: cmd.uid,
        gid: cmd.gid,
        image,
    };
    // SAFETY: the closure runs between fork and exec and calls only
    // async-signal-safe functions (setsid, dup2, setgroups, setgid, setuid,
    // sigaction, pthread_sigmask, execvp, write, _exit); it allocates
    // nothing (`setup` was built before the fork) and never returns.
    unsafe {
        std_cmd.pre_exec(move || {
            let err = setup.run();
            sys::report_and_exit(report_fd, &err)
        });
    }
    reap_our_children();
    let spawned = {
        let _blocked = sys::BlockAllSignals::new();
        std_cmd.spawn()
    };
    drop(report_w); // only the child's copy is left: EOF at exec or exit
    let mut child = spawned.map_err(context)?;
    drop(moves); // the parent's copies of the passed fds close here
    match sys::read_exec_report(&report_r) {
        Ok(None) => {}
        report => {
            // The child could not be set up or exec'd and has exited (or,
            // if the report could not be read, is made to): reap it.
            let _ = child.kill();
            let _ = child.wait();
            let err = match report {
                Ok(Some(errno)) => io::Error::from_raw_os_error(errno),
                Err(e) => e,
                Ok(None) => unreachable!(),
            };
            return Err(context(err));
        }
    }
    let pid = child.id();
    log::debug!("evloop: spawned {:?} as pid {pid}", cmd.program);

    let pipes: [Option<OwnedFd>; 3] = [
        child.stdin.take().map(OwnedFd::from),
        child.stdout.take().map(OwnedFd::from),
        child.stderr.take().map(OwnedFd::from),
    ];
    let mut streams = [None, None, None];
    let mut watched = Ok(());
    for (slot, pipe) in streams.iter_mut().zip(pipes) {
        if let Some(fd) = pipe {
            match Pipe::from_owned(fd, false) {
                Ok(s) => *slot = Some(s),
                Err(e) => {
                    watched = Err(e);
                    break;
                }
            }
        }
    }
    let state = Rc::new(RefCell::new(State {
        child,
        status: None,
        on_exit: Some(Box::new(on_exit)),
        watch: None,
        keep_alive: true,
    }));
    let site = std::panic::Location::caller();
    let watched = watched.and_then(|()| watch_exit(ev, pid, &state));
    if let Ok(ExitWatch::Pidfd(id)) = &watched {
        let _ = ev.label_watch(*id, "child", site); // a live id: cannot fail
    }
    let watch = match watched {
        Ok(watch) => watch,
        Err(e) => {
            // The child runs but cannot be looked after: end it, reap it,
            // close its pipes; `on_exit` never runs.
            log::debug!("evloop: pid {pid} started but could not be watched: {e}");
            for stream in streams.iter().flatten() {
                stream.close(ev);
            }
            let mut s = state.borrow_mut();
            let _ = s.child.kill();
            let _ = s.child.wait();
            return Err(e);
        }
    };
    state.borrow_mut().watch = Some(watch);
    let [stdin, stdout, stderr] = streams;
    Ok(Child {
        stdin,
        stdout,
        stderr,
        pid,
        state,
    })
}

/// Makes sure the kernel leaves our children's exit status for us to
/// collect: `SIGCHLD` ignored, or `SA_NOCLDWAIT`, would reap them at exit.
///
/// The change is never undone, as in libuv and Node (which install a
/// `SIGCHLD` handler and keep it): a child spawned earlier may still be
/// running, and putting "ignore" back when the last one ended would race
/// with the next `spawn`, perhaps on another thread. The cost is that
/// children other code in the process starts and never waits for stay
/// zombies until we exit, as they would under any default `SIGCHLD`.
fn reap_our_children() {
    signal::keep_exit_statuses();
}

/// Validates the extra fds and duplicates each above every target number;
/// also returns the lowest number above every target (for other fds the
/// child must keep).
fn prepare_fds(fds: &[(RawFd, OwnedFd)]) -> io::Result<(Vec<(RawFd, OwnedFd)>, RawFd)> {
    let mut targets: Vec<RawFd> = fds.iter().map(|(t, _)| *t).collect();
    if targets.iter().any(|&t| t < 3) {
        return Err(invalid("extra fds must be numbered 3 or more"));
    }
    targets.sort_unstable();
    if targets.windows(2).any(|w| w[0] == w[1]) {
        return Err(invalid("two extra fds share a number"));
    }
    let floor = targets.last().map_or(3, |&t| t + 1);
    let moves = fds
        .iter()
        .map(|(target, fd)| Ok((*target, sys::dup_above(fd, floor)?)))
        .collect::<io::Result<_>>()?;
    Ok((moves, floor))
}

/// The program, its arguments and its whole environment as C strings.
fn exec_image(cmd: &Command) -> io::Result<sys::ExecImage> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c_string = |s: &OsStr| {
        CString::new(s.as_bytes())
            .map_err(|_| invalid("a NUL byte in the program, an argument or the environment"))
    };
    let program = c_string(&cmd.program)?;
    let mut argv = vec![program.clone()];
    for arg in &cmd.args {
        argv.push(c_string(arg)?);
    }
    let mut env: Vec<(OsString, OsString)> = if cmd.env_clear {
        Vec::new()
    } else {
        std::env::vars_os().collect()
    };
    for (key, value) in &cmd.env {
        if key.is_empty() || key.as_bytes().contains(&b'=') {
            return Err(invalid(
                "an environment variable name that is empty or holds '='",
            ));
        }
        env.retain(|(k, _)| k != key);
        if let Some(value) = value {
            env.push((key.clone(), value.clone()));
        }
    }
    let mut envp = Vec::with_capacity(env.len());
    for (key, value) in env {
        let mut entry = key;
        entry.push("=");
        entry.push(value);
        envp.push(c_string(&entry)?);
    }
    Ok(sys::ExecImage::new(program, argv, envp))
}

/// Everything the child does between fork and exec, made before the fork.
#[derive(Debug)]
struct ChildSetup {
    /// `(target, source)`: every source, and the report pipe, sit above
    /// every target.
    plan: Vec<(RawFd, RawFd)>,
    detached: bool,
    uid: Option<u32>,
    gid: Option<u32>,
    image: sys::ExecImage,
}

impl ChildSetup {
    /// In the child: sets it up and execs; returns only the error that
    /// stopped it. The order is libuv's: new session, fds, ids, then the
    /// signal state (last, so nothing of the parent's runs in the child
    /// meanwhile), then exec.
    fn run(&self) -> io::Error {
        let steps = || -> io::Result<()> {
            if self.detached {
                sys::new_session()?;
            }
            for &(target, source) in &self.plan {
                sys::dup2(source, target)?;
            }
            if self.uid.is_some() || self.gid.is_some() {
                sys::change_ids(self.uid, self.gid)?;
            }
            sys::reset_signals_in_child();
            Ok(())
        };
        match steps() {
            Err(e) => e,
            Ok(()) => self.image.exec(),
        }
    }
}

fn watch_exit(ev: &mut EventLoop, pid: u32, state: &Rc<RefCell<State>>) -> io::Result<ExitWatch> {
    match sys::pidfd_open(pid) {
        Ok(pidfd) => {
            let s = state.clone();
            let id = ev.watch(pidfd, Interest::READABLE, move |ev, _, _| {
                check_exit(ev, &s)
            })?;
            Ok(ExitWatch::Pidfd(id))
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
            let s = state.clone();
            let id = signal::on_signal(ev, libc::SIGCHLD, move |ev| check_exit(ev, &s))?;
            signal::set_signal_ref(ev, id, true)?;
            // The child may have ended before the handler was in place.
            let s = state.clone();
            ev.call_soon(move |ev| check_exit(ev, &s));
            Ok(ExitWatch::Sigchld(id))
        }
        Err(e) => Err(e),
    }
}

/// Reaps the child if it ended, then stops watching and calls `on_exit`.
fn check_exit(ev: &mut EventLoop, state: &Rc<RefCell<State>>) {
    let (status, watch, on_exit) = {
        let mut s = state.borrow_mut();
        if s.status.is_some() {
            return;
        }
        let status = match s.child.try_wait() {
            Ok(Some(status)) => status,
            Ok(None) => return,
            Err(e) => {
                // Someone else reaped it (a waitpid(-1) elsewhere in the
                // process): the status is gone. Stop watching, or the pidfd
                // would report the exit forever.
                log::warn!(
                    "evloop: waiting for pid {}: {e}; its exit status is lost",
                    s.child.id()
                );
                let watch = s.watch.take();
                drop(s);
                stop_watching(ev, watch);
                return;
            }
        };
        s.status = Some(status);
        (status, s.watch.take(), s.on_exit.take())
    };
    stop_watching(ev, watch);
    if let Some(on_exit) = on_exit {
        on_exit(ev, status);
    }
}

fn stop_watching(ev: &mut EventLoop, watch: Option<ExitWatch>) {
    match watch {
        Some(ExitWatch::Pidfd(w)) => {
            ev.unwatch(w);
        }
        Some(ExitWatch::Sigchld(id)) => {
            signal::stop_signal(ev, id);
        }
        None => {}
    }
}

impl Child {
    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.pid
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to the child. `ESRCH` once the
    /// child was reaped (its pid may belong to someone else by then).
    pub fn kill(&self, signal: i32) -> io::Result<()> {
        if self.state.borrow().status.is_some() {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        // The pid is our unreaped child, so it names no one else.
        sys::kill(self.pid, signal)
    }

    /// The exit status, once the exit callback ran.
    pub fn status(&self) -> Option<ExitStatus> {
        self.state.borrow().status
    }

    /// Sets whether the running child keeps the loop alive (it does by
    /// default; libuv `uv_ref`/`uv_unref` on the process handle, Node's
    /// `child.ref()`/`unref()`). An unref'd child's exit callback still runs
    /// if the loop is running when it ends; `run()` just does not wait for
    /// it. See [`Command::detached`] for what happens to a child the loop
    /// no longer waits for.
    ///
    /// # Errors
    /// None once the child was reaped (the setting is kept and has no
    /// effect); the loop's error if the exit watcher is gone otherwise.
    pub fn set_ref(&self, ev: &mut EventLoop, keep_alive: bool) -> io::Result<()> {
        let watch = {
            let mut s = self.state.borrow_mut();
            s.keep_alive = keep_alive;
            match &s.watch {
                Some(ExitWatch::Pidfd(w)) => ExitWatch::Pidfd(*w),
                Some(ExitWatch::Sigchld(id)) => ExitWatch::Sigchld(*id),
                None => return Ok(()),
            }
        };
        match watch {
            ExitWatch::Pidfd(w) => ev.set_watch_ref(w, keep_alive),
            ExitWatch::Sigchld(id) => signal::set_signal_ref(ev, id, keep_alive),
        }
    }

    /// True while the child keeps the loop alive: it has not been reaped
    /// and [`set_ref`](Child::set_ref)`(false)` was not called (libuv
    /// `uv_has_ref`).
    pub fn has_ref(&self) -> bool {
        let s = self.state.borrow();
        s.keep_alive && s.watch.is_some()
    }
}

/// Sends `signal` to process `pid`, any process, not only our children
/// (libuv `uv_kill`, Node's `process.kill`). Signal 0 sends nothing and
/// only probes: `Ok` if the process exists and we may signal it. As in
/// `kill(2)`, a `pid` of 0 means our process group, -1 every process we
/// may signal, and another negative number that process group.
///
/// A pid names whoever has it now: once a child of ours was reaped, its pid
/// may be reused; use [`Child::kill`] for children, which refuses then.
///
/// # Errors
/// `InvalidInput` for a signal number outside `0..=SIGRTMAX`; the OS error
/// `ESRCH` if no such process exists (std has no `ErrorKind` for it: check
/// `raw_os_error()`); `EPERM` (`PermissionDenied`) if we may not signal it.
pub fn kill(pid: i32, signal: i32) -> io::Result<()> {
    if !(0..=sys::highest_signal()).contains(&signal) {
        return Err(invalid(&format!("no signal numbered {signal}")));
    }
    sys::kill_pid(pid, signal)
}
