//! The alive report: everything that keeps the loop alive, with its
//! creation site. Node's test/parallel/test-process-getactiveresourcesinfo.js
//! checks the same listing (timers, handles, servers) by type name only;
//! libuv's test/test-handle-fileno.c / uv_print_active_handles are the
//! nearest C counterpart. Here the site is the point.

use std::time::Duration;

use evloop::net::tcp;
use evloop::{AliveKind, EventLoop, Interest};

/// The line of the call just before this macro, in this file.
macro_rules! line_before {
    () => {
        line!() - 1
    };
}

#[test]
fn an_empty_loop_reports_nothing_alive() {
    let ev = EventLoop::new().unwrap();
    let report = ev.alive_report();
    assert!(!report.is_alive());
    assert!(report.items.is_empty());
    assert_eq!(report.queued_callbacks, 0);
    assert_eq!(
        report.to_string(),
        "evloop: not alive: nothing keeps the loop running\n"
    );
}

#[test]
fn each_kind_is_listed_with_id_ref_state_and_creation_site() {
    let mut ev = EventLoop::new().unwrap();
    let timeout = ev.set_timeout(Duration::from_secs(60), |_| {});
    let timeout_line = line_before!();
    let interval = ev.set_interval(Duration::from_secs(5), |_| {});
    let interval_line = line_before!();
    ev.set_timer_ref(interval, false).unwrap();
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    let watch = ev.watch(a, Interest::READABLE, |_, _, _| {}).unwrap();
    let watch_line = line_before!();
    let job = ev
        .spawn_blocking(|| std::thread::sleep(Duration::from_millis(50)), |_, _| {})
        .unwrap();
    let job_line = line_before!() - 1;
    let handle = ev.handle();
    let handle_line = line_before!();
    let mut clone = handle.clone();
    let clone_line = line_before!();
    clone.set_ref(false);
    ev.call_soon(|_| {});
    ev.call_soon(|_| {});

    let report = ev.alive_report();
    assert_eq!(report.queued_callbacks, 2);
    let find = |kind: AliveKind, id: u64| {
        report
            .items
            .iter()
            .find(|i| i.kind == kind && i.id == id)
            .unwrap_or_else(|| panic!("{kind:?} {id} missing from {report:#?}"))
    };
    let here = file!();
    let cases = [
        (
            find(AliveKind::Timeout, timeout.to_u64().unwrap()),
            timeout_line,
            true,
            "timeout",
        ),
        (
            find(AliveKind::Interval, interval.to_u64().unwrap()),
            interval_line,
            false,
            "interval",
        ),
        (
            find(AliveKind::Watcher, watch.to_u64().unwrap()),
            watch_line,
            true,
            "watcher",
        ),
        (
            find(AliveKind::PoolJob, job.to_u64().unwrap()),
            job_line,
            true,
            "pool job",
        ),
    ];
    for (item, line, keeps_alive, label) in cases {
        let site = item.site.expect("a site");
        assert_eq!((site.file(), site.line()), (here, line), "{item:?}");
        assert_eq!(item.keeps_alive, keeps_alive, "{item:?}");
        assert_eq!(item.label, label);
    }
    let handles: Vec<_> = report
        .items
        .iter()
        .filter(|i| i.kind == AliveKind::Handle)
        .collect();
    assert_eq!(handles.len(), 2, "{report:#?}");
    let lines: Vec<_> = handles
        .iter()
        .map(|h| (h.site.unwrap().line(), h.keeps_alive))
        .collect();
    assert!(lines.contains(&(handle_line, true)), "{lines:?}");
    assert!(lines.contains(&(clone_line, false)), "{lines:?}");

    let text = report.to_string();
    assert!(
        text.starts_with("evloop: alive: 4 things keep the loop alive (2 queued callbacks)\n"),
        "{text}"
    );
    assert!(text.contains(&format!("{here}:{timeout_line}:")), "{text}");
    assert!(text.contains("due in"), "{text}");
    assert!(text.contains("fd "), "{text}");

    // Ended things leave the report; the loop can then finish.
    ev.clear_timer(timeout);
    ev.clear_timer(interval);
    ev.unwatch(watch);
    drop((handle, clone));
    ev.run().unwrap();
    let report = ev.alive_report();
    assert!(!report.is_alive(), "{report}");
    assert!(report.items.is_empty(), "{report:#?}");
}

#[test]
fn a_running_interval_and_a_callback_reading_the_report() {
    let mut ev = EventLoop::new().unwrap();
    let id = ev.set_interval(Duration::ZERO, |ev| {
        let report = ev.alive_report();
        assert_eq!(report.items.len(), 1);
        assert_eq!(report.items[0].detail, "running");
        ev.stop();
    });
    ev.run().unwrap();
    assert!(ev.clear_timer(id));
}

#[test]
fn servers_signals_udp_sockets_and_children_name_their_callers() {
    let mut ev = EventLoop::new().unwrap();
    let server = tcp::listen(
        &mut ev,
        "127.0.0.1:0".parse().unwrap(),
        Default::default(),
        |_, _| {},
    )
    .unwrap();
    let udp = evloop::net::udp::UdpSocket::bind(&mut ev, "127.0.0.1:0".parse().unwrap()).unwrap();
    let signal = evloop::signal::on_signal(&mut ev, libc::SIGUSR2, |_| {}).unwrap();
    let mut sleep = evloop::process::Command::new("sleep");
    sleep.arg("10");
    let child = evloop::process::spawn(&mut ev, sleep, |_, _| {});
    let report = ev.alive_report();
    let site_of = |label: &str| {
        let item = report
            .items
            .iter()
            .find(|i| i.label == label)
            .unwrap_or_else(|| panic!("no {label} in {report:#?}"));
        let site = item.site.unwrap();
        assert_eq!(site.file(), file!(), "{item:?}");
        // The line itself, whatever rustfmt made of the layout.
        let source = std::fs::read_to_string(site.file()).unwrap();
        let text = source.lines().nth(site.line() as usize - 1).unwrap();
        (text.trim().to_string(), item.keeps_alive)
    };
    let (text, keeps_alive) = site_of("server");
    assert!(text.contains("tcp::listen("), "{text}");
    assert!(keeps_alive);
    let (text, keeps_alive) = site_of("udp");
    assert!(text.contains("UdpSocket::bind("), "{text}");
    assert!(!keeps_alive, "a UDP socket waits unref'd until it receives");
    let (text, keeps_alive) = site_of("signal");
    assert!(text.contains("on_signal("), "{text}");
    assert!(!keeps_alive, "signal watchers are unref'd");
    // Without pidfds (old kernels) the exit is found through SIGCHLD instead.
    if report.items.iter().any(|i| i.label == "child") {
        let (text, _) = site_of("child");
        assert!(text.contains("process::spawn("), "{text}");
    }
    child.unwrap().kill(libc::SIGKILL).unwrap();
    server.close(&mut ev);
    udp.close(&mut ev);
    evloop::signal::stop_signal(&mut ev, signal);
    ev.run().unwrap();
}
