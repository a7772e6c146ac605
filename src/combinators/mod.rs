//! Composing callbacks: completion tokens and combinators.
//!
//! A task is a closure that gets the loop and a [`Completion`], and completes
//! it once, now or later. On tokens the combinators build what callback
//! programs need: [`gather`] / [`gather_all`] (wait for `n` tokens),
//! [`parallel`], [`series`], [`map_limit`] / [`each_limit`] (at most `n` in
//! flight), [`race`], [`retry`], [`timeout`], and a [`Queue`]. Each calls
//! its final callback exactly once, through the loop: the crate docs'
//! "Composing callbacks" section shows what that buys.

mod flow;
mod gather;
mod queue;
mod token;

pub use flow::{each_limit, map_limit, parallel, race, retry, series, timeout, Task};
pub use gather::{gather, gather_all};
pub use queue::Queue;
pub use token::{Completion, Dropped, SendCompletion};
