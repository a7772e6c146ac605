//! The blocking-work pool: run `work` on a thread, `done` on the loop thread.
//!
//! As libuv's threadpool: a fixed number of threads (default 4, or
//! `EVLOOP_THREADPOOL_SIZE`, as `UV_THREADPOOL_SIZE`), started lazily when
//! jobs are waiting and no thread is idle. A worker runs `work`, catches a
//! panic, and posts the outcome back through the loop's cross-thread queue;
//! the loop then calls `done` with it. The `done` closures never leave the
//! loop thread, so they need not be `Send`.
//!
//! A job keeps the loop alive from `spawn_blocking` until its `done` ran. A
//! job still waiting in the queue can be cancelled (its `done` gets
//! [`JobError::Cancelled`] on a later pass); a running one cannot. Dropping the
//! loop drops queued jobs and lets running ones finish on their thread with
//! nowhere to post: no thread is joined, none is left blocked.
//!
//! Waiting jobs sit in a map keyed by serial, with their order kept in a
//! queue of serials, so cancelling is O(1) under the lock (a cancelled
//! job's serial is skipped when it comes up). If a thread cannot be started,
//! the job still runs on the threads already there; only with no thread at
//! all does `spawn_blocking` fail, and the job is then taken back out of the
//! queue: it never runs, and its `done` never runs.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};

use slab::Slab;

use crate::diag::Site;
use crate::handle::Remote;
use crate::id::Key;
use crate::panic::catch;
use crate::EventLoop;

crate::id::id_type! {
    /// Identifies a job given to [`EventLoop::spawn_blocking`].
    JobId
}

/// Where a job stands, as [`EventLoop::job_status`] tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobStatus {
    /// Queued or running: its `done` has not run yet.
    Pending,
    /// Its `done` ran (or was dropped, for a job that could not start).
    Finished,
    /// Not a job of this loop.
    Unknown,
}

/// Why a job has no result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobError {
    /// Cancelled with [`EventLoop::cancel_job`] before it started.
    Cancelled,
    /// `work` panicked; the message of the panic, if it was a string.
    Panicked(String),
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Cancelled => f.write_str("job cancelled"),
            JobError::Panicked(msg) => write!(f, "job panicked: {msg}"),
        }
    }
}

impl std::error::Error for JobError {}

impl From<JobError> for io::Error {
    fn from(e: JobError) -> io::Error {
        match e {
            JobError::Cancelled => io::Error::from_raw_os_error(libc::ECANCELED),
            JobError::Panicked(_) => io::Error::other(e),
        }
    }
}

type Outcome = Result<Box<dyn Any + Send>, JobError>;
type Done = Box<dyn FnOnce(&mut EventLoop, Outcome)>;

type Work = Box<dyn FnOnce() + Send>;

struct Queue {
    /// Waiting jobs by serial.
    jobs: HashMap<u64, Work>,
    /// Their serials in submission order (cancelled ones are skipped).
    order: VecDeque<u64>,
    idle: usize,
    closed: bool,
}

impl Queue {
    fn pop(&mut self) -> Option<Work> {
        while let Some(serial) = self.order.pop_front() {
            if let Some(work) = self.jobs.remove(&serial) {
                return Some(work);
            }
        }
        None
    }
}

struct WorkQueue {
    state: Mutex<Queue>,
    ready: Condvar,
}

impl WorkQueue {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Jobs run outside the lock, so a poisoned lock still holds a
        // consistent queue.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The loop's side of the pool.
pub(crate) struct Pool {
    /// Jobs whose `done` has not run: serial, `done`, where it was spawned.
    pending: Slab<(u64, Done, Site)>,
    next_serial: u64,
    size: usize,
    threads: usize,
    queue: Arc<WorkQueue>,
}

const DEFAULT_SIZE: usize = 4;
const MAX_SIZE: usize = 1024;

impl Pool {
    pub(crate) fn new() -> Pool {
        let size = std::env::var("EVLOOP_THREADPOOL_SIZE")
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|n| (1..=MAX_SIZE).contains(n))
            .unwrap_or(DEFAULT_SIZE);
        Pool {
            pending: Slab::new(),
            next_serial: 1,
            size,
            threads: 0,
            queue: Arc::new(WorkQueue {
                state: Mutex::new(Queue {
                    jobs: HashMap::new(),
                    order: VecDeque::new(),
                    idle: 0,
                    closed: false,
                }),
                ready: Condvar::new(),
            }),
        }
    }

    pub(crate) fn keeping_alive(&self) -> usize {
        self.pending.len()
    }

    /// Files `done` as a pending job's callback; the job gets the id.
    fn add(&mut self, done: Done, site: Site) -> JobId {
        let serial = self.next_serial;
        self.next_serial += 1;
        JobId(Key::new(self.pending.insert((serial, done, site)), serial))
    }

    /// Every pending job and where it was spawned, for the alive report.
    pub(crate) fn list(&self) -> impl Iterator<Item = (JobId, Site)> + '_ {
        self.pending
            .iter()
            .map(|(slot, (serial, _, site))| (JobId(Key::new(slot, *serial)), *site))
    }

    fn site(&self, id: JobId) -> Option<Site> {
        match self.pending.get(id.0.slot as usize) {
            Some((serial, _, site)) if *serial == id.0.serial => Some(*site),
            _ => None,
        }
    }

    /// Takes a pending job's callback out (when it finished or failed).
    fn take(&mut self, id: JobId) -> Option<Done> {
        match self.pending.get(id.0.slot as usize) {
            Some((serial, ..)) if *serial == id.0.serial => {
                Some(self.pending.remove(id.0.slot as usize).1)
            }
            _ => None,
        }
    }

    fn status(&self, id: JobId) -> JobStatus {
        match self.pending.get(id.0.slot as usize) {
            Some((serial, ..)) if *serial == id.0.serial => JobStatus::Pending,
            _ if (1..self.next_serial).contains(&id.0.serial) => JobStatus::Finished,
            _ => JobStatus::Unknown,
        }
    }

    fn submit(&mut self, serial: u64, work: Work) -> io::Result<()> {
        let mut q = self.queue.lock();
        q.jobs.insert(serial, work);
        q.order.push_back(serial);
        let start_thread = q.jobs.len() > q.idle && self.threads < self.size;
        drop(q);
        self.queue.ready.notify_one();
        if start_thread {
            let queue = self.queue.clone();
            let started = std::thread::Builder::new()
                .name(format!("evloop-pool-{}", self.threads))
                .spawn(move || worker(&queue));
            match started {
                Ok(_) => {
                    self.threads += 1;
                    log::debug!("evloop: pool thread {} started", self.threads);
                }
                Err(e) if self.threads > 0 => {
                    log::warn!("evloop: cannot start another pool thread ({e}); the job waits for one of the {}", self.threads);
                }
                Err(e) => {
                    // No thread could run it: take it back, so it never runs.
                    self.queue.lock().jobs.remove(&serial);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    fn set_size(&mut self, threads: usize) -> io::Result<()> {
        if !(1..=MAX_SIZE).contains(&threads) || threads < self.threads {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "evloop: pool size {threads} (must be 1..={MAX_SIZE}, and at least the {} threads started)",
                    self.threads
                ),
            ));
        }
        self.size = threads;
        Ok(())
    }

    /// Takes a job out of the queue if it has not started; O(1).
    fn cancel(&mut self, serial: u64) -> bool {
        let work = self.queue.lock().jobs.remove(&serial);
        work.is_some() // dropped here, outside the lock
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let mut q = self.queue.lock();
        q.closed = true;
        let jobs = std::mem::take(&mut q.jobs);
        q.order.clear();
        drop(q);
        self.queue.ready.notify_all();
        drop(jobs);
    }
}

fn worker(queue: &WorkQueue) {
    let mut q = queue.lock();
    loop {
        if let Some(work) = q.pop() {
            drop(q);
            work();
            q = queue.lock();
        } else if q.closed {
            return;
        } else {
            q.idle += 1;
            q = queue.ready.wait(q).unwrap_or_else(|e| e.into_inner());
            q.idle -= 1;
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

impl EventLoop {
    /// Runs `work` on the blocking-work pool, then `done` with its result on
    /// the loop thread. A panic in `work` reaches `done` as
    /// [`JobError::Panicked`]; the pool thread survives it.
    ///
    /// Fails only if no pool thread is running and none can be started; the
    /// job then never runs, nor does `done`. (If threads are running, one
    /// that cannot be added is logged and the job waits for them.)
    ///
    /// The call's source location is recorded as the job's creation site
    /// (see [`alive_report`](EventLoop::alive_report)).
    #[track_caller]
    pub fn spawn_blocking<T, W, D>(&mut self, work: W, done: D) -> io::Result<JobId>
    where
        T: Send + 'static,
        W: FnOnce() -> T + Send + 'static,
        D: FnOnce(&mut EventLoop, Result<T, JobError>) + 'static,
    {
        let done: Done = Box::new(move |ev, outcome: Outcome| {
            let typed = outcome.map(|any| {
                *any.downcast::<T>()
                    .expect("a job's result has the type of its work")
            });
            done(ev, typed)
        });
        let site = std::panic::Location::caller();
        let id = self.pool.add(done, site);
        // Weak: a job still running when the loop is dropped must not keep
        // the loop's poller (and its fds) alive.
        let remote: Weak<Remote> = Arc::downgrade(self.share_remote());
        let work: Work = Box::new(move || {
            let mut value = None;
            let outcome = match catch(|| value = Some(work())) {
                Ok(()) => Ok(Box::new(value.take().expect("set")) as Box<dyn Any + Send>),
                Err(p) => Err(JobError::Panicked(panic_message(&*p))),
            };
            // None or Err: the loop is gone; the outcome drops here.
            if let Some(remote) = remote.upgrade() {
                let _ = remote.post(move |ev: &mut EventLoop| ev.finish_job(id, outcome), site);
            }
        });
        if let Err(e) = self.pool.submit(id.0.serial, work) {
            self.pool.take(id);
            return Err(e);
        }
        log::debug!("evloop: job {id:?} queued");
        Ok(id)
    }

    /// As [`spawn_blocking`](EventLoop::spawn_blocking) for work that
    /// returns an `io::Result`: `done` gets that result, with a cancelled job
    /// as `ECANCELED` and a panicked one as an error that says so (what the
    /// `fs` and DNS functions are built on).
    ///
    /// # Errors
    /// As `spawn_blocking`; `done` then never runs.
    #[track_caller]
    pub fn spawn_blocking_io<T, W, D>(&mut self, work: W, done: D) -> io::Result<JobId>
    where
        T: Send + 'static,
        W: FnOnce() -> io::Result<T> + Send + 'static,
        D: FnOnce(&mut EventLoop, io::Result<T>) + 'static,
    {
        self.spawn_blocking(work, move |ev, outcome| {
            done(ev, outcome.map_err(io::Error::from).and_then(|r| r))
        })
    }

    /// Cancels a job that has not started yet: it will not run, and its
    /// `done` gets [`JobError::Cancelled`] on a later pass. False if the job
    /// already started, finished, or is unknown.
    pub fn cancel_job(&mut self, id: JobId) -> bool {
        if !self.pool.cancel(id.0.serial) {
            return false;
        }
        log::debug!("evloop: job {id:?} cancelled");
        let site = self.pool.site(id).unwrap_or(crate::diag::here());
        self.call_soon_at(move |ev| ev.finish_job(id, Err(JobError::Cancelled)), site);
        true
    }

    /// Sets the number of pool threads (1 to 1024). It can grow at any time;
    /// it cannot shrink below the number of threads already started.
    pub fn set_pool_size(&mut self, threads: usize) -> io::Result<()> {
        self.pool.set_size(threads)
    }

    /// Number of pool jobs whose `done` has not run yet.
    pub fn pending_jobs(&self) -> usize {
        self.pool.keeping_alive()
    }

    /// Whether a job is pending, finished, or not a job of this loop.
    pub fn job_status(&self, id: JobId) -> JobStatus {
        self.pool.status(id)
    }

    fn finish_job(&mut self, id: JobId, outcome: Outcome) {
        match self.pool.take(id) {
            Some(done) => done(self, outcome),
            None => log::warn!("evloop: dropped the completion of unknown job {id:?}"),
        }
    }
}
