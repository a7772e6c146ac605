//! Helpers shared by the tests: fd counting, an echo server, example
//! binaries, temporary directories.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};

use evloop::net::{tcp, Stream, TcpServer};
use evloop::EventLoop;

static SERIAL: Mutex<()> = Mutex::new(());

/// Tests that count open fds hold this, so others in the binary cannot
/// open or close fds meanwhile.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The fds this process has open, each with what it refers to
/// (`/proc/self/fd/N`'s link: a path, `socket:[inode]`, `pipe:[inode]`).
pub struct Fds(std::collections::BTreeMap<String, std::path::PathBuf>);

impl Fds {
    pub fn count(&self) -> usize {
        self.0.len()
    }
}

/// A snapshot of the open fds. The directory listing's own fd is closed
/// before the links are read, so it is not in the snapshot.
pub fn open_fds() -> Fds {
    let names: Vec<_> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let links = names
        .into_iter()
        .filter_map(|n| {
            let target = std::fs::read_link(format!("/proc/self/fd/{n}")).ok()?;
            Some((n, target))
        })
        .collect();
    Fds(links)
}

/// The open fd count.
pub fn fd_count() -> usize {
    open_fds().count()
}

/// The fds open now that were not open (to the same file or socket) in
/// `before`.
fn opened_since(before: &Fds) -> Vec<String> {
    let now = open_fds();
    now.0
        .iter()
        .filter(|(n, target)| before.0.get(*n) != Some(*target))
        .map(|(n, target)| format!("fd {n} -> {}", target.display()))
        .collect()
}

/// Asserts that every fd open now was open in `before`: nothing the test
/// opened is left. It compares sets rather than counts, so an fd that
/// something else in the process (the test harness starting a thread, a
/// lookup) held for a moment when `before` was taken does not count as
/// one closed too many. A pool thread may still hold the dropped loop for
/// a moment after posting its last result, so this waits (up to 10 s)
/// rather than looking once.
pub fn assert_fds_back_to(before: Fds) {
    let start = std::time::Instant::now();
    while !opened_since(&before).is_empty() && start.elapsed() < std::time::Duration::from_secs(10)
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(
        opened_since(&before),
        Vec::<String>::new(),
        "no fd left open"
    );
}

/// An echo server on 127.0.0.1 (port chosen by the OS): every byte read is
/// written back; at EOF the echo is flushed, then the connection closed.
pub fn echo_server(ev: &mut EventLoop) -> (TcpServer, SocketAddr) {
    let server = tcp::listen(
        ev,
        "127.0.0.1:0".parse().unwrap(),
        Default::default(),
        |ev, conn| {
            let conn = conn.expect("accept");
            echo(ev, &conn);
        },
    )
    .unwrap();
    let addr = server.local_addr().unwrap();
    (server, addr)
}

pub fn echo<K>(ev: &mut EventLoop, conn: &Stream<K>) {
    conn.read_start(ev, |ev, s, data| match data {
        Ok([]) => {
            let s2 = s.clone();
            let _ = s.shutdown_with(ev, move |ev, _| {
                let _ = s2.close(ev);
            });
        }
        Err(_) => {
            let _ = s.close(ev);
        }
        Ok(bytes) => {
            s.write_with(ev, bytes, |_, r| {
                let _ = r;
            })
            .unwrap();
        }
    })
    .unwrap();
}

/// For tests that change process-wide state (signal dispositions, limits):
/// in the test process, runs test `name` again in a child process of its own
/// (this test binary, with `--exact`) and returns how that child ended; in
/// the child, returns `None` (run the body there).
pub fn isolated_status(name: &str) -> Option<std::process::Output> {
    if std::env::var_os("EVLOOP_ISOLATED_CHILD").is_some() {
        return None;
    }
    // The child's output pipes are fds of this process: a test counting
    // fds meanwhile (they hold `serial`) would see them come and go.
    let _g = serial();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("EVLOOP_ISOLATED_CHILD", "1")
        .output()
        .unwrap();
    Some(out)
}

/// As [`isolated_status`], for a body that must pass: in the test process,
/// checks that the child ran the test and passed, and returns false; in the
/// child, returns true (run the body).
pub fn isolated(name: &str) -> bool {
    let Some(out) = isolated_status(name) else {
        return true;
    };
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{name}, run on its own, failed ({:?}):\n{text}",
        out.status
    );
    assert!(text.contains("1 passed"), "{name} did not run:\n{text}");
    false
}

/// target/<profile>/examples/<name>, built first if missing (when only this
/// test target was built).
pub fn example_path(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let path = profile_dir.join("examples").join(name);
    if !path.exists() {
        let mut cargo = std::process::Command::new(env!("CARGO"));
        cargo.args(["build", "--quiet", "--example", name]);
        if profile_dir.ends_with("release") {
            cargo.arg("--release");
        }
        assert!(cargo.status().unwrap().success(), "building example {name}");
    }
    path
}

/// An example server started with port 0, killed on drop; `port` is the one
/// it printed on its first line ("... listening on 127.0.0.1:PORT").
pub struct ExampleServer {
    child: std::process::Child,
    pub port: u16,
}

impl ExampleServer {
    pub fn start(name: &str) -> ExampleServer {
        use std::io::BufRead;
        let mut child = std::process::Command::new(example_path(name))
            .arg("0")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{name} printed {line:?}"));
        ExampleServer { child, port }
    }
}

impl Drop for ExampleServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh directory under the temp dir, removed on drop. Names include
/// the process id, so two test binaries never share one.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("evloop-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
