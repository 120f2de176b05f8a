//! Bounded channels: capacity, back-pressure, messages handed back,
//! request/reply.

use std::time::Duration;

use compartment::channel::{
    self, CallError, CapacityError, HandlerCrash, MAX_CAPACITY, RecvTimeoutError, Request,
    SendTimeoutError, TryRecvError, TrySendError,
};
use compartment::event::EventKind;
use compartment::{Child, Context, ContextError, Grant, Restart, Supervisor};

#[test]
fn capacity_n_refuses_message_n_plus_one_and_hands_it_back() {
    for capacity in [1, 2, 7, 64] {
        let (tx, rx) = channel::bounded::<String>(capacity).unwrap();
        for i in 0..capacity {
            tx.try_send(i.to_string()).unwrap();
        }
        assert!(tx.is_full());
        match tx.try_send("overflow".to_owned()) {
            Err(TrySendError::Full(message)) => assert_eq!(message, "overflow"),
            other => panic!("expected Full, got {other:?}"),
        }
        let err = tx
            .send_timeout("late".to_owned(), Duration::from_millis(5))
            .unwrap_err();
        assert!(err.is_timeout());
        assert_eq!(err.into_inner(), "late");
        // Order is preserved.
        let received: Vec<String> = rx.try_iter().collect();
        assert_eq!(
            received,
            (0..capacity).map(|i| i.to_string()).collect::<Vec<_>>()
        );
    }
}

#[test]
fn capacities_that_make_no_sense_are_typed_errors() {
    assert_eq!(
        channel::bounded::<()>(MAX_CAPACITY + 1).unwrap_err(),
        CapacityError::TooLarge {
            requested: MAX_CAPACITY + 1,
            max: MAX_CAPACITY
        }
    );
    assert_eq!(
        channel::bounded::<()>(usize::MAX).unwrap_err().to_string(),
        format!(
            "a capacity of {} exceeds the maximum of {MAX_CAPACITY}",
            usize::MAX
        )
    );
}

#[test]
fn disconnection_is_reported_on_both_sides_and_the_message_returned() {
    let (tx, rx) = channel::bounded::<u8>(1).unwrap();
    drop(rx);
    assert!(matches!(tx.try_send(1), Err(TrySendError::Disconnected(1))));
    assert_eq!(tx.send(2).unwrap_err().into_inner(), 2);

    let (tx, rx) = channel::bounded::<u8>(2).unwrap();
    tx.send(9).unwrap();
    drop(tx);
    assert_eq!(rx.recv().unwrap(), 9, "queued messages survive the sender");
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)),
        Err(RecvTimeoutError::Disconnected)
    );
}

#[test]
fn timeouts_expire() {
    let (tx, rx) = channel::bounded::<u8>(1).unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(5)),
        Err(RecvTimeoutError::Timeout)
    );
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    tx.send(1).unwrap();
    assert!(matches!(
        tx.send_timeout(2, Duration::from_millis(5)),
        Err(SendTimeoutError::Timeout(2))
    ));
    // An unrepresentably long timeout waits like a plain blocking call.
    assert_eq!(rx.recv_timeout(Duration::MAX), Ok(1));
}

#[test]
fn endpoints_of_one_channel_share_an_id_and_receivers_share_messages() {
    let (tx, rx) = channel::bounded::<u32>(8).unwrap();
    let (other, _) = channel::bounded::<u32>(8).unwrap();
    assert_eq!(tx.id(), rx.id());
    assert_eq!(tx.clone().id(), rx.clone().id());
    assert_ne!(tx.id(), other.id());
    let rx2 = rx.clone();
    for i in 0..4 {
        tx.send(i).unwrap();
    }
    let mut got = vec![
        rx.recv().unwrap(),
        rx2.recv().unwrap(),
        rx.recv().unwrap(),
        rx2.recv().unwrap(),
    ];
    got.sort();
    assert_eq!(got, [0, 1, 2, 3], "each message to exactly one receiver");
}

#[test]
fn request_reply_round_trips_and_reports_a_dropped_reply() {
    let (tx, rx) = channel::bounded::<Request<String, usize>>(2).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            for Request { body, reply } in rx.iter() {
                if body == "crash" {
                    drop(reply); // as if the handler panicked
                } else {
                    let _ = reply.send(body.len());
                }
            }
        });
        assert_eq!(tx.call("four".to_owned()).unwrap(), 4);
        assert_eq!(
            tx.call_timeout("xy".to_owned(), Duration::from_secs(10))
                .unwrap(),
            2
        );
        assert!(matches!(
            tx.call("crash".to_owned()),
            Err(CallError::NoReply)
        ));
        drop(tx); // disconnects, ending the server loop
    });
}

/// Answers `n` with `100 / n`; panics on 0, fails on 1 (without answering).
fn divides(
    requests: channel::Receiver<Request<u32, u32>>,
    cx: &Context,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    loop {
        let Request { body, reply } = cx.recv_untracked(&requests)?;
        match body {
            0 => panic!("division by zero"),
            1 => return Err("one is refused".into()),
            n => {
                let _ = reply.send(100 / n);
            }
        }
    }
}

#[test]
fn a_handler_that_panics_answers_its_caller_with_the_panic() {
    let (server, requests) = channel::bounded(4).unwrap();
    let system = Supervisor::new("app")
        .intensity(10, Duration::from_secs(60))
        .child(Child::new("divider", divides, requests))
        .start()
        .unwrap();
    assert_eq!(server.call(4).unwrap(), 25);
    match server.call(0) {
        Err(CallError::Crashed(crash)) => {
            assert_eq!(crash.message, "division by zero");
            let at = crash.location.expect("a supervised panic's location");
            assert!(at.file.ends_with("channel.rs"), "{at}");
            let shown = CallError::<u32>::Crashed(HandlerCrash {
                message: crash.message.clone(),
                location: Some(at),
            })
            .to_string();
            assert!(shown.contains("division by zero at tests"), "{shown}");
        }
        other => panic!("expected the panic, got {other:?}"),
    }
    // An error is not a panic: its caller learns only that no answer comes.
    assert!(matches!(server.call(1), Err(CallError::NoReply)));
    // The restarted instance serves the next call.
    assert_eq!(server.call(5).unwrap(), 20);
    system.shutdown();
}

#[test]
fn a_panic_on_a_thread_nobody_supervises_is_no_reply() {
    let (tx, rx) = channel::bounded::<Request<u8, u8>>(1).unwrap();
    std::thread::scope(|s| {
        let server = s.spawn(|| {
            let Request { reply, .. } = rx.recv().unwrap();
            let _held = reply;
            panic!("unsupervised");
        });
        assert!(matches!(tx.call(1), Err(CallError::NoReply)));
        assert!(server.join().is_err());
    });
}

#[test]
fn a_call_that_cannot_be_sent_hands_the_body_back() {
    let (tx, rx) = channel::bounded::<Request<&str, ()>>(1).unwrap();
    drop(rx);
    match tx.call("body") {
        Err(CallError::Send(e)) => assert_eq!(e.into_inner(), "body"),
        other => panic!("expected Send, got {other:?}"),
    }
    let (tx, _rx) = channel::bounded::<Request<&str, ()>>(1).unwrap();
    let (request, _pending) = Request::new("filler");
    tx.send(request).unwrap();
    match tx.call_timeout("body", Duration::from_millis(5)) {
        Err(CallError::Send(SendTimeoutError::Timeout(body))) => assert_eq!(body, "body"),
        other => panic!("expected a send timeout, got {other:?}"),
    }
}

#[test]
fn a_reply_that_never_comes_times_out() {
    let (tx, rx) = channel::bounded::<Request<(), ()>>(1).unwrap();
    assert!(matches!(
        tx.call_timeout((), Duration::from_millis(5)),
        Err(CallError::Timeout)
    ));
    // The request is still queued, with a live reply endpoint whose caller left.
    let Request { reply, .. } = rx.try_recv().unwrap();
    assert_eq!(reply.send(()), Err(()));
}

#[test]
fn a_capacity_of_zero_is_a_rendezvous() {
    let (tx, rx) = channel::bounded::<u32>(0).unwrap();
    assert_eq!(tx.capacity(), 0);
    // Nobody receives: a send that would have to wait is refused as full.
    assert!(matches!(tx.try_send(1), Err(TrySendError::Full(1))));
    #[allow(clippy::disallowed_methods, reason = "the test plays a second party")]
    let sender = std::thread::spawn(move || tx.send(2));
    assert_eq!(rx.recv().unwrap(), 2);
    assert!(sender.join().unwrap().is_ok());
}

#[derive(Grant)]
struct TwoInboxes {
    numbers: channel::Receiver<u32>,
    words: channel::Receiver<String>,
    log: channel::Sender<String>,
}

/// Reports which inbox was ready and what it held; panics on the number 13
/// the first time it handles it.
fn selects(g: TwoInboxes, cx: &Context) -> Result<(), ContextError> {
    loop {
        let mut select = cx.select();
        let numbers = select.recv(&g.numbers);
        let words = select.recv(&g.words);
        let ready = select.ready()?;
        let line = if ready == numbers {
            let n = cx.recv(&g.numbers)?;
            if n == 13 && cx.instance() == 1 {
                panic!("unlucky");
            }
            format!("number {n} (instance {})", cx.instance())
        } else if ready == words {
            match cx.recv(&g.words) {
                Ok(word) => format!("word {word}"),
                Err(err) => format!("words: {err}"),
            }
        } else {
            format!("unknown index {ready}")
        };
        cx.send(&g.log, line).map_err(|e| e.error)?;
    }
}

const PATIENCE: Duration = Duration::from_secs(60);

#[test]
fn select_returns_the_receiver_that_is_ready() {
    let (numbers_tx, numbers) = channel::bounded(4).unwrap();
    let (words_tx, words) = channel::bounded(4).unwrap();
    let (log, lines) = channel::bounded(16).unwrap();
    let system = Supervisor::new("app")
        .intensity(10, Duration::from_secs(60))
        .child(Child::new(
            "s",
            selects,
            TwoInboxes {
                numbers,
                words,
                log,
            },
        ))
        .start()
        .unwrap();
    words_tx.send("hello".to_owned()).unwrap();
    assert_eq!(lines.recv_timeout(PATIENCE).unwrap(), "word hello");
    numbers_tx.send(5).unwrap();
    assert_eq!(
        lines.recv_timeout(PATIENCE).unwrap(),
        "number 5 (instance 1)"
    );
    // A crash mid-message: the next instance's selection sees the message
    // to deliver again at once, though its channel is empty.
    numbers_tx.send(13).unwrap();
    assert_eq!(
        lines.recv_timeout(PATIENCE).unwrap(),
        "number 13 (instance 2)"
    );
    // A disconnected inbox is ready too; receiving from it says so.
    drop(words_tx);
    assert_eq!(
        lines.recv_timeout(PATIENCE).unwrap(),
        "words: the channel is disconnected"
    );
    system.shutdown();
}

#[test]
fn a_selection_ends_on_cancellation_and_on_revocation() {
    let (_numbers_tx, numbers) = channel::bounded::<u32>(4).unwrap();
    let (_words_tx, words) = channel::bounded::<String>(4).unwrap();
    let (words, revoker) = words.revocable();
    let (log, lines) = channel::bounded(16).unwrap();
    let supervisor = Supervisor::new("app").child(
        Child::new(
            "s",
            selects,
            TwoInboxes {
                numbers,
                words,
                log,
            },
        )
        .restart(Restart::Temporary)
        .shutdown(PATIENCE),
    );
    let events = supervisor.events(64);
    let system = supervisor.start().unwrap();
    // Nothing to receive: revoking the inbox ends the wait on it.
    revoker.revoke();
    let line = lines.recv_timeout(PATIENCE).unwrap();
    assert!(
        line.starts_with("words: ") && line.contains("revoked"),
        "{line}"
    );
    // Nothing at all to receive: cancellation ends the wait.
    system.remove_child("app/s").unwrap();
    let (ended, seen) = events.wait_for(PATIENCE, |e| {
        matches!(
            e.kind,
            EventKind::Exited { .. } | EventKind::ShutdownTimedOut { .. }
        )
    });
    assert!(
        matches!(ended.map(|e| e.kind), Some(EventKind::Exited { .. })),
        "{seen:#?}"
    );
    system.shutdown();
}

#[derive(Grant)]
struct Revokable {
    go: channel::Receiver<()>,
    inbox: channel::Receiver<u32>,
    out: channel::Sender<u32>,
    report: channel::Sender<String>,
}

/// Waits to be cancelled, then receives and sends on endpoints that are
/// revoked too, and reports what each said.
fn hears_cancellation_first(g: Revokable, cx: &Context) -> Result<(), ContextError> {
    let woken = cx.recv_untracked(&g.go);
    let received = cx.recv_untracked(&g.inbox);
    let sent = cx.send(&g.out, 7).map_err(|e| e.error);
    let tracked = cx.recv(&g.inbox);
    for (what, result) in [
        ("woken", woken.map(|()| 0)),
        ("received", received),
        ("sent", sent.map(|()| 0)),
        ("tracked", tracked),
    ] {
        // Sent while cancelled: the channel has room, so it does not wait.
        let _ = g.report.send(format!("{what}: {result:?}"));
    }
    Ok(())
}

#[test]
fn a_cancelled_instance_hears_cancellation_before_revocation() {
    let (_go_tx, go) = channel::bounded::<()>(1).unwrap();
    let (inbox_tx, inbox) = channel::bounded::<u32>(4).unwrap();
    let (out, _out_rx) = channel::bounded::<u32>(4).unwrap();
    let (report, reports) = channel::bounded(8).unwrap();
    // Queued before the revocation: still not taken once revoked.
    inbox_tx.send(1).unwrap();
    let (inbox, inbox_revoker) = inbox.revocable();
    let (out, out_revoker) = out.revocable();
    let supervisor = Supervisor::new("app").child(
        Child::new(
            "c",
            hears_cancellation_first,
            Revokable {
                go,
                inbox,
                out,
                report,
            },
        )
        .restart(Restart::Temporary)
        .shutdown(PATIENCE),
    );
    let events = supervisor.events(64);
    let system = supervisor.start().unwrap();
    events.wait_for(PATIENCE, |e| matches!(e.kind, EventKind::Started));
    inbox_revoker.revoke();
    out_revoker.revoke();
    system.shutdown();
    let lines: Vec<String> = reports.try_iter().collect();
    assert_eq!(
        lines,
        [
            "woken: Err(Cancelled)",
            "received: Err(Cancelled)",
            "sent: Err(Cancelled)",
            "tracked: Err(Cancelled)",
        ]
    );
}
