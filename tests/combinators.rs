//! Completion tokens and combinators: each final callback runs exactly once,
//! through the loop; a dropped token reports where it was made; synchronous
//! tasks need no stack. Most tests follow async.js's (caolan/async test/*.js),
//! the reference for callback combinators; asyncio's where it has one.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use evloop::{
    each_limit, gather, gather_all, map_limit, parallel, race, retry, series, timeout, Completion,
    Dropped, EventLoop, Queue, Task,
};
use log::{Level, LevelFilter, Log, Metadata, Record};

/// Captures evloop's warnings (the dropped-token test reads them).
struct Capture(Mutex<Vec<String>>);

impl Log for Capture {
    fn enabled(&self, m: &Metadata) -> bool {
        m.level() <= Level::Warn
    }
    fn log(&self, record: &Record) {
        if record.target().starts_with("evloop") && record.level() <= Level::Warn {
            self.0.lock().unwrap().push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

static LOGGER: Capture = Capture(Mutex::new(Vec::new()));

fn capture_warnings() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        log::set_logger(&LOGGER).unwrap();
        log::set_max_level(LevelFilter::Warn);
    });
}

fn warnings_containing(text: &str) -> usize {
    LOGGER
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.contains(text))
        .count()
}

fn err(text: &str) -> io::Error {
    io::Error::other(text.to_string())
}

type Log_ = Rc<RefCell<Vec<String>>>;

fn new_log() -> Log_ {
    Rc::new(RefCell::new(Vec::new()))
}

fn push(log: &Log_, entry: impl Into<String>) {
    log.borrow_mut().push(entry.into());
}

/// A task that completes with `value` after `ms`, logging when it does.
fn after(ms: u64, value: u32, log: &Log_) -> Task<u32> {
    let log = log.clone();
    Box::new(move |ev, done| {
        ev.set_timeout(Duration::from_millis(ms), move |ev| {
            push(&log, format!("finished {value}"));
            done.complete(ev, Ok(value));
        });
    })
}

/// A value that counts its drops, to see when a late result is dropped.
struct Tracked(Rc<Cell<u32>>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

// follows async.js test/parallel.js 'parallel': tasks finish 3, 1, 2; the
// results keep the input order.
#[test]
fn parallel_results_keep_input_order_when_tasks_finish_3_1_2() {
    let mut ev = EventLoop::new().unwrap();
    let log = new_log();
    let tasks = vec![after(50, 1, &log), after(100, 2, &log), after(25, 3, &log)];
    let l = log.clone();
    parallel(&mut ev, tasks, move |_, results| {
        push(&l, format!("done {:?}", results.unwrap()));
    });
    ev.run().unwrap();
    assert_eq!(
        *log.borrow(),
        ["finished 3", "finished 1", "finished 2", "done [1, 2, 3]"]
    );
}

// follows async.js test/parallel.js 'parallel empty array' (and series.js,
// race.js 'should callback when task is empty'): the final callback runs,
// but never inside the call that started the combinator.
#[test]
fn empty_input_finishes_on_a_later_pass_never_inside_the_call() {
    let mut ev = EventLoop::new().unwrap();
    let log = new_log();
    let returned = Rc::new(Cell::new(false));
    let check = |name: &'static str| {
        let (log, returned) = (log.clone(), returned.clone());
        move |outcome: String| {
            assert!(returned.get(), "{name} finished inside its call");
            push(&log, format!("{name} {outcome}"));
        }
    };
    let c = check("parallel");
    parallel(&mut ev, Vec::<Task<u32>>::new(), move |_, r| {
        c(format!("{:?}", r.unwrap()))
    });
    let c = check("series");
    series(&mut ev, Vec::<Task<u32>>::new(), move |_, r| {
        c(format!("{:?}", r.unwrap()))
    });
    let c = check("map_limit");
    map_limit(
        &mut ev,
        Vec::<u32>::new(),
        2,
        |ev, i, done: Completion<u32>| done.complete(ev, Ok(i)),
        move |_, r| c(format!("{:?}", r.unwrap())),
    )
    .unwrap();
    let c = check("each_limit");
    each_limit(
        &mut ev,
        Vec::<u32>::new(),
        2,
        |ev, _, done| done.complete(ev, Ok(())),
        move |_, r| c(format!("{:?}", r.unwrap())),
    )
    .unwrap();
    let c = check("gather");
    let tokens = gather(&mut ev, 0, move |_, r: io::Result<Vec<u32>>| {
        c(format!("{:?}", r.unwrap()))
    });
    assert!(tokens.is_empty());
    let c = check("gather_all");
    let tokens = gather_all(&mut ev, 0, move |_, r: Vec<io::Result<u32>>| {
        c(format!("{}", r.len()))
    });
    assert!(tokens.is_empty());
    let c = check("race");
    race(&mut ev, Vec::<Task<u32>>::new(), move |_, r| {
        c(format!("{:?}", r.unwrap_err().kind()))
    });
    returned.set(true);
    ev.run().unwrap();
    assert_eq!(
        *log.borrow(),
        [
            "parallel []",
            "series []",
            "map_limit []",
            "each_limit ()",
            "gather []",
            "gather_all 0",
            "race InvalidInput"
        ]
    );
}

// follows async.js test/parallel.js 'parallel error': the first error wins,
// once; the results that come after it are dropped, not delivered.
#[test]
fn gather_first_error_wins_once_and_later_values_are_dropped() {
    let mut ev = EventLoop::new().unwrap();
    let calls = Rc::new(RefCell::new(Vec::new()));
    let c = calls.clone();
    let tokens = gather(&mut ev, 3, move |_, r: io::Result<Vec<Tracked>>| {
        c.borrow_mut()
            .push(r.map(|v| v.len()).map_err(|e| e.to_string()));
    });
    let drops = Rc::new(Cell::new(0));
    let mut tokens = tokens.into_iter();
    let (a, b, c) = (
        tokens.next().unwrap(),
        tokens.next().unwrap(),
        tokens.next().unwrap(),
    );
    ev.set_timeout(Duration::from_millis(10), move |ev| {
        a.complete(ev, Err(err("first")))
    });
    ev.set_timeout(Duration::from_millis(20), move |ev| {
        b.complete(ev, Err(err("second")))
    });
    let d = drops.clone();
    let late_drops = Rc::new(Cell::new(None));
    let seen = late_drops.clone();
    ev.set_timeout(Duration::from_millis(30), move |ev| {
        c.complete(ev, Ok(Tracked(d.clone())));
        seen.set(Some(d.get())); // dropped by the time complete returned
    });
    ev.run().unwrap();
    assert_eq!(*calls.borrow(), [Err("first".to_string())]);
    assert_eq!(late_drops.get(), Some(1));
}

// follows async.js test/parallel.js 'parallel empty object with reflect all
// (errors)': every result, errors included, in token order.
#[test]
fn gather_all_keeps_every_result_in_token_order() {
    let mut ev = EventLoop::new().unwrap();
    let out = Rc::new(RefCell::new(Vec::new()));
    let o = out.clone();
    let tokens = gather_all(&mut ev, 3, move |_, results: Vec<io::Result<u32>>| {
        for r in results {
            o.borrow_mut().push(r.map_err(|e| e.to_string()));
        }
    });
    let mut t = tokens.into_iter();
    let (a, b, c) = (t.next().unwrap(), t.next().unwrap(), t.next().unwrap());
    ev.set_timeout(Duration::from_millis(20), move |ev| a.complete(ev, Ok(1)));
    ev.call_soon(move |ev| b.complete(ev, Err(err("two"))));
    drop(c);
    ev.run().unwrap();
    let out = out.borrow();
    assert_eq!(out[0].as_ref().unwrap(), &1);
    assert_eq!(out[1].as_ref().unwrap_err(), "two");
    assert!(
        out[2].as_ref().unwrap_err().contains("was dropped"),
        "{out:?}"
    );
}

/// The last `complete` does not run the final callback inside itself: what
/// it unblocks runs on a later pass (guarantee 11 for tokens).
#[test]
fn the_final_callback_never_runs_inside_complete() {
    let mut ev = EventLoop::new().unwrap();
    let log = new_log();
    let l = log.clone();
    let tokens = gather(&mut ev, 1, move |_, _: io::Result<Vec<()>>| {
        push(&l, "final")
    });
    let l = log.clone();
    let token = tokens.into_iter().next().unwrap();
    ev.call_soon(move |ev| {
        token.complete(ev, Ok(()));
        push(&l, "complete returned");
    });
    ev.run().unwrap();
    assert_eq!(*log.borrow(), ["complete returned", "final"]);
}

// follows async.js test/series.js 'series' and 'error': in order, one at a
// time; the first error stops it and the next task never starts.
#[test]
fn series_runs_in_order_and_stops_at_the_first_error() {
    let mut ev = EventLoop::new().unwrap();
    let log = new_log();
    let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
    let tasks: Vec<Task<u32>> = vec![
        Box::new(move |ev, done| {
            push(&l1, "start 1");
            ev.set_timeout(Duration::from_millis(20), move |ev| {
                done.complete(ev, Ok(1))
            });
        }),
        Box::new(move |ev, done| {
            push(&l2, "start 2");
            done.complete(ev, Err(err("two failed")));
        }),
        Box::new(move |ev, done| {
            push(&l3, "start 3");
            done.complete(ev, Ok(3));
        }),
    ];
    let l = log.clone();
    series(&mut ev, tasks, move |_, r| {
        push(&l, format!("done {}", r.unwrap_err()));
    });
    ev.run().unwrap();
    assert_eq!(*log.borrow(), ["start 1", "start 2", "done two failed"]);

    // All Ok: values in order, each task started after the previous one
    // completed.
    let log = new_log();
    let tasks = vec![after(30, 1, &log), after(10, 2, &log), after(20, 3, &log)];
    let l = log.clone();
    series(&mut ev, tasks, move |_, r| {
        push(&l, format!("done {:?}", r.unwrap()))
    });
    ev.run().unwrap();
    assert_eq!(
        *log.borrow(),
        ["finished 1", "finished 2", "finished 3", "done [1, 2, 3]"]
    );
}

/// A million tasks that complete inside their own start call: no stack
/// growth (run on a 256 KiB stack, where recursion would overflow within a
/// few thousand tasks), no pass per task, and quick. Follows async.js
/// test/series.js 'call in another context' / eachOfLimit's synchronous
/// iterator tests (async.js defers to avoid the same overflow).
#[test]
fn series_of_a_million_synchronous_tasks_needs_no_stack() {
    let (took, passes, count) = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let mut ev = EventLoop::new().unwrap();
            let n = 1_000_000u32;
            let tasks = (0..n)
                .map(|i| move |ev: &mut EventLoop, done: Completion<u32>| done.complete(ev, Ok(i)));
            let count = Rc::new(Cell::new(0usize));
            let c = count.clone();
            let start = Instant::now();
            series(&mut ev, tasks, move |_, r| {
                let v = r.unwrap();
                assert_eq!(v[999_999], 999_999);
                c.set(v.len());
            });
            ev.run().unwrap();
            (start.elapsed(), ev.iterations(), count.get())
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(count, 1_000_000);
    assert!(passes <= 3, "a pass per task: {passes}");
    eprintln!("series of 1,000,000 synchronous tasks: {took:?} ({passes} passes)");
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

/// The same for a queue and map_limit: synchronous workers do not recurse.
#[test]
fn synchronous_workers_do_not_recurse_in_map_limit_or_queue() {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let mut ev = EventLoop::new().unwrap();
            let sum = Rc::new(Cell::new(0u64));
            let s = sum.clone();
            map_limit(
                &mut ev,
                0..100_000u64,
                3,
                |ev, i, done: Completion<u64>| done.complete(ev, Ok(i)),
                move |_, r| s.set(r.unwrap().iter().sum()),
            )
            .unwrap();
            let queue = Queue::new(2, |ev: &mut EventLoop, i: u64, done: Completion<u64>| {
                done.complete(ev, Ok(i))
            })
            .unwrap();
            let total = Rc::new(Cell::new(0u64));
            for i in 0..100_000u64 {
                let t = total.clone();
                queue
                    .push(&mut ev, i, move |_, r| t.set(t.get() + r.unwrap()))
                    .unwrap();
            }
            ev.run().unwrap();
            assert_eq!(sum.get(), 99_999 * 100_000 / 2);
            assert_eq!(total.get(), 99_999 * 100_000 / 2);
        })
        .unwrap()
        .join()
        .unwrap();
}

// follows async.js test/map.js 'mapLimit' and test/each.js 'eachLimit': at
// most `limit` in flight, results in input order.
#[test]
fn map_limit_never_exceeds_the_bound_and_keeps_order() {
    let mut ev = EventLoop::new().unwrap();
    let in_flight = Rc::new(Cell::new(0));
    let max = Rc::new(Cell::new(0));
    let (f, m) = (in_flight.clone(), max.clone());
    let out = Rc::new(RefCell::new(None));
    let o = out.clone();
    map_limit(
        &mut ev,
        0..20u64,
        4,
        move |ev, i, done: Completion<u64>| {
            f.set(f.get() + 1);
            m.set(m.get().max(f.get()));
            let f = f.clone();
            if i % 5 == 0 {
                f.set(f.get() - 1);
                done.complete(ev, Ok(i * 10)); // some complete at once
                return;
            }
            ev.set_timeout(Duration::from_millis((i * 7) % 13), move |ev| {
                f.set(f.get() - 1);
                done.complete(ev, Ok(i * 10));
            });
        },
        move |_, r| *o.borrow_mut() = Some(r.unwrap()),
    )
    .unwrap();
    ev.run().unwrap();
    assert_eq!(max.get(), 4, "the bound is reached and never exceeded");
    assert_eq!(
        out.borrow().clone().unwrap(),
        (0..20).map(|i| i * 10).collect::<Vec<_>>()
    );

    // each_limit: the same bound, no values.
    let (f, m) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let (f2, m2) = (f.clone(), m.clone());
    let ok = Rc::new(Cell::new(false));
    let o = ok.clone();
    each_limit(
        &mut ev,
        0..10u64,
        2,
        move |ev, i, done| {
            f2.set(f2.get() + 1);
            m2.set(m2.get().max(f2.get()));
            let f = f2.clone();
            ev.set_timeout(Duration::from_millis(i % 3), move |ev| {
                f.set(f.get() - 1);
                done.complete(ev, Ok(()));
            });
        },
        move |_, r| o.set(r.is_ok()),
    )
    .unwrap();
    ev.run().unwrap();
    assert!(ok.get());
    assert_eq!(m.get(), 2);
}

// follows async.js test/parallel.js 'parallel does not continue
// replenishing after error'
#[test]
fn map_limit_starts_nothing_after_an_error() {
    let mut ev = EventLoop::new().unwrap();
    let started = Rc::new(Cell::new(0));
    let s = started.clone();
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    map_limit(
        &mut ev,
        0..9u32,
        3,
        move |ev, i, done: Completion<u32>| {
            s.set(s.get() + 1);
            if i == 2 {
                done.complete(ev, Err(err("third")));
            } else {
                ev.set_timeout(Duration::from_millis(10), move |ev| {
                    done.complete(ev, Ok(i))
                });
            }
        },
        move |_, r| {
            assert_eq!(r.unwrap_err().to_string(), "third");
            c.set(c.get() + 1);
        },
    )
    .unwrap();
    ev.run().unwrap();
    assert_eq!(started.get(), 3);
    assert_eq!(calls.get(), 1);
}

#[test]
fn zero_limits_and_zero_attempts_are_invalid_input() {
    let mut ev = EventLoop::new().unwrap();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let e = map_limit(
        &mut ev,
        0..3u32,
        0,
        |ev, i, done: Completion<u32>| done.complete(ev, Ok(i)),
        move |_, _| r.set(true),
    )
    .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    let r = ran.clone();
    let e = each_limit(
        &mut ev,
        0..3u32,
        0,
        |ev, _, d| d.complete(ev, Ok(())),
        move |_, _| r.set(true),
    )
    .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    let r = ran.clone();
    let e = retry(
        &mut ev,
        0,
        Duration::ZERO,
        |ev, d: Completion<()>| d.complete(ev, Ok(())),
        move |_, _| r.set(true),
    )
    .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    let e = Queue::new(0, |ev: &mut EventLoop, (): (), d: Completion<()>| {
        d.complete(ev, Ok(()))
    })
    .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    ev.run().unwrap();
    assert!(!ran.get(), "a call that fails never runs its callback");
}

// follows async.js test/race.js 'should call each function in parallel and
// callback with first result' and 'should callback with the first error'
#[test]
fn race_first_completion_wins_and_the_rest_are_ignored() {
    let mut ev = EventLoop::new().unwrap();
    let log = new_log();
    let tasks = vec![after(40, 1, &log), after(10, 2, &log), after(25, 3, &log)];
    let l = log.clone();
    race(&mut ev, tasks, move |_, r| {
        push(&l, format!("won {}", r.unwrap()))
    });
    ev.run().unwrap();
    // The winner is decided by deadline order; when "won" prints relative to
    // the losers depends on how late the loop runs, so only count.
    let log = log.borrow();
    assert_eq!(
        log.iter()
            .filter(|e| e.starts_with("won"))
            .collect::<Vec<_>>(),
        ["won 2"]
    );
    assert_eq!(log[0], "finished 2");
    assert_eq!(log.len(), 4, "the losers still ran: {log:?}");

    // An error can win too; a later Ok is ignored, its value dropped.
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let tasks: Vec<Task<Tracked>> = vec![
        Box::new(move |ev, done| {
            ev.set_timeout(Duration::from_millis(20), move |ev| {
                done.complete(ev, Ok(Tracked(d)))
            });
        }),
        Box::new(|ev, done| {
            ev.set_timeout(Duration::from_millis(5), |ev| {
                done.complete(ev, Err(err("fast failure")))
            });
        }),
    ];
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    race(&mut ev, tasks, move |_, r| {
        assert_eq!(r.err().unwrap().to_string(), "fast failure");
        c.set(c.get() + 1);
    });
    ev.run().unwrap();
    assert_eq!((calls.get(), drops.get()), (1, 1));
}

// follows async.js test/retry.js 'retry when attempt succeeds', 'retry when
// all attempts fail' and 'retry with interval when all attempts fail'
#[test]
fn retry_counts_attempts_and_spaces_them_by_the_delay() {
    let mut ev = EventLoop::new().unwrap();
    let starts = Rc::new(RefCell::new(Vec::new()));
    let s = starts.clone();
    let result = Rc::new(RefCell::new(None));
    let r = result.clone();
    let delay = Duration::from_millis(40);
    retry(
        &mut ev,
        5,
        delay,
        move |ev, done: Completion<usize>| {
            s.borrow_mut().push(Instant::now());
            let attempt = s.borrow().len();
            if attempt < 3 {
                done.complete(ev, Err(err(&format!("attempt {attempt}"))));
            } else {
                ev.call_soon(move |ev| done.complete(ev, Ok(attempt)));
            }
        },
        move |_, out| *r.borrow_mut() = Some(out.map_err(|e| e.to_string())),
    )
    .unwrap();
    ev.run().unwrap();
    assert_eq!(*result.borrow(), Some(Ok(3)));
    let starts = starts.borrow();
    assert_eq!(starts.len(), 3, "stops at the first success");
    for pair in starts.windows(2) {
        assert!(pair[1] - pair[0] >= delay, "spaced by the delay");
    }

    // All fail: the last attempt's error, after exactly `times` attempts.
    let attempts = Rc::new(Cell::new(0));
    let a = attempts.clone();
    let result = Rc::new(RefCell::new(None));
    let r = result.clone();
    retry(
        &mut ev,
        3,
        Duration::from_millis(1),
        move |ev, done: Completion<()>| {
            a.set(a.get() + 1);
            let n = a.get();
            ev.set_timeout(Duration::from_millis(1), move |ev| {
                done.complete(ev, Err(err(&format!("failure {n}"))))
            });
        },
        move |_, out| *r.borrow_mut() = Some(out.unwrap_err().to_string()),
    )
    .unwrap();
    ev.run().unwrap();
    assert_eq!(attempts.get(), 3);
    assert_eq!(result.borrow().as_deref(), Some("failure 3"));
}

// follows async.js test/timeout.js 'timeout with series' and 'timeout with
// parallel': the error at the deadline; the late result is ignored.
#[test]
fn timeout_fires_at_the_deadline_and_drops_the_late_value() {
    let mut ev = EventLoop::new().unwrap();
    let drops = Rc::new(Cell::new(0));
    let log = new_log();
    let started = ev.now();
    let limit = Duration::from_millis(50);
    // The task holds on to its token; it completes only after the timeout
    // fired (no race between two timers on a loaded machine).
    let held: Rc<RefCell<Option<Completion<Tracked>>>> = Rc::new(RefCell::new(None));
    let h = held.clone();
    let (d, l) = (drops.clone(), log.clone());
    timeout(
        &mut ev,
        limit,
        move |_, done: Completion<Tracked>| *h.borrow_mut() = Some(done),
        move |ev, r| {
            let fired = ev.now() - started;
            assert!(fired >= limit, "never before the deadline: {fired:?}");
            assert_eq!(r.err().unwrap().kind(), io::ErrorKind::TimedOut);
            push(&l, "timed out");
            let late = held.borrow_mut().take().unwrap();
            ev.call_soon(move |ev| {
                push(&l, "late completion");
                late.complete(ev, Ok(Tracked(d.clone())));
                push(&l, format!("late value dropped: {}", d.get()));
            });
        },
    );
    ev.run().unwrap();
    assert_eq!(
        *log.borrow(),
        ["timed out", "late completion", "late value dropped: 1"]
    );
    assert_eq!(drops.get(), 1);
}

#[test]
fn timeout_passes_a_result_that_arrives_in_time_and_clears_its_timer() {
    let mut ev = EventLoop::new().unwrap();
    let out = Rc::new(Cell::new(None));
    let o = out.clone();
    timeout(
        &mut ev,
        Duration::from_secs(3600),
        |ev, done: Completion<u32>| {
            ev.set_timeout(Duration::from_millis(5), |ev| done.complete(ev, Ok(7)));
        },
        move |_, r| o.set(Some(r.unwrap())),
    );
    let start = Instant::now();
    ev.run().unwrap(); // returns: the hour-long timer was cleared
    assert_eq!(out.get(), Some(7));
    assert!(start.elapsed() < Duration::from_secs(60));
}

/// A dropped token hands its waiter `Dropped`, naming the file and line
/// where the token was made, and logs a warning with the same place.
#[test]
fn a_dropped_token_reports_dropped_with_its_file_and_line() {
    capture_warnings();
    let mut ev = EventLoop::new().unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    let line = line!() + 1;
    let token = Completion::new(&mut ev, move |_, r: io::Result<u32>| {
        let e = r.unwrap_err();
        g.borrow_mut().push(*Dropped::find(&e).unwrap())
    });
    ev.call_soon(move |_| drop(token)); // dropped inside a callback
    ev.run().unwrap();
    let dropped = got.borrow()[0];
    assert_eq!(dropped.location().file(), file!());
    assert_eq!(dropped.location().line(), line);
    let place = format!("{}:{}", file!(), line);
    assert_eq!(warnings_containing(&place), 1, "one warning naming {place}");

    // A gather's token names the gather call; the gather fails with it.
    let g = got.clone();
    let line = line!() + 1;
    let tokens = gather(&mut ev, 2, move |_, r: io::Result<Vec<()>>| {
        g.borrow_mut()
            .push(*Dropped::find(&r.unwrap_err()).unwrap())
    });
    let mut tokens = tokens.into_iter();
    let keep = tokens.next().unwrap();
    drop(tokens); // the second token, before the loop even runs
    ev.run().unwrap();
    assert_eq!(got.borrow()[1].location().line(), line);
    keep.complete(&mut ev, Ok(())); // after the failure: ignored, no warning
    ev.run().unwrap();
    assert_eq!(got.borrow().len(), 2);
}

/// The Send variant completes from another thread through the loop's
/// handle; dropped on another thread it reports `Dropped` naming where it
/// was made. While held, it keeps the loop alive.
#[test]
fn a_send_token_completes_from_another_thread() {
    let mut ev = EventLoop::new().unwrap();
    let out = Rc::new(RefCell::new(Vec::new()));
    let o = out.clone();
    let token = Completion::new(&mut ev, move |_, r: io::Result<u64>| {
        o.borrow_mut().push(r.map_err(|e| e.to_string()))
    })
    .into_send(&mut ev);
    let worker = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        token.complete(Ok(42)).unwrap();
    });
    ev.run().unwrap(); // waits for the other thread
    worker.join().unwrap();
    assert_eq!(*out.borrow(), [Ok(42)]);

    let o = out.clone();
    let token = Completion::new(&mut ev, move |_, r: io::Result<u64>| {
        let e = r.unwrap_err();
        o.borrow_mut()
            .push(Ok(u64::from(Dropped::find(&e).unwrap().location().line())))
    });
    let line = line!() + 1;
    let token = token.into_send(&mut ev);
    let worker = std::thread::spawn(move || drop(token));
    ev.run().unwrap();
    worker.join().unwrap();
    assert_eq!(out.borrow()[1].as_ref().unwrap(), &u64::from(line));
}

/// Dropping the loop with tokens pending runs nothing and leaks nothing.
#[test]
fn dropping_the_loop_with_tokens_pending_runs_nothing() {
    let mut ev = EventLoop::new().unwrap();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let tokens = gather(&mut ev, 2, move |_, _: io::Result<Vec<()>>| r.set(true));
    let witness = Rc::new(());
    for token in tokens {
        let w = witness.clone();
        ev.set_timeout(Duration::from_secs(60), move |ev| {
            let _w = w;
            token.complete(ev, Ok(()))
        });
    }
    let send = Completion::new(&mut ev, |_, _: io::Result<()>| {}).into_send(&mut ev);
    drop(ev);
    drop(send); // the loop is gone: nothing to deliver, no panic
    assert!(!ran.get());
    assert_eq!(
        Rc::strong_count(&witness),
        1,
        "every pending closure dropped"
    );
}

// follows async.js test/queue.js 'basics' and 'drain once': the
// concurrency bound, every item's callback once, drain once at the end.
#[test]
fn queue_bounds_concurrency_and_drain_fires_once() {
    let mut ev = EventLoop::new().unwrap();
    let log = new_log();
    let in_flight = Rc::new(Cell::new(0));
    let max = Rc::new(Cell::new(0));
    let (f, m) = (in_flight.clone(), max.clone());
    let queue = Queue::new(
        3,
        move |ev: &mut EventLoop, ms: u64, done: Completion<u64>| {
            f.set(f.get() + 1);
            m.set(m.get().max(f.get()));
            let f = f.clone();
            ev.set_timeout(Duration::from_millis(ms), move |ev| {
                f.set(f.get() - 1);
                done.complete(ev, Ok(ms));
            });
        },
    )
    .unwrap();
    let l = log.clone();
    queue.set_drain(move |_| push(&l, "drain"));
    let returned = Rc::new(Cell::new(false));
    for ms in [40, 10, 30, 20, 5, 15, 1, 25] {
        let (l, r) = (log.clone(), returned.clone());
        queue
            .push(&mut ev, ms, move |_, v| {
                assert!(r.get(), "never inside push");
                push(&l, format!("{}", v.unwrap()));
            })
            .unwrap();
    }
    assert_eq!(
        (queue.len(), queue.running()),
        (8, 0),
        "nothing starts inside push"
    );
    returned.set(true);
    ev.run().unwrap();
    assert_eq!(max.get(), 3);
    let log = log.borrow();
    assert_eq!(log.len(), 9);
    assert_eq!(log.last().unwrap(), "drain");
    assert_eq!(log.iter().filter(|e| *e == "drain").count(), 1);
    assert!(queue.is_idle());
}

// follows async.js test/queue.js 'pause' and 'resume'
#[test]
fn queue_pause_holds_items_and_resume_starts_them() {
    let mut ev = EventLoop::new().unwrap();
    let log = new_log();
    let l = log.clone();
    let queue = Queue::new(
        2,
        move |ev: &mut EventLoop, i: u32, done: Completion<u32>| {
            push(&l, format!("start {i}"));
            done.complete(ev, Ok(i));
        },
    )
    .unwrap();
    queue.pause();
    for i in 0..3 {
        queue.push(&mut ev, i, |_, _| {}).unwrap();
    }
    ev.run().unwrap(); // nothing runs while paused: the loop ends
    assert!(log.borrow().is_empty());
    assert!(queue.is_paused());
    assert_eq!(queue.len(), 3);
    queue.resume(&mut ev);
    ev.run().unwrap();
    assert_eq!(*log.borrow(), ["start 0", "start 1", "start 2"]);
}

// follows async.js test/queue.js 'kill': waiting items are dropped (here:
// their callbacks get Interrupted), drain never fires, pushes fail.
#[test]
fn queue_kill_interrupts_waiting_items_and_ends_the_queue() {
    // The manual clock: a loaded machine cannot stall the loop past both
    // timers before the first worker starts.
    let mut ev = EventLoop::with_manual_clock().unwrap();
    let log = new_log();
    let queue = Queue::new(1, |ev: &mut EventLoop, i: u32, done: Completion<u32>| {
        ev.set_timeout(Duration::from_millis(10), move |ev| {
            done.complete(ev, Ok(i))
        });
    })
    .unwrap();
    let l = log.clone();
    queue.set_drain(move |_| push(&l, "drain"));
    for i in 0..3 {
        let l = log.clone();
        queue
            .push(&mut ev, i, move |_, r| {
                push(&l, format!("{i}: {:?}", r.map_err(|e| e.kind())))
            })
            .unwrap();
    }
    let q = queue.clone();
    ev.set_timeout(Duration::from_millis(1), move |ev| {
        assert!(q.kill(ev));
        assert!(!q.kill(ev), "killing twice is a no-op");
    });
    ev.run().unwrap();
    assert_eq!(
        *log.borrow(),
        ["1: Err(Interrupted)", "2: Err(Interrupted)", "0: Ok(0)"]
    );
    let e = queue
        .push(&mut ev, 9, |_, _| panic!("never runs"))
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotConnected);
}

/// A worker may push more work into its own queue, and kill it from
/// inside; drain fires once the pushed work is done too.
#[test]
fn a_worker_can_push_to_its_own_queue() {
    let mut ev = EventLoop::new().unwrap();
    let seen = new_log();
    let slot: Rc<RefCell<Option<Queue<u32, ()>>>> = Rc::new(RefCell::new(None));
    let (s, q) = (seen.clone(), slot.clone());
    let queue = Queue::new(
        2,
        move |ev: &mut EventLoop, i: u32, done: Completion<()>| {
            push(&s, format!("{i}"));
            if i < 3 {
                let queue = q.borrow().clone().unwrap();
                queue.push(ev, i * 10 + 10, |_, _| {}).unwrap();
            }
            done.complete(ev, Ok(()));
        },
    )
    .unwrap();
    *slot.borrow_mut() = Some(queue.clone());
    let drains = Rc::new(Cell::new(0));
    let d = drains.clone();
    queue.set_drain(move |_| d.set(d.get() + 1));
    queue.push(&mut ev, 1, |_, _| {}).unwrap();
    queue.push(&mut ev, 2, |_, _| {}).unwrap();
    ev.run().unwrap();
    assert_eq!(*seen.borrow(), ["1", "2", "20", "30"]);
    assert_eq!(drains.get(), 1);
    assert!(queue.kill(&mut ev)); // breaks the worker's cycle
    slot.borrow_mut().take();
}

/// A task that panics drops its token: the flow gets `Dropped` instead of
/// hanging, and a queue goes on with the next item (with a panic handler,
/// guarantee 8).
#[test]
fn a_panicking_task_fails_its_flow_instead_of_hanging() {
    capture_warnings();
    let mut ev = EventLoop::new().unwrap();
    let panics = Rc::new(Cell::new(0));
    let p = panics.clone();
    ev.set_panic_handler(move |_, _| p.set(p.get() + 1));
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let out = Rc::new(RefCell::new(Vec::new()));
    let o = out.clone();
    let line = Rc::new(Cell::new(0));
    let at = line.clone();
    ev.call_soon(move |ev| {
        let line = at;
        let tasks: Vec<Task<u32>> = vec![
            Box::new(|ev, done| {
                ev.set_timeout(Duration::from_millis(5), |ev| done.complete(ev, Ok(1)));
            }),
            Box::new(|_, _done| panic!("task bug")),
        ];
        line.set(line!() + 1);
        parallel(ev, tasks, move |_, r| {
            let e = r.unwrap_err();
            o.borrow_mut().push(format!(
                "parallel: dropped at line {}",
                Dropped::find(&e).unwrap().location().line()
            ));
        });
    });
    let o = out.clone();
    let queue = Queue::new(1, |ev: &mut EventLoop, i: u32, done: Completion<u32>| {
        if i == 1 {
            panic!("worker bug");
        }
        done.complete(ev, Ok(i));
    })
    .unwrap();
    for i in 0..3 {
        let o = o.clone();
        queue
            .push(&mut ev, i, move |_, r| {
                o.borrow_mut().push(format!(
                    "item {i}: {}",
                    r.map(|v| v.to_string())
                        .unwrap_or_else(|e| e.to_string().contains("was dropped").to_string())
                ))
            })
            .unwrap();
    }
    let o = out.clone();
    queue.set_drain(move |_| o.borrow_mut().push("drain".into()));
    ev.run().unwrap();
    std::panic::set_hook(prev);
    assert_eq!(panics.get(), 2);
    let out = out.borrow();
    assert!(
        out.contains(&format!("parallel: dropped at line {}", line.get())),
        "{out:?}"
    );
    let queue_lines: Vec<_> = out.iter().filter(|l| !l.starts_with("parallel")).collect();
    assert_eq!(
        queue_lines,
        ["item 0: 0", "item 1: true", "item 2: 2", "drain"]
    );
}

/// Combinators compose: retry over timeout, the shape of a robust fetch.
#[test]
fn retry_over_timeout_composes() {
    let mut ev = EventLoop::new().unwrap();
    let attempts = Rc::new(Cell::new(0));
    let a = attempts.clone();
    let out = Rc::new(RefCell::new(None));
    let o = out.clone();
    retry(
        &mut ev,
        3,
        Duration::from_millis(5),
        move |ev, done: Completion<&'static str>| {
            a.set(a.get() + 1);
            // The first attempt hangs past the timeout; the second answers.
            let ms = if a.get() == 1 { 200 } else { 1 };
            timeout(
                ev,
                Duration::from_millis(50),
                move |ev, t| {
                    ev.set_timeout(Duration::from_millis(ms), move |ev| {
                        t.complete(ev, Ok("page"))
                    });
                },
                move |ev, r| done.complete(ev, r),
            );
        },
        move |_, r| *o.borrow_mut() = Some(r.unwrap()),
    )
    .unwrap();
    ev.run().unwrap();
    assert_eq!((attempts.get(), *out.borrow()), (2, Some("page")));
}

/// Killing the queue from inside its own worker takes effect at once: the
/// running item still completes, the waiting ones are interrupted, the
/// drain callback never runs. Pushing from inside the drain callback starts
/// a new round, which drains again.
#[test]
fn kill_inside_the_worker_and_push_inside_drain() {
    let mut ev = EventLoop::new().unwrap();
    let log = new_log();
    let slot: Rc<RefCell<Option<Queue<u32, u32>>>> = Rc::new(RefCell::new(None));
    let s = slot.clone();
    let queue = Queue::new(
        1,
        move |ev: &mut EventLoop, i: u32, done: Completion<u32>| {
            if i == 1 {
                let q = s.borrow_mut().take().unwrap();
                assert!(q.kill(ev));
            }
            done.complete(ev, Ok(i));
        },
    )
    .unwrap();
    *slot.borrow_mut() = Some(queue.clone());
    let l = log.clone();
    queue.set_drain(move |_| push(&l, "drain"));
    for i in 0..4 {
        let l = log.clone();
        queue
            .push(&mut ev, i, move |_, r| {
                push(&l, format!("{i}: {:?}", r.map_err(|e| e.kind())))
            })
            .unwrap();
    }
    ev.run().unwrap();
    assert_eq!(
        *log.borrow(),
        [
            "0: Ok(0)",
            "2: Err(Interrupted)",
            "3: Err(Interrupted)",
            "1: Ok(1)"
        ]
    );

    // Push inside drain: one drain per time the queue runs dry.
    let log = new_log();
    let queue = Queue::new(2, |ev: &mut EventLoop, i: u32, done: Completion<u32>| {
        ev.set_timeout(Duration::from_millis(1), move |ev| done.complete(ev, Ok(i)));
    })
    .unwrap();
    let (q, l) = (queue.clone(), log.clone());
    let rounds = Rc::new(Cell::new(0));
    queue.set_drain(move |ev| {
        rounds.set(rounds.get() + 1);
        push(&l, format!("drain {}", rounds.get()));
        if rounds.get() == 1 {
            let l = l.clone();
            q.push(ev, 7, move |_, r| push(&l, format!("{}", r.unwrap())))
                .unwrap();
        }
    });
    queue.push(&mut ev, 1, |_, _| {}).unwrap();
    ev.run().unwrap();
    assert_eq!(*log.borrow(), ["drain 1", "7", "drain 2"]);
    queue.kill(&mut ev); // the drain callback holds the queue
}
