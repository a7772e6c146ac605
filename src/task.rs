//! The ready queue: callbacks that can run now, in FIFO order.
//!
//! A task is a boxed `FnOnce(&mut EventLoop)`. The loop runs the queue in
//! snapshot batches: a pass runs exactly the tasks that were queued when the
//! pass began, so a task queued by a running task waits for the next pass,
//! after timers and IO were looked at again (guarantee 4). Tasks are popped
//! before they run, so a panicking task leaves the rest of the queue intact.
//!
//! A task's creation site (see [`crate::diag`]) is kept only while something
//! would report it: while callbacks are timed for the slow-callback warning
//! (a logger takes warnings) or the timeline. Sites then
//! wait in a second ring beside the tasks; otherwise that ring is empty and
//! a task costs its 16-byte box alone (no allocation for a closure that
//! captures nothing), which is what a chain of `call_soon` moves per link.
//! Tasks queued before tracking began report their site as unknown.

use std::collections::VecDeque;

use crate::diag::Site;
use crate::EventLoop;

/// A callback queued with [`EventLoop::call_soon`].
pub(crate) type Task = Box<dyn FnOnce(&mut EventLoop)>;

/// FIFO of ready tasks.
#[derive(Default)]
pub(crate) struct ReadyQueue {
    tasks: VecDeque<Task>,
    /// One per task while `track_sites` (`None`: queued before), else empty.
    sites: VecDeque<Option<Site>>,
    track_sites: bool,
}

impl ReadyQueue {
    #[inline]
    pub(crate) fn push(&mut self, task: Task, site: Site) {
        self.tasks.push_back(task);
        if self.track_sites {
            self.sites.push_back(Some(site));
        }
    }

    #[inline]
    pub(crate) fn pop(&mut self) -> Option<(Task, Option<Site>)> {
        let task = self.tasks.pop_front()?;
        let site = if self.track_sites {
            self.sites.pop_front().flatten()
        } else {
            None
        };
        Some((task, site))
    }

    /// Pops a task while sites are not kept (the untimed path: no site
    /// to pop beside it).
    #[inline]
    pub(crate) fn pop_untracked(&mut self) -> Option<Task> {
        debug_assert!(!self.track_sites);
        self.tasks.pop_front()
    }

    /// Starts or stops keeping each task's site.
    pub(crate) fn track_sites(&mut self, on: bool) {
        if on && !self.track_sites {
            self.sites = std::iter::repeat_n(None, self.tasks.len()).collect();
        } else if !on {
            self.sites = VecDeque::new();
        }
        self.track_sites = on;
    }

    #[inline]
    pub(crate) fn tracks_sites(&self) -> bool {
        self.track_sites
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.tasks.len()
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
}

crate::id::id_type! {
    /// Identifies a callback queued with
    /// [`EventLoop::call_soon_cancellable`], so that it can be taken back
    /// with [`EventLoop::cancel_soon`] before it runs (Node's
    /// `clearImmediate`, asyncio's `Handle.cancel()`). Never reused.
    SoonId
}

/// Callbacks queued with [`EventLoop::call_soon_cancellable`].
///
/// The ready queue holds a small trampoline per callback that takes the real
/// one from here by its id; cancelling removes it here, so the callback is
/// dropped at once and the trampoline finds nothing. A plain `call_soon`
/// pays nothing for this.
#[derive(Default)]
pub(crate) struct Cancellable {
    tasks: slab::Slab<(u64, Task)>,
    next_serial: u64,
}

impl Cancellable {
    pub(crate) fn insert(&mut self, task: Task) -> SoonId {
        self.next_serial += 1;
        let slot = self.tasks.insert((self.next_serial, task));
        SoonId(crate::id::Key::new(slot, self.next_serial))
    }

    /// Takes the callback out, if it is still queued.
    pub(crate) fn take(&mut self, id: SoonId) -> Option<Task> {
        let slot = id.0.slot as usize;
        match self.tasks.get(slot) {
            Some((serial, _)) if *serial == id.0.serial => Some(self.tasks.remove(slot).1),
            _ => None,
        }
    }
}
