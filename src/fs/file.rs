//! Open files, read and written at offsets on the pool (libuv's
//! `uv_fs_open` / `uv_fs_read` / `uv_fs_write` / `uv_fs_close`, Node's
//! `fs.open` / `fs.read` / `fs.write` / `fs.close`).
//!
//! A [`File`] is a handle on the loop thread to an `Arc<std::fs::File>`:
//! each operation clones the `Arc` into its pool job, so jobs run in
//! parallel on any pool thread (reads and writes take an explicit offset:
//! `pread` / `pwrite`, there is no shared file position to race on).
//!
//! [`File::close`] marks the handle closed at once, on the loop thread, so
//! every later call through any clone fails with a clear error
//! (`EBADF`, "the file is closed") and its callback never runs. The fd itself
//! is closed on the pool when the last job holding it is done: a read
//! started before `close` still completes, and the fd number can never be
//! reused under it.

use std::cell::RefCell;
use std::fs::{Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use super::on_pool;
use crate::error::with_context;
use crate::{sys, EventLoop, JobId};

/// A file opened with [`open`]. Clones are handles to the same open file;
/// it stays open until [`close`](File::close) (or until the last clone is
/// dropped and no job uses it).
#[derive(Clone)]
pub struct File {
    /// `None` once closed.
    inner: Rc<RefCell<Option<Arc<std::fs::File>>>>,
}

impl std::fmt::Debug for File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::os::fd::AsRawFd;
        let fd = self.inner.borrow().as_ref().map(|file| file.as_raw_fd());
        f.debug_struct("File").field("fd", &fd).finish()
    }
}

fn closed_file() -> io::Error {
    with_context(
        io::Error::from_raw_os_error(libc::EBADF),
        "evloop: the file is closed",
    )
}

/// Opens `path` with `options` on the pool; `done` gets the [`File`].
///
/// `options` is the standard library's, so every flag it knows works,
/// including `std::os::unix::fs::OpenOptionsExt` (`mode`, `custom_flags`).
/// The fd is close-on-exec, as Rust always opens them.
///
/// # Errors
/// Only if the job cannot be started; `done` then never runs. The open's own
/// error (`NotFound`, `PermissionDenied`, `InvalidInput` for options that
/// make no sense, ...) reaches `done`.
pub fn open(
    ev: &mut EventLoop,
    path: impl AsRef<Path>,
    options: &OpenOptions,
    done: impl FnOnce(&mut EventLoop, io::Result<File>) + 'static,
) -> io::Result<JobId> {
    let path = path.as_ref().to_path_buf();
    let options = options.clone();
    on_pool(
        ev,
        move || options.open(path),
        move |ev, result| {
            done(
                ev,
                result.map(|file| File {
                    inner: Rc::new(RefCell::new(Some(Arc::new(file)))),
                }),
            )
        },
    )
}

impl File {
    /// The open file for a job, or the "closed" error.
    fn shared(&self) -> io::Result<Arc<std::fs::File>> {
        self.inner.borrow().clone().ok_or_else(closed_file)
    }

    /// Reads up to `len` bytes starting at byte `offset` (`pread`); the file
    /// position is not used or moved. `done` gets the bytes: all `len` of
    /// them, fewer only at the end of the file, none at or past it.
    ///
    /// The buffer is allocated on the pool thread; if `len` bytes cannot be
    /// allocated, `done` gets `OutOfMemory` (nothing panics or aborts).
    ///
    /// # Errors
    /// The file is closed (`EBADF`), or the job cannot be started; `done`
    /// then never runs.
    pub fn read_at(
        &self,
        ev: &mut EventLoop,
        offset: u64,
        len: usize,
        done: impl FnOnce(&mut EventLoop, io::Result<Vec<u8>>) + 'static,
    ) -> io::Result<JobId> {
        let file = self.shared()?;
        on_pool(ev, move || read_fully_at(&file, offset, len), done)
    }

    /// Writes all of `data` starting at byte `offset` (`pwrite`, repeated
    /// until done); writing past the end of the file extends it, leaving a
    /// hole of zeros. `done` gets the number of bytes written (`data.len()`).
    /// On Linux a file opened with `append` appends whatever the offset
    /// (`pwrite(2)`'s documented behaviour).
    ///
    /// # Errors
    /// The file is closed (`EBADF`), or the job cannot be started; `done`
    /// then never runs.
    pub fn write_at(
        &self,
        ev: &mut EventLoop,
        offset: u64,
        data: impl Into<Vec<u8>>,
        done: impl FnOnce(&mut EventLoop, io::Result<usize>) + 'static,
    ) -> io::Result<JobId> {
        let file = self.shared()?;
        let data = data.into();
        on_pool(
            ev,
            move || file.write_all_at(&data, offset).map(|()| data.len()),
            done,
        )
    }

    /// Reads the open file's metadata (`fstat`).
    ///
    /// # Errors
    /// As [`read_at`](File::read_at).
    pub fn stat(
        &self,
        ev: &mut EventLoop,
        done: impl FnOnce(&mut EventLoop, io::Result<Metadata>) + 'static,
    ) -> io::Result<JobId> {
        let file = self.shared()?;
        on_pool(ev, move || file.metadata(), done)
    }

    /// Flushes the file's data and metadata to disk (`fsync`).
    ///
    /// # Errors
    /// As [`read_at`](File::read_at).
    pub fn sync(
        &self,
        ev: &mut EventLoop,
        done: impl FnOnce(&mut EventLoop, io::Result<()>) + 'static,
    ) -> io::Result<JobId> {
        let file = self.shared()?;
        on_pool(ev, move || file.sync_all(), done)
    }

    /// Flushes the file's data, and only the metadata needed to read it back
    /// (`fdatasync`): cheaper than [`sync`](File::sync) when only the
    /// contents matter.
    ///
    /// # Errors
    /// As [`read_at`](File::read_at).
    pub fn sync_data(
        &self,
        ev: &mut EventLoop,
        done: impl FnOnce(&mut EventLoop, io::Result<()>) + 'static,
    ) -> io::Result<JobId> {
        let file = self.shared()?;
        on_pool(ev, move || file.sync_data(), done)
    }

    /// Truncates or extends the file to `len` bytes (`ftruncate`; an
    /// extension reads as zeros). The file must be open for writing.
    ///
    /// # Errors
    /// As [`read_at`](File::read_at).
    pub fn set_len(
        &self,
        ev: &mut EventLoop,
        len: u64,
        done: impl FnOnce(&mut EventLoop, io::Result<()>) + 'static,
    ) -> io::Result<JobId> {
        let file = self.shared()?;
        on_pool(ev, move || file.set_len(len), done)
    }

    /// Closes the file: every later call through any clone fails with
    /// `EBADF` at once, and `done` gets what `close(2)` said, from the pool.
    /// Jobs started before the close still complete; the fd is closed when
    /// the last of them is done (then `done` gets `Ok`, as that close
    /// happens later).
    ///
    /// # Errors
    /// The file was already closed (`EBADF`, "the file is closed"), or the
    /// job cannot be started (the file is then closed all the same, when its
    /// jobs are done); `done` then never runs.
    pub fn close(
        &self,
        ev: &mut EventLoop,
        done: impl FnOnce(&mut EventLoop, io::Result<()>) + 'static,
    ) -> io::Result<JobId> {
        let file = self.inner.borrow_mut().take().ok_or_else(closed_file)?;
        on_pool(
            ev,
            move || match Arc::try_unwrap(file) {
                Ok(file) => sys::close(file.into()),
                Err(_shared) => Ok(()), // the last job drops (and closes) it
            },
            done,
        )
    }

    /// True once [`close`](File::close) was called on any clone.
    pub fn is_closed(&self) -> bool {
        self.inner.borrow().is_none()
    }
}

/// `pread` until `len` bytes or the end of the file.
fn read_fully_at(file: &std::fs::File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    buf.try_reserve_exact(len).map_err(|e| {
        io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!("read_at: cannot allocate {len} bytes: {e}"),
        )
    })?;
    buf.resize(len, 0);
    let mut filled = 0;
    while filled < len {
        let at = offset.checked_add(filled as u64).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "read_at: offset overflows")
        })?;
        match file.read_at(&mut buf[filled..], at) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}
