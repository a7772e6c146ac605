//! Shared reporting for the peer benchmark programs.

use std::time::Duration;

/// Peak resident set size in KiB (VmHWM).
pub fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Prints the JSON line every benchmark program prints.
pub fn report(peer: &str, workload: &str, n: u64, secs: f64, extra: &str) {
    println!(
        "{{\"peer\":\"{peer}\",\"workload\":\"{workload}\",\"n\":{n},\"secs\":{secs:.6},\"rate\":{:.0},\"rss_kb\":{}{extra}}}",
        n as f64 / secs,
        peak_rss_kb()
    );
}

/// `(workload, n)` from the command line, with the default n per workload.
pub fn args() -> (String, u64) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let w = args.first().cloned().unwrap_or_else(|| "W1".into());
    let default = if w.starts_with("W5") {
        100_000
    } else {
        1_000_000
    };
    let n = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(default);
    (w, n)
}

/// The W3 delay of timer `i`: 1 ms more every 1,000 timers.
pub fn w3_delay(i: u64) -> Duration {
    Duration::from_millis(i / 1000 + 1)
}
