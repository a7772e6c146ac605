//! The Python ctypes binding (examples/python/evloop.py) runs its demo:
//! evloop driving the thread (timers, a post from another thread, an fd
//! watcher, an exception in a callback) and evloop embedded in asyncio's
//! loop through evl_backend_fd / evl_backend_timeout.

use std::path::Path;
use std::process::Command;

#[test]
fn the_ctypes_binding_drives_and_embeds_evloop() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let mut cargo = Command::new(env!("CARGO"));
    cargo.args(["build", "--quiet", "--lib"]).current_dir(root);
    if dir.ends_with("release") {
        cargo.arg("--release");
    }
    assert!(cargo.status().unwrap().success());
    let out = Command::new("python3")
        .arg(root.join("examples/python/demo.py"))
        .arg(dir.join("libevloop.so"))
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[..10],
        [
            "One",
            "One",
            "One",
            "Two",
            "Two",
            "Two",
            "posted from a thread",
            "pipe says hi",
            "callback error re-raised by run",
            "callables still held: 0",
        ]
    );
    let ms: u64 = lines[10]
        .strip_prefix("evloop timer after ")
        .and_then(|s| s.strip_suffix(" ms"))
        .unwrap_or_else(|| panic!("{}", lines[10]))
        .parse()
        .unwrap();
    assert!(ms >= 50, "never early: {ms}");
    assert_eq!(lines[11..], ["asyncio ran 1 timer meanwhile", "done"]);
}
