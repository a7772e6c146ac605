//! The synchronous count: each call blocks the thread for a second.
//! Three calls take three seconds and print One Two One Two One Two.

use std::time::{Duration, Instant};

fn count() {
    println!("One");
    std::thread::sleep(Duration::from_secs(1));
    println!("Two");
}

fn main() {
    env_logger::init();
    let start = Instant::now();
    for _ in 0..3 {
        count();
    }
    eprintln!(
        "count_sync executed in {:.2} seconds",
        start.elapsed().as_secs_f64()
    );
}
