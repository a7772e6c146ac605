//! Prints the changes in a directory as they happen (Node's `fs.watch`).
//!
//! `cargo run --example watch_dir -- DIR` watches DIR until Ctrl-C. With no
//! argument it makes a temporary directory, changes it itself (create,
//! write, rename, remove), prints what the watcher saw, and ends.

use std::path::PathBuf;

use evloop::fs::{self, FsEventKind, WatchOptions};
use evloop::EventLoop;

fn main() -> std::io::Result<()> {
    let mut ev = EventLoop::new()?;
    let options = WatchOptions { recursive: true };
    if let Some(dir) = std::env::args_os().nth(1) {
        fs::watch(&mut ev, &dir, options, |_, _, event| {
            println!("{:?} {}", event.kind, event.path.display());
        })?;
        println!(
            "watching {}; press Ctrl-C to stop",
            PathBuf::from(dir).display()
        );
        return ev.run();
    }

    // No argument: a demo in a fresh temporary directory.
    let dir = std::env::temp_dir().join(format!("evloop-watch-dir-{}", std::process::id()));
    std::fs::create_dir(&dir)?;
    fs::watch(&mut ev, &dir, options, |ev, watcher, event| {
        println!("{:?} {}", event.kind, event.path.display());
        if event.kind == FsEventKind::SelfRemoved {
            watcher.close(ev); // already ended; closing again is harmless
        }
    })?;
    // Each change runs on the pool, one after another; the last one
    // removes the directory itself, which ends the watch and so the loop.
    let d = dir.clone();
    fs::append(&mut ev, dir.join("notes.txt"), "hello", move |ev, r| {
        r.expect("write");
        let (from, to) = (d.join("notes.txt"), d.join("renamed.txt"));
        fs::rename(ev, from, to.clone(), move |ev, r| {
            r.expect("rename");
            fs::remove(ev, to, move |ev, r| {
                r.expect("remove file");
                fs::remove(ev, d, |_, r| r.expect("remove dir")).expect("job");
            })
            .expect("job");
        })
        .expect("job");
    })?;
    ev.run()
}
