//! The screenshot example (examples/screenshot.rs): against Debian's
//! Chromium when it is installed (CI installs it), and always against fake
//! browsers, small shell scripts that crash, hang, send garbage or answer
//! with a protocol error on fds 3 and 4. Every run checks that nothing of
//! the browser is left: no live process in its process group and none
//! naming its profile, and the profile directory removed.
//!
//! In the spirit of puppeteer's launcher specs (test/src/launcher.spec.ts:
//! an executable that cannot be started is an error; `browser.close()`
//! ends the browser process) and its screenshot spec
//! (test/src/screenshot.spec.ts: a capture has the viewport's size).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::example_path;

/// Held while a fake browser script is written and while the example is
/// spawned: a fork in another test thread while a script is open for
/// writing would make its exec fail with ETXTBSY.
static SPAWNING: Mutex<()> = Mutex::new(());

/// A directory of the test's own, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "evloop-screenshot-test-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        Scratch(dir)
    }

    /// Writes an executable shell script `name` with `body`.
    fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.0.join(name);
        let _spawning = SPAWNING.lock().unwrap_or_else(|e| e.into_inner());
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the example with `args` and `env`, killing it if it takes more than
/// 60 s (a hang is a failure, not a stuck test run).
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(example_path("screenshot"));
    cmd.args(args)
        .env_remove("SCREENSHOT_BROWSER")
        .env_remove("SCREENSHOT_STEP_TIMEOUT_MS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = {
        let _spawning = SPAWNING.lock().unwrap_or_else(|e| e.into_inner());
        cmd.spawn().unwrap()
    };
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the example hung; stdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The browser's pid and profile directory, from the "browser pid N,
/// profile DIR" line.
fn browser_of(out: &Output) -> (u32, PathBuf) {
    let stdout = text(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("browser pid "))
        .unwrap_or_else(|| panic!("no browser pid in:\n{stdout}"));
    let (pid, profile) = line.split_once(", profile ").unwrap();
    (pid.parse().unwrap(), PathBuf::from(profile))
}

/// Live processes (not zombies) in process group `pgid`, or with `path` in
/// their command line.
fn leftovers(pgid: u32, path: &Path) -> Vec<String> {
    let needle = path.as_os_str().as_encoded_bytes();
    let mut left = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap() {
        let name = entry.unwrap().file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue; // gone meanwhile
        };
        let (comm, rest) = stat.rsplit_once(')').unwrap();
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if matches!(fields[0], "Z" | "X") {
            continue;
        }
        let in_group = fields[2] == pgid.to_string();
        let names_path = std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.windows(needle.len()).any(|w| w == needle));
        if in_group || names_path {
            left.push(format!("{pid} {comm})"));
        }
    }
    left
}

/// Nothing of the browser outlived the example.
fn assert_browser_gone(out: &Output) {
    let (pid, profile) = browser_of(out);
    assert_eq!(
        leftovers(pid, &profile),
        Vec::<String>::new(),
        "processes of browser {pid} left"
    );
    assert!(!profile.exists(), "{} was not removed", profile.display());
}

fn assert_failed(out: &Output, stderr_has: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}, stderr:\n{stderr}",
        out.status
    );
    assert!(
        stderr.contains(stderr_has),
        "expected {stderr_has:?} in stderr:\n{stderr}"
    );
}

/// Chromium as the example looks for it.
fn chromium_installed() -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| dir.join("chromium").is_file())
}

/// Width and height from a PNG's IHDR chunk, after checking the signature.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.len() > 33, "a PNG of {} bytes", png.len());
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&png[8..16], b"\0\0\0\x0dIHDR", "IHDR first, 13 bytes");
    let be = |b: &[u8]| u32::from_be_bytes(b.try_into().unwrap());
    (be(&png[16..20]), be(&png[20..24]))
}

// ---------------------------------------------------------------------------
// With Chromium.

#[test]
fn captures_the_served_page_at_the_requested_size() {
    if !chromium_installed() {
        eprintln!("note: chromium is not installed (apt-get install chromium); skipped");
        return;
    }
    let dir = Scratch::new("capture");
    let png = dir.0.join("count.png");
    let out = run(&[png.to_str().unwrap(), "640x360"], &[]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&out.stderr)
    );
    assert_eq!(png_size(&std::fs::read(&png).unwrap()), (640, 360));
    assert!(stdout.contains("served / (200 OK)"), "{stdout}");
    // Every step printed its duration, in order.
    let steps = [
        "launch",
        "create target",
        "attach",
        "set viewport",
        "enable events",
        "navigate",
        "load event",
        "capture PNG",
        "write PNG",
        "close browser",
    ];
    let mut at = 0;
    for step in steps {
        let found = stdout[at..]
            .lines()
            .position(|l| l.trim_start().starts_with(step) && l.ends_with(" ms"));
        assert!(
            found.is_some(),
            "step {step:?} not reported in order:\n{stdout}"
        );
        at += stdout[at..].find(step).unwrap() + step.len();
    }
    assert_browser_gone(&out);
}

#[test]
fn a_page_that_cannot_load_fails_the_navigate_step() {
    if !chromium_installed() {
        eprintln!("note: chromium is not installed (apt-get install chromium); skipped");
        return;
    }
    let dir = Scratch::new("refused");
    let png = dir.0.join("never.png");
    // A port that was free a moment ago: the connection is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/");
    let out = run(&[png.to_str().unwrap(), &url], &[]);
    assert_failed(
        &out,
        &format!("step 'navigate' failed: {url}: net::ERR_CONNECTION_REFUSED"),
    );
    assert!(!png.exists(), "no PNG for a page that did not load");
    assert_browser_gone(&out);
}

// ---------------------------------------------------------------------------
// Without a browser, or with fake ones.

#[test]
fn no_chromium_says_how_to_install_it() {
    let dir = Scratch::new("nobrowser");
    let png = dir.0.join("out.png");
    let empty_path = dir.0.to_str().unwrap();
    for env in [
        vec![("PATH", empty_path)],
        vec![("SCREENSHOT_BROWSER", "/nonexistent/chromium")],
    ] {
        let out = run(&[png.to_str().unwrap()], &env);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{env:?}: {stderr}");
        assert!(stderr.contains("apt-get install chromium"), "{stderr}");
        assert!(!png.exists());
    }
}

#[test]
fn bad_arguments_are_a_usage_error() {
    for args in [
        &[][..],
        &["out.png", "0x10"],
        &["out.png", "640x480", "320x200"],
        &["out.png", "not-a-url"],
    ] {
        let out = run(args, &[("SCREENSHOT_BROWSER", "/nonexistent")]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("usage: screenshot OUT.png"), "{stderr}");
    }
}

#[test]
fn a_browser_that_crashes_fails_the_launch_step() {
    let dir = Scratch::new("crash");
    let fake = dir.script("crash", "echo 'fake browser: giving up' >&2\nexit 3");
    let png = dir.0.join("out.png");
    let out = run(
        &[png.to_str().unwrap()],
        &[("SCREENSHOT_BROWSER", fake.to_str().unwrap())],
    );
    assert_failed(
        &out,
        "step 'launch' failed: the browser exited (exit status: 3)",
    );
    assert!(
        text(&out.stderr).contains("    fake browser: giving up"),
        "the browser's stderr is shown"
    );
    assert_browser_gone(&out);
}

#[test]
fn a_browser_that_hangs_times_out_and_is_killed_with_its_children() {
    let dir = Scratch::new("hang");
    // A helper in the background, as Chromium's zygote: it dies too.
    let fake = dir.script("hang", "sleep 60 &\nexec sleep 60");
    let png = dir.0.join("out.png");
    let start = Instant::now();
    let out = run(
        &[png.to_str().unwrap()],
        &[
            ("SCREENSHOT_BROWSER", fake.to_str().unwrap()),
            ("SCREENSHOT_STEP_TIMEOUT_MS", "300"),
        ],
    );
    assert_failed(&out, "step 'launch' failed: no answer within 0.3 s");
    assert!(start.elapsed() < Duration::from_secs(30), "timed out late");
    assert_browser_gone(&out);
}

#[test]
fn a_protocol_error_names_the_step() {
    let dir = Scratch::new("protoerr");
    // Answers the first command (Browser.getVersion), fails the second
    // (Target.createTarget), then hangs.
    let fake = dir.script(
        "protoerr",
        r#"printf '{"id":1,"result":{"product":"Fake/1.0"}}\000' >&4
printf '{"id":2,"error":{"code":-32000,"message":"no targets here"}}\000' >&4
exec sleep 60"#,
    );
    let png = dir.0.join("out.png");
    let out = run(
        &[png.to_str().unwrap()],
        &[("SCREENSHOT_BROWSER", fake.to_str().unwrap())],
    );
    assert_failed(
        &out,
        "step 'create target' failed: protocol error -32000: no targets here",
    );
    assert!(text(&out.stdout).contains("browser: Fake/1.0"));
    assert_browser_gone(&out);
}

#[test]
fn garbage_from_the_browser_is_an_error() {
    let dir = Scratch::new("garbage");
    let fake = dir.script("garbage", "printf 'hello\\000' >&4\nexec sleep 60");
    let png = dir.0.join("out.png");
    let out = run(
        &[png.to_str().unwrap()],
        &[("SCREENSHOT_BROWSER", fake.to_str().unwrap())],
    );
    assert_failed(
        &out,
        "step 'launch' failed: the browser sent \"hello\", not JSON",
    );
    assert_browser_gone(&out);
}

#[test]
fn sigterm_ends_the_run_and_the_browser() {
    let dir = Scratch::new("sigterm");
    let fake = dir.script("sleeper", "exec sleep 60");
    let png = dir.0.join("out.png");
    let mut child = {
        let _spawning = SPAWNING.lock().unwrap_or_else(|e| e.into_inner());
        Command::new(example_path("screenshot"))
            .arg(&png)
            .env("SCREENSHOT_BROWSER", &fake)
            .env_remove("SCREENSHOT_STEP_TIMEOUT_MS")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Wait for the browser to be up ("browser pid" is printed after spawn).
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("browser pid") {
        let mut line = String::new();
        let n = std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        assert!(n > 0, "the example ended early: {seen}");
        seen.push_str(&line);
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("SIGTERM did not end the example");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let mut out = child.wait_with_output().unwrap();
    out.stdout = format!("{seen}{rest}").into_bytes();
    assert_failed(&out, "step 'launch' failed: interrupted by signal 15");
    assert_browser_gone(&out);
}

#[test]
fn the_readme_shows_the_example_code_verbatim() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/screenshot.rs"
    ))
    .unwrap();
    let start = readme.find("fn goto(").expect("README shows fn goto");
    let end = start + readme[start..].find("```").unwrap();
    let snippet = &readme[start..end];
    assert!(snippet.lines().count() > 10, "{snippet}");
    assert!(
        example.contains(snippet),
        "README's goto differs from examples/screenshot.rs:\n{snippet}"
    );
}
