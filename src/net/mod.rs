//! Networking on top of the core's watchers and pool: TCP, UDP, Unix sockets,
//! pipes, and name resolution. Everything here uses the core's public API only.
//!
//! Streams are typed: [`TcpStream`], [`UnixStream`] and [`Pipe`] share one
//! engine ([`Stream<K>`]) and differ only in the extra calls that make sense
//! for them. Servers likewise: [`TcpServer`], [`UnixServer`].

mod adopt;
mod callback;
mod connect;
mod dns;
mod listener;
mod stream;
pub mod tcp;
pub mod udp;
pub mod unix;

pub(crate) use crate::error::with_context;
pub use adopt::{guess_kind, FdKind};
pub use connect::Connecting;
pub use dns::{lookup_addr, resolve};
pub use listener::{Server, TcpServer, UnixServer};
pub(crate) use stream::closed_error;
pub use stream::{kind, Pipe, Stream, TcpStream, UnixStream, DEFAULT_HIGH_WATER};

/// The loop's receive buffer: one 64 KiB buffer per loop, lent to whichever
/// stream or UDP socket reads, rather than one allocation per read.
#[derive(Default)]
pub(crate) struct ReadBuffer(Vec<u8>);

impl ReadBuffer {
    /// Large enough for any datagram (64 KiB) and a good batch of a stream.
    const SIZE: usize = 64 * 1024;

    pub(crate) fn lend(ev: &mut crate::EventLoop) -> Vec<u8> {
        let mut buf = std::mem::take(&mut ev.layer_state::<ReadBuffer>().0);
        buf.resize(Self::SIZE, 0);
        buf
    }

    pub(crate) fn give_back(ev: &mut crate::EventLoop, buf: Vec<u8>) {
        ev.layer_state::<ReadBuffer>().0 = buf;
    }
}
