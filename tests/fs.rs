//! Files on the pool.

mod common;

use std::cell::RefCell;
use std::io;
use std::path::Path;
use std::process::Command;
use std::rc::Rc;

use std::fs::OpenOptions;

use common::TempDir;
use evloop::{fs, ErrorContext, EventLoop, JobId};

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn write_read_append_metadata_read_dir_rename_remove() {
    let tmp = TempDir::new("fs-ops");
    let dir = tmp.0.clone();
    let mut ev = EventLoop::new().unwrap();
    let log = Rc::new(RefCell::new(Vec::<String>::new()));
    let a = dir.join("a.txt");
    let b = dir.join("b.txt");
    let l = log.clone();
    let (a2, b2, d2) = (a.clone(), b.clone(), dir.clone());
    fs::write_file(&mut ev, &a, "hello", move |ev, r| {
        r.unwrap();
        l.borrow_mut().push("written".into());
        let l = l.clone();
        fs::append(ev, a2.clone(), " world", move |ev, r| {
            r.unwrap();
            let l = l.clone();
            fs::read_file(ev, a2.clone(), move |ev, r| {
                l.borrow_mut().push(String::from_utf8(r.unwrap()).unwrap());
                let l = l.clone();
                fs::metadata(ev, a2.clone(), move |ev, r| {
                    l.borrow_mut().push(format!("len {}", r.unwrap().len()));
                    let l = l.clone();
                    fs::rename(ev, a2.clone(), b2.clone(), move |ev, r| {
                        r.unwrap();
                        let l = l.clone();
                        fs::read_dir(ev, d2.clone(), move |ev, r| {
                            let names: Vec<_> = r
                                .unwrap()
                                .iter()
                                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                                .collect();
                            l.borrow_mut().push(names.join(","));
                            let l = l.clone();
                            fs::remove(ev, b2.clone(), move |_, r| {
                                r.unwrap();
                                l.borrow_mut().push("removed".into());
                            })
                            .unwrap();
                        })
                        .unwrap();
                    })
                    .unwrap();
                })
                .unwrap();
            })
            .unwrap();
        })
        .unwrap();
    })
    .unwrap();
    ev.run().unwrap();
    assert_eq!(
        *log.borrow(),
        ["written", "hello world", "len 11", "b.txt", "removed"]
    );
    assert!(entries(&dir).is_empty());
}

#[test]
fn errors_reach_the_callback() {
    let tmp = TempDir::new("fs-errors");
    let mut ev = EventLoop::new().unwrap();
    let kinds = Rc::new(RefCell::new(Vec::new()));
    let missing = tmp.0.join("missing");
    let k = kinds.clone();
    fs::read_file(&mut ev, &missing, move |_, r| {
        k.borrow_mut().push(r.unwrap_err().kind())
    })
    .unwrap();
    let k = kinds.clone();
    fs::metadata(&mut ev, &missing, move |_, r| {
        k.borrow_mut().push(r.unwrap_err().kind())
    })
    .unwrap();
    let k = kinds.clone();
    fs::remove(&mut ev, &missing, move |_, r| {
        k.borrow_mut().push(r.unwrap_err().kind())
    })
    .unwrap();
    ev.run().unwrap();
    let mut got = kinds.borrow().clone();
    got.dedup();
    assert_eq!(got, [io::ErrorKind::NotFound]);
    assert_eq!(kinds.borrow().len(), 3);
}

#[test]
fn write_file_over_a_directory_fails_and_leaves_no_temp_file() {
    let tmp = TempDir::new("fs-overdir");
    let target = tmp.0.join("taken");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("inside"), "x").unwrap();
    let mut ev = EventLoop::new().unwrap();
    let res = Rc::new(RefCell::new(None));
    let r2 = res.clone();
    fs::write_file(&mut ev, &target, "data", move |_, r| {
        *r2.borrow_mut() = Some(r)
    })
    .unwrap();
    ev.run().unwrap();
    assert!(res.borrow().as_ref().unwrap().is_err());
    assert_eq!(entries(&tmp.0), ["taken"], "no temporary file left behind");
}

/// The disk write fails half way (a file size limit, in a child process so
/// the limit does not touch the other tests): the old file stays whole and no
/// temporary file is left.
#[test]
fn write_file_never_leaves_a_partial_file() {
    if let Ok(dir) = std::env::var("EVLOOP_FSIZE_CHILD") {
        // The child: limit file sizes to 4 KiB and try to write 1 MiB.
        // SAFETY: plain libc calls with valid arguments.
        unsafe {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit {
                rlim_cur: 4096,
                rlim_max: 4096,
            };
            assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
        }
        let mut ev = EventLoop::new().unwrap();
        fs::write_file(
            &mut ev,
            Path::new(&dir).join("f"),
            vec![b'n'; 1 << 20],
            |_, r| {
                let e = r.unwrap_err();
                println!("write failed: {}", e.raw_os_error().unwrap_or(0));
            },
        )
        .unwrap();
        ev.run().unwrap();
        return;
    }
    let tmp = TempDir::new("fs-partial");
    std::fs::write(tmp.0.join("f"), "old contents").unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "write_file_never_leaves_a_partial_file",
            "--nocapture",
        ])
        .env("EVLOOP_FSIZE_CHILD", &tmp.0)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("write failed: {}", libc::EFBIG)),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(tmp.0.join("f")).unwrap(),
        "old contents"
    );
    assert_eq!(entries(&tmp.0), ["f"]);
}

#[test]
fn write_file_replaces_and_keeps_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = TempDir::new("fs-perm");
    let f = tmp.0.join("f");
    std::fs::write(&f, "old").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
    let mut ev = EventLoop::new().unwrap();
    fs::write_file(&mut ev, &f, "new", |_, r| r.unwrap()).unwrap();
    ev.run().unwrap();
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "new");
    assert_eq!(
        std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
        0o640
    );
}

/// Runs one pool call to completion and returns what its callback got.
fn done<T: 'static>(
    ev: &mut EventLoop,
    start: impl FnOnce(&mut EventLoop, Box<dyn FnOnce(&mut EventLoop, T)>) -> io::Result<JobId>,
) -> T {
    let slot = Rc::new(RefCell::new(None));
    let s = slot.clone();
    start(ev, Box::new(move |_, v| *s.borrow_mut() = Some(v))).unwrap();
    ev.run().unwrap();
    let got = slot.borrow_mut().take();
    got.expect("the callback ran")
}

fn read_write_create() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.read(true).write(true).create(true);
    o
}

/// follows libuv test/test-fs.c fs_file_async, fs_read_file_eof, fs_fstat
/// and Node's test/parallel/test-fs-read.js / test-fs-truncate.js.
#[test]
fn open_write_read_stat_truncate_sync_close() {
    let tmp = TempDir::new("fs-file-ops");
    let path = tmp.0.join("f");
    let mut ev = EventLoop::new().unwrap();
    let file = done(&mut ev, |ev, cb| {
        fs::open(ev, &path, &read_write_create(), cb)
    })
    .unwrap();
    let n = done(&mut ev, |ev, cb| file.write_at(ev, 0, "hello world", cb)).unwrap();
    assert_eq!(n, 11);
    let got = done(&mut ev, |ev, cb| file.read_at(ev, 0, 5, cb)).unwrap();
    assert_eq!(got, b"hello");
    let got = done(&mut ev, |ev, cb| file.read_at(ev, 6, 100, cb)).unwrap();
    assert_eq!(got, b"world", "short at the end of the file");
    let got = done(&mut ev, |ev, cb| file.read_at(ev, 11, 10, cb)).unwrap();
    assert!(got.is_empty(), "empty at the end of the file");
    let got = done(&mut ev, |ev, cb| file.read_at(ev, 1 << 40, 10, cb)).unwrap();
    assert!(got.is_empty(), "empty past the end of the file");
    let got = done(&mut ev, |ev, cb| file.read_at(ev, 3, 0, cb)).unwrap();
    assert!(got.is_empty(), "a read of 0 bytes");
    let meta = done(&mut ev, |ev, cb| file.stat(ev, cb)).unwrap();
    assert_eq!((meta.len(), meta.is_file()), (11, true));
    done(&mut ev, |ev, cb| file.set_len(ev, 5, cb)).unwrap();
    done(&mut ev, |ev, cb| file.sync(ev, cb)).unwrap();
    done(&mut ev, |ev, cb| file.sync_data(ev, cb)).unwrap();
    let meta = done(&mut ev, |ev, cb| file.stat(ev, cb)).unwrap();
    assert_eq!(meta.len(), 5);
    assert!(!file.is_closed());
    done(&mut ev, |ev, cb| file.close(ev, cb)).unwrap();
    assert!(file.is_closed());
    assert_eq!(std::fs::read(&path).unwrap(), b"hello");
}

/// A write past the end leaves a hole of zeros (follows libuv
/// test/test-fs.c fs_write_alotof_bufs_with_offset, which writes at an
/// offset past the end).
#[test]
fn a_write_past_the_end_leaves_a_hole_of_zeros() {
    let tmp = TempDir::new("fs-hole");
    let path = tmp.0.join("f");
    let mut ev = EventLoop::new().unwrap();
    let file = done(&mut ev, |ev, cb| {
        fs::open(ev, &path, &read_write_create(), cb)
    })
    .unwrap();
    assert_eq!(
        done(&mut ev, |ev, cb| file.write_at(ev, 10_000, "x", cb)).unwrap(),
        1
    );
    let got = done(&mut ev, |ev, cb| file.read_at(ev, 0, 20_000, cb)).unwrap();
    assert_eq!(got.len(), 10_001);
    assert!(got[..10_000].iter().all(|&b| b == 0));
    assert_eq!(got[10_000], b'x');
    done(&mut ev, |ev, cb| file.close(ev, cb)).unwrap();
}

/// After `close`, every call through any clone fails at once with EBADF and
/// its callback never runs; closing twice is the same error (Node's
/// test/parallel/test-fs-close-errors.js; libuv answers EBADF for a closed
/// fd).
#[test]
fn a_closed_file_refuses_every_call_and_a_second_close() {
    let tmp = TempDir::new("fs-closed");
    let path = tmp.0.join("f");
    std::fs::write(&path, "data").unwrap();
    let mut ev = EventLoop::new().unwrap();
    let file = done(&mut ev, |ev, cb| {
        fs::open(ev, &path, &read_write_create(), cb)
    })
    .unwrap();
    let clone = file.clone();
    done(&mut ev, |ev, cb| file.close(ev, cb)).unwrap();
    assert!(clone.is_closed());
    let ran = Rc::new(RefCell::new(0));
    let r = ran.clone();
    let bump = move || {
        let r = r.clone();
        move |_: &mut EventLoop, _: io::Result<()>| *r.borrow_mut() += 1
    };
    let results = [
        clone.read_at(&mut ev, 0, 4, |_, _| panic!("never runs")),
        clone.write_at(&mut ev, 0, "x", |_, _| panic!("never runs")),
        clone.stat(&mut ev, |_, _| panic!("never runs")),
        clone.sync(&mut ev, bump()),
        clone.sync_data(&mut ev, bump()),
        clone.set_len(&mut ev, 0, bump()),
        clone.close(&mut ev, bump()),
        file.close(&mut ev, bump()),
    ];
    for r in results {
        let e = r.unwrap_err();
        assert_eq!(ErrorContext::os_error(&e), Some(libc::EBADF), "{e}");
        assert!(e.to_string().contains("the file is closed"), "{e}");
    }
    ev.run().unwrap();
    assert_eq!(*ran.borrow(), 0, "no callback of a refused call runs");
    assert_eq!(std::fs::read(&path).unwrap(), b"data");
}

/// A read queued before `close` still completes with the data; the close
/// reports success once it is done.
#[test]
fn close_lets_jobs_started_before_it_finish() {
    let tmp = TempDir::new("fs-close-pending");
    let path = tmp.0.join("f");
    std::fs::write(&path, vec![7u8; 100_000]).unwrap();
    let mut ev = EventLoop::new().unwrap();
    let file = done(&mut ev, |ev, cb| {
        fs::open(ev, &path, &read_write_create(), cb)
    })
    .unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    for _ in 0..4 {
        let l = log.clone();
        file.read_at(&mut ev, 0, 100_000, move |_, r| {
            let data = r.unwrap();
            assert!(data.len() == 100_000 && data.iter().all(|&b| b == 7));
            l.borrow_mut().push("read");
        })
        .unwrap();
    }
    let l = log.clone();
    file.close(&mut ev, move |_, r| {
        r.unwrap();
        l.borrow_mut().push("closed");
    })
    .unwrap();
    ev.run().unwrap();
    let mut got = log.borrow().clone();
    got.sort();
    assert_eq!(got, ["closed", "read", "read", "read", "read"]);
}

/// follows libuv test/test-fs.c fs_file_noent and fs_open_dir.
#[test]
fn open_errors_reach_the_callback() {
    let tmp = TempDir::new("fs-open-errors");
    let mut ev = EventLoop::new().unwrap();
    let mut read_only = OpenOptions::new();
    read_only.read(true);
    let e = done(&mut ev, |ev, cb| {
        fs::open(ev, tmp.0.join("missing"), &read_only, cb)
    })
    .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    let e = done(&mut ev, |ev, cb| {
        fs::open(ev, &tmp.0, &read_write_create(), cb)
    })
    .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EISDIR));
    let mut create_new = OpenOptions::new();
    create_new.write(true).create_new(true);
    std::fs::write(tmp.0.join("taken"), "").unwrap();
    let e = done(&mut ev, |ev, cb| {
        fs::open(ev, tmp.0.join("taken"), &create_new, cb)
    })
    .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
    // Writing to a file opened read-only fails on the pool, in the callback.
    let file = done(&mut ev, |ev, cb| {
        fs::open(ev, tmp.0.join("taken"), &read_only, cb)
    })
    .unwrap();
    let e = done(&mut ev, |ev, cb| file.write_at(ev, 0, "x", cb)).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EBADF));
    let e = done(&mut ev, |ev, cb| file.set_len(ev, 0, cb)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    done(&mut ev, |ev, cb| file.close(ev, cb)).unwrap();
}

/// A length that cannot be allocated is an error in the callback: no panic,
/// no abort.
#[test]
fn an_impossible_read_length_is_out_of_memory_not_a_crash() {
    let tmp = TempDir::new("fs-huge-read");
    let path = tmp.0.join("f");
    let mut ev = EventLoop::new().unwrap();
    let file = done(&mut ev, |ev, cb| {
        fs::open(ev, &path, &read_write_create(), cb)
    })
    .unwrap();
    let e = done(&mut ev, |ev, cb| file.read_at(ev, 0, usize::MAX, cb)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::OutOfMemory);
    done(&mut ev, |ev, cb| file.close(ev, cb)).unwrap();
}

/// follows libuv test/test-fs.c fs_mkdtemp and Node's
/// test/parallel/test-fs-mkdtemp.js.
#[test]
fn mkdtemp_makes_unique_private_directories() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = TempDir::new("fs-mkdtemp");
    let prefix = tmp.0.join("work-");
    let mut ev = EventLoop::new().unwrap();
    let a = done(&mut ev, |ev, cb| fs::mkdtemp(ev, &prefix, cb)).unwrap();
    let b = done(&mut ev, |ev, cb| fs::mkdtemp(ev, &prefix, cb)).unwrap();
    assert_ne!(a, b);
    for dir in [&a, &b] {
        let name = dir.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("work-") && name.len() == "work-".len() + 6);
        let meta = std::fs::metadata(dir).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    }
    let e = done(&mut ev, |ev, cb| {
        fs::mkdtemp(ev, tmp.0.join("missing/x-"), cb)
    })
    .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
}

/// follows libuv test/test-fs-copyfile.c fs_copyfile (contents and mode
/// copied, an existing destination overwritten, errors for a missing
/// source) and Node's test/parallel/test-fs-copyfile.js.
#[test]
fn copy_copies_contents_and_mode_and_overwrites() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = TempDir::new("fs-copy");
    let (src, dst) = (tmp.0.join("src"), tmp.0.join("dst"));
    std::fs::write(&src, "original contents").unwrap();
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::write(&dst, "to be replaced, and longer than the source").unwrap();
    let mut ev = EventLoop::new().unwrap();
    let n = done(&mut ev, |ev, cb| fs::copy(ev, &src, &dst, cb)).unwrap();
    assert_eq!(n, 17);
    assert_eq!(std::fs::read(&dst).unwrap(), b"original contents");
    let mode = std::fs::metadata(&dst).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640);
    let e = done(&mut ev, |ev, cb| fs::copy(ev, tmp.0.join("nope"), &dst, cb)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    let e = done(&mut ev, |ev, cb| fs::copy(ev, &tmp.0, tmp.0.join("d2"), cb)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "a directory: {e}");
}

/// follows libuv test/test-fs.c fs_symlink, fs_readlink, fs_realpath.
#[test]
fn symlink_read_link_and_canonicalize() {
    let tmp = TempDir::new("fs-links");
    let real = tmp.0.canonicalize().unwrap();
    std::fs::write(tmp.0.join("target"), "t").unwrap();
    let link = tmp.0.join("link");
    let mut ev = EventLoop::new().unwrap();
    done(&mut ev, |ev, cb| fs::symlink(ev, "target", &link, cb)).unwrap();
    let to = done(&mut ev, |ev, cb| fs::read_link(ev, &link, cb)).unwrap();
    assert_eq!(to, Path::new("target"), "stored as given");
    let full = done(&mut ev, |ev, cb| {
        fs::canonicalize(ev, tmp.0.join("./link/../link"), cb)
    });
    // `link/..` is resolved after the link: link is a file, so this fails.
    assert!(full.is_err());
    let full = done(&mut ev, |ev, cb| fs::canonicalize(ev, &link, cb)).unwrap();
    assert_eq!(full, real.join("target"));
    let e = done(&mut ev, |ev, cb| fs::symlink(ev, "other", &link, cb)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
    let e = done(&mut ev, |ev, cb| {
        fs::read_link(ev, tmp.0.join("target"), cb)
    })
    .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "not a link");
    let e = done(&mut ev, |ev, cb| {
        fs::canonicalize(ev, tmp.0.join("missing"), cb)
    })
    .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    // A dangling link can be made and read, not canonicalized.
    let dangling = tmp.0.join("dangling");
    done(&mut ev, |ev, cb| fs::symlink(ev, "nowhere", &dangling, cb)).unwrap();
    let e = done(&mut ev, |ev, cb| fs::canonicalize(ev, &dangling, cb)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
}

/// follows libuv test/test-fs.c fs_chmod.
#[test]
fn chmod_sets_the_mode_and_refuses_bad_modes() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = TempDir::new("fs-chmod");
    let f = tmp.0.join("f");
    std::fs::write(&f, "x").unwrap();
    let mut ev = EventLoop::new().unwrap();
    done(&mut ev, |ev, cb| fs::chmod(ev, &f, 0o600, cb)).unwrap();
    assert_eq!(
        std::fs::metadata(&f).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    done(&mut ev, |ev, cb| fs::chmod(ev, &f, 0o755, cb)).unwrap();
    assert_eq!(
        std::fs::metadata(&f).unwrap().permissions().mode() & 0o7777,
        0o755
    );
    let e = fs::chmod(&mut ev, &f, 0o10_000, |_, _| panic!("never runs")).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    let e = done(&mut ev, |ev, cb| {
        fs::chmod(ev, tmp.0.join("missing"), 0o600, cb)
    })
    .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    ev.run().unwrap();
}
