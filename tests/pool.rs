//! The blocking-work pool.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use evloop::{EventLoop, JobError};

#[test]
fn ten_thousand_jobs_complete_exactly_once_and_the_loop_exits() {
    let mut ev = EventLoop::new().unwrap();
    let done = Rc::new(RefCell::new(vec![0u8; 10_000]));
    let worked = Arc::new(AtomicUsize::new(0));
    for i in 0..10_000usize {
        let (d, w) = (done.clone(), worked.clone());
        ev.spawn_blocking(
            move || {
                w.fetch_add(1, Ordering::Relaxed);
                i * 2
            },
            move |_, result| {
                assert_eq!(result, Ok(i * 2));
                d.borrow_mut()[i] += 1;
            },
        )
        .unwrap();
    }
    assert_eq!(ev.pending_jobs(), 10_000);
    assert!(ev.is_alive());
    ev.run().unwrap();
    assert!(done.borrow().iter().all(|&n| n == 1));
    assert_eq!(worked.load(Ordering::Relaxed), 10_000);
    assert_eq!(ev.pending_jobs(), 0);
}

#[test]
fn done_runs_on_the_loop_thread() {
    let mut ev = EventLoop::new().unwrap();
    let me = std::thread::current().id();
    let ok = Rc::new(Cell::new(false));
    let o = ok.clone();
    ev.spawn_blocking(
        move || std::thread::current().id() != me,
        move |_, off_thread| o.set(off_thread.unwrap() && std::thread::current().id() == me),
    )
    .unwrap();
    ev.run().unwrap();
    assert!(
        ok.get(),
        "work ran on a pool thread, done on the loop thread"
    );
}

#[test]
fn a_panicking_job_reports_an_error_and_the_pool_survives() {
    let mut ev = EventLoop::new().unwrap();
    ev.set_pool_size(1).unwrap();
    let results = Rc::new(RefCell::new(Vec::new()));
    let r = results.clone();
    ev.spawn_blocking(
        || -> u32 { panic!("bad job") },
        move |_, res| r.borrow_mut().push(res),
    )
    .unwrap();
    let r = results.clone();
    ev.spawn_blocking(|| 7u32, move |_, res| r.borrow_mut().push(res))
        .unwrap();
    ev.run().unwrap();
    assert_eq!(
        *results.borrow(),
        vec![Err(JobError::Panicked("bad job".into())), Ok(7)],
        "the single pool thread ran the second job after the panic"
    );
}

#[test]
fn a_queued_job_can_be_cancelled_a_running_one_cannot() {
    let mut ev = EventLoop::new().unwrap();
    ev.set_pool_size(1).unwrap();
    let gate = Arc::new(Barrier::new(2));
    let g = gate.clone();
    let results = Rc::new(RefCell::new(Vec::new()));
    let r = results.clone();
    let running = ev
        .spawn_blocking(
            move || {
                g.wait(); // started
                g.wait(); // released by the test
                "first"
            },
            move |_, res| r.borrow_mut().push(res),
        )
        .unwrap();
    let ran_second = Arc::new(AtomicUsize::new(0));
    let (r, rs) = (results.clone(), ran_second.clone());
    let queued = ev
        .spawn_blocking(
            move || {
                rs.fetch_add(1, Ordering::SeqCst);
                "second"
            },
            move |_, res| r.borrow_mut().push(res),
        )
        .unwrap();
    gate.wait(); // the first job is running on the only thread
    assert!(!ev.cancel_job(running), "a running job cannot be cancelled");
    assert!(ev.cancel_job(queued));
    assert!(!ev.cancel_job(queued), "only once");
    assert!(
        results.borrow().is_empty(),
        "done never runs inside cancel_job"
    );
    gate.wait();
    ev.run().unwrap();
    assert_eq!(
        *results.borrow(),
        vec![Err(JobError::Cancelled), Ok("first")]
    );
    assert_eq!(ran_second.load(Ordering::SeqCst), 0);
}

struct CountDrop(Arc<AtomicUsize>);
impl Drop for CountDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn dropping_the_loop_with_jobs_running_neither_hangs_nor_leaks() {
    let drops = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(Barrier::new(3));
    let started = Arc::new(Barrier::new(3));
    {
        let mut ev = EventLoop::new().unwrap();
        ev.set_pool_size(2).unwrap();
        for _ in 0..2 {
            let (result, done_guard, b, s) = (
                CountDrop(drops.clone()),
                CountDrop(drops.clone()),
                finished.clone(),
                started.clone(),
            );
            ev.spawn_blocking(
                move || {
                    s.wait();
                    std::thread::sleep(Duration::from_millis(600));
                    b.wait();
                    result
                },
                move |_, _| drop(done_guard),
            )
            .unwrap();
        }
        for _ in 0..3 {
            let (work_guard, done_guard) = (CountDrop(drops.clone()), CountDrop(drops.clone()));
            ev.spawn_blocking(move || drop(work_guard), move |_, _| drop(done_guard))
                .unwrap();
        }
        started.wait(); // both long jobs are running
        let t = Instant::now();
        drop(ev);
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "drop did not wait for running jobs"
        );
        // Both done closures of running jobs and all 6 closures of the queued
        // ones dropped with the loop.
        assert_eq!(drops.load(Ordering::SeqCst), 8);
    }
    finished.wait(); // the running jobs finish...
    let t = Instant::now();
    while drops.load(Ordering::SeqCst) < 10 && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(1));
    }
    // ...and their results, with nowhere to go, drop on their threads.
    assert_eq!(drops.load(Ordering::SeqCst), 10);
}

#[test]
fn pool_size_is_validated() {
    let mut ev = EventLoop::new().unwrap();
    assert!(ev.set_pool_size(0).is_err());
    assert!(ev.set_pool_size(100_000).is_err());
    ev.set_pool_size(2).unwrap();
    // Two jobs that wait for each other need both threads started.
    let both = Arc::new(Barrier::new(2));
    for _ in 0..2 {
        let b = both.clone();
        ev.spawn_blocking(move || b.wait(), |_, _| {}).unwrap();
    }
    ev.run().unwrap();
    assert!(
        ev.set_pool_size(1).is_err(),
        "cannot shrink below started threads"
    );
    ev.set_pool_size(8).unwrap();
}

/// Cancelling does not walk the queue: 30,000 cancels among 100,000 queued
/// jobs take well under a second even in a debug build (it took 1.7 s in
/// release when each cancel searched the queue). The outcome is exact:
/// cancelled jobs never run and get `Cancelled`, the rest run in order.
#[test]
fn cancelling_among_a_hundred_thousand_queued_jobs_is_cheap_and_exact() {
    let mut ev = EventLoop::new().unwrap();
    ev.set_pool_size(1).unwrap();
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let blocker = ev
        .spawn_blocking(move || wait.recv().unwrap(), |_, r| r.unwrap())
        .unwrap();
    let ran = Arc::new(std::sync::Mutex::new(Vec::new()));
    let outcomes = Rc::new(RefCell::new(vec![None; 100_000]));
    let ids: Vec<_> = (0..100_000usize)
        .map(|i| {
            let (r, o) = (ran.clone(), outcomes.clone());
            ev.spawn_blocking(
                move || r.lock().unwrap().push(i),
                move |_, res| o.borrow_mut()[i] = Some(res.is_ok()),
            )
            .unwrap()
        })
        .collect();
    // Cancel every third job, from the back (the worst case for a search).
    let started = Instant::now();
    let mut cancelled = 0;
    for (i, id) in ids.iter().enumerate().rev() {
        if i % 3 == 0 {
            assert!(ev.cancel_job(*id));
            cancelled += 1;
        }
    }
    let took = started.elapsed();
    assert!(!ev.cancel_job(blocker), "running");
    assert_eq!(cancelled, 33_334);
    assert!(
        took < Duration::from_secs(1),
        "{cancelled} cancels took {took:?}"
    );
    release.send(()).unwrap();
    ev.run().unwrap();
    let ran = ran.lock().unwrap();
    assert_eq!(
        *ran,
        (0..100_000).filter(|i| i % 3 != 0).collect::<Vec<_>>()
    );
    for (i, o) in outcomes.borrow().iter().enumerate() {
        assert_eq!(*o, Some(i % 3 != 0), "job {i}");
    }
}

/// `job_status` tells pending, finished and unknown apart; an
/// `io::Result` job gets its error, and cancellation as ECANCELED.
#[test]
fn job_status_and_io_result_jobs() {
    use evloop::{JobId, JobStatus};
    let mut ev = EventLoop::new().unwrap();
    ev.set_pool_size(1).unwrap();
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let results = Rc::new(RefCell::new(Vec::new()));
    let r = results.clone();
    let blocker = ev
        .spawn_blocking_io(
            move || {
                wait.recv().unwrap();
                Err::<(), _>(std::io::Error::from_raw_os_error(libc::EIO))
            },
            move |_, res| r.borrow_mut().push(res.unwrap_err().raw_os_error()),
        )
        .unwrap();
    let r = results.clone();
    let queued = ev
        .spawn_blocking_io(
            || Ok(1),
            move |_, res| r.borrow_mut().push(res.unwrap_err().raw_os_error()),
        )
        .unwrap();
    assert_eq!(ev.job_status(blocker), JobStatus::Pending);
    assert!(ev.cancel_job(queued));
    assert_eq!(
        ev.job_status(queued),
        JobStatus::Pending,
        "done not run yet"
    );
    assert_eq!(ev.job_status(JobId::from_u64(u64::MAX)), JobStatus::Unknown);
    release.send(()).unwrap();
    ev.run().unwrap();
    assert_eq!(*results.borrow(), [Some(libc::ECANCELED), Some(libc::EIO)]);
    assert_eq!(ev.job_status(blocker), JobStatus::Finished);
    assert_eq!(ev.job_status(queued), JobStatus::Finished);
    assert_eq!(JobId::from_u64(blocker.to_u64().unwrap()), blocker);
}
