//! C entry points for changing timers after they were set (refresh, period,
//! due time) and for callbacks that can be taken back before they run
//! (`evl_call_soon_cancellable`, Node's `setImmediate`/`clearImmediate`).

use std::ffi::{c_int, c_void};
use std::time::Duration;

use super::loop_api::c_callback;
use super::{errno, evl_cb, evl_free_cb, evl_loop, guard, hand_out, shared_data, EINVAL};
use crate::{SoonId, TimerId};

#[no_mangle]
pub unsafe extern "C" fn evl_timer_refresh(lp: *mut evl_loop, id: u64) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        ev.refresh_timer(TimerId::from_u64(id))
            .map_or_else(|e| errno(&e), |()| 0)
    })
}

/// The period of interval `id` written to `out` in units of `unit`.
fn get_period(lp: *mut evl_loop, id: u64, out: *mut u64, unit: Duration) -> c_int {
    guard(|| {
        if out.is_null() {
            return EINVAL;
        }
        let ev = ev_or_einval!(lp);
        match ev.timer_period(TimerId::from_u64(id)) {
            Ok(period) => {
                let n = period.as_nanos() / unit.as_nanos();
                // SAFETY: checked non-null; C passes a writable pointer.
                unsafe { out.write(u64::try_from(n).unwrap_or(u64::MAX)) };
                0
            }
            Err(e) => errno(&e),
        }
    })
}

fn set_period(lp: *mut evl_loop, id: u64, period: Duration) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        ev.set_timer_period(TimerId::from_u64(id), period)
            .map_or_else(|e| errno(&e), |()| 0)
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_timer_get_period(lp: *mut evl_loop, id: u64, ms: *mut u64) -> c_int {
    get_period(lp, id, ms, Duration::from_millis(1))
}

#[no_mangle]
pub unsafe extern "C" fn evl_timer_get_period_ns(
    lp: *mut evl_loop,
    id: u64,
    ns: *mut u64,
) -> c_int {
    get_period(lp, id, ns, Duration::from_nanos(1))
}

#[no_mangle]
pub unsafe extern "C" fn evl_timer_set_period(lp: *mut evl_loop, id: u64, ms: u64) -> c_int {
    set_period(lp, id, Duration::from_millis(ms))
}

#[no_mangle]
pub unsafe extern "C" fn evl_timer_set_period_ns(lp: *mut evl_loop, id: u64, ns: u64) -> c_int {
    set_period(lp, id, Duration::from_nanos(ns))
}

#[no_mangle]
pub unsafe extern "C" fn evl_timer_due_in_ms(lp: *mut evl_loop, id: u64) -> i64 {
    let mut rc = i64::from(EINVAL);
    super::guard_void(|| {
        // SAFETY: header contract: NULL or a live loop.
        let Some(ev) = (unsafe { super::loop_mut(lp) }) else {
            return;
        };
        rc = match ev.timer_due_in(TimerId::from_u64(id)) {
            // Rounded up, as evl_backend_timeout: 0 only when due now.
            Some(t) => i64::try_from(t.as_nanos().div_ceil(1_000_000)).unwrap_or(i64::MAX),
            None => i64::from(-libc::ENOENT),
        };
    });
    rc
}

#[no_mangle]
pub unsafe extern "C" fn evl_call_soon_cancellable(
    lp: *mut evl_loop,
    cb: evl_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
    out: *mut u64,
) -> c_int {
    guard(|| {
        let Some(cb) = cb else { return EINVAL };
        let ev = ev_or_einval!(lp);
        let mut call = c_callback(lp, cb, data);
        let owned = shared_data(data, free_data);
        let keep = owned.clone();
        let id = ev.call_soon_cancellable(move |ev| {
            call(ev);
            drop(keep); // free_data runs after the callback
        });
        // SAFETY: header contract: `out` is NULL or writable.
        unsafe {
            hand_out(id.to_u64(), out, &owned, || {
                ev.cancel_soon(id);
            })
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_cancel_soon(lp: *mut evl_loop, id: u64) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        c_int::from(ev.cancel_soon(SoonId::from_u64(id)))
    })
}
