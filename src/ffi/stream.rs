//! The stream and server kinds behind `evl_stream` and `evl_server`, and the
//! C calls every stream kind shares beyond read/write/shutdown/close (water
//! marks, the drain callback, `try_write`, pausing reads, kind and ref).
//!
//! The Rust API types its streams ([`TcpStream`], [`UnixStream`], [`Pipe`]:
//! one engine, different extra calls); C has one opaque `evl_stream`, so
//! [`AnyStream`] holds whichever kind it is and forwards the shared calls.
//! Calls that make sense for one kind only (TCP options, fd passing) match
//! on it and answer `-ENOTSUP` for the others.

use std::ffi::{c_int, c_void};
use std::io;

use super::net::{evl_stream, stream_of};
use super::{errno, evl_free_cb, evl_loop, guard, shared_data, CData, Current, EINVAL};
use crate::net::{Pipe, TcpServer, TcpStream, UnixServer, UnixStream};
use crate::EventLoop;

/// `void (*)(evl_loop *, evl_stream *, void *data)`
pub type evl_stream_cb =
    Option<unsafe extern "C" fn(lp: *mut evl_loop, stream: *mut evl_stream, data: *mut c_void)>;

/// Kinds of handle, as `evl_guess_handle` and `evl_stream_kind` answer.
const EVL_HANDLE_UNKNOWN: c_int = 0;
const EVL_HANDLE_TCP: c_int = 1;
const EVL_HANDLE_TCP_LISTENER: c_int = 2;
const EVL_HANDLE_UNIX: c_int = 3;
const EVL_HANDLE_UNIX_LISTENER: c_int = 4;
const EVL_HANDLE_UDP: c_int = 5;
const EVL_HANDLE_PIPE: c_int = 6;
const EVL_HANDLE_TTY: c_int = 7;
const EVL_HANDLE_FILE: c_int = 8;

/// The C constant for an fd kind.
pub(super) fn handle_kind(kind: crate::net::FdKind) -> c_int {
    use crate::net::FdKind;
    match kind {
        FdKind::TcpStream => EVL_HANDLE_TCP,
        FdKind::TcpListener => EVL_HANDLE_TCP_LISTENER,
        FdKind::UnixStream => EVL_HANDLE_UNIX,
        FdKind::UnixListener => EVL_HANDLE_UNIX_LISTENER,
        FdKind::Udp => EVL_HANDLE_UDP,
        FdKind::Pipe => EVL_HANDLE_PIPE,
        FdKind::CharDevice => EVL_HANDLE_TTY,
        FdKind::File => EVL_HANDLE_FILE,
        FdKind::Other => EVL_HANDLE_UNKNOWN,
    }
}

/// Any stream kind, as C sees it.
#[derive(Clone, Debug)]
pub(crate) enum AnyStream {
    /// A TCP connection.
    Tcp(TcpStream),
    /// A Unix stream socket.
    Unix(UnixStream),
    /// A pipe end, FIFO, terminal or other stream-like fd.
    Pipe(Pipe),
}

/// `$body` with `$s` bound to the typed stream, whatever its kind.
macro_rules! each {
    ($stream:expr, $s:ident => $body:expr) => {
        match $stream {
            AnyStream::Tcp($s) => $body,
            AnyStream::Unix($s) => $body,
            AnyStream::Pipe($s) => $body,
        }
    };
}

impl AnyStream {
    pub(crate) fn read_start(
        &self,
        ev: &mut EventLoop,
        mut on_read: impl FnMut(&mut EventLoop, io::Result<&[u8]>) + 'static,
    ) -> io::Result<()> {
        each!(self, s => s.read_start(ev, move |ev, _, chunk| on_read(ev, chunk)))
    }

    pub(crate) fn read_stop(&self, ev: &mut EventLoop) -> io::Result<()> {
        each!(self, s => s.read_stop(ev))
    }

    pub(crate) fn pause_reading(&self, ev: &mut EventLoop) -> io::Result<()> {
        each!(self, s => s.pause_reading(ev))
    }

    pub(crate) fn resume_reading(&self, ev: &mut EventLoop) -> io::Result<()> {
        each!(self, s => s.resume_reading(ev))
    }

    pub(crate) fn write_with(
        &self,
        ev: &mut EventLoop,
        data: &[u8],
        done: impl FnOnce(&mut EventLoop, io::Result<()>) + 'static,
    ) -> io::Result<bool> {
        each!(self, s => s.write_with(ev, data, done))
    }

    pub(crate) fn try_write(&self, data: &[u8]) -> io::Result<usize> {
        each!(self, s => s.try_write(data))
    }

    pub(crate) fn write_queue_size(&self) -> usize {
        each!(self, s => s.write_queue_size())
    }

    pub(crate) fn set_write_water_marks(&self, high: usize, low: usize) -> io::Result<()> {
        each!(self, s => s.set_write_water_marks(high, low))
    }

    pub(crate) fn on_drain(&self, mut f: impl FnMut(&mut EventLoop) + 'static) {
        each!(self, s => s.on_drain(move |ev, _| f(ev)))
    }

    pub(crate) fn shutdown_with(
        &self,
        ev: &mut EventLoop,
        done: impl FnOnce(&mut EventLoop, io::Result<()>) + 'static,
    ) -> io::Result<()> {
        each!(self, s => s.shutdown_with(ev, done))
    }

    pub(crate) fn close_with(
        &self,
        ev: &mut EventLoop,
        done: impl FnOnce(&mut EventLoop) + 'static,
    ) -> bool {
        each!(self, s => s.close_with(ev, done))
    }

    pub(crate) fn is_closed(&self) -> bool {
        each!(self, s => s.is_closed())
    }

    pub(crate) fn set_ref(&self, ev: &mut EventLoop, keep_alive: bool) -> io::Result<()> {
        each!(self, s => s.set_ref(ev, keep_alive))
    }

    /// The `EVL_HANDLE_*` constant of this kind.
    fn kind(&self) -> c_int {
        match self {
            AnyStream::Tcp(_) => EVL_HANDLE_TCP,
            AnyStream::Unix(_) => EVL_HANDLE_UNIX,
            AnyStream::Pipe(_) => EVL_HANDLE_PIPE,
        }
    }
}

/// Either server kind, as C sees it.
#[derive(Clone, Debug)]
pub(crate) enum AnyServer {
    /// A listening TCP socket.
    Tcp(TcpServer),
    /// A listening Unix stream socket.
    Unix(UnixServer),
}

impl AnyServer {
    pub(crate) fn close(&self, ev: &mut EventLoop) -> bool {
        match self {
            AnyServer::Tcp(s) => s.close(ev),
            AnyServer::Unix(s) => s.close(ev),
        }
    }
}

/// The stream of an entry point (or `return -EINVAL` for a NULL, stale or
/// foreign pointer), with its loop.
macro_rules! stream_or_einval {
    ($lp:expr, $s:expr) => {{
        let ev = ev_or_einval!($lp);
        match stream_of(ev, $s) {
            Some(stream) => (ev, stream),
            None => return EINVAL,
        }
    }};
}

/// 0, or the negative errno of `result`.
pub(super) fn status(result: io::Result<()>) -> c_int {
    result.map_or_else(|e| errno(&e), |()| 0)
}

#[no_mangle]
pub unsafe extern "C" fn evl_stream_kind(lp: *mut evl_loop, s: *mut evl_stream) -> c_int {
    guard(|| stream_or_einval!(lp, s).1.kind())
}

#[no_mangle]
pub unsafe extern "C" fn evl_stream_set_water_marks(
    lp: *mut evl_loop,
    s: *mut evl_stream,
    high: usize,
    low: usize,
) -> c_int {
    guard(|| status(stream_or_einval!(lp, s).1.set_write_water_marks(high, low)))
}

#[no_mangle]
pub unsafe extern "C" fn evl_stream_on_drain(
    lp: *mut evl_loop,
    s: *mut evl_stream,
    cb: evl_stream_cb,
    data: *mut c_void,
    free_data: evl_free_cb,
) -> c_int {
    guard(|| {
        let (_, stream) = stream_or_einval!(lp, s);
        if stream.is_closed() {
            return -libc::ENOTCONN;
        }
        let (lpu, su) = (lp as usize, s as usize);
        let owned = CData::new(data, free_data);
        match cb {
            // The callback holds `data` until it is replaced or the stream
            // closes; then free_data runs.
            Some(cb) => stream.on_drain(move |ev| {
                let ptr = owned.ptr();
                // SAFETY: C's callback and data, valid until free_data; the
                // stream is open (a closed one drops its drain callback).
                Current::run(lpu, ev, || unsafe {
                    cb(lpu as *mut evl_loop, su as *mut evl_stream, ptr)
                });
            }),
            None => {
                // Clears: the old callback's data is freed, and this
                // call's (accepted, never used) right after.
                stream.on_drain(|_| {});
                drop(owned);
            }
        }
        0
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_stream_try_write(
    lp: *mut evl_loop,
    s: *mut evl_stream,
    buf: *const c_void,
    len: usize,
) -> isize {
    let mut rc = EINVAL as isize;
    super::guard_void(|| {
        if (buf.is_null() && len > 0) || len > isize::MAX as usize {
            return;
        }
        // SAFETY: header contract: NULL or a live loop.
        let Some(ev) = (unsafe { super::loop_mut(lp) }) else {
            return;
        };
        let Some(stream) = stream_of(ev, s) else {
            return;
        };
        let bytes: &[u8] = if len == 0 {
            &[]
        } else {
            // SAFETY: C passes `len` readable bytes at `buf` (header contract).
            unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) }
        };
        rc = match stream.try_write(bytes) {
            Ok(n) => n as isize,
            Err(e) => errno(&e) as isize,
        };
    });
    rc
}

#[no_mangle]
pub unsafe extern "C" fn evl_stream_pause_reading(lp: *mut evl_loop, s: *mut evl_stream) -> c_int {
    guard(|| {
        let (ev, stream) = stream_or_einval!(lp, s);
        status(stream.pause_reading(ev))
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_stream_resume_reading(lp: *mut evl_loop, s: *mut evl_stream) -> c_int {
    guard(|| {
        let (ev, stream) = stream_or_einval!(lp, s);
        status(stream.resume_reading(ev))
    })
}

#[no_mangle]
pub unsafe extern "C" fn evl_stream_set_ref(
    lp: *mut evl_loop,
    s: *mut evl_stream,
    keep_alive: c_int,
) -> c_int {
    guard(|| {
        let (ev, stream) = stream_or_einval!(lp, s);
        status(stream.set_ref(ev, keep_alive != 0))
    })
}

/// A connect callback and its data as a Rust `done` for any stream kind,
/// for a call that may still fail: pass the first value to
/// [`or_disarm`](super::or_disarm) with its result. `on_end` runs first
/// when the callback is due (the connect-id table forgets the attempt).
pub(super) fn connect_done(
    lp: *mut evl_loop,
    cb: unsafe extern "C" fn(*mut evl_loop, c_int, *mut evl_stream, *mut c_void),
    data: *mut c_void,
    free_data: evl_free_cb,
    on_end: impl FnOnce(&mut EventLoop) + 'static,
) -> (
    super::CallbackData,
    impl FnOnce(&mut EventLoop, io::Result<AnyStream>),
) {
    let owned = shared_data(data, free_data);
    let keep = owned.clone();
    let (lpu, ptr) = (lp as usize, data as usize);
    let done = move |ev: &mut EventLoop, conn: io::Result<AnyStream>| {
        on_end(ev);
        let (status, stream) = match conn {
            Ok(stream) => (0, super::net::new_stream(ev, stream)),
            Err(e) => (errno(&e), std::ptr::null_mut()),
        };
        // SAFETY: C's callback and data, valid until free_data.
        Current::run(lpu, ev, || unsafe {
            cb(lpu as *mut evl_loop, status, stream, ptr as *mut c_void)
        });
        drop(keep); // free_data runs after the callback
    };
    (owned, done)
}
