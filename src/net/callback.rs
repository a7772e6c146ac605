//! What streams and UDP sockets share about their callbacks and watchers.
//!
//! A read or receive callback is stored in a [`Lendable`]: taken out while it
//! runs (it gets `&mut EventLoop`, and may replace or remove itself), then
//! given back unless something changed meanwhile. The give-back happens
//! whether the callback returned or panicked, so a panic never silently
//! stops reading.

use std::io;

use crate::{EventLoop, Interest, WatchId};

/// A callback slot whose callback can be lent out while it runs.
pub(crate) struct Lendable<F> {
    f: Option<F>,
    /// Bumped by every set and clear: tells "left as it was" apart.
    epoch: u64,
}

/// A callback on loan from a [`Lendable`].
pub(crate) struct Lent<F> {
    pub(crate) f: F,
    epoch: u64,
}

impl<F> Default for Lendable<F> {
    fn default() -> Self {
        Lendable { f: None, epoch: 0 }
    }
}

impl<F> Lendable<F> {
    /// Installs `f`, replacing any callback, lent or not; returns the old
    /// one for the caller to drop once it let go of its own borrows (its
    /// destructor may call back into the stream).
    #[must_use]
    pub(crate) fn set(&mut self, f: F) -> Option<F> {
        self.epoch += 1;
        self.f.replace(f)
    }

    /// Removes the callback; one on loan is not given back.
    pub(crate) fn clear(&mut self) -> Option<F> {
        self.epoch += 1;
        self.f.take()
    }

    /// Takes the callback out to call it.
    pub(crate) fn lend(&mut self) -> Option<Lent<F>> {
        let f = self.f.take()?;
        Some(Lent {
            f,
            epoch: self.epoch,
        })
    }

    /// Puts a lent callback back, unless it was replaced or cleared meanwhile
    /// (then it is dropped).
    pub(crate) fn give_back(&mut self, lent: Lent<F>) {
        if lent.epoch == self.epoch && self.f.is_none() {
            self.f = Some(lent.f);
        }
    }
}

/// Sets a watcher's interest if it differs from `current` (what was last
/// set), and records it.
pub(crate) fn sync_interest(
    ev: &mut EventLoop,
    watch: WatchId,
    current: &mut Interest,
    want: Interest,
) -> io::Result<()> {
    if *current == want {
        return Ok(());
    }
    ev.set_interest(watch, want)?;
    *current = want;
    Ok(())
}
