//! Loop metrics: counters and a histogram of timer lateness, always on.
//!
//! Each counter is a plain `u64` add where the loop already knows the number
//! (a ready phase adds how many it ran, once). Idle time is measured around
//! the poller only when the poll could block (two clock reads beside a
//! syscall that waits), as libuv's `uv_metrics_idle_time`. Loop lag is how
//! late each timer ran after its deadline, kept in a log-linear histogram
//! (8 steps per power of two: quantiles are exact to 12.5 %), so p50 and p99
//! cost 4 KiB and one add per timer, never a sort.

use std::time::Duration;

/// What the loop has done so far, as [`EventLoop::metrics`](crate::EventLoop::metrics)
/// returns it. Plain data; the C API returns the same as `evl_metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoopMetrics {
    /// Passes run (as [`EventLoop::iterations`](crate::EventLoop::iterations)).
    pub iterations: u64,
    /// Timer callbacks run (one-shot and interval calls).
    pub timer_callbacks: u64,
    /// `call_soon` callbacks run (including the loop's own).
    pub ready_callbacks: u64,
    /// Watcher callbacks run.
    pub io_callbacks: u64,
    /// Callbacks posted from other threads (or by pool jobs) that ran.
    pub posted_callbacks: u64,
    /// Readiness events the poller reported.
    pub io_events: u64,
    /// Time spent blocked in the poller (libuv's `uv_metrics_idle_time`).
    pub idle_time: Duration,
    /// How late the latest-running timer ran after its deadline (loop lag).
    pub lag_max: Duration,
    /// Median timer lateness (to 12.5 %).
    pub lag_p50: Duration,
    /// 99th percentile of timer lateness (to 12.5 %).
    pub lag_p99: Duration,
}

const SUB_BITS: u32 = 3;
const SUBS: usize = 1 << SUB_BITS;
/// Values below this are their own bucket.
const LINEAR: u64 = 2 * SUBS as u64;
const BUCKETS: usize = LINEAR as usize + (64 - (SUB_BITS + 1) as usize) * SUBS;

/// The loop's running counts.
pub(crate) struct Counters {
    pub(crate) timer_callbacks: u64,
    pub(crate) ready_callbacks: u64,
    pub(crate) io_callbacks: u64,
    pub(crate) posted_callbacks: u64,
    pub(crate) io_events: u64,
    pub(crate) idle_ns: u64,
    lag_max_ns: u64,
    lag: Box<[u64; BUCKETS]>,
    lag_count: u64,
}

impl Default for Counters {
    fn default() -> Counters {
        Counters {
            timer_callbacks: 0,
            ready_callbacks: 0,
            io_callbacks: 0,
            posted_callbacks: 0,
            io_events: 0,
            idle_ns: 0,
            lag_max_ns: 0,
            lag: Box::new([0; BUCKETS]),
            lag_count: 0,
        }
    }
}

fn bucket(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros(); // >= SUB_BITS + 1
    let sub = (v >> (exp - SUB_BITS)) as usize & (SUBS - 1);
    LINEAR as usize + (exp - (SUB_BITS + 1)) as usize * SUBS + sub
}

/// The largest value that falls in bucket `b`.
fn bucket_top(b: usize) -> u64 {
    if b < LINEAR as usize {
        return b as u64;
    }
    let k = b - LINEAR as usize;
    let exp = (k / SUBS) as u32 + SUB_BITS + 1;
    let sub = (k % SUBS) as u64;
    let low = (1u64 << exp) | (sub << (exp - SUB_BITS));
    low.saturating_add((1u64 << (exp - SUB_BITS)) - 1)
}

impl Counters {
    /// A timer ran `late_ns` after its deadline.
    #[inline]
    pub(crate) fn timer_ran(&mut self, late_ns: u64) {
        self.timer_callbacks += 1;
        self.lag_max_ns = self.lag_max_ns.max(late_ns);
        self.lag[bucket(late_ns)] += 1;
        self.lag_count += 1;
    }

    fn quantile(&self, q: f64) -> u64 {
        if self.lag_count == 0 {
            return 0;
        }
        let rank = ((self.lag_count as f64 * q).ceil() as u64).clamp(1, self.lag_count);
        let mut seen = 0;
        for (b, &n) in self.lag.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return bucket_top(b).min(self.lag_max_ns);
            }
        }
        self.lag_max_ns
    }

    pub(crate) fn snapshot(&self, iterations: u64) -> LoopMetrics {
        LoopMetrics {
            iterations,
            timer_callbacks: self.timer_callbacks,
            ready_callbacks: self.ready_callbacks,
            io_callbacks: self.io_callbacks,
            posted_callbacks: self.posted_callbacks,
            io_events: self.io_events,
            idle_time: Duration::from_nanos(self.idle_ns),
            lag_max: Duration::from_nanos(self.lag_max_ns),
            lag_p50: Duration::from_nanos(self.quantile(0.50)),
            lag_p99: Duration::from_nanos(self.quantile(0.99)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut last = 0;
        for v in (0..10_000u64).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
            let b = bucket(v);
            assert!(b < BUCKETS, "{v}");
            assert!(b >= last || v > 10_000);
            assert!(bucket_top(b) >= v, "{v} above its bucket's top");
            assert!(bucket_top(b) - v <= v / 8, "{v}: bucket too wide");
            last = b;
        }
    }

    #[test]
    fn quantiles_are_within_an_eighth() {
        let mut c = Counters::default();
        for ms in 1..=100u64 {
            c.timer_ran(ms * 1_000_000);
        }
        let m = c.snapshot(0);
        assert_eq!(m.timer_callbacks, 100);
        assert_eq!(m.lag_max, Duration::from_millis(100));
        let p50 = m.lag_p50.as_nanos() as f64 / 50e6;
        let p99 = m.lag_p99.as_nanos() as f64 / 99e6;
        assert!((1.0..=1.125).contains(&p50), "{m:?}");
        assert!((1.0..=1.125).contains(&p99), "{m:?}");
        assert_eq!(Counters::default().snapshot(0).lag_p99, Duration::ZERO);
    }
}
