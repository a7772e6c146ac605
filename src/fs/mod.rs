//! Files on the blocking-work pool, and watching paths for changes.
//!
//! File IO cannot be polled (a regular file is always "ready"), so, as libuv
//! and Node do, each operation runs on the pool and its callback gets the
//! `io::Result` on the loop thread. Every function returns the job's id (it
//! can be cancelled while queued) or, if it could not be started, the error,
//! and then its callback never runs.
//!
//! - Whole-file and path calls: [`read_file`], [`write_file`], [`append`],
//!   [`metadata`], [`read_dir`], [`remove`], [`rename`], [`mkdtemp`],
//!   [`copy`], [`symlink`], [`read_link`], [`canonicalize`], [`chmod`].
//! - Open files read and written at offsets: [`open`] gives a [`File`]
//!   (module `file`).
//! - Watching a file or a directory: [`watch`] gives an [`FsWatcher`], fed by
//!   one inotify fd per loop that the loop polls like any other fd (module
//!   `watch`).

use std::fs::{self, Metadata, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{EventLoop, JobId};

mod file;
mod watch;

pub use file::{open, File};
pub use watch::{watch, FsEvent, FsEventKind, FsWatcher, WatchOptions};

/// Runs `op` on the pool and `done` with its `io::Result` on the loop thread.
fn on_pool<T: Send + 'static>(
    ev: &mut EventLoop,
    op: impl FnOnce() -> io::Result<T> + Send + 'static,
    done: impl FnOnce(&mut EventLoop, io::Result<T>) + 'static,
) -> io::Result<JobId> {
    ev.spawn_blocking_io(op, done)
}

/// Reads a whole file.
pub fn read_file(
    ev: &mut EventLoop,
    path: impl AsRef<Path>,
    done: impl FnOnce(&mut EventLoop, io::Result<Vec<u8>>) + 'static,
) -> io::Result<JobId> {
    let path = path.as_ref().to_path_buf();
    on_pool(ev, move || fs::read(path), done)
}

/// Replaces a file's contents atomically: the data goes to a temporary file
/// in the same directory, is flushed to disk (`fsync`), then renamed over
/// `path`, and the directory is synced. Readers see the old file or the new
/// one, never a half-written one; on any error the temporary file is removed
/// and the old file is left as it was.
pub fn write_file(
    ev: &mut EventLoop,
    path: impl AsRef<Path>,
    data: impl Into<Vec<u8>>,
    done: impl FnOnce(&mut EventLoop, io::Result<()>) + 'static,
) -> io::Result<JobId> {
    let path = path.as_ref().to_path_buf();
    let data = data.into();
    on_pool(ev, move || write_atomically(&path, &data), done)
}

fn write_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "write_file: no file name"))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(
        ".evloop-tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        if let Ok(old) = fs::metadata(path) {
            file.set_permissions(old.permissions())?;
        }
        file.write_all(data)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Appends to a file, creating it if missing.
pub fn append(
    ev: &mut EventLoop,
    path: impl AsRef<Path>,
    data: impl Into<Vec<u8>>,
    done: impl FnOnce(&mut EventLoop, io::Result<()>) + 'static,
) -> io::Result<JobId> {
    let path = path.as_ref().to_path_buf();
    let data = data.into();
    on_pool(
        ev,
        move || {
            OpenOptions::new()
                .append(true)
                .create(true)
                .open(path)?
                .write_all(&data)
        },
        done,
    )
}

/// Reads a file's metadata (follows symlinks, as `stat`).
pub fn metadata(
    ev: &mut EventLoop,
    path: impl AsRef<Path>,
    done: impl FnOnce(&mut EventLoop, io::Result<Metadata>) + 'static,
) -> io::Result<JobId> {
    let path = path.as_ref().to_path_buf();
    on_pool(ev, move || fs::metadata(path), done)
}

/// Lists a directory: the paths of its entries, sorted by name.
pub fn read_dir(
    ev: &mut EventLoop,
    path: impl AsRef<Path>,
    done: impl FnOnce(&mut EventLoop, io::Result<Vec<PathBuf>>) + 'static,
) -> io::Result<JobId> {
    let path = path.as_ref().to_path_buf();
    on_pool(
        ev,
        move || {
            let mut entries = fs::read_dir(path)?
                .map(|e| e.map(|e| e.path()))
                .collect::<io::Result<Vec<_>>>()?;
            entries.sort();
            Ok(entries)
        },
        done,
    )
}

/// Removes a file, or an empty directory.
pub fn remove(
    ev: &mut EventLoop,
    path: impl AsRef<Path>,
    done: impl FnOnce(&mut EventLoop, io::Result<()>) + 'static,
) -> io::Result<JobId> {
    let path = path.as_ref().to_path_buf();
    on_pool(
        ev,
        move || {
            if fs::symlink_metadata(&path)?.is_dir() {
                fs::remove_dir(path)
            } else {
                fs::remove_file(path)
            }
        },
        done,
    )
}

/// Renames a file or directory, replacing `to` if it is a file.
pub fn rename(
    ev: &mut EventLoop,
    from: impl AsRef<Path>,
    to: impl AsRef<Path>,
    done: impl FnOnce(&mut EventLoop, io::Result<()>) + 'static,
) -> io::Result<JobId> {
    let (from, to) = (from.as_ref().to_path_buf(), to.as_ref().to_path_buf());
    on_pool(ev, move || fs::rename(from, to), done)
}

/// Creates a new, uniquely named directory: `prefix` followed by six random
/// characters, with mode 0700 (libuv `uv_fs_mkdtemp`, Node `fs.mkdtemp`).
/// `done` gets its path. The prefix is a path: `/tmp/app-` makes
/// `/tmp/app-Xa3kQz`; its directory must exist.
pub fn mkdtemp(
    ev: &mut EventLoop,
    prefix: impl AsRef<Path>,
    done: impl FnOnce(&mut EventLoop, io::Result<PathBuf>) + 'static,
) -> io::Result<JobId> {
    let prefix = prefix.as_ref().to_path_buf();
    on_pool(ev, move || crate::sys::mkdtemp(&prefix), done)
}

/// Copies the contents of the file `from` to `to` (libuv `uv_fs_copyfile`,
/// Node `fs.copyFile`); `done` gets the number of bytes copied.
///
/// `to` is created if missing and **overwritten** if it exists (as libuv and
/// Node do by default). Its permission bits become those of `from`;
/// ownership, timestamps and extended attributes are not copied. The kernel
/// copies in place where it can (`copy_file_range`). `from` must be a file:
/// a directory is `InvalidInput`.
pub fn copy(
    ev: &mut EventLoop,
    from: impl AsRef<Path>,
    to: impl AsRef<Path>,
    done: impl FnOnce(&mut EventLoop, io::Result<u64>) + 'static,
) -> io::Result<JobId> {
    let (from, to) = (from.as_ref().to_path_buf(), to.as_ref().to_path_buf());
    on_pool(ev, move || fs::copy(from, to), done)
}

/// Creates a symbolic link at `link` pointing to `target` (libuv
/// `uv_fs_symlink`, Node `fs.symlink`). `target` is stored as given: a
/// relative target is relative to the link's directory, and need not exist.
/// An existing `link` is `AlreadyExists`.
pub fn symlink(
    ev: &mut EventLoop,
    target: impl AsRef<Path>,
    link: impl AsRef<Path>,
    done: impl FnOnce(&mut EventLoop, io::Result<()>) + 'static,
) -> io::Result<JobId> {
    let (target, link) = (target.as_ref().to_path_buf(), link.as_ref().to_path_buf());
    on_pool(ev, move || std::os::unix::fs::symlink(target, link), done)
}

/// Reads where the symbolic link `path` points (libuv `uv_fs_readlink`,
/// Node `fs.readlink`), as stored. Not a link: `InvalidInput` (`EINVAL`).
pub fn read_link(
    ev: &mut EventLoop,
    path: impl AsRef<Path>,
    done: impl FnOnce(&mut EventLoop, io::Result<PathBuf>) + 'static,
) -> io::Result<JobId> {
    let path = path.as_ref().to_path_buf();
    on_pool(ev, move || fs::read_link(path), done)
}

/// The absolute path of `path` with every symbolic link, `.` and `..`
/// resolved (libuv `uv_fs_realpath`, Node `fs.realpath`). The path must
/// exist (`NotFound` otherwise).
pub fn canonicalize(
    ev: &mut EventLoop,
    path: impl AsRef<Path>,
    done: impl FnOnce(&mut EventLoop, io::Result<PathBuf>) + 'static,
) -> io::Result<JobId> {
    let path = path.as_ref().to_path_buf();
    on_pool(ev, move || fs::canonicalize(path), done)
}

/// Sets the permission bits of `path` (libuv `uv_fs_chmod`, Node
/// `fs.chmod`), following symbolic links, e.g. `0o644`.
///
/// # Errors
/// A mode with bits above `0o7777` is `InvalidInput` at once (`done` never
/// runs); otherwise only if the job cannot be started.
pub fn chmod(
    ev: &mut EventLoop,
    path: impl AsRef<Path>,
    mode: u32,
    done: impl FnOnce(&mut EventLoop, io::Result<()>) + 'static,
) -> io::Result<JobId> {
    use std::os::unix::fs::PermissionsExt;
    if mode & !0o7777 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("chmod: mode {mode:#o} has bits above 0o7777"),
        ));
    }
    let path = path.as_ref().to_path_buf();
    on_pool(
        ev,
        move || fs::set_permissions(path, fs::Permissions::from_mode(mode)),
        done,
    )
}
