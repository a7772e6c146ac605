//! Networking on top of the core's watchers and pool.

mod dns;

pub use dns::resolve;
