//! C entry points for a counter-style gather: C's form of
//! [`gather`](crate::gather).
//!
//! C has no closures to hand out as tokens, so a gather is an id: each of
//! the `n` tasks calls `evl_gather_done(loop, id, status)` once, and the
//! final callback runs once, on a later pass, with the first negative status
//! as soon as it arrives or with 0 after the n-th done. The entry stays until
//! all `n` dones arrived, so the dones after a failure are still accepted;
//! past the n-th the id is unknown (`-ENOENT`).

use std::ffi::{c_int, c_uint, c_void};

use super::work::evl_status_cb;
use super::{evl_loop, guard, CData, Current, EINVAL};
use crate::id::Key;
use crate::EventLoop;

/// The C final callback, `evl_status_cb` without its `Option`.
type FinalCb = unsafe extern "C" fn(*mut evl_loop, c_int, *mut c_void);

/// A gather waiting for its dones.
struct Entry {
    serial: u64,
    left: c_uint,
    /// The final callback and its data until queued.
    done: Option<(FinalCb, CData)>,
}

/// The loop's gathers, by the slot and serial of their C id.
#[derive(Default)]
struct Gathers {
    entries: slab::Slab<Entry>,
    serial: u64,
}

#[no_mangle]
pub unsafe extern "C" fn evl_gather_new(
    lp: *mut evl_loop,
    n: c_uint,
    done: evl_status_cb,
    data: *mut c_void,
    free_data: super::evl_free_cb,
    out: *mut u64,
) -> c_int {
    guard(|| {
        let Some(done) = done else { return EINVAL };
        if n == 0 {
            return EINVAL;
        }
        let ev = ev_or_einval!(lp);
        let gathers = ev.layer_state::<Gathers>();
        gathers.serial += 1;
        let serial = gathers.serial;
        let slot = gathers.entries.vacant_key();
        let Some(id) = Key::new(slot, serial).to_u64() else {
            return -libc::ENOSPC; // data was never taken: no free_data
        };
        gathers.entries.insert(Entry {
            serial,
            left: n,
            done: Some((done, CData::new(data, free_data))),
        });
        if !out.is_null() {
            // SAFETY: header contract: `out` is NULL or valid for a write.
            unsafe { out.write(id) };
        }
        0
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_gather_done(lp: *mut evl_loop, id: u64, status: c_int) -> c_int {
    guard(|| {
        if status > 0 {
            return EINVAL;
        }
        let ev = ev_or_einval!(lp);
        let key = Key::from_u64(id);
        let gathers = ev.layer_state::<Gathers>();
        let slot = key.slot as usize;
        let Some(entry) = gathers
            .entries
            .get_mut(slot)
            .filter(|e| e.serial == key.serial)
        else {
            return -libc::ENOENT;
        };
        entry.left -= 1;
        let finish = if status < 0 || entry.left == 0 {
            entry.done.take()
        } else {
            None
        };
        if entry.left == 0 {
            gathers.entries.remove(slot);
        }
        if let Some((cb, data)) = finish {
            queue_final(ev, lp as usize, cb, data, status);
        }
        0
    })
}

/// Runs the final callback on a later pass, then frees its data.
fn queue_final(ev: &mut EventLoop, lp: usize, cb: FinalCb, data: CData, status: c_int) {
    ev.call_soon(move |ev| {
        let ptr = data.ptr();
        // SAFETY: C's callback and data, valid until free_data, which runs
        // when `data` drops after this call.
        Current::run(lp, ev, || unsafe { cb(lp as *mut evl_loop, status, ptr) });
        drop(data);
    });
}
