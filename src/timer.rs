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
//! - Callbacks live in a [`Slab`]. A heap node is *live* while its 32-bit
//!   tag equals the one its entry records; every other node is stale. Clearing
//!   is O(1): the entry and its closure go at once and the node turns stale.
//!   Refreshing a timer (libuv's `uv_timer_again`, Node's `refresh()`) pushes
//!   a new node with a new order and tag and leaves the old one stale. Stale nodes
//!   leave the heap when they reach the top, or when they outnumber live
//!   ones and the heap is rebuilt without them (O(n), so amortised O(1) per
//!   clear or refresh). Not tracking each node's position keeps sifting
//!   inside the heap array: a sift never writes to the slab, which made
//!   firing 1,000,000 timers cache-miss bound.
//! - The entry keeps the deadline (for `timer_due_in`) and the delay (for a
//!   refresh, and an interval's period) beside the closure, which stays a
//!   plain box (none at all for a closure that captures nothing).
//! - A [`TimerId`] carries the slab slot plus a serial number that is never
//!   reused, so a stale id can never clear a newer timer that took its slot.
//!
//! - The entry also names where the timer was set (for the alive report, the
//!   slow-callback warning and the timeline): a 16-bit index into the
//!   queue's [`SiteTable`], in the enum's tag word beside the node tag, where
//!   there were spare bytes. An 8-byte `&Location` would have grown the
//!   entry to 56 bytes, 8 MB more for a million timers.
//!
//! One pending timer costs 24 bytes of heap node plus one slab entry (48 bytes)
//! beside its boxed closure; memory is given back as timers are cleared.
//! A stale node stays until the next rebuild or until popped.

use slab::Slab;

use crate::diag::{Site, SiteIndex, SiteTable};
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

pub(crate) type OnceBox = Box<dyn FnOnce(&mut EventLoop)>;
pub(crate) type IntervalBox = Box<dyn FnMut(&mut EventLoop)>;

/// A timer's closure, with `node`: the tag of its one live heap node (heap
/// nodes of the slot with other tags are stale). 32 bits are exact because
/// a forced rebuild every 2^31 tags drops stale nodes and re-tags live ones
/// (see [`REBUILD_EVERY`]); they fit in the enum's tag word, which keeps the
/// entry at 48 bytes; so does `site`, the index of where it was set.
pub(crate) enum Callback {
    Once {
        f: OnceBox,
        node: u32,
        site: SiteIndex,
    },
    Every {
        f: IntervalBox,
        node: u32,
        site: SiteIndex,
    },
    /// An interval whose closure is out being called right now (no node).
    Running { site: SiteIndex },
}

impl Callback {
    /// A new one-shot timer's callback (its node and site are set by
    /// [`TimerQueue::insert`]).
    pub(crate) fn once(f: OnceBox) -> Callback {
        Callback::Once {
            f,
            node: 0,
            site: SiteTable::UNKNOWN,
        }
    }

    /// A new interval's callback.
    pub(crate) fn every(f: IntervalBox) -> Callback {
        Callback::Every {
            f,
            node: 0,
            site: SiteTable::UNKNOWN,
        }
    }

    fn node(&self) -> Option<u32> {
        match self {
            Callback::Once { node, .. } | Callback::Every { node, .. } => Some(*node),
            Callback::Running { .. } => None,
        }
    }

    fn site(&self) -> SiteIndex {
        match self {
            Callback::Once { site, .. }
            | Callback::Every { site, .. }
            | Callback::Running { site } => *site,
        }
    }

    fn set_site(&mut self, to: SiteIndex) {
        match self {
            Callback::Once { site, .. }
            | Callback::Every { site, .. }
            | Callback::Running { site } => *site = to,
        }
    }
}

struct Entry {
    /// The timer's serial, with [`UNREF`] set if it does not keep the loop
    /// alive (one word instead of two).
    tagged_serial: u64,
    /// When it is due (ns since the loop's epoch); meaningless while running.
    deadline: u64,
    /// The delay it was set with, or an interval's period: used again by
    /// [`TimerQueue::refresh`] and by every re-arm of an interval.
    delay: u64,
    callback: Callback,
}

/// The flag bit of `Entry::tagged_serial`; serials never come near it.
const UNREF: u64 = 1 << 63;
/// Tags handed out between forced rebuilds. A rebuild drops every stale
/// node and gives every live node a fresh tag, so any node's tag is less
/// than 2^31 + (live timers) tags old, and 32 bits tell nodes apart.
const REBUILD_EVERY: u64 = 1 << 31;

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
    /// The tag its entry holds while this node is its live one (in what
    /// would be padding: the node stays 24 bytes).
    tag: u32,
}

impl Node {
    #[inline]
    fn before(&self, other: &Node) -> bool {
        (self.deadline, self.order) < (other.deadline, other.order)
    }
}

/// What [`TimerQueue::pop_due`] hands to the loop: the closure, where the
/// timer was set, and its deadline (how late it runs is the loop's lag).
pub(crate) struct Fired {
    pub(crate) call: Call,
    pub(crate) site: Option<Site>,
    pub(crate) deadline: u64,
}

/// The closure of a due timer.
pub(crate) enum Call {
    Once(OnceBox),
    Every(TimerId, IntervalBox),
}

/// A pending timer, as the alive report lists it.
pub(crate) struct TimerInfo {
    pub(crate) id: TimerId,
    pub(crate) interval: bool,
    pub(crate) keeps_alive: bool,
    pub(crate) site: Option<Site>,
    /// `None` while an interval's callback runs.
    pub(crate) deadline: Option<u64>,
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
    /// The next node tag (wrapping), and how many were handed out since the
    /// last rebuild (see [`REBUILD_EVERY`]).
    next_tag: u32,
    tags_since_rebuild: u64,
    /// Try to shrink the slab again only once `len` falls below this.
    shrink_below: usize,
    /// Where timers were set.
    sites: SiteTable,
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
            next_tag: 0,
            tags_since_rebuild: 0,
            shrink_below: 0,
            sites: SiteTable::default(),
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
        let entry = self.entries.get(node.slot as usize);
        entry.and_then(|e| e.callback.node()) == Some(node.tag)
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

    /// Queues a one-shot timer (`Callback::Once`) or an interval, due at
    /// `deadline`, set with `delay` (an interval's period).
    pub(crate) fn insert(
        &mut self,
        deadline: u64,
        delay: u64,
        mut callback: Callback,
        site: Site,
    ) -> TimerId {
        callback.set_site(self.sites.intern(site));
        let serial = self.next_serial;
        self.next_serial += 1;
        let slot = self.entries.insert(Entry {
            tagged_serial: serial,
            deadline,
            delay,
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
        if entry.callback.node().is_some() {
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
        if matches!(entry.callback, Callback::Running { .. }) {
            return Ok(());
        }
        entry.deadline = now.saturating_add(entry.delay);
        let deadline = entry.deadline;
        self.stale += 1;
        self.push(deadline, id.0.slot);
        if self.stale >= STALE_MIN && self.stale > self.entries.len() {
            self.rebuild();
        }
        Ok(())
    }

    /// An interval's period.
    pub(crate) fn period(&self, id: TimerId) -> Result<u64, Refused> {
        let entry = self.get(id).ok_or(Refused::NotPending)?;
        match entry.callback {
            Callback::Every { .. } | Callback::Running { .. } => Ok(entry.delay),
            Callback::Once { .. } => Err(Refused::NotAnInterval),
        }
    }

    /// Sets an interval's period, used from its next re-arm on (libuv's
    /// `uv_timer_set_repeat`): the call already queued keeps its deadline.
    pub(crate) fn set_period(&mut self, id: TimerId, period: u64) -> Result<(), Refused> {
        let entry = self.lookup(id).ok_or(Refused::NotPending)?;
        match entry.callback {
            Callback::Every { .. } | Callback::Running { .. } => entry.delay = period,
            Callback::Once { .. } => return Err(Refused::NotAnInterval),
        }
        Ok(())
    }

    /// The deadline of a pending timer; `None` for an interval being called.
    pub(crate) fn deadline(&self, id: TimerId) -> Result<Option<u64>, Refused> {
        let entry = self.get(id).ok_or(Refused::NotPending)?;
        Ok(match entry.callback {
            Callback::Running { .. } => None,
            _ => Some(entry.deadline),
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
        let site = entry.callback.site();
        let call = match std::mem::replace(&mut entry.callback, Callback::Running { site }) {
            Callback::Every { f: interval, .. } => Call::Every(
                TimerId(Key {
                    slot: top.slot,
                    serial: entry.serial(),
                }),
                interval,
            ),
            Callback::Once { f, .. } => {
                let entry = self.entries.remove(slot);
                if entry.keeps_alive() {
                    self.keeping_alive -= 1;
                }
                // Memory is given back by the caller once the due callbacks
                // ran: freeing a large heap can take milliseconds.
                Call::Once(f)
            }
            Callback::Running { .. } => unreachable!("a live node's timer has its closure"),
        };
        Some(Fired {
            call,
            site: self.sites.get(site),
            deadline: top.deadline,
        })
    }

    /// Queues an interval again after its callback ran, one period after
    /// `started` (the period set during the call, if any). If the interval
    /// was cleared meanwhile, the closure is handed back to be dropped.
    pub(crate) fn rearm(
        &mut self,
        id: TimerId,
        interval: IntervalBox,
        started: u64,
    ) -> Option<IntervalBox> {
        match self.lookup(id) {
            Some(entry) => {
                debug_assert!(matches!(entry.callback, Callback::Running { .. }));
                entry.deadline = started.saturating_add(entry.delay);
                let deadline = entry.deadline;
                let site = entry.callback.site();
                entry.callback = Callback::Every {
                    f: interval,
                    node: 0,
                    site,
                };
                self.push(deadline, id.0.slot);
                None
            }
            None => Some(interval),
        }
    }

    /// Every timer, pending or being called, for the alive report.
    pub(crate) fn list(&self) -> impl Iterator<Item = TimerInfo> + '_ {
        self.entries.iter().map(|(slot, e)| TimerInfo {
            id: TimerId(Key::new(slot, e.serial())),
            interval: !matches!(e.callback, Callback::Once { .. }),
            keeps_alive: e.keeps_alive(),
            site: self.sites.get(e.callback.site()),
            deadline: match e.callback {
                Callback::Running { .. } => None,
                _ => Some(e.deadline),
            },
        })
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

    /// A fresh node tag for the timer in `slot`, stored in its entry.
    fn tag(&mut self, slot: u32) -> u32 {
        let tag = self.next_tag;
        self.next_tag = tag.wrapping_add(1);
        self.tags_since_rebuild += 1;
        if let Callback::Once { node, .. } | Callback::Every { node, .. } =
            &mut self.entries[slot as usize].callback
        {
            *node = tag;
        }
        tag
    }

    /// Pushes the live node of the timer in `slot`. Every 2^31 tags, a
    /// rebuild drops the stale nodes and re-tags the live ones (amortised
    /// nothing, and it keeps the 32-bit tags exact).
    fn push(&mut self, deadline: u64, slot: u32) {
        let order = self.next_order;
        self.next_order += 1;
        let tag = self.tag(slot);
        self.heap.push(Node {
            deadline,
            order,
            slot,
            tag,
        });
        self.sift_up(self.heap.len() - 1);
        if self.tags_since_rebuild >= REBUILD_EVERY {
            self.rebuild(); // after the entry's tag moved to the new node
        }
    }

    fn pop_top(&mut self) {
        let last = self.heap.pop().expect("pop_top of an empty heap");
        if !self.heap.is_empty() {
            self.heap[0] = last;
            self.sift_down(0);
        }
    }

    /// Drops every stale node, gives each live one a fresh tag, and restores
    /// the heap, in O(n).
    fn rebuild(&mut self) {
        let entries = &self.entries;
        self.heap.retain(|n| {
            let entry = entries.get(n.slot as usize);
            entry.and_then(|e| e.callback.node()) == Some(n.tag)
        });
        self.tags_since_rebuild = 0;
        for k in 0..self.heap.len() {
            let slot = self.heap[k].slot;
            self.heap[k].tag = self.tag(slot);
        }
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

    fn noop() -> Callback {
        Callback::once(Box::new(|_| {}))
    }

    #[test]
    fn storage_stays_small() {
        assert_eq!(std::mem::size_of::<Node>(), 24);
        // The site index lives in the tag word's spare bytes: no growth.
        assert_eq!(std::mem::size_of::<Callback>(), 24);
        assert_eq!(std::mem::size_of::<Entry>(), 48);
    }

    #[test]
    fn heap_order_survives_random_cancels() {
        let mut q = TimerQueue::new();
        let mut ids = Vec::new();
        // A deterministic shuffle of deadlines.
        for i in 0..2000u64 {
            ids.push((
                q.insert((i * 7919) % 1000, 0, noop(), crate::diag::here()),
                (i * 7919) % 1000,
            ));
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
        let ids: Vec<_> = (0..3000u64)
            .map(|i| q.insert(i % 500, i % 500, noop(), crate::diag::here()))
            .collect();
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
        loop {
            q.purge_stale_top();
            let Some(top) = q.heap.first().copied() else {
                break;
            };
            assert!(matches!(
                q.pop_due(u64::MAX, u64::MAX),
                Some(Fired {
                    call: Call::Once(_),
                    ..
                })
            ));
            fired.push(top.deadline);
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
    fn node_tags_stay_exact_across_the_32_bit_wrap() {
        let mut q = TimerQueue::new();
        q.next_tag = u32::MAX - 2;
        let a = q.insert(10, 10, noop(), crate::diag::here());
        let b = q.insert(10, 10, noop(), crate::diag::here());
        for now in 0..6 {
            q.refresh(a, now).unwrap(); // tags wrap past 2^32 here
        }
        assert_eq!(q.stale, 6);
        // A forced rebuild is due once 2^31 tags were handed out.
        q.tags_since_rebuild = REBUILD_EVERY - 1;
        q.refresh(b, 0).unwrap();
        assert_eq!(q.stale, 0, "the forced rebuild dropped every stale node");
        assert_eq!(q.heap.len(), 2);
        let mut popped = 0;
        while q.pop_due(u64::MAX, u64::MAX).is_some() {
            popped += 1;
        }
        assert_eq!(popped, 2);
    }

    /// Review finding: a timer that stays pending while 2^32 tags go by must
    /// not share its tag with a newer timer of its slot once it goes stale.
    /// Forced rebuilds give live nodes fresh tags, so it cannot.
    #[test]
    fn a_long_lived_timer_never_aliases_a_newer_timer_of_its_slot() {
        let mut q = TimerQueue::new();
        let _keeper = q.insert(u64::MAX - 1, 0, noop(), crate::diag::here());
        let old_tag = q.next_tag;
        let a = q.insert(1000, 1000, noop(), crate::diag::here()); // tag `old_tag`, stays pending
                                                                   // 2^31 tags later a forced rebuild re-tags `a`...
        q.tags_since_rebuild = REBUILD_EVERY - 1;
        let c = q.insert(u64::MAX - 1, 0, noop(), crate::diag::here());
        assert_eq!(
            q.tags_since_rebuild, 3,
            "rebuilt, three live nodes re-tagged"
        );
        assert_ne!(q.get(a).unwrap().callback.node(), Some(old_tag));
        // ...so when `a` goes stale and its slot's next timer gets the old
        // tag number again (2^32 tags after it was first given), no alias.
        assert!(q.cancel(a));
        q.next_tag = old_tag;
        let b = q.insert(5000, 5000, noop(), crate::diag::here());
        assert_eq!(b.0.slot, a.0.slot);
        assert_eq!(q.get(b).unwrap().callback.node(), Some(old_tag));
        assert!(
            q.pop_due(1000, u64::MAX).is_none(),
            "b is due at 5000, not 1000"
        );
        assert!(matches!(
            q.pop_due(5000, u64::MAX),
            Some(Fired {
                call: Call::Once(_),
                ..
            })
        ));
        assert!(q.cancel(c));
    }

    #[test]
    fn memory_is_released_when_cleared() {
        let mut q = TimerQueue::new();
        let ids: Vec<_> = (0..100_000)
            .map(|i| q.insert(i, 0, noop(), crate::diag::here()))
            .collect();
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
