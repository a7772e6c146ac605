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
//! - Callbacks live in a [`Slab`]. A heap node is *live* while its `order`
//!   equals the one its entry records; every other node is stale. Clearing
//!   is O(1): the entry and its closure go at once and the node turns stale.
//!   Refreshing a timer (libuv's `uv_timer_again`, Node's `refresh()`) pushes
//!   a new node with a new order and leaves the old one stale. Stale nodes
//!   leave the heap when they reach the top, or when they outnumber live
//!   ones and the heap is rebuilt without them (O(n), so amortised O(1) per
//!   clear or refresh). Not tracking each node's position keeps sifting
//!   inside the heap array: a sift never writes to the slab, which made
//!   firing 1,000,000 timers cache-miss bound.
//! - The deadline and delay sit in the closure's box ([`Timed`]), not in the
//!   entry: the allocator's smallest chunk (32 bytes) has room for them
//!   beside a closure of up to 8 bytes, so they cost no memory there.
//! - A [`TimerId`] carries the slab slot plus a serial number that is never
//!   reused, so a stale id can never clear a newer timer that took its slot.
//!
//! One pending timer costs 24 bytes of heap node plus one slab entry (40 bytes)
//! beside its boxed closure; memory is given back as timers are cleared.
//! A stale node stays until the next rebuild or until popped.

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

/// A timer's closure with the times it was armed for. They live in the
/// closure's allocation rather than in the slab entry: for a closure of up to
/// 8 bytes the allocator's smallest chunk holds them at no extra cost.
pub(crate) struct Timed<F: ?Sized> {
    /// When it is due, in ns since the loop's epoch.
    pub(crate) deadline: u64,
    /// The delay it was set with (for an interval, its period), used again
    /// by [`TimerQueue::refresh`] and, for intervals, by every re-arm.
    pub(crate) delay: u64,
    pub(crate) f: F,
}

/// A one-shot timer's box. `Box<Timed<dyn FnOnce>>` could not be called
/// (an unsized `FnOnce` cannot be moved out of a field), so the box is a
/// trait object whose `call` moves the closure out of its own sized type.
pub(crate) trait OnceTimer {
    fn times(&self) -> (u64, u64);
    fn times_mut(&mut self) -> (&mut u64, &mut u64);
    fn call(self: Box<Self>, ev: &mut EventLoop);
}

impl<F: FnOnce(&mut EventLoop)> OnceTimer for Timed<F> {
    fn times(&self) -> (u64, u64) {
        (self.deadline, self.delay)
    }
    fn times_mut(&mut self) -> (&mut u64, &mut u64) {
        (&mut self.deadline, &mut self.delay)
    }
    fn call(self: Box<Self>, ev: &mut EventLoop) {
        (self.f)(ev)
    }
}

pub(crate) type OnceBox = Box<dyn OnceTimer>;
pub(crate) type IntervalBox = Box<Timed<dyn FnMut(&mut EventLoop)>>;

pub(crate) enum Callback {
    Once(OnceBox),
    Every(IntervalBox),
    /// An interval whose closure is out being called right now, with its
    /// period (which a call to `set_period` during the call changes), to
    /// apply when it is re-armed.
    Running(u64),
}

struct Entry {
    /// The timer's serial, with [`UNREF`] set if it does not keep the loop
    /// alive (one word instead of two keeps the entry at 40 bytes).
    tagged_serial: u64,
    /// The `order` of this timer's one live heap node; [`NO_NODE`] while an
    /// interval is being called. Heap nodes with another order are stale.
    order: u64,
    callback: Callback,
}

/// The flag bit of `Entry::tagged_serial`; serials never come near it.
const UNREF: u64 = 1 << 63;
/// `Entry::order` of a timer that has no node in the heap.
const NO_NODE: u64 = u64::MAX;

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
    Once(OnceBox),
    Every(TimerId, IntervalBox),
}

/// Why a timer operation on an id was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The timer is not pending (it ran, or was cleared).
    NotPending,
    /// The operation applies to intervals only.
    NotAnInterval,
}

/// Below this many slots the queue does not bother giving memory back.
const SHRINK_MIN: usize = 4096;
/// Stale nodes tolerated before a rebuild is considered.
const STALE_MIN: usize = 64;

pub(crate) struct TimerQueue {
    heap: Vec<Node>,
    entries: Slab<Entry>,
    next_serial: u64,
    next_order: u64,
    keeping_alive: usize,
    /// Heap nodes whose timer was cleared, refreshed or is being called.
    stale: usize,
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
            stale: 0,
            shrink_below: 0,
        }
    }

    /// Number of timers that exist (pending, or an interval being called).
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
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
    /// [`TimerQueue::purge_stale_top`] first for an exact answer; without it
    /// this may be a stale node's, which only means an early wakeup.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.heap.first().map(|n| n.deadline)
    }

    #[inline]
    fn is_live(&self, node: &Node) -> bool {
        matches!(self.entries.get(node.slot as usize), Some(e) if e.order == node.order)
    }

    /// Pops stale nodes off the top of the heap.
    pub(crate) fn purge_stale_top(&mut self) {
        while self.stale > 0 {
            match self.heap.first() {
                Some(top) if !self.is_live(top) => {
                    self.pop_top();
                    self.stale -= 1;
                }
                _ => return,
            }
        }
    }

    /// Queues a one-shot timer (`Callback::Once`) or an interval.
    pub(crate) fn insert(&mut self, callback: Callback) -> TimerId {
        let deadline = match &callback {
            Callback::Once(t) => t.times().0,
            Callback::Every(t) => t.deadline,
            Callback::Running(_) => unreachable!("a new timer has its closure"),
        };
        let serial = self.next_serial;
        self.next_serial += 1;
        let slot = self.entries.insert(Entry {
            tagged_serial: serial,
            order: NO_NODE,
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
        if self.lookup(id).is_none() {
            return false;
        }
        let entry = self.entries.remove(id.0.slot as usize);
        if entry.order != NO_NODE {
            self.stale += 1;
        }
        if entry.keeps_alive() {
            self.keeping_alive -= 1;
        }
        if self.entries.is_empty() {
            // Only stale nodes are left: drop them all at once.
            self.heap.clear();
            self.stale = 0;
        } else if self.stale >= STALE_MIN && self.stale > self.entries.len() {
            self.rebuild();
        }
        self.release_memory();
        drop(entry); // after the queue is consistent: its drop may do anything
        true
    }

    /// Re-arms a pending timer one delay (for an interval, one period) after
    /// `now`, keeping its id and closure; it then compares as if set at `now`.
    /// Inside an interval's own call there is nothing to do: it re-arms one
    /// period after the call started.
    pub(crate) fn refresh(&mut self, id: TimerId, now: u64) -> Result<(), Refused> {
        let entry = self.lookup(id).ok_or(Refused::NotPending)?;
        let timed_deadline = match &mut entry.callback {
            Callback::Once(t) => {
                let (deadline, delay) = t.times_mut();
                *deadline = now.saturating_add(*delay);
                *deadline
            }
            Callback::Every(t) => {
                t.deadline = now.saturating_add(t.delay);
                t.deadline
            }
            Callback::Running(_) => return Ok(()),
        };
        self.stale += 1;
        self.push(timed_deadline, id.0.slot);
        if self.stale >= STALE_MIN && self.stale > self.entries.len() {
            self.rebuild();
        }
        Ok(())
    }

    /// An interval's period.
    pub(crate) fn period(&self, id: TimerId) -> Result<u64, Refused> {
        match &self.get(id).ok_or(Refused::NotPending)?.callback {
            Callback::Every(t) => Ok(t.delay),
            Callback::Running(p) => Ok(*p),
            Callback::Once(_) => Err(Refused::NotAnInterval),
        }
    }

    /// Sets an interval's period, used from its next re-arm on (libuv's
    /// `uv_timer_set_repeat`): the call already queued keeps its deadline.
    pub(crate) fn set_period(&mut self, id: TimerId, period: u64) -> Result<(), Refused> {
        match &mut self.lookup(id).ok_or(Refused::NotPending)?.callback {
            Callback::Every(t) => t.delay = period,
            Callback::Running(p) => *p = period,
            Callback::Once(_) => return Err(Refused::NotAnInterval),
        }
        Ok(())
    }

    /// The deadline of a pending timer; `None` for an interval being called.
    pub(crate) fn deadline(&self, id: TimerId) -> Result<Option<u64>, Refused> {
        Ok(match &self.get(id).ok_or(Refused::NotPending)?.callback {
            Callback::Once(t) => Some(t.times().0),
            Callback::Every(t) => Some(t.deadline),
            Callback::Running(_) => None,
        })
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
        self.get(id).map(Entry::keeps_alive)
    }

    /// Takes the next timer that is due at `now` and was armed before `mark`.
    ///
    /// A one-shot timer is gone from the queue once returned. An interval stays
    /// (so it can be cleared from its own callback) but is not queued until
    /// [`TimerQueue::rearm`] gives its closure back.
    pub(crate) fn pop_due(&mut self, now: u64, mark: u64) -> Option<Fired> {
        self.purge_stale_top();
        let top = *self.heap.first()?;
        if top.deadline > now || top.order >= mark {
            return None;
        }
        self.pop_top();
        let slot = top.slot as usize;
        let entry = &mut self.entries[slot];
        entry.order = NO_NODE;
        let period = match &entry.callback {
            Callback::Every(t) => t.delay,
            _ => 0,
        };
        match std::mem::replace(&mut entry.callback, Callback::Running(period)) {
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
            Callback::Running(_) => unreachable!("a live node's timer has its closure"),
        }
    }

    /// Queues an interval again after its callback ran, one period after
    /// `started` (the period set during the call, if any). If the interval
    /// was cleared meanwhile, the closure is handed back to be dropped.
    pub(crate) fn rearm(
        &mut self,
        id: TimerId,
        mut interval: IntervalBox,
        started: u64,
    ) -> Option<IntervalBox> {
        match self.lookup(id) {
            Some(entry) => {
                let Callback::Running(period) = entry.callback else {
                    unreachable!("only a running interval is re-armed");
                };
                interval.delay = period;
                interval.deadline = started.saturating_add(interval.delay);
                let deadline = interval.deadline;
                entry.callback = Callback::Every(interval);
                self.push(deadline, id.0.slot);
                None
            }
            None => Some(interval),
        }
    }

    fn get(&self, id: TimerId) -> Option<&Entry> {
        match self.entries.get(id.0.slot as usize) {
            Some(e) if e.serial() == id.0.serial => Some(e),
            _ => None,
        }
    }

    fn lookup(&mut self, id: TimerId) -> Option<&mut Entry> {
        match self.entries.get_mut(id.0.slot as usize) {
            Some(e) if e.serial() == id.0.serial => Some(e),
            _ => None,
        }
    }

    /// Pushes the live node of the timer in `slot`.
    fn push(&mut self, deadline: u64, slot: u32) {
        let order = self.next_order;
        self.next_order += 1;
        self.entries[slot as usize].order = order;
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

    /// Drops every stale node and restores the heap, in O(n).
    fn rebuild(&mut self) {
        let entries = &self.entries;
        self.heap
            .retain(|n| matches!(entries.get(n.slot as usize), Some(e) if e.order == n.order));
        self.stale = 0;
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
            self.heap.clear();
            self.stale = 0;
            if self.entries.capacity() >= SHRINK_MIN {
                self.entries = Slab::new();
                self.heap = Vec::new();
            }
            return;
        }
        if self.heap.capacity() >= SHRINK_MIN && self.heap.len() < self.heap.capacity() / 4 {
            self.heap.shrink_to(self.heap.len() * 2);
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

    fn noop(deadline: u64) -> Callback {
        Callback::Once(Box::new(Timed {
            deadline,
            delay: deadline,
            f: |_: &mut EventLoop| {},
        }))
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
            ids.push((q.insert(noop((i * 7919) % 1000)), (i * 7919) % 1000));
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
    fn refreshes_and_cancels_keep_one_live_node_per_timer() {
        let mut q = TimerQueue::new();
        let ids: Vec<_> = (0..3000u64).map(|i| q.insert(noop(i % 500))).collect();
        let mut expected = std::collections::BTreeMap::new();
        for (k, id) in ids.iter().enumerate() {
            let now = (k as u64 * 31) % 700;
            match k % 4 {
                0 => {
                    assert!(q.cancel(*id));
                }
                1 | 2 => {
                    q.refresh(*id, now).unwrap();
                    q.refresh(*id, now + 1).unwrap();
                    let deadline = now + 1 + (k as u64 % 500);
                    expected.insert(k, deadline);
                }
                _ => {
                    expected.insert(k, k as u64 % 500);
                }
            }
        }
        assert_eq!(q.len(), expected.len());
        let mut fired = Vec::new();
        while let Some(Fired::Once(t)) = q.pop_due(u64::MAX, u64::MAX) {
            fired.push(t.times().0);
        }
        assert!(fired.windows(2).all(|w| w[0] <= w[1]), "deadline order");
        let mut want: Vec<u64> = expected.into_values().collect();
        want.sort_unstable();
        assert_eq!(
            fired, want,
            "each live timer once, at its refreshed deadline"
        );
        assert_eq!(q.keeping_alive(), 0);
        assert!(q.heap.is_empty());
        assert_eq!(q.refresh(ids[1], 0), Err(Refused::NotPending));
    }

    #[test]
    fn memory_is_released_when_cleared() {
        let mut q = TimerQueue::new();
        let ids: Vec<_> = (0..100_000).map(|i| q.insert(noop(i))).collect();
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
