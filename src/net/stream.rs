//! The byte-stream engine behind [`TcpStream`], [`UnixStream`] and [`Pipe`]
//! (libuv's `uv_stream_t`, Node's `net.Socket`).
//!
//! One engine, [`Stream<K>`], does the reading, writing, backpressure and
//! closing for every kind of stream; the marker `K` ([`kind::Tcp`],
//! [`kind::Unix`], [`kind::Pipe`]) only decides which extra calls exist:
//! `set_nodelay` and `peer_addr` are on [`TcpStream`], not on a [`Pipe`].
//!
//! A stream is a handle (`Rc` inside, cheap to clone) to state kept beside a
//! watcher of the core. The watcher is made on first need (reading, or a
//! write that must wait), so a stream that is only created and closed costs
//! no poller call.
//!
//! Reading is push-style: [`Stream::read_start`] installs a callback that
//! gets each chunk, then `Ok(&[])` once at EOF, or the error; reading ends by
//! itself after EOF or an error. [`Stream::read_start_into`] instead appends
//! to a buffer of the caller's, so a parser keeps its leftovers in place.
//! [`Stream::pause_reading`] and [`Stream::resume_reading`] (asyncio's
//! names) stop and restart the flow and keep the callback.
//!
//! Writing queues: [`Stream::write`] tries the fd at once and queues what did
//! not fit; queued data goes out as the fd becomes writable. The completion
//! callback of [`Stream::write_with`] runs in order, on a later pass, once
//! all its bytes were accepted by the OS. `write` returns `Ok(false)` once the
//! queue is above the high water mark (Node's `write()` return value); the
//! drain callback says when it fell to the low one (asyncio's
//! `pause_writing` / `resume_writing`).
//!
//! [`Stream::close`] releases the fd at once and fails the writes still
//! queued with `ECANCELED`; their callbacks, then the close callback, run on a
//! later pass, in that order. Closing again is a no-op that returns `false`.
//! [`Stream::shutdown`] is the graceful half-close: it waits until the queue
//! is flushed.
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
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::panic;
use std::rc::Rc;

use crate::net::callback::{sync_interest, Lendable};
use crate::net::ReadBuffer;
use crate::panic::catch;
use crate::{sys, EventLoop, Interest, Readiness, WatchId};

/// The kinds of stream, as type markers for [`Stream<K>`].
pub mod kind {
    /// A TCP connection: [`TcpStream`](crate::net::TcpStream).
    #[derive(Debug)]
    pub enum Tcp {}
    /// A Unix domain stream socket: [`UnixStream`](crate::net::UnixStream).
    #[derive(Debug)]
    pub enum Unix {}
    /// A pipe end, a terminal, a FIFO or a child's stdio:
    /// [`Pipe`](crate::net::Pipe).
    #[derive(Debug)]
    pub enum Pipe {}
}

/// A TCP connection on the loop (see [`Stream`] for the calls every stream
/// has, and `net::tcp` for the TCP ones).
pub type TcpStream = Stream<kind::Tcp>;
/// A Unix domain stream socket on the loop.
pub type UnixStream = Stream<kind::Unix>;
/// A pipe end, terminal, FIFO or child stdio on the loop.
pub type Pipe = Stream<kind::Pipe>;

type ReadCallback<K> = Box<dyn FnMut(&mut EventLoop, &Stream<K>, io::Result<&[u8]>)>;
type ReadIntoCallback<K> =
    Box<dyn FnMut(&mut EventLoop, &Stream<K>, &mut Vec<u8>, io::Result<usize>)>;
type DoneCallback = Box<dyn FnOnce(&mut EventLoop, io::Result<()>)>;
type DrainCallback<K> = Box<dyn FnMut(&mut EventLoop, &Stream<K>)>;
type CloseCallback = Box<dyn FnOnce(&mut EventLoop)>;

/// Default high water mark of the write queue (asyncio's default).
pub const DEFAULT_HIGH_WATER: usize = 64 * 1024;
/// Reads per readiness event at most, so one busy stream cannot hog a pass.
const READS_PER_EVENT: usize = 16;
/// A buffer given to `read_start_into` grows by this much when nearly full.
const INTO_CHUNK: usize = 64 * 1024;
const INTO_MIN_SPARE: usize = 4 * 1024;

/// The fd, shared by the stream's state and its watcher: it closes only when
/// both let go, and the watcher lets go only after leaving the poller.
#[derive(Clone)]
struct StreamFd(Rc<File>);

impl AsFd for StreamFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// Where the stream's fd stands.
enum FdState {
    Open(StreamFd),
    /// A write-only pipe end after `shutdown`: closed, though the stream
    /// was not.
    Released,
    Closed,
}

/// What the read callback is, and what it reads into.
enum OnRead<K: 'static> {
    Chunks(ReadCallback<K>),
    Into(Vec<u8>, ReadIntoCallback<K>),
}

/// Where reading stands. The callback itself is in `Inner::on_read`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ReadState {
    Off,
    Active,
    /// Stopped by `pause_reading`, callback kept.
    Paused,
    /// EOF or an error was delivered; reading ended by itself.
    Ended,
}

/// Where the writing side stands.
enum WriteEnd {
    Open,
    /// `shutdown` was called; it happens once the queue is empty.
    ShuttingDown(Option<DoneCallback>),
    /// Shut down, or failed: writes are refused with `EPIPE`.
    Ended,
}

struct PendingWrite {
    data: Vec<u8>,
    written: usize,
    done: Option<DoneCallback>,
    /// Fds to pass with the first byte of `data` (Unix sockets only).
    fds: Option<Box<[OwnedFd]>>,
}

/// Received fds kept for `take_fds` at most; more are closed (a peer cannot
/// make us hold fds up to the limit).
const MAX_PENDING_FDS: usize = 1024;

/// Most queued writes gathered into one `writev`/`sendmsg`.
const WRITES_PER_CALL: usize = 64;

/// The write queue and its water marks.
struct Writes<K: 'static> {
    queue: VecDeque<PendingWrite>,
    /// Writes that went out (or failed), waiting for their callbacks.
    completed: VecDeque<(DoneCallback, io::Result<()>)>,
    /// A `finish_writes` is queued with `call_soon` for `completed`.
    finish_queued: bool,
    queued: usize,
    high_water: usize,
    low_water: usize,
    /// Went above the high water mark since the last drain callback.
    above_high: bool,
    on_drain: Option<DrainCallback<K>>,
    end: WriteEnd,
}

struct Inner<K: 'static> {
    fd: FdState,
    is_socket: bool,
    /// Receiving fds was turned on (a Unix socket only): reads use `recvmsg`
    /// and collect passed fds. Off, the kernel closes fds sent to us.
    passes_fds: bool,
    /// Fds received and not taken yet (see `UnixStream::take_fds`).
    received_fds: VecDeque<OwnedFd>,
    /// Made on first need; `None` again once the fd is released.
    watch: Option<WatchId>,
    interest: Interest,
    keeps_alive: bool,
    read: ReadState,
    on_read: Lendable<OnRead<K>>,
    writes: Writes<K>,
}

/// A byte stream on the loop; use it as [`TcpStream`], [`UnixStream`] or
/// [`Pipe`]. Clones are handles to the same stream.
///
/// A stream stays open until [`close`](Stream::close): dropping every handle
/// does not close it (as with libuv handles). It keeps the loop alive while
/// it is reading or has writes queued.
pub struct Stream<K: 'static> {
    inner: Rc<RefCell<Inner<K>>>,
    kind: PhantomData<K>,
}

impl<K> Clone for Stream<K> {
    fn clone(&self) -> Self {
        Stream {
            inner: self.inner.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> fmt::Debug for Stream<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = self.inner.borrow();
        let fd = match &i.fd {
            FdState::Open(fd) => Some(fd.0.as_raw_fd()),
            _ => None,
        };
        let kind = std::any::type_name::<K>()
            .rsplit("::")
            .next()
            .unwrap_or("?");
        f.debug_struct(&format!("Stream<{kind}>"))
            .field("fd", &fd)
            .field("read", &i.read)
            .field("queued", &i.writes.queued)
            .field("closed", &matches!(i.fd, FdState::Closed))
            .finish()
    }
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

impl<K> Stream<K> {
    /// Makes a stream of a stream-like fd, made non-blocking. `is_socket`
    /// picks `send`/`shutdown` over `write`/close for the writing side.
    pub(crate) fn from_owned(fd: OwnedFd, is_socket: bool) -> io::Result<Stream<K>> {
        let file = File::from(fd);
        socket2::SockRef::from(&file).set_nonblocking(true)?;
        if !is_socket {
            sys::ignore_sigpipe();
        }
        let inner = Inner {
            fd: FdState::Open(StreamFd(Rc::new(file))),
            is_socket,
            passes_fds: false,
            received_fds: VecDeque::new(),
            watch: None,
            interest: Interest::NONE,
            keeps_alive: true,
            read: ReadState::Off,
            on_read: Lendable::default(),
            writes: Writes {
                queue: VecDeque::new(),
                completed: VecDeque::new(),
                finish_queued: false,
                queued: 0,
                high_water: DEFAULT_HIGH_WATER,
                low_water: DEFAULT_HIGH_WATER / 4,
                above_high: false,
                on_drain: None,
                end: WriteEnd::Open,
            },
        };
        Ok(Stream {
            inner: Rc::new(RefCell::new(inner)),
            kind: PhantomData,
        })
    }

    /// Runs `f` with the open fd; `NotConnected` once closed.
    pub(crate) fn with_fd<T>(&self, f: impl FnOnce(&File) -> io::Result<T>) -> io::Result<T> {
        match &self.inner.borrow().fd {
            FdState::Open(fd) => f(&fd.0),
            _ => Err(closed_error()),
        }
    }

    /// Starts reading: `on_read` gets each chunk as `Ok(data)`, then `Ok(&[])`
    /// once at EOF, or `Err` on an error; reading ends by itself after EOF or
    /// an error. Replaces a previous read callback.
    ///
    /// # Errors
    /// `NotConnected` if the stream is closed; an OS error if the fd cannot
    /// be watched (a regular file: `EPERM`). `on_read` then never runs.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use evloop::{net::unix, EventLoop};
    /// let mut ev = EventLoop::new()?;
    /// let (r, w) = unix::pipe()?;
    /// r.read_start(&mut ev, |ev, r, data| match data {
    ///     Ok([]) => { r.close(ev); } // EOF
    ///     Ok(bytes) => println!("{bytes:?}"),
    ///     Err(e) => { eprintln!("{e}"); r.close(ev); }
    /// })?;
    /// w.write(&mut ev, b"hi")?;
    /// w.shutdown(&mut ev)?; // once flushed, closes the write end: EOF
    /// ev.run()
    /// # }
    /// ```
    pub fn read_start(
        &self,
        ev: &mut EventLoop,
        on_read: impl FnMut(&mut EventLoop, &Stream<K>, io::Result<&[u8]>) + 'static,
    ) -> io::Result<()> {
        self.start_reading(ev, OnRead::Chunks(Box::new(on_read)))
    }

    /// Starts reading into `buf`, a buffer of the caller's: each read appends
    /// to it, then `on_read` gets the buffer and how many bytes were just
    /// added (`Ok(0)` once at EOF), or `Err`. The callback takes what it can
    /// use from the front (`buf.drain(..n)`) and leaves the rest, so a
    /// parser's leftovers never leave its buffer. The buffer grows by 64 KiB
    /// when it has less than 4 KiB free. Otherwise as [`read_start`].
    ///
    /// [`read_start`]: Stream::read_start
    pub fn read_start_into(
        &self,
        ev: &mut EventLoop,
        buf: Vec<u8>,
        on_read: impl FnMut(&mut EventLoop, &Stream<K>, &mut Vec<u8>, io::Result<usize>) + 'static,
    ) -> io::Result<()> {
        self.start_reading(ev, OnRead::Into(buf, Box::new(on_read)))
    }

    fn start_reading(&self, ev: &mut EventLoop, on_read: OnRead<K>) -> io::Result<()> {
        let old = {
            let mut i = self.inner.borrow_mut();
            if matches!(i.fd, FdState::Closed) {
                return Err(closed_error());
            }
            i.read = ReadState::Active;
            i.on_read.set(on_read)
        };
        drop(old); // outside the borrow: its destructor may use the stream
        let result = self.update_interest(ev);
        if result.is_err() {
            let failed = {
                let mut i = self.inner.borrow_mut();
                i.read = ReadState::Off;
                i.on_read.clear()
            };
            drop(failed);
        }
        result
    }

    /// Stops reading and drops the read callback; no read callback runs after
    /// this returns.
    pub fn read_stop(&self, ev: &mut EventLoop) -> io::Result<()> {
        let dropped = {
            let mut i = self.inner.borrow_mut();
            if i.read != ReadState::Ended {
                i.read = ReadState::Off;
            }
            i.on_read.clear()
        };
        drop(dropped);
        self.update_interest(ev)
    }

    /// Pauses reading and keeps the read callback, for backpressure: no read
    /// callback runs until [`resume_reading`](Stream::resume_reading). A
    /// no-op if not reading.
    pub fn pause_reading(&self, ev: &mut EventLoop) -> io::Result<()> {
        {
            let mut i = self.inner.borrow_mut();
            if matches!(i.fd, FdState::Closed) {
                return Err(closed_error());
            }
            if i.read == ReadState::Active {
                i.read = ReadState::Paused;
            }
        }
        self.update_interest(ev)
    }

    /// Resumes reading after [`pause_reading`](Stream::pause_reading), with
    /// the same callback. A no-op if not paused.
    pub fn resume_reading(&self, ev: &mut EventLoop) -> io::Result<()> {
        {
            let mut i = self.inner.borrow_mut();
            if matches!(i.fd, FdState::Closed) {
                return Err(closed_error());
            }
            if i.read == ReadState::Paused {
                i.read = ReadState::Active;
            }
        }
        self.update_interest(ev)
    }

    /// True while reading is on (started, not paused, not ended).
    pub fn is_reading(&self) -> bool {
        self.inner.borrow().read == ReadState::Active
    }

    /// Queues `data` for writing, with no completion callback (see
    /// [`write_with`](Stream::write_with)).
    ///
    /// Returns `Ok(false)` when the queue is above the high water mark: stop
    /// writing until the drain callback runs.
    ///
    /// # Errors
    /// `NotConnected` if the stream is closed, `EPIPE` after `shutdown` or a
    /// failed write.
    pub fn write(&self, ev: &mut EventLoop, data: impl AsRef<[u8]>) -> io::Result<bool> {
        self.write_inner(ev, data.as_ref(), Vec::new(), None)
    }

    /// Queues `data`; `done` runs on a later pass once the OS took all of it,
    /// or with the error (`EPIPE` for a peer that is gone, `ECANCELED` if the
    /// stream was closed first). Writes complete in order.
    ///
    /// Returns `Ok(false)` when the queue is above the high water mark: stop
    /// writing until the drain callback runs.
    ///
    /// `data` is copied only if the OS does not take all of it at once, so a
    /// small write from a borrowed buffer allocates nothing.
    ///
    /// # Errors
    /// As [`write`](Stream::write); `done` then never runs.
    pub fn write_with(
        &self,
        ev: &mut EventLoop,
        data: impl AsRef<[u8]>,
        done: impl FnOnce(&mut EventLoop, io::Result<()>) + 'static,
    ) -> io::Result<bool> {
        self.write_inner(ev, data.as_ref(), Vec::new(), Some(Box::new(done)))
    }

    pub(crate) fn write_inner(
        &self,
        ev: &mut EventLoop,
        data: &[u8],
        fds: Vec<OwnedFd>,
        done: Option<DoneCallback>,
    ) -> io::Result<bool> {
        let mut i = self.inner.borrow_mut();
        let fd = match &i.fd {
            FdState::Open(fd) => fd.clone(),
            FdState::Released => return Err(io::Error::from_raw_os_error(libc::EPIPE)),
            FdState::Closed => return Err(closed_error()),
        };
        if !matches!(i.writes.end, WriteEnd::Open) {
            return Err(io::Error::from_raw_os_error(libc::EPIPE));
        }
        let mut written = 0;
        if i.writes.queue.is_empty() {
            // Nothing queued: try the fd now, saving a trip through the poller.
            let sent = if fds.is_empty() {
                send(&fd, i.is_socket, data)
            } else {
                let raw: Vec<_> = fds.iter().map(AsRawFd::as_raw_fd).collect();
                sys::send_vectored(&*fd.0, true, &[io::IoSlice::new(data)], &raw)
            };
            let finished = match sent {
                Ok(n) if n == data.len() => Some(Ok(())),
                Ok(n) => {
                    written = n;
                    None
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
                Err(e) => Some(Err(e)),
            };
            if let Some(result) = finished {
                // Through the completion queue, so callbacks stay in order
                // with writes that finish in this pass's IO phase.
                if let Some(done) = done {
                    i.writes.completed.push_back((done, result));
                    drop(i);
                    self.schedule_finish(ev);
                }
                return Ok(true);
            }
        }
        // Sent with byte 0 if any byte went out.
        let fds = (written == 0 && !fds.is_empty()).then(|| fds.into_boxed_slice());
        let w = &mut i.writes;
        w.queued += data.len() - written;
        w.queue.push_back(PendingWrite {
            data: data[written..].to_vec(),
            written: 0,
            done,
            fds,
        });
        if w.queued > w.high_water {
            w.above_high = true;
        }
        let below = w.queued <= w.high_water;
        drop(i);
        if let Err(e) = self.update_interest(ev) {
            // Cannot wait for writability: take the write back, uncalled.
            let mut i = self.inner.borrow_mut();
            if let Some(w) = i.writes.queue.pop_back() {
                i.writes.queued -= w.data.len();
            }
            return Err(e);
        }
        Ok(below)
    }

    /// Writes what the fd takes now, without queueing anything (libuv's
    /// `uv_try_write`): the number of bytes written, possibly fewer than
    /// `data.len()`.
    ///
    /// # Errors
    /// `WouldBlock` if nothing could be written now, or if writes are
    /// queued already (writing around them would reorder the bytes);
    /// `NotConnected` if closed; `EPIPE` after `shutdown`; the OS error of
    /// the write otherwise.
    pub fn try_write(&self, data: impl AsRef<[u8]>) -> io::Result<usize> {
        let i = self.inner.borrow();
        let fd = match &i.fd {
            FdState::Open(fd) => fd,
            FdState::Released => return Err(io::Error::from_raw_os_error(libc::EPIPE)),
            FdState::Closed => return Err(closed_error()),
        };
        if !matches!(i.writes.end, WriteEnd::Open) {
            return Err(io::Error::from_raw_os_error(libc::EPIPE));
        }
        if !i.writes.queue.is_empty() {
            return Err(io::Error::from(io::ErrorKind::WouldBlock));
        }
        loop {
            match send(fd, i.is_socket, data.as_ref()) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    /// Queues a `finish_writes` for the completions waiting in `completed`,
    /// unless one is queued already.
    fn schedule_finish(&self, ev: &mut EventLoop) {
        let mut i = self.inner.borrow_mut();
        if !i.writes.finish_queued {
            i.writes.finish_queued = true;
            drop(i);
            let me = self.clone();
            ev.call_soon(move |ev| {
                me.inner.borrow_mut().writes.finish_queued = false;
                me.finish_writes(ev);
            });
        }
    }

    /// Turns receiving passed fds on or off (see `UnixStream::receive_fds`).
    pub(crate) fn set_passes_fds(&self, on: bool) {
        self.inner.borrow_mut().passes_fds = on;
    }

    /// Takes the fds received so far (see `UnixStream::take_fds`).
    pub(crate) fn take_received_fds(&self) -> Vec<OwnedFd> {
        self.inner.borrow_mut().received_fds.drain(..).collect()
    }

    /// Number of fds received and not taken.
    pub(crate) fn received_fd_count(&self) -> usize {
        self.inner.borrow().received_fds.len()
    }

    /// Bytes queued and not yet taken by the OS.
    pub fn write_queue_size(&self) -> usize {
        self.inner.borrow().writes.queued
    }

    /// Sets the water marks (`low <= high`). `write` returns false above
    /// `high`; the drain callback runs when the queue falls to `low` after it
    /// was above `high`.
    ///
    /// # Errors
    /// `InvalidInput` if `low > high`.
    pub fn set_write_water_marks(&self, high: usize, low: usize) -> io::Result<()> {
        if low > high {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("evloop: low water mark {low} above high {high}"),
            ));
        }
        let mut i = self.inner.borrow_mut();
        i.writes.high_water = high;
        i.writes.low_water = low;
        Ok(())
    }

    /// Sets the callback for "the write queue drained to the low water mark".
    pub fn on_drain(&self, f: impl FnMut(&mut EventLoop, &Stream<K>) + 'static) {
        let old = self.inner.borrow_mut().writes.on_drain.replace(Box::new(f));
        drop(old); // outside the borrow: its destructor may use the stream
    }

    /// Half-closes once every queued write went out, with no callback (see
    /// [`shutdown_with`](Stream::shutdown_with)).
    pub fn shutdown(&self, ev: &mut EventLoop) -> io::Result<()> {
        self.shutdown_inner(ev, None)
    }

    /// Half-closes: once every queued write went out, ends the writing side
    /// and calls `done`. Later writes fail with `EPIPE`; reading goes on.
    ///
    /// A socket gets `shutdown(SHUT_WR)`. Other fds cannot be half-closed: a
    /// write-only one (a pipe's write end) is closed, so its reader sees EOF;
    /// one open for reading too (a terminal, a FIFO opened read-write) stays
    /// open for reading until [`close`](Stream::close).
    ///
    /// # Errors
    /// `NotConnected` if closed, `EPIPE` if already shut down; `done` then
    /// never runs.
    pub fn shutdown_with(
        &self,
        ev: &mut EventLoop,
        done: impl FnOnce(&mut EventLoop, io::Result<()>) + 'static,
    ) -> io::Result<()> {
        self.shutdown_inner(ev, Some(Box::new(done)))
    }

    fn shutdown_inner(&self, ev: &mut EventLoop, done: Option<DoneCallback>) -> io::Result<()> {
        let flushed = {
            let mut i = self.inner.borrow_mut();
            match (&i.fd, &i.writes.end) {
                (FdState::Closed, _) => return Err(closed_error()),
                (FdState::Released, _) | (_, WriteEnd::ShuttingDown(_) | WriteEnd::Ended) => {
                    return Err(io::Error::from_raw_os_error(libc::EPIPE))
                }
                _ => {}
            }
            i.writes.end = WriteEnd::ShuttingDown(done);
            i.writes.queue.is_empty()
        };
        if flushed {
            self.end_writing(ev, true);
        }
        self.update_interest(ev)
    }

    /// Closes the stream now, with no callback (see
    /// [`close_with`](Stream::close_with)). Returns false, doing nothing, if
    /// it was already closed.
    pub fn close(&self, ev: &mut EventLoop) -> bool {
        self.close_inner(ev, None)
    }

    /// Closes the stream now: stops reading, releases the fd, and fails the
    /// queued writes (and a pending shutdown) with `ECANCELED`. Their
    /// callbacks run on a later pass in order, then `done`. Returns false,
    /// doing nothing (`done` never runs), if it was already closed.
    pub fn close_with(
        &self,
        ev: &mut EventLoop,
        done: impl FnOnce(&mut EventLoop) + 'static,
    ) -> bool {
        self.close_inner(ev, Some(Box::new(done)))
    }

    fn close_inner(&self, ev: &mut EventLoop, done: Option<CloseCallback>) -> bool {
        let (queue, shutdown, on_read, on_drain, watch) = {
            let mut i = self.inner.borrow_mut();
            if matches!(i.fd, FdState::Closed) {
                return false;
            }
            i.fd = FdState::Closed;
            i.read = ReadState::Off;
            i.received_fds.clear();
            i.interest = Interest::NONE;
            i.writes.queued = 0;
            let shutdown = match std::mem::replace(&mut i.writes.end, WriteEnd::Ended) {
                WriteEnd::ShuttingDown(done) => done,
                _ => None,
            };
            (
                std::mem::take(&mut i.writes.queue),
                shutdown,
                i.on_read.clear(),
                i.writes.on_drain.take(),
                i.watch.take(),
            )
        };
        if let Some(w) = watch {
            ev.unwatch(w); // the fd closes once the watcher let go of it
        }
        drop((on_read, on_drain));
        for w in queue {
            if let Some(done) = w.done {
                ev.call_soon(move |ev| done(ev, Err(cancelled())));
            }
        }
        if let Some(s) = shutdown {
            ev.call_soon(move |ev| s(ev, Err(cancelled())));
        }
        if let Some(done) = done {
            ev.call_soon(done);
        }
        true
    }

    /// True once `close` was called.
    pub fn is_closed(&self) -> bool {
        matches!(self.inner.borrow().fd, FdState::Closed)
    }

    /// Sets whether the stream keeps the loop alive while reading or writing
    /// (it does by default).
    ///
    /// # Errors
    /// `NotConnected` if closed.
    pub fn set_ref(&self, ev: &mut EventLoop, keep_alive: bool) -> io::Result<()> {
        let watch = {
            let mut i = self.inner.borrow_mut();
            if matches!(i.fd, FdState::Closed) {
                return Err(closed_error());
            }
            i.keeps_alive = keep_alive;
            i.watch
        };
        if let Some(w) = watch {
            ev.set_watch_ref(w, keep_alive)?;
        }
        Ok(())
    }

    /// Makes, updates or (once the fd is gone) leaves alone the watcher, so
    /// that it waits for what the stream needs now.
    fn update_interest(&self, ev: &mut EventLoop) -> io::Result<()> {
        let (fd, want, keeps_alive) = {
            let mut i = self.inner.borrow_mut();
            let FdState::Open(fd) = &i.fd else {
                return Ok(());
            };
            let want = Interest {
                readable: i.read == ReadState::Active,
                writable: !i.writes.queue.is_empty(),
            };
            if let Some(watch) = i.watch {
                let i = &mut *i;
                return sync_interest(ev, watch, &mut i.interest, want);
            }
            if want == Interest::NONE {
                return Ok(());
            }
            (fd.clone(), want, i.keeps_alive)
        };
        let me = self.clone();
        let watch = ev.watch(fd, want, move |ev, _, r| me.on_ready(ev, r))?;
        ev.label_watch(watch, "stream", crate::diag::here())?;
        if !keeps_alive {
            ev.set_watch_ref(watch, false)?;
        }
        let mut i = self.inner.borrow_mut();
        i.watch = Some(watch);
        i.interest = want;
        Ok(())
    }

    fn on_ready(&self, ev: &mut EventLoop, r: Readiness) {
        let has_writes = !self.inner.borrow().writes.queue.is_empty();
        if r.writable || ((r.error || r.hangup) && has_writes) {
            self.flush(ev);
        }
        if r.readable {
            self.read_some(ev);
        }
        if let Err(e) = self.update_interest(ev) {
            log::warn!("evloop: updating a stream's watcher: {e}");
        }
    }

    fn read_some(&self, ev: &mut EventLoop) {
        let mut buf = ReadBuffer::lend(ev);
        let result = catch(|| self.read_batch(ev, &mut buf));
        ReadBuffer::give_back(ev, buf);
        if let Err(p) = result {
            panic::resume_unwind(p);
        }
    }

    /// Reads and calls back until the fd is drained (or a batch was read).
    /// The callback is given back even if it panics, unless it stopped or
    /// replaced reading, or this was the last call (EOF, error).
    fn read_batch(&self, ev: &mut EventLoop, loop_buf: &mut [u8]) {
        for _ in 0..READS_PER_EVENT {
            let (fd, passes_fds, mut lent) = {
                let mut i = self.inner.borrow_mut();
                let FdState::Open(fd) = &i.fd else { return };
                let fd = fd.clone();
                if i.read != ReadState::Active {
                    return;
                }
                let Some(lent) = i.on_read.lend() else { return };
                (fd, i.passes_fds, lent)
            };
            let mut fds = Vec::new();
            let (result, offered) = match &mut lent.f {
                OnRead::Chunks(_) if passes_fds => (
                    sys::recv_with_fds(&*fd.0, loop_buf, &mut fds),
                    loop_buf.len(),
                ),
                OnRead::Chunks(_) => ((&*fd.0).read(loop_buf), loop_buf.len()),
                OnRead::Into(buf, _) => {
                    if buf.capacity() - buf.len() < INTO_MIN_SPARE {
                        buf.reserve(INTO_CHUNK);
                    }
                    let spare = buf.capacity() - buf.len();
                    let result = if passes_fds {
                        sys::recv_to_spare_with_fds(&*fd.0, buf, spare, &mut fds)
                    } else {
                        sys::read_to_spare(&*fd.0, buf, spare)
                    };
                    (result, spare)
                }
            };
            if !fds.is_empty() {
                let mut i = self.inner.borrow_mut();
                let room = MAX_PENDING_FDS.saturating_sub(i.received_fds.len());
                if fds.len() > room {
                    log::warn!(
                        "evloop: {} fds received over a Unix socket closed: {MAX_PENDING_FDS} are waiting for take_fds already",
                        fds.len() - room
                    );
                }
                i.received_fds.extend(fds.into_iter().take(room));
            }
            match &result {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.inner.borrow_mut().on_read.give_back(lent);
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    self.inner.borrow_mut().on_read.give_back(lent);
                    continue;
                }
                _ => {}
            }
            let last = !matches!(result, Ok(n) if n > 0);
            if last {
                // EOF or error: reading ends by itself, after this call.
                let mut i = self.inner.borrow_mut();
                i.read = ReadState::Ended;
                i.on_read.clear();
            }
            // A short read drained the fd: no need for a read that says EAGAIN.
            let more = matches!(result, Ok(n) if n == offered);
            let called = catch(|| match &mut lent.f {
                OnRead::Chunks(cb) => match result {
                    Ok(n) => cb(ev, self, Ok(&loop_buf[..n])),
                    Err(e) => cb(ev, self, Err(e)),
                },
                OnRead::Into(buf, cb) => cb(ev, self, buf, result),
            });
            self.inner.borrow_mut().on_read.give_back(lent);
            if let Err(p) = called {
                panic::resume_unwind(p);
            }
            if !more {
                return;
            }
        }
    }

    /// Writes out what the fd takes, then runs the callbacks that are due.
    fn flush(&self, ev: &mut EventLoop) {
        let failed = {
            let mut i = self.inner.borrow_mut();
            let i = &mut *i;
            let FdState::Open(fd) = &i.fd else { return };
            let w = &mut i.writes;
            let mut failed = false;
            while !w.queue.is_empty() {
                match send_queued(fd, i.is_socket, &w.queue) {
                    Ok(n) => {
                        w.queued -= n;
                        let mut left = n;
                        while let Some(front) = w.queue.front_mut() {
                            let take = left.min(front.data.len() - front.written);
                            front.written += take;
                            left -= take;
                            if take > 0 {
                                front.fds = None; // sent with its first byte
                            }
                            if front.written < front.data.len() {
                                break;
                            }
                            let done = w.queue.pop_front().expect("front exists").done;
                            if let Some(done) = done {
                                w.completed.push_back((done, Ok(())));
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        // The stream cannot take more: fail everything queued.
                        for pending in std::mem::take(&mut w.queue) {
                            if let Some(done) = pending.done {
                                w.completed.push_back((done, Err(copy_error(&e))));
                            }
                        }
                        w.queued = 0;
                        failed = true;
                        break;
                    }
                }
            }
            failed
        };
        if failed {
            // A pending shutdown fails too; the writing side is over.
            let mut i = self.inner.borrow_mut();
            if let WriteEnd::ShuttingDown(Some(done)) =
                std::mem::replace(&mut i.writes.end, WriteEnd::Ended)
            {
                i.writes
                    .completed
                    .push_back((done, Err(io::Error::from_raw_os_error(libc::EPIPE))));
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
        // Only the completions waiting now: one that a callback adds (by
        // writing again) runs on a later pass, through `schedule_finish`, so
        // a chain of writes from write callbacks cannot starve the loop.
        let mut left = self.inner.borrow().writes.completed.len();
        while left > 0 {
            left -= 1;
            let next = self.inner.borrow_mut().writes.completed.pop_front();
            let Some((done, result)) = next else { break };
            done(ev, result);
        }
        let drain = {
            let mut i = self.inner.borrow_mut();
            let w = &mut i.writes;
            if w.above_high && w.queued <= w.low_water {
                w.above_high = false;
                w.on_drain.take()
            } else {
                None
            }
        };
        if let Some(mut cb) = drain {
            let called = catch(|| cb(ev, self));
            let mut i = self.inner.borrow_mut();
            if i.writes.on_drain.is_none() && !matches!(i.fd, FdState::Closed) {
                i.writes.on_drain = Some(cb);
            }
            drop(i);
            if let Err(p) = called {
                panic::resume_unwind(p);
            }
        }
        let shutting_down = {
            // Completions added by the callbacks above run first (later).
            let i = self.inner.borrow();
            i.writes.queue.is_empty()
                && i.writes.completed.is_empty()
                && matches!(i.writes.end, WriteEnd::ShuttingDown(_))
        };
        if shutting_down {
            self.end_writing(ev, false);
        }
    }

    /// The queue is empty and a shutdown is pending: end the writing side
    /// now and call its callback (on a later pass if `from_call`, since it
    /// runs inside `shutdown` then).
    fn end_writing(&self, ev: &mut EventLoop, from_call: bool) {
        let (done, result, release) = {
            let mut i = self.inner.borrow_mut();
            let WriteEnd::ShuttingDown(done) =
                std::mem::replace(&mut i.writes.end, WriteEnd::Ended)
            else {
                return;
            };
            let (result, release) = match &i.fd {
                FdState::Open(fd) if i.is_socket => (
                    socket2::SockRef::from(&*fd.0).shutdown(std::net::Shutdown::Write),
                    false,
                ),
                // A write-only fd ends by closing; a read-write one cannot be
                // half-closed and stays open for reading.
                FdState::Open(fd) => (Ok(()), sys::is_write_only(&*fd.0)),
                _ => (Err(closed_error()), false),
            };
            (done, result, release)
        };
        if release {
            let watch = {
                let mut i = self.inner.borrow_mut();
                i.fd = FdState::Released;
                i.interest = Interest::NONE;
                i.watch.take()
            };
            if let Some(w) = watch {
                ev.unwatch(w);
            }
        }
        if let Some(done) = done {
            if from_call {
                ev.call_soon(move |ev| done(ev, result));
            } else {
                done(ev, result);
            }
        }
    }
}

/// Writes the front of the queue with one call: up to [`WRITES_PER_CALL`]
/// buffers gathered (libuv does the same), stopping before a write that
/// passes fds so that they travel with its first byte.
fn send_queued(
    fd: &StreamFd,
    is_socket: bool,
    queue: &VecDeque<PendingWrite>,
) -> io::Result<usize> {
    let front = queue.front().expect("a write is queued");
    if queue.len() == 1 && front.fds.is_none() {
        return send(fd, is_socket, &front.data[front.written..]);
    }
    let mut bufs = [io::IoSlice::new(&[]); WRITES_PER_CALL];
    bufs[0] = io::IoSlice::new(&front.data[front.written..]);
    let mut count = 1;
    for w in queue.iter().skip(1).take(WRITES_PER_CALL - 1) {
        if w.fds.is_some() {
            break;
        }
        bufs[count] = io::IoSlice::new(&w.data);
        count += 1;
    }
    let fds: Vec<_> = front
        .fds
        .iter()
        .flat_map(|f| f.iter())
        .map(AsRawFd::as_raw_fd)
        .collect();
    sys::send_vectored(&*fd.0, is_socket, &bufs[..count], &fds)
}

/// One write to the fd: `send` with `MSG_NOSIGNAL` for a socket.
fn send(fd: &StreamFd, is_socket: bool, data: &[u8]) -> io::Result<usize> {
    if is_socket {
        sys::send_nosignal(&*fd.0, data)
    } else {
        (&*fd.0).write(data)
    }
}
