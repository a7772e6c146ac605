//! Faults that change process-wide state: the fd limit reached, no memory
//! for a thread's stack, SIGCHLD ignored. Each test runs its body again in
//! a child process of its own (this test binary, with `--exact`), so the
//! limits it sets cannot disturb other tests.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::process::Command as StdCommand;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use evloop::net::{tcp, unix, Server, Stream};
use evloop::process::{self, Command};
use evloop::{ErrorContext, EventLoop};

/// In the test process: runs test `name` in a child process and checks that
/// it passed; returns false. In that child: returns true (run the body).
fn isolated(name: &str) -> bool {
    if std::env::var_os("EVLOOP_FAULT_CHILD").is_some() {
        return true;
    }
    let out = StdCommand::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("EVLOOP_FAULT_CHILD", "1")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{name}, run on its own, failed:\n{text}"
    );
    assert!(text.contains("1 passed"), "{name} did not run:\n{text}");
    false
}

fn set_fd_limit(soft: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: get/setrlimit with a valid struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = soft.min(lim.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Opens /dev/null until the fd limit is reached; dropping the result
/// frees them again.
fn use_up_fds() -> Vec<File> {
    let mut held = Vec::new();
    loop {
        match File::open("/dev/null") {
            Ok(f) => held.push(f),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::EMFILE));
                return held;
            }
        }
    }
}

/// Runs the loop for `d` of loop time; returns the passes it took.
fn run_for(ev: &mut EventLoop, d: Duration) -> u64 {
    let before = ev.iterations();
    let stop = ev.set_timeout(d, |ev| ev.stop());
    ev.run().unwrap();
    ev.clear_timer(stop);
    ev.iterations() - before
}

/// A server out of fds pauses, reports EMFILE once per episode, and serves
/// the clients that waited once fds are free again.
fn emfile_episode<K: 'static>(
    listen: impl FnOnce(
        &mut EventLoop,
        Box<dyn FnMut(&mut EventLoop, io::Result<Stream<K>>)>,
    ) -> Server<K>,
    connect: impl Fn() -> OwnedFd,
) {
    set_fd_limit(open_fds() as u64 + 64);
    let mut ev = EventLoop::new().unwrap();
    let errors = Rc::new(RefCell::new(Vec::new()));
    let accepted = Rc::new(RefCell::new(Vec::new()));
    let (e, a) = (errors.clone(), accepted.clone());
    let server = listen(
        &mut ev,
        Box::new(move |_, conn| match conn {
            Ok(s) => a.borrow_mut().push(s),
            Err(err) => e.borrow_mut().push(err.raw_os_error()),
        }),
    );
    let clients: Vec<OwnedFd> = (0..20).map(|_| connect()).collect();
    let held = use_up_fds();

    let passes = run_for(&mut ev, Duration::from_millis(300));
    assert_eq!(*errors.borrow(), [Some(libc::EMFILE)], "reported once");
    assert!(accepted.borrow().is_empty());
    assert!(server.is_paused());
    // Backoff 5, 10, 20, ... ms: a handful of passes, not one per accept try.
    assert!(passes < 100, "{passes} passes in 300 ms: the loop spins");

    drop(held);
    let start = std::time::Instant::now();
    while accepted.borrow().len() < 20 && start.elapsed() < Duration::from_secs(10) {
        ev.run_once().unwrap();
    }
    assert_eq!(
        accepted.borrow().len(),
        20,
        "the waiting clients are served"
    );
    assert_eq!(errors.borrow().len(), 1);
    assert!(!server.is_paused());

    // A new episode is reported again.
    let late = connect();
    let held = use_up_fds();
    run_for(&mut ev, Duration::from_millis(100));
    assert_eq!(errors.borrow().len(), 2);
    drop(held);

    // Closing while paused clears the retry timer: run() returns.
    for s in accepted.borrow().iter() {
        s.close(&mut ev);
    }
    assert!(server.close(&mut ev));
    ev.run().unwrap();
    drop((clients, late));
}

#[test]
fn emfile_on_a_tcp_server_pauses_instead_of_spinning() {
    if !isolated("emfile_on_a_tcp_server_pauses_instead_of_spinning") {
        return;
    }
    let addr = Rc::new(Cell::new(None));
    let a = addr.clone();
    emfile_episode(
        move |ev, cb| {
            let s =
                tcp::listen(ev, "127.0.0.1:0".parse().unwrap(), Default::default(), cb).unwrap();
            a.set(Some(s.local_addr().unwrap()));
            s
        },
        move || {
            std::net::TcpStream::connect(addr.get().unwrap())
                .unwrap()
                .into()
        },
    );
}

#[test]
fn emfile_on_a_unix_server_pauses_instead_of_spinning() {
    if !isolated("emfile_on_a_unix_server_pauses_instead_of_spinning") {
        return;
    }
    let path = std::env::temp_dir().join(format!("evloop-emfile-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let p = path.clone();
    emfile_episode(
        move |ev, cb| unix::listen(ev, &p, 128, cb).unwrap(),
        || {
            std::os::unix::net::UnixStream::connect(&path)
                .unwrap()
                .into()
        },
    );
    let _ = std::fs::remove_file(
        std::env::temp_dir().join(format!("evloop-emfile-{}.sock", std::process::id())),
    );
}

fn exit_code_of(ev: &mut EventLoop, program: &str, args: &[&str]) -> Rc<Cell<Option<i32>>> {
    let code = Rc::new(Cell::new(None));
    let c = code.clone();
    let mut cmd = Command::new(program);
    cmd.args(args);
    process::spawn(ev, cmd, move |_, status| {
        assert!(c.get().is_none(), "one exit callback");
        c.set(Some(status.code().expect("exited")));
    })
    .expect("spawn");
    code
}

#[test]
fn children_are_reaped_by_us_even_if_sigchld_was_ignored() {
    if !isolated("children_are_reaped_by_us_even_if_sigchld_was_ignored") {
        return;
    }
    // SAFETY: setting SIGCHLD's disposition, in this process of our own.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    let mut ev = EventLoop::new().unwrap();
    let a = exit_code_of(&mut ev, "true", &[]);
    let b = exit_code_of(&mut ev, "sh", &["-c", "exit 7"]);
    ev.run().unwrap();
    assert_eq!((a.get(), b.get()), (Some(0), Some(7)));

    // The same with a handler that asks the kernel to reap (SA_NOCLDWAIT).
    extern "C" fn nothing(_: libc::c_int) {}
    // SAFETY: installs a valid handler with a zeroed, valid sigaction.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = nothing as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_NOCLDWAIT;
        libc::sigaction(libc::SIGCHLD, &sa, std::ptr::null_mut());
    }
    let c = exit_code_of(&mut ev, "sh", &["-c", "exit 3"]);
    ev.run().unwrap();
    assert_eq!(c.get(), Some(3));
}

/// Children of this process (alive or zombie), from /proc.
fn children() -> Vec<u32> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
            let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            after.split_whitespace().nth(1) == Some(me.as_str())
        })
        .collect()
}

/// Whatever the fd limit, a spawn either works or fails with EMFILE and
/// leaves no child and no fd behind. (Here std's spawn runs out first:
/// the steps after the fork need fewer fds than the fork itself; the test
/// below reaches those steps with a seccomp filter.)
#[test]
fn a_spawn_under_any_fd_limit_leaves_no_child_and_no_fd() {
    if !isolated("a_spawn_under_any_fd_limit_leaves_no_child_and_no_fd") {
        return;
    }
    let mut ev = EventLoop::new().unwrap();
    let base = open_fds() as u64;
    for extra in 0..12 {
        set_fd_limit(base + extra);
        let exits = Rc::new(Cell::new(0));
        let e = exits.clone();
        let mut cmd = Command::new("sleep");
        cmd.arg("30")
            .stdin(process::Stdio::Pipe)
            .stdout(process::Stdio::Pipe)
            .stderr(process::Stdio::Pipe);
        let result = process::spawn(&mut ev, cmd, move |_, _| e.set(e.get() + 1));
        set_fd_limit(base + 64);
        match result {
            Ok(child) => {
                child.kill(libc::SIGKILL).unwrap();
                for s in [&child.stdin, &child.stdout, &child.stderr]
                    .into_iter()
                    .flatten()
                {
                    s.close(&mut ev);
                }
                ev.run().unwrap();
                assert_eq!(exits.get(), 1);
            }
            Err(err) => {
                assert_eq!(ErrorContext::os_error(&err), Some(libc::EMFILE), "{err}");
                assert!(err.to_string().starts_with("spawn \"sleep\": "), "{err}");
                ev.run().unwrap();
                assert_eq!(exits.get(), 0, "a failed spawn never calls back");
            }
        }
        assert_eq!(
            children(),
            Vec::<u32>::new(),
            "no child left at +{extra} fds"
        );
        assert_eq!(open_fds() as u64, base, "no fd left at +{extra} fds");
    }
}

/// Makes the system call `nr` fail with `errno` in this thread (and the
/// children it starts), with a seccomp filter: a fault injected by the
/// kernel, not by the library.
fn fail_syscall(nr: libc::c_long, errno: i32) {
    let filter = [
        // A = seccomp_data.nr
        libc::sock_filter {
            code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
            jt: 0,
            jf: 0,
            k: 0,
        },
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: nr as u32,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | (errno as u32 & 0xffff),
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        },
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prctl and seccomp with a valid, live filter program.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &prog as *const libc::sock_fprog
            ),
            0,
            "seccomp: {}",
            io::Error::last_os_error()
        );
    }
}

/// The child was forked, then watching its exit failed (pidfd_open: EMFILE):
/// spawn returns the error, the child is killed and reaped, its pipes are
/// closed and unwatched, and the exit callback never runs.
#[test]
fn a_spawn_that_fails_after_the_fork_leaves_no_child_and_no_fd() {
    if !isolated("a_spawn_that_fails_after_the_fork_leaves_no_child_and_no_fd") {
        return;
    }
    let mut ev = EventLoop::new().unwrap();
    let base = open_fds();
    fail_syscall(libc::SYS_pidfd_open, libc::EMFILE);
    let mut cmd = Command::new("sleep");
    cmd.arg("30")
        .stdin(process::Stdio::Pipe)
        .stdout(process::Stdio::Pipe)
        .stderr(process::Stdio::Pipe);
    let err = process::spawn(&mut ev, cmd, |_, _| panic!("never")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EMFILE));
    assert_eq!(children(), Vec::<u32>::new(), "killed and reaped");
    ev.run().unwrap(); // the pipes' close callbacks; nothing else is alive
    assert_eq!(ev.watcher_count(), 0);
    assert_eq!(open_fds(), base);
}

/// Without pidfds (kernels before 5.3: ENOSYS), a SIGCHLD watcher finds the
/// child's exit instead.
#[test]
fn without_pidfds_the_exit_is_found_through_sigchld() {
    if !isolated("without_pidfds_the_exit_is_found_through_sigchld") {
        return;
    }
    fail_syscall(libc::SYS_pidfd_open, libc::ENOSYS);
    let mut ev = EventLoop::new().unwrap();
    let a = exit_code_of(&mut ev, "sh", &["-c", "exit 5"]);
    let b = exit_code_of(&mut ev, "sh", &["-c", "sleep 0.2; exit 6"]);
    ev.run().unwrap();
    assert_eq!((a.get(), b.get()), (Some(5), Some(6)));
    assert_eq!(ev.watcher_count(), 0);
}

/// Sets the address-space limit to what is mapped now plus `extra` bytes.
fn limit_address_space(extra: u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    let lim = libc::rlimit {
        rlim_cur: kib * 1024 + extra,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit with a valid struct.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) }, 0);
}

fn lift_address_space_limit() {
    let lim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit with a valid struct.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) }, 0);
}

#[test]
fn a_pool_thread_that_cannot_start_never_leaves_a_job_behind() {
    if !isolated("a_pool_thread_that_cannot_start_never_leaves_a_job_behind") {
        return;
    }
    let mut ev = EventLoop::new().unwrap();
    ev.set_pool_size(2).unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let done = Rc::new(RefCell::new(Vec::new()));

    // No thread yet, and none can start: an error, and the job is gone.
    limit_address_space(256 * 1024); // far less than a thread stack
    let r = ran.clone();
    let d = done.clone();
    let first = ev.spawn_blocking(
        move || r.fetch_add(1, Ordering::SeqCst),
        move |_, _| d.borrow_mut().push("first"),
    );
    lift_address_space_limit();
    assert!(first.is_err(), "no pool thread could start");

    // A thread starts for the next job; the failed one must not run on it.
    let (release, wait) = mpsc::channel::<()>();
    let (started, running) = mpsc::channel::<()>();
    let r = ran.clone();
    let d = done.clone();
    ev.spawn_blocking(
        move || {
            started.send(()).unwrap();
            wait.recv().unwrap();
            r.fetch_add(10, Ordering::SeqCst)
        },
        move |_, _| d.borrow_mut().push("blocker"),
    )
    .unwrap(); // starts the first thread
    running.recv().unwrap(); // set up and running: nothing of it left to map

    // One thread runs, a second cannot start: the job waits for the first.
    limit_address_space(256 * 1024);
    let r = ran.clone();
    let d = done.clone();
    let third = ev.spawn_blocking(
        move || r.fetch_add(100, Ordering::SeqCst),
        move |_, _| d.borrow_mut().push("third"),
    );
    lift_address_space_limit();
    assert!(third.is_ok(), "a running thread will take it: {third:?}");
    release.send(()).unwrap();
    ev.run().unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 110);
    assert_eq!(*done.borrow(), ["blocker", "third"]);
}
