//! The C side of diagnostics: the alive report as text, the metrics struct,
//! the timeline switch and the slow-callback threshold (`include/evloop.h`,
//! "Diagnostics"). Sites of callbacks set through the C API name the C API's
//! own source lines; the report's kinds, ids and ref states are what C
//! programs read there.

use std::ffi::{c_char, c_int, CStr};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use super::{errno, evl_loop, guard, guard_void, loop_mut, EINVAL};

/// `evl_metrics`: the same fields as [`crate::LoopMetrics`], durations in ns.
#[repr(C)]
#[derive(Debug, Default)]
pub struct evl_metrics {
    iterations: u64,
    timer_callbacks: u64,
    ready_callbacks: u64,
    io_callbacks: u64,
    posted_callbacks: u64,
    io_events: u64,
    idle_time_ns: u64,
    lag_max_ns: u64,
    lag_p50_ns: u64,
    lag_p99_ns: u64,
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[no_mangle]
pub unsafe extern "C" fn evl_metrics_get(lp: *mut evl_loop, out: *mut evl_metrics) -> c_int {
    guard(|| {
        if out.is_null() {
            return EINVAL;
        }
        let m = ev_or_einval!(lp).metrics();
        let c = evl_metrics {
            iterations: m.iterations,
            timer_callbacks: m.timer_callbacks,
            ready_callbacks: m.ready_callbacks,
            io_callbacks: m.io_callbacks,
            posted_callbacks: m.posted_callbacks,
            io_events: m.io_events,
            idle_time_ns: ns(m.idle_time),
            lag_max_ns: ns(m.lag_max),
            lag_p50_ns: ns(m.lag_p50),
            lag_p99_ns: ns(m.lag_p99),
        };
        // SAFETY: header contract: `out` points to a writable evl_metrics.
        unsafe { out.write(c) };
        0
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_alive_report(
    lp: *mut evl_loop,
    buf: *mut c_char,
    len: usize,
) -> isize {
    let mut rc = EINVAL as isize;
    guard_void(|| {
        if buf.is_null() && len > 0 {
            return;
        }
        // SAFETY: header contract: NULL or a live loop.
        let Some(ev) = (unsafe { loop_mut(lp) }) else {
            return;
        };
        let text = ev.alive_report().to_string();
        let bytes = text.as_bytes();
        if len > 0 {
            let n = bytes.len().min(len - 1);
            // SAFETY: `buf` has room for `len` bytes (header contract), and
            // n + 1 <= len; a Rust String never overlaps C's buffer.
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), n);
                buf.add(n).write(0);
            }
        }
        rc = isize::try_from(bytes.len()).unwrap_or(isize::MAX);
    });
    rc
}

#[no_mangle]
pub unsafe extern "C" fn evl_trace_start(lp: *mut evl_loop, path: *const c_char) -> c_int {
    guard(|| {
        if path.is_null() {
            return EINVAL;
        }
        // SAFETY: header contract: a NUL-terminated string.
        let path = unsafe { CStr::from_ptr(path) };
        let path = std::ffi::OsStr::from_bytes(path.to_bytes());
        if path.is_empty() {
            return EINVAL;
        }
        match ev_or_einval!(lp).start_trace(path) {
            Ok(()) => 0,
            Err(e) => errno(&e),
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_trace_stop(lp: *mut evl_loop) -> c_int {
    guard(|| match ev_or_einval!(lp).stop_trace() {
        Ok(stopped) => c_int::from(stopped),
        Err(e) => errno(&e),
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_set_slow_callback_ms(lp: *mut evl_loop, ms: i64) -> c_int {
    guard(|| {
        let threshold = u64::try_from(ms).ok().map(Duration::from_millis);
        ev_or_einval!(lp).set_slow_callback_threshold(threshold);
        0
    })
}
