//! C entry points for child processes (libuv's `uv_spawn`, `uv_process_kill`,
//! `uv_kill`).
//!
//! An `evl_process` lives in the loop's table of live processes from
//! `evl_spawn` until `evl_process_close` (libuv's `uv_close` on a process
//! handle), or until the loop is freed; its `free_data` runs then. After
//! the child exited the handle still answers (`evl_process_kill` gives
//! `-ESRCH`), so a pointer C still holds never names another process. Piped stdio comes back as
//! `evl_stream`s that the usual stream calls read, write and close.

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr, OsStr};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::rc::Rc;

use super::net::{evl_stream, new_stream};
use super::stream::AnyStream;
use super::tcp::open_fd;
use super::{errno, evl_free_cb, evl_loop, guard, shared_data, Current, EINVAL};
use crate::process::{self, Child, Command, Stdio};
use crate::EventLoop;

/// The C `evl_process`.
pub struct evl_process {
    child: Child,
    /// This box's address while it is open, 0 once closed: what the exit
    /// callback checks, since a freed box's address may be reused.
    me: Rc<Cell<usize>>,
}

const EVL_STDIO_INHERIT: c_int = 0;
const EVL_STDIO_IGNORE: c_int = 1;
const EVL_STDIO_PIPE: c_int = 2;
const EVL_PROCESS_DETACHED: c_int = 1;
const EVL_PROCESS_SETUID: c_int = 2;
const EVL_PROCESS_SETGID: c_int = 4;

/// The C `evl_process_options` (layout checked by the unit test below and
/// by `_Static_assert`s in tests/c/api_test.c).
#[repr(C)]
pub struct evl_process_options {
    file: *const c_char,
    args: *const *const c_char,
    env: *const *const c_char,
    cwd: *const c_char,
    stdio: [c_int; 3],
    flags: c_int,
    uid: u32,
    gid: u32,
    fds: *const c_int,
    fd_count: c_int,
}

/// The most extra fds one child gets (its fds 3 to 1026).
const MAX_EXTRA_FDS: c_int = 1024;

/// `void (*)(evl_loop *, evl_process *, int64_t exit_status, int term_signal, void *data)`
pub type evl_exit_cb = Option<
    unsafe extern "C" fn(
        lp: *mut evl_loop,
        process: *mut evl_process,
        exit_status: i64,
        term_signal: c_int,
        data: *mut c_void,
    ),
>;

/// The loop's live C processes, with the data of their exit callbacks.
#[derive(Default)]
struct Processes(HashMap<usize, super::CallbackData>);

impl Drop for Processes {
    fn drop(&mut self) {
        for (p, _data) in self.0.drain() {
            // SAFETY: every key came from Box::into_raw and leaves the
            // table when freed.
            drop(unsafe { Box::from_raw(p as *mut evl_process) });
        }
    }
}

/// True if `p` is a live process of this loop's.
fn is_live(ev: &mut EventLoop, p: *mut evl_process) -> bool {
    ev.layer_state::<Processes>().0.contains_key(&(p as usize))
}

/// `$body` with `$child` bound to the live process behind `$p`, or
/// `-EINVAL` for a stale or foreign pointer.
macro_rules! with_child {
    ($ev:expr, $p:expr, $child:ident => $body:expr) => {{
        if !is_live($ev, $p) {
            return EINVAL;
        }
        // SAFETY: the table says it is a live box of ours; it is freed only
        // by evl_process_close or with the loop, never during this entry
        // point.
        let $child: &Child = unsafe { &(*$p).child };
        $body
    }};
}

/// A NUL-terminated C string as an `OsStr`; `None` for NULL.
///
/// # Safety
/// `s` must be NULL or a NUL-terminated string alive for the call.
unsafe fn os<'a>(s: *const c_char) -> Option<&'a OsStr> {
    // SAFETY: the caller's promise.
    (!s.is_null()).then(|| OsStr::from_bytes(unsafe { CStr::from_ptr(s) }.to_bytes()))
}

/// The entries of a NULL-terminated array of C strings (at most 65,536).
///
/// # Safety
/// `list` must be NULL or a NULL-terminated array of NUL-terminated strings.
unsafe fn list<'a>(list: *const *const c_char) -> Result<Vec<&'a OsStr>, c_int> {
    let mut out = Vec::new();
    if list.is_null() {
        return Ok(out);
    }
    for k in 0..=65_536 {
        // SAFETY: the caller's promise: entries up to the NULL are readable.
        let entry = unsafe { *list.add(k) };
        if entry.is_null() {
            return Ok(out);
        }
        // SAFETY: as above.
        out.push(unsafe { os(entry) }.expect("non-null"));
    }
    Err(-libc::E2BIG)
}

fn stdio(mode: c_int) -> Result<Stdio, c_int> {
    match mode {
        EVL_STDIO_INHERIT => Ok(Stdio::Inherit),
        EVL_STDIO_IGNORE => Ok(Stdio::Null),
        EVL_STDIO_PIPE => Ok(Stdio::Pipe),
        _ => Err(EINVAL),
    }
}

/// The extra fds C asked for, as (the child's number, our duplicate):
/// `fds[i]` becomes the child's fd `3 + i`; -1 puts nothing there.
/// Duplicates, so C's fds stay C's (libuv's `UV_INHERIT_FD`).
/// `Err(-EINVAL)` for a bad count or NULL with a count, `Err(-EBADF)` for an
/// entry that is not an open fd (other than -1).
///
/// # Safety
/// `o.fds` must be NULL or hold `o.fd_count` ints.
unsafe fn extra_fds(o: &evl_process_options) -> Result<Vec<(c_int, OwnedFd)>, c_int> {
    if !(0..=MAX_EXTRA_FDS).contains(&o.fd_count) || (o.fds.is_null() && o.fd_count > 0) {
        return Err(EINVAL);
    }
    if o.fd_count == 0 {
        return Ok(Vec::new());
    }
    // SAFETY: the caller's promise; checked non-null and in range.
    let raw = unsafe { std::slice::from_raw_parts(o.fds, o.fd_count as usize) };
    let mut out = Vec::new();
    for (target, &fd) in (3..).zip(raw) {
        if fd == -1 {
            continue;
        }
        let dup = open_fd(fd)?.try_clone_to_owned().map_err(|e| errno(&e))?;
        out.push((target, dup));
    }
    Ok(out)
}

/// The `Command` C asked for.
///
/// # Safety
/// The options' pointers follow the header contract.
unsafe fn command(o: &evl_process_options) -> Result<Command, c_int> {
    // SAFETY: header contract for every pointer in `o`.
    let file = unsafe { os(o.file) }
        .filter(|f| !f.is_empty())
        .ok_or(EINVAL)?;
    if o.flags & !(EVL_PROCESS_DETACHED | EVL_PROCESS_SETUID | EVL_PROCESS_SETGID) != 0 {
        return Err(EINVAL);
    }
    let mut cmd = Command::new(file);
    // SAFETY: as above.
    for arg in unsafe { list(o.args) }? {
        cmd.arg(arg);
    }
    if !o.env.is_null() {
        cmd.env_clear();
        // SAFETY: as above.
        for entry in unsafe { list(o.env) }? {
            let bytes = entry.as_bytes();
            let eq = bytes.iter().position(|&b| b == b'=').ok_or(EINVAL)?;
            cmd.env(
                OsStr::from_bytes(&bytes[..eq]),
                OsStr::from_bytes(&bytes[eq + 1..]),
            );
        }
    }
    // SAFETY: as above.
    if let Some(dir) = unsafe { os(o.cwd) } {
        cmd.current_dir(dir);
    }
    cmd.stdin(stdio(o.stdio[0])?);
    cmd.stdout(stdio(o.stdio[1])?);
    cmd.stderr(stdio(o.stdio[2])?);
    // SAFETY: as above.
    for (target, fd) in unsafe { extra_fds(o) }? {
        cmd.fd(target, fd);
    }
    cmd.detached(o.flags & EVL_PROCESS_DETACHED != 0);
    if o.flags & EVL_PROCESS_SETUID != 0 {
        cmd.uid(o.uid);
    }
    if o.flags & EVL_PROCESS_SETGID != 0 {
        cmd.gid(o.gid);
    }
    Ok(cmd)
}

#[no_mangle]
pub unsafe extern "C" fn evl_spawn(
    lp: *mut evl_loop,
    options: *const evl_process_options,
    cb: evl_exit_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
    out: *mut *mut evl_process,
    pipes: *mut *mut evl_stream,
) -> c_int {
    guard(|| {
        if options.is_null() || out.is_null() {
            return EINVAL;
        }
        // SAFETY: checked non-null; header contract.
        let o = unsafe { &*options };
        let wants_pipes = o.stdio.contains(&EVL_STDIO_PIPE);
        if wants_pipes && pipes.is_null() {
            return EINVAL;
        }
        let ev = ev_or_einval!(lp);
        // SAFETY: header contract for the options' pointers.
        let cmd = match unsafe { command(o) } {
            Ok(cmd) => cmd,
            Err(rc) => return rc,
        };
        let owned = shared_data(data, free_data);
        // The process box's address, known once it is made (the exit
        // callback cannot run before this call returns).
        let slot = Rc::new(Cell::new(0usize));
        let (lpu, ptr, me) = (lp as usize, data as usize, slot.clone());
        let on_exit = move |ev: &mut EventLoop, status: std::process::ExitStatus| {
            use std::os::unix::process::ExitStatusExt;
            let p = me.get();
            // Closed before it exited: nobody to tell (the table alone
            // cannot say: another process may live at the freed address).
            if p == 0 || !ev.layer_state::<Processes>().0.contains_key(&p) {
                return;
            }
            if let Some(cb) = cb {
                let code = status.code().map_or(0, i64::from);
                let signal = status.signal().unwrap_or(0);
                // SAFETY: C's callback and data, valid until free_data (which
                // runs at evl_process_close).
                Current::run(lpu, ev, || unsafe {
                    cb(
                        lpu as *mut evl_loop,
                        p as *mut evl_process,
                        code,
                        signal,
                        ptr as *mut c_void,
                    )
                });
            }
        };
        let mut child = match process::spawn(ev, cmd, on_exit) {
            Ok(child) => child,
            Err(e) => {
                if let Some(d) = owned.take() {
                    d.disarm();
                }
                return errno(&e);
            }
        };
        if wants_pipes {
            let ends = [child.stdin.take(), child.stdout.take(), child.stderr.take()];
            for (k, end) in ends.into_iter().enumerate() {
                let s = end.map_or(std::ptr::null_mut(), |pipe| {
                    new_stream(ev, AnyStream::Pipe(pipe))
                });
                // SAFETY: header contract: `pipes` has room for 3.
                unsafe { pipes.add(k).write(s) };
            }
        } else if !pipes.is_null() {
            for k in 0..3 {
                // SAFETY: as above.
                unsafe { pipes.add(k).write(std::ptr::null_mut()) };
            }
        }
        let p = Box::into_raw(Box::new(evl_process {
            child,
            me: slot.clone(),
        }));
        slot.set(p as usize);
        ev.layer_state::<Processes>().0.insert(p as usize, owned);
        // SAFETY: checked non-null; C passes a writable pointer.
        unsafe { out.write(p) };
        0
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_process_pid(lp: *mut evl_loop, p: *mut evl_process) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        with_child!(ev, p, child => c_int::try_from(child.id()).unwrap_or(c_int::MAX))
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_process_kill(
    lp: *mut evl_loop,
    p: *mut evl_process,
    signum: c_int,
) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        with_child!(ev, p, child => child.kill(signum).map_or_else(|e| errno(&e), |()| 0))
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_process_set_ref(
    lp: *mut evl_loop,
    p: *mut evl_process,
    keep: c_int,
) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        with_child!(ev, p, child => child.set_ref(ev, keep != 0).map_or_else(|e| errno(&e), |()| 0))
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_process_close(lp: *mut evl_loop, p: *mut evl_process) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        let Some(data) = ev.layer_state::<Processes>().0.remove(&(p as usize)) else {
            return EINVAL;
        };
        // SAFETY: it was in the table: a live box of ours, now out of it.
        let boxed = unsafe { Box::from_raw(p) };
        boxed.me.set(0); // its exit, if still to come, is nobody's now
        drop(boxed);
        drop(data); // free_data; the exit callback will not run
        0
    })
}

#[no_mangle]
pub extern "C" fn evl_kill(pid: c_int, signum: c_int) -> c_int {
    guard(|| process::kill(pid, signum).map_or_else(|e| errno(&e), |()| 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout tests/c/api_test.c asserts with `_Static_assert`.
    #[test]
    fn process_options_layout_matches_the_header() {
        assert_eq!(std::mem::size_of::<evl_process_options>(), 72);
        assert_eq!(std::mem::offset_of!(evl_process_options, stdio), 32);
        assert_eq!(std::mem::offset_of!(evl_process_options, flags), 44);
        assert_eq!(std::mem::offset_of!(evl_process_options, uid), 48);
        assert_eq!(std::mem::offset_of!(evl_process_options, gid), 52);
        assert_eq!(std::mem::offset_of!(evl_process_options, fds), 56);
        assert_eq!(std::mem::offset_of!(evl_process_options, fd_count), 64);
    }

    static EXITS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    unsafe extern "C" fn count_exit(
        _: *mut evl_loop,
        _: *mut evl_process,
        _: i64,
        _: c_int,
        _: *mut c_void,
    ) {
        EXITS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// A handle closed before its child exits is freed, and the allocator
    /// may give its address to the next `evl_process`: the old child's exit
    /// must not then be reported (through the new handle, with the old,
    /// freed data). The reuse is simulated by putting an entry at the old
    /// address into the table.
    #[test]
    fn a_closed_handle_never_reports_through_its_reused_address() {
        let opts = evl_process_options {
            file: c"true".as_ptr(),
            args: std::ptr::null(),
            env: std::ptr::null(),
            cwd: std::ptr::null(),
            stdio: [EVL_STDIO_IGNORE; 3],
            flags: 0,
            uid: 0,
            gid: 0,
            fds: std::ptr::null(),
            fd_count: 0,
        };
        let mut lp: *mut evl_loop = std::ptr::null_mut();
        let mut p: *mut evl_process = std::ptr::null_mut();
        // SAFETY: valid pointers; the loop is freed below, and the fake
        // entry leaves the table before that (it is no box of ours).
        unsafe {
            assert_eq!(super::super::loop_api::evl_loop_new(&mut lp), 0);
            let rc = evl_spawn(
                lp,
                &opts,
                Some(count_exit),
                std::ptr::null_mut(),
                None,
                &mut p,
                std::ptr::null_mut(),
            );
            assert_eq!(rc, 0);
            assert_eq!(evl_process_close(lp, p), 0);
            let ev = super::super::loop_mut(lp).unwrap();
            let fake = shared_data(std::ptr::null_mut(), None);
            ev.layer_state::<Processes>().0.insert(p as usize, fake);
            assert_eq!(super::super::loop_api::evl_run(lp, 0), 0);
            assert_eq!(EXITS.load(std::sync::atomic::Ordering::SeqCst), 0);
            let ev = super::super::loop_mut(lp).unwrap();
            ev.layer_state::<Processes>().0.remove(&(p as usize));
            assert_eq!(super::super::loop_api::evl_loop_free(lp), 0);
        }
    }
}
