//! Files on the pool.

use std::cell::RefCell;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;

use evloop::{fs, EventLoop};

/// A fresh directory under the target dir, removed on drop.
struct TempDir(PathBuf);
impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("evloop-fs-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

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
    let tmp = TempDir::new("ops");
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
    let tmp = TempDir::new("errors");
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
    let tmp = TempDir::new("overdir");
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
    let tmp = TempDir::new("partial");
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
    let tmp = TempDir::new("perm");
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
