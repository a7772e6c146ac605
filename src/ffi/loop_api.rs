//! C entry points of the core: the loop, run modes, timers, fd watchers,
//! thread-safe handles and embedding (backend fd and timeout).

use std::ffi::{c_int, c_void};
use std::os::fd::RawFd;
use std::time::Duration;

use super::{
    errno, evl_cb, evl_free_cb, evl_handle, evl_loop, guard, guard_void, hand_out, loop_mut,
    or_disarm, shared_data, CData, Current, EINVAL,
};
use crate::{EventLoop, Interest, RunMode, TimerId, WatchId};

/// `void (*)(evl_loop *loop, int fd, int events, void *data)`
pub type evl_io_cb =
    Option<unsafe extern "C" fn(lp: *mut evl_loop, fd: c_int, events: c_int, data: *mut c_void)>;

const EVL_RUN_DEFAULT: c_int = 0;
const EVL_RUN_ONCE: c_int = 1;
const EVL_RUN_NOWAIT: c_int = 2;
const EVL_READABLE: c_int = 1;
const EVL_WRITABLE: c_int = 2;
const EVL_HANGUP: c_int = 4;
const EVL_ERROR: c_int = 8;

#[no_mangle]
pub unsafe extern "C" fn evl_loop_new(out: *mut *mut evl_loop) -> c_int {
    guard(|| {
        if out.is_null() {
            return EINVAL;
        }
        match EventLoop::new() {
            Ok(ev) => {
                // The loop's own time at creation, which its timers count
                // from: a 10 ms timer then never reads evl_now_ms() < 10.
                let origin = ev.now();
                let lp = Box::into_raw(Box::new(evl_loop { ev, origin }));
                // SAFETY: checked non-null above; C passes a writable pointer.
                unsafe { out.write(lp) };
                0
            }
            Err(e) => errno(&e),
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_loop_free(lp: *mut evl_loop) -> c_int {
    guard(|| {
        if super::FREEING.with(std::cell::Cell::get) == lp as usize && !lp.is_null() {
            return -libc::EBUSY; // from a free_data this very call runs
        }
        let ev = ev_or_einval!(lp);
        if ev.is_running() || ev.is_alive() {
            return -libc::EBUSY;
        }
        // While it drops, calls with this pointer (from free_data) fail.
        let outer = super::FREEING.with(|f| f.replace(lp as usize));
        // SAFETY: a live loop from evl_loop_new that is not running, so
        // nothing borrows it; C gives up the pointer here.
        drop(unsafe { Box::from_raw(lp) });
        // The loop is gone: its free_data calls run now, while calls with
        // its pointer still fail.
        super::run_deferred_frees();
        super::FREEING.with(|f| f.set(outer));
        0
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_run(lp: *mut evl_loop, mode: c_int) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        let mode = match mode {
            EVL_RUN_DEFAULT => RunMode::Default,
            EVL_RUN_ONCE => RunMode::Once,
            EVL_RUN_NOWAIT => RunMode::NoWait,
            _ => return EINVAL,
        };
        loop {
            let alive = match ev.run_mode(mode) {
                Ok(alive) => alive,
                Err(e) => return errno(&e),
            };
            // free_data calls queued by the loop's own drops (an interval
            // cleared in its own callback, say) run now, with the loop
            // published as in a callback: they may add work.
            Current::run(lp as usize, ev, || {});
            let stopped = mode == RunMode::Default && alive;
            if stopped || mode != RunMode::Default || !ev.is_alive() {
                return c_int::from(alive || ev.is_alive());
            }
            // Done, but a free_data gave the loop more to do: go on.
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_stop(lp: *mut evl_loop) {
    guard_void(|| {
        // SAFETY: header contract: NULL or a live loop.
        if let Some(ev) = unsafe { loop_mut(lp) } {
            ev.stop()
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_now_ms(lp: *const evl_loop) -> u64 {
    let mut ms = 0;
    guard_void(|| {
        if lp.is_null() {
            return;
        }
        // SAFETY: a live loop (header contract); `origin` is read through the
        // raw pointer, apart from the `ev` field a running callback borrows.
        let origin = unsafe { (*lp).origin };
        // SAFETY: as above.
        if let Some(ev) = unsafe { loop_mut(lp) } {
            ms = ev.now().saturating_duration_since(origin).as_millis() as u64;
        }
    });
    ms
}

#[no_mangle]
pub unsafe extern "C" fn evl_update_time(lp: *mut evl_loop) {
    guard_void(|| {
        // SAFETY: header contract: NULL or a live loop.
        if let Some(ev) = unsafe { loop_mut(lp) } {
            ev.update_time()
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_is_alive(lp: *const evl_loop) -> c_int {
    guard(|| c_int::from(ev_or_einval!(lp).is_alive()))
}

/// A C callback with its data pointer, to run on the loop thread.
pub(crate) fn c_callback(
    lp: *mut evl_loop,
    cb: unsafe extern "C" fn(*mut evl_loop, *mut c_void),
    data: *mut c_void,
) -> impl FnMut(&mut EventLoop) {
    let (lp, ptr) = (lp as usize, data as usize);
    move |ev| {
        // SAFETY: `cb` and its data come from the C caller, who promised
        // they stay valid until `free_data` runs, which is after this call.
        Current::run(lp, ev, || unsafe {
            cb(lp as *mut evl_loop, ptr as *mut c_void)
        })
    }
}

#[no_mangle]
pub unsafe extern "C" fn evl_call_soon(
    lp: *mut evl_loop,
    cb: evl_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
) -> c_int {
    guard(|| {
        let Some(cb) = cb else { return EINVAL };
        let ev = ev_or_einval!(lp);
        let mut call = c_callback(lp, cb, data);
        let data = CData::new(data, free_data);
        ev.call_soon(move |ev| {
            call(ev);
            drop(data);
        });
        0
    })
}

fn set_timer(
    lp: *mut evl_loop,
    delay: Duration,
    repeat: bool,
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
        let id = if repeat {
            ev.set_interval(delay, move |ev| {
                let _ = &keep; // owned until the interval is cleared
                call(ev);
            })
        } else {
            ev.set_timeout(delay, move |ev| {
                call(ev);
                drop(keep);
            })
        };
        // SAFETY: header contract: `out` is NULL or writable.
        unsafe {
            hand_out(id.to_u64(), out, &owned, || {
                ev.clear_timer(id);
            })
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_set_timeout(
    lp: *mut evl_loop,
    ms: u64,
    cb: evl_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
    out: *mut u64,
) -> c_int {
    set_timer(
        lp,
        Duration::from_millis(ms),
        false,
        cb,
        data,
        free_data,
        out,
    )
}

#[no_mangle]
pub unsafe extern "C" fn evl_set_interval(
    lp: *mut evl_loop,
    ms: u64,
    cb: evl_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
    out: *mut u64,
) -> c_int {
    set_timer(
        lp,
        Duration::from_millis(ms),
        true,
        cb,
        data,
        free_data,
        out,
    )
}

#[no_mangle]
pub unsafe extern "C" fn evl_set_timeout_ns(
    lp: *mut evl_loop,
    ns: u64,
    cb: evl_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
    out: *mut u64,
) -> c_int {
    set_timer(
        lp,
        Duration::from_nanos(ns),
        false,
        cb,
        data,
        free_data,
        out,
    )
}

#[no_mangle]
pub unsafe extern "C" fn evl_set_interval_ns(
    lp: *mut evl_loop,
    ns: u64,
    cb: evl_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
    out: *mut u64,
) -> c_int {
    set_timer(lp, Duration::from_nanos(ns), true, cb, data, free_data, out)
}

#[no_mangle]
pub unsafe extern "C" fn evl_clear_timer(lp: *mut evl_loop, id: u64) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        c_int::from(ev.clear_timer(TimerId::from_u64(id)))
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_timer_set_ref(lp: *mut evl_loop, id: u64, keep_alive: c_int) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        match ev.set_timer_ref(TimerId::from_u64(id), keep_alive != 0) {
            Ok(()) => 0,
            Err(e) => errno(&e),
        }
    })
}

fn interest(events: c_int) -> Option<Interest> {
    if events & !(EVL_READABLE | EVL_WRITABLE) != 0 {
        return None;
    }
    Some(Interest {
        readable: events & EVL_READABLE != 0,
        writable: events & EVL_WRITABLE != 0,
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_io_start(
    lp: *mut evl_loop,
    fd: c_int,
    events: c_int,
    cb: evl_io_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
    out: *mut u64,
) -> c_int {
    guard(|| {
        let (Some(cb), Some(interest)) = (cb, interest(events)) else {
            return EINVAL;
        };
        let ev = ev_or_einval!(lp);
        let owned = shared_data(data, free_data);
        let keep = owned.clone();
        let (lpu, ptr) = (lp as usize, data as usize);
        let callback = move |ev: &mut EventLoop, fd: RawFd, r: crate::Readiness| {
            let _ = &keep; // `data` lives as long as the watcher
            let mask = (c_int::from(r.readable) * EVL_READABLE)
                | (c_int::from(r.writable) * EVL_WRITABLE)
                | (c_int::from(r.hangup) * EVL_HANGUP)
                | (c_int::from(r.error) * EVL_ERROR);
            // SAFETY: C's callback and data, valid until free_data.
            Current::run(lpu, ev, || unsafe {
                cb(lpu as *mut evl_loop, fd, mask, ptr as *mut c_void)
            });
        };
        // SAFETY: the header's contract for evl_io_start: the caller keeps
        // `fd` open until evl_io_stop or evl_loop_free.
        match or_disarm(unsafe { ev.watch_raw_fd(fd, interest, callback) }, &owned) {
            // SAFETY: header contract: `out` is NULL or writable.
            Ok(wid) => unsafe {
                hand_out(wid.to_u64(), out, &owned, || {
                    ev.unwatch(wid);
                })
            },
            Err(rc) => rc,
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_io_modify(lp: *mut evl_loop, id: u64, events: c_int) -> c_int {
    guard(|| {
        let Some(interest) = interest(events) else {
            return EINVAL;
        };
        let ev = ev_or_einval!(lp);
        ev.set_interest(WatchId::from_u64(id), interest)
            .map_or_else(|e| errno(&e), |()| 0)
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_io_stop(lp: *mut evl_loop, id: u64) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        if ev.unwatch(WatchId::from_u64(id)) {
            0
        } else {
            -libc::ENOENT
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_io_set_ref(lp: *mut evl_loop, id: u64, keep_alive: c_int) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        ev.set_watch_ref(WatchId::from_u64(id), keep_alive != 0)
            .map_or_else(|e| errno(&e), |()| 0)
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_handle_new(lp: *mut evl_loop) -> *mut evl_handle {
    let mut out = std::ptr::null_mut();
    guard_void(|| {
        // SAFETY: header contract: NULL or a live loop.
        if let Some(ev) = unsafe { loop_mut(lp) } {
            out = Box::into_raw(Box::new(evl_handle {
                handle: ev.handle(),
                loop_ptr: lp as usize,
            }));
        }
    });
    out
}

#[no_mangle]
pub unsafe extern "C" fn evl_handle_post(
    h: *mut evl_handle,
    cb: evl_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
) -> c_int {
    guard(|| {
        let Some(cb) = cb else { return EINVAL };
        if h.is_null() {
            return EINVAL;
        }
        // SAFETY: a live handle from evl_handle_new (header contract);
        // handles are Sync, so any thread may use a shared reference.
        let h = unsafe { &*h };
        let lp = h.loop_ptr;
        let data = CData::new(data, free_data);
        let post = move |ev: &mut EventLoop| {
            // SAFETY: C's callback and data, valid until free_data.
            Current::run(lp, ev, || unsafe { cb(lp as *mut evl_loop, data.ptr()) });
        };
        match h.handle.try_call_soon(post) {
            Ok(()) => 0,
            Err(post) => {
                // A failed call never calls free_data: forget the closure (it
                // holds `data` and two plain values, no other resources).
                std::mem::forget(post);
                -libc::ESHUTDOWN
            }
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_handle_set_ref(h: *mut evl_handle, keep_alive: c_int) -> c_int {
    guard(|| {
        if h.is_null() {
            return EINVAL;
        }
        // SAFETY: a live handle, not used by another thread during this call
        // (header contract for evl_handle_set_ref).
        unsafe { (*h).handle.set_ref(keep_alive != 0) };
        0
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_handle_free(h: *mut evl_handle) {
    guard_void(|| {
        if !h.is_null() {
            // SAFETY: a live handle from evl_handle_new; C gives it up here.
            drop(unsafe { Box::from_raw(h) });
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_backend_fd(lp: *const evl_loop) -> c_int {
    guard(|| ev_or_einval!(lp).backend_fd())
}

#[no_mangle]
pub unsafe extern "C" fn evl_backend_timeout(lp: *const evl_loop) -> c_int {
    guard(|| match ev_or_einval!(lp) {
        // Nothing alive: evloop needs no wake-up (Rust's backend_timeout says
        // zero here, which an embedder would spin on).
        ev if !ev.is_alive() => -1,
        ev => match ev.backend_timeout() {
            None => -1,
            // Rounded up: waking a little late beats spinning early.
            Some(t) => c_int::try_from(t.as_nanos().div_ceil(1_000_000)).unwrap_or(c_int::MAX),
        },
    })
}
