//! Name resolution on the pool.

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
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
    // glibc asks the resolver even for .invalid: keep that on this machine.
    if !in_own_network_namespace("an_unresolvable_name_is_an_error_not_a_panic") {
        return;
    }
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

/// The first name /etc/hosts gives `ip`, if any: what `getnameinfo` answers
/// for it on a machine with the usual `hosts: files ...` order.
fn hosts_name(ip: IpAddr) -> Option<String> {
    let hosts = std::fs::read_to_string("/etc/hosts").ok()?;
    hosts.lines().find_map(|line| {
        let line = line.split('#').next()?;
        let mut words = line.split_whitespace();
        let addr: IpAddr = words.next()?.parse().ok()?;
        (addr == ip).then(|| words.next().map(str::to_string))?
    })
}

/// follows libuv test/test-getnameinfo.c getnameinfo_basic_ip4 and
/// getnameinfo_basic_ip6 (127.0.0.1:80 and [::1]:80), and Node's
/// test/parallel/test-dns-lookupService.js: the host comes from /etc/hosts,
/// the service from /etc/services.
#[test]
fn lookup_addr_names_the_loopback_address_and_port() {
    if !in_own_network_namespace("lookup_addr_names_the_loopback_address_and_port") {
        return;
    }
    let mut ev = EventLoop::new().unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let v4: SocketAddr = "127.0.0.1:80".parse().unwrap();
    let v6: SocketAddr = "[::1]:80".parse().unwrap();
    for addr in [v4, v6] {
        let g = got.clone();
        net::lookup_addr(&mut ev, addr, move |_, r| g.borrow_mut().push((addr, r))).unwrap();
    }
    ev.run().unwrap();
    let got = got.borrow();
    assert_eq!(got.len(), 2, "both callbacks ran");
    let http_known = std::fs::read_to_string("/etc/services").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("http\t") || l.starts_with("http "))
    });
    for (addr, result) in got.iter() {
        match (hosts_name(addr.ip()), result) {
            (Some(name), Ok((host, service))) => {
                assert_eq!(host, &name, "{addr}");
                let want = if http_known { "http" } else { "80" };
                assert_eq!(service, want, "{addr}");
            }
            (Some(name), Err(e)) => panic!("{addr} is {name} in /etc/hosts, got {e}"),
            // Not in /etc/hosts: the answer depends on the resolver, but
            // it comes back (no hang, no panic).
            (None, _) => {}
        }
    }
}

/// Reverse lookups of names not in /etc/hosts ask the DNS resolver, whose
/// queries must not leave this machine: such a test re-runs itself in a
/// child process in a network namespace of its own (`unshare -n`: only a
/// loopback interface, down). True in that child, which then does the work;
/// in the parent, runs the child, checks that it passed, and is false.
fn in_own_network_namespace(test: &str) -> bool {
    const CHILD: &str = "EVLOOP_DNS_NETNS_CHILD";
    if std::env::var_os(CHILD).is_some() {
        return true;
    }
    let out = std::process::Command::new("unshare")
        .arg("-n")
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .expect("unshare (util-linux) runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1 passed"), "{stdout}");
    false
}

/// An address with no name is an error (`NI_NAMEREQD`), never the address
/// in digits. 192.0.2.1 is TEST-NET-1 (RFC 5737): no name anywhere. The
/// lookup runs in a child process in a network namespace of its own
/// (`unshare -n`), so the resolver's query never leaves this machine.
#[test]
fn lookup_addr_of_an_address_with_no_name_is_an_error() {
    if !in_own_network_namespace("lookup_addr_of_an_address_with_no_name_is_an_error") {
        return;
    }
    let addr: SocketAddr = "192.0.2.1:9".parse().unwrap();
    if hosts_name(addr.ip()).is_some() {
        return; // someone named it locally
    }
    let mut ev = EventLoop::new().unwrap();
    let err = Rc::new(RefCell::new(None));
    let e = err.clone();
    net::lookup_addr(&mut ev, addr, move |_, r| {
        *e.borrow_mut() = Some(r.expect_err("no name for TEST-NET-1"))
    })
    .unwrap();
    ev.run().unwrap();
    let e = err.borrow_mut().take().expect("the callback ran");
    assert!(e.to_string().contains("192.0.2.1"), "{e}");
}
