//! The C API: `include/evloop.h` is its documentation. Nothing else in the
//! crate has `extern "C"`.
//!
//! Conventions, as the header states them: opaque types, `0` or a positive
//! value for success, a negative errno for failure. Each function checks its
//! pointers and ids and never trusts C to be right. Every entry point runs
//! inside `guard`, so a Rust panic never unwinds into C: it becomes
//! `-ENOTRECOVERABLE` (or, where a function returns nothing, an abort with
//! a message on stderr).
//!
//! C callbacks get the `evl_loop *` back and may call any `evl_*` function
//! with it. While a callback runs, the loop is mutably borrowed by `evl_run`,
//! so entry points must not make a second `&mut` from the C pointer; the
//! callback's own `&mut EventLoop` is published in a thread-local
//! (`Current`) and entry points use it when their pointer is the running
//! loop's.
//!
//! `free_data` is C code too, and it may also call `evl_*` functions. But
//! it runs when Rust drops the closure holding `data`, which often happens
//! while Rust code is using a `&mut EventLoop` (clearing a timer, a one-shot
//! timer's closure dropped by the loop after it ran, a watcher stopped, a
//! loop being freed): a call back in would make a second `&mut` to a loop in
//! the middle of a change. So while an entry point runs Rust code on this
//! thread (`ACTIVE`), a dropped `data` is queued instead (`DEFERRED_FREES`),
//! and the queue is run where C may call in: before a C callback runs (the
//! loop's `&mut` is published and idle then) and when the outermost entry
//! point returns. C sees `free_data` before the call that dropped `data`
//! returns, or before the next callback, as before; only never in the
//! middle of evloop's own work.

#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)] // the safety contract is the C header

/// The loop of an entry point, or `return EINVAL` for NULL.
macro_rules! ev_or_einval {
    ($lp:expr) => {
        // SAFETY: header contract: NULL or a live loop, used only inside
        // this entry point.
        match unsafe { $crate::ffi::loop_mut($lp) } {
            Some(ev) => ev,
            None => return $crate::ffi::EINVAL,
        }
    };
}

mod diag;
mod fs;
mod gather;
mod loop_api;
mod net;
mod process;
mod stream;
mod tcp;
mod timers;
mod udp;
mod unix;
mod watch_dns;
mod work;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::ffi::{c_char, c_int, c_void};
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use crate::EventLoop;

/// The C `evl_loop`.
pub struct evl_loop {
    ev: EventLoop,
    origin: Instant,
}

/// The C `evl_handle`.
pub struct evl_handle {
    handle: crate::LoopHandle,
    loop_ptr: usize,
}

/// `void (*)(void *data)`
pub type evl_free_cb = Option<unsafe extern "C" fn(data: *mut c_void)>;
/// `void (*)(evl_loop *loop, void *data)`
pub type evl_cb = Option<unsafe extern "C" fn(lp: *mut evl_loop, data: *mut c_void)>;

/// C's `data` plus its destructor, called exactly once when this drops.
pub(crate) struct CData {
    data: *mut c_void,
    free: evl_free_cb,
}

// SAFETY: the header makes the caller promise that `data` may be used and
// freed on another thread for the calls that move it there (posts, work).
unsafe impl Send for CData {}

impl CData {
    pub(crate) fn new(data: *mut c_void, free: evl_free_cb) -> CData {
        CData { data, free }
    }
    pub(crate) fn ptr(&self) -> *mut c_void {
        self.data
    }

    /// For a call that failed after all: drop without calling `free`.
    pub(crate) fn disarm(mut self) {
        self.free = None;
    }
}

/// `data` owned by a callback that a fallible call may still drop: keep
/// one clone, and on failure [`disarm_shared`] it so `free` never runs.
pub(crate) type CallbackData = std::rc::Rc<Cell<Option<CData>>>;

pub(crate) fn shared_data(data: *mut c_void, free: evl_free_cb) -> CallbackData {
    std::rc::Rc::new(Cell::new(Some(CData::new(data, free))))
}

fn disarm_shared(data: &CallbackData) {
    if let Some(d) = data.take() {
        d.disarm();
    }
}

/// The outcome of a fallible call that handed `owned` to a callback: its
/// value, or (after disarming `owned`, since a failed call never calls
/// free_data) the negative errno to return.
pub(crate) fn or_disarm<T>(result: io::Result<T>, owned: &CallbackData) -> Result<T, c_int> {
    result.map_err(|e| {
        disarm_shared(owned);
        errno(&e)
    })
}

impl Drop for CData {
    fn drop(&mut self) {
        let Some(free) = self.free.take() else {
            return;
        };
        let deferred = ACTIVE
            .try_with(Cell::get)
            .unwrap_or(false)
            .then(|| DEFERRED_FREES.try_with(|q| q.borrow_mut().push_back((self.data, free))))
            .is_some_and(|queued| queued.is_ok());
        if !deferred {
            // SAFETY: the C caller gave this destructor for this pointer,
            // and no entry point uses a loop on this thread now.
            unsafe { free(self.data) }
        }
    }
}

/// Runs the queued `free_data` calls, oldest first, including any queued
/// by the calls themselves. The caller makes sure no `&mut EventLoop` is in
/// use on this thread (only suspended in `Current::run`, or none).
pub(crate) fn run_deferred_frees() {
    let outer = ACTIVE.with(|a| a.replace(false));
    while let Some((data, free)) = DEFERRED_FREES.with(|q| q.borrow_mut().pop_front()) {
        // SAFETY: the C caller gave this destructor for this pointer; it was
        // queued instead of called, and is called once, here.
        unsafe { free(data) }
    }
    ACTIVE.with(|a| a.set(outer));
}

/// Marks this thread as running Rust code of an entry point (so dropped
/// `data` is queued) until dropped; the outermost one then runs the queue.
struct Active {
    outer: bool,
}

impl Active {
    fn enter() -> Active {
        Active {
            outer: ACTIVE.with(|a| a.replace(true)),
        }
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        ACTIVE.with(|a| a.set(self.outer));
        if !self.outer {
            run_deferred_frees();
        }
    }
}

/// The C ids of a loop's signal watchers. (Timers, watchers and jobs use
/// their Rust ids' `u64` form directly; a signal id must not be usable as an
/// fd watcher's, so signals get numbers of their own.)
#[derive(Default)]
pub(crate) struct SignalIds {
    pub(crate) map: HashMap<u64, crate::signal::SignalId>,
    next: u64,
}

impl SignalIds {
    pub(crate) fn insert(&mut self, id: crate::signal::SignalId) -> u64 {
        self.next += 1;
        self.map.insert(self.next, id);
        self.next
    }
}

/// Hands C the id of what a call just made: writes `id` through `out` (if
/// not NULL) and returns 0. An id with no `u64` form (past 16.7 million live
/// entries of a kind) cannot be handed out: `undo` removes what was made,
/// `owned` is disarmed (a failed call never calls free_data), and the call
/// fails with -ENOSPC.
///
/// # Safety
/// `out` is NULL or valid for a write (the header's contract).
pub(crate) unsafe fn hand_out(
    id: Option<u64>,
    out: *mut u64,
    owned: &CallbackData,
    undo: impl FnOnce(),
) -> c_int {
    let Some(id) = id else {
        disarm_shared(owned);
        undo();
        return -libc::ENOSPC;
    };
    if !out.is_null() {
        // SAFETY: the caller's contract: `out` is valid for a write.
        unsafe { out.write(id) };
    }
    0
}

thread_local! {
    /// The loops whose callbacks are running on this thread, innermost last:
    /// (C pointer, live `&mut EventLoop` of the callback). A stack, because
    /// a callback of loop A may run loop B, whose callback calls into A.
    static RUNNING: RefCell<Vec<(usize, *mut EventLoop)>> = const { RefCell::new(Vec::new()) };
    /// The loop `evl_loop_free` is dropping on this thread: the `free_data`
    /// it calls may call back in with the same pointer, which must fail.
    pub(crate) static FREEING: Cell<usize> = const { Cell::new(0) };
    /// An entry point is running Rust code on this thread: a `free_data`
    /// must wait in `DEFERRED_FREES` (see the module docs).
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    /// `free_data` calls waiting for no entry point to run Rust code.
    static DEFERRED_FREES: RefCell<VecDeque<(*mut c_void, unsafe extern "C" fn(*mut c_void))>> =
        const { RefCell::new(VecDeque::new()) };
}

/// Publishes a callback's `&mut EventLoop` while C code runs.
pub(crate) struct Current;

impl Current {
    /// Runs `f` (which calls into C) with `ev` published for `lp`, after
    /// the queued `free_data` calls (C may call in here).
    pub(crate) fn run<R>(lp: usize, ev: &mut EventLoop, f: impl FnOnce() -> R) -> R {
        RUNNING.with(|r| r.borrow_mut().push((lp, ev as *mut EventLoop)));
        struct Pop {
            active: bool,
        }
        impl Drop for Pop {
            fn drop(&mut self) {
                ACTIVE.with(|a| a.set(self.active));
                RUNNING.with(|r| r.borrow_mut().pop());
            }
        }
        let _pop = Pop {
            active: ACTIVE.with(|a| a.replace(false)),
        };
        run_deferred_frees();
        f()
    }
}

/// The loop behind a C pointer: the running callback's, or the pointer's.
///
/// # Safety
/// `lp` must be null or a live pointer from `evl_loop_new`, and the result
/// must not outlive the entry point that asked for it.
pub(crate) unsafe fn loop_mut<'a>(lp: *const evl_loop) -> Option<&'a mut EventLoop> {
    if lp.is_null() || FREEING.with(Cell::get) == lp as usize {
        return None;
    }
    let running = RUNNING.with(|r| {
        let r = r.borrow();
        r.iter()
            .rev()
            .find(|(p, _)| *p == lp as usize)
            .map(|&(_, ev)| ev)
    });
    if let Some(ev) = running {
        // SAFETY: `ev` is the `&mut EventLoop` of a callback of this loop
        // that is running on this thread (see `Current::run`), suspended
        // while C runs, so nothing else uses it meanwhile.
        return Some(unsafe { &mut *ev });
    }
    // SAFETY: the caller promises a live pointer, and no callback of this
    // loop is running on this thread (that case was handled above), so
    // nothing else borrows it.
    Some(unsafe { &mut (*(lp as *mut evl_loop)).ev })
}

/// Runs an entry point, turning a Rust panic into `-ENOTRECOVERABLE`.
pub(crate) fn guard(f: impl FnOnce() -> c_int) -> c_int {
    let _active = Active::enter();
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(rc) => rc,
        Err(_) => {
            eprintln!("evloop: internal panic caught at the C API boundary");
            -libc::ENOTRECOVERABLE
        }
    }
}

/// As [`guard`] for entry points with no error return: a panic aborts.
pub(crate) fn guard_void(f: impl FnOnce()) {
    let _active = Active::enter();
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        eprintln!("evloop: internal panic in a void C API function; aborting");
        std::process::abort();
    }
}

/// An `io::Error` as a negative errno (looking through the context evloop
/// adds to OS errors).
/// A path from C: NUL-terminated, not empty; `Err(-EINVAL)` else.
pub(crate) fn c_path<'a>(path: *const c_char) -> Result<&'a std::path::Path, c_int> {
    use std::os::unix::ffi::OsStrExt;
    if path.is_null() {
        return Err(EINVAL);
    }
    // SAFETY: a NUL-terminated string (header contract), checked non-null.
    let bytes = unsafe { std::ffi::CStr::from_ptr(path) }.to_bytes();
    if bytes.is_empty() {
        return Err(EINVAL);
    }
    Ok(std::path::Path::new(std::ffi::OsStr::from_bytes(bytes)))
}

/// A byte result as C's data callbacks take it: `(len, bytes)` on success,
/// `(-errno, NULL)` on failure. The pointer is valid while `r` lives.
pub(crate) fn c_bytes<B: AsRef<[u8]>>(r: &io::Result<B>) -> (isize, *const std::ffi::c_char) {
    match r {
        Ok(bytes) => {
            let bytes = bytes.as_ref();
            (bytes.len() as isize, bytes.as_ptr().cast())
        }
        Err(e) => (errno(e) as isize, std::ptr::null()),
    }
}

pub(crate) fn errno(e: &io::Error) -> c_int {
    if let Some(code) = crate::ErrorContext::os_error(e) {
        return -code;
    }
    -match e.kind() {
        io::ErrorKind::NotFound => libc::ENOENT,
        io::ErrorKind::InvalidInput => libc::EINVAL,
        io::ErrorKind::ResourceBusy => libc::EBUSY,
        io::ErrorKind::AlreadyExists => libc::EEXIST,
        io::ErrorKind::TimedOut => libc::ETIMEDOUT,
        io::ErrorKind::NotConnected => libc::ENOTCONN,
        io::ErrorKind::BrokenPipe => libc::EPIPE,
        io::ErrorKind::WouldBlock => libc::EAGAIN,
        io::ErrorKind::OutOfMemory => libc::ENOMEM,
        _ => libc::EIO,
    }
}

pub(crate) const EINVAL: c_int = -libc::EINVAL;

/// The static C string for an errno name or message.
fn cstr(s: &'static [u8]) -> *const c_char {
    s.as_ptr().cast()
}

macro_rules! errno_table {
    ($($name:ident => $msg:literal),* $(,)?) => {
        fn lookup(err: c_int) -> Option<(*const c_char, *const c_char)> {
            let code = err.checked_neg().unwrap_or(0);
            $(
                if code == libc::$name {
                    return Some((
                        cstr(concat!(stringify!($name), "\0").as_bytes()),
                        cstr(concat!($msg, "\0").as_bytes()),
                    ));
                }
            )*
            None
        }
    };
}

errno_table! {
    EPERM => "operation not permitted (e.g. a regular file cannot be watched)",
    ENOENT => "no such file or directory",
    ESRCH => "no such process",
    EINTR => "interrupted system call",
    EIO => "i/o error",
    ENXIO => "no such address (a host name where an IP address is needed: resolve it first)",
    EBADF => "bad file descriptor",
    EAGAIN => "resource temporarily unavailable",
    ENOMEM => "not enough memory",
    EACCES => "permission denied",
    EFAULT => "bad address",
    EBUSY => "resource busy (work pending, or called from a callback of the loop)",
    EEXIST => "already exists (e.g. the fd is already watched)",
    EINVAL => "invalid argument",
    EMFILE => "too many open files",
    ENOSPC => "no space left (e.g. no id left for another timer, watcher or job)",
    EPIPE => "broken pipe",
    ENOSYS => "function not implemented",
    ENOTSOCK => "not a socket",
    EADDRINUSE => "address already in use",
    EADDRNOTAVAIL => "address not available",
    ENETUNREACH => "network unreachable",
    ECONNABORTED => "connection aborted",
    ENOBUFS => "no buffer space (e.g. a caller's buffer or fd array is too small)",
    ENOTSUP => "operation not supported (e.g. a TCP call on a Unix stream or pipe)",
    ECONNRESET => "connection reset by peer",
    ENOTCONN => "not connected (the stream is closed)",
    ESHUTDOWN => "the loop is gone",
    ETIMEDOUT => "timed out",
    ECONNREFUSED => "connection refused",
    EHOSTUNREACH => "host unreachable",
    ECANCELED => "operation cancelled",
    ENOTRECOVERABLE => "internal error in evloop (a panic was caught)",
}

/// `const char *evl_strerror(int err)`
#[no_mangle]
pub extern "C" fn evl_strerror(err: c_int) -> *const c_char {
    if err == 0 {
        return cstr(b"success\0");
    }
    lookup(err).map_or(cstr(b"unknown error\0"), |(_, msg)| msg)
}

/// `const char *evl_err_name(int err)`
#[no_mangle]
pub extern "C" fn evl_err_name(err: c_int) -> *const c_char {
    if err == 0 {
        return cstr(b"OK\0");
    }
    lookup(err).map_or(cstr(b"UNKNOWN\0"), |(name, _)| name)
}

/// `unsigned evl_version(void)`: (major << 16) | (minor << 8) | patch.
#[no_mangle]
pub extern "C" fn evl_version() -> u32 {
    let part = |s: &str| s.parse::<u32>().unwrap_or(0);
    (part(env!("CARGO_PKG_VERSION_MAJOR")) << 16)
        | (part(env!("CARGO_PKG_VERSION_MINOR")) << 8)
        | part(env!("CARGO_PKG_VERSION_PATCH"))
}

/// `const char *evl_version_string(void)`
#[no_mangle]
pub extern "C" fn evl_version_string() -> *const c_char {
    cstr(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g10_a_panic_never_crosses_into_c() {
        std::panic::set_hook(Box::new(|_| {}));
        assert_eq!(guard(|| panic!("bug")), -libc::ENOTRECOVERABLE);
        // A panic inside the loop run by evl_run comes back as an error.
        let mut lp: *mut evl_loop = std::ptr::null_mut();
        // SAFETY: valid out pointer; the loop is freed below.
        unsafe {
            assert_eq!(loop_api::evl_loop_new(&mut lp), 0);
            loop_mut(lp)
                .unwrap()
                .call_soon(|_| panic!("inside a callback"));
            assert_eq!(loop_api::evl_run(lp, 0), -libc::ENOTRECOVERABLE);
            assert_eq!(loop_api::evl_run(lp, 0), 0, "the loop is usable afterwards");
            assert_eq!(loop_api::evl_loop_free(lp), 0);
        }
        let _ = std::panic::take_hook();
    }

    /// Loop A's callback runs loop B, whose callback calls into A: the entry
    /// points must find A's running `&mut` on the per-thread stack (a second
    /// `&mut` made from A's pointer would alias it).
    #[test]
    fn nested_loops_reach_the_outer_loop_through_its_running_callback() {
        use std::ffi::c_void;
        static LOG: std::sync::Mutex<Vec<&str>> = std::sync::Mutex::new(Vec::new());
        struct Pair {
            a: *mut evl_loop,
            b: *mut evl_loop,
        }
        unsafe extern "C" fn in_a(_: *mut evl_loop, data: *mut c_void) {
            // SAFETY: `data` is the test's Pair, alive for the whole test.
            let pair = unsafe { &*(data as *const Pair) };
            LOG.lock().unwrap().push("a");
            // SAFETY: live loops; B is not running.
            unsafe {
                assert_eq!(loop_api::evl_call_soon(pair.b, Some(in_b), data, None), 0);
                assert_eq!(loop_api::evl_run(pair.b, 0), 0);
            }
            LOG.lock().unwrap().push("a: b done");
        }
        unsafe extern "C" fn in_b(_: *mut evl_loop, data: *mut c_void) {
            // SAFETY: as in `in_a`.
            let pair = unsafe { &*(data as *const Pair) };
            LOG.lock().unwrap().push("b");
            // SAFETY: A is running further down this thread's stack.
            unsafe {
                assert_eq!(loop_api::evl_run(pair.a, 0), -libc::EBUSY);
                assert_eq!(loop_api::evl_loop_free(pair.a), -libc::EBUSY);
                assert_eq!(
                    loop_api::evl_call_soon(pair.a, Some(later_in_a), data, None),
                    0
                );
            }
        }
        unsafe extern "C" fn later_in_a(_: *mut evl_loop, _: *mut c_void) {
            LOG.lock().unwrap().push("a again");
        }
        let mut pair = Pair {
            a: std::ptr::null_mut(),
            b: std::ptr::null_mut(),
        };
        // SAFETY: valid out pointers; both loops are freed below.
        unsafe {
            assert_eq!(loop_api::evl_loop_new(&mut pair.a), 0);
            assert_eq!(loop_api::evl_loop_new(&mut pair.b), 0);
            let data = &mut pair as *mut Pair as *mut c_void;
            assert_eq!(loop_api::evl_call_soon(pair.a, Some(in_a), data, None), 0);
            assert_eq!(loop_api::evl_run(pair.a, 0), 0);
            assert_eq!(loop_api::evl_loop_free(pair.b), 0);
            assert_eq!(loop_api::evl_loop_free(pair.a), 0);
        }
        assert_eq!(*LOG.lock().unwrap(), ["a", "b", "a: b done", "a again"]);
        RUNNING.with(|r| assert!(r.borrow().is_empty(), "the stack unwound"));
    }

    /// What the `free_data` tests below saw, in order.
    static FREE_LOG: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

    fn log(entry: String) {
        FREE_LOG.lock().unwrap().push(entry);
    }

    /// A `free_data` that re-arms a timer on its loop (`data` is the loop),
    /// logging the result, and checks that no entry point on this thread
    /// was using a loop when it was called.
    unsafe extern "C" fn free_rearms(data: *mut std::ffi::c_void) {
        assert!(
            !ACTIVE.with(Cell::get),
            "free_data ran inside evloop's work"
        );
        let lp = data as *mut evl_loop;
        let mut id = 0;
        // SAFETY: `lp` is the test's loop pointer (perhaps being freed,
        // which the call must refuse cleanly).
        let rc = unsafe {
            loop_api::evl_set_timeout(lp, 0, Some(rearmed), std::ptr::null_mut(), None, &mut id)
        };
        log(format!("free {rc}"));
    }
    unsafe extern "C" fn rearmed(_: *mut evl_loop, _: *mut std::ffi::c_void) {
        log("rearmed ran".into());
    }
    unsafe extern "C" fn ran(_: *mut evl_loop, _: *mut std::ffi::c_void) {
        log("callback ran".into());
    }

    /// Each place the loop drops a C closure while Rust code uses the loop
    /// (a timer cleared from C, a one-shot timer dropped after its callback,
    /// an interval cleared in its own callback, the loop being freed): the
    /// `free_data` runs once, when no entry point is using the loop, and
    /// may call back in (review finding: it made a second `&mut EventLoop`).
    #[test]
    fn free_data_never_runs_while_the_loop_is_borrowed_and_may_call_in() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        FREE_LOG.lock().unwrap().clear();
        let mut lp: *mut evl_loop = std::ptr::null_mut();
        let data = |lp: *mut evl_loop| lp as *mut std::ffi::c_void;
        let taken = || std::mem::take(&mut *FREE_LOG.lock().unwrap());
        // SAFETY: valid pointers throughout; the loop is freed at the end.
        unsafe {
            assert_eq!(loop_api::evl_loop_new(&mut lp), 0);
            // 1. Cleared from C, no loop running: free_data before the
            // clear returns, and its timer runs in the next evl_run.
            let mut id = 0;
            let rc = loop_api::evl_set_timeout(
                lp,
                60_000,
                Some(ran),
                data(lp),
                Some(free_rearms),
                &mut id,
            );
            assert_eq!(rc, 0);
            assert_eq!(loop_api::evl_clear_timer(lp, id), 1);
            assert_eq!(taken(), ["free 0"]);
            assert_eq!(loop_api::evl_run(lp, 0), 0);
            assert_eq!(taken(), ["rearmed ran"]);
            // 2. A one-shot timer: dropped by the loop after its callback.
            let rc =
                loop_api::evl_set_timeout(lp, 0, Some(ran), data(lp), Some(free_rearms), &mut id);
            assert_eq!(rc, 0);
            assert_eq!(loop_api::evl_run(lp, 0), 0);
            assert_eq!(taken(), ["callback ran", "free 0", "rearmed ran"]);
            // 3. An interval cleared inside its own callback.
            INTERVAL.with(|i| i.set(0));
            let rc = loop_api::evl_set_interval(
                lp,
                1,
                Some(clears_itself),
                data(lp),
                Some(free_rearms),
                &mut id,
            );
            assert_eq!(rc, 0);
            INTERVAL.with(|i| i.set(id));
            assert_eq!(loop_api::evl_run(lp, 0), 0);
            assert_eq!(
                taken(),
                ["interval cleared itself", "free 0", "rearmed ran"]
            );
            // 4. The loop freed with an unref'd timer pending: free_data
            // runs after the loop is gone; calls with its pointer fail.
            let rc = loop_api::evl_set_timeout(
                lp,
                60_000,
                Some(ran),
                data(lp),
                Some(free_rearms),
                &mut id,
            );
            assert_eq!(rc, 0);
            assert_eq!(loop_api::evl_timer_set_ref(lp, id, 0), 0);
            assert_eq!(loop_api::evl_loop_free(lp), 0);
        }
        assert_eq!(taken(), [format!("free {}", -libc::EINVAL)]);
        assert!(!ACTIVE.with(Cell::get));
        DEFERRED_FREES.with(|q| assert!(q.borrow().is_empty()));
    }

    thread_local! {
        static INTERVAL: Cell<u64> = const { Cell::new(0) };
    }
    unsafe extern "C" fn clears_itself(lp: *mut evl_loop, _: *mut std::ffi::c_void) {
        // SAFETY: called by the loop with its own pointer.
        let rc = unsafe { loop_api::evl_clear_timer(lp, INTERVAL.with(Cell::get)) };
        assert_eq!(rc, 1);
        log("interval cleared itself".into());
    }

    /// Tests that share `FREE_LOG` (none else does today) run one at a time.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn version_matches_the_crate() {
        assert_eq!(evl_version(), 0x000100);
        // SAFETY: a static NUL-terminated string.
        let s = unsafe { std::ffi::CStr::from_ptr(evl_version_string()) };
        assert_eq!(s.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}
