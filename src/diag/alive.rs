//! The alive report: everything that keeps a loop alive, and where each
//! was created.
//!
//! "My program does not exit and I cannot see why" is the complaint users of
//! libuv, Node and asyncio repeat most. libuv has `uv_print_active_handles`
//! (handle types and addresses), Node has `process.getActiveResourcesInfo()`
//! (type names only); neither says where the thing came from. Here each item
//! carries the source location of the call that created it, recorded with
//! `#[track_caller]`, so the report points at the line to look at.

use std::fmt;

use super::Site;

/// What kind of thing keeps the loop alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AliveKind {
    /// A one-shot timer ([`EventLoop::set_timeout`](crate::EventLoop::set_timeout)).
    Timeout,
    /// An interval ([`EventLoop::set_interval`](crate::EventLoop::set_interval)).
    Interval,
    /// An fd watcher; `label` says what it serves (`"watcher"` for a plain
    /// [`EventLoop::watch`](crate::EventLoop::watch), else `"stream"`,
    /// `"server"`, `"child"`, `"signal"`, `"udp"`, `"connect"`, ...).
    Watcher,
    /// A job on the blocking-work pool whose callback has not run.
    PoolJob,
    /// A [`LoopHandle`](crate::LoopHandle) (a clone of one counts again).
    Handle,
}

impl AliveKind {
    fn name(self) -> &'static str {
        match self {
            AliveKind::Timeout => "timeout",
            AliveKind::Interval => "interval",
            AliveKind::Watcher => "watcher",
            AliveKind::PoolJob => "pool job",
            AliveKind::Handle => "handle",
        }
    }
}

/// One thing that exists in the loop, as [`AliveReport`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AliveItem {
    /// What it is.
    pub kind: AliveKind,
    /// A finer name: the watcher's label (`"stream"`, `"server"`, ...), or
    /// the kind's name.
    pub label: &'static str,
    /// Its id as a number (`TimerId::to_u64`, `WatchId::to_u64`,
    /// `JobId::to_u64`), or the handle's number; 0 where that is `None`.
    pub id: u64,
    /// Whether it keeps the loop alive (false once unref'd).
    pub keeps_alive: bool,
    /// Where it was created; `None` past 65,535 distinct timer sites.
    pub site: Option<Site>,
    /// A short state, such as `"due in 1.5s"`, `"readable"`, `"running"`.
    pub detail: String,
}

/// Everything that keeps a loop alive, from
/// [`EventLoop::alive_report`](crate::EventLoop::alive_report).
///
/// Items that do not keep the loop alive (unref'd ones) are listed too,
/// marked so. `Display` prints a table:
///
/// ```text
/// evloop: alive: 2 things keep the loop alive (1 queued callback)
///   kind      id        ref  site                      state
///   interval  16777216  yes  examples/why_alive.rs:20:8  due in 1s
///   handle    1         yes  examples/why_alive.rs:25:17
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AliveReport {
    /// `call_soon` callbacks queued (they keep the loop alive).
    pub queued_callbacks: usize,
    /// Callbacks posted from other threads, not yet run.
    pub posted_callbacks: usize,
    /// Timers, watchers, pool jobs and handles, in that order.
    pub items: Vec<AliveItem>,
}

impl AliveReport {
    /// True if anything in the report keeps the loop alive.
    pub fn is_alive(&self) -> bool {
        self.queued_callbacks > 0
            || self.posted_callbacks > 0
            || self.items.iter().any(|i| i.keeps_alive)
    }

    /// The items that keep the loop alive.
    pub fn keeping_alive(&self) -> impl Iterator<Item = &AliveItem> {
        self.items.iter().filter(|i| i.keeps_alive)
    }
}

impl fmt::Display for AliveReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let alive = self.keeping_alive().count();
        let queued = self.queued_callbacks + self.posted_callbacks;
        if !self.is_alive() {
            write!(f, "evloop: not alive: nothing keeps the loop running")?;
        } else {
            write!(
                f,
                "evloop: alive: {alive} thing{} keep{} the loop alive",
                if alive == 1 { "" } else { "s" },
                if alive == 1 { "s" } else { "" }
            )?;
            if queued > 0 {
                write!(
                    f,
                    " ({queued} queued callback{})",
                    if queued == 1 { "" } else { "s" }
                )?;
            }
        }
        if self.items.is_empty() {
            return writeln!(f);
        }
        let sites: Vec<String> = self
            .items
            .iter()
            .map(|i| match i.site {
                Some(s) => s.to_string(),
                None => "(unknown)".to_string(),
            })
            .collect();
        let ids: Vec<String> = self.items.iter().map(|i| i.id.to_string()).collect();
        let w_kind = self
            .items
            .iter()
            .map(|i| i.label.len())
            .max()
            .unwrap_or(0)
            .max(4);
        let w_id = ids.iter().map(String::len).max().unwrap_or(0).max(2);
        let w_site = sites.iter().map(String::len).max().unwrap_or(0).max(4);
        writeln!(f)?;
        writeln!(
            f,
            "  {:w_kind$}  {:w_id$}  ref  {:w_site$}  state",
            "kind", "id", "site"
        )?;
        for ((item, id), site) in self.items.iter().zip(&ids).zip(&sites) {
            let line = format!(
                "  {:w_kind$}  {id:w_id$}  {}  {site:w_site$}  {}",
                item.label,
                if item.keeps_alive { "yes" } else { "no " },
                item.detail
            );
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

impl AliveKind {
    /// The label of items of this kind that have no finer one.
    pub(crate) fn label(self) -> &'static str {
        self.name()
    }
}
