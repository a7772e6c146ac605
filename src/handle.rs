//! [`LoopHandle`]: the one way into a loop from other threads.
//!
//! Everything a loop owns is `!Send`; the only state shared with other threads
//! is [`Remote`]: the poller (so a thread can wake a blocked loop), a queue of
//! posted closures, and a count of the handles that keep the loop alive.
//!
//! Wakeups are coalesced: a post only calls `Poller::notify` when it finds the
//! queue empty. The loop empties the queue in one swap, so a burst of posts
//! between two passes costs one notify, not one per post.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use polling::Poller;

use slab::Slab;

use crate::diag::Site;
use crate::EventLoop;

/// A closure posted from another thread, with where it was posted.
pub(crate) type Post = (Box<dyn FnOnce(&mut EventLoop) + Send>, Site);

struct Posts {
    queue: Vec<Post>,
    closed: bool,
}

/// A live handle, as the alive report lists it.
#[derive(Clone, Copy)]
pub(crate) struct HandleInfo {
    pub(crate) number: u64,
    pub(crate) site: Site,
    pub(crate) keeps_alive: bool,
}

/// The part of a loop that other threads may touch.
pub(crate) struct Remote {
    pub(crate) poller: Poller,
    posts: Mutex<Posts>,
    /// Set while `posts.queue` is not empty; lets the loop skip the lock.
    has_posts: AtomicBool,
    /// Handles (and other cross-thread work) that keep the loop alive.
    keep_alive: AtomicUsize,
    /// Every live handle (clones included), for the alive report. Locked
    /// only when a handle is made, dropped or ref'd, never per post.
    handles: Mutex<(Slab<HandleInfo>, u64)>,
}

impl Remote {
    pub(crate) fn new() -> std::io::Result<Remote> {
        Ok(Remote {
            poller: Poller::new()?,
            posts: Mutex::new(Posts {
                queue: Vec::new(),
                closed: false,
            }),
            has_posts: AtomicBool::new(false),
            keep_alive: AtomicUsize::new(0),
            handles: Mutex::new((Slab::new(), 0)),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Posts> {
        // A poisoned lock only means a thread panicked while holding it; the
        // queue itself is always consistent (push and swap cannot panic halfway).
        self.posts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `f` for the loop thread and wakes the loop if the queue was
    /// empty. Hands `f` back if the loop is closed.
    pub(crate) fn post<F>(&self, f: F, site: Site) -> Result<(), F>
    where
        F: FnOnce(&mut EventLoop) + Send + 'static,
    {
        let mut posts = self.lock();
        if posts.closed {
            return Err(f);
        }
        let was_empty = posts.queue.is_empty();
        posts.queue.push((Box::new(f), site));
        if was_empty {
            self.has_posts.store(true, Ordering::Release);
        }
        drop(posts);
        if was_empty {
            self.wake();
        }
        Ok(())
    }

    pub(crate) fn wake(&self) {
        if let Err(e) = self.poller.notify() {
            log::warn!("evloop: cannot wake the loop: {e}");
        }
    }

    /// Moves every posted closure into `into`, in post order.
    pub(crate) fn take_posts(&self, into: &mut Vec<Post>) {
        if !self.has_posts.load(Ordering::Acquire) {
            return;
        }
        let mut posts = self.lock();
        std::mem::swap(&mut posts.queue, into);
        self.has_posts.store(false, Ordering::Relaxed);
    }

    pub(crate) fn has_posts(&self) -> bool {
        self.has_posts.load(Ordering::Acquire)
    }

    /// Refuses every later post and hands back what is queued.
    pub(crate) fn close(&self) -> Vec<Post> {
        let mut posts = self.lock();
        posts.closed = true;
        self.has_posts.store(false, Ordering::Relaxed);
        std::mem::take(&mut posts.queue)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    fn handles(&self) -> MutexGuard<'_, (Slab<HandleInfo>, u64)> {
        // Slab operations cannot panic halfway: a poisoned lock is consistent.
        self.handles.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add_handle(&self, site: Site, keeps_alive: bool) -> usize {
        let mut h = self.handles();
        h.1 += 1;
        let number = h.1;
        h.0.insert(HandleInfo {
            number,
            site,
            keeps_alive,
        })
    }

    fn remove_handle(&self, slot: usize) {
        self.handles().0.try_remove(slot);
    }

    fn set_handle_ref(&self, slot: usize, keeps_alive: bool) {
        if let Some(info) = self.handles().0.get_mut(slot) {
            info.keeps_alive = keeps_alive;
        }
    }

    /// Every live handle.
    pub(crate) fn list_handles(&self) -> Vec<HandleInfo> {
        self.handles().0.iter().map(|(_, h)| *h).collect()
    }

    /// Posted closures not yet taken by the loop.
    pub(crate) fn posts_waiting(&self) -> usize {
        self.lock().queue.len()
    }

    pub(crate) fn keeping_alive(&self) -> usize {
        self.keep_alive.load(Ordering::Acquire)
    }

    pub(crate) fn add_keep_alive(&self) {
        self.keep_alive.fetch_add(1, Ordering::AcqRel);
    }

    /// Drops one keep-alive; wakes the loop when it was the last, so a loop
    /// blocked only because of it can notice that it has nothing left.
    pub(crate) fn release_keep_alive(&self) {
        if self.keep_alive.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.wake();
        }
    }
}

/// The error of posting to a loop that was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Closed;

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the event loop is closed")
    }
}

impl std::error::Error for Closed {}

/// A `Send + Sync` handle to an [`EventLoop`], for other threads.
///
/// [`LoopHandle::call_soon`] queues a closure that later runs on the loop
/// thread, and wakes the loop if it is blocked waiting for IO or timers.
///
/// A handle keeps its loop alive: while any clone with a ref exists, `run()`
/// does not return, because work may still arrive through it. Call
/// [`LoopHandle::set_ref`]`(false)` on a handle that should not count (as
/// Node's `unref()`); a clone starts with the ref state of its original.
///
/// ```
/// use evloop::EventLoop;
/// let mut ev = EventLoop::new()?;
/// let handle = ev.handle();
/// std::thread::spawn(move || {
///     handle.call_soon(|ev| println!("on the loop thread at {:?}", ev.now())).unwrap();
///     // `handle` drops here: the loop has nothing left once the closure ran.
/// });
/// ev.run()?;
/// # std::io::Result::Ok(())
/// ```
pub struct LoopHandle {
    token: KeepAlive,
}

/// One counted reference to the loop; cloning counts again.
struct KeepAlive {
    remote: Arc<Remote>,
    refd: bool,
    /// Its entry in the remote's list of handles.
    slot: usize,
}

impl Clone for KeepAlive {
    #[track_caller]
    fn clone(&self) -> Self {
        if self.refd {
            self.remote.add_keep_alive();
        }
        KeepAlive {
            remote: self.remote.clone(),
            refd: self.refd,
            slot: self
                .remote
                .add_handle(std::panic::Location::caller(), self.refd),
        }
    }
}

impl Drop for KeepAlive {
    fn drop(&mut self) {
        self.remote.remove_handle(self.slot);
        if self.refd {
            self.remote.release_keep_alive();
        }
    }
}

/// A clone is a new handle, created where `clone` is called (the alive
/// report names that place).
impl Clone for LoopHandle {
    #[track_caller]
    fn clone(&self) -> Self {
        LoopHandle {
            token: self.token.clone(),
        }
    }
}

impl LoopHandle {
    #[track_caller]
    pub(crate) fn new(remote: Arc<Remote>) -> LoopHandle {
        remote.add_keep_alive();
        let slot = remote.add_handle(std::panic::Location::caller(), true);
        LoopHandle {
            token: KeepAlive {
                remote,
                refd: true,
                slot,
            },
        }
    }

    /// Runs `f` on the loop thread, never inside this call: in the next
    /// posts phase that begins after it (from the loop thread itself, that
    /// can be the current pass's); wakes a blocked loop.
    ///
    /// Posts from one thread run in the order they were made. Returns
    /// `Err(Closed)` (and drops `f`) if the loop was dropped.
    #[track_caller]
    pub fn call_soon(&self, f: impl FnOnce(&mut EventLoop) + Send + 'static) -> Result<(), Closed> {
        // On failure `f` drops here, outside the queue's lock: its destructor
        // may post again.
        let site = std::panic::Location::caller();
        self.token.remote.post(f, site).map_err(|_| Closed)
    }

    /// As [`call_soon`](LoopHandle::call_soon), but hands `f` back, undropped,
    /// if the loop is gone.
    #[track_caller]
    pub fn try_call_soon<F>(&self, f: F) -> Result<(), F>
    where
        F: FnOnce(&mut EventLoop) + Send + 'static,
    {
        self.token.remote.post(f, std::panic::Location::caller())
    }

    /// Sets whether this handle keeps the loop alive (it does by default).
    pub fn set_ref(&mut self, keep_alive: bool) {
        let t = &mut self.token;
        match (t.refd, keep_alive) {
            (false, true) => t.remote.add_keep_alive(),
            (true, false) => t.remote.release_keep_alive(),
            _ => {}
        }
        t.refd = keep_alive;
        t.remote.set_handle_ref(t.slot, keep_alive);
    }

    /// Whether this handle keeps the loop alive.
    pub fn has_ref(&self) -> bool {
        self.token.refd
    }

    /// True once the loop was dropped; `call_soon` then always fails.
    pub fn is_closed(&self) -> bool {
        self.token.remote.is_closed()
    }
}

impl fmt::Debug for LoopHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopHandle")
            .field("has_ref", &self.token.refd)
            .finish_non_exhaustive()
    }
}
