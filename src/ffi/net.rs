//! C entry points for TCP servers and connects, and for the calls every
//! stream kind shares (read, write, shutdown, close).
//!
//! `evl_stream` and `evl_server` are boxes owned by the loop's table of live
//! C objects ([`Objects`]): a pointer is only dereferenced after the table
//! confirms it is live, so a stale pointer is `-EINVAL`, not a crash. A
//! stream's box is freed after its close callback; whatever is still open
//! when the loop is freed is freed with it. A stream is any of the Rust
//! stream kinds ([`AnyStream`]), a server either server kind ([`AnyServer`]).

use std::collections::HashSet;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::io;
use std::net::{IpAddr, SocketAddr};

use super::stream::{AnyServer, AnyStream};
use super::{
    c_bytes, errno, evl_cb, evl_free_cb, evl_loop, guard, or_disarm, shared_data, Current, EINVAL,
};
use crate::net::tcp;
use crate::EventLoop;

/// The C `evl_stream`.
pub struct evl_stream {
    pub(super) stream: AnyStream,
}

/// The C `evl_server`.
pub struct evl_server {
    pub(super) server: AnyServer,
}

/// `void (*)(evl_loop *, evl_server *, int status, evl_stream *client, void *data)`
pub type evl_connection_cb = Option<
    unsafe extern "C" fn(
        lp: *mut evl_loop,
        server: *mut evl_server,
        status: c_int,
        client: *mut evl_stream,
        data: *mut c_void,
    ),
>;
/// `void (*)(evl_loop *, int status, evl_stream *stream, void *data)`
pub type evl_connect_cb = Option<
    unsafe extern "C" fn(
        lp: *mut evl_loop,
        status: c_int,
        stream: *mut evl_stream,
        data: *mut c_void,
    ),
>;
/// `void (*)(evl_loop *, evl_stream *, ssize_t nread, const char *buf, void *data)`
pub type evl_read_cb = Option<
    unsafe extern "C" fn(
        lp: *mut evl_loop,
        stream: *mut evl_stream,
        nread: isize,
        buf: *const c_char,
        data: *mut c_void,
    ),
>;
/// `void (*)(evl_loop *, int status, void *data)`
pub type evl_status_cb = super::work::evl_status_cb;

/// The loop's live C streams and servers.
#[derive(Default)]
pub(super) struct Objects {
    pub(super) streams: HashSet<usize>,
    pub(super) servers: HashSet<usize>,
}

impl Drop for Objects {
    fn drop(&mut self) {
        for p in self.streams.drain() {
            // SAFETY: every pointer in the table came from Box::into_raw and
            // is removed from it when freed.
            drop(unsafe { Box::from_raw(p as *mut evl_stream) });
        }
        for p in self.servers.drain() {
            // SAFETY: as above.
            drop(unsafe { Box::from_raw(p as *mut evl_server) });
        }
    }
}

pub(super) fn new_stream(ev: &mut EventLoop, stream: AnyStream) -> *mut evl_stream {
    let p = Box::into_raw(Box::new(evl_stream { stream }));
    ev.layer_state::<Objects>().streams.insert(p as usize);
    p
}

/// The live stream behind a C pointer.
pub(super) fn stream_of(ev: &mut EventLoop, s: *mut evl_stream) -> Option<AnyStream> {
    if !ev.layer_state::<Objects>().streams.contains(&(s as usize)) {
        return None;
    }
    // SAFETY: the table says it is a live box of ours.
    Some(unsafe { (*s).stream.clone() })
}

/// Boxes a server for C and enters it in the table of live objects.
pub(super) fn new_server(ev: &mut EventLoop, server: AnyServer) -> *mut evl_server {
    let p = Box::into_raw(Box::new(evl_server { server }));
    ev.layer_state::<Objects>().servers.insert(p as usize);
    p
}

/// The live server behind a C pointer.
pub(super) fn server_of(ev: &mut EventLoop, s: *mut evl_server) -> Option<AnyServer> {
    if !ev.layer_state::<Objects>().servers.contains(&(s as usize)) {
        return None;
    }
    // SAFETY: the table says it is a live box of ours.
    Some(unsafe { (*s).server.clone() })
}

/// The address for `host` and `port`: an IP literal, or "localhost" (the
/// loopback address, RFC 6761). Other names are not looked up: that would
/// block the loop thread on DNS (libuv's `uv_ip4_addr` takes literals only
/// too). `Err(-EINVAL)` for NULL, bad UTF-8, an empty host or a port outside
/// 0..=65535; `Err(-ENXIO)` for any other name.
pub(super) fn resolve_addr(host: *const c_char, port: c_int) -> Result<SocketAddr, c_int> {
    if host.is_null() {
        return Err(EINVAL);
    }
    let port = u16::try_from(port).map_err(|_| EINVAL)?;
    // SAFETY: a NUL-terminated string (header contract), checked non-null.
    let host = unsafe { CStr::from_ptr(host) }
        .to_str()
        .map_err(|_| EINVAL)?;
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(SocketAddr::new(
            IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            port,
        ));
    }
    if host.is_empty() {
        return Err(EINVAL);
    }
    log::warn!(
        "evloop: {host:?} is not an IP address: names other than localhost are not looked up here (resolve it first)"
    );
    Err(-libc::ENXIO)
}

#[no_mangle]
pub unsafe extern "C" fn evl_tcp_listen(
    lp: *mut evl_loop,
    ip: *const c_char,
    port: c_int,
    backlog: c_int,
    cb: evl_connection_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
    out: *mut *mut evl_server,
) -> c_int {
    guard(|| {
        let Some(cb) = cb else { return EINVAL };
        if out.is_null() || backlog < 0 || lp.is_null() {
            return EINVAL;
        }
        let addr = match resolve_addr(ip, port) {
            Ok(addr) => addr,
            Err(e) => return e,
        };
        let ev = ev_or_einval!(lp);
        let owned = shared_data(data, free_data);
        let keep = owned.clone();
        let (lpu, ptr) = (lp as usize, data as usize);
        let me = std::rc::Rc::new(std::cell::Cell::new(0usize));
        let me2 = me.clone();
        let options = tcp::ListenOptions {
            backlog,
            reuse_port: false,
        };
        let result = tcp::listen(ev, addr, options, move |ev, conn| {
            let _ = &keep; // `data` lives as long as the server
            let (status, client) = match conn {
                Ok(stream) => (0, new_stream(ev, AnyStream::Tcp(stream))),
                Err(e) => (errno(&e), std::ptr::null_mut()),
            };
            let server = me2.get() as *mut evl_server;
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
        });
        match or_disarm(result, &owned) {
            Ok(server) => {
                let p = new_server(ev, AnyServer::Tcp(server));
                me.set(p as usize);
                // SAFETY: checked non-null; C passes a writable pointer.
                unsafe { out.write(p) };
                0
            }
            Err(rc) => rc,
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_server_port(lp: *mut evl_loop, server: *mut evl_server) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        match server_of(ev, server) {
            Some(AnyServer::Tcp(server)) => match server.local_addr() {
                Ok(addr) => c_int::from(addr.port()),
                Err(e) => errno(&e),
            },
            Some(AnyServer::Unix(_)) => -libc::ENOTSUP,
            None => EINVAL,
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_server_close(lp: *mut evl_loop, server: *mut evl_server) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        if !ev
            .layer_state::<Objects>()
            .servers
            .remove(&(server as usize))
        {
            return EINVAL;
        }
        // SAFETY: it was in the table, so it is a live box of ours; it is
        // out of the table now, so this is its only owner.
        let server = unsafe { Box::from_raw(server) };
        server.server.close(ev); // drops the callback and so its data
        0
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_tcp_connect(
    lp: *mut evl_loop,
    ip: *const c_char,
    port: c_int,
    cb: evl_connect_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
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
        let ev = ev_or_einval!(lp);
        let owned = shared_data(data, free_data);
        let keep = owned.clone();
        let (lpu, ptr) = (lp as usize, data as usize);
        let result = tcp::connect(ev, addr, move |ev, conn| {
            let (status, stream) = match conn {
                Ok(stream) => (0, new_stream(ev, AnyStream::Tcp(stream))),
                Err(e) => (errno(&e), std::ptr::null_mut()),
            };
            // SAFETY: C's callback and data, valid until free_data.
            Current::run(lpu, ev, || unsafe {
                cb(lpu as *mut evl_loop, status, stream, ptr as *mut c_void)
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
pub unsafe extern "C" fn evl_stream_read_start(
    lp: *mut evl_loop,
    s: *mut evl_stream,
    cb: evl_read_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
) -> c_int {
    guard(|| {
        let Some(cb) = cb else { return EINVAL };
        let ev = ev_or_einval!(lp);
        let Some(stream) = stream_of(ev, s) else {
            return EINVAL;
        };
        let owned = shared_data(data, free_data);
        let keep = owned.clone();
        let (lpu, ptr, su) = (lp as usize, data as usize, s as usize);
        let result = stream.read_start(ev, move |ev, chunk: io::Result<&[u8]>| {
            let _ = &keep; // `data` lives until reading stops
            let (n, buf) = c_bytes(&chunk);
            // SAFETY: C's callback and data, valid until free_data; `buf` is
            // valid for `n` bytes during the call.
            Current::run(lpu, ev, || unsafe {
                cb(
                    lpu as *mut evl_loop,
                    su as *mut evl_stream,
                    n,
                    buf,
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
pub unsafe extern "C" fn evl_stream_read_stop(lp: *mut evl_loop, s: *mut evl_stream) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        let Some(stream) = stream_of(ev, s) else {
            return EINVAL;
        };
        stream.read_stop(ev).map_or_else(|e| errno(&e), |()| 0)
    })
}

/// A status callback (may be NULL) and its data, as a Rust `done`, for a
/// call that may still fail: pass the first value to [`or_disarm`] with its result.
pub(super) fn status_done(
    lp: *mut evl_loop,
    cb: evl_status_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
) -> (
    super::CallbackData,
    impl FnOnce(&mut EventLoop, io::Result<()>),
) {
    let owned = shared_data(data, free_data);
    let keep = owned.clone();
    let (lpu, ptr) = (lp as usize, data as usize);
    let done = move |ev: &mut EventLoop, result: io::Result<()>| {
        let status = result.map_or_else(|e| errno(&e), |()| 0);
        if let Some(cb) = cb {
            // SAFETY: C's callback and data, valid until free_data.
            Current::run(lpu, ev, || unsafe {
                cb(lpu as *mut evl_loop, status, ptr as *mut c_void)
            });
        }
        drop(keep); // free_data runs after the callback
    };
    (owned, done)
}

#[no_mangle]
pub unsafe extern "C" fn evl_stream_write(
    lp: *mut evl_loop,
    s: *mut evl_stream,
    buf: *const c_void,
    len: usize,
    cb: evl_status_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
) -> c_int {
    guard(|| {
        if (buf.is_null() && len > 0) || len > isize::MAX as usize {
            return EINVAL;
        }
        let ev = ev_or_einval!(lp);
        let Some(stream) = stream_of(ev, s) else {
            return EINVAL;
        };
        let bytes: &[u8] = if len == 0 {
            &[]
        } else {
            // SAFETY: C passes `len` readable bytes at `buf` (header contract);
            // `write` copies what it queues before returning.
            unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) }
        };
        let (owned, done) = status_done(lp, cb, data, free_data);
        match or_disarm(stream.write_with(ev, bytes, done), &owned) {
            Ok(below_high_water) => c_int::from(below_high_water),
            Err(rc) => rc,
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_stream_write_queue_size(
    lp: *mut evl_loop,
    s: *mut evl_stream,
) -> isize {
    let mut size = EINVAL as isize;
    super::guard_void(|| {
        // SAFETY: header contract: NULL or a live loop.
        let Some(ev) = (unsafe { super::loop_mut(lp) }) else {
            return;
        };
        if let Some(stream) = stream_of(ev, s) {
            size = stream.write_queue_size() as isize;
        }
    });
    size
}

#[no_mangle]
pub unsafe extern "C" fn evl_stream_shutdown(
    lp: *mut evl_loop,
    s: *mut evl_stream,
    cb: evl_status_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        let Some(stream) = stream_of(ev, s) else {
            return EINVAL;
        };
        let (owned, done) = status_done(lp, cb, data, free_data);
        match or_disarm(stream.shutdown_with(ev, done), &owned) {
            Ok(()) => 0,
            Err(rc) => rc,
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_stream_close(
    lp: *mut evl_loop,
    s: *mut evl_stream,
    cb: evl_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
) -> c_int {
    guard(|| {
        let ev = ev_or_einval!(lp);
        let Some(stream) = stream_of(ev, s) else {
            return EINVAL;
        };
        close_stream(ev, lp, s, &stream, cb, data, free_data)
    })
}

/// Closes the live stream `stream` (C's `s`): `cb` (may be NULL) runs after
/// the queued writes' callbacks, then the box is freed.
pub(super) fn close_stream(
    ev: &mut EventLoop,
    lp: *mut evl_loop,
    s: *mut evl_stream,
    stream: &AnyStream,
    cb: evl_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
) -> c_int {
    let owned = shared_data(data, free_data);
    let keep = owned.clone();
    let (lpu, ptr, su) = (lp as usize, data as usize, s as usize);
    let closing = stream.close_with(ev, move |ev| {
        if let Some(cb) = cb {
            // SAFETY: C's callback and data, valid until free_data.
            Current::run(lpu, ev, || unsafe {
                cb(lpu as *mut evl_loop, ptr as *mut c_void)
            });
        }
        drop(keep);
        if ev.layer_state::<Objects>().streams.remove(&su) {
            // SAFETY: it was in the table, so it is a live box of ours,
            // and now out of it: this is its only owner.
            drop(unsafe { Box::from_raw(su as *mut evl_stream) });
        }
    });
    let result = if closing {
        Ok(())
    } else {
        Err(crate::net::closed_error()) // closing already: -ENOTCONN
    };
    match or_disarm(result, &owned) {
        Ok(()) => 0,
        Err(rc) => rc,
    }
}
