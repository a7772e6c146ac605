//! fd readiness watchers on `polling::Poller`.
//!
//! A watcher owns its source (anything [`AsFd`]): the loop deletes the fd from
//! the poller before the source can be dropped, so `polling`'s unsafe contract
//! ("delete before close") holds by construction. [`EventLoop::watch_raw_fd`]
//! is the one exception, for fds the caller owns (the C API).
//!
//! Watchers are registered in `polling`'s level-triggered mode: an fd that
//! stays ready is reported on every pass with no extra syscalls. Oneshot mode
//! (polling's default) would cost an `epoll_ctl` re-arm per event, and edge
//! mode would need user-visible bookkeeping to look level-triggered.
//!
//! Two rules keep a dead fd from spinning the loop: a watcher with no interest
//! is removed from the poller (epoll reports hang-ups even with an empty
//! interest set), and a hang-up or error with no bytes left to read is
//! delivered once; if the callback left the watcher as it was and the fd
//! still reports the hang-up or error afterwards, the watcher is *parked*: no
//! longer polled, no longer keeping the loop alive, until
//! [`EventLoop::set_interest`] re-arms it or it is removed. The check comes
//! after the callback because some errors are transient: a UDP socket's
//! callback drains its error queue, and the socket then goes on receiving.
//!
//! An fd can be watched once per loop, whatever the interest: a second watch
//! fails with `AlreadyExists` at once, even while the first has no interest
//! and so is not in the poller.
//!
//! Each poller key holds the watcher's slot and the low bits of a serial
//! number, so an event collected for a watcher that was removed earlier in the
//! same pass is recognised as stale and not delivered, even if a new watcher
//! took the slot.
//!
//! [`Watchers`] owns the table and all its bookkeeping (registration, counts,
//! parking); the `EventLoop` methods below only delegate to it, and run the
//! callbacks, which need the loop.

use std::any::Any;
use std::collections::HashSet;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use polling::{Event, Events, PollMode, Poller};
use slab::Slab;

use crate::diag::{CallbackKind, Site};
use crate::id::Key;
use crate::panic::catch;
use crate::{sys, EventLoop};

/// Which readiness a watcher wants to hear about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Interest {
    /// Call back when the fd is readable (or at EOF, hang-up, error).
    pub readable: bool,
    /// Call back when the fd is writable.
    pub writable: bool,
}

impl Interest {
    /// No readiness: the watcher stays, but is not polled.
    pub const NONE: Interest = Interest {
        readable: false,
        writable: false,
    };
    /// Readable only.
    pub const READABLE: Interest = Interest {
        readable: true,
        writable: false,
    };
    /// Writable only.
    pub const WRITABLE: Interest = Interest {
        readable: false,
        writable: true,
    };
    /// Readable and writable.
    pub const BOTH: Interest = Interest {
        readable: true,
        writable: true,
    };

    fn is_none(self) -> bool {
        !self.readable && !self.writable
    }
}

/// What a watcher's fd is ready for, as passed to its callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Readiness {
    /// A read will not block (data, EOF or an error is waiting).
    pub readable: bool,
    /// A write will not block.
    pub writable: bool,
    /// The peer hung up (pipe writer gone, socket closed both ways).
    pub hangup: bool,
    /// An error is pending on the fd (read it with `SO_ERROR` or a read/write).
    pub error: bool,
}

crate::id::id_type! {
    /// Identifies a watcher; never reused for the loop's lifetime.
    WatchId
}

impl WatchId {
    fn poller_key(self) -> usize {
        // 31 serial bits: the key can never be polling's reserved usize::MAX.
        (self.0.slot as usize) | (((self.0.serial & 0x7fff_ffff) as usize) << 32)
    }
}

/// A watcher's source and callback, behind one box.
trait Body {
    fn fire(&mut self, ev: &mut EventLoop, r: Readiness);
    fn source(&self) -> &dyn Any;
    fn into_source(self: Box<Self>) -> Box<dyn Any>;
}

struct Owned<S, F> {
    source: S,
    callback: F,
}

impl<S: 'static, F: FnMut(&mut EventLoop, &mut S, Readiness) + 'static> Body for Owned<S, F> {
    fn fire(&mut self, ev: &mut EventLoop, r: Readiness) {
        (self.callback)(ev, &mut self.source, r)
    }
    fn source(&self) -> &dyn Any {
        &self.source
    }
    fn into_source(self: Box<Self>) -> Box<dyn Any> {
        Box::new(self.source)
    }
}

struct Entry {
    serial: u64,
    fd: RawFd,
    interest: Interest,
    keeps_alive: bool,
    /// In the poller right now (false while parked or with no interest).
    registered: bool,
    parked: bool,
    /// Bumped by every change the user makes; tells "left as it was" apart.
    changes: u32,
    /// `None` while its callback runs.
    body: Option<Box<dyn Body>>,
    /// Where it was created, and what it serves (for the alive report).
    site: Site,
    label: &'static str,
}

impl Entry {
    fn keeps_alive(&self) -> bool {
        self.keeps_alive && self.registered
    }
}

/// A watcher whose callback is about to run: its body, taken out of the
/// table, and what is needed to put it back.
struct Dispatch {
    id: WatchId,
    body: Box<dyn Body>,
    readiness: Readiness,
    changes: u32,
    /// A hang-up or error delivered with nothing left to read.
    final_delivery: bool,
    fd: RawFd,
    site: Site,
}

/// A watcher, as the alive report lists it.
pub(crate) struct WatcherInfo {
    pub(crate) id: WatchId,
    pub(crate) fd: RawFd,
    pub(crate) interest: Interest,
    pub(crate) keeps_alive: bool,
    pub(crate) parked: bool,
    pub(crate) site: Site,
    pub(crate) label: &'static str,
}

/// The loop's table of watchers.
pub(crate) struct Watchers {
    entries: Slab<Entry>,
    events: Events,
    fired: Vec<(usize, Readiness)>,
    next_serial: u64,
    registered: usize,
    keeping_alive: usize,
    /// The fds of all watchers, polled or not: one watcher per fd.
    fds: HashSet<RawFd>,
}

fn unknown_watcher(id: WatchId) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("evloop: {id:?} is not a live watcher"),
    )
}

fn to_event(key: usize, interest: Interest) -> Event {
    Event::new(key, interest.readable, interest.writable)
}

fn borrow<'a>(fd: RawFd) -> BorrowedFd<'a> {
    // SAFETY: only called for fds of live watchers, which are open (see `sync`).
    unsafe { BorrowedFd::borrow_raw(fd) }
}

impl Watchers {
    pub(crate) fn new() -> Watchers {
        Watchers {
            entries: Slab::new(),
            events: Events::new(),
            fired: Vec::new(),
            next_serial: 1,
            registered: 0,
            keeping_alive: 0,
            fds: HashSet::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Watchers whose fd is in the poller.
    #[inline]
    pub(crate) fn registered(&self) -> usize {
        self.registered
    }

    pub(crate) fn keeping_alive(&self) -> usize {
        self.keeping_alive
    }

    fn get(&mut self, id: WatchId) -> Option<&mut Entry> {
        match self.entries.get_mut(id.0.slot as usize) {
            Some(e) if e.serial == id.0.serial => Some(e),
            _ => None,
        }
    }

    fn contains(&self, id: WatchId) -> bool {
        matches!(self.entries.get(id.0.slot as usize), Some(e) if e.serial == id.0.serial)
    }

    /// Adds a watcher for `fd`. Fails for an fd already watched, or one the
    /// poller refuses (a regular file: `EPERM`).
    fn insert(
        &mut self,
        poller: &Poller,
        fd: RawFd,
        interest: Interest,
        body: Box<dyn Body>,
        site: Site,
    ) -> io::Result<WatchId> {
        if self.fds.contains(&fd) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("evloop: fd {fd} is already watched by this loop"),
            ));
        }
        let serial = self.next_serial;
        let slot = self.entries.insert(Entry {
            serial,
            fd,
            interest,
            keeps_alive: true,
            registered: false,
            parked: false,
            changes: 0,
            body: Some(body),
            site,
            label: "watcher",
        });
        let id = WatchId(Key::new(slot, serial));
        let result = if interest.is_none() {
            // Not polled yet, but an fd that can never be polled must fail
            // now: register it with no interest once, then take it out.
            // SAFETY: `fd` is open (the caller holds it) and leaves the poller
            // again before this call returns.
            unsafe { poller.add(fd, Event::none(id.poller_key())) }
                .and_then(|()| poller.delete(borrow(fd)))
        } else {
            self.sync(poller, id)
        };
        if let Err(e) = result {
            self.entries.remove(slot);
            log::debug!("evloop: cannot watch fd {fd}: {e}");
            return Err(e);
        }
        self.next_serial += 1;
        self.fds.insert(fd);
        log::debug!("evloop: watch fd {fd} as {id:?} for {interest:?}");
        Ok(id)
    }

    /// Puts the entry's fd in or out of the poller to match its state.
    fn sync(&mut self, poller: &Poller, id: WatchId) -> io::Result<()> {
        let entry = self.get(id).expect("sync of a live watcher");
        let want = !entry.interest.is_none() && !entry.parked;
        let (was_alive, was_registered) = (entry.keeps_alive(), entry.registered);
        let fd = entry.fd;
        let event = to_event(id.poller_key(), entry.interest);
        let result = match (entry.registered, want) {
            // SAFETY: the fd stays open while it is registered: an owned
            // source is only dropped after `delete`, and raw-fd callers
            // promise to stop watching before they close (`watch_raw_fd`).
            (false, true) => unsafe { poller.add_with_mode(fd, event, PollMode::Level) },
            (true, true) => poller.modify_with_mode(borrow(fd), event, PollMode::Level),
            (true, false) => poller.delete(borrow(fd)),
            (false, false) => Ok(()),
        };
        if result.is_ok() {
            entry.registered = want;
        }
        let (now_alive, now_registered) = (entry.keeps_alive(), entry.registered);
        self.recount(was_alive, now_alive);
        match (was_registered, now_registered) {
            (false, true) => self.registered += 1,
            (true, false) => self.registered -= 1,
            _ => {}
        }
        result
    }

    fn recount(&mut self, was: bool, now: bool) {
        match (was, now) {
            (false, true) => self.keeping_alive += 1,
            (true, false) => self.keeping_alive -= 1,
            _ => {}
        }
    }

    /// Changes what a watcher waits for; re-arms a parked one.
    fn set_interest(&mut self, poller: &Poller, id: WatchId, interest: Interest) -> io::Result<()> {
        let entry = self.get(id).ok_or_else(|| unknown_watcher(id))?;
        entry.interest = interest;
        entry.parked = false;
        entry.changes = entry.changes.wrapping_add(1);
        self.sync(poller, id)
    }

    fn set_ref(&mut self, id: WatchId, keep_alive: bool) -> io::Result<()> {
        let entry = self.get(id).ok_or_else(|| unknown_watcher(id))?;
        let was = entry.keeps_alive();
        entry.keeps_alive = keep_alive;
        let now = entry.keeps_alive();
        self.recount(was, now);
        Ok(())
    }

    /// Deregisters and removes a watcher. `None` if the id is not live;
    /// `Some(None)` if its callback is running (its body is out).
    fn remove(&mut self, poller: &Poller, id: WatchId) -> Option<Option<Box<dyn Body>>> {
        if !self.contains(id) {
            return None;
        }
        let entry = self.entries.remove(id.0.slot as usize);
        self.fds.remove(&entry.fd);
        if entry.registered {
            if let Err(e) = poller.delete(borrow(entry.fd)) {
                log::warn!("evloop: deleting fd {} from the poller: {e}", entry.fd);
            }
            self.registered -= 1;
        }
        if entry.keeps_alive() {
            self.keeping_alive -= 1;
        }
        log::debug!("evloop: unwatch {id:?}");
        Some(entry.body)
    }

    /// Removes a watcher and returns its source, if it is an `S`.
    fn take_source<S: 'static>(&mut self, poller: &Poller, id: WatchId) -> io::Result<S> {
        let entry = self.get(id).ok_or_else(|| unknown_watcher(id))?;
        match &entry.body {
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    "evloop: take_watched inside the watcher's own callback (use unwatch)",
                ))
            }
            Some(body) if !body.source().is::<S>() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "evloop: take_watched with the wrong source type",
                ))
            }
            Some(_) => {}
        }
        let body = self.remove(poller, id).flatten().expect("checked above");
        Ok(*body
            .into_source()
            .downcast::<S>()
            .expect("type checked above"))
    }

    /// Every watcher, for the alive report.
    pub(crate) fn list(&self) -> impl Iterator<Item = WatcherInfo> + '_ {
        self.entries.iter().map(|(slot, e)| WatcherInfo {
            id: WatchId(Key::new(slot, e.serial)),
            fd: e.fd,
            interest: e.interest,
            keeps_alive: e.keeps_alive(),
            parked: e.parked,
            site: e.site,
            label: e.label,
        })
    }

    /// Deregisters everything (the loop is being dropped).
    pub(crate) fn clear(&mut self, poller: &Poller) {
        for (_, entry) in self.entries.iter() {
            if entry.registered {
                let _ = poller.delete(borrow(entry.fd));
            }
        }
        self.entries.clear();
        self.fds.clear();
        self.registered = 0;
        self.keeping_alive = 0;
    }

    /// Waits for IO and collects the ready watchers; returns how many.
    fn poll(&mut self, poller: &Poller, timeout: Option<Duration>) -> io::Result<usize> {
        self.events.clear();
        self.fired.clear();
        if let Err(e) = poller.wait(&mut self.events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(e);
        }
        let events = &self.events;
        self.fired.extend(events.iter().map(|e| {
            (
                e.key,
                Readiness {
                    readable: e.readable,
                    writable: e.writable,
                    hangup: e.is_interrupt(),
                    error: e.is_err().unwrap_or(false),
                },
            )
        }));
        Ok(self.fired.len())
    }

    /// Takes the body of the watcher behind a poller key out to run it;
    /// `None` for an event of a watcher removed (or paused) since.
    fn begin(&mut self, key: usize, r: Readiness) -> Option<Dispatch> {
        let slot = key & 0xffff_ffff;
        let serial_bits = (key >> 32) as u64;
        let entry = self.entries.get_mut(slot)?;
        if entry.serial & 0x7fff_ffff != serial_bits || !entry.registered {
            return None; // removed (or paused) earlier in this pass
        }
        let body = entry.body.take()?;
        let readiness = Readiness {
            readable: r.readable && entry.interest.readable,
            writable: r.writable && entry.interest.writable,
            ..r
        };
        Some(Dispatch {
            id: WatchId(Key::new(slot, entry.serial)),
            body,
            readiness,
            changes: entry.changes,
            final_delivery: (r.hangup || r.error) && sys::bytes_to_read(entry.fd) == 0,
            fd: entry.fd,
            site: entry.site,
        })
    }

    /// Puts a body back after its callback ran, and parks the watcher if
    /// its hang-up or error outlived a final delivery that left it as it was.
    /// A watcher removed inside its callback drops its body (and source) here.
    /// Puts a watcher's body back after its callback ran; hands it back
    /// instead if the callback unwatched it, for the caller to drop (its
    /// `Drop` is user code).
    fn end(&mut self, poller: &Poller, d: Dispatch) -> Option<Box<dyn Body>> {
        let Some(entry) = self.get(d.id) else {
            return Some(d.body);
        };
        entry.body = Some(d.body);
        let untouched = entry.changes == d.changes && entry.registered;
        if untouched && d.final_delivery && still_failed(d.fd) {
            log::debug!(
                "evloop: {:?} hung up or failed; parked until set_interest",
                d.id
            );
            entry.parked = true;
            let _ = self.sync(poller, d.id);
        }
        None
    }
}

/// True if `fd` still reports a hang-up or an error and has nothing to read:
/// polling it again would spin.
fn still_failed(fd: RawFd) -> bool {
    sys::hung_up_or_failed(fd) && sys::bytes_to_read(fd) == 0
}

impl EventLoop {
    /// Watches `source` for `interest`; `callback` gets the loop, the source and
    /// the readiness each pass the fd is ready (level-triggered).
    ///
    /// The loop owns `source` until [`unwatch`](EventLoop::unwatch) (which drops
    /// it) or [`take_watched`](EventLoop::take_watched) (which returns it).
    ///
    /// # Errors
    /// The fd is already watched by this loop (`AlreadyExists`), or it cannot
    /// be polled, such as a regular file or a directory (`EPERM`). On error
    /// the source is dropped and the callback never runs.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::io::{Read, Write};
    /// use evloop::{EventLoop, Interest};
    /// let (mut a, b) = std::os::unix::net::UnixStream::pair()?;
    /// let mut ev = EventLoop::new()?;
    /// ev.watch(b, Interest::READABLE, |ev, b, _| {
    ///     let mut buf = [0; 16];
    ///     let n = b.read(&mut buf).unwrap();
    ///     println!("got {:?}", &buf[..n]);
    ///     ev.stop();
    /// })?;
    /// a.write_all(b"ping")?;
    /// ev.run()
    /// # }
    /// ```
    /// The call's source location is recorded as the watcher's creation site
    /// (see [`alive_report`](EventLoop::alive_report)).
    #[track_caller]
    pub fn watch<S, F>(&mut self, source: S, interest: Interest, callback: F) -> io::Result<WatchId>
    where
        S: AsFd + 'static,
        F: FnMut(&mut EventLoop, &mut S, Readiness) + 'static,
    {
        let fd = source.as_fd().as_raw_fd();
        self.io.insert(
            &self.remote.poller,
            fd,
            interest,
            Box::new(Owned { source, callback }),
            std::panic::Location::caller(),
        )
    }

    /// Watches a raw fd that the caller owns.
    ///
    /// # Safety
    ///
    /// `fd` must stay open until the watcher is removed with
    /// [`unwatch`](EventLoop::unwatch) or the loop is dropped: closing a
    /// watched fd breaks the OS poller's bookkeeping (as with libuv's
    /// `uv_poll`). The loop never closes `fd`.
    ///
    /// # Errors
    /// As [`watch`](EventLoop::watch); `EBADF` for a negative fd.
    #[track_caller]
    pub unsafe fn watch_raw_fd<F>(
        &mut self,
        fd: RawFd,
        interest: Interest,
        callback: F,
    ) -> io::Result<WatchId>
    where
        F: FnMut(&mut EventLoop, RawFd, Readiness) + 'static,
    {
        if fd < 0 {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        let mut callback = callback;
        let body = Owned {
            source: fd,
            callback: move |ev: &mut EventLoop, fd: &mut RawFd, r| callback(ev, *fd, r),
        };
        let site = std::panic::Location::caller();
        self.io
            .insert(&self.remote.poller, fd, interest, Box::new(body), site)
    }

    /// Names what a watcher serves and where it was created, for the
    /// [`alive_report`](EventLoop::alive_report), the slow-callback warning
    /// and the timeline. Layers built on [`watch`](EventLoop::watch) call it
    /// so that their user's call site is named rather than their own: evloop's
    /// streams, servers, children, signals and UDP sockets do. `label` is a
    /// short kind such as `"stream"`; by default a watcher is `"watcher"`,
    /// created where `watch` was called.
    ///
    /// # Errors
    /// `NotFound` for a stale id.
    pub fn label_watch(
        &mut self,
        id: WatchId,
        label: &'static str,
        site: &'static std::panic::Location<'static>,
    ) -> io::Result<()> {
        let entry = self.io.get(id).ok_or_else(|| unknown_watcher(id))?;
        entry.label = label;
        entry.site = site;
        Ok(())
    }

    /// Changes what a watcher waits for; also re-arms a parked watcher.
    /// Safe from any callback, the watcher's own included.
    ///
    /// # Errors
    /// `NotFound` for a stale id; the poller's error otherwise.
    pub fn set_interest(&mut self, id: WatchId, interest: Interest) -> io::Result<()> {
        self.io.set_interest(&self.remote.poller, id, interest)
    }

    /// Stops a watcher and drops its source (after deleting it from the
    /// poller). From inside its own callback, the source drops when the
    /// callback returns. False if the id is not a live watcher.
    pub fn unwatch(&mut self, id: WatchId) -> bool {
        // The body (and its source) drops here, after the fd left the poller.
        self.io.remove(&self.remote.poller, id).is_some()
    }

    /// Stops a watcher and gives its source back.
    ///
    /// # Errors
    /// Unknown id (`NotFound`), a source of another type (`InvalidInput`; the
    /// watcher is left as it was), or the watcher's own callback is running
    /// (`ResourceBusy`: use `unwatch` there).
    pub fn take_watched<S: 'static>(&mut self, id: WatchId) -> io::Result<S> {
        self.io.take_source(&self.remote.poller, id)
    }

    /// Sets whether a watcher keeps the loop alive (it does by default).
    ///
    /// # Errors
    /// `NotFound` for a stale id.
    pub fn set_watch_ref(&mut self, id: WatchId, keep_alive: bool) -> io::Result<()> {
        self.io.set_ref(id, keep_alive)
    }

    /// True if `id` is a live watcher (active, paused or parked).
    pub fn is_watching(&self, id: WatchId) -> bool {
        self.io.contains(id)
    }

    /// Number of watchers that exist.
    pub fn watcher_count(&self) -> usize {
        self.io.len()
    }

    /// Waits for IO (at most `timeout`, `None` = forever); returns how many
    /// watchers are ready. [`dispatch_io`](EventLoop::dispatch_io) runs them.
    pub(crate) fn poll_io(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        self.io.poll(&self.remote.poller, timeout)
    }

    /// Runs the callbacks of the watchers the last poll found ready.
    pub(crate) fn dispatch_io(&mut self) {
        let fired = std::mem::take(&mut self.io.fired);
        self.diag.metrics.io_events += fired.len() as u64;
        for &(key, readiness) in &fired {
            let Some(mut d) = self.io.begin(key, readiness) else {
                continue;
            };
            log::trace!("evloop: io {:?} fd {} {:?}", d.id, d.fd, d.readiness);
            self.diag.metrics.io_callbacks += 1;
            let r = d.readiness;
            let result = if self.diag.observe {
                let (site, started) = (d.site, std::time::Instant::now());
                let result = catch(|| d.body.fire(self, r));
                let pass = self.iterations();
                self.diag
                    .callback_done(CallbackKind::Io, Some(site), started, pass);
                result
            } else {
                catch(|| d.body.fire(self, r))
            };
            let unwatched = self.io.end(&self.remote.poller, d);
            self.after_callback(result, unwatched);
        }
        self.io.fired = fired;
    }
}
