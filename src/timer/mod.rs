//! The timer queue: pending one-shot and interval timers, ordered by deadline.
//!
//! Why it looks like this:
//!
//! - Deadlines are `u64` nanoseconds since the loop's epoch. That keeps the full
//!   resolution of `Instant` (no rounding to milliseconds, guarantee 13), makes a
//!   comparison one instruction, and lets huge delays saturate at `u64::MAX`
//!   ("never") instead of overflowing.
//! - The order is a binary min-heap of 16-byte plain nodes `(deadline, tag,
//!   slot)`. `tag` is a counter taken each time a timer is armed, so equal
//!   deadlines run in the order they were set (guarantee 2) and the loop can
//!   tell a timer armed during the current pass from one that was already
//!   waiting (the *mark*, guarantee 4).
//! - A node is *live* while its entry records its tag; every other node is
//!   stale. Clearing is O(1): the entry and its closure go at once and the
//!   node turns stale. Refreshing (libuv's `uv_timer_again`, Node's
//!   `refresh()`) pushes a new node and leaves the old one stale. Stale nodes
//!   leave the heap when they reach the top, or when they outnumber live ones
//!   and the heap is compacted (O(n), so amortised O(1) per clear or
//!   refresh). Not tracking node positions keeps sifts inside the heap array:
//!   a sift never touches an entry, which made firing 1,000,000 timers
//!   cache-miss bound when it did.
//! - Tags grow by one per arm; before they reach 2^31 the live nodes are
//!   re-numbered from 0 in the same order (and the mark with them), so a
//!   plain `u32` comparison is exact and a stale node never shares a tag with
//!   a live one.
//! - Entries are 30 bytes, packed: the closure (8 bytes: the closure itself
//!   when it captures at most one word, else a pointer to its box, see
//!   [`closure`]), the deadline (for `timer_due_in`), a 32-bit serial, the
//!   live node's tag, the delay (32 bits, see [`encode_delay`]) and a 16-bit
//!   word: the *kind* (an index into a per-loop table of closure vtable and
//!   creation site pairs) and two flags. A [`TimerId`] is the slot and its
//!   serial; a slot's serial goes up each time it is freed, so a stale id
//!   never clears a newer timer that took its slot (and a slot whose serial
//!   runs out is retired, not reused).
//!
//! Measured with W3 (a million one-shot timers whose closures capture one
//! word; `cargo bench --bench workloads -- W3`), side by side with the design
//! before (a slab entry of 48 bytes, a 24-byte node and a boxed closure, a
//! 32-byte allocation): peak RSS 47.2 MB instead of 103.6 (48 bytes per
//! timer, the process's own 2.2 MB included), setup 0.079 s instead of
//! 0.159, set-and-clear (W4) 7.2 M/s instead of 5.7, the last timer as
//! punctual (0.18 ms late). A hierarchical wheel was the other candidate: it
//! needs two links per entry and still a sort of each due slot to keep exact
//! deadline order, for no less memory.

mod closure;

use std::collections::HashMap;
use std::marker::PhantomData;

use crate::diag::Site;
use crate::id::Key32;
use crate::EventLoop;
use closure::{Held, Kind, Kinds, Payload};

crate::id::id_type! {
    /// Identifies a timer set with [`EventLoop::set_timeout`] or
    /// [`EventLoop::set_interval`].
    ///
    /// Ids are never reused: clearing a timer that already ran or was
    /// cleared is a harmless `false`, even if a newer timer now occupies the
    /// same storage.
    TimerId,
    crate::id::Key32
}

/// One slot of the queue: a pending timer, an interval whose closure is out
/// being called (`RUNNING`), or a vacant slot (kind `VACANT`, `node` links
/// the free list). Packed to 30 bytes: a million timers are 30 MB.
#[repr(C, packed(2))]
#[derive(Clone, Copy)]
struct Entry {
    payload: Payload,
    /// When it is due (ns since the loop's epoch); meaningless while running.
    deadline: u64,
    serial: u32,
    /// The tag of the live node; the next free slot while vacant.
    node: u32,
    /// The delay it was set with, or an interval's period ([`encode_delay`]).
    delay: u32,
    /// The kind (low 14 bits) and the `UNREF` and `RUNNING` flags.
    kind_flags: u16,
}

const KIND_MASK: u16 = (1 << 14) - 1;
/// The kind of a vacant slot.
const VACANT: u16 = KIND_MASK;
/// The timer does not keep the loop alive.
const UNREF: u16 = 1 << 14;
/// An interval whose closure is being called (it has no live node).
const RUNNING: u16 = 1 << 15;
/// No slot (end of the free list).
const NONE: u32 = u32::MAX;
/// A serial never handed out: a slot that reaches it is retired.
const RETIRED: u32 = u32::MAX;
/// Tags are re-numbered before they reach this.
const RETAG_AT: u32 = 1 << 31;
/// New slots start at a serial floor that stays below this (see
/// [`TimerQueue::truncate_entries`]).
const FLOOR_MAX: u64 = 1 << 31;

impl Entry {
    fn kind(&self) -> Kind {
        self.kind_flags & KIND_MASK
    }
    fn is_vacant(&self) -> bool {
        self.kind() == VACANT
    }
    fn is_running(&self) -> bool {
        self.kind_flags & RUNNING != 0
    }
    fn keeps_alive(&self) -> bool {
        self.kind_flags & UNREF == 0
    }
}

/// The delay's 32-bit form: two bits of unit (ns, µs, ms) and 30 of count,
/// exact for any delay that is a whole number of nanoseconds below 1.07 s,
/// of microseconds below 17.9 minutes or of milliseconds below 12.4 days;
/// any other delay (rare) is kept in a side table and coded [`LONG_DELAY`].
#[inline]
fn encode_delay(ns: u64) -> Option<u32> {
    const COUNT_MAX: u64 = (1 << 30) - 1;
    [1, 1_000, 1_000_000]
        .iter()
        .zip(0u32..)
        .find(|&(&scale, _)| ns % scale == 0 && ns / scale <= COUNT_MAX)
        .map(|(&scale, unit)| (unit << 30) | (ns / scale) as u32)
}

/// The code of a delay kept in [`TimerQueue::long_delays`].
const LONG_DELAY: u32 = 3 << 30;

#[derive(Clone, Copy)]
struct Node {
    deadline: u64,
    tag: u32,
    slot: u32,
}

impl Node {
    #[inline]
    fn before(&self, other: &Node) -> bool {
        (self.deadline, self.tag) < (other.deadline, other.tag)
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
    Once(Held),
    Every(TimerId, Held),
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
/// Stale nodes tolerated before a compaction is considered.
const STALE_MIN: usize = 64;

pub(crate) struct TimerQueue {
    heap: Vec<Node>,
    entries: Vec<Entry>,
    /// Head of the list of vacant slots (through `Entry::node`).
    free: u32,
    /// Timers that exist (pending, or an interval being called).
    len: usize,
    /// The serial of a slot made past the end of `entries`: above every
    /// serial of a slot that was truncated away.
    serial_floor: u32,
    /// The highest next serial of a vacated slot (`RETIRED` counts as
    /// 2^32): the floor, when every slot goes at once.
    serial_high: u64,
    keeping_alive: usize,
    /// Heap nodes whose timer was cleared, refreshed or is being called.
    stale: usize,
    next_tag: u32,
    /// Timers armed at or after this tag wait for the next timer phase.
    mark: u32,
    /// Delays that have no 32-bit form, by slot.
    long_delays: HashMap<u32, u64>,
    kinds: Kinds,
    /// Try to shrink `entries` again only once `len` falls below this.
    shrink_below: usize,
    /// The entries own closures that may be neither `Send` nor `Sync`
    /// (their bytes alone would make the queue both).
    _owns: PhantomData<*const ()>,
}

impl TimerQueue {
    pub(crate) fn new() -> TimerQueue {
        TimerQueue {
            heap: Vec::new(),
            entries: Vec::new(),
            free: NONE,
            len: 0,
            serial_floor: 1,
            serial_high: 0,
            keeping_alive: 0,
            stale: 0,
            next_tag: 0,
            mark: 0,
            long_delays: HashMap::new(),
            kinds: Kinds::new(),
            shrink_below: 0,
            _owns: PhantomData,
        }
    }

    /// Number of timers that exist (pending, or an interval being called).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Number of timers that keep the loop alive.
    #[inline]
    pub(crate) fn keeping_alive(&self) -> usize {
        self.keeping_alive
    }

    /// Starts a timer phase: timers armed from now on wait for the next one.
    pub(crate) fn begin_phase(&mut self) {
        self.mark = self.next_tag;
    }

    /// Earliest deadline, if any timer is queued. Call
    /// [`TimerQueue::purge_stale_top`] first for an exact answer; without it
    /// this may be a stale node's, which only means an early wakeup.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.heap.first().map(|n| n.deadline)
    }

    #[inline]
    fn is_live(&self, node: &Node) -> bool {
        let e = &self.entries[node.slot as usize];
        !e.is_vacant() && !e.is_running() && { e.node } == node.tag
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

    /// Queues a one-shot timer due at `deadline`, set with `delay` at `site`.
    #[inline]
    pub(crate) fn insert_once<F: FnOnce(&mut EventLoop) + 'static>(
        &mut self,
        deadline: u64,
        delay: u64,
        f: F,
        site: Site,
    ) -> TimerId {
        let (payload, kind) = self.kinds.once(f, site);
        self.insert(deadline, delay, payload, kind)
    }

    /// Queues an interval of period `period`, first due at `deadline`.
    #[inline]
    pub(crate) fn insert_interval<F: FnMut(&mut EventLoop) + 'static>(
        &mut self,
        deadline: u64,
        period: u64,
        f: F,
        site: Site,
    ) -> TimerId {
        let (payload, kind) = self.kinds.interval(f, site);
        self.insert(deadline, period, payload, kind)
    }

    #[inline]
    fn insert(&mut self, deadline: u64, delay: u64, payload: Payload, kind: Kind) -> TimerId {
        let entry = Entry {
            payload,
            deadline,
            serial: 0,
            node: 0,
            delay: encode_delay(delay).unwrap_or(LONG_DELAY),
            kind_flags: kind,
        };
        let slot = match self.free {
            NONE => {
                let slot = u32::try_from(self.entries.len())
                    .ok()
                    .filter(|&s| s != NONE)
                    .expect("fewer than 4 billion timers");
                self.entries.push(Entry {
                    serial: self.serial_floor,
                    ..entry
                });
                slot
            }
            slot => {
                let e = &mut self.entries[slot as usize];
                self.free = e.node;
                *e = Entry {
                    serial: e.serial,
                    ..entry
                };
                slot
            }
        };
        if entry.delay == LONG_DELAY {
            self.long_delays.insert(slot, delay);
        }
        self.len += 1;
        self.keeping_alive += 1;
        self.shrink_below = self.shrink_below.max(self.len / 4);
        self.push(deadline, slot);
        TimerId(Key32 {
            slot,
            serial: self.entries[slot as usize].serial,
        })
    }

    /// The slot of a timer that exists.
    #[inline]
    fn find(&self, id: TimerId) -> Option<usize> {
        let slot = id.0.slot as usize;
        let e = self.entries.get(slot)?;
        (!e.is_vacant() && e.serial == id.0.serial).then_some(slot)
    }

    /// The delay (or period) of the timer in `slot`.
    fn delay(&self, slot: usize) -> u64 {
        let code = self.entries[slot].delay;
        if code == LONG_DELAY {
            return self.long_delays[&(slot as u32)];
        }
        u64::from(code & ((1 << 30) - 1)) * [1, 1_000, 1_000_000][(code >> 30) as usize]
    }

    fn set_delay(&mut self, slot: usize, delay: u64) {
        let code = encode_delay(delay).unwrap_or(LONG_DELAY);
        if code == LONG_DELAY {
            self.long_delays.insert(slot as u32, delay);
        } else if self.entries[slot].delay == LONG_DELAY {
            self.long_delays.remove(&(slot as u32));
        }
        self.entries[slot].delay = code;
    }

    /// Frees a slot (its closure is someone else's to drop). Its serial goes
    /// up so the id that named it is stale; a slot out of serials is retired.
    #[inline]
    fn vacate(&mut self, slot: usize) {
        let e = &mut self.entries[slot];
        if e.delay == LONG_DELAY {
            self.long_delays.remove(&(slot as u32));
        }
        if e.keeps_alive() {
            self.keeping_alive -= 1;
        }
        e.kind_flags = VACANT;
        if e.serial >= RETIRED - 1 {
            e.serial = RETIRED;
        } else {
            e.serial += 1;
            e.node = self.free;
            self.free = slot as u32;
        }
        let next = u64::from(e.serial) + u64::from(e.serial == RETIRED);
        self.serial_high = self.serial_high.max(next);
        self.len -= 1;
    }

    /// The closure of the timer in `slot`, taken out of its entry.
    #[inline]
    fn take(&self, slot: usize) -> Held {
        let e = self.entries[slot];
        // SAFETY: an occupied, non-running entry's payload was made with its
        // kind's vtable; the caller vacates the entry or marks it running,
        // so the payload is owned by the `Held` alone.
        unsafe { Held::new(e.payload, self.kinds.vtable(e.kind())) }
    }

    /// Removes a timer. True if it was pending (or is an interval being called).
    #[inline]
    pub(crate) fn cancel(&mut self, id: TimerId) -> bool {
        let Some(slot) = self.find(id) else {
            return false;
        };
        // A running interval's closure is held by the loop, which drops it.
        let entry = self.entries[slot];
        if !entry.is_running() {
            self.stale += 1;
        }
        self.vacate(slot);
        if self.len == 0 {
            // Only stale nodes are left: drop them all at once.
            self.heap.clear();
            self.stale = 0;
        } else if self.stale >= STALE_MIN && self.stale > self.len {
            self.compact();
        }
        self.release_memory();
        // After the queue is consistent: the closure's drop may do anything.
        // (Made into a `Held` only here: moving one through memory stalls
        // on store forwarding, a tenth of W4's time.)
        if !entry.is_running() {
            // SAFETY: the entry was pending, so its payload was made with its
            // kind's vtable; the slot is vacant now, so nothing else owns it.
            drop(unsafe { Held::new(entry.payload, self.kinds.vtable(entry.kind())) });
        }
        true
    }

    /// Re-arms a pending timer one delay (for an interval, one period) after
    /// `now`, keeping its id and closure; it then compares as if set at `now`.
    /// Inside an interval's own call there is nothing to do: it re-arms one
    /// period after the call started.
    pub(crate) fn refresh(&mut self, id: TimerId, now: u64) -> Result<(), Refused> {
        let slot = self.find(id).ok_or(Refused::NotPending)?;
        if self.entries[slot].is_running() {
            return Ok(());
        }
        let deadline = now.saturating_add(self.delay(slot));
        self.entries[slot].deadline = deadline;
        self.push(deadline, slot as u32);
        self.stale += 1; // the node it had
        if self.stale >= STALE_MIN && self.stale > self.len {
            self.compact();
        }
        Ok(())
    }

    fn interval_slot(&self, id: TimerId) -> Result<usize, Refused> {
        let slot = self.find(id).ok_or(Refused::NotPending)?;
        match self.kinds.vtable(self.entries[slot].kind()).interval {
            true => Ok(slot),
            false => Err(Refused::NotAnInterval),
        }
    }

    /// An interval's period.
    pub(crate) fn period(&self, id: TimerId) -> Result<u64, Refused> {
        self.interval_slot(id).map(|slot| self.delay(slot))
    }

    /// Sets an interval's period, used from its next re-arm on (libuv's
    /// `uv_timer_set_repeat`): the call already queued keeps its deadline.
    pub(crate) fn set_period(&mut self, id: TimerId, period: u64) -> Result<(), Refused> {
        let slot = self.interval_slot(id)?;
        self.set_delay(slot, period);
        Ok(())
    }

    /// The deadline of a pending timer; `None` for an interval being called.
    pub(crate) fn deadline(&self, id: TimerId) -> Result<Option<u64>, Refused> {
        let e = &self.entries[self.find(id).ok_or(Refused::NotPending)?];
        Ok((!e.is_running()).then_some(e.deadline))
    }

    /// Sets whether a timer keeps the loop alive. False if the id is stale.
    pub(crate) fn set_ref(&mut self, id: TimerId, keep_alive: bool) -> bool {
        let Some(slot) = self.find(id) else {
            return false;
        };
        let e = &mut self.entries[slot];
        match (e.keeps_alive(), keep_alive) {
            (false, true) => {
                e.kind_flags &= !UNREF;
                self.keeping_alive += 1;
            }
            (true, false) => {
                e.kind_flags |= UNREF;
                self.keeping_alive -= 1;
            }
            _ => {}
        }
        true
    }

    /// `Some(keeps_alive)` for a live timer.
    pub(crate) fn has_ref(&self, id: TimerId) -> Option<bool> {
        self.find(id).map(|slot| self.entries[slot].keeps_alive())
    }

    /// Takes the next timer that is due at `now` and was armed before the
    /// current phase began ([`TimerQueue::begin_phase`]).
    ///
    /// A one-shot timer is gone from the queue once returned. An interval stays
    /// (so it can be cleared from its own callback) but is not queued until
    /// [`TimerQueue::rearm`] gives its closure back.
    pub(crate) fn pop_due(&mut self, now: u64) -> Option<Fired> {
        self.purge_stale_top();
        let top = *self.heap.first()?;
        if top.deadline > now || top.tag >= self.mark {
            return None;
        }
        self.pop_top();
        let slot = top.slot as usize;
        let kind = self.entries[slot].kind();
        let closure = self.take(slot);
        let call = if self.kinds.vtable(kind).interval {
            self.entries[slot].kind_flags |= RUNNING;
            let serial = self.entries[slot].serial;
            Call::Every(
                TimerId(Key32 {
                    slot: top.slot,
                    serial,
                }),
                closure,
            )
        } else {
            // Memory is given back by the caller once the due callbacks
            // ran: freeing a large heap can take milliseconds.
            self.vacate(slot);
            Call::Once(closure)
        };
        Some(Fired {
            call,
            site: self.kinds.site(kind),
            deadline: top.deadline,
        })
    }

    /// Queues an interval again after its callback ran, one period after
    /// `started` (the period set during the call, if any). If the interval
    /// was cleared meanwhile, the closure is handed back to be dropped.
    ///
    /// The id alone does not prove the entry is this closure's: a callback
    /// may have swapped the loop for another one (`mem::swap` on its
    /// `&mut EventLoop`), whose timer of the same id has a closure of
    /// another type. So the entry must be running an interval of the same
    /// vtable, else the closure is handed back too.
    pub(crate) fn rearm(&mut self, id: TimerId, closure: Held, started: u64) -> Option<Held> {
        let ours = |e: &Entry| {
            e.is_running() && std::ptr::eq(self.kinds.vtable(e.kind()), closure.vtable())
        };
        let Some(slot) = self.find(id).filter(|&slot| ours(&self.entries[slot])) else {
            return Some(closure);
        };
        let deadline = started.saturating_add(self.delay(slot));
        let e = &mut self.entries[slot];
        e.payload = closure.into_raw().0;
        e.kind_flags &= !RUNNING;
        e.deadline = deadline;
        self.push(deadline, slot as u32);
        None
    }

    /// Every timer, pending or being called, for the alive report.
    pub(crate) fn list(&self) -> impl Iterator<Item = TimerInfo> + '_ {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.is_vacant())
            .map(|(slot, e)| TimerInfo {
                id: TimerId(Key32 {
                    slot: slot as u32,
                    serial: e.serial,
                }),
                interval: self.kinds.vtable(e.kind()).interval,
                keeps_alive: e.keeps_alive(),
                site: self.kinds.site(e.kind()),
                deadline: (!e.is_running()).then_some(e.deadline),
            })
    }

    /// Pushes the live node of the timer in `slot`, with a fresh tag.
    #[inline]
    fn push(&mut self, deadline: u64, slot: u32) {
        if self.next_tag >= RETAG_AT {
            self.retag();
        }
        let tag = self.next_tag;
        self.next_tag += 1;
        self.entries[slot as usize].node = tag;
        let node = Node {
            deadline,
            tag,
            slot,
        };
        self.heap.push(node);
        self.sift_up(self.heap.len() - 1, node);
    }

    fn pop_top(&mut self) {
        let last = self.heap.pop().expect("pop_top of an empty heap");
        if !self.heap.is_empty() {
            self.heap[0] = last;
            self.sift_down(0);
        }
    }

    /// Drops every stale node and restores the heap, in O(n).
    fn compact(&mut self) {
        let mut heap = std::mem::take(&mut self.heap);
        heap.retain(|n| self.is_live(n));
        self.heap = heap;
        self.stale = 0;
        self.heapify();
    }

    /// Drops every stale node and numbers the live ones from 0 in their
    /// order (the mark moves with them), so tags never reach 2^32. Every
    /// 2^31 arms: O(n log n) then, nothing otherwise.
    fn retag(&mut self) {
        let mut heap = std::mem::take(&mut self.heap);
        heap.retain(|n| self.is_live(n));
        heap.sort_unstable_by_key(|n| n.tag);
        self.mark = heap.partition_point(|n| n.tag < self.mark) as u32;
        for (tag, node) in (0u32..).zip(heap.iter_mut()) {
            node.tag = tag;
            self.entries[node.slot as usize].node = tag;
        }
        self.next_tag = heap.len() as u32;
        self.heap = heap;
        self.stale = 0;
        self.heapify();
    }

    fn heapify(&mut self) {
        for pos in (0..self.heap.len() / 2).rev() {
            self.sift_down(pos);
        }
    }

    #[inline]
    /// Moves `node`, just pushed at `pos`, up to its place. It is passed in,
    /// not read back: a load of the store just made stalls the pipeline
    /// (store forwarding fails across its two 32-bit halves).
    fn sift_up(&mut self, mut pos: usize, node: Node) {
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
    /// the heap is dense and shrinks at a quarter full; the entries can only
    /// drop their vacant tail, so after each try the next one waits until
    /// `len` halves.
    #[inline]
    pub(crate) fn release_memory(&mut self) {
        let len = self.len;
        // The common case, first: nothing to give back.
        if len != 0 && len >= self.heap.capacity() / 4 && len >= self.shrink_below {
            return;
        }
        self.give_back();
    }

    fn give_back(&mut self) {
        let len = self.len;
        if len == 0 {
            self.heap.clear();
            self.stale = 0;
            if self.entries.capacity() >= SHRINK_MIN {
                self.truncate_entries(0);
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
            // Only worth an O(n) pass if it frees most of the slots.
            let end = self
                .entries
                .iter()
                .rposition(|e| !e.is_vacant())
                .map_or(0, |i| i + 1);
            if end < self.entries.len() / 2 {
                self.truncate_entries(end);
            }
            self.shrink_below = len / 2;
        }
    }

    /// Drops the vacant slots from `end` on. Their serials are not lost:
    /// slots made later start above all of them (the serial floor). If that
    /// would put the floor past 2^31 (a retired slot, or one reused two
    /// billion times), the slots stay: an id must never come back.
    fn truncate_entries(&mut self, end: usize) {
        // With every slot vacant, the highest serial is known without a scan.
        let tail_high = match end {
            0 => self.serial_high,
            _ => self.entries[end..]
                .iter()
                .map(|e| u64::from(e.serial) + u64::from(e.serial == RETIRED))
                .max()
                .unwrap_or(0),
        };
        let floor = tail_high.max(u64::from(self.serial_floor));
        if floor >= FLOOR_MAX {
            return;
        }
        self.serial_floor = floor as u32;
        self.entries.truncate(end);
        self.entries.shrink_to_fit();
        // Stale nodes may name dropped slots: none can be left. Removing
        // nodes from the middle of the array breaks the heap order, so it
        // is rebuilt (O(n), as the rest of this). The stale nodes left are
        // counted one by one: "nodes minus timers" is wrong while an
        // interval is being called (it exists but has no node).
        self.heap.retain(|n| (n.slot as usize) < end);
        self.heapify();
        let stale = self.heap.iter().filter(|n| !self.is_live(n)).count();
        self.stale = stale;
        self.free = NONE;
        for slot in (0..end).rev() {
            let e = &mut self.entries[slot];
            if e.is_vacant() && { e.serial } != RETIRED {
                e.node = self.free;
                self.free = slot as u32;
            }
        }
    }
}

impl TimerQueue {
    /// Drops every pending closure, in slot order. Each entry is vacant
    /// before its closure drops, so a second call drops only the rest.
    fn drop_closures(&mut self) {
        for slot in 0..self.entries.len() {
            let e = self.entries[slot];
            if !e.is_vacant() && !e.is_running() {
                let closure = self.take(slot);
                self.entries[slot].kind_flags = VACANT;
                drop(closure);
            }
        }
    }
}

impl Drop for TimerQueue {
    fn drop(&mut self) {
        /// If a closure panics while dropped, the others are still dropped
        /// while that panic unwinds (as a `Vec` of them would be).
        struct Rest<'a>(&'a mut TimerQueue);
        impl Drop for Rest<'_> {
            fn drop(&mut self) {
                self.0.drop_closures();
            }
        }
        // The heap holds plain data only.
        self.heap.clear();
        let rest = Rest(self);
        rest.0.drop_closures();
        std::mem::forget(rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::here;

    fn noop(q: &mut TimerQueue, deadline: u64, delay: u64) -> TimerId {
        q.insert_once(deadline, delay, |_| {}, here())
    }

    /// Pops every due timer of one phase at `now`; returns the deadlines.
    fn pop_all(q: &mut TimerQueue, now: u64) -> Vec<u64> {
        q.begin_phase();
        std::iter::from_fn(|| q.pop_due(now).map(|f| f.deadline)).collect()
    }

    #[test]
    fn storage_stays_small() {
        assert_eq!(std::mem::size_of::<Node>(), 16);
        assert_eq!(std::mem::size_of::<Entry>(), 30);
    }

    #[test]
    fn delays_have_an_exact_32_bit_form_or_a_side_table() {
        for ns in [
            0,
            1,
            999_999_999,
            1_073_741_823,
            1_500_000_000,
            10_000_000_000,
        ] {
            let code = encode_delay(ns).unwrap();
            let mut q = TimerQueue::new();
            let id = noop(&mut q, 0, ns);
            assert_eq!({ q.entries[id.0.slot as usize].delay }, code);
            assert_eq!(q.delay(id.0.slot as usize), ns);
        }
        let mut q = TimerQueue::new();
        for ns in [1_500_000_001, u64::MAX, 86_400_000_000_000_000] {
            assert_eq!(encode_delay(ns), None);
            let id = noop(&mut q, 0, ns);
            assert_eq!(q.delay(id.0.slot as usize), ns);
            assert!(q.cancel(id));
        }
        assert!(q.long_delays.is_empty(), "freed with their timers");
        let id = q.insert_interval(0, u64::MAX, |_| {}, here());
        q.set_period(id, 7).unwrap();
        assert!(q.long_delays.is_empty());
        q.set_period(id, u64::MAX - 1).unwrap();
        assert_eq!(q.period(id), Ok(u64::MAX - 1));
    }

    #[test]
    fn heap_order_survives_random_cancels() {
        let mut q = TimerQueue::new();
        let mut ids = Vec::new();
        // A deterministic shuffle of deadlines.
        for i in 0..2000u64 {
            ids.push(noop(&mut q, (i * 7919) % 1000, 0));
        }
        for (k, id) in ids.iter().enumerate() {
            if k % 3 == 0 {
                assert!(q.cancel(*id));
                assert!(!q.cancel(*id));
            }
        }
        let fired = pop_all(&mut q, u64::MAX);
        assert!(fired.windows(2).all(|w| w[0] <= w[1]), "deadline order");
        assert_eq!(fired.len(), 2000 - 667);
        assert_eq!(q.len(), 0);
        assert_eq!(q.keeping_alive(), 0);
    }

    #[test]
    fn equal_deadlines_pop_in_the_order_set_and_the_mark_holds_back_new_ones() {
        let mut q = TimerQueue::new();
        let order = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        for i in 0..5 {
            let order = order.clone();
            q.insert_once(10, 0, move |_| order.borrow_mut().push(i), here());
        }
        let mut ev = EventLoop::new().unwrap();
        q.begin_phase();
        let late = noop(&mut q, 10, 0); // armed during the phase
        while let Some(f) = q.pop_due(10) {
            match f.call {
                Call::Once(c) => c.call_once(&mut ev),
                Call::Every(..) => unreachable!(),
            }
        }
        assert_eq!(*order.borrow(), [0, 1, 2, 3, 4]);
        assert!(q.find(late).is_some(), "waits for the next phase");
        assert_eq!(pop_all(&mut q, 10), [10]);
    }

    #[test]
    fn refreshes_and_cancels_keep_one_live_node_per_timer() {
        let mut q = TimerQueue::new();
        let ids: Vec<_> = (0..3000u64)
            .map(|i| noop(&mut q, i % 500, i % 500))
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
        let fired = pop_all(&mut q, u64::MAX);
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

    /// Tags are re-numbered before 2^31, in order, with the mark: equal
    /// deadlines keep their order and a node armed during the phase still
    /// waits.
    #[test]
    fn retagging_keeps_the_order_and_the_mark() {
        let mut q = TimerQueue::new();
        q.next_tag = RETAG_AT - 3;
        let a = noop(&mut q, 10, 10);
        let b = noop(&mut q, 10, 10);
        q.refresh(a, 0).unwrap(); // a after b now, both due at 10
        q.begin_phase();
        let c = noop(&mut q, 20, 0); // retags: a, b and c renumbered
        assert_eq!(q.next_tag, 3, "the stale node is gone");
        assert_eq!(q.stale, 0);
        assert_eq!(q.mark, 2, "a and b were armed before the phase");
        let order: Vec<_> = std::iter::from_fn(|| q.pop_due(20))
            .map(|f| f.deadline)
            .collect();
        assert_eq!(order, [10, 10], "c waits for the next phase");
        assert!(q.find(a).is_none() && q.find(b).is_none());
        assert_eq!(pop_all(&mut q, 20), [20]);
        assert!(q.find(c).is_none());
    }

    /// A timer that stays pending while billions of tags go by must not
    /// share its tag with a newer timer of its slot once it goes stale:
    /// re-numbering gives live nodes tags below every later one.
    #[test]
    fn a_long_lived_timer_never_aliases_a_newer_timer_of_its_slot() {
        let mut q = TimerQueue::new();
        let keeper = noop(&mut q, u64::MAX - 1, 0);
        let a = noop(&mut q, 1000, 1000);
        q.next_tag = RETAG_AT;
        let c = noop(&mut q, u64::MAX - 1, 0); // retags: keeper 0, a 1, c 2
        assert_eq!({ q.entries[a.0.slot as usize].node }, 1);
        assert!(q.cancel(a));
        let b = noop(&mut q, 5000, 5000);
        assert_eq!(b.0.slot, a.0.slot);
        assert_ne!(b.0.serial, a.0.serial);
        assert_eq!(pop_all(&mut q, 1000), Vec::<u64>::new(), "b is due at 5000");
        assert_eq!(pop_all(&mut q, 5000), [5000]);
        assert!(q.cancel(c) && q.cancel(keeper));
    }

    #[test]
    fn a_slot_out_of_serials_is_retired_not_reused() {
        let mut q = TimerQueue::new();
        noop(&mut q, 1, 0);
        q.entries[0].serial = RETIRED - 1;
        assert!(q.cancel(TimerId(Key32 {
            slot: 0,
            serial: RETIRED - 1
        })));
        assert_eq!({ q.entries[0].serial }, RETIRED);
        let b = noop(&mut q, 1, 0);
        assert_eq!(b.0.slot, 1, "slot 0 is retired");
        assert!(!q.cancel(TimerId(Key32 {
            slot: 0,
            serial: RETIRED
        })));
        // Truncating would lose a retired slot's serials: it stays.
        assert!(q.cancel(b));
        q.truncate_entries(0);
        assert_eq!(q.entries.len(), 2);
    }

    #[test]
    fn memory_is_released_when_cleared_and_ids_stay_unique() {
        let mut q = TimerQueue::new();
        let ids: Vec<_> = (0..100_000).map(|i| noop(&mut q, i, 0)).collect();
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
        // Slots come back with serials above every id handed out before.
        let again: Vec<_> = (0..100_000).map(|i| noop(&mut q, i, 0)).collect();
        for id in &ids {
            assert!(!q.cancel(*id), "an old id must not clear a new timer");
        }
        assert_eq!(q.len(), again.len());
    }

    #[test]
    fn dropping_the_queue_drops_each_closure_once() {
        let drops = std::rc::Rc::new(std::cell::Cell::new(0));
        struct Probe(std::rc::Rc<std::cell::Cell<u32>>);
        impl Drop for Probe {
            fn drop(&mut self) {
                self.0.set(self.0.get() + 1);
            }
        }
        let mut q = TimerQueue::new();
        for i in 0..10 {
            let p = Probe(drops.clone());
            let id = q.insert_once(i, 0, move |_| drop(p), here());
            let p = Probe(drops.clone());
            q.insert_interval(
                i,
                1,
                move |_| {
                    let _ = &p;
                },
                here(),
            );
            if i % 2 == 0 {
                assert!(q.cancel(id));
            }
        }
        assert_eq!(drops.get(), 5);
        drop(q);
        assert_eq!(drops.get(), 20);
    }

    /// Heap nodes that are not live, counted the slow way.
    fn stale_nodes(q: &TimerQueue) -> usize {
        q.heap.iter().filter(|n| !q.is_live(n)).count()
    }

    /// Memory given back while an interval's callback runs: that interval
    /// exists (`len`) but has no heap node, so "nodes minus timers" is one
    /// short of the stale nodes (or wraps below zero). One stale node
    /// passing for live then runs the newer timer of its slot early.
    #[test]
    fn truncating_while_an_interval_runs_counts_stale_nodes_exactly() {
        let mut q = TimerQueue::new();
        q.insert_interval(0, 1_000, |_| {}, here());
        let n = 2 * SHRINK_MIN as u64;
        let ids: Vec<_> = (1..=n).map(|i| noop(&mut q, 1_000 + i, 0)).collect();
        q.begin_phase();
        let Some(Fired {
            call: Call::Every(every, held),
            ..
        }) = q.pop_due(0)
        else {
            panic!("the interval is due first");
        };
        // Its callback clears the newest one-shots; a compaction follows.
        for id in ids[3000..].iter().rev() {
            assert!(q.cancel(*id));
        }
        q.compact();
        // Then the first one-shot (slot 1, due at 1001): its node stays,
        // stale. More clears, newest first, until the vacant tail of slots
        // is truncated.
        assert!(q.cancel(ids[0]));
        for id in ids[1..3000].iter().rev() {
            assert!(q.cancel(*id));
            if q.entries.len() < ids.len() {
                break;
            }
        }
        assert!(q.entries.len() < ids.len(), "entries were truncated");
        assert_eq!(q.stale, stale_nodes(&q));
        // Slot 1 is taken by a timer due much later.
        let later = noop(&mut q, 1_000_000, 0);
        assert_eq!(later.0.slot, ids[0].0.slot);
        assert!(q.rearm(every, held, 0).is_none());
        assert_eq!(pop_all(&mut q, 1_001), [1_000], "only the interval");
        assert!(q.find(later).is_some(), "not run early");
    }

    /// Truncating drops the stale nodes of the dropped slots from the
    /// middle of the heap array: what is left must be made a heap again.
    #[test]
    fn truncating_slots_keeps_the_heap_in_deadline_order() {
        let mut q = TimerQueue::new();
        let n = 2 * SHRINK_MIN as u64;
        // Slots below 2000 far off, in shuffled order; the rest due early.
        let ids: Vec<_> = (0..n)
            .map(|i| match i {
                0..2000 => noop(&mut q, 1_000_000 + (i * 7919) % 2000, 0),
                _ => noop(&mut q, i, 0),
            })
            .collect();
        for id in &ids[1000..2000] {
            assert!(q.cancel(*id)); // stale nodes among the far ones
        }
        assert_eq!(pop_all(&mut q, n), (2000..n).collect::<Vec<_>>());
        q.release_memory(); // as the loop does after its timer phase
        assert_eq!(q.entries.len(), 1000, "the vacant tail was truncated");
        let fired = pop_all(&mut q, u64::MAX);
        assert_eq!(fired.len(), 1000);
        assert!(fired.windows(2).all(|w| w[0] <= w[1]), "deadline order");
    }
}
