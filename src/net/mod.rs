//! Networking on top of the core's watchers and pool: TCP, UDP, Unix sockets,
//! pipes, and name resolution. Everything here uses the core's public API only.

mod dns;
mod listener;
mod stream;
pub mod tcp;
pub mod udp;
pub mod unix;

pub use dns::resolve;
pub use listener::Server;
pub use stream::{Stream, DEFAULT_HIGH_WATER};
