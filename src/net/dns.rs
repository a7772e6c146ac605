//! Name resolution on the blocking-work pool.
//!
//! `getaddrinfo` blocks, so, as libuv's `uv_getaddrinfo`, it runs on the pool
//! through the standard library's `ToSocketAddrs`, and the callback gets the
//! addresses on the loop thread. The reverse, `getnameinfo` (libuv's
//! `uv_getnameinfo`), runs there too: [`lookup_addr`].
//!
//! Both use the system resolver (`/etc/hosts`, then DNS, as
//! `/etc/nsswitch.conf` says), so how long a failing lookup takes is the
//! resolver's business (`/etc/resolv.conf`'s `timeout` and `attempts`); a
//! lookup in progress cannot be cancelled, only one still queued.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use crate::{EventLoop, JobId};

/// Resolves `host` and `port` to socket addresses. A name that does not
/// resolve reaches `done` as an error; an empty answer is an error too
/// (`NotFound`), so `Ok` always holds at least one address.
pub fn resolve(
    ev: &mut EventLoop,
    host: &str,
    port: u16,
    done: impl FnOnce(&mut EventLoop, io::Result<Vec<SocketAddr>>) + 'static,
) -> io::Result<JobId> {
    let host = host.to_string();
    ev.spawn_blocking_io(
        move || -> io::Result<Vec<SocketAddr>> {
            let addrs: Vec<_> = (host.as_str(), port).to_socket_addrs()?.collect();
            if addrs.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{host}: no addresses"),
                ));
            }
            Ok(addrs)
        },
        done,
    )
}

/// Finds the host name and service name of a socket address (libuv
/// `uv_getnameinfo`, Node `dns.lookupService`); `done` gets `(host,
/// service)`, e.g. `("localhost", "http")` for `127.0.0.1:80`. The service
/// is the port in digits when it has no name in `/etc/services`.
///
/// An address with no host name is an error (`NotFound`, as with
/// `NI_NAMEREQD`), never the address in digits; other resolver failures
/// (no DNS server reachable, ...) reach `done` with the resolver's message.
///
/// # Errors
/// Only if the job cannot be started; `done` then never runs.
pub fn lookup_addr(
    ev: &mut EventLoop,
    addr: SocketAddr,
    done: impl FnOnce(&mut EventLoop, io::Result<(String, String)>) + 'static,
) -> io::Result<JobId> {
    ev.spawn_blocking_io(move || crate::sys::getnameinfo(&addr), done)
}
