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
