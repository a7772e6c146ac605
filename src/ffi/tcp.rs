//! C entry points that only make sense for TCP: opening sockets made
//! elsewhere, addresses, socket options, closing with a reset, and connects
//! with a local address, a timeout and a cancellable request id.
//!
//! A connect request id (`evl_connect_id`) names a pending connect in the
//! loop's [`ConnectIds`] table until its callback is due; the Unix connect
//! hands out ids from the same table, so one `evl_connect_cancel` serves both.

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void};
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

use super::net::{evl_connect_cb, evl_connection_cb, evl_server, evl_stream, resolve_addr};
use super::stream::{connect_done, status, AnyServer, AnyStream};
use super::{errno, evl_cb, evl_free_cb, evl_loop, guard, or_disarm, shared_data, Current, EINVAL};
use crate::net::{tcp, Connecting, FdKind, TcpServer, TcpStream};
use crate::EventLoop;

/// Room for any address text `evl_tcp_peer_addr` writes, with its NUL:
/// "[" + 45 (IPv6 with IPv4 tail) + "%" + 10 (scope id) + "]:" + 5 < 80.
const EVL_ADDRSTRLEN: c_int = 80;

/// The loop's pending C connects, by the id C was given.
#[derive(Default)]
pub(super) struct ConnectIds {
    map: HashMap<u64, Connecting>,
    next: u64,
}

/// The id a connect will get (so its callback can forget it), and a
/// callback to forget it.
pub(super) fn reserve_connect_id(ev: &mut EventLoop) -> (u64, impl FnOnce(&mut EventLoop)) {
    let ids = ev.layer_state::<ConnectIds>();
    ids.next += 1;
    let id = ids.next;
    (id, move |ev: &mut EventLoop| {
        ev.layer_state::<ConnectIds>().map.remove(&id);
    })
}

/// Files a started connect under `id` and hands the id to C through `out`
/// (if not NULL).
///
/// # Safety
/// `out` is NULL or valid for a write (the header's contract).
pub(super) unsafe fn file_connect(
    ev: &mut EventLoop,
    id: u64,
    connecting: Connecting,
    out: *mut u64,
) -> c_int {
    ev.layer_state::<ConnectIds>().map.insert(id, connecting);
    if !out.is_null() {
        // SAFETY: the caller's contract.
        unsafe { out.write(id) };
    }
    0
}

#[no_mangle]
pub unsafe extern "C" fn evl_connect_cancel(lp: *mut evl_loop, id: u64) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        let Some(connecting) = ev.layer_state::<ConnectIds>().map.remove(&id) else {
            return -libc::ENOENT;
        };
        if connecting.cancel(ev) {
            0
        } else {
            -libc::ENOENT
        }
    })
}

/// `fd` as a borrowed fd if it is open, else `Err(-EBADF)`.
pub(super) fn open_fd<'a>(fd: RawFd) -> Result<BorrowedFd<'a>, c_int> {
    // SAFETY: F_GETFD reads the fd's flags and touches no memory.
    if fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(-libc::EBADF);
    }
    // SAFETY: checked open just now; the header makes C keep it open during
    // the call (it is C's until a call takes it over).
    Ok(unsafe { BorrowedFd::borrow_raw(fd) })
}

/// Takes over C's `fd` if it is open, of kind `want`, and not the loop's own
/// poller. On an error the fd is left as it was (still C's).
pub(super) fn adopt_fd(ev: &EventLoop, fd: RawFd, want: &[FdKind]) -> Result<OwnedFd, c_int> {
    let borrowed = open_fd(fd)?;
    if fd == ev.backend_fd() {
        return Err(EINVAL);
    }
    let kind = crate::net::guess_kind(borrowed).map_err(|e| errno(&e))?;
    if !want.contains(&kind) {
        // A regular file where a pipe-like fd was asked for: not pollable.
        let file_for_pipe = kind == FdKind::File && want.contains(&FdKind::Pipe);
        return Err(if file_for_pipe { -libc::EPERM } else { EINVAL });
    }
    // Made non-blocking while still borrowed, so that taking it over below
    // cannot fail and close C's fd.
    socket2::SockRef::from(&borrowed)
        .set_nonblocking(true)
        .map_err(|e| errno(&e))?;
    // SAFETY: open (checked above), and the header's contract hands it to
    // us on success, which is certain from here.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Writes a new stream to `out`, or gives the error.
///
/// # Safety
/// `out` is valid for a write.
pub(super) unsafe fn hand_out_stream(
    ev: &mut EventLoop,
    stream: std::io::Result<AnyStream>,
    out: *mut *mut evl_stream,
) -> c_int {
    match stream {
        Ok(stream) => {
            let p = super::net::new_stream(ev, stream);
            // SAFETY: the caller's contract.
            unsafe { out.write(p) };
            0
        }
        Err(e) => errno(&e),
    }
}

#[no_mangle]
pub unsafe extern "C" fn evl_tcp_open(
    lp: *mut evl_loop,
    fd: c_int,
    out: *mut *mut evl_stream,
) -> c_int {
    guard(|| {
        if out.is_null() {
            return EINVAL;
        }
        let ev = ev_or_einval!(lp);
        let fd = match adopt_fd(ev, fd, &[FdKind::TcpStream]) {
            Ok(fd) => fd,
            Err(rc) => return rc,
        };
        let stream = TcpStream::from_fd(fd).map(AnyStream::Tcp);
        // SAFETY: checked non-null; C passes a writable pointer.
        unsafe { hand_out_stream(ev, stream, out) }
    })
}

/// The connection callback of a C server of either kind, for `listen`.
pub(super) fn connection_callback(
    lp: *mut evl_loop,
    cb: unsafe extern "C" fn(*mut evl_loop, *mut evl_server, c_int, *mut evl_stream, *mut c_void),
    data: *mut c_void,
    keep: super::CallbackData,
    me: Rc<Cell<usize>>,
) -> impl FnMut(&mut EventLoop, std::io::Result<AnyStream>) {
    let (lpu, ptr) = (lp as usize, data as usize);
    move |ev, conn| {
        let _ = &keep; // `data` lives as long as the server
        let (status, client) = match conn {
            Ok(stream) => (0, super::net::new_stream(ev, stream)),
            Err(e) => (errno(&e), std::ptr::null_mut()),
        };
        let server = me.get() as *mut evl_server;
        // SAFETY: C's callback and data, valid until free_data.
        Current::run(lpu, ev, || unsafe {
            cb(
                lpu as *mut evl_loop,
                server,
                status,
                client,
                ptr as *mut c_void,
            )
        });
    }
}

/// Starts a server of either kind for C: `start` gets the connection
/// callback; on success the server goes to `out`.
///
/// # Safety
/// `out` is valid for a write.
pub(super) unsafe fn start_server(
    ev: &mut EventLoop,
    lp: *mut evl_loop,
    cb: unsafe extern "C" fn(*mut evl_loop, *mut evl_server, c_int, *mut evl_stream, *mut c_void),
    data: *mut c_void,
    free_data: evl_free_cb,
    out: *mut *mut evl_server,
    start: impl FnOnce(
        &mut EventLoop,
        Box<dyn FnMut(&mut EventLoop, std::io::Result<AnyStream>)>,
    ) -> std::io::Result<AnyServer>,
) -> c_int {
    let owned = shared_data(data, free_data);
    let me = Rc::new(Cell::new(0usize));
    let on_conn = connection_callback(lp, cb, data, owned.clone(), me.clone());
    match or_disarm(start(ev, Box::new(on_conn)), &owned) {
        Ok(server) => {
            let p = super::net::new_server(ev, server);
            me.set(p as usize);
            // SAFETY: the caller's contract.
            unsafe { out.write(p) };
            0
        }
        Err(rc) => rc,
    }
}

#[no_mangle]
pub unsafe extern "C" fn evl_tcp_listen_fd(
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
        let fd = match adopt_fd(ev, fd, &[FdKind::TcpListener]) {
            Ok(fd) => fd,
            Err(rc) => return rc,
        };
        // SAFETY: checked non-null; C passes a writable pointer.
        unsafe {
            start_server(ev, lp, cb, data, free_data, out, move |ev, mut on_conn| {
                TcpServer::from_fd(ev, fd, move |ev, conn| {
                    on_conn(ev, conn.map(AnyStream::Tcp))
                })
                .map(AnyServer::Tcp)
            })
        }
    })
}

/// The TCP stream of an entry point, `Err(-EINVAL)` for a bad pointer and
/// `Err(-ENOTSUP)` for another kind of stream.
fn tcp_of(ev: &mut EventLoop, s: *mut evl_stream) -> Result<TcpStream, c_int> {
    match super::net::stream_of(ev, s) {
        Some(AnyStream::Tcp(stream)) => Ok(stream),
        Some(_) => Err(-libc::ENOTSUP),
        None => Err(EINVAL),
    }
}

/// The TCP stream of an entry point, or return its error.
macro_rules! tcp_or_return {
    ($lp:expr, $s:expr) => {{
        let ev = ev_or_einval!($lp);
        match tcp_of(ev, $s) {
            Ok(stream) => (ev, stream),
            Err(rc) => return rc,
        }
    }};
}

/// Writes `text` and a NUL to `buf` (of `size` bytes): its length, or
/// `-ENOBUFS` if it does not fit (nothing written).
///
/// # Safety
/// `buf` is NULL or valid for `size` bytes of writes.
pub(super) unsafe fn copy_out(text: &[u8], buf: *mut c_char, size: usize) -> c_int {
    if buf.is_null() {
        return EINVAL;
    }
    if text.len() >= size {
        return -libc::ENOBUFS;
    }
    // SAFETY: `buf` has room for `text` and the NUL (checked above).
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr().cast::<c_char>(), buf, text.len());
        buf.add(text.len()).write(0);
    }
    c_int::try_from(text.len()).unwrap_or(c_int::MAX)
}

fn addr_text(
    lp: *mut evl_loop,
    s: *mut evl_stream,
    buf: *mut c_char,
    size: usize,
    peer: bool,
) -> c_int {
    guard(|| {
        let (_, stream) = tcp_or_return!(lp, s);
        let addr = if peer {
            stream.peer_addr()
        } else {
            stream.local_addr()
        };
        match addr {
            Ok(addr) => {
                let text = addr.to_string();
                debug_assert!(text.len() < EVL_ADDRSTRLEN as usize, "{text}");
                // SAFETY: header contract: `buf` is valid for `size` bytes.
                unsafe { copy_out(text.as_bytes(), buf, size) }
            }
            Err(e) => errno(&e),
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_tcp_peer_addr(
    lp: *mut evl_loop,
    s: *mut evl_stream,
    buf: *mut c_char,
    size: usize,
) -> c_int {
    addr_text(lp, s, buf, size, true)
}

#[no_mangle]
pub unsafe extern "C" fn evl_tcp_local_addr(
    lp: *mut evl_loop,
    s: *mut evl_stream,
    buf: *mut c_char,
    size: usize,
) -> c_int {
    addr_text(lp, s, buf, size, false)
}

#[no_mangle]
pub unsafe extern "C" fn evl_tcp_set_nodelay(
    lp: *mut evl_loop,
    s: *mut evl_stream,
    enable: c_int,
) -> c_int {
    guard(|| {
        let (_, stream) = tcp_or_return!(lp, s);
        status(stream.set_nodelay(enable != 0))
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_tcp_set_keepalive(
    lp: *mut evl_loop,
    s: *mut evl_stream,
    enable: c_int,
    delay_s: u32,
) -> c_int {
    guard(|| {
        // Linux takes TCP_KEEPIDLE in 1..=32767 seconds.
        if enable != 0 && !(1..=32767).contains(&delay_s) {
            return EINVAL;
        }
        let (_, stream) = tcp_or_return!(lp, s);
        let idle = (enable != 0).then(|| Duration::from_secs(u64::from(delay_s)));
        status(stream.set_keepalive(idle))
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_tcp_close_reset(
    lp: *mut evl_loop,
    s: *mut evl_stream,
    cb: evl_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
) -> c_int {
    guard(|| {
        let (ev, stream) = tcp_or_return!(lp, s);
        if stream.is_closed() {
            return -libc::ENOTCONN;
        }
        if let Err(e) = stream.with_fd(crate::sys::set_linger_zero) {
            log::warn!("evloop: evl_tcp_close_reset: SO_LINGER: {e}; closing gracefully");
        }
        let stream = AnyStream::Tcp(stream);
        super::net::close_stream(ev, lp, s, &stream, cb, data, free_data)
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_tcp_connect_ex(
    lp: *mut evl_loop,
    ip: *const c_char,
    port: c_int,
    bind_ip: *const c_char,
    bind_port: c_int,
    timeout_ms: u64,
    cb: evl_connect_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
    out: *mut u64,
) -> c_int {
    guard(|| {
        let Some(cb) = cb else { return EINVAL };
        if lp.is_null() {
            return EINVAL;
        }
        let addr = match resolve_addr(ip, port) {
            Ok(addr) => addr,
            Err(e) => return e,
        };
        let local_addr = if bind_ip.is_null() {
            if bind_port != 0 {
                return EINVAL;
            }
            None
        } else {
            match resolve_addr(bind_ip, bind_port) {
                Ok(addr) => Some(addr),
                Err(e) => return e,
            }
        };
        let ev = ev_or_einval!(lp);
        let options = tcp::ConnectOptions {
            local_addr,
            timeout: (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms)),
        };
        let (id, forget) = reserve_connect_id(ev);
        let (owned, done) = connect_done(lp, cb, data, free_data, forget);
        let result = tcp::connect_with(ev, addr, options, move |ev, conn| {
            done(ev, conn.map(AnyStream::Tcp))
        });
        match or_disarm(result, &owned) {
            // SAFETY: header contract: `out` is NULL or writable.
            Ok(connecting) => unsafe { file_connect(ev, id, connecting, out) },
            Err(rc) => rc,
        }
    })
}
