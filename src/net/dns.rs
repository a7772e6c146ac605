//! Name resolution on the blocking-work pool.
//!
//! `getaddrinfo` blocks, so, as libuv's `uv_getaddrinfo`, it runs on the pool
//! through the standard library's `ToSocketAddrs`, and the callback gets the
//! addresses on the loop thread.

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
