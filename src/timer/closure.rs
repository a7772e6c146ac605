//! Timer closures in eight bytes.
//!
//! A timer's closure is stored in its entry as a [`Payload`]: eight bytes
//! that hold the closure itself when it fits (a closure capturing one word,
//! or nothing), else a pointer to it in a box. What the bytes are, and how to
//! call and drop them, is known from the closure's type only; the queue
//! records it as a *kind*: a 16-bit index into the loop's [`Kinds`] table of
//! (vtable, creation site) pairs. A `Box<dyn FnOnce>` would cost 16 bytes
//! and, for any capture at all, an allocation of at least 32 more, which is
//! most of a million timers' memory (see the queue's module docs).
//!
//! Intervals are always boxed: they are few, and their closure must stay put
//! while it runs (the entry's bytes may move when the callback sets timers).
//!
//! All the `unsafe` of the timer queue is here. The contract: a payload made
//! by [`Payload::once`] or [`Payload::interval`] for a type `F` is only ever
//! called or dropped through the vtable made for that same `F`, exactly once
//! for a one-shot (call or drop), and dropped exactly once for an interval;
//! [`Held`] enforces the "exactly once" by owning a payload between the
//! entry and the call.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::mem::{size_of, ManuallyDrop, MaybeUninit};
use std::ptr;

use crate::diag::Site;
use crate::EventLoop;

/// The bytes of a closure, or of a pointer to a boxed one. Always read and
/// written unaligned: entries are packed.
pub(crate) type Payload = MaybeUninit<[u8; 8]>;

/// How to call and drop the payload of one closure type.
pub(crate) struct VTable {
    /// Calls the closure: consumes a one-shot's payload, leaves an
    /// interval's in place.
    call: unsafe fn(*mut u8, &mut EventLoop),
    /// Drops the closure (and its box).
    drop: unsafe fn(*mut u8),
    /// An interval (`FnMut`, boxed) rather than a one-shot.
    pub(crate) interval: bool,
}

/// Whether a closure of type `F` is stored in the payload itself.
const fn fits<F>() -> bool {
    size_of::<F>() <= size_of::<Payload>()
}

struct Once<F>(PhantomData<F>);

impl<F: FnOnce(&mut EventLoop) + 'static> Once<F> {
    const VTABLE: VTable = VTable {
        call: Self::call,
        drop: Self::drop,
        interval: false,
    };

    /// # Safety
    /// `p` points to a payload made by [`Payload::once`] for `F`, not yet
    /// called or dropped; it is consumed.
    unsafe fn call(p: *mut u8, ev: &mut EventLoop) {
        if fits::<F>() {
            // SAFETY: the payload holds an `F` (the caller's contract),
            // moved out here exactly once.
            let f = unsafe { ptr::read_unaligned(p.cast::<F>()) };
            f(ev);
        } else {
            // SAFETY: the payload holds a pointer from `Box::into_raw`,
            // taken back here exactly once.
            let f = unsafe { Box::from_raw(ptr::read_unaligned(p.cast::<*mut F>())) };
            f(ev);
        }
    }

    /// # Safety
    /// As [`Once::call`].
    unsafe fn drop(p: *mut u8) {
        if fits::<F>() {
            // SAFETY: as in `call`.
            drop(unsafe { ptr::read_unaligned(p.cast::<F>()) });
        } else {
            // SAFETY: as in `call`.
            drop(unsafe { Box::from_raw(ptr::read_unaligned(p.cast::<*mut F>())) });
        }
    }
}

struct Every<F>(PhantomData<F>);

impl<F: FnMut(&mut EventLoop) + 'static> Every<F> {
    const VTABLE: VTable = VTable {
        call: Self::call,
        drop: Self::drop,
        interval: true,
    };

    /// # Safety
    /// `p` points to a payload made by [`Payload::interval`] for `F`, not
    /// yet dropped; it stays valid.
    unsafe fn call(p: *mut u8, ev: &mut EventLoop) {
        // SAFETY: the payload holds a live `Box<F>` pointer (the caller's
        // contract); the box is not freed or aliased during the call.
        let f = unsafe { &mut *ptr::read_unaligned(p.cast::<*mut F>()) };
        f(ev);
    }

    /// # Safety
    /// As [`Every::call`]; the payload is consumed.
    unsafe fn drop(p: *mut u8) {
        // SAFETY: as in `call`; the box is taken back exactly once.
        drop(unsafe { Box::from_raw(ptr::read_unaligned(p.cast::<*mut F>())) });
    }
}

/// Stores a one-shot closure; returns the payload and its vtable.
#[inline]
pub(crate) fn once<F: FnOnce(&mut EventLoop) + 'static>(f: F) -> (Payload, &'static VTable) {
    let mut p = Payload::uninit();
    if fits::<F>() {
        // SAFETY: `F` fits in the payload's 8 bytes; written unaligned.
        unsafe { ptr::write_unaligned(p.as_mut_ptr().cast::<F>(), f) };
    } else {
        let boxed = Box::into_raw(Box::new(f));
        // SAFETY: a pointer fits in 8 bytes; written unaligned.
        unsafe { ptr::write_unaligned(p.as_mut_ptr().cast::<*mut F>(), boxed) };
    }
    (p, &Once::<F>::VTABLE)
}

/// Stores an interval's closure (boxed); returns the payload and its vtable.
#[inline]
pub(crate) fn interval<F: FnMut(&mut EventLoop) + 'static>(f: F) -> (Payload, &'static VTable) {
    let mut p = Payload::uninit();
    let boxed = Box::into_raw(Box::new(f));
    // SAFETY: a pointer fits in 8 bytes; written unaligned.
    unsafe { ptr::write_unaligned(p.as_mut_ptr().cast::<*mut F>(), boxed) };
    (p, &Every::<F>::VTABLE)
}

/// A closure owned outside any entry: taken from a fired timer, or about to
/// be stored. Dropping it drops the closure; calling a one-shot consumes it.
pub(crate) struct Held {
    payload: Payload,
    vtable: &'static VTable,
    /// The closure may be neither `Send` nor `Sync`: nor is this.
    _owns: PhantomData<*const ()>,
}

impl Held {
    /// # Safety
    /// `payload` was made with `vtable` (by [`once`] or [`interval`]) and is
    /// owned by nobody else from now on.
    pub(crate) unsafe fn new(payload: Payload, vtable: &'static VTable) -> Held {
        Held {
            payload,
            vtable,
            _owns: PhantomData,
        }
    }

    /// How the payload is called and dropped.
    pub(crate) fn vtable(&self) -> &'static VTable {
        self.vtable
    }

    /// Gives the payload up (to be stored in an entry again).
    pub(crate) fn into_raw(self) -> (Payload, &'static VTable) {
        let me = ManuallyDrop::new(self);
        (me.payload, me.vtable)
    }

    /// Calls a one-shot closure, consuming it. If it panics, its captures
    /// are dropped by the unwind, once.
    pub(crate) fn call_once(self, ev: &mut EventLoop) {
        debug_assert!(!self.vtable.interval);
        let mut me = ManuallyDrop::new(self);
        let p = me.payload.as_mut_ptr().cast::<u8>();
        // SAFETY: `Held::new`'s contract; `me` is never used or dropped
        // again, so the payload is consumed exactly once.
        unsafe { (me.vtable.call)(p, ev) }
    }

    /// Calls an interval's closure; it stays held.
    pub(crate) fn call_interval(&mut self, ev: &mut EventLoop) {
        debug_assert!(self.vtable.interval);
        let p = self.payload.as_mut_ptr().cast::<u8>();
        // SAFETY: `Held::new`'s contract; an interval's call leaves the
        // payload valid for further calls and the drop.
        unsafe { (self.vtable.call)(p, ev) }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let p = self.payload.as_mut_ptr().cast::<u8>();
        // SAFETY: `Held::new`'s contract; a consumed payload never gets here
        // (`call_once` and `into_raw` skip the drop).
        unsafe { (self.vtable.drop)(p) }
    }
}

/// Index of a kind in [`Kinds`]: 14 bits (the entry's other two are flags).
pub(crate) type Kind = u16;

/// A per-loop table of kinds: each distinct pair of closure vtable and
/// creation site that timers were set with. Programs set timers from a few
/// places many times over: the last pair looked up is checked first (two
/// comparisons), then a hash map. Past [`Kinds::MAX`] pairs, new ones share
/// the fallback kinds (boxed once more, site unknown).
pub(crate) struct Kinds {
    kinds: Vec<(&'static VTable, Option<Site>)>,
    index: HashMap<(usize, usize), Kind>,
    last: (usize, usize, Kind),
}

impl Kinds {
    /// Kinds the table holds at most (one index value is the vacant mark).
    pub(crate) const MAX: usize = (1 << 14) - 1;
    /// The fallback kinds, always present.
    const FALLBACK_ONCE: Kind = 0;
    const FALLBACK_INTERVAL: Kind = 1;

    pub(crate) fn new() -> Kinds {
        type OnceBox = Box<dyn FnOnce(&mut EventLoop)>;
        type IntervalBox = Box<dyn FnMut(&mut EventLoop)>;
        Kinds {
            kinds: vec![
                (&Once::<OnceBox>::VTABLE, None),
                (&Every::<IntervalBox>::VTABLE, None),
            ],
            index: HashMap::new(),
            last: (0, 0, Kind::MAX),
        }
    }

    /// The kind of `vtable` set at `site`, if the table has room.
    #[inline]
    fn intern(&mut self, vtable: &'static VTable, site: Site) -> Option<Kind> {
        let key = (ptr::from_ref(vtable) as usize, ptr::from_ref(site) as usize);
        if (key.0, key.1) == (self.last.0, self.last.1) {
            return Some(self.last.2);
        }
        self.intern_slow(vtable, site, key)
    }

    fn intern_slow(
        &mut self,
        vtable: &'static VTable,
        site: Site,
        key: (usize, usize),
    ) -> Option<Kind> {
        let kind = match self.index.get(&key) {
            Some(&kind) => kind,
            None if self.kinds.len() < Self::MAX => {
                let kind = self.kinds.len() as Kind;
                self.kinds.push((vtable, Some(site)));
                self.index.insert(key, kind);
                kind
            }
            None => return None,
        };
        self.last = (key.0, key.1, kind);
        Some(kind)
    }

    /// Stores a one-shot closure set at `site`: its payload and kind.
    #[inline]
    pub(crate) fn once<F: FnOnce(&mut EventLoop) + 'static>(
        &mut self,
        f: F,
        site: Site,
    ) -> (Payload, Kind) {
        if let Some(kind) = self.intern(&Once::<F>::VTABLE, site) {
            return (once(f).0, kind);
        }
        let f: Box<dyn FnOnce(&mut EventLoop)> = Box::new(f);
        (once(f).0, Self::FALLBACK_ONCE)
    }

    /// Stores an interval's closure set at `site`: its payload and kind.
    #[inline]
    pub(crate) fn interval<F: FnMut(&mut EventLoop) + 'static>(
        &mut self,
        f: F,
        site: Site,
    ) -> (Payload, Kind) {
        if let Some(kind) = self.intern(&Every::<F>::VTABLE, site) {
            return (interval(f).0, kind);
        }
        let f: Box<dyn FnMut(&mut EventLoop)> = Box::new(f);
        (interval(f).0, Self::FALLBACK_INTERVAL)
    }

    /// The vtable of a kind.
    #[inline]
    pub(crate) fn vtable(&self, kind: Kind) -> &'static VTable {
        self.kinds[usize::from(kind)].0
    }

    /// Where timers of a kind were set (`None` for the fallback kinds).
    pub(crate) fn site(&self, kind: Kind) -> Option<Site> {
        self.kinds[usize::from(kind)].1
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.kinds.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    /// Counts its drops.
    struct Probe(Rc<Cell<u32>>);
    impl Drop for Probe {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }

    #[test]
    fn small_closures_are_stored_inline_and_large_ones_boxed() {
        let drops = Rc::new(Cell::new(0));
        let mut ev = EventLoop::new().unwrap();
        // One word: inline. 40 bytes: boxed. Each called or dropped once.
        let p = Probe(drops.clone());
        let (payload, vt) = once(move |_: &mut EventLoop| drop(p));
        // SAFETY: made by `once` with this vtable, owned by nobody else.
        unsafe { Held::new(payload, vt) }.call_once(&mut ev);
        assert_eq!(drops.get(), 1);
        let big = [0u64; 4];
        let p = Probe(drops.clone());
        let (payload, vt) = once(move |_: &mut EventLoop| {
            let _ = (big, &p);
        });
        // SAFETY: as above.
        drop(unsafe { Held::new(payload, vt) });
        assert_eq!(drops.get(), 2);
        assert!(fits::<Probe>() && fits::<()>() && !fits::<[u64; 2]>());
    }

    #[test]
    fn a_panicking_one_shot_drops_its_captures_once() {
        let drops = Rc::new(Cell::new(0));
        let mut ev = EventLoop::new().unwrap();
        let p = Probe(drops.clone());
        let (payload, vt) = once(move |_: &mut EventLoop| {
            let _p = &p;
            panic!("boom");
        });
        // SAFETY: as above.
        let held = unsafe { Held::new(payload, vt) };
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| held.call_once(&mut ev)));
        assert!(r.is_err());
        assert_eq!(drops.get(), 1);
    }

    #[test]
    fn an_interval_is_called_many_times_and_dropped_once() {
        let drops = Rc::new(Cell::new(0));
        let calls = Rc::new(Cell::new(0));
        let mut ev = EventLoop::new().unwrap();
        let (p, c) = (Probe(drops.clone()), calls.clone());
        let (payload, vt) = interval(move |_: &mut EventLoop| {
            let _ = &p;
            c.set(c.get() + 1);
        });
        // SAFETY: as above.
        let mut held = unsafe { Held::new(payload, vt) };
        held.call_interval(&mut ev);
        let (payload, vt) = held.into_raw();
        // SAFETY: the payload just given up by `into_raw`.
        let mut held = unsafe { Held::new(payload, vt) };
        held.call_interval(&mut ev);
        assert_eq!((calls.get(), drops.get()), (2, 0));
        drop(held);
        assert_eq!(drops.get(), 1);
    }

    #[test]
    fn kinds_are_shared_by_type_and_site_and_overflow_to_the_fallback() {
        let mut kinds = Kinds::new();
        let here = crate::diag::here();
        let mut made = Vec::new();
        for _ in 0..3 {
            made.push(kinds.once(|_| {}, here).1);
        }
        assert_eq!(made, [2, 2, 2]);
        let other = crate::diag::here();
        assert_eq!(kinds.once(|_| {}, other).1, 3, "another site");
        assert_eq!(kinds.interval(|_| {}, here).1, 4, "another vtable");
        assert_eq!(kinds.site(3), Some(other));
        // Fill the table with distinct sites: leaked locations stand in.
        while kinds.len() < Kinds::MAX {
            let site: Site = Box::leak(Box::new(*here));
            kinds.once(|_| {}, site);
        }
        let site: Site = Box::leak(Box::new(*here));
        let (payload, kind) = kinds.once(|_| {}, site);
        assert_eq!(kind, Kinds::FALLBACK_ONCE);
        assert_eq!(kinds.site(kind), None);
        // SAFETY: made for this kind's vtable.
        drop(unsafe { Held::new(payload, kinds.vtable(kind)) });
        let (payload, kind) = kinds.interval(|_| {}, site);
        assert_eq!(kind, Kinds::FALLBACK_INTERVAL);
        // SAFETY: as above.
        drop(unsafe { Held::new(payload, kinds.vtable(kind)) });
    }
}
