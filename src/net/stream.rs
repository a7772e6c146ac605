//! [`Stream`]: the callback-style byte stream shared by TCP, Unix sockets,
//! pipes and child-process stdio (libuv's `uv_stream_t`, Node's `net.Socket`).
//!
//! A stream is a handle (`Rc` inside, cheap to clone) to state kept beside a
//! watcher of the core. Reading is push-style: [`Stream::read_start`] installs
//! a callback that gets each chunk, then `Ok(&[])` at EOF, or the error.
//! Writing queues: [`Stream::write`] tries the fd at once and queues what did
//! not fit; queued data goes out as the fd becomes writable, and each write's
//! callback runs in order, on a later pass, once all its bytes were accepted
//! by the OS. `write` returns `false` once the queue is above the high water
//! mark (Node's `write()` return value); the drain callback says when it fell
//! to the low one (asyncio's `pause_writing` / `resume_writing`).
//!
//! [`Stream::close`] releases the fd at once and fails the writes still
//! queued with `ECANCELED`; their callbacks, then the close callback, run on a
//! later pass, in that order. [`Stream::shutdown`] is the graceful half-close:
//! it waits until the queue is flushed.
//!
//! A panic in a stream callback leaves the stream in a defined state: a read
//! callback that panics is kept, as if it had returned (reading goes on with
//! the next chunk; the panic goes to the loop's panic handler or out of
//! `run()`), and when a write, drain or shutdown callback panics, the
//! callbacks due after it run on the next pass, in order, each exactly once.
//!
//! Sockets are written with `MSG_NOSIGNAL`, and SIGPIPE is ignored (if it
//! still has its default action) once a pipe stream is made, so a peer that
//! went away is an `EPIPE` in a write callback, never a dead process.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::panic;
use std::rc::Rc;

use socket2::SockRef;

use crate::event_loop::catch;
use crate::net::ReadBuffer;
use crate::{EventLoop, Interest, Readiness, WatchId};

type ReadCallback = Box<dyn FnMut(&mut EventLoop, &Stream, io::Result<&[u8]>)>;
type DoneCallback = Box<dyn FnOnce(&mut EventLoop, io::Result<()>)>;
type DrainCallback = Box<dyn FnMut(&mut EventLoop, &Stream)>;

/// Default high water mark of the write queue (asyncio's default).
pub const DEFAULT_HIGH_WATER: usize = 64 * 1024;
/// Reads per readiness event at most, so one busy stream cannot hog a pass.
const READS_PER_EVENT: usize = 16;

/// The fd, shared by the stream's state and its watcher: it closes only when
/// both let go, and the watcher lets go only after leaving the poller.
#[derive(Clone)]
struct SharedFd(Rc<File>);

impl AsFd for SharedFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

struct PendingWrite {
    data: Vec<u8>,
    written: usize,
    done: DoneCallback,
}

struct Inner {
    fd: Option<SharedFd>,
    watch: Option<WatchId>,
    is_socket: bool,
    interest: Interest,
    on_read: Option<ReadCallback>,
    reading: bool,
    /// Bumped by read_start/read_stop, to notice them inside the read callback.
    read_epoch: u64,
    writes: VecDeque<PendingWrite>,
    /// Writes that went out, waiting for their callbacks to run.
    completed: VecDeque<(DoneCallback, io::Result<()>)>,
    queued: usize,
    high_water: usize,
    low_water: usize,
    above_high: bool,
    on_drain: Option<DrainCallback>,
    shutdown: Option<DoneCallback>,
    write_ended: bool,
    closed: bool,
    keep_alive: bool,
}

/// A byte stream on the loop. Clones are handles to the same stream.
///
/// A stream stays open until [`close`](Stream::close): dropping every handle
/// does not close it (as with libuv handles). It keeps the loop alive while
/// it is reading or has writes queued.
#[derive(Clone)]
pub struct Stream {
    inner: Rc<RefCell<Inner>>,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let i = self.inner.borrow();
        f.debug_struct("Stream")
            .field("watch", &i.watch)
            .field("queued", &i.queued)
            .field("closed", &i.closed)
            .finish()
    }
}

fn ignore_sigpipe() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: querying and setting a signal disposition with valid
        // arguments; SIG_IGN is only installed over the default action.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old) == 0
                && old.sa_sigaction == libc::SIG_DFL
            {
                libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            }
        }
    });
}

pub(crate) fn closed_error() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "evloop: the stream is closed")
}

fn cancelled() -> io::Error {
    io::Error::from_raw_os_error(libc::ECANCELED)
}

fn copy_error(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}

impl Stream {
    /// Makes a stream of any stream-like fd: a connected socket, a pipe end,
    /// a terminal. The fd is made non-blocking.
    pub fn from_fd(ev: &mut EventLoop, fd: impl Into<OwnedFd>) -> io::Result<Stream> {
        let file = File::from(fd.into());
        let is_socket = SockRef::from(&file).r#type().is_ok();
        set_nonblocking(&file)?;
        if !is_socket {
            ignore_sigpipe();
        }
        let fd = SharedFd(Rc::new(file));
        let inner = Rc::new(RefCell::new(Inner {
            fd: Some(fd.clone()),
            watch: None,
            is_socket,
            interest: Interest::NONE,
            on_read: None,
            reading: false,
            read_epoch: 0,
            writes: VecDeque::new(),
            completed: VecDeque::new(),
            queued: 0,
            high_water: DEFAULT_HIGH_WATER,
            low_water: DEFAULT_HIGH_WATER / 4,
            above_high: false,
            on_drain: None,
            shutdown: None,
            write_ended: false,
            closed: false,
            keep_alive: true,
        }));
        let stream = Stream { inner };
        let me = stream.clone();
        let watch = ev.watch(fd, Interest::NONE, move |ev, _, r| me.on_ready(ev, r))?;
        stream.inner.borrow_mut().watch = Some(watch);
        Ok(stream)
    }

    /// Starts reading: `on_read` gets each chunk as `Ok(data)`, then `Ok(&[])`
    /// once at EOF, or `Err` on an error; reading stops by itself after EOF or
    /// an error. Replaces a previous read callback.
    pub fn read_start(
        &self,
        ev: &mut EventLoop,
        on_read: impl FnMut(&mut EventLoop, &Stream, io::Result<&[u8]>) + 'static,
    ) -> io::Result<()> {
        {
            let mut i = self.inner.borrow_mut();
            if i.closed {
                return Err(closed_error());
            }
            i.on_read = Some(Box::new(on_read));
            i.reading = true;
            i.read_epoch += 1;
        }
        self.update_interest(ev)
    }

    /// Stops reading; no read callback runs after this returns.
    pub fn read_stop(&self, ev: &mut EventLoop) -> io::Result<()> {
        {
            let mut i = self.inner.borrow_mut();
            i.on_read = None;
            i.reading = false;
            i.read_epoch += 1;
        }
        self.update_interest(ev)
    }

    /// Queues `data`; `done` runs on a later pass once the OS took all of it,
    /// or with the error (`EPIPE` for a peer that is gone, `ECANCELED` if the
    /// stream was closed first). Writes complete in order.
    ///
    /// Returns `Ok(false)` when the queue is above the high water mark: stop
    /// writing until the drain callback runs. Fails at once, without calling
    /// `done`, if the stream is closed or shut down.
    ///
    /// `data` is copied only if the OS does not take all of it at once, so a
    /// small write from a borrowed buffer allocates nothing.
    pub fn write(
        &self,
        ev: &mut EventLoop,
        data: impl AsRef<[u8]>,
        done: impl FnOnce(&mut EventLoop, io::Result<()>) + 'static,
    ) -> io::Result<bool> {
        let data = data.as_ref();
        let mut i = self.inner.borrow_mut();
        if i.closed {
            return Err(closed_error());
        }
        if i.write_ended {
            return Err(io::Error::from_raw_os_error(libc::EPIPE));
        }
        let mut written = 0;
        if i.writes.is_empty() {
            // Nothing queued: try the fd now, saving a trip through the poller.
            match i.send(data) {
                Ok(n) if n == data.len() => {
                    drop(i);
                    ev.call_soon(move |ev| done(ev, Ok(())));
                    return Ok(true);
                }
                Ok(n) => written = n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    drop(i);
                    ev.call_soon(move |ev| done(ev, Err(e)));
                    return Ok(true);
                }
            }
        }
        i.queued += data.len() - written;
        i.writes.push_back(PendingWrite {
            data: data[written..].to_vec(),
            written: 0,
            done: Box::new(done),
        });
        if i.queued > i.high_water {
            i.above_high = true;
        }
        let below = i.queued <= i.high_water;
        drop(i);
        self.update_interest(ev)?;
        Ok(below)
    }

    /// Bytes queued and not yet taken by the OS.
    pub fn write_queue_size(&self) -> usize {
        self.inner.borrow().queued
    }

    /// Sets the water marks (`low <= high`). `write` returns false above
    /// `high`; the drain callback runs when the queue falls to `low` after it
    /// was above `high`.
    pub fn set_write_water_marks(&self, high: usize, low: usize) -> io::Result<()> {
        if low > high {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "low water mark above high",
            ));
        }
        let mut i = self.inner.borrow_mut();
        i.high_water = high;
        i.low_water = low;
        Ok(())
    }

    /// Sets the callback for "the write queue drained to the low water mark".
    pub fn on_drain(&self, f: impl FnMut(&mut EventLoop, &Stream) + 'static) {
        self.inner.borrow_mut().on_drain = Some(Box::new(f));
    }

    /// Half-closes: once every queued write went out, ends the writing side
    /// and calls `done`. Later writes fail with `EPIPE`; reading goes on.
    ///
    /// A socket gets `shutdown(SHUT_WR)`. Other fds cannot be half-closed: a
    /// write-only one (a pipe's write end) is closed, so its reader sees EOF;
    /// one open for reading too (a terminal, a FIFO opened read-write) stays
    /// open for reading until [`close`](Stream::close).
    pub fn shutdown(
        &self,
        ev: &mut EventLoop,
        done: impl FnOnce(&mut EventLoop, io::Result<()>) + 'static,
    ) -> io::Result<()> {
        {
            let mut i = self.inner.borrow_mut();
            if i.closed {
                return Err(closed_error());
            }
            if i.write_ended {
                return Err(io::Error::from_raw_os_error(libc::EPIPE));
            }
            i.write_ended = true;
            i.shutdown = Some(Box::new(done));
        }
        if self.inner.borrow().writes.is_empty() {
            let result = self.inner.borrow_mut().end_writing();
            let done = self.inner.borrow_mut().shutdown.take();
            if let Some(done) = done {
                ev.call_soon(move |ev| done(ev, result));
            }
            if self.inner.borrow().closes_on_shutdown() {
                self.release(ev);
            }
        }
        self.update_interest(ev)
    }

    /// Closes the stream now: stops reading, releases the fd, and fails the
    /// queued writes (and a pending shutdown) with `ECANCELED`. Their
    /// callbacks run on a later pass in order, then `done`. Fails if already
    /// closed.
    pub fn close(
        &self,
        ev: &mut EventLoop,
        done: impl FnOnce(&mut EventLoop) + 'static,
    ) -> io::Result<()> {
        let (writes, shutdown) = {
            let mut i = self.inner.borrow_mut();
            if i.closed {
                return Err(closed_error());
            }
            i.closed = true;
            i.reading = false;
            i.on_read = None;
            i.on_drain = None;
            i.queued = 0;
            (std::mem::take(&mut i.writes), i.shutdown.take())
        };
        self.release(ev);
        for w in writes {
            ev.call_soon(move |ev| (w.done)(ev, Err(cancelled())));
        }
        if let Some(s) = shutdown {
            ev.call_soon(move |ev| s(ev, Err(cancelled())));
        }
        ev.call_soon(done);
        Ok(())
    }

    /// True once `close` was called.
    pub fn is_closed(&self) -> bool {
        self.inner.borrow().closed
    }

    /// Sets whether the stream keeps the loop alive while reading or writing.
    pub fn set_ref(&self, ev: &mut EventLoop, keep_alive: bool) {
        let watch = {
            let mut i = self.inner.borrow_mut();
            i.keep_alive = keep_alive;
            i.watch
        };
        if let Some(w) = watch {
            ev.set_watch_ref(w, keep_alive);
        }
    }

    /// Runs `f` with the socket, for options and addresses; `ENOTSOCK` for a
    /// pipe, `NotConnected` once closed.
    pub fn with_socket<T>(&self, f: impl FnOnce(SockRef<'_>) -> io::Result<T>) -> io::Result<T> {
        let i = self.inner.borrow();
        let fd = i.fd.as_ref().ok_or_else(closed_error)?;
        if !i.is_socket {
            return Err(io::Error::from_raw_os_error(libc::ENOTSOCK));
        }
        f(SockRef::from(&*fd.0))
    }

    /// Turns Nagle's algorithm off (true) or on. TCP streams made by evloop
    /// start with it off, as asyncio's.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.with_socket(|s| s.set_tcp_nodelay(nodelay))
    }

    /// Enables TCP keepalive probes after `idle` of silence, or disables them.
    pub fn set_keepalive(&self, idle: Option<std::time::Duration>) -> io::Result<()> {
        self.with_socket(|s| match idle {
            Some(t) => s.set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(t)),
            None => s.set_keepalive(false),
        })
    }

    /// The local address of a TCP stream.
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.with_socket(|s| s.local_addr()?.as_socket().ok_or_else(not_inet))
    }

    /// The peer address of a TCP stream.
    pub fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.with_socket(|s| s.peer_addr()?.as_socket().ok_or_else(not_inet))
    }

    /// Lets go of the fd: out of the poller, closed once nothing uses it.
    fn release(&self, ev: &mut EventLoop) {
        let watch = {
            let mut i = self.inner.borrow_mut();
            i.fd = None;
            i.interest = Interest::NONE;
            i.watch.take()
        };
        if let Some(w) = watch {
            ev.unwatch(w);
        }
    }

    fn update_interest(&self, ev: &mut EventLoop) -> io::Result<()> {
        let (watch, want) = {
            let mut i = self.inner.borrow_mut();
            let want = Interest {
                readable: i.reading,
                writable: !i.writes.is_empty(),
            };
            if want == i.interest || i.watch.is_none() {
                return Ok(());
            }
            i.interest = want;
            (i.watch.expect("checked"), want)
        };
        ev.set_interest(watch, want)
    }

    fn on_ready(&self, ev: &mut EventLoop, r: Readiness) {
        if r.writable || ((r.error || r.hangup) && !self.inner.borrow().writes.is_empty()) {
            self.flush(ev);
        }
        if r.readable {
            self.read_some(ev);
        }
        let _ = self.update_interest(ev);
    }

    fn read_some(&self, ev: &mut EventLoop) {
        let mut buf = ReadBuffer::lend(ev);
        let result = catch(|| self.read_into(ev, &mut buf));
        ReadBuffer::give_back(ev, buf);
        if let Err(p) = result {
            panic::resume_unwind(p);
        }
    }

    /// Reads and calls back until the fd is drained (or a batch was read).
    /// The callback is put back even if it panics, unless it stopped or
    /// replaced reading, or this was the last call (EOF, error).
    fn read_into(&self, ev: &mut EventLoop, buf: &mut [u8]) {
        for _ in 0..READS_PER_EVENT {
            let (result, mut callback, epoch) = {
                let mut i = self.inner.borrow_mut();
                if !i.reading || i.closed {
                    return;
                }
                let Some(fd) = i.fd.clone() else { return };
                let result = (&*fd.0).read(buf);
                let result = match result {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    r => r,
                };
                let Some(cb) = i.on_read.take() else { return };
                if !matches!(result, Ok(n) if n > 0) {
                    // EOF or error: reading ends by itself.
                    i.reading = false;
                    i.read_epoch += 1;
                }
                (result, cb, i.read_epoch)
            };
            // A short read drained the fd: no need for a read that says EAGAIN.
            let more = matches!(result, Ok(n) if n == buf.len());
            let last = !matches!(result, Ok(n) if n > 0);
            let result = catch(|| match result {
                Ok(n) => callback(ev, self, Ok(&buf[..n])),
                Err(e) => callback(ev, self, Err(e)),
            });
            let mut i = self.inner.borrow_mut();
            if i.read_epoch == epoch && !last && !i.closed {
                i.on_read = Some(callback);
            }
            drop(i);
            if let Err(p) = result {
                panic::resume_unwind(p);
            }
            if !more {
                return;
            }
        }
    }

    /// Writes out what the fd takes, then runs the callbacks that are due.
    fn flush(&self, ev: &mut EventLoop) {
        {
            let mut i = self.inner.borrow_mut();
            let i = &mut *i;
            while let Some(front) = i.writes.front_mut() {
                match send_on(i.fd.as_ref(), i.is_socket, &front.data[front.written..]) {
                    Ok(n) => {
                        i.queued -= n;
                        front.written += n;
                        if front.written == front.data.len() {
                            let w = i.writes.pop_front().expect("front exists");
                            i.completed.push_back((w.done, Ok(())));
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        // The stream cannot take more: fail everything queued.
                        for w in std::mem::take(&mut i.writes) {
                            i.completed.push_back((w.done, Err(copy_error(&e))));
                        }
                        i.queued = 0;
                        i.write_ended = true;
                        break;
                    }
                }
            }
        }
        self.finish_writes(ev);
    }

    /// Runs, in order: the callbacks of finished writes, the drain callback
    /// (if the queue fell to the low water mark), and a pending shutdown
    /// (once the queue is empty). If one of them panics, the rest run on the
    /// next pass and the panic goes on: no due callback is lost.
    fn finish_writes(&self, ev: &mut EventLoop) {
        if let Err(p) = catch(|| self.finish_writes_now(ev)) {
            let me = self.clone();
            ev.call_soon(move |ev| me.finish_writes(ev));
            panic::resume_unwind(p);
        }
    }

    fn finish_writes_now(&self, ev: &mut EventLoop) {
        loop {
            let next = self.inner.borrow_mut().completed.pop_front();
            let Some((done, result)) = next else { break };
            done(ev, result);
        }
        let drain = {
            let mut i = self.inner.borrow_mut();
            let drained = i.above_high && i.queued <= i.low_water;
            if drained {
                i.above_high = false;
                i.on_drain.take()
            } else {
                None
            }
        };
        if let Some(mut cb) = drain {
            let result = catch(|| cb(ev, self));
            let mut i = self.inner.borrow_mut();
            if i.on_drain.is_none() && !i.closed {
                i.on_drain = Some(cb);
            }
            drop(i);
            if let Err(p) = result {
                panic::resume_unwind(p);
            }
        }
        let shut = {
            let mut i = self.inner.borrow_mut();
            if i.writes.is_empty() && !i.closed {
                i.shutdown
                    .take()
                    .map(|cb| (cb, i.end_writing(), i.closes_on_shutdown()))
            } else {
                None
            }
        };
        if let Some((cb, result, release)) = shut {
            if release {
                self.release(ev);
            }
            cb(ev, result);
        }
    }
}

impl Inner {
    fn send(&self, data: &[u8]) -> io::Result<usize> {
        send_on(self.fd.as_ref(), self.is_socket, data)
    }

    fn end_writing(&mut self) -> io::Result<()> {
        match &self.fd {
            Some(fd) if self.is_socket => SockRef::from(&*fd.0).shutdown(std::net::Shutdown::Write),
            Some(_) => Ok(()), // see `closes_on_shutdown`
            None => Err(closed_error()),
        }
    }

    /// True for a write-only non-socket fd: shutting it down means closing
    /// it (nothing else can signal EOF to its reader, and nothing is left
    /// to read from it).
    fn closes_on_shutdown(&self) -> bool {
        use std::os::fd::AsRawFd;
        let Some(fd) = &self.fd else { return false };
        if self.is_socket {
            return false;
        }
        // SAFETY: F_GETFL on an open fd we own; no pointers.
        let flags = unsafe { libc::fcntl(fd.0.as_raw_fd(), libc::F_GETFL) };
        flags >= 0 && flags & libc::O_ACCMODE == libc::O_WRONLY
    }
}

/// One write to the fd: `send` with `MSG_NOSIGNAL` for a socket.
fn send_on(fd: Option<&SharedFd>, is_socket: bool, data: &[u8]) -> io::Result<usize> {
    let fd = fd.ok_or_else(closed_error)?;
    if is_socket {
        SockRef::from(&*fd.0).send_with_flags(data, libc::MSG_NOSIGNAL)
    } else {
        (&*fd.0).write(data)
    }
}

fn set_nonblocking(file: &File) -> io::Result<()> {
    // Works for any fd kind; socket2 only does the fcntl.
    SockRef::from(file).set_nonblocking(true)
}

fn not_inet() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "evloop: not an IP socket")
}
