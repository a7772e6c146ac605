//! Child processes.

mod common;

use std::cell::RefCell;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::rc::Rc;

use common::{assert_fds_back_to, open_fds, serial};
use evloop::net::Pipe;
use evloop::process::{self, Command, Stdio};
use evloop::EventLoop;

/// Collects a stream's bytes until EOF, then closes it.
fn collect(ev: &mut EventLoop, s: Pipe) -> Rc<RefCell<Vec<u8>>> {
    let out = Rc::new(RefCell::new(Vec::new()));
    let o = out.clone();
    s.read_start(ev, move |ev, s, data| match data.unwrap() {
        [] => {
            s.close(ev);
        }
        bytes => o.borrow_mut().extend_from_slice(bytes),
    })
    .unwrap();
    out
}

#[test]
fn exit_code_and_captured_stdout_and_stderr() {
    let _g = serial();
    let fds = open_fds();
    let mut ev = EventLoop::new().unwrap();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo out:$GREETING; pwd; echo err >&2; exit 3"])
        .env("GREETING", "hi")
        .current_dir("/tmp")
        .stdout(Stdio::Pipe)
        .stderr(Stdio::Pipe);
    let status = Rc::new(RefCell::new(None));
    let s = status.clone();
    let mut child = process::spawn(&mut ev, cmd, move |_, st| *s.borrow_mut() = Some(st)).unwrap();
    assert!(child.id() > 0);
    let out = collect(&mut ev, child.stdout.take().unwrap());
    let err = collect(&mut ev, child.stderr.take().unwrap());
    ev.run().unwrap(); // the running child keeps the loop alive
    assert_eq!(status.borrow().unwrap().code(), Some(3));
    assert_eq!(child.status().unwrap().code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.borrow()), "out:hi\n/tmp\n");
    assert_eq!(&*err.borrow(), b"err\n");
    drop(child);
    drop(ev);
    assert_fds_back_to(fds);
}

#[test]
fn stdin_pipe_feeds_the_child() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let mut cmd = Command::new("tr");
    cmd.args(["a-z", "A-Z"])
        .stdin(Stdio::Pipe)
        .stdout(Stdio::Pipe);
    let mut child = process::spawn(&mut ev, cmd, |_, st| assert!(st.success())).unwrap();
    let stdin = child.stdin.take().unwrap();
    stdin
        .write_with(&mut ev, b"shout this", |_, r| r.unwrap())
        .unwrap();
    stdin.shutdown_with(&mut ev, |_, r| r.unwrap()).unwrap();
    let out = collect(&mut ev, child.stdout.take().unwrap());
    ev.run().unwrap();
    stdin.close(&mut ev);
    ev.run().unwrap();
    assert_eq!(&*out.borrow(), b"SHOUT THIS");
}

#[test]
fn killed_child_reports_its_signal() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let mut cmd = Command::new("sleep");
    cmd.arg("30");
    let status = Rc::new(RefCell::new(None));
    let s = status.clone();
    let child = process::spawn(&mut ev, cmd, move |_, st| *s.borrow_mut() = Some(st)).unwrap();
    child.kill(libc::SIGTERM).unwrap();
    ev.run().unwrap();
    let st = status.borrow().unwrap();
    assert_eq!(st.signal(), Some(libc::SIGTERM));
    assert_eq!(st.code(), None);
    assert_eq!(
        child.kill(libc::SIGTERM).unwrap_err().raw_os_error(),
        Some(libc::ESRCH)
    );
}

#[test]
fn a_missing_program_is_an_error_at_once() {
    let _g = serial();
    let fds = open_fds();
    let mut ev = EventLoop::new().unwrap();
    let mut cmd = Command::new("/nonexistent/program");
    cmd.stdout(Stdio::Pipe);
    let err = process::spawn(&mut ev, cmd, |_, _| {
        panic!("exit callback of a failed spawn")
    })
    .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert!(!ev.is_alive());
    ev.run().unwrap();
    drop(ev);
    assert_fds_back_to(fds);
}

#[test]
fn extra_fds_reach_the_child_at_chosen_numbers() {
    let _g = serial();
    let fds = open_fds();
    let mut ev = EventLoop::new().unwrap();
    // Like Chromium's --remote-debugging-pipe: the child reads fd 3 and
    // writes fd 4.
    let (to_child_r, to_child_w) = os_pipe();
    let (from_child_r, from_child_w) = os_pipe();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "read line <&3; echo \"got $line\" >&4"])
        .fd(3, to_child_r)
        .fd(4, from_child_w);
    let child = process::spawn(&mut ev, cmd, |_, st| assert!(st.success())).unwrap();
    let to_child = Pipe::open(to_child_w).unwrap();
    to_child
        .write_with(&mut ev, b"hello\n", |_, r| r.unwrap())
        .unwrap();
    to_child.shutdown_with(&mut ev, |_, r| r.unwrap()).unwrap();
    let from_child = Pipe::open(from_child_r).unwrap();
    let out = collect(&mut ev, from_child);
    ev.run().unwrap();
    to_child.close(&mut ev);
    ev.run().unwrap();
    assert_eq!(&*out.borrow(), b"got hello\n");
    assert!(child.status().unwrap().success());
    drop(ev);
    assert_fds_back_to(fds);
}

#[test]
fn bad_extra_fd_numbers_are_errors() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let (a, b) = os_pipe();
    let mut cmd = Command::new("true");
    cmd.fd(1, a);
    assert_eq!(
        process::spawn(&mut ev, cmd, |_, _| {}).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    let (c, _d) = os_pipe();
    let mut cmd = Command::new("true");
    cmd.fd(5, b).fd(5, c);
    assert_eq!(
        process::spawn(&mut ev, cmd, |_, _| {}).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
}

#[test]
fn env_clear_and_null_stdio() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let mut cmd = Command::new("/usr/bin/env");
    cmd.env_clear()
        .env("ONLY", "this")
        .stdin(Stdio::Null)
        .stdout(Stdio::Pipe)
        .stderr(Stdio::Null);
    let mut child = process::spawn(&mut ev, cmd, |_, st| assert!(st.success())).unwrap();
    let out = collect(&mut ev, child.stdout.take().unwrap());
    ev.run().unwrap();
    assert_eq!(&*out.borrow(), b"ONLY=this\n");
}

fn os_pipe() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the array with two new fds that we then own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    use std::os::fd::FromRawFd;
    // SAFETY: freshly created, owned by nobody else.
    unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    }
}

/// A field of /proc/PID/status, such as "SigBlk", as a number (hex mask).
fn status_mask(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap();
    u64::from_str_radix(line.trim(), 16).unwrap()
}

fn sigset_of(sigs: &[i32]) -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset on a local sigset_t.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in sigs {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// The spawning thread blocks SIGTERM and SIGINT and the process ignores
/// SIGHUP; the child starts with no signal blocked and none ignored, so
/// SIGTERM ends it. The spawning thread's own mask is left as it was.
#[test]
fn children_start_with_default_signal_state() {
    let _g = serial();
    let blocked = sigset_of(&[libc::SIGTERM, libc::SIGINT]);
    let mut old_mask = sigset_of(&[]);
    // SAFETY: changes this thread's mask and SIGHUP's disposition; both are
    // restored below.
    let old_hup = unsafe {
        libc::pthread_sigmask(libc::SIG_BLOCK, &blocked, &mut old_mask);
        libc::signal(libc::SIGHUP, libc::SIG_IGN)
    };
    let mut ev = EventLoop::new().unwrap();
    let mut cmd = Command::new("sleep");
    cmd.arg("30");
    let status = Rc::new(RefCell::new(None));
    let s = status.clone();
    let child = process::spawn(&mut ev, cmd, move |_, st| *s.borrow_mut() = Some(st)).unwrap();
    // SAFETY: reads this thread's mask into a valid sigset_t.
    let still_blocked = unsafe {
        let mut now = sigset_of(&[]);
        libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut now);
        libc::sigismember(&now, libc::SIGTERM) == 1 && libc::sigismember(&now, libc::SIGUSR1) == 0
    };
    // Wait until the child has exec'd `sleep`.
    let pid = child.id();
    let start = std::time::Instant::now();
    while std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default() != "sleep\n" {
        assert!(start.elapsed() < std::time::Duration::from_secs(10));
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let (blk, ign) = (status_mask(pid, "SigBlk"), status_mask(pid, "SigIgn"));
    child.kill(libc::SIGTERM).unwrap();
    ev.run().unwrap();
    // SAFETY: restores what was changed above.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, &old_mask, std::ptr::null_mut());
        libc::signal(libc::SIGHUP, old_hup);
    }
    assert!(still_blocked, "the parent's mask is unchanged");
    assert_eq!(blk, 0, "no signal blocked in the child");
    assert_eq!(ign, 0, "no signal ignored in the child");
    assert_eq!(status.borrow().unwrap().signal(), Some(libc::SIGTERM));
}

/// Waits (up to 10 s) until `pid` has exec'd `name`: everything the child
/// does before exec (setsid, ids, fds) is done by then.
fn wait_for_exec(pid: u32, name: &str) {
    let start = std::time::Instant::now();
    while std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default()
        != format!("{name}\n")
    {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "{pid} never ran {name}"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Process group and session of `pid` (fields 5 and 6 of /proc/PID/stat).
fn group_and_session(pid: u32) -> (i32, i32) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    (fields[2].parse().unwrap(), fields[3].parse().unwrap())
}

/// Where an exit callback records the status.
type ExitSlot = Rc<RefCell<Option<std::process::ExitStatus>>>;

/// An exit slot and the callback that fills it.
fn exit_slot() -> (
    ExitSlot,
    impl FnOnce(&mut EventLoop, std::process::ExitStatus),
) {
    let slot = Rc::new(RefCell::new(None));
    let s = slot.clone();
    (slot, move |_: &mut EventLoop, st| {
        *s.borrow_mut() = Some(st)
    })
}

/// Found by a hostile review: std's `Command` reports exec errors through a
/// pipe of its own, and an extra fd passed at that pipe's number replaced
/// it, so a missing program "spawned" and std's error report went into the
/// passed fd. evloop's child reports through a pipe of its own above every
/// target number, and never reaches std's. (Runs on its own: it predicts
/// the lowest free fd numbers.)
#[test]
fn spawn_of_a_missing_program_with_extra_fds_fails_and_writes_nothing_to_them() {
    if !common::isolated(
        "spawn_of_a_missing_program_with_extra_fds_fails_and_writes_nothing_to_them",
    ) {
        return;
    }
    use std::io::Read;
    use std::os::fd::{AsRawFd, OwnedFd};
    let fds = open_fds();
    let mut ev = EventLoop::new().unwrap();
    // Every low number std's error pipe could take (the lowest free ones,
    // counted once our ends exist) gets a passed fd.
    let pairs: Vec<_> = (0..8)
        .map(|_| std::os::unix::net::UnixStream::pair().unwrap())
        .collect();
    let lowest = std::fs::File::open("/dev/null").unwrap().as_raw_fd();
    let mut cmd = Command::new("/nonexistent/evloop-program");
    let mut ours = Vec::new();
    for ((mine, theirs), target) in pairs.into_iter().zip(lowest..) {
        mine.set_nonblocking(true).unwrap();
        ours.push(mine);
        cmd.fd(target, OwnedFd::from(theirs));
    }
    let err = process::spawn(&mut ev, cmd, |_, _| panic!("never")).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    assert!(
        err.to_string()
            .starts_with("spawn \"/nonexistent/evloop-program\""),
        "{err}"
    );
    for mine in &ours {
        let mut junk = [0u8; 64];
        // EOF (0): the child's copy closed and nothing was written.
        assert_eq!(
            (&*mine).read(&mut junk).unwrap(),
            0,
            "nothing written to a passed fd"
        );
    }
    drop(ours);
    ev.run().unwrap();
    drop(ev);
    assert_fds_back_to(fds);
}

/// follows libuv test/test-spawn.c spawn_detached: a detached child leads a
/// session and process group of its own; unref'd, it lets `run()` return
/// while it runs on, and `kill` with signal 0 finds it. Ref'd again, its
/// exit is collected.
#[test]
fn a_detached_unrefd_child_leads_its_own_session_and_outlives_run() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let mut cmd = Command::new("sleep");
    cmd.arg("30").detached(true);
    let (status, on_exit) = exit_slot();
    let child = process::spawn(&mut ev, cmd, on_exit).unwrap();
    assert!(child.has_ref());
    child.set_ref(&mut ev, false).unwrap();
    assert!(!child.has_ref());
    ev.run().unwrap(); // returns at once: nothing else is alive
    assert!(status.borrow().is_none());
    let pid = child.id();
    process::kill(pid as i32, 0).expect("still running");
    wait_for_exec(pid, "sleep");
    assert_eq!(
        group_and_session(pid),
        (pid as i32, pid as i32),
        "leads its group and session"
    );
    let (our_group, our_session) = group_and_session(std::process::id());
    assert_ne!(our_session, pid as i32);
    assert_ne!(our_group, pid as i32);

    child.set_ref(&mut ev, true).unwrap();
    process::kill(pid as i32, libc::SIGTERM).unwrap();
    ev.run().unwrap();
    assert_eq!(status.borrow().unwrap().signal(), Some(libc::SIGTERM));
    assert!(!child.has_ref(), "reaped");
    child.set_ref(&mut ev, true).unwrap(); // harmless once reaped
    assert!(!child.has_ref());
}

/// Without `detached`, the child stays in our session and process group.
#[test]
fn a_child_that_is_not_detached_shares_our_group_and_session() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let mut cmd = Command::new("sleep");
    cmd.arg("30");
    let (status, on_exit) = exit_slot();
    let child = process::spawn(&mut ev, cmd, on_exit).unwrap();
    wait_for_exec(child.id(), "sleep");
    assert_eq!(
        group_and_session(child.id()),
        group_and_session(std::process::id())
    );
    child.kill(libc::SIGKILL).unwrap();
    ev.run().unwrap();
    assert_eq!(status.borrow().unwrap().signal(), Some(libc::SIGKILL));
}

/// A signal sent to our process group reaches a child in it, not a detached
/// one (Node docs on `detached`; libuv spawn_detached). Runs on its own: it
/// makes its process a group leader and signals the whole group.
#[test]
fn a_signal_to_our_process_group_spares_a_detached_child() {
    if !common::isolated("a_signal_to_our_process_group_spares_a_detached_child") {
        return;
    }
    // SAFETY: this process (run alone) leads a new group and ignores
    // SIGUSR1; children start with it at its default (terminate).
    unsafe {
        assert_eq!(libc::setpgid(0, 0), 0);
        libc::signal(libc::SIGUSR1, libc::SIG_IGN);
    }
    let mut ev = EventLoop::new().unwrap();
    let (attached_status, on_exit) = exit_slot();
    let mut cmd = Command::new("sleep");
    cmd.arg("30");
    let attached = process::spawn(&mut ev, cmd, on_exit).unwrap();
    let (detached_status, on_exit) = exit_slot();
    let mut cmd = Command::new("sleep");
    cmd.arg("30").detached(true);
    let detached = process::spawn(&mut ev, cmd, on_exit).unwrap();
    wait_for_exec(attached.id(), "sleep");
    wait_for_exec(detached.id(), "sleep");
    process::kill(0, libc::SIGUSR1).unwrap(); // our whole process group
    attached.set_ref(&mut ev, true).unwrap();
    detached.set_ref(&mut ev, false).unwrap();
    ev.run().unwrap(); // until the attached child's exit
    assert_eq!(
        attached_status.borrow().unwrap().signal(),
        Some(libc::SIGUSR1)
    );
    assert!(detached_status.borrow().is_none());
    process::kill(detached.id() as i32, 0).expect("the detached child runs on");
    detached.set_ref(&mut ev, true).unwrap();
    detached.kill(libc::SIGKILL).unwrap();
    ev.run().unwrap();
    assert_eq!(
        detached_status.borrow().unwrap().signal(),
        Some(libc::SIGKILL)
    );
}

/// follows libuv test/test-ref.c process_ref (and Node
/// test/parallel/test-child-process-unref... `child.unref()`): an unref'd
/// child lets `run()` return; its exit is still collected when the loop
/// runs for something else.
#[test]
fn an_unrefd_child_lets_run_return_and_is_reaped_later() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let mut cmd = Command::new("sleep");
    cmd.arg("30");
    let (status, on_exit) = exit_slot();
    let child = process::spawn(&mut ev, cmd, on_exit).unwrap();
    child.set_ref(&mut ev, false).unwrap();
    assert!(!ev.is_alive());
    ev.run().unwrap();
    assert!(status.borrow().is_none());
    child.kill(libc::SIGTERM).unwrap();
    // The loop runs for a timer that waits for the exit callback; the
    // unref'd child's callback runs meanwhile.
    let s = status.clone();
    let waiting = ev.set_interval(std::time::Duration::from_millis(5), move |ev| {
        if s.borrow().is_some() {
            ev.stop();
        }
    });
    ev.run().unwrap();
    ev.clear_timer(waiting);
    assert_eq!(status.borrow().unwrap().signal(), Some(libc::SIGTERM));
}

/// follows libuv test/test-spawn.c spawn_setuid_setgid: as root, the child
/// runs as user and group 65534 ("nobody") with no supplementary groups.
/// Not as root, the spawn fails with EPERM (libuv spawn_setuid_fails).
#[test]
fn uid_and_gid_set_the_childs_ids() {
    let _g = serial();
    let fds = open_fds();
    let mut ev = EventLoop::new().unwrap();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "id -u; id -g; id -G"])
        .uid(65534)
        .gid(65534)
        .current_dir("/")
        .stdout(Stdio::Pipe);
    // SAFETY: getuid takes no arguments.
    let root = unsafe { libc::getuid() } == 0;
    match process::spawn(&mut ev, cmd, |_, st| assert!(st.success())) {
        Ok(mut child) => {
            assert!(root, "only root may change ids");
            let out = collect(&mut ev, child.stdout.take().unwrap());
            ev.run().unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.borrow()),
                "65534\n65534\n65534\n"
            );
        }
        Err(e) => {
            assert!(!root, "{e}");
            assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
            ev.run().unwrap();
        }
    }
    drop(ev);
    assert_fds_back_to(fds);
}

/// follows libuv test/test-spawn.c spawn_setuid_fails and
/// spawn_setgid_fails: without the privilege, asking for another user or
/// group is EPERM from `spawn`, with no child and no fd left behind. Runs
/// on its own: as root it first drops to 65534.
#[test]
fn uid_or_gid_without_privilege_is_permission_denied() {
    if !common::isolated("uid_or_gid_without_privilege_is_permission_denied") {
        return;
    }
    // SAFETY: this process, run alone, gives up root for good.
    unsafe {
        if libc::getuid() == 0 {
            assert_eq!(libc::setgroups(0, std::ptr::null()), 0);
            assert_eq!(libc::setgid(65534), 0);
            assert_eq!(libc::setuid(65534), 0);
        }
    }
    let fds = open_fds();
    let mut ev = EventLoop::new().unwrap();
    for (uid, gid) in [(Some(0), None), (None, Some(0)), (Some(0), Some(0))] {
        let mut cmd = Command::new("true");
        cmd.stdout(Stdio::Pipe);
        if let Some(uid) = uid {
            cmd.uid(uid);
        }
        if let Some(gid) = gid {
            cmd.gid(gid);
        }
        let err = process::spawn(&mut ev, cmd, |_, _| panic!("never")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
        assert_eq!(evloop::ErrorContext::os_error(&err), Some(libc::EPERM));
    }
    assert!(!ev.is_alive());
    ev.run().unwrap();
    drop(ev);
    assert_fds_back_to(fds);
    // No child left: waitpid finds none.
    // SAFETY: waitpid with a null status pointer.
    let none = unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) };
    assert_eq!(none, -1, "no child left to reap");
}

/// follows libuv test/test-spawn.c kill (uv_kill) and Node
/// test/parallel/test-process-kill-pid.js: signal 0 probes, a signal ends
/// the child, bad signal numbers are InvalidInput, a pid nobody has is
/// ESRCH, and our own reaped child refuses `Child::kill` with ESRCH.
#[test]
fn kill_any_pid_probes_signals_and_reports_errors() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let mut cmd = Command::new("sleep");
    cmd.arg("30");
    let (status, on_exit) = exit_slot();
    let child = process::spawn(&mut ev, cmd, on_exit).unwrap();
    let pid = child.id() as i32;
    process::kill(pid, 0).unwrap();
    process::kill(std::process::id() as i32, 0).expect("we exist");
    for bad in [-1, 65, 1000, i32::MIN] {
        let err = process::kill(pid, bad).unwrap_err();
        assert_eq!(
            err.kind(),
            io::ErrorKind::InvalidInput,
            "signal {bad}: {err}"
        );
    }
    process::kill(pid, 0).expect("a bad signal number sent nothing");
    let err = process::kill(i32::MAX, 0).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ESRCH), "{err}");
    process::kill(pid, libc::SIGTERM).unwrap();
    ev.run().unwrap();
    assert_eq!(status.borrow().unwrap().signal(), Some(libc::SIGTERM));
    assert_eq!(
        child.kill(0).unwrap_err().raw_os_error(),
        Some(libc::ESRCH),
        "a reaped child is gone, whoever has its pid now"
    );
}

/// A NUL byte in the program, an argument or the environment, and an
/// environment name holding '=', are InvalidInput before anything runs.
#[test]
fn nul_bytes_and_bad_environment_names_are_invalid_input() {
    let _g = serial();
    let fds = open_fds();
    let mut ev = EventLoop::new().unwrap();
    let mut cmds = Vec::new();
    cmds.push(Command::new("tr\0ue"));
    let mut c = Command::new("true");
    c.arg("a\0b");
    cmds.push(c);
    let mut c = Command::new("true");
    c.env("K", "v\0w");
    cmds.push(c);
    let mut c = Command::new("true");
    c.env("A=B", "v");
    cmds.push(c);
    let mut c = Command::new("true");
    c.env("", "v");
    cmds.push(c);
    for cmd in cmds {
        let err = process::spawn(&mut ev, cmd, |_, _| panic!("never")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    }
    drop(ev);
    assert_fds_back_to(fds);
}

/// `env_remove` and `env` override the inherited environment, and `PATH`
/// set for the child is the one searched for the program (as libuv).
#[test]
fn the_childs_environment_and_path_search() {
    let _g = serial();
    let mut ev = EventLoop::new().unwrap();
    let dir = std::env::temp_dir().join(format!("evloop-path-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("evloop-only-here");
    std::fs::write(
        &script,
        "#!/bin/sh\necho \"found; HOME=${HOME-unset} X=$X\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = Command::new("evloop-only-here");
    cmd.env("PATH", format!("{}:/usr/bin:/bin", dir.display()))
        .env("X", "1")
        .env("X", "2")
        .env_remove("HOME")
        .stdout(Stdio::Pipe);
    let mut child = process::spawn(&mut ev, cmd, |_, st| assert!(st.success())).unwrap();
    let out = collect(&mut ev, child.stdout.take().unwrap());
    ev.run().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.borrow()),
        "found; HOME=unset X=2\n"
    );
}

/// A working directory that does not exist is `NotFound` from `spawn` (std
/// changes directory before evloop's part of the child setup runs, and
/// reports through its own pipe), with extra fds passed too, and nothing
/// is left behind.
#[test]
fn a_missing_working_directory_is_an_error() {
    let _g = serial();
    let fds = open_fds();
    let mut ev = EventLoop::new().unwrap();
    let (r, w) = os_pipe();
    let mut cmd = Command::new("true");
    cmd.current_dir("/nonexistent/evloop-dir")
        .fd(3, r)
        .stdout(Stdio::Pipe);
    let err = process::spawn(&mut ev, cmd, |_, _| panic!("never")).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    assert!(!ev.is_alive());
    drop(w);
    drop(ev);
    assert_fds_back_to(fds);
}
