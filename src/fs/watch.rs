//! Watching files and directories for changes (libuv's `uv_fs_event`,
//! Node's `fs.watch`), with Linux's inotify.
//!
//! # One inotify fd per loop
//!
//! As libuv does, a loop has one inotify instance for all its watchers,
//! made when the first [`watch`] starts and closed when the last watcher
//! ends. Its fd is non-blocking and watched by the loop like any other fd
//! ([`EventLoop::watch`]): when it is readable, the loop reads every event
//! waiting, turns them into [`FsEvent`]s for the watchers concerned, and
//! calls their callbacks in the kernel's order. One instance rather than one
//! per watcher saves fds and, above all, inotify instances, which are
//! scarce (`fs.inotify.max_user_instances` is 128 by default, per user).
//!
//! The kernel gives the same watch descriptor to every watch of one inode on
//! an instance, so several watchers of one path share it: each gets every
//! event, and the descriptor is removed when the last of them ends.
//!
//! # What is reported
//!
//! Paths in events are relative to the watched directory. When a file is
//! watched, events about it carry its file name (as Node and libuv do); when
//! a directory is watched, events about the directory itself carry an empty
//! path. A rename is paired through the inotify cookie into one
//! [`FsEventKind::Renamed`] when both names are inside what the watcher
//! sees; a name moved in from, or out to, elsewhere is
//! [`FsEventKind::MovedIn`] / [`FsEventKind::MovedOut`]. (The kernel queues
//! the two halves of a rename one after the other; in the rare case that the
//! loop reads between them, they are reported as `MovedOut` then `MovedIn`.)
//!
//! When the watched path itself is removed or moved, the watcher gets
//! [`FsEventKind::SelfRemoved`] or [`FsEventKind::SelfMoved`] and its watch
//! ends: no event follows, [`FsWatcher::is_active`] is false, and `close`
//! returns `false`. A removed file is reported once the last link to it is
//! gone and no process holds it open (the kernel's `IN_DELETE_SELF`); its
//! link count changing is reported as [`FsEventKind::Metadata`] first.
//!
//! If the kernel's event queue overflows (`fs.inotify.max_queued_events`),
//! events were lost: every watcher gets [`FsEventKind::Overflow`], and
//! should rescan what it cares about.
//!
//! # Recursive watching
//!
//! With [`WatchOptions::recursive`], every directory below the watched one
//! gets its own inotify watch: those that exist when the watch starts (the
//! tree is walked on the loop thread, so watching a huge tree blocks the
//! loop for that time), those created or moved in later, and the watches of
//! directories removed or moved out are dropped. Symbolic links are not
//! followed. inotify has a race here: files created in a new directory
//! before its watch is added produce no event. So when a directory is
//! created, the loop adds its watch and then lists it, reporting a
//! [`FsEventKind::Created`] for each entry found (and doing the same for
//! subdirectories). An entry created in the short time between the watch
//! and the listing is therefore reported twice. Directories past the inotify
//! watch limit (`fs.inotify.max_user_watches`) are not watched; a warning is
//! logged. The same limit when the watch starts is an error.
//!
//! # Callbacks
//!
//! The callback gets the loop, the watcher and the event. It may close its
//! own watcher (no further event reaches it) or start and close others. A
//! panic in it goes to the loop's panic policy (out of `run()`, or to the
//! panic handler); the watcher stays, and the events read but not yet
//! delivered are delivered on the next pass.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::with_context;
use crate::panic::catch;
use crate::{sys, EventLoop, Interest, WatchId};

/// How to watch a path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WatchOptions {
    /// Watch every directory below a watched directory too (see the module
    /// docs for how, and the race it handles). Ignored when a file is
    /// watched.
    pub recursive: bool,
}

/// What happened, as [`FsEvent::kind`] tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FsEventKind {
    /// `path` was created (file, directory, link, ...).
    Created,
    /// `path`'s contents were written.
    Modified,
    /// `path`'s metadata changed: permissions, owner, timestamps, link count.
    Metadata,
    /// `path` was removed.
    Removed,
    /// `path` was renamed to `to`, both names inside the watch.
    Renamed {
        /// The new name, relative to the watched directory.
        to: PathBuf,
    },
    /// `path` was moved out of the watch (its new name is elsewhere).
    MovedOut,
    /// `path` was moved in from outside the watch.
    MovedIn,
    /// The watched path itself was removed; the watch has ended.
    SelfRemoved,
    /// The watched path itself was moved or renamed; the watch has ended.
    SelfMoved,
    /// The kernel's event queue overflowed: events were lost. `path` is
    /// empty.
    Overflow,
}

/// One change seen by an [`FsWatcher`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsEvent {
    /// What happened.
    pub kind: FsEventKind,
    /// What it happened to, relative to the watched directory: the file
    /// name for a watched file, empty for a watched directory itself (see
    /// the module docs).
    pub path: PathBuf,
    /// True if `path` is a directory.
    pub is_dir: bool,
}

impl FsEventKind {
    fn ends_watch(&self) -> bool {
        matches!(self, FsEventKind::SelfRemoved | FsEventKind::SelfMoved)
    }
}

/// A watch started by [`watch`]. Clones are handles to the same watch; it
/// runs until [`close`](FsWatcher::close) or until the watched path goes.
#[derive(Clone, Debug)]
pub struct FsWatcher {
    /// Unique across loops, so a handle used with another loop finds nothing.
    id: u64,
    path: PathBuf,
}

type Callback = Box<dyn FnMut(&mut EventLoop, &FsWatcher, FsEvent)>;

const MASK: u32 = libc::IN_ATTRIB
    | libc::IN_CREATE
    | libc::IN_MODIFY
    | libc::IN_DELETE
    | libc::IN_DELETE_SELF
    | libc::IN_MOVE_SELF
    | libc::IN_MOVED_FROM
    | libc::IN_MOVED_TO;

/// Read calls per readiness at most, so a flood cannot hold the loop.
const READS_PER_EVENT: usize = 16;
const READ_SIZE: usize = 64 * 1024;

/// The loop's inotify instance, if a watcher exists.
#[derive(Default)]
struct Inotify {
    state: Option<State>,
}

struct State {
    fd: Rc<OwnedFd>,
    watch: WatchId,
    /// Per watch descriptor: the watchers using it.
    wds: HashMap<i32, Vec<u64>>,
    watchers: HashMap<u64, Watcher>,
    /// Events read but not delivered yet, for the watcher with that id.
    queue: VecDeque<(u64, FsEvent)>,
    /// Whether the inotify fd keeps the loop alive now.
    keeps_alive: bool,
}

struct Watcher {
    handle: FsWatcher,
    /// The watched path, absolute.
    root: PathBuf,
    root_wd: i32,
    /// The file's name if a file is watched.
    file_name: Option<PathBuf>,
    recursive: bool,
    keeps_alive: bool,
    /// Its watch ended (self removed or moved); removed after the last event.
    ended: bool,
    /// Watch descriptor to directory, relative to `root`.
    dirs: HashMap<i32, PathBuf>,
    /// `None` while it runs.
    callback: Option<Callback>,
}

impl Watcher {
    fn self_event(&self, kind: FsEventKind) -> FsEvent {
        FsEvent {
            kind,
            path: self.file_name.clone().unwrap_or_default(),
            is_dir: self.file_name.is_none(),
        }
    }
}

/// The inotify fd as a watched source; the state holds another handle to it
/// for adding and removing watches.
struct InotifyFd(Rc<OwnedFd>);

impl AsFd for InotifyFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn ended_error() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "evloop: the path watch has ended")
}

/// Watches `path`, a file or a directory, and calls `callback` with each
/// change (libuv `uv_fs_event_start`, Node `fs.watch`). The watcher keeps
/// the loop alive until it ends (see [`FsWatcher::set_ref`]).
///
/// Symbolic links in `path` are followed; a relative `path` is made
/// absolute now.
///
/// # Errors
/// `path` does not exist (`NotFound`, naming the path), cannot be read
/// (`PermissionDenied`), or the inotify limits are reached (`EMFILE` for
/// instances, `ENOSPC` for watches); the callback then never runs.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// use evloop::{fs, EventLoop};
/// let dir = std::env::temp_dir().join(format!("evloop-doc-watch-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let mut ev = EventLoop::new()?;
/// fs::watch(&mut ev, &dir, Default::default(), |ev, watcher, event| {
///     println!("{:?} {}", event.kind, event.path.display());
///     watcher.close(ev);
/// })?;
/// std::fs::write(dir.join("hello.txt"), "hi")?; // prints Created hello.txt
/// ev.run()?;
/// # std::fs::remove_dir_all(&dir)
/// # }
/// ```
pub fn watch(
    ev: &mut EventLoop,
    path: impl AsRef<Path>,
    options: WatchOptions,
    callback: impl FnMut(&mut EventLoop, &FsWatcher, FsEvent) + 'static,
) -> io::Result<FsWatcher> {
    let given = path.as_ref();
    let root = std::path::absolute(given)?;
    ensure_state(ev)?;
    let handle = FsWatcher {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        path: given.to_path_buf(),
    };
    let result = start(ev, &handle, root, options, Box::new(callback));
    if let Err(e) = result {
        sync_liveness(ev); // closes the instance if it was made for nothing
        return Err(with_context(e, format!("watch {}", given.display())));
    }
    sync_liveness(ev);
    log::debug!("evloop: watching {} ({:?})", given.display(), handle.id);
    Ok(handle)
}

fn start(
    ev: &mut EventLoop,
    handle: &FsWatcher,
    root: PathBuf,
    options: WatchOptions,
    callback: Callback,
) -> io::Result<()> {
    let state = ev.layer_state::<Inotify>().state.as_mut().expect("made");
    let root_wd = sys::inotify_add_watch(&*state.fd, &root, MASK)?;
    let is_dir = std::fs::metadata(&root)
        .map(|m| m.is_dir())
        .unwrap_or(false);
    let file_name = if is_dir {
        None
    } else {
        root.file_name().map(PathBuf::from)
    };
    state.watchers.insert(
        handle.id,
        Watcher {
            handle: handle.clone(),
            root: root.clone(),
            root_wd,
            file_name,
            recursive: options.recursive && is_dir,
            keeps_alive: true,
            ended: false,
            dirs: HashMap::new(),
            callback: Some(callback),
        },
    );
    state.attach(handle.id, root_wd, PathBuf::new());
    if options.recursive && is_dir {
        if let Err(e) = state.add_subdirs(handle.id, &root, Path::new(""), false) {
            state.end(handle.id);
            state.watchers.remove(&handle.id);
            return Err(e);
        }
    }
    Ok(())
}

/// Makes the loop's inotify instance if there is none.
fn ensure_state(ev: &mut EventLoop) -> io::Result<()> {
    if ev.layer_state::<Inotify>().state.is_some() {
        return Ok(());
    }
    let fd = Rc::new(sys::inotify_init().map_err(|e| with_context(e, "inotify_init"))?);
    let watch = ev.watch(
        InotifyFd(fd.clone()),
        Interest::READABLE,
        |ev, source, _| on_readable(ev, source.0.as_raw_fd()),
    )?;
    ev.layer_state::<Inotify>().state = Some(State {
        fd,
        watch,
        wds: HashMap::new(),
        watchers: HashMap::new(),
        queue: VecDeque::new(),
        keeps_alive: true,
    });
    log::debug!("evloop: inotify instance made");
    Ok(())
}

/// Closes the instance when no watcher is left; otherwise lets the fd keep
/// the loop alive only while a ref'd, active watcher exists.
fn sync_liveness(ev: &mut EventLoop) {
    let slot = &mut ev.layer_state::<Inotify>().state;
    let Some(state) = slot else { return };
    if state.watchers.is_empty() {
        let watch = state.watch;
        *slot = None; // the fd closes once the loop's watcher drops too
        ev.unwatch(watch);
        log::debug!("evloop: inotify instance closed");
        return;
    }
    let want = state.watchers.values().any(|w| w.keeps_alive && !w.ended);
    if want != state.keeps_alive {
        state.keeps_alive = want;
        let watch = state.watch;
        if let Err(e) = ev.set_watch_ref(watch, want) {
            log::warn!("evloop: inotify watcher ref: {e}");
        }
    }
}

/// One event as the kernel gave it.
struct RawEvent {
    wd: i32,
    mask: u32,
    cookie: u32,
    name: Option<OsString>,
}

fn on_readable(ev: &mut EventLoop, fd: RawFd) {
    let raw = read_events(fd);
    if let Some(state) = ev.layer_state::<Inotify>().state.as_mut() {
        state.translate(raw);
    }
    deliver(ev);
}

/// Reads what is waiting (at most `READS_PER_EVENT` reads).
fn read_events(fd: RawFd) -> Vec<RawEvent> {
    let mut events = Vec::new();
    let mut buf = Vec::with_capacity(READ_SIZE);
    for _ in 0..READS_PER_EVENT {
        buf.clear();
        match sys::read_to_spare(&fd, &mut buf, READ_SIZE) {
            Ok(0) => break,
            Ok(_) => parse(&buf, &mut events),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => {
                log::warn!("evloop: reading inotify events: {e}");
                break;
            }
        }
    }
    events
}

/// Splits a read into `struct inotify_event`s: wd, mask, cookie, name
/// length (native-endian 32-bit each), then the NUL-padded name.
fn parse(mut buf: &[u8], out: &mut Vec<RawEvent>) {
    let word = |b: &[u8], i: usize| [b[i], b[i + 1], b[i + 2], b[i + 3]];
    while buf.len() >= 16 {
        let wd = i32::from_ne_bytes(word(buf, 0));
        let mask = u32::from_ne_bytes(word(buf, 4));
        let cookie = u32::from_ne_bytes(word(buf, 8));
        let len = u32::from_ne_bytes(word(buf, 12)) as usize;
        let Some(name) = buf.get(16..16 + len) else {
            log::warn!("evloop: truncated inotify event");
            return;
        };
        let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
        out.push(RawEvent {
            wd,
            mask,
            cookie,
            name: (!name.is_empty()).then(|| OsString::from_vec(name.to_vec())),
        });
        buf = &buf[16 + len..];
    }
}

/// Runs the callbacks of the queued events, in order. A panic leaves the
/// rest queued for the next pass, then goes to the loop's panic policy.
fn deliver(ev: &mut EventLoop) {
    loop {
        let Some(state) = ev.layer_state::<Inotify>().state.as_mut() else {
            return;
        };
        let Some((id, event)) = state.queue.pop_front() else {
            return;
        };
        let Some(watcher) = state.watchers.get_mut(&id) else {
            continue; // closed since the event was read
        };
        let Some(mut callback) = watcher.callback.take() else {
            continue;
        };
        let handle = watcher.handle.clone();
        let ends = event.kind.ends_watch();
        log::trace!("evloop: fs event {event:?} for {id}");
        let result = catch(|| callback(ev, &handle, event));
        let state = ev.layer_state::<Inotify>().state.as_mut();
        if let Some(watcher) = state.and_then(|s| s.watchers.get_mut(&id)) {
            watcher.callback = Some(callback);
        }
        if ends {
            handle.close(ev);
        }
        if let Err(p) = result {
            let more = ev
                .layer_state::<Inotify>()
                .state
                .as_ref()
                .is_some_and(|s| !s.queue.is_empty());
            if more {
                ev.call_soon(deliver);
            }
            std::panic::resume_unwind(p);
        }
    }
}

impl State {
    fn attach(&mut self, id: u64, wd: i32, dir: PathBuf) {
        let Some(watcher) = self.watchers.get_mut(&id) else {
            return;
        };
        if watcher.dirs.insert(wd, dir).is_none() {
            self.wds.entry(wd).or_default().push(id);
        }
    }

    /// Drops a watcher's use of a watch descriptor; the last use removes it
    /// from the kernel.
    fn detach(&mut self, id: u64, wd: i32) {
        if let Some(watcher) = self.watchers.get_mut(&id) {
            watcher.dirs.remove(&wd);
        }
        let Some(users) = self.wds.get_mut(&wd) else {
            return;
        };
        users.retain(|&u| u != id);
        if users.is_empty() {
            self.wds.remove(&wd);
            // EINVAL if the kernel removed it already (its inode is gone).
            let _ = sys::inotify_rm_watch(&*self.fd, wd);
        }
    }

    /// Ends a watcher's watch: every descriptor it used is dropped.
    fn end(&mut self, id: u64) {
        let Some(watcher) = self.watchers.get_mut(&id) else {
            return;
        };
        watcher.ended = true;
        let wds: Vec<i32> = watcher.dirs.keys().copied().collect();
        for wd in wds {
            self.detach(id, wd);
        }
    }

    /// Watches the directories below `abs` (which is `rel` in the watcher),
    /// depth first. With `report`, queues a `Created` for every entry found.
    /// Only the watch limit (`ENOSPC`) is an error; a directory that cannot
    /// be watched or read is skipped.
    fn add_subdirs(&mut self, id: u64, abs: &Path, rel: &Path, report: bool) -> io::Result<()> {
        let Ok(entries) = std::fs::read_dir(abs) else {
            return Ok(()); // gone or unreadable meanwhile: nothing to watch
        };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            let path = rel.join(entry.file_name());
            if report {
                self.push(id, FsEventKind::Created, path.clone(), is_dir);
            }
            if !is_dir {
                continue;
            }
            let sub = entry.path();
            let mask = MASK | libc::IN_ONLYDIR | libc::IN_DONT_FOLLOW;
            match sys::inotify_add_watch(&*self.fd, &sub, mask) {
                Ok(wd) => {
                    if self.watchers[&id].dirs.contains_key(&wd) {
                        continue; // seen already (a bind mount loop)
                    }
                    self.attach(id, wd, path.clone());
                    self.add_subdirs(id, &sub, &path, report)?;
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => return Err(e),
                Err(e) => log::debug!("evloop: not watching {}: {e}", sub.display()),
            }
        }
        Ok(())
    }

    /// Like `add_subdirs` for a directory that appeared after the watch
    /// started: watches it, then what is below it. Past the watch limit, a
    /// warning is logged.
    fn add_new_dir(&mut self, id: u64, rel: &Path, report: bool) {
        let abs = self.watchers[&id].root.join(rel);
        let mask = MASK | libc::IN_ONLYDIR | libc::IN_DONT_FOLLOW;
        let result = sys::inotify_add_watch(&*self.fd, &abs, mask).and_then(|wd| {
            self.attach(id, wd, rel.to_path_buf());
            self.add_subdirs(id, &abs, rel, report)
        });
        match result {
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => log::warn!(
                "evloop: not watching {} (inotify watch limit reached: fs.inotify.max_user_watches)",
                abs.display()
            ),
            Err(e) => log::debug!("evloop: not watching {}: {e}", abs.display()),
            Ok(()) => {}
        }
    }

    fn push(&mut self, id: u64, kind: FsEventKind, path: PathBuf, is_dir: bool) {
        self.queue.push_back((id, FsEvent { kind, path, is_dir }));
    }

    /// The live watchers using `wd`.
    fn users(&self, wd: i32) -> Vec<u64> {
        let mut users = self.wds.get(&wd).cloned().unwrap_or_default();
        users.retain(|id| self.watchers.get(id).is_some_and(|w| !w.ended));
        users
    }

    /// Turns raw events into queued `FsEvent`s, keeping the descriptor maps
    /// (and, for recursive watchers, the set of watched directories) up to
    /// date.
    fn translate(&mut self, raw: Vec<RawEvent>) {
        let mut raw = raw.into_iter().peekable();
        while let Some(e) = raw.next() {
            if e.mask & libc::IN_Q_OVERFLOW != 0 {
                let mut ids: Vec<u64> = self
                    .watchers
                    .iter()
                    .filter(|(_, w)| !w.ended)
                    .map(|(&id, _)| id)
                    .collect();
                ids.sort_unstable(); // oldest watcher first
                for id in ids {
                    self.push(id, FsEventKind::Overflow, PathBuf::new(), false);
                }
                continue;
            }
            if e.mask & libc::IN_IGNORED != 0 {
                self.forget(e.wd);
                continue;
            }
            let is_dir = e.mask & libc::IN_ISDIR != 0;
            if e.mask & libc::IN_MOVED_FROM != 0 {
                let pair = raw.next_if(|to| {
                    to.mask & libc::IN_MOVED_TO != 0 && to.cookie == e.cookie && e.cookie != 0
                });
                self.moved(Some(&e), pair.as_ref(), is_dir);
                continue;
            }
            if e.mask & libc::IN_MOVED_TO != 0 {
                self.moved(None, Some(&e), is_dir);
                continue;
            }
            for id in self.users(e.wd) {
                self.one(id, &e, is_dir);
            }
        }
    }

    /// The kernel dropped a watch descriptor (`IN_IGNORED`): its inode is
    /// gone, its file system unmounted, or we removed it.
    fn forget(&mut self, wd: i32) {
        let Some(users) = self.wds.remove(&wd) else {
            return;
        };
        for id in users {
            let Some(watcher) = self.watchers.get_mut(&id) else {
                continue;
            };
            watcher.dirs.remove(&wd);
            if watcher.root_wd == wd && !watcher.ended {
                let event = watcher.self_event(FsEventKind::SelfRemoved);
                self.queue.push_back((id, event));
                self.end(id);
            }
        }
    }

    /// An event that is not a move, for one watcher.
    fn one(&mut self, id: u64, e: &RawEvent, is_dir: bool) {
        let watcher = &self.watchers[&id];
        let Some(dir) = watcher.dirs.get(&e.wd) else {
            return;
        };
        let Some(name) = &e.name else {
            // The watched inode itself. For a subdirectory of a recursive
            // watch, its parent reports the same change with its name.
            if watcher.root_wd != e.wd {
                return;
            }
            let kind = if e.mask & libc::IN_DELETE_SELF != 0 {
                FsEventKind::SelfRemoved
            } else if e.mask & libc::IN_MOVE_SELF != 0 {
                FsEventKind::SelfMoved
            } else if e.mask & libc::IN_MODIFY != 0 {
                FsEventKind::Modified
            } else if e.mask & libc::IN_ATTRIB != 0 {
                FsEventKind::Metadata
            } else {
                return;
            };
            let ends = kind.ends_watch();
            let event = watcher.self_event(kind);
            self.queue.push_back((id, event));
            if ends {
                self.end(id);
            }
            return;
        };
        let path = dir.join(name);
        let kind = if e.mask & libc::IN_CREATE != 0 {
            FsEventKind::Created
        } else if e.mask & libc::IN_DELETE != 0 {
            FsEventKind::Removed
        } else if e.mask & libc::IN_MODIFY != 0 {
            FsEventKind::Modified
        } else if e.mask & libc::IN_ATTRIB != 0 {
            FsEventKind::Metadata
        } else {
            return;
        };
        let new_dir = kind == FsEventKind::Created && is_dir && watcher.recursive;
        self.push(id, kind, path.clone(), is_dir);
        if new_dir {
            self.add_new_dir(id, &path, true);
        }
    }

    /// A rename: `from` and `to` are its halves, paired by cookie (either
    /// may be missing when only one side is watched).
    fn moved(&mut self, from: Option<&RawEvent>, to: Option<&RawEvent>, is_dir: bool) {
        let mut ids = from.map(|e| self.users(e.wd)).unwrap_or_default();
        for id in to.map(|e| self.users(e.wd)).unwrap_or_default() {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        for id in ids {
            let watcher = &self.watchers[&id];
            let name_in = |e: Option<&RawEvent>| {
                let e = e?;
                Some(watcher.dirs.get(&e.wd)?.join(e.name.as_ref()?))
            };
            let recursive = watcher.recursive && is_dir;
            match (name_in(from), name_in(to)) {
                (Some(old), Some(new)) => {
                    if recursive {
                        for dir in self.watchers.get_mut(&id).expect("live").dirs.values_mut() {
                            if let Ok(rest) = dir.strip_prefix(&old) {
                                *dir = new.join(rest);
                            }
                        }
                    }
                    self.push(id, FsEventKind::Renamed { to: new }, old, is_dir);
                }
                (Some(old), None) => {
                    if recursive {
                        let gone: Vec<i32> = watcher
                            .dirs
                            .iter()
                            .filter(|(_, dir)| dir.starts_with(&old))
                            .map(|(&wd, _)| wd)
                            .collect();
                        for wd in gone {
                            self.detach(id, wd);
                        }
                    }
                    self.push(id, FsEventKind::MovedOut, old, is_dir);
                }
                (None, Some(new)) => {
                    self.push(id, FsEventKind::MovedIn, new.clone(), is_dir);
                    if recursive {
                        self.add_new_dir(id, &new, false);
                    }
                }
                (None, None) => {}
            }
        }
    }
}

impl FsWatcher {
    /// Stops watching: no callback runs for this watcher after this returns
    /// (from inside its own callback too: the callback is dropped when it
    /// returns). False if the watch had already ended: closed before, or its
    /// [`SelfRemoved`](FsEventKind::SelfRemoved) /
    /// [`SelfMoved`](FsEventKind::SelfMoved) event was delivered.
    pub fn close(&self, ev: &mut EventLoop) -> bool {
        let Some(state) = ev.layer_state::<Inotify>().state.as_mut() else {
            return false;
        };
        let Some(watcher) = state.watchers.get(&self.id) else {
            return false;
        };
        // An ended watch whose last event is being delivered: already over.
        let was_active = !watcher.ended || watcher.callback.is_some();
        state.end(self.id);
        drop(state.watchers.remove(&self.id)); // its callback, unless it runs
        sync_liveness(ev);
        log::debug!(
            "evloop: stopped watching {} ({})",
            self.path.display(),
            self.id
        );
        was_active
    }

    /// Sets whether the watcher keeps the loop alive (it does by default;
    /// Node's `unref()`, libuv's `uv_unref`).
    ///
    /// # Errors
    /// `NotFound` if the watch has ended.
    pub fn set_ref(&self, ev: &mut EventLoop, keep_alive: bool) -> io::Result<()> {
        let watcher = ev
            .layer_state::<Inotify>()
            .state
            .as_mut()
            .and_then(|s| s.watchers.get_mut(&self.id))
            .filter(|w| !w.ended)
            .ok_or_else(ended_error)?;
        watcher.keeps_alive = keep_alive;
        sync_liveness(ev);
        Ok(())
    }

    /// True until the watch ends (closed, or its path removed or moved).
    pub fn is_active(&self, ev: &mut EventLoop) -> bool {
        ev.layer_state::<Inotify>()
            .state
            .as_ref()
            .and_then(|s| s.watchers.get(&self.id))
            .is_some_and(|w| !w.ended)
    }

    /// The path as given to [`watch`].
    pub fn path(&self) -> &Path {
        &self.path
    }
}
