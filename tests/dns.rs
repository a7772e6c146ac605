//! Name resolution on the pool.

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::rc::Rc;

use evloop::{net, EventLoop};

#[test]
fn localhost_and_literals_resolve() {
    let mut ev = EventLoop::new().unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    for host in ["localhost", "127.0.0.1", "::1"] {
        let g = got.clone();
        net::resolve(&mut ev, host, 8080, move |_, r| {
            g.borrow_mut().push(r.unwrap())
        })
        .unwrap();
    }
    ev.run().unwrap();
    let got = got.borrow();
    let loopback =
        |ip: IpAddr| ip == IpAddr::V4(Ipv4Addr::LOCALHOST) || ip == IpAddr::V6(Ipv6Addr::LOCALHOST);
    assert_eq!(got.len(), 3);
    for addrs in got.iter() {
        assert!(!addrs.is_empty());
        assert!(
            addrs.iter().all(|a| a.port() == 8080 && loopback(a.ip())),
            "{addrs:?}"
        );
    }
}

#[test]
fn an_unresolvable_name_is_an_error_not_a_panic() {
    let mut ev = EventLoop::new().unwrap();
    let err = Rc::new(RefCell::new(None));
    let e = err.clone();
    // .invalid is reserved: it never resolves (RFC 6761).
    net::resolve(&mut ev, "no-such-host.invalid", 80, move |_, r| {
        *e.borrow_mut() = Some(r.unwrap_err().to_string())
    })
    .unwrap();
    ev.run().unwrap();
    assert!(err.borrow().is_some());
}
