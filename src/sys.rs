//! The Linux-specific system calls evloop makes, in one place.
//!
//! Everything here is a thin, safe wrapper around one call: pidfds, `pipe2`,
//! `FIONREAD`, `poll` on one fd, `MSG_NOSIGNAL` sends, reads into a vector's
//! spare capacity, the UDP error queue, and signal-disposition plumbing.
//! Other modules call these instead of `libc` directly, so porting evloop to
//! another OS means rewriting this file (and `polling` already covers
//! kqueue). Until someone does, other targets fail to compile here with a
//! message that says so.

#[cfg(not(target_os = "linux"))]
compile_error!(
    "evloop runs on Linux only for now: src/sys.rs holds every OS-specific call (pidfd, pipe2, FIONREAD, MSG_NOSIGNAL, ...) and is the file to port"
);

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Turns a `-1` return into the last OS error.
fn check(rc: libc::c_long) -> io::Result<libc::c_long> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// A pipe as two owned fds `(read end, write end)`, close-on-exec.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the two-element array.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }.into())?;
    // SAFETY: both fds were just created by pipe2 and are owned by no one else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// An fd that turns readable when process `pid` ends (Linux 5.3+; `ENOSYS`
/// before).
pub(crate) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) })?;
    // SAFETY: the kernel just created this fd for us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Bytes waiting to be read, if the fd can tell (pipes, sockets, ttys).
pub(crate) fn bytes_to_read(fd: RawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which is valid.
    let rc = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    if rc == 0 && n > 0 {
        n as usize
    } else {
        0
    }
}

/// True if `fd` reports a hang-up or an error right now (`poll` with a zero
/// timeout).
pub(crate) fn hung_up_or_failed(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let rc = unsafe { libc::poll(&mut p, 1, 0) };
    rc == 1 && p.revents & (libc::POLLHUP | libc::POLLERR) != 0
}

/// True if `fd` is open for writing only (a pipe's write end).
pub(crate) fn is_write_only(fd: &impl AsRawFd) -> bool {
    // SAFETY: F_GETFL on an open fd; no pointers.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    flags >= 0 && flags & libc::O_ACCMODE == libc::O_WRONLY
}

/// One `send` with `MSG_NOSIGNAL`: a peer that is gone is `EPIPE`, never a
/// SIGPIPE.
pub(crate) fn send_nosignal(fd: &impl AsRawFd, data: &[u8]) -> io::Result<usize> {
    // SAFETY: sends from a valid, live slice.
    let n = unsafe {
        libc::send(
            fd.as_raw_fd(),
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_NOSIGNAL,
        )
    };
    Ok(check(n as libc::c_long)? as usize)
}

/// Reads into `buf`'s spare capacity (at most `max` bytes) and extends it by
/// what was read; no zero-filling, no copy.
pub(crate) fn read_to_spare(fd: &impl AsRawFd, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    let want = spare.len().min(max);
    // SAFETY: read(2) writes at most `want` bytes into the spare capacity,
    // which is valid for writes of that length.
    let n = unsafe { libc::read(fd.as_raw_fd(), spare.as_mut_ptr().cast(), want) };
    let n = check(n as libc::c_long)? as usize;
    // SAFETY: the first `n` spare bytes were just initialised by read(2).
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// Reads one entry of a UDP socket's error queue (`IP_RECVERR`), dropping
/// it. False if the queue is empty.
pub(crate) fn dequeue_socket_error(fd: &impl AsRawFd) -> bool {
    let mut data = [0u8; 64];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: an all-zero msghdr is valid (no name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    // SAFETY: `msg` points at one valid iovec over `data`, both live for the
    // call; MSG_DONTWAIT keeps it from blocking.
    let n = unsafe {
        libc::recvmsg(
            fd.as_raw_fd(),
            &mut msg,
            libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT,
        )
    };
    n >= 0
}

/// Sends `signal` to process `pid`.
pub(crate) fn kill(pid: u32, signal: i32) -> io::Result<()> {
    // SAFETY: kill takes two integers.
    check(unsafe { libc::kill(pid as libc::pid_t, signal) }.into()).map(drop)
}

/// A signal's disposition (`sigaction`), as read and restored by evloop.
#[derive(Clone, Copy)]
pub(crate) struct Disposition(libc::sigaction);

impl Disposition {
    /// The current disposition of `signal`.
    pub(crate) fn of(signal: i32) -> Option<Disposition> {
        // SAFETY: queries the disposition into a zeroed, valid struct.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            (libc::sigaction(signal, std::ptr::null(), &mut action) == 0)
                .then_some(Disposition(action))
        }
    }

    /// Installs this disposition for `signal`.
    pub(crate) fn install(&self, signal: i32) -> io::Result<()> {
        // SAFETY: installs a disposition read earlier with sigaction itself,
        // or made by `Disposition::handler`.
        check(unsafe { libc::sigaction(signal, &self.0, std::ptr::null_mut()) }.into()).map(drop)
    }

    /// `handler`, called with siginfo, restarting interrupted system calls
    /// (`SA_SIGINFO | SA_RESTART`, as signal-hook installs its own), with no
    /// extra signal blocked while it runs.
    pub(crate) fn handler(handler: SignalHandler) -> Disposition {
        // SAFETY: a zeroed sigaction is valid (SIG_DFL, no flags, empty mask).
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = handler as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        Disposition(action)
    }

    /// True if this disposition runs `handler`.
    pub(crate) fn runs(&self, handler: SignalHandler) -> bool {
        self.0.sa_sigaction == handler as usize
    }

    /// The function this disposition runs, for a handler installed over it
    /// to pass the signal on: `None` for the default action and "ignore".
    pub(crate) fn function(&self) -> Option<PreviousHandler> {
        let address = self.0.sa_sigaction;
        (address != libc::SIG_DFL && address != libc::SIG_IGN).then_some(PreviousHandler {
            address,
            siginfo: self.0.sa_flags & libc::SA_SIGINFO != 0,
        })
    }

    /// True for the "ignore" action.
    pub(crate) fn ignores(&self) -> bool {
        self.0.sa_sigaction == libc::SIG_IGN
    }

    /// True if it lets the kernel reap children itself (SIGCHLD ignored, or
    /// `SA_NOCLDWAIT`).
    pub(crate) fn reaps_children(&self) -> bool {
        self.ignores() || self.0.sa_flags & libc::SA_NOCLDWAIT != 0
    }

    /// The same without automatic reaping: "ignore" becomes the default
    /// action, and `SA_NOCLDWAIT` is dropped.
    pub(crate) fn without_reaping(mut self) -> Disposition {
        if self.ignores() {
            self.0.sa_sigaction = libc::SIG_DFL;
        }
        self.0.sa_flags &= !libc::SA_NOCLDWAIT;
        self
    }
}

/// A signal handler's signature with `SA_SIGINFO`.
pub(crate) type SignalHandler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);

/// The function of a disposition that was replaced, kept as plain numbers so
/// a signal handler can read it from atomics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PreviousHandler {
    /// The function's address (never `SIG_DFL` or `SIG_IGN`).
    pub(crate) address: usize,
    /// It was installed with `SA_SIGINFO` (three arguments, not one).
    pub(crate) siginfo: bool,
}

impl PreviousHandler {
    /// Calls the handler from inside a signal handler, with the arguments
    /// that one received.
    ///
    /// # Safety
    /// `self` must come from [`Disposition::function`] of a disposition that
    /// was installed in this process (so it is a handler function of the
    /// signature its flags say), and the call must be made from a signal
    /// handler running for `signal`, passing on its `info` and `context`.
    pub(crate) unsafe fn call(
        self,
        signal: libc::c_int,
        info: *mut libc::siginfo_t,
        context: *mut libc::c_void,
    ) {
        let address = self.address as *const ();
        if self.siginfo {
            // SAFETY: the caller's contract: a three-argument handler.
            let f = unsafe { std::mem::transmute::<*const (), SignalHandler>(address) };
            f(signal, info, context);
        } else {
            // SAFETY: the caller's contract: a one-argument handler.
            let f =
                unsafe { std::mem::transmute::<*const (), extern "C" fn(libc::c_int)>(address) };
            f(signal);
        }
    }
}

/// Sends one byte on a socket without blocking and without raising
/// `SIGPIPE`, ignoring any error: the wakeup a signal handler gives the loop.
/// Async-signal-safe.
pub(crate) fn send_wakeup_byte(fd: RawFd) {
    let byte = 1u8;
    // SAFETY: send reads one byte from a live local; a closed or unrelated
    // fd only makes it fail (the caller keeps `fd` open while it may call).
    unsafe {
        libc::send(
            fd,
            (&byte as *const u8).cast(),
            1,
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
}

/// Keeps `errno` as it was across a signal handler: saved when made, put
/// back when dropped. Async-signal-safe.
pub(crate) struct SavedErrno(libc::c_int);

impl SavedErrno {
    pub(crate) fn new() -> SavedErrno {
        // SAFETY: __errno_location returns this thread's errno, always valid.
        SavedErrno(unsafe { *libc::__errno_location() })
    }
}

impl Drop for SavedErrno {
    fn drop(&mut self) {
        // SAFETY: as in `new`.
        unsafe { *libc::__errno_location() = self.0 };
    }
}

/// Blocks every signal in this thread until dropped.
pub(crate) struct BlockAllSignals(libc::sigset_t);

impl BlockAllSignals {
    pub(crate) fn new() -> BlockAllSignals {
        // SAFETY: sigfillset and pthread_sigmask on local sigset_t values.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
            BlockAllSignals(old)
        }
    }
}

impl Drop for BlockAllSignals {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved by `new`.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
    }
}

/// In a child between fork and exec: every signal back to its default
/// action, then none blocked. Async-signal-safe: no allocation, no locks.
///
/// The raw `rt_sigaction` system call is used because glibc's wrapper
/// refuses signals 32 and 33 (its own), and an inherited "ignore" on those
/// would survive exec too. The kernel's struct with every field zero means
/// SIG_DFL, no flags, empty mask.
pub(crate) fn reset_signals_in_child() {
    // SAFETY: rt_sigaction reads one zeroed kernel sigaction (handler,
    // flags, restorer, 8-byte mask: 32 bytes) and writes nothing; sigset
    // calls on a local value. All are async-signal-safe; errors are ignored.
    unsafe {
        let default = [0u64; 4];
        for sig in 1..=64 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    default.as_ptr(),
                    std::ptr::null_mut::<u64>(),
                    8usize,
                );
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    }
}

/// `dup2` for between fork and exec (async-signal-safe).
pub(crate) fn dup2(source: RawFd, target: RawFd) -> io::Result<()> {
    // SAFETY: dup2 takes two integers.
    check(unsafe { libc::dup2(source, target) }.into()).map(drop)
}

/// A duplicate of `fd`, close-on-exec, numbered `floor` or above.
pub(crate) fn dup_above(fd: &impl AsRawFd, floor: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on an open fd returns a new fd or -1.
    let dup = check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, floor) }.into())?;
    // SAFETY: `dup` was just created and is owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(dup as RawFd) })
}

/// Ignores SIGPIPE if it still has its default action (once per process),
/// so a pipe whose reader is gone is `EPIPE`, not a dead process.
pub(crate) fn ignore_sigpipe() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Some(old) = Disposition::of(libc::SIGPIPE) {
            if old.0.sa_sigaction == libc::SIG_DFL {
                // SAFETY: sets SIGPIPE to "ignore", a valid disposition.
                unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
            }
        }
    });
}

/// Most fds one message carries (the kernel's `SCM_MAX_FD`).
pub(crate) const MAX_FDS_PER_MESSAGE: usize = 253;

/// Writes `bufs` with one call: `sendmsg` with `MSG_NOSIGNAL` for a socket,
/// carrying `fds` as `SCM_RIGHTS` if any; `writev` otherwise (`fds` must be
/// empty: only Unix sockets carry fds). At most `IOV_MAX` buffers are taken.
pub(crate) fn send_vectored(
    fd: &impl AsRawFd,
    is_socket: bool,
    bufs: &[io::IoSlice<'_>],
    fds: &[RawFd],
) -> io::Result<usize> {
    let count = bufs.len().min(1024); // IOV_MAX on Linux
    if !is_socket {
        debug_assert!(fds.is_empty());
        // SAFETY: IoSlice is ABI-compatible with iovec; `count` live slices.
        let n = unsafe { libc::writev(fd.as_raw_fd(), bufs.as_ptr().cast(), count as libc::c_int) };
        return Ok(check(n as libc::c_long)? as usize);
    }
    if fds.len() > MAX_FDS_PER_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("evloop: at most {MAX_FDS_PER_MESSAGE} fds per write"),
        ));
    }
    // Room for a full message of fds (CMSG_SPACE(253 * 4) = 1032 bytes), on
    // the stack: no allocation per write.
    let mut control = [0u64; 130];
    debug_assert!(control_words(fds.len()) <= control.len());
    // SAFETY: an all-zero msghdr is valid (no name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = count;
    if !fds.is_empty() {
        let payload = std::mem::size_of_val(fds) as u32;
        msg.msg_control = control.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE only computes a size.
        msg.msg_controllen = unsafe { libc::CMSG_SPACE(payload) } as usize;
        // SAFETY: `control` holds CMSG_SPACE(payload) bytes, 8-byte aligned,
        // so the first header and its data fit; we write exactly them.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(payload) as usize;
            std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(cmsg).cast(), fds.len());
        }
    }
    // SAFETY: `msg` points at `count` live iovecs and (if any) at `control`,
    // all alive for the call.
    let n = unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
    Ok(check(n as libc::c_long)? as usize)
}

/// 8-byte words of control buffer for `n` fds.
fn control_words(n: usize) -> usize {
    // SAFETY: CMSG_SPACE only computes a size.
    let bytes = unsafe { libc::CMSG_SPACE((n * std::mem::size_of::<RawFd>()) as u32) } as usize;
    bytes.div_ceil(8)
}

/// `recvmsg` into `len` bytes at `data`, appending any fds passed with them
/// (`SCM_RIGHTS`, made close-on-exec) to `fds`. Fds the kernel could not
/// hand over (`MSG_CTRUNC`, e.g. at the fd limit) are closed by it; that is
/// logged as a warning, and the data still delivered.
///
/// # Safety
/// `data` must be valid for writes of `len` bytes.
unsafe fn recv_with_fds_raw(
    fd: &impl AsRawFd,
    data: *mut u8,
    len: usize,
    fds: &mut Vec<OwnedFd>,
) -> io::Result<usize> {
    // Room for a full message of fds (CMSG_SPACE(253 * 4) = 1032 bytes).
    let mut control = [0u64; 130];
    debug_assert!(control_words(MAX_FDS_PER_MESSAGE) <= control.len());
    let mut iov = libc::iovec {
        iov_base: data.cast(),
        iov_len: len,
    };
    // SAFETY: an all-zero msghdr is valid (no name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = control.len() * 8;
    // SAFETY: `iov` covers `len` writable bytes (the caller's promise) and
    // `control` is ours; both outlive the call.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    let n = check(n as libc::c_long)? as usize;
    // SAFETY: the kernel filled `msg`'s control area; the CMSG_* walk stays
    // inside `msg_controllen`, and each SCM_RIGHTS entry holds fds that are
    // now ours alone.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let header = libc::CMSG_LEN(0) as usize;
                let count = ((*cmsg).cmsg_len as usize - header) / std::mem::size_of::<RawFd>();
                let first = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                for k in 0..count {
                    fds.push(OwnedFd::from_raw_fd(first.add(k).read_unaligned()));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        log::warn!("evloop: fds passed over a Unix socket were lost (MSG_CTRUNC)");
    }
    Ok(n)
}

/// `recvmsg` into `buf`, appending passed fds to `fds`.
pub(crate) fn recv_with_fds(
    fd: &impl AsRawFd,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of its length.
    unsafe { recv_with_fds_raw(fd, buf.as_mut_ptr(), buf.len(), fds) }
}

/// `recvmsg` into `buf`'s spare capacity (at most `max` bytes), extending
/// it by what was read and appending passed fds to `fds`.
pub(crate) fn recv_to_spare_with_fds(
    fd: &impl AsRawFd,
    buf: &mut Vec<u8>,
    max: usize,
    fds: &mut Vec<OwnedFd>,
) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    let want = spare.len().min(max);
    // SAFETY: the spare capacity is valid for writes of `want` bytes.
    let n = unsafe { recv_with_fds_raw(fd, spare.as_mut_ptr().cast(), want, fds)? };
    // SAFETY: the first `n` spare bytes were just initialised by recvmsg.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// Sets `SO_LINGER` to {on, 0 s}: closing the socket then sends a reset
/// (RST) and drops unsent data, instead of a graceful FIN.
pub(crate) fn set_linger_zero(fd: &impl AsRawFd) -> io::Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: passes a valid `linger` and its size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    check(rc.into()).map(drop)
}

/// Creates a new directory named `prefix` followed by six random
/// characters, mode 0700 (`mkdtemp(3)`); returns its path.
pub(crate) fn mkdtemp(prefix: &std::path::Path) -> io::Result<std::path::PathBuf> {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let mut template = prefix.as_os_str().as_bytes().to_vec();
    if template.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "path contains a NUL byte",
        ));
    }
    template.extend_from_slice(b"XXXXXX\0");
    // SAFETY: `template` is NUL-terminated and writable; mkdtemp replaces
    // the six Xs in place and returns the same pointer or NULL.
    let rc = unsafe { libc::mkdtemp(template.as_mut_ptr().cast()) };
    if rc.is_null() {
        return Err(io::Error::last_os_error());
    }
    template.pop(); // the NUL
    Ok(std::ffi::OsString::from_vec(template).into())
}

/// Closes `fd` and reports what `close(2)` said (dropping an `OwnedFd`
/// ignores it). The fd is gone either way, as Linux always releases it.
pub(crate) fn close(fd: OwnedFd) -> io::Result<()> {
    use std::os::fd::IntoRawFd;
    // SAFETY: we own the fd and give it up here; it is closed exactly once.
    check(unsafe { libc::close(fd.into_raw_fd()) }.into()).map(drop)
}

/// `getnameinfo(3)` with `NI_NAMEREQD`: the host name and the service name
/// (or the port in digits if it has none) of a socket address. An address
/// with no name is `NotFound`; other resolver failures say what
/// `gai_strerror` says.
pub(crate) fn getnameinfo(addr: &std::net::SocketAddr) -> io::Result<(String, String)> {
    let sockaddr = socket2::SockAddr::from(*addr);
    let mut host = [0 as libc::c_char; 1025];
    let mut service = [0 as libc::c_char; 32];
    // SAFETY: the address and both buffers are valid for the lengths given
    // and live for the call; getnameinfo NUL-terminates what it writes.
    let rc = unsafe {
        libc::getnameinfo(
            sockaddr.as_ptr().cast(),
            sockaddr.len(),
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            service.as_mut_ptr(),
            service.len() as libc::socklen_t,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        if rc == libc::EAI_SYSTEM {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: gai_strerror returns a static NUL-terminated string.
        let message = unsafe { std::ffi::CStr::from_ptr(libc::gai_strerror(rc)) };
        let kind = if rc == libc::EAI_NONAME {
            io::ErrorKind::NotFound
        } else {
            io::ErrorKind::Other
        };
        return Err(io::Error::new(
            kind,
            format!("getnameinfo {addr}: {}", message.to_string_lossy()),
        ));
    }
    // SAFETY: on success both buffers hold NUL-terminated strings.
    let (host, service) = unsafe {
        (
            std::ffi::CStr::from_ptr(host.as_ptr()),
            std::ffi::CStr::from_ptr(service.as_ptr()),
        )
    };
    Ok((
        host.to_string_lossy().into_owned(),
        service.to_string_lossy().into_owned(),
    ))
}

/// A new inotify instance, non-blocking and close-on-exec.
pub(crate) fn inotify_init() -> io::Result<OwnedFd> {
    // SAFETY: inotify_init1 takes flags and returns a new fd or -1.
    let fd = check(unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) }.into())?;
    // SAFETY: the kernel just created this fd for us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Adds (or updates) an inotify watch on `path`; returns its watch
/// descriptor. The same inode watched twice on one instance gets the same
/// descriptor.
pub(crate) fn inotify_add_watch(
    inotify: &impl AsRawFd,
    path: &std::path::Path,
    mask: u32,
) -> io::Result<i32> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    // SAFETY: a valid NUL-terminated path, live for the call.
    let wd = unsafe { libc::inotify_add_watch(inotify.as_raw_fd(), path.as_ptr(), mask) };
    Ok(check(wd.into())? as i32)
}

/// Removes an inotify watch (the kernel then queues `IN_IGNORED` for it).
pub(crate) fn inotify_rm_watch(inotify: &impl AsRawFd, wd: i32) -> io::Result<()> {
    // SAFETY: inotify_rm_watch takes two integers.
    check(unsafe { libc::inotify_rm_watch(inotify.as_raw_fd(), wd) }.into()).map(drop)
}

/// The file type and mode bits of an open fd (`fstat`'s `st_mode`), without
/// duplicating it (which could fail at the fd limit).
pub(crate) fn file_mode(fd: &impl AsRawFd) -> io::Result<libc::mode_t> {
    // SAFETY: an all-zero `stat` is a valid out-buffer for fstat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes into `st`, which lives for the call.
    check(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) }.into())?;
    Ok(st.st_mode)
}

/// Dissolves a datagram socket's association with its peer: `connect` with
/// an `AF_UNSPEC` address (Linux may unbind a port the OS had chosen).
pub(crate) fn disconnect_datagram(fd: &impl AsRawFd) -> io::Result<()> {
    // SAFETY: a zeroed sockaddr is valid; AF_UNSPEC is 0.
    let mut addr: libc::sockaddr = unsafe { std::mem::zeroed() };
    addr.sa_family = libc::AF_UNSPEC as libc::sa_family_t;
    // SAFETY: passes a valid sockaddr and its size.
    let rc = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            &addr,
            std::mem::size_of::<libc::sockaddr>() as libc::socklen_t,
        )
    };
    check(rc.into()).map(drop)
}

/// Sends `signal` to `pid` as `kill(2)` reads it: a process, or with 0 or a
/// negative number a process group, or with -1 every process we may signal.
pub(crate) fn kill_pid(pid: libc::pid_t, signal: i32) -> io::Result<()> {
    // SAFETY: kill takes two integers.
    check(unsafe { libc::kill(pid, signal) }.into()).map(drop)
}

/// The highest signal number (`SIGRTMAX`).
pub(crate) fn highest_signal() -> i32 {
    libc::SIGRTMAX()
}

extern "C" {
    /// The C library's environment, as `execvp` reads it (`PATH` included).
    static mut environ: *const *const libc::c_char;
}

/// What a child execs, made before the fork so that the child allocates
/// nothing: the program and `NULL`-terminated pointer arrays over owned
/// C strings (kept as addresses, so the value can move into a
/// `Send + Sync` closure; the strings' buffers never move).
#[derive(Debug)]
pub(crate) struct ExecImage {
    program: std::ffi::CString,
    _strings: Vec<std::ffi::CString>,
    argv: Vec<usize>,
    envp: Vec<usize>,
}

impl ExecImage {
    /// `argv` includes `argv[0]`; `env` holds `KEY=value` entries.
    pub(crate) fn new(
        program: std::ffi::CString,
        argv: Vec<std::ffi::CString>,
        env: Vec<std::ffi::CString>,
    ) -> ExecImage {
        let pointers = |v: &[std::ffi::CString]| -> Vec<usize> {
            v.iter()
                .map(|s| s.as_ptr() as usize)
                .chain(std::iter::once(0))
                .collect()
        };
        let (argv_ptrs, envp_ptrs) = (pointers(&argv), pointers(&env));
        let mut strings = argv;
        strings.extend(env);
        ExecImage {
            program,
            _strings: strings,
            argv: argv_ptrs,
            envp: envp_ptrs,
        }
    }

    /// In a child between fork and exec: makes the image's environment the
    /// process's (so `execvp` searches its `PATH`, as libuv and std do) and
    /// execs; returns only on failure, with the error. Async-signal-safe: it
    /// assigns one pointer and calls `execvp`.
    pub(crate) fn exec(&self) -> io::Error {
        // SAFETY: after fork only this thread exists, so nothing else reads
        // `environ` meanwhile; both arrays are NULL-terminated arrays of
        // pointers to live C strings owned by `self`, which outlives the
        // call (exec replaces the process, or returns).
        unsafe {
            environ = self.envp.as_ptr().cast();
            libc::execvp(self.program.as_ptr(), self.argv.as_ptr().cast());
        }
        io::Error::last_os_error()
    }
}

/// In a child between fork and exec: writes `err`'s errno (4 bytes, native
/// order) to the parent's report pipe `fd` and exits with status 127, never
/// returning to the caller's code. Async-signal-safe.
pub(crate) fn report_and_exit(fd: RawFd, err: &io::Error) -> ! {
    let errno: i32 = err.raw_os_error().unwrap_or(libc::EINVAL);
    let bytes = errno.to_ne_bytes();
    // SAFETY: write from a live local array, then _exit; both are
    // async-signal-safe. A short or failed write reads as a failed exec of
    // unknown cause in the parent, still an error.
    unsafe {
        libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(127)
    }
}

/// Reads a child's exec report: `None` at end of file (the exec worked: the
/// report pipe closed at exec), or the errno the child sent.
pub(crate) fn read_exec_report(fd: &impl AsRawFd) -> io::Result<Option<i32>> {
    let mut bytes = [0u8; 4];
    let mut got = 0;
    while got < bytes.len() {
        // SAFETY: reads into the unfilled rest of a live local array.
        let n = unsafe {
            libc::read(
                fd.as_raw_fd(),
                bytes[got..].as_mut_ptr().cast(),
                bytes.len() - got,
            )
        };
        match check(n as libc::c_long) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Ok(Some(libc::EIO)), // a torn report
            Ok(n) => got += n as usize,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Some(i32::from_ne_bytes(bytes)))
}

/// In a child: makes it the leader of a new session and process group, with
/// no controlling terminal (`setsid`). Async-signal-safe.
pub(crate) fn new_session() -> io::Result<()> {
    // SAFETY: setsid takes no arguments.
    check(unsafe { libc::setsid() }.into()).map(drop)
}

/// In a child: drops supplementary groups, then sets the group id and the
/// user id (`setgroups(0)`, `setgid`, `setuid`, in that order, as libuv:
/// the group must change while we may still change it). A failing
/// `setgroups` is ignored (as libuv; `setgid`/`setuid` then report the lack
/// of privilege). Async-signal-safe.
pub(crate) fn change_ids(uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
    // SAFETY: setgroups with a count of 0 reads no memory; setgid and setuid
    // take integers.
    unsafe {
        libc::setgroups(0, std::ptr::null());
        if let Some(gid) = gid {
            check(libc::setgid(gid).into())?;
        }
        if let Some(uid) = uid {
            check(libc::setuid(uid).into())?;
        }
    }
    Ok(())
}
