//! The generational id behind [`TimerId`](crate::TimerId),
//! [`WatchId`](crate::WatchId) and [`JobId`](crate::JobId).
//!
//! An entry in one of the loop's tables is found by its *slot* and
//! recognised by its *serial*, taken from the table's counter and never
//! reused. So a stale id (its timer fired, its watcher was removed) can
//! never reach a newer entry that took its slot: the serials differ.
//!
//! Each id has a `u64` form, for the C API and for logs: the slot in the low
//! 24 bits and the serial in the high 40. It exists while the slot is below
//! 2^24 (16.7 million live entries of one kind) and the serial below 2^40
//! (10^12 made by one loop); past that, [`to_u64`](crate::TimerId::to_u64)
//! is `None` and the C API answers `-ENOSPC`. Any `u64` turns back into an
//! id; one that names no live entry is simply stale.

/// Slot and serial of an entry; see the module docs.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Key {
    pub(crate) slot: u32,
    pub(crate) serial: u64,
}

const SLOT_BITS: u32 = 24;
const SERIAL_BITS: u32 = 64 - SLOT_BITS;

impl Key {
    pub(crate) fn new(slot: usize, serial: u64) -> Key {
        Key {
            slot: u32::try_from(slot).expect("fewer than 4 billion live entries"),
            serial,
        }
    }

    pub(crate) fn to_u64(self) -> Option<u64> {
        (self.slot < 1 << SLOT_BITS && self.serial < 1 << SERIAL_BITS)
            .then(|| (self.serial << SLOT_BITS) | u64::from(self.slot))
    }

    pub(crate) fn from_u64(v: u64) -> Key {
        Key {
            slot: (v & ((1 << SLOT_BITS) - 1)) as u32,
            serial: v >> SLOT_BITS,
        }
    }
}

/// Slot and serial of a table whose serials are per slot and 32 bits (the
/// timer queue's): an 8-byte id. Its `u64` form is [`Key`]'s; a number whose
/// serial does not fit in 32 bits comes back as serial `u32::MAX`, which such
/// tables never hand out, so it is stale.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Key32 {
    pub(crate) slot: u32,
    pub(crate) serial: u32,
}

impl Key32 {
    pub(crate) fn to_u64(self) -> Option<u64> {
        Key {
            slot: self.slot,
            serial: u64::from(self.serial),
        }
        .to_u64()
    }

    pub(crate) fn from_u64(v: u64) -> Key32 {
        let k = Key::from_u64(v);
        Key32 {
            slot: k.slot,
            serial: u32::try_from(k.serial).unwrap_or(u32::MAX),
        }
    }
}

/// Defines a public id type over [`Key`] (or the given key type).
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $crate::id::id_type!($(#[$doc])* $name, $crate::id::Key);
    };
    ($(#[$doc:meta])* $name:ident, $key:ty) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        pub struct $name(pub(crate) $key);

        impl $name {
            /// The id as one number (slot and serial; see [`from_u64`](Self::from_u64)),
            /// or `None` past 16.7 million live entries or 10^12 made.
            pub fn to_u64(self) -> Option<u64> {
                self.0.to_u64()
            }

            /// The id whose [`to_u64`](Self::to_u64) is `v`. Any number is
            /// accepted: one that names no live entry is a stale id.
            pub fn from_u64(v: u64) -> Self {
                $name(<$key>::from_u64(v))
            }
        }
    };
}
pub(crate) use id_type;

#[cfg(test)]
mod tests {
    use super::Key;

    #[test]
    fn the_u64_form_round_trips_where_it_exists() {
        for (slot, serial) in [(0, 1), (5, 77), ((1 << 24) - 1, (1 << 40) - 1)] {
            let k = Key::new(slot, serial);
            assert_eq!(Key::from_u64(k.to_u64().unwrap()), k);
        }
        assert_eq!(Key::new(1 << 24, 1).to_u64(), None);
        assert_eq!(Key::new(1, 1 << 40).to_u64(), None);
    }

    #[test]
    fn a_32_bit_key_has_the_same_u64_form_and_refuses_wider_serials() {
        use super::Key32;
        let k = Key32 {
            slot: 5,
            serial: u32::MAX - 1,
        };
        let v = k.to_u64().unwrap();
        assert_eq!(v, Key::new(5, u64::from(u32::MAX - 1)).to_u64().unwrap());
        assert_eq!(Key32::from_u64(v), k);
        let wide = Key::new(5, 1 << 33).to_u64().unwrap();
        assert_eq!(Key32::from_u64(wide).serial, u32::MAX);
        assert_eq!(std::mem::size_of::<Key32>(), 8);
    }
}
