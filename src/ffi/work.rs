//! C entry points for blocking work on the pool, and for signals.

use std::ffi::{c_int, c_void};

use super::{
    errno, evl_free_cb, evl_loop, guard, hand_out, or_disarm, shared_data, Current, SignalIds,
    EINVAL,
};
use crate::{signal, EventLoop, JobError, JobId, JobStatus};

/// `void (*)(void *data)`: runs on a pool thread.
pub type evl_work_cb = Option<unsafe extern "C" fn(data: *mut c_void)>;
/// `void (*)(evl_loop *loop, int status, void *data)`
pub type evl_status_cb =
    Option<unsafe extern "C" fn(lp: *mut evl_loop, status: c_int, data: *mut c_void)>;
/// `void (*)(evl_loop *loop, int signum, void *data)`
pub type evl_signal_cb =
    Option<unsafe extern "C" fn(lp: *mut evl_loop, signum: c_int, data: *mut c_void)>;

#[no_mangle]
pub unsafe extern "C" fn evl_queue_work(
    lp: *mut evl_loop,
    work: evl_work_cb,
    done: evl_status_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
    out: *mut u64,
) -> c_int {
    guard(|| {
        let Some(work) = work else { return EINVAL };
        let ev = ev_or_einval!(lp);
        let ptr = data as usize;
        let owned = shared_data(data, free_data);
        let keep = owned.clone();
        let lpu = lp as usize;
        let result = ev.spawn_blocking(
            // SAFETY: C's work function and data; the header says `data` may
            // be used on a pool thread until `done` runs.
            move || unsafe { work(ptr as *mut c_void) },
            move |ev: &mut EventLoop, result: Result<(), JobError>| {
                let status = match result {
                    Ok(()) => 0,
                    Err(JobError::Cancelled) => -libc::ECANCELED,
                    Err(JobError::Panicked(_)) => -libc::ENOTRECOVERABLE,
                };
                if let Some(done) = done {
                    // SAFETY: C's callback and data, valid until free_data.
                    Current::run(lpu, ev, || unsafe {
                        done(lpu as *mut evl_loop, status, ptr as *mut c_void)
                    });
                }
                drop(keep); // free_data runs after done
            },
        );
        match or_disarm(result, &owned) {
            // SAFETY: header contract: `out` is NULL or writable. A job
            // that cannot be named is cancelled if it has not started; one
            // already running completes, its done then finding data disarmed.
            Ok(job) => unsafe {
                hand_out(job.to_u64(), out, &owned, || {
                    ev.cancel_job(job);
                })
            },
            Err(rc) => rc,
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_cancel_work(lp: *mut evl_loop, id: u64) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        let job = JobId::from_u64(id);
        if ev.cancel_job(job) {
            return 0;
        }
        match ev.job_status(job) {
            JobStatus::Pending | JobStatus::Finished => -libc::EBUSY,
            JobStatus::Unknown => -libc::ENOENT,
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_signal_start(
    lp: *mut evl_loop,
    signum: c_int,
    cb: evl_signal_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
    out: *mut u64,
) -> c_int {
    guard(|| {
        let Some(cb) = cb else { return EINVAL };
        let ev = ev_or_einval!(lp);
        let owned = shared_data(data, free_data);
        let keep = owned.clone();
        let (lpu, ptr) = (lp as usize, data as usize);
        let result = signal::on_signal(ev, signum, move |ev| {
            let _ = &keep; // `data` lives as long as the watcher
                           // SAFETY: C's callback and data, valid until free_data.
            Current::run(lpu, ev, || unsafe {
                cb(lpu as *mut evl_loop, signum, ptr as *mut c_void)
            });
        });
        match or_disarm(result, &owned) {
            Ok(sid) => {
                let cid = ev.layer_state::<SignalIds>().insert(sid);
                if !out.is_null() {
                    // SAFETY: header contract: `out` is NULL or writable.
                    unsafe { out.write(cid) };
                }
                0
            }
            Err(rc) => rc,
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_signal_stop(lp: *mut evl_loop, id: u64) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        match ev.layer_state::<SignalIds>().map.remove(&id) {
            Some(sid) if signal::stop_signal(ev, sid) => 0,
            _ => -libc::ENOENT,
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_signal_set_ref(
    lp: *mut evl_loop,
    id: u64,
    keep_alive: c_int,
) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        match ev.layer_state::<SignalIds>().map.get(&id).copied() {
            Some(sid) => {
                signal::set_signal_ref(ev, sid, keep_alive != 0).map_or_else(|e| errno(&e), |()| 0)
            }
            None => -libc::ENOENT,
        }
    })
}
