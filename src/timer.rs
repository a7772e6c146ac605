//! The timer queue: pending one-shot and interval timers, ordered by deadline.
//!
//! Why it looks like this:
//!
//! - Deadlines are `u64` nanoseconds since the loop's epoch. That keeps the full
//!   resolution of `Instant` (no rounding to milliseconds, guarantee 13), makes a
//!   comparison one instruction, and lets huge delays saturate at `u64::MAX`
//!   ("never") instead of overflowing.
//! - The order is a binary min-heap of small plain nodes `(deadline, order, slot)`.
//!   `order` is a counter taken each time a timer is armed, so equal deadlines run
//!   in the order they were set (guarantee 2) and the loop can tell a timer armed
//!   during the current pass from one that was already waiting (guarantee 4).
//! - Callbacks live in a [`Slab`]. Clearing is O(1): the closure is dropped at
//!   once and the entry marked dead; its node leaves the heap when it reaches
//!   the top, or when dead nodes outnumber live ones and the heap is rebuilt
//!   without them (O(n), so amortised O(1) per clear). Not tracking each
//!   node's position keeps sifting inside the heap array: a sift never writes
//!   to the slab, which made firing 1,000,000 timers cache-miss bound.
//! - A [`TimerId`] carries the slab slot plus a serial number that is never
//!   reused, so a stale id can never clear a newer timer that took its slot.
//!
//! One pending timer costs 24 bytes of heap node plus one slab entry (32 bytes)
//! beside its boxed closure; memory is given back as timers are cleared.
//! A dead timer's node and entry stay until the next rebuild or until popped.

use std::time::Duration;

use slab::Slab;

use crate::id::Key;
use crate::EventLoop;

crate::id::id_type! {
    /// Identifies a timer set with [`EventLoop::set_timeout`] or
    /// [`EventLoop::set_interval`].
    ///
    /// Ids are never reused: clearing a timer that already ran or was
    /// cleared is a harmless `false`, even if a newer timer now occupies the
    /// same storage.
    TimerId
}

/// The body of an interval: its period and its closure.
pub(crate) struct Interval<F: ?Sized> {
    pub(crate) period: Duration,
    pub(crate) f: F,
}

pub(crate) type IntervalBox = Box<Interval<dyn FnMut(&mut EventLoop)>>;

pub(crate) enum Callback {
    Once(Box<dyn FnOnce(&mut EventLoop)>),
    Every(IntervalBox),
    /// An interval whose closure is out being called right now.
    Running,
    /// Cleared; its node is still in the heap.
    Dead,
}

struct Entry {
    /// The timer's serial, with [`UNREF`] set if it does not keep the loop
    /// alive (one word instead of two: the entry is 32 bytes, not 40).
    tagged_serial: u64,
    callback: Callback,
}

/// The flag bit of `Entry::tagged_serial`; serials never come near it.
const UNREF: u64 = 1 << 63;

impl Entry {
    fn serial(&self) -> u64 {
        self.tagged_serial & !UNREF
    }
    fn keeps_alive(&self) -> bool {
        self.tagged_serial & UNREF == 0
    }
    fn set_keeps_alive(&mut self, keep_alive: bool) {
        self.tagged_serial = self.serial() | if keep_alive { 0 } else { UNREF };
    }
    fn is(&self, id: TimerId) -> bool {
        self.serial() == id.0.serial && !matches!(self.callback, Callback::Dead)
    }
}

#[derive(Clone, Copy)]
struct Node {
    deadline: u64,
    order: u64,
    slot: u32,
}

impl Node {
    #[inline]
    fn before(&self, other: &Node) -> bool {
        (self.deadline, self.order) < (other.deadline, other.order)
    }
}

/// What [`TimerQueue::pop_due`] hands to the loop.
pub(crate) enum Fired {
    Once(Box<dyn FnOnce(&mut EventLoop)>),
    Every(TimerId, IntervalBox),
}

/// Below this many slots the queue does not bother giving memory back.
const SHRINK_MIN: usize = 4096;
/// Dead nodes tolerated before a rebuild is considered.
const DEAD_MIN: usize = 64;

pub(crate) struct TimerQueue {
    heap: Vec<Node>,
    entries: Slab<Entry>,
    next_serial: u64,
    next_order: u64,
    keeping_alive: usize,
    /// Entries marked dead whose nodes are still in the heap.
    dead: usize,
    /// Try to shrink the slab again only once `len` falls below this.
    shrink_below: usize,
}

impl TimerQueue {
    pub(crate) fn new() -> TimerQueue {
        TimerQueue {
            heap: Vec::new(),
            entries: Slab::new(),
            next_serial: 1,
            next_order: 0,
            keeping_alive: 0,
            dead: 0,
            shrink_below: 0,
        }
    }

    /// Number of timers that exist (pending, or an interval being called).
    pub(crate) fn len(&self) -> usize {
        self.entries.len() - self.dead
    }

    /// Number of timers that keep the loop alive.
    pub(crate) fn keeping_alive(&self) -> usize {
        self.keeping_alive
    }

    /// The order mark: timers armed from now on compare `>=` to it.
    pub(crate) fn order_mark(&self) -> u64 {
        self.next_order
    }

    /// Earliest deadline, if any timer is queued. Call
    /// [`TimerQueue::purge_dead_top`] first for an exact answer; without it
    /// this may be a cleared timer's, which only means an early wakeup.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.heap.first().map(|n| n.deadline)
    }

    /// Pops cleared timers off the top of the heap.
    pub(crate) fn purge_dead_top(&mut self) {
        if self.dead == 0 {
            return;
        }
        while let Some(top) = self.heap.first() {
            if !matches!(self.entries[top.slot as usize].callback, Callback::Dead) {
                return;
            }
            let slot = top.slot as usize;
            self.pop_top();
            self.entries.remove(slot);
            self.dead -= 1;
        }
    }

    pub(crate) fn insert(&mut self, deadline: u64, callback: Callback) -> TimerId {
        let serial = self.next_serial;
        self.next_serial += 1;
        let slot = self.entries.insert(Entry {
            tagged_serial: serial,
            callback,
        });
        self.keeping_alive += 1;
        self.shrink_below = self.shrink_below.max(self.entries.len() / 4);
        let slot = u32::try_from(slot).expect("more than 4 billion timers");
        self.push(deadline, slot);
        TimerId(Key { slot, serial })
    }

    /// Removes a timer. True if it was pending (or is an interval being called).
    pub(crate) fn cancel(&mut self, id: TimerId) -> bool {
        let Some(entry) = self.lookup(id) else {
            return false;
        };
        let keeps_alive = entry.keeps_alive();
        let callback = if matches!(entry.callback, Callback::Running) {
            // No node in the heap: the entry can go now, and `rearm` will
            // find it gone.
            self.entries.remove(id.0.slot as usize).callback
        } else {
            let callback = std::mem::replace(&mut entry.callback, Callback::Dead);
            self.dead += 1;
            callback
        };
        if keeps_alive {
            self.keeping_alive -= 1;
        }
        if self.len() == 0 {
            // Only dead timers are left: drop them all at once.
            self.heap.clear();
            self.entries.clear();
            self.dead = 0;
        } else if self.dead >= DEAD_MIN && self.dead > self.len() {
            self.rebuild();
        }
        self.release_memory();
        drop(callback); // after the queue is consistent: its drop may do anything
        true
    }

    /// Sets whether a timer keeps the loop alive. False if the id is stale.
    pub(crate) fn set_ref(&mut self, id: TimerId, keep_alive: bool) -> bool {
        let Some(entry) = self.lookup(id) else {
            return false;
        };
        let was = entry.keeps_alive();
        entry.set_keeps_alive(keep_alive);
        match (was, keep_alive) {
            (false, true) => self.keeping_alive += 1,
            (true, false) => self.keeping_alive -= 1,
            _ => {}
        }
        true
    }

    /// `Some(keeps_alive)` for a live timer.
    pub(crate) fn has_ref(&self, id: TimerId) -> Option<bool> {
        match self.entries.get(id.0.slot as usize) {
            Some(e) if e.is(id) => Some(e.keeps_alive()),
            _ => None,
        }
    }

    /// Takes the next timer that is due at `now` and was armed before `mark`.
    ///
    /// A one-shot timer is gone from the queue once returned. An interval stays
    /// (so it can be cleared from its own callback) but is not queued until
    /// [`TimerQueue::rearm`] gives its closure back.
    pub(crate) fn pop_due(&mut self, now: u64, mark: u64) -> Option<Fired> {
        self.purge_dead_top();
        let top = *self.heap.first()?;
        if top.deadline > now || top.order >= mark {
            return None;
        }
        self.pop_top();
        let slot = top.slot as usize;
        let entry = &mut self.entries[slot];
        match std::mem::replace(&mut entry.callback, Callback::Running) {
            Callback::Every(interval) => Some(Fired::Every(
                TimerId(Key {
                    slot: top.slot,
                    serial: entry.serial(),
                }),
                interval,
            )),
            Callback::Once(f) => {
                let entry = self.entries.remove(slot);
                if entry.keeps_alive() {
                    self.keeping_alive -= 1;
                }
                // Memory is given back by the caller once the due callbacks
                // ran: freeing a large heap can take milliseconds.
                Some(Fired::Once(f))
            }
            Callback::Running | Callback::Dead => {
                unreachable!("a live queued timer always has its callback")
            }
        }
    }

    /// Queues an interval again after its callback ran. If the interval was
    /// cleared meanwhile, the closure is handed back to be dropped.
    pub(crate) fn rearm(
        &mut self,
        id: TimerId,
        interval: IntervalBox,
        deadline: u64,
    ) -> Option<IntervalBox> {
        match self.lookup(id) {
            Some(entry) if matches!(entry.callback, Callback::Running) => {
                entry.callback = Callback::Every(interval);
                self.push(deadline, id.0.slot);
                None
            }
            _ => Some(interval),
        }
    }

    fn lookup(&mut self, id: TimerId) -> Option<&mut Entry> {
        match self.entries.get_mut(id.0.slot as usize) {
            Some(e) if e.is(id) => Some(e),
            _ => None,
        }
    }

    fn push(&mut self, deadline: u64, slot: u32) {
        let order = self.next_order;
        self.next_order += 1;
        self.heap.push(Node {
            deadline,
            order,
            slot,
        });
        self.sift_up(self.heap.len() - 1);
    }

    fn pop_top(&mut self) {
        let last = self.heap.pop().expect("pop_top of an empty heap");
        if !self.heap.is_empty() {
            self.heap[0] = last;
            self.sift_down(0);
        }
    }

    /// Drops every dead node and entry and restores the heap, in O(n).
    fn rebuild(&mut self) {
        let entries = &mut self.entries;
        self.heap.retain(|n| {
            let dead = matches!(entries[n.slot as usize].callback, Callback::Dead);
            if dead {
                entries.remove(n.slot as usize);
            }
            !dead
        });
        self.dead = 0;
        for pos in (0..self.heap.len() / 2).rev() {
            self.sift_down(pos);
        }
    }

    fn sift_up(&mut self, mut pos: usize) {
        let node = self.heap[pos];
        while pos > 0 {
            let parent = (pos - 1) / 2;
            if !node.before(&self.heap[parent]) {
                break;
            }
            self.heap[pos] = self.heap[parent];
            pos = parent;
        }
        self.heap[pos] = node;
    }

    fn sift_down(&mut self, mut pos: usize) {
        let node = self.heap[pos];
        let len = self.heap.len();
        loop {
            let left = 2 * pos + 1;
            if left >= len {
                break;
            }
            let right = left + 1;
            let child = if right < len && self.heap[right].before(&self.heap[left]) {
                right
            } else {
                left
            };
            if !self.heap[child].before(&node) {
                break;
            }
            self.heap[pos] = self.heap[child];
            pos = child;
        }
        self.heap[pos] = node;
    }

    /// Gives memory back once most timers are gone, amortised O(1) per removal
    /// (called by `cancel`, and by the loop after running due timers):
    /// the heap is dense and shrinks at a quarter full; the slab can only drop
    /// its vacant tail, so after each try the next one waits until `len` halves.
    pub(crate) fn release_memory(&mut self) {
        let len = self.entries.len();
        // The common case, first: nothing to give back.
        if len != 0 && len >= self.heap.capacity() / 4 && len >= self.shrink_below {
            return;
        }
        if len == 0 {
            if self.entries.capacity() >= SHRINK_MIN {
                self.entries = Slab::new();
                self.heap = Vec::new();
            }
            return;
        }
        if self.heap.capacity() >= SHRINK_MIN && len < self.heap.capacity() / 4 {
            self.heap.shrink_to(len * 2);
        }
        if self.entries.capacity() >= SHRINK_MIN
            && len < self.entries.capacity() / 4
            && len < self.shrink_below
        {
            self.entries.shrink_to_fit();
            self.shrink_below = len / 2;
        }
    }
}

impl Drop for TimerQueue {
    fn drop(&mut self) {
        // Drop closures in slot order; the heap holds plain data only.
        self.heap.clear();
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop() -> Callback {
        Callback::Once(Box::new(|_| {}))
    }

    #[test]
    fn storage_stays_small() {
        assert_eq!(std::mem::size_of::<Node>(), 24);
        assert!(
            std::mem::size_of::<Entry>() <= 40,
            "{}",
            std::mem::size_of::<Entry>()
        );
    }

    #[test]
    fn heap_order_survives_random_cancels() {
        let mut q = TimerQueue::new();
        let mut ids = Vec::new();
        // A deterministic shuffle of deadlines.
        for i in 0..2000u64 {
            ids.push((q.insert((i * 7919) % 1000, noop()), (i * 7919) % 1000));
        }
        for (k, (id, _)) in ids.iter().enumerate() {
            if k % 3 == 0 {
                assert!(q.cancel(*id));
                assert!(!q.cancel(*id));
            }
        }
        let mut last = (0, 0);
        let mut count = 0;
        while let Some(top) = q.heap.first().copied() {
            assert!((top.deadline, top.order) >= last);
            last = (top.deadline, top.order);
            assert!(q.pop_due(u64::MAX, u64::MAX).is_some());
            count += 1;
        }
        assert_eq!(count, 2000 - 667);
        assert_eq!(q.len(), 0);
        assert_eq!(q.keeping_alive(), 0);
    }

    #[test]
    fn memory_is_released_when_cleared() {
        let mut q = TimerQueue::new();
        let ids: Vec<_> = (0..100_000).map(|i| q.insert(i, noop())).collect();
        for id in &ids[..99_000] {
            q.cancel(*id);
        }
        assert_eq!(q.len(), 1_000);
        assert!(q.heap.capacity() < 10_000, "heap {}", q.heap.capacity());
        for id in &ids[99_000..] {
            q.cancel(*id);
        }
        assert_eq!(q.entries.capacity(), 0);
        assert_eq!(q.heap.capacity(), 0);
    }
}
