//! C entry points for watching paths (libuv's `uv_fs_event_*`) and for name
//! resolution on the pool (`uv_getaddrinfo`, `uv_getnameinfo`).
//!
//! An `evl_fs_watch` lives in the loop's table from `evl_fs_watch_start`
//! until `evl_fs_watch_stop` (or the loop is freed), like `evl_udp`.

use std::collections::HashSet;
use std::ffi::{c_char, c_int, c_void, CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;

use super::net::resolve_addr;
use super::{errno, evl_free_cb, evl_loop, guard, or_disarm, shared_data, Current, EINVAL};
use crate::fs::{self, FsEventKind, FsWatcher, WatchOptions};

/// The C `evl_fs_watch`.
pub struct evl_fs_watch {
    watcher: FsWatcher,
}

const EVL_FS_WATCH_RECURSIVE: c_int = 1;
const EVL_FS_CREATED: c_int = 1;
const EVL_FS_MODIFIED: c_int = 2;
const EVL_FS_METADATA: c_int = 3;
const EVL_FS_REMOVED: c_int = 4;
const EVL_FS_RENAMED: c_int = 5;
const EVL_FS_MOVED_OUT: c_int = 6;
const EVL_FS_MOVED_IN: c_int = 7;
const EVL_FS_SELF_REMOVED: c_int = 8;
const EVL_FS_SELF_MOVED: c_int = 9;
const EVL_FS_OVERFLOW: c_int = 10;

/// `void (*)(evl_loop *, evl_fs_watch *, int event, const char *path,
/// const char *to, int is_dir, void *data)`
pub type evl_fs_watch_cb = Option<
    unsafe extern "C" fn(
        lp: *mut evl_loop,
        watch: *mut evl_fs_watch,
        event: c_int,
        path: *const c_char,
        to: *const c_char,
        is_dir: c_int,
        data: *mut c_void,
    ),
>;

/// `void (*)(evl_loop *, int status, const char *const *addrs, size_t count, void *data)`
pub type evl_getaddrinfo_cb = Option<
    unsafe extern "C" fn(
        lp: *mut evl_loop,
        status: c_int,
        addrs: *const *const c_char,
        count: usize,
        data: *mut c_void,
    ),
>;

/// `void (*)(evl_loop *, int status, const char *host, const char *service, void *data)`
pub type evl_getnameinfo_cb = Option<
    unsafe extern "C" fn(
        lp: *mut evl_loop,
        status: c_int,
        host: *const c_char,
        service: *const c_char,
        data: *mut c_void,
    ),
>;

/// The loop's live path watchers.
#[derive(Default)]
struct Watches(HashSet<usize>);

impl Drop for Watches {
    fn drop(&mut self) {
        for p in self.0.drain() {
            // SAFETY: every pointer came from Box::into_raw and leaves the
            // table when freed.
            drop(unsafe { Box::from_raw(p as *mut evl_fs_watch) });
        }
    }
}

fn kind_code(kind: &FsEventKind) -> c_int {
    match kind {
        FsEventKind::Created => EVL_FS_CREATED,
        FsEventKind::Modified => EVL_FS_MODIFIED,
        FsEventKind::Metadata => EVL_FS_METADATA,
        FsEventKind::Removed => EVL_FS_REMOVED,
        FsEventKind::Renamed { .. } => EVL_FS_RENAMED,
        FsEventKind::MovedOut => EVL_FS_MOVED_OUT,
        FsEventKind::MovedIn => EVL_FS_MOVED_IN,
        FsEventKind::SelfRemoved => EVL_FS_SELF_REMOVED,
        FsEventKind::SelfMoved => EVL_FS_SELF_MOVED,
        FsEventKind::Overflow => EVL_FS_OVERFLOW,
    }
}

/// A path from C: NUL-terminated, not empty; `Err(-EINVAL)` else.
fn c_path<'a>(path: *const c_char) -> Result<&'a std::path::Path, c_int> {
    if path.is_null() {
        return Err(EINVAL);
    }
    // SAFETY: a NUL-terminated string (header contract), checked non-null.
    let bytes = unsafe { CStr::from_ptr(path) }.to_bytes();
    if bytes.is_empty() {
        return Err(EINVAL);
    }
    Ok(std::path::Path::new(OsStr::from_bytes(bytes)))
}

fn c_string(bytes: &[u8]) -> CString {
    CString::new(bytes).unwrap_or_default() // paths hold no NUL
}

#[no_mangle]
pub unsafe extern "C" fn evl_fs_watch_start(
    lp: *mut evl_loop,
    path: *const c_char,
    flags: c_int,
    cb: evl_fs_watch_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
    out: *mut *mut evl_fs_watch,
) -> c_int {
    guard(|| {
        let Some(cb) = cb else { return EINVAL };
        if out.is_null() || flags & !EVL_FS_WATCH_RECURSIVE != 0 {
            return EINVAL;
        }
        let path = match c_path(path) {
            Ok(p) => p,
            Err(rc) => return rc,
        };
        let ev = ev_or_einval!(lp);
        let owned = shared_data(data, free_data);
        let keep = owned.clone();
        let slot = std::rc::Rc::new(std::cell::Cell::new(0usize));
        let (lpu, ptr, me) = (lp as usize, data as usize, slot.clone());
        let options = WatchOptions {
            recursive: flags & EVL_FS_WATCH_RECURSIVE != 0,
        };
        let result = fs::watch(ev, path, options, move |ev, _, event| {
            let _ = &keep; // `data` lives until the watch stops
            let name = c_string(event.path.as_os_str().as_bytes());
            let to = match &event.kind {
                FsEventKind::Renamed { to } => Some(c_string(to.as_os_str().as_bytes())),
                _ => None,
            };
            let to_ptr = to.as_ref().map_or(std::ptr::null(), |t| t.as_ptr());
            let code = kind_code(&event.kind);
            // SAFETY: C's callback and data, valid until free_data; the
            // strings live for the call.
            Current::run(lpu, ev, || unsafe {
                cb(
                    lpu as *mut evl_loop,
                    me.get() as *mut evl_fs_watch,
                    code,
                    name.as_ptr(),
                    to_ptr,
                    c_int::from(event.is_dir),
                    ptr as *mut c_void,
                )
            });
        });
        match or_disarm(result, &owned) {
            Ok(watcher) => {
                let p = Box::into_raw(Box::new(evl_fs_watch { watcher }));
                slot.set(p as usize);
                ev.layer_state::<Watches>().0.insert(p as usize);
                // SAFETY: checked non-null; C passes a writable pointer.
                unsafe { out.write(p) };
                0
            }
            Err(rc) => rc,
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_fs_watch_stop(lp: *mut evl_loop, w: *mut evl_fs_watch) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        if !ev.layer_state::<Watches>().0.remove(&(w as usize)) {
            return EINVAL;
        }
        // SAFETY: it was in the table: a live box of ours, now out of it.
        let boxed = unsafe { Box::from_raw(w) };
        boxed.watcher.close(ev);
        0
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_fs_watch_set_ref(
    lp: *mut evl_loop,
    w: *mut evl_fs_watch,
    keep_alive: c_int,
) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        if !ev.layer_state::<Watches>().0.contains(&(w as usize)) {
            return EINVAL;
        }
        // SAFETY: the table says it is a live box of ours.
        let watcher = unsafe { &(*w).watcher };
        watcher
            .set_ref(ev, keep_alive != 0)
            .map_or_else(|e| errno(&e), |()| 0)
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_getaddrinfo(
    lp: *mut evl_loop,
    host: *const c_char,
    port: c_int,
    cb: evl_getaddrinfo_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
) -> c_int {
    guard(|| {
        let Some(cb) = cb else { return EINVAL };
        if host.is_null() || !(0..=65_535).contains(&port) {
            return EINVAL;
        }
        // SAFETY: a NUL-terminated string (header contract), checked non-null.
        let Ok(host) = (unsafe { CStr::from_ptr(host) }).to_str() else {
            return EINVAL;
        };
        if host.is_empty() {
            return EINVAL;
        }
        let ev = ev_or_einval!(lp);
        let owned = shared_data(data, free_data);
        let keep = owned.clone();
        let (lpu, ptr) = (lp as usize, data as usize);
        let result = crate::net::resolve(ev, host, port as u16, move |ev, addrs| {
            let (status, texts) = match addrs {
                Ok(addrs) => (
                    0,
                    addrs
                        .iter()
                        .map(|a| c_string(a.to_string().as_bytes()))
                        .collect(),
                ),
                Err(e) => (errno(&e), Vec::new()),
            };
            let ptrs: Vec<*const c_char> = texts.iter().map(|t: &CString| t.as_ptr()).collect();
            // SAFETY: C's callback and data, valid until free_data; the
            // strings and the array live for the call.
            Current::run(lpu, ev, || unsafe {
                cb(
                    lpu as *mut evl_loop,
                    status,
                    ptrs.as_ptr(),
                    ptrs.len(),
                    ptr as *mut c_void,
                )
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
pub unsafe extern "C" fn evl_getnameinfo(
    lp: *mut evl_loop,
    ip: *const c_char,
    port: c_int,
    cb: evl_getnameinfo_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
) -> c_int {
    guard(|| {
        let Some(cb) = cb else { return EINVAL };
        let addr = match resolve_addr(ip, port) {
            Ok(addr) => addr,
            Err(rc) => return rc,
        };
        let ev = ev_or_einval!(lp);
        let owned = shared_data(data, free_data);
        let keep = owned.clone();
        let (lpu, ptr) = (lp as usize, data as usize);
        let result = crate::net::lookup_addr(ev, addr, move |ev, names| {
            let (status, host, service) = match names {
                Ok((h, s)) => (
                    0,
                    Some(c_string(h.as_bytes())),
                    Some(c_string(s.as_bytes())),
                ),
                Err(e) => (errno(&e), None, None),
            };
            let hp = host.as_ref().map_or(std::ptr::null(), |h| h.as_ptr());
            let sp = service.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
            // SAFETY: C's callback and data, valid until free_data.
            Current::run(lpu, ev, || unsafe {
                cb(lpu as *mut evl_loop, status, hp, sp, ptr as *mut c_void)
            });
            drop(keep);
        });
        match or_disarm(result, &owned) {
            Ok(_) => 0,
            Err(rc) => rc,
        }
    })
}
