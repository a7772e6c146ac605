//! C entry points for Unix stream sockets (servers, connects, socket pairs,
//! passing fds), pipes, and opening fds made elsewhere (`evl_guess_handle`).
//!
//! Fds C hands over are checked before anything is taken: a bad fd is
//! `-EBADF`, one of the wrong kind `-EINVAL` (`-EPERM` for a regular file),
//! and in every failed call the fd stays C's, open and unchanged but for
//! `O_NONBLOCK`. `evl_unix_write_fds` sends duplicates of C's fds and
//! leaves C's own alone, as `sendmsg` does.

use std::ffi::{c_char, c_int, c_void, OsStr};
use std::os::fd::{IntoRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::net::{
    evl_connect_cb, evl_connection_cb, evl_server, evl_status_cb, evl_stream, server_of,
    status_done, stream_of,
};
use super::stream::{connect_done, handle_kind, AnyServer, AnyStream};
use super::tcp::{
    adopt_fd, copy_out, file_connect, hand_out_stream, open_fd, reserve_connect_id, start_server,
};
use super::{c_path, errno, evl_free_cb, evl_loop, guard, or_disarm, EINVAL};
use crate::net::{unix, FdKind, Pipe, UnixServer, UnixStream};
use crate::EventLoop;

#[no_mangle]
pub unsafe extern "C" fn evl_unix_listen(
    lp: *mut evl_loop,
    path: *const c_char,
    backlog: c_int,
    cb: evl_connection_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
    out: *mut *mut evl_server,
) -> c_int {
    guard(|| {
        let Some(cb) = cb else { return EINVAL };
        if out.is_null() || backlog < 0 {
            return EINVAL;
        }
        let path = match c_path(path) {
            Ok(path) => path,
            Err(rc) => return rc,
        };
        let ev = ev_or_einval!(lp);
        // SAFETY: checked non-null; C passes a writable pointer.
        unsafe {
            start_server(ev, lp, cb, data, free_data, out, move |ev, mut on_conn| {
                unix::listen(ev, path, backlog, move |ev, conn| {
                    on_conn(ev, conn.map(AnyStream::Unix))
                })
                .map(AnyServer::Unix)
            })
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_unix_listen_fd(
    lp: *mut evl_loop,
    fd: c_int,
    cb: evl_connection_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
    out: *mut *mut evl_server,
) -> c_int {
    guard(|| {
        let Some(cb) = cb else { return EINVAL };
        if out.is_null() {
            return EINVAL;
        }
        let ev = ev_or_einval!(lp);
        let fd = match adopt_fd(ev, fd, &[FdKind::UnixListener]) {
            Ok(fd) => fd,
            Err(rc) => return rc,
        };
        // SAFETY: checked non-null; C passes a writable pointer.
        unsafe {
            start_server(ev, lp, cb, data, free_data, out, move |ev, mut on_conn| {
                UnixServer::from_fd(ev, fd, move |ev, conn| {
                    on_conn(ev, conn.map(AnyStream::Unix))
                })
                .map(AnyServer::Unix)
            })
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_server_path(
    lp: *mut evl_loop,
    server: *mut evl_server,
    buf: *mut c_char,
    size: usize,
) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        match server_of(ev, server) {
            None => EINVAL,
            Some(AnyServer::Tcp(_)) => -libc::ENOTSUP,
            Some(AnyServer::Unix(s)) => {
                let path = s.sock_addr().as_pathname().map(Path::as_os_str);
                let bytes = path.map_or(&[][..], OsStr::as_bytes);
                // SAFETY: header contract: `buf` is NULL or valid for `size`.
                unsafe { copy_out(bytes, buf, size) }
            }
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_unix_connect(
    lp: *mut evl_loop,
    path: *const c_char,
    cb: evl_connect_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
    out: *mut u64,
) -> c_int {
    guard(|| {
        let Some(cb) = cb else { return EINVAL };
        let path = match c_path(path) {
            Ok(path) => path,
            Err(rc) => return rc,
        };
        let ev = ev_or_einval!(lp);
        let (id, forget) = reserve_connect_id(ev);
        let (owned, done) = connect_done(lp, cb, data, free_data, forget);
        let result = unix::connect(ev, path, move |ev, conn| {
            done(ev, conn.map(AnyStream::Unix))
        });
        match or_disarm(result, &owned) {
            // SAFETY: header contract: `out` is NULL or writable.
            Ok(connecting) => unsafe { file_connect(ev, id, connecting, out) },
            Err(rc) => rc,
        }
    })
}

/// Makes two streams for C, written to `a` and `b` (both checked non-null
/// by the caller), or returns the error.
///
/// # Safety
/// `a` and `b` are valid for writes.
unsafe fn hand_out_two(
    ev: &mut EventLoop,
    pair: std::io::Result<(AnyStream, AnyStream)>,
    a: *mut *mut evl_stream,
    b: *mut *mut evl_stream,
) -> c_int {
    match pair {
        Ok((x, y)) => {
            let (x, y) = (super::net::new_stream(ev, x), super::net::new_stream(ev, y));
            // SAFETY: the caller's contract.
            unsafe {
                a.write(x);
                b.write(y);
            }
            0
        }
        Err(e) => errno(&e),
    }
}

#[no_mangle]
pub unsafe extern "C" fn evl_unix_pair(
    lp: *mut evl_loop,
    a: *mut *mut evl_stream,
    b: *mut *mut evl_stream,
) -> c_int {
    guard(|| {
        if a.is_null() || b.is_null() {
            return EINVAL;
        }
        let ev = ev_or_einval!(lp);
        let pair = UnixStream::pair().map(|(x, y)| (AnyStream::Unix(x), AnyStream::Unix(y)));
        // SAFETY: checked non-null; C passes writable pointers.
        unsafe { hand_out_two(ev, pair, a, b) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_pipe(
    lp: *mut evl_loop,
    read_end: *mut *mut evl_stream,
    write_end: *mut *mut evl_stream,
) -> c_int {
    guard(|| {
        if read_end.is_null() || write_end.is_null() {
            return EINVAL;
        }
        let ev = ev_or_einval!(lp);
        let pair = unix::pipe().map(|(r, w)| (AnyStream::Pipe(r), AnyStream::Pipe(w)));
        // SAFETY: checked non-null; C passes writable pointers.
        unsafe { hand_out_two(ev, pair, read_end, write_end) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_pipe_open(
    lp: *mut evl_loop,
    fd: c_int,
    out: *mut *mut evl_stream,
) -> c_int {
    guard(|| {
        if out.is_null() {
            return EINVAL;
        }
        let ev = ev_or_einval!(lp);
        let kinds = [FdKind::Pipe, FdKind::CharDevice, FdKind::Other];
        let fd = match adopt_fd(ev, fd, &kinds) {
            Ok(fd) => fd,
            Err(rc) => return rc,
        };
        let stream = Pipe::open(fd).map(AnyStream::Pipe);
        // SAFETY: checked non-null; C passes a writable pointer.
        unsafe { hand_out_stream(ev, stream, out) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_unix_open(
    lp: *mut evl_loop,
    fd: c_int,
    out: *mut *mut evl_stream,
) -> c_int {
    guard(|| {
        if out.is_null() {
            return EINVAL;
        }
        let ev = ev_or_einval!(lp);
        let fd = match adopt_fd(ev, fd, &[FdKind::UnixStream]) {
            Ok(fd) => fd,
            Err(rc) => return rc,
        };
        let stream = UnixStream::from_fd(fd).map(AnyStream::Unix);
        // SAFETY: checked non-null; C passes a writable pointer.
        unsafe { hand_out_stream(ev, stream, out) }
    })
}

#[no_mangle]
pub extern "C" fn evl_guess_handle(fd: c_int) -> c_int {
    guard(|| match open_fd(fd) {
        Ok(fd) => crate::net::guess_kind(fd).map_or_else(|e| errno(&e), handle_kind),
        Err(rc) => rc,
    })
}

/// The Unix stream of an entry point, `Err(-EINVAL)` for a bad pointer and
/// `Err(-ENOTSUP)` for another kind of stream.
fn unix_of(ev: &mut EventLoop, s: *mut evl_stream) -> Result<UnixStream, c_int> {
    match stream_of(ev, s) {
        Some(AnyStream::Unix(stream)) => Ok(stream),
        Some(_) => Err(-libc::ENOTSUP),
        None => Err(EINVAL),
    }
}

#[no_mangle]
pub unsafe extern "C" fn evl_unix_write_fds(
    lp: *mut evl_loop,
    s: *mut evl_stream,
    buf: *const c_void,
    len: usize,
    fds: *const c_int,
    nfds: usize,
    cb: evl_status_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
) -> c_int {
    guard(|| {
        if buf.is_null() || len == 0 || len > isize::MAX as usize {
            return EINVAL;
        }
        if (fds.is_null() && nfds > 0) || nfds > crate::sys::MAX_FDS_PER_MESSAGE {
            return EINVAL;
        }
        let ev = ev_or_einval!(lp);
        let stream = match unix_of(ev, s) {
            Ok(stream) => stream,
            Err(rc) => return rc,
        };
        let raw: &[c_int] = if nfds == 0 {
            &[]
        } else {
            // SAFETY: C passes `nfds` readable ints at `fds` (header contract).
            unsafe { std::slice::from_raw_parts(fds, nfds) }
        };
        // Duplicates are sent (closed once sent), and C's fds stay C's, as
        // with sendmsg: evloop never closes an fd it was not given to own
        // (one of its own streams', passed by mistake, say).
        let mut dups: Vec<OwnedFd> = Vec::with_capacity(raw.len());
        for &fd in raw {
            let borrowed = match open_fd(fd) {
                Ok(b) => b,
                Err(rc) => return rc,
            };
            match borrowed.try_clone_to_owned() {
                Ok(dup) => dups.push(dup),
                Err(e) => return errno(&e),
            }
        }
        // SAFETY: C passes `len` readable bytes at `buf` (header contract);
        // the write copies what it queues before returning.
        let bytes = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) };
        let (owned, done) = status_done(lp, cb, data, free_data);
        match or_disarm(stream.write_with_fds(ev, bytes, dups, done), &owned) {
            Ok(below_high_water) => c_int::from(below_high_water),
            Err(rc) => rc,
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_unix_receive_fds(
    lp: *mut evl_loop,
    s: *mut evl_stream,
    on: c_int,
) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        match unix_of(ev, s) {
            Ok(stream) => {
                stream.receive_fds(on != 0);
                0
            }
            Err(rc) => rc,
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_unix_pending_fds(lp: *mut evl_loop, s: *mut evl_stream) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        match unix_of(ev, s) {
            Ok(stream) => c_int::try_from(stream.pending_fds()).unwrap_or(c_int::MAX),
            Err(rc) => rc,
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_unix_take_fds(
    lp: *mut evl_loop,
    s: *mut evl_stream,
    fds: *mut c_int,
    max: usize,
) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        let stream = match unix_of(ev, s) {
            Ok(stream) => stream,
            Err(rc) => return rc,
        };
        let pending = stream.pending_fds();
        if pending > max {
            return -libc::ENOBUFS;
        }
        if pending == 0 {
            return 0;
        }
        if fds.is_null() {
            return EINVAL;
        }
        let taken = stream.take_fds();
        let count = taken.len();
        for (i, fd) in taken.into_iter().enumerate() {
            // SAFETY: C's array has room for `max` >= `pending` ints (header
            // contract), and `i` < `pending` (= `count`).
            unsafe { fds.add(i).write(fd.into_raw_fd()) };
        }
        c_int::try_from(count).unwrap_or(c_int::MAX)
    })
}
