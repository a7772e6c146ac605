//! The http_get example's client against an HTTP server in the same loop.

mod common;

#[allow(dead_code)]
#[path = "../examples/http_get.rs"]
mod http_get;

use std::cell::RefCell;
use std::rc::Rc;

use evloop::net::tcp;
use evloop::EventLoop;

#[test]
fn http_get_against_a_server_in_the_same_loop() {
    let _g = common::serial();
    let fds = common::open_fds();
    let mut ev = EventLoop::new().unwrap();
    let body = "x".repeat(12_345);
    let requests = Rc::new(RefCell::new(Vec::new()));
    let r = requests.clone();
    let server = tcp::listen(
        &mut ev,
        "127.0.0.1:0".parse().unwrap(),
        Default::default(),
        move |ev, conn| {
            let conn = conn.unwrap();
            let body = body.clone();
            let r = r.clone();
            let mut request = Vec::new();
            conn.read_start(ev, move |ev, conn, data| match data.unwrap() {
                [] => {
                    conn.close(ev);
                } // the client closed after reading
                bytes => {
                    request.extend_from_slice(bytes);
                    if request.ends_with(b"\r\n\r\n") {
                        r.borrow_mut()
                            .push(String::from_utf8(request.clone()).unwrap());
                        let reply = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        conn.write_with(ev, reply, |_, r| r.unwrap()).unwrap();
                        conn.shutdown_with(ev, |_, r| r.unwrap()).unwrap();
                    }
                }
            })
            .unwrap();
        },
    )
    .unwrap();
    let port = server.local_addr().unwrap().port();
    let response = Rc::new(RefCell::new(None));
    let resp = response.clone();
    http_get::get(&mut ev, "127.0.0.1", port, "/hello", move |ev, r| {
        *resp.borrow_mut() = Some(r.unwrap());
        server.close(ev);
    })
    .unwrap_or_else(|e| panic!("{e}"));
    ev.run().unwrap();
    assert_eq!(
        *response.borrow(),
        Some(http_get::Response {
            status: 200,
            body_len: 12_345
        })
    );
    let reqs = requests.borrow();
    assert_eq!(reqs.len(), 1);
    assert!(
        reqs[0].starts_with("GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n"),
        "{}",
        reqs[0]
    );
    drop(ev);
    common::assert_fds_back_to(fds);
}
