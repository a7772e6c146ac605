//! stdin to stdout through the loop. A pipe or terminal on stdin is watched
//! for readability; a regular file cannot be polled, so it is read on the
//! blocking-work pool instead (as libuv does for files).
//!
//!     echo hello | cargo run --example cat
//!     cargo run --example cat < Cargo.toml

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;

use evloop::{fs, EventLoop, Interest};

fn main() -> io::Result<()> {
    env_logger::init();
    let mut ev = EventLoop::new()?;
    let stdin = File::from(io::stdin().as_fd().try_clone_to_owned()?);
    let watched = ev.watch(stdin, Interest::READABLE, |ev, stdin, _| {
        let mut buf = [0u8; 64 * 1024];
        match stdin.read(&mut buf) {
            Ok(0) | Err(_) => ev.stop(), // EOF or error: nothing more to copy
            Ok(n) => io::stdout().write_all(&buf[..n]).expect("stdout"),
        }
    });
    match watched {
        Ok(_) => {}
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            // A regular file: read it whole on the pool.
            fs::read_file(&mut ev, "/dev/stdin", |_, data| {
                io::stdout()
                    .write_all(&data.expect("read stdin"))
                    .expect("stdout");
            })?;
        }
        Err(e) => return Err(e),
    }
    ev.run()?;
    io::stdout().flush()
}
