//! Ctrl-C handled by a callback: a ticker runs until SIGINT arrives, then the
//! SIGINT callback clears it and stops the loop.
//!
//!     cargo run --example signals    (then press Ctrl-C)

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use evloop::{signal, EventLoop};

fn main() -> std::io::Result<()> {
    env_logger::init();
    let mut ev = EventLoop::new()?;
    let ticks = Rc::new(Cell::new(0u32));
    let t = ticks.clone();
    let ticker = ev.set_interval(Duration::from_millis(500), move |_| t.set(t.get() + 1));
    signal::on_signal(&mut ev, libc::SIGINT, move |ev| {
        println!("got SIGINT after {} ticks, stopping", ticks.get());
        ev.clear_timer(ticker);
        ev.stop();
    })?;
    println!("running; press Ctrl-C to stop");
    ev.run()?;
    println!("bye");
    Ok(())
}
