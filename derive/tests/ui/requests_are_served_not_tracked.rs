// A request's reply endpoint is one of a kind: a tracked receive, which
// keeps a copy of the message in flight, refuses it and says what to use.
use compartment::channel::{Receiver, Request};
use compartment::Context;

fn server(requests: Receiver<Request<u32, u32>>, cx: &Context) {
    for request in cx.recv_iter(&requests) {
        let _ = request;
    }
}

fn main() {}
