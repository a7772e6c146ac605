//! A program that does not exit, and says why.
//!
//! "My program does not exit and I cannot see why": here a forgotten
//! interval, a handle kept in a struct and a listening server keep the loop
//! alive after the real work is done. A watchdog timer (unref'd, so it never
//! keeps the loop alive itself) prints the loop's alive report, names each
//! culprit's creation line, and stops the loop:
//!
//! ```text
//! cargo run --example why_alive
//! ```

use std::time::Duration;

use evloop::net::tcp;
use evloop::EventLoop;

fn main() -> std::io::Result<()> {
    let mut ev = EventLoop::new()?;

    // The real work: done after 50 ms.
    ev.set_timeout(Duration::from_millis(50), |_| println!("work done"));

    // The culprits.
    let heartbeat = ev.set_interval(Duration::from_secs(1), |_| {});
    let _kept = ev.handle();
    let server = tcp::listen(
        &mut ev,
        "127.0.0.1:0".parse().unwrap(),
        Default::default(),
        |_, _| {},
    )?;

    // The watchdog: unref'd, so it does not keep the loop alive itself.
    let watchdog = ev.set_timeout(Duration::from_millis(200), |ev| {
        println!("the loop is still alive 200 ms in; why:");
        print!("{}", ev.alive_report());
        ev.stop();
    });
    ev.set_timer_ref(watchdog, false)?;

    ev.run()?;
    ev.clear_timer(heartbeat);
    server.close(&mut ev);
    Ok(())
}
