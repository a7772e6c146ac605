//! C entry points for UDP sockets (libuv's `uv_udp_*`).
//!
//! An `evl_udp` is a box owned by the loop's table of live UDP handles, as
//! `evl_stream` is: a pointer is used only after the table confirms it is
//! live, so a stale or foreign pointer is `-EINVAL`, not a crash.
//! `evl_udp_close` frees it at once; sends still queued then fail with
//! `-ECANCELED` in their callbacks, on a later pass.

use std::collections::HashSet;
use std::ffi::{c_char, c_int, c_void};
use std::net::SocketAddr;

use super::net::{evl_status_cb, resolve_addr, status_done};
use super::tcp::copy_out;
use super::{errno, evl_free_cb, evl_loop, guard, or_disarm, shared_data, Current, EINVAL};
use crate::net::udp::{BindOptions, UdpSocket};
use crate::EventLoop;

/// The C `evl_udp`.
pub struct evl_udp {
    socket: UdpSocket,
}

/// Bind flags.
const EVL_UDP_REUSEADDR: c_int = 1;
const EVL_UDP_REUSEPORT: c_int = 2;

/// `void (*)(evl_loop *, evl_udp *, ssize_t nread, const char *buf,
/// const char *from_ip, int from_port, void *data)`: the sender as the
/// host and port `evl_udp_send` takes, so a reply needs no parsing.
pub type evl_udp_recv_cb = Option<
    unsafe extern "C" fn(
        lp: *mut evl_loop,
        udp: *mut evl_udp,
        nread: isize,
        buf: *const c_char,
        from_ip: *const c_char,
        from_port: c_int,
        data: *mut c_void,
    ),
>;

/// The loop's live C UDP handles.
#[derive(Default)]
struct UdpObjects(HashSet<usize>);

impl Drop for UdpObjects {
    fn drop(&mut self) {
        for p in self.0.drain() {
            // SAFETY: every pointer in the table came from Box::into_raw
            // and leaves the table when freed.
            drop(unsafe { Box::from_raw(p as *mut evl_udp) });
        }
    }
}

fn udp_of(ev: &mut EventLoop, u: *mut evl_udp) -> Option<UdpSocket> {
    if !ev.layer_state::<UdpObjects>().0.contains(&(u as usize)) {
        return None;
    }
    // SAFETY: the table says it is a live box of ours.
    Some(unsafe { (*u).socket.clone() })
}

macro_rules! udp_or_einval {
    ($ev:expr, $u:expr) => {
        match udp_of($ev, $u) {
            Some(s) => s,
            None => return EINVAL,
        }
    };
}

/// The body of the simple socket calls: the live socket behind `u` (or
/// `-EINVAL`), then `f`'s outcome as 0 or a negative errno.
fn on_socket(
    lp: *mut evl_loop,
    u: *mut evl_udp,
    f: impl FnOnce(&mut EventLoop, &UdpSocket) -> std::io::Result<()>,
) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        let socket = udp_or_einval!(ev, u);
        f(ev, &socket).map_or_else(|e| errno(&e), |()| 0)
    })
}

/// `host:port` from C, or `None` for a NULL host (the connected peer).
fn peer_of(host: *const c_char, port: c_int) -> Result<Option<SocketAddr>, c_int> {
    if host.is_null() {
        Ok(None)
    } else {
        resolve_addr(host, port).map(Some)
    }
}

/// `data` of `len` bytes from C; `Err(-EINVAL)` for NULL with a length or
/// a length above `isize::MAX`.
///
/// # Safety
/// `buf` must be NULL or valid for `len` bytes during the call.
unsafe fn bytes<'a>(buf: *const c_void, len: usize) -> Result<&'a [u8], c_int> {
    if (buf.is_null() && len > 0) || len > isize::MAX as usize {
        return Err(EINVAL);
    }
    if len == 0 {
        return Ok(&[]);
    }
    // SAFETY: the caller's promise.
    Ok(unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) })
}

#[no_mangle]
pub unsafe extern "C" fn evl_udp_bind(
    lp: *mut evl_loop,
    host: *const c_char,
    port: c_int,
    flags: c_int,
    out: *mut *mut evl_udp,
) -> c_int {
    guard(|| {
        if out.is_null() || flags & !(EVL_UDP_REUSEADDR | EVL_UDP_REUSEPORT) != 0 {
            return EINVAL;
        }
        let ev = ev_or_einval!(lp);
        let addr = match resolve_addr(host, port) {
            Ok(addr) => addr,
            Err(rc) => return rc,
        };
        let options = BindOptions {
            reuse_address: flags & EVL_UDP_REUSEADDR != 0,
            reuse_port: flags & EVL_UDP_REUSEPORT != 0,
        };
        match UdpSocket::bind_with(ev, addr, options) {
            Ok(socket) => {
                let p = Box::into_raw(Box::new(evl_udp { socket }));
                ev.layer_state::<UdpObjects>().0.insert(p as usize);
                // SAFETY: checked non-null; C passes a writable pointer.
                unsafe { out.write(p) };
                0
            }
            Err(e) => errno(&e),
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_udp_local_addr(
    lp: *mut evl_loop,
    u: *mut evl_udp,
    buf: *mut c_char,
    size: usize,
) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        let socket = udp_or_einval!(ev, u);
        match socket.local_addr() {
            // SAFETY: header contract: `buf` is NULL or valid for `size`.
            Ok(addr) => unsafe { copy_out(addr.to_string().as_bytes(), buf, size) },
            Err(e) => errno(&e),
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_udp_connect(
    lp: *mut evl_loop,
    u: *mut evl_udp,
    host: *const c_char,
    port: c_int,
) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        let socket = udp_or_einval!(ev, u);
        let result = match peer_of(host, port) {
            Ok(Some(peer)) => socket.connect(peer),
            Ok(None) => socket.disconnect(),
            Err(rc) => return rc,
        };
        result.map_or_else(|e| errno(&e), |()| 0)
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_udp_send(
    lp: *mut evl_loop,
    u: *mut evl_udp,
    buf: *const c_void,
    len: usize,
    host: *const c_char,
    port: c_int,
    cb: evl_status_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        let socket = udp_or_einval!(ev, u);
        // SAFETY: header contract: `buf` holds `len` bytes; copied here.
        let payload = match unsafe { bytes(buf, len) } {
            Ok(b) => b.to_vec(),
            Err(rc) => return rc,
        };
        let peer = match peer_of(host, port) {
            Ok(peer) => peer,
            Err(rc) => return rc,
        };
        let (owned, done) = status_done(lp, cb, data, free_data);
        let result = match peer {
            Some(addr) => socket.send_to_with(ev, payload, addr, done),
            None => socket.send_with(ev, payload, done),
        };
        match or_disarm(result, &owned) {
            Ok(()) => 0,
            Err(rc) => rc,
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_udp_try_send(
    lp: *mut evl_loop,
    u: *mut evl_udp,
    buf: *const c_void,
    len: usize,
    host: *const c_char,
    port: c_int,
) -> isize {
    let mut rc = EINVAL as isize;
    super::guard_void(|| {
        // SAFETY: header contract: NULL or a live loop.
        let Some(ev) = (unsafe { super::loop_mut(lp) }) else {
            return;
        };
        let Some(socket) = udp_of(ev, u) else { return };
        // SAFETY: header contract: `buf` holds `len` bytes.
        let payload = match unsafe { bytes(buf, len) } {
            Ok(b) => b,
            Err(e) => {
                rc = e as isize;
                return;
            }
        };
        let result = match peer_of(host, port) {
            Ok(Some(addr)) => socket.try_send_to(payload, addr),
            Ok(None) => socket.try_send(payload),
            Err(e) => {
                rc = e as isize;
                return;
            }
        };
        rc = result.map_or_else(|e| errno(&e) as isize, |n| n as isize);
    });
    rc
}

#[no_mangle]
pub unsafe extern "C" fn evl_udp_recv_start(
    lp: *mut evl_loop,
    u: *mut evl_udp,
    cb: evl_udp_recv_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
) -> c_int {
    guard(|| {
        let Some(cb) = cb else { return EINVAL };
        let ev = ev_or_einval!(lp);
        let socket = udp_or_einval!(ev, u);
        let owned = shared_data(data, free_data);
        let keep = owned.clone();
        let (lpu, ptr, uu) = (lp as usize, data as usize, u as usize);
        let result = socket.recv_start(ev, move |ev, _, got| {
            let _ = &keep; // `data` lives until receiving stops
            let (n, buf, from) = match got {
                Ok((bytes, from)) => (bytes.len() as isize, bytes.as_ptr(), Some(from)),
                Err(e) => (errno(&e) as isize, std::ptr::null(), None),
            };
            let from_ip = from.map(|a| std::ffi::CString::new(a.ip().to_string()).expect("no NUL"));
            let from_ptr = from_ip.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
            let from_port = from.map_or(0, |a| c_int::from(a.port()));
            // SAFETY: C's callback and data, valid until free_data; `buf`
            // and `from` are valid during the call.
            Current::run(lpu, ev, || unsafe {
                cb(
                    lpu as *mut evl_loop,
                    uu as *mut evl_udp,
                    n,
                    buf.cast::<c_char>(),
                    from_ptr,
                    from_port,
                    ptr as *mut c_void,
                )
            });
        });
        match or_disarm(result, &owned) {
            Ok(()) => 0,
            Err(rc) => rc,
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_udp_recv_stop(lp: *mut evl_loop, u: *mut evl_udp) -> c_int {
    on_socket(lp, u, |ev, socket| {
        socket.recv_stop(ev);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_udp_set_ref(lp: *mut evl_loop, u: *mut evl_udp, keep: c_int) -> c_int {
    on_socket(lp, u, |ev, socket| socket.set_ref(ev, keep != 0))
}

#[no_mangle]
pub unsafe extern "C" fn evl_udp_set_broadcast(
    lp: *mut evl_loop,
    u: *mut evl_udp,
    on: c_int,
) -> c_int {
    on_socket(lp, u, |_, socket| socket.set_broadcast(on != 0))
}

#[no_mangle]
pub unsafe extern "C" fn evl_udp_close(lp: *mut evl_loop, u: *mut evl_udp) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        if !ev.layer_state::<UdpObjects>().0.remove(&(u as usize)) {
            return EINVAL;
        }
        // SAFETY: it was in the table, so a live box of ours, now out of
        // it: this is its only owner.
        let boxed = unsafe { Box::from_raw(u) };
        boxed.socket.close(ev);
        drop(boxed); // the receive callback's data goes with the socket
        0
    })
}

/// An IPv4 literal from C; `Err(-EINVAL)` otherwise.
fn ipv4_of(text: *const c_char) -> Result<std::net::Ipv4Addr, c_int> {
    if text.is_null() {
        return Err(EINVAL);
    }
    // SAFETY: a NUL-terminated string (header contract), checked non-null.
    let s = unsafe { std::ffi::CStr::from_ptr(text) }
        .to_str()
        .map_err(|_| EINVAL)?;
    s.parse().map_err(|_| EINVAL)
}

#[no_mangle]
pub unsafe extern "C" fn evl_udp_set_membership(
    lp: *mut evl_loop,
    u: *mut evl_udp,
    group: *const c_char,
    interface: *const c_char,
    join: c_int,
) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        let socket = udp_or_einval!(ev, u);
        let group = match ipv4_of(group) {
            Ok(g) => g,
            Err(rc) => return rc,
        };
        let interface = if interface.is_null() {
            std::net::Ipv4Addr::UNSPECIFIED
        } else {
            match ipv4_of(interface) {
                Ok(i) => i,
                Err(rc) => return rc,
            }
        };
        let result = if join != 0 {
            socket.join_multicast_v4(group, interface)
        } else {
            socket.leave_multicast_v4(group, interface)
        };
        result.map_or_else(|e| errno(&e), |()| 0)
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_udp_set_multicast_ttl(
    lp: *mut evl_loop,
    u: *mut evl_udp,
    ttl: c_int,
) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        let socket = udp_or_einval!(ev, u);
        let Ok(ttl) = u32::try_from(ttl) else {
            return EINVAL;
        };
        if ttl > 255 {
            return EINVAL;
        }
        socket
            .set_multicast_ttl_v4(ttl)
            .map_or_else(|e| errno(&e), |()| 0)
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_udp_set_multicast_loop(
    lp: *mut evl_loop,
    u: *mut evl_udp,
    on: c_int,
) -> c_int {
    on_socket(lp, u, |_, socket| socket.set_multicast_loop_v4(on != 0))
}
