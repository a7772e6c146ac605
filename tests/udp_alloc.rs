//! Receiving UDP datagrams allocates nothing per datagram: the socket reads
//! into the loop's one 64 KiB buffer (it used to allocate 64 KiB for every
//! readiness event). Its own test binary, for its counting allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};

use evloop::net::udp::UdpSocket;
use evloop::EventLoop;

struct Counting;
static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn receiving_a_thousand_datagrams_allocates_no_buffer_per_event() {
    let mut ev = EventLoop::new().unwrap();
    let sock = UdpSocket::bind(&mut ev, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = sock.local_addr().unwrap();
    let got = Rc::new(Cell::new(0usize));
    let g = got.clone();
    sock.recv_start(&mut ev, move |_, _, r| {
        assert_eq!(r.unwrap().0, b"ping");
        g.set(g.get() + 1);
    })
    .unwrap();
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    // Warm up: the first event lends the loop its buffer.
    peer.send_to(b"ping", addr).unwrap();
    while got.get() < 1 {
        ev.run_once().unwrap();
    }
    let before = ALLOCATED.load(Ordering::Relaxed);
    for _ in 0..1000 {
        peer.send_to(b"ping", addr).unwrap();
        ev.run_once().unwrap(); // one readiness event per datagram, at most
    }
    while got.get() < 1001 {
        ev.run_once().unwrap();
    }
    let bytes = ALLOCATED.load(Ordering::Relaxed) - before;
    // 64 KiB per event would be 64 MiB here.
    assert!(
        bytes < 64 * 1024,
        "{bytes} bytes allocated for 1000 datagrams"
    );
    sock.close(&mut ev);
    ev.run().unwrap();
}
