//! C entry points for files on the pool (libuv's `uv_fs_*`): whole-file
//! calls, path calls, and open files read and written at offsets.
//!
//! Every call returns 0 once the job is queued (or a negative errno, and
//! then its callback never runs); the callback runs on the loop thread
//! with the outcome, then `free_data`. An open file is a `uint64_t` id in
//! the loop's table, stale after `evl_fs_close`: using it then is
//! `-EBADF`, never a crash.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

use super::net::evl_status_cb;
use super::{
    c_bytes, c_path, errno, evl_free_cb, evl_loop, guard, or_disarm, shared_data, Current, EINVAL,
};
use crate::fs::{self, File};
use crate::{EventLoop, JobId};

/// `void (*)(evl_loop *, ssize_t result, const char *buf, void *data)`
pub type evl_fs_data_cb = Option<
    unsafe extern "C" fn(lp: *mut evl_loop, result: isize, buf: *const c_char, data: *mut c_void),
>;
/// `void (*)(evl_loop *, int status, const char *path, void *data)`
pub type evl_fs_path_cb = Option<
    unsafe extern "C" fn(lp: *mut evl_loop, status: c_int, path: *const c_char, data: *mut c_void),
>;
/// `void (*)(evl_loop *, int status, const evl_stat *st, void *data)`
pub type evl_fs_stat_cb = Option<
    unsafe extern "C" fn(lp: *mut evl_loop, status: c_int, st: *const evl_stat, data: *mut c_void),
>;
/// `void (*)(evl_loop *, int status, uint64_t file, void *data)`
pub type evl_fs_open_cb =
    Option<unsafe extern "C" fn(lp: *mut evl_loop, status: c_int, file: u64, data: *mut c_void)>;

/// The C `evl_stat` (layout asserted below and in tests/c/api_test.c).
#[repr(C)]
pub struct evl_stat {
    size: u64,
    mtime_ns: i64,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
}

impl evl_stat {
    fn of(m: &std::fs::Metadata) -> evl_stat {
        evl_stat {
            size: m.size(),
            mtime_ns: m
                .mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(m.mtime_nsec()),
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            nlink: u32::try_from(m.nlink()).unwrap_or(u32::MAX),
        }
    }
}

/// The loop's open files by id.
#[derive(Default)]
struct Files {
    open: HashMap<u64, File>,
    next: u64,
}

fn file_of(ev: &mut EventLoop, id: u64) -> Result<File, c_int> {
    ev.layer_state::<Files>()
        .open
        .get(&id)
        .cloned()
        .ok_or(-libc::EBADF)
}

/// Starts a pool job whose outcome `deliver` hands to C (inside
/// `Current::run`), then drops C's data: the shape of every call here.
fn start<T: 'static>(
    lp: *mut evl_loop,
    data: *mut c_void,
    free_data: evl_free_cb,
    begin: impl FnOnce(
        &mut EventLoop,
        Box<dyn FnOnce(&mut EventLoop, io::Result<T>)>,
    ) -> io::Result<JobId>,
    deliver: impl FnOnce(*mut evl_loop, *mut c_void, io::Result<T>) + 'static,
) -> c_int {
    let ev = ev_or_einval!(lp);
    let owned = shared_data(data, free_data);
    let keep = owned.clone();
    let (lpu, ptr) = (lp as usize, data as usize);
    let done = Box::new(move |ev: &mut EventLoop, result: io::Result<T>| {
        Current::run(lpu, ev, || {
            deliver(lpu as *mut evl_loop, ptr as *mut c_void, result)
        });
        drop(keep); // free_data after the callback
    });
    match or_disarm(begin(ev, done), &owned) {
        Ok(_) => 0,
        Err(rc) => rc,
    }
}

/// A `deliver` for calls with a status callback (which may be NULL).
fn status<T>(cb: evl_status_cb) -> impl FnOnce(*mut evl_loop, *mut c_void, io::Result<T>) {
    move |lp, data, r| {
        if let Some(cb) = cb {
            let rc = r.map_or_else(|e| errno(&e), |_| 0);
            // SAFETY: C's callback and data, valid until free_data.
            unsafe { cb(lp, rc, data) }
        }
    }
}

/// A `deliver` for calls that answer a path.
fn path_result(
    cb: unsafe extern "C" fn(*mut evl_loop, c_int, *const c_char, *mut c_void),
) -> impl FnOnce(*mut evl_loop, *mut c_void, io::Result<std::path::PathBuf>) {
    move |lp, data, r| {
        let (rc, text) = match r {
            Ok(p) => (0, CString::new(p.as_os_str().as_bytes()).ok()),
            Err(e) => (errno(&e), None),
        };
        let ptr = text.as_ref().map_or(std::ptr::null(), |t| t.as_ptr());
        // SAFETY: C's callback and data, valid until free_data.
        unsafe { cb(lp, rc, ptr, data) }
    }
}

macro_rules! try_c {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(rc) => return rc,
        }
    };
}

#[no_mangle]
pub unsafe extern "C" fn evl_fs_read_file(
    lp: *mut evl_loop,
    path: *const c_char,
    cb: evl_fs_data_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
) -> c_int {
    guard(|| {
        let Some(cb) = cb else { return EINVAL };
        let path = try_c!(c_path(path));
        start(
            lp,
            data,
            free_data,
            |ev, done| fs::read_file(ev, path, done),
            move |lp, data, r: io::Result<Vec<u8>>| {
                let (n, buf) = c_bytes(&r);
                // SAFETY: C's callback and data; `buf` valid during the call.
                unsafe { cb(lp, n, buf, data) }
            },
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_fs_write_file(
    lp: *mut evl_loop,
    path: *const c_char,
    buf: *const c_void,
    len: usize,
    cb: evl_status_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
) -> c_int {
    guard(|| {
        let path = try_c!(c_path(path));
        if (buf.is_null() && len > 0) || len > isize::MAX as usize {
            return EINVAL;
        }
        let bytes = if len == 0 {
            Vec::new()
        } else {
            // SAFETY: header contract: `buf` holds `len` bytes; copied here.
            unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) }.to_vec()
        };
        start(
            lp,
            data,
            free_data,
            |ev, done| fs::write_file(ev, path, bytes, done),
            status(cb),
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_fs_stat(
    lp: *mut evl_loop,
    path: *const c_char,
    cb: evl_fs_stat_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
) -> c_int {
    guard(|| {
        let Some(cb) = cb else { return EINVAL };
        let path = try_c!(c_path(path));
        start(
            lp,
            data,
            free_data,
            |ev, done| fs::metadata(ev, path, done),
            move |lp, data, r| deliver_stat(cb, lp, data, r),
        )
    })
}

fn deliver_stat(
    cb: unsafe extern "C" fn(*mut evl_loop, c_int, *const evl_stat, *mut c_void),
    lp: *mut evl_loop,
    data: *mut c_void,
    r: io::Result<std::fs::Metadata>,
) {
    let (rc, st) = match r {
        Ok(m) => (0, Some(evl_stat::of(&m))),
        Err(e) => (errno(&e), None),
    };
    let ptr = st
        .as_ref()
        .map_or(std::ptr::null(), |s| s as *const evl_stat);
    // SAFETY: C's callback and data; `st` valid during the call.
    unsafe { cb(lp, rc, ptr, data) }
}

#[no_mangle]
pub unsafe extern "C" fn evl_fs_remove(
    lp: *mut evl_loop,
    path: *const c_char,
    cb: evl_status_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
) -> c_int {
    guard(|| {
        let path = try_c!(c_path(path));
        start(
            lp,
            data,
            free_data,
            |ev, done| fs::remove(ev, path, done),
            status(cb),
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_fs_rename(
    lp: *mut evl_loop,
    from: *const c_char,
    to: *const c_char,
    cb: evl_status_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
) -> c_int {
    guard(|| {
        let (from, to) = (try_c!(c_path(from)), try_c!(c_path(to)));
        start(
            lp,
            data,
            free_data,
            |ev, done| fs::rename(ev, from, to, done),
            status(cb),
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_fs_copy(
    lp: *mut evl_loop,
    from: *const c_char,
    to: *const c_char,
    cb: evl_status_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
) -> c_int {
    guard(|| {
        let (from, to) = (try_c!(c_path(from)), try_c!(c_path(to)));
        start(
            lp,
            data,
            free_data,
            |ev, done| fs::copy(ev, from, to, done),
            status(cb),
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_fs_symlink(
    lp: *mut evl_loop,
    target: *const c_char,
    link: *const c_char,
    cb: evl_status_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
) -> c_int {
    guard(|| {
        let (target, link) = (try_c!(c_path(target)), try_c!(c_path(link)));
        start(
            lp,
            data,
            free_data,
            |ev, done| fs::symlink(ev, target, link, done),
            status(cb),
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_fs_chmod(
    lp: *mut evl_loop,
    path: *const c_char,
    mode: u32,
    cb: evl_status_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
) -> c_int {
    guard(|| {
        let path = try_c!(c_path(path));
        start(
            lp,
            data,
            free_data,
            |ev, done| fs::chmod(ev, path, mode, done),
            status(cb),
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_fs_mkdtemp(
    lp: *mut evl_loop,
    prefix: *const c_char,
    cb: evl_fs_path_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
) -> c_int {
    guard(|| {
        let Some(cb) = cb else { return EINVAL };
        let prefix = try_c!(c_path(prefix));
        start(
            lp,
            data,
            free_data,
            |ev, done| fs::mkdtemp(ev, prefix, done),
            path_result(cb),
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_fs_readlink(
    lp: *mut evl_loop,
    path: *const c_char,
    cb: evl_fs_path_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
) -> c_int {
    guard(|| {
        let Some(cb) = cb else { return EINVAL };
        let path = try_c!(c_path(path));
        start(
            lp,
            data,
            free_data,
            |ev, done| fs::read_link(ev, path, done),
            path_result(cb),
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_fs_realpath(
    lp: *mut evl_loop,
    path: *const c_char,
    cb: evl_fs_path_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
) -> c_int {
    guard(|| {
        let Some(cb) = cb else { return EINVAL };
        let path = try_c!(c_path(path));
        start(
            lp,
            data,
            free_data,
            |ev, done| fs::canonicalize(ev, path, done),
            path_result(cb),
        )
    })
}

/// `open(2)` flags as std's options; `Err(-EINVAL)` for flags evloop does
/// not map.
fn open_options(flags: c_int, mode: u32) -> Result<std::fs::OpenOptions, c_int> {
    let known = libc::O_ACCMODE | libc::O_CREAT | libc::O_TRUNC | libc::O_APPEND | libc::O_EXCL;
    if flags & !known != 0 || mode > 0o7777 {
        return Err(EINVAL);
    }
    let mut o = std::fs::OpenOptions::new();
    match flags & libc::O_ACCMODE {
        libc::O_RDONLY => o.read(true),
        libc::O_WRONLY => o.write(true),
        libc::O_RDWR => o.read(true).write(true),
        _ => return Err(EINVAL),
    };
    o.append(flags & libc::O_APPEND != 0)
        .truncate(flags & libc::O_TRUNC != 0)
        .mode(mode);
    if flags & libc::O_EXCL != 0 && flags & libc::O_CREAT != 0 {
        o.create_new(true);
    } else if flags & libc::O_CREAT != 0 {
        o.create(true);
    }
    Ok(o)
}

#[no_mangle]
pub unsafe extern "C" fn evl_fs_open(
    lp: *mut evl_loop,
    path: *const c_char,
    flags: c_int,
    mode: u32,
    cb: evl_fs_open_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
) -> c_int {
    guard(|| {
        let Some(cb) = cb else { return EINVAL };
        let path = try_c!(c_path(path));
        let options = try_c!(open_options(flags, mode));
        let ev = ev_or_einval!(lp);
        let owned = shared_data(data, free_data);
        let keep = owned.clone();
        let (lpu, ptr) = (lp as usize, data as usize);
        let result = fs::open(ev, path, &options, move |ev, r| {
            let (rc, id) = match r {
                Ok(file) => {
                    let files = ev.layer_state::<Files>();
                    files.next += 1;
                    let id = files.next;
                    files.open.insert(id, file);
                    (0, id)
                }
                Err(e) => (errno(&e), 0),
            };
            // SAFETY: C's callback and data, valid until free_data.
            Current::run(lpu, ev, || unsafe {
                cb(lpu as *mut evl_loop, rc, id, ptr as *mut c_void)
            });
            drop(keep);
        });
        match or_disarm(result, &owned) {
            Ok(_) => 0,
            Err(rc) => rc,
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_fs_read(
    lp: *mut evl_loop,
    file: u64,
    offset: u64,
    len: usize,
    cb: evl_fs_data_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
) -> c_int {
    guard(|| {
        let Some(cb) = cb else { return EINVAL };
        if len > isize::MAX as usize {
            return EINVAL;
        }
        let f = try_c!(file_of(ev_or_einval!(lp), file));
        start(
            lp,
            data,
            free_data,
            |ev, done| f.read_at(ev, offset, len, done),
            move |lp, data, r: io::Result<Vec<u8>>| {
                let (n, buf) = c_bytes(&r);
                // SAFETY: C's callback and data; `buf` valid during the call.
                unsafe { cb(lp, n, buf, data) }
            },
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_fs_write(
    lp: *mut evl_loop,
    file: u64,
    offset: u64,
    buf: *const c_void,
    len: usize,
    cb: evl_fs_data_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
) -> c_int {
    guard(|| {
        if (buf.is_null() && len > 0) || len > isize::MAX as usize {
            return EINVAL;
        }
        let f = try_c!(file_of(ev_or_einval!(lp), file));
        let bytes = if len == 0 {
            Vec::new()
        } else {
            // SAFETY: header contract: `buf` holds `len` bytes; copied here.
            unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) }.to_vec()
        };
        start(
            lp,
            data,
            free_data,
            |ev, done| f.write_at(ev, offset, bytes, done),
            move |lp, data, r: io::Result<usize>| {
                if let Some(cb) = cb {
                    let n = r.map_or_else(|e| errno(&e) as isize, |n| n as isize);
                    // SAFETY: C's callback and data.
                    unsafe { cb(lp, n, std::ptr::null(), data) }
                }
            },
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_fs_fstat(
    lp: *mut evl_loop,
    file: u64,
    cb: evl_fs_stat_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
) -> c_int {
    guard(|| {
        let Some(cb) = cb else { return EINVAL };
        let f = try_c!(file_of(ev_or_einval!(lp), file));
        start(
            lp,
            data,
            free_data,
            |ev, done| f.stat(ev, done),
            move |lp, data, r| deliver_stat(cb, lp, data, r),
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_fs_fsync(
    lp: *mut evl_loop,
    file: u64,
    cb: evl_status_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
) -> c_int {
    guard(|| {
        let f = try_c!(file_of(ev_or_einval!(lp), file));
        start(lp, data, free_data, |ev, done| f.sync(ev, done), status(cb))
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_fs_ftruncate(
    lp: *mut evl_loop,
    file: u64,
    len: u64,
    cb: evl_status_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
) -> c_int {
    guard(|| {
        let f = try_c!(file_of(ev_or_einval!(lp), file));
        start(
            lp,
            data,
            free_data,
            |ev, done| f.set_len(ev, len, done),
            status(cb),
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_fs_close(
    lp: *mut evl_loop,
    file: u64,
    cb: evl_status_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        let Some(f) = ev.layer_state::<Files>().open.remove(&file) else {
            return -libc::EBADF;
        };
        start(
            lp,
            data,
            free_data,
            |ev, done| f.close(ev, done),
            status(cb),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout tests/c/api_test.c asserts with `_Static_assert`.
    #[test]
    fn stat_layout_matches_the_header() {
        assert_eq!(std::mem::size_of::<evl_stat>(), 32);
        assert_eq!(std::mem::offset_of!(evl_stat, mode), 16);
        assert_eq!(std::mem::offset_of!(evl_stat, nlink), 28);
    }
}
