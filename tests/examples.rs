//! The seed's examples: the synchronous and the asynchronous count.
//! `cargo test` builds examples; this runs the built binaries.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// target/<profile>/examples/<name>, found from this test's own path; built
/// first when only this test target was (`cargo test --test examples`).
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let path = profile_dir.join("examples").join(name);
    if !path.exists() {
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args(["build", "--quiet", "--example", name]);
        if profile_dir.ends_with("release") {
            cargo.arg("--release");
        }
        assert!(cargo.status().unwrap().success(), "building example {name}");
    }
    path
}

fn run(name: &str) -> (Vec<String>, Duration) {
    let start = Instant::now();
    let out = Command::new(example(name))
        .output()
        .expect("example built by cargo test");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    (lines, took)
}

#[test]
fn count_runs_the_three_counts_concurrently() {
    let (lines, took) = run("count");
    assert_eq!(lines, ["One", "One", "One", "Two", "Two", "Two"]);
    assert!(
        took >= Duration::from_secs(1),
        "the timers never run early: {took:?}"
    );
    assert!(took < Duration::from_secs(2), "count took {took:?}");
}

#[test]
fn count_sync_runs_them_one_after_another() {
    let (lines, took) = run("count_sync");
    assert_eq!(lines, ["One", "Two", "One", "Two", "One", "Two"]);
    assert!(took >= Duration::from_secs(3), "count_sync took {took:?}");
}
