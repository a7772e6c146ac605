//! Runs `ls -l`, streams its output as it arrives, prints the exit status.
//! The child's exit and the end of its output can arrive in either order
//! (as Node's 'exit' and 'close'), so `gather` waits for both.
//!
//!     cargo run --example spawn [-- DIR]

use std::process::ExitStatus;

use evloop::process::{self, Command, Stdio};
use evloop::{gather, EventLoop};

fn main() -> std::io::Result<()> {
    env_logger::init();
    let dir = std::env::args().nth(1).unwrap_or_else(|| ".".into());
    let mut ev = EventLoop::new()?;
    let mut both = gather(
        &mut ev,
        2,
        |_, status: std::io::Result<Vec<Option<ExitStatus>>>| match status.map(|s| s[0]) {
            Ok(Some(status)) => println!("{status}"),
            other => eprintln!("no exit status: {other:?}"),
        },
    );
    let (exited, output_done) = (both.remove(0), both.remove(0));
    let mut cmd = Command::new("ls");
    cmd.args(["-l", &dir]).stdout(Stdio::Pipe);
    let mut child = process::spawn(&mut ev, cmd, move |ev, status| {
        exited.complete(ev, Ok(Some(status)))
    })?;
    let stdout = child.stdout.take().expect("piped");
    let mut output_done = Some(output_done);
    stdout.read_start(&mut ev, move |ev, out, data| match data {
        Ok([]) | Err(_) => {
            let _ = out.close(ev);
            if let Some(done) = output_done.take() {
                done.complete(ev, Ok(None));
            }
        }
        Ok(bytes) => print!("{}", String::from_utf8_lossy(bytes)),
    })?;
    ev.run()
}
