//! The Router: lifecycle, filters, overflow accounting under both policies, and
//! concurrency.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use vibes_events::router::{
    EmitReport, OverflowPolicy, RecvError, RecvTimeoutError, SubscribeOptions, TryEmitError,
    TryRecvError,
};
use vibes_events::{BeadStatus, Event, EventData, Filter, Router, Text, ToolUse, source};

fn text(n: usize) -> Event {
    Event::claude(Text::new(n.to_string()))
}

fn number(event: &Event) -> usize {
    match &event.data {
        EventData::Text(t) => t.text.parse().expect("numbered text"),
        other => panic!("not a numbered text: {other:?}"),
    }
}

fn bounded(capacity: usize, policy: OverflowPolicy) -> SubscribeOptions {
    SubscribeOptions::new(Filter::all())
        .capacity(capacity)
        .policy(policy)
}

/// Emits events numbered `range` and returns what each emit reported.
fn emit_all(router: &Router, range: std::ops::Range<usize>) -> Vec<EmitReport> {
    range
        .map(|n| router.try_emit(text(n)).expect("emit"))
        .collect()
}

/// Everything buffered right now, as numbers, with lag reports as `None(n)`.
#[derive(Debug, PartialEq)]
enum Got {
    Event(usize),
    Lagged(u64),
}

fn drain(sub: &mut vibes_events::Subscription) -> Vec<Got> {
    let mut got = Vec::new();
    loop {
        match sub.try_recv() {
            Ok(event) => got.push(Got::Event(number(&event))),
            Err(TryRecvError::Lagged(n)) => got.push(Got::Lagged(n)),
            Err(TryRecvError::Empty | TryRecvError::Closed) => return got,
        }
    }
}

#[tokio::test]
async fn emitted_event_reaches_every_subscriber_in_order() {
    let router = Router::new();
    let mut a = router.subscribe();
    let mut b = router.subscribe();
    for n in 0..3 {
        let report = router.emit(text(n)).await.unwrap();
        assert_eq!(report.delivered, 2);
        assert_eq!(report.dropped, 0);
    }
    for sub in [&mut a, &mut b] {
        for n in 0..3 {
            assert_eq!(number(&sub.recv().await.unwrap()), n);
        }
    }
}

#[tokio::test]
async fn subscribers_share_one_event_allocation() {
    let router = Router::new();
    let mut a = router.subscribe();
    let mut b = router.subscribe();
    let event = Arc::new(text(1));
    router.emit(Arc::clone(&event)).await.unwrap();
    let got_a = a.recv().await.unwrap();
    let got_b = b.recv().await.unwrap();
    assert!(Arc::ptr_eq(&got_a, &event));
    assert!(Arc::ptr_eq(&got_b, &event));
}

#[tokio::test]
async fn waiting_receiver_is_woken_by_emit_from_another_task() {
    let router = Router::new();
    let mut sub = router.subscribe();
    let receiver = tokio::spawn(async move { sub.recv().await.map(|e| number(&e)) });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        !receiver.is_finished(),
        "recv waits while nothing was emitted"
    );
    router.emit(text(7)).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), receiver)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, Ok(7));
}

#[test]
fn try_recv_reports_empty_when_nothing_is_buffered() {
    let router = Router::new();
    let mut sub = router.subscribe();
    assert_eq!(sub.try_recv().unwrap_err(), TryRecvError::Empty);
}

#[test]
fn type_pattern_filter_selects_matching_types() {
    let router = Router::new();
    let mut claude = router.subscribe_with(Filter::all().event_type("claude.*"));
    let mut exact = router.subscribe_with(Filter::all().event_type("bead.status"));
    let mut everything = router.subscribe();

    let report = router.try_emit(text(1)).unwrap();
    assert_eq!(report.delivered, 2, "claude.* and everything");
    let report = router
        .try_emit(Event::bd(BeadStatus::new("bd-1", "open", "closed")))
        .unwrap();
    assert_eq!(report.delivered, 2, "bead.status and everything");
    let call = ToolUse::new("t1", "Bash", serde_json::json!({"command": "ls"}));
    router.try_emit(Event::claude(call)).unwrap();

    let types = |sub: &mut vibes_events::Subscription| {
        let mut types = Vec::new();
        while let Ok(event) = sub.try_recv() {
            types.push(event.event_type().to_owned());
        }
        types
    };
    assert_eq!(types(&mut claude), ["claude.text", "claude.tool_use"]);
    assert_eq!(types(&mut exact), ["bead.status"]);
    assert_eq!(
        types(&mut everything),
        ["claude.text", "bead.status", "claude.tool_use"]
    );
}

#[test]
fn source_filter_selects_matching_sources_and_combines_with_types() {
    let router = Router::new();
    let mut from_bd = router.subscribe_with(Filter::all().source(source::BD));
    let mut claude_text = router.subscribe_with(
        Filter::all()
            .types(["claude.text", "claude.thinking"])
            .sources([source::CLAUDE, "other"]),
    );
    router.try_emit(text(1)).unwrap();
    router
        .try_emit(Event::bd(BeadStatus::new("bd-1", "open", "closed")))
        .unwrap();
    router
        .try_emit(Event::new("other", Text::new("2")))
        .unwrap();
    router
        .try_emit(Event::new("third", Text::new("3")))
        .unwrap();

    assert_eq!(from_bd.try_recv().unwrap().event_type(), "bead.status");
    assert_eq!(from_bd.try_recv().unwrap_err(), TryRecvError::Empty);
    assert_eq!(drain(&mut claude_text), [Got::Event(1), Got::Event(2)]);
}

#[test]
fn emit_with_no_matching_subscriber_delivers_to_none() {
    let router = Router::new();
    let _sub = router.subscribe_with(Filter::all().event_type("bead.*"));
    assert_eq!(router.try_emit(text(1)).unwrap(), EmitReport::default());
    assert_eq!(router.stats().emitted, 1);
}

#[test]
fn drop_newest_counts_drops_and_reports_lag_after_buffered_events() {
    let router = Router::new();
    let mut sub = router.subscribe_with(bounded(4, OverflowPolicy::DropNewest));
    let reports = emit_all(&router, 0..10);
    assert_eq!(reports.iter().map(|r| r.delivered).sum::<usize>(), 4);
    assert_eq!(reports.iter().map(|r| r.dropped).sum::<usize>(), 6);
    assert_eq!(sub.dropped(), 6);
    assert_eq!(router.stats().subscribers[0].dropped, 6);

    // The four that fit, then the gap with its exact size; after the gap, delivery
    // resumes with the next event that fits.
    assert_eq!(
        drain(&mut sub),
        [
            Got::Event(0),
            Got::Event(1),
            Got::Event(2),
            Got::Event(3),
            Got::Lagged(6)
        ]
    );
    emit_all(&router, 10..11);
    assert_eq!(drain(&mut sub), [Got::Event(10)]);
    assert_eq!(sub.dropped(), 6);
}

#[test]
fn lag_is_reported_exactly_where_events_were_dropped() {
    let router = Router::new();
    let mut sub = router.subscribe_with(bounded(2, OverflowPolicy::DropNewest));
    emit_all(&router, 0..4); // 0 and 1 fit; 2 and 3 are dropped
    assert_eq!(number(&sub.try_recv().unwrap()), 0); // takes 0 and 1 out of the router
    emit_all(&router, 4..6); // both fit again
    assert_eq!(
        drain(&mut sub),
        [Got::Event(1), Got::Lagged(2), Got::Event(4), Got::Event(5)]
    );
    assert_eq!(sub.dropped(), 2);
}

#[test]
fn lag_at_the_end_is_reported_when_the_buffer_runs_dry() {
    let router = Router::new();
    let mut sub = router.subscribe_with(bounded(1, OverflowPolicy::DropNewest));
    emit_all(&router, 0..3);
    assert_eq!(drain(&mut sub), [Got::Event(0), Got::Lagged(2)]);
    assert_eq!(
        sub.try_recv().unwrap_err(),
        TryRecvError::Empty,
        "a gap is reported once"
    );
}

#[test]
fn a_full_subscriber_does_not_hold_back_others() {
    let router = Router::new();
    let mut slow = router.subscribe_with(bounded(1, OverflowPolicy::DropNewest));
    let mut fast = router.subscribe_with(bounded(100, OverflowPolicy::DropNewest));
    emit_all(&router, 0..50);
    assert_eq!(drain(&mut fast).len(), 50);
    assert_eq!(drain(&mut slow), [Got::Event(0), Got::Lagged(49)]);
}

#[test]
fn backpressure_try_emit_refuses_when_full_and_delivers_to_no_one() {
    let router = Router::new();
    let mut lossless = router.subscribe_with(bounded(2, OverflowPolicy::Backpressure));
    let mut other = router.subscribe();
    emit_all(&router, 0..2);
    let err = router.try_emit(text(2)).unwrap_err();
    let TryEmitError::Full(event) = err else {
        panic!("expected Full, got {err:?}")
    };
    assert_eq!(number(&event), 2, "the refused event is handed back");
    assert_eq!(
        drain(&mut other),
        [Got::Event(0), Got::Event(1)],
        "all or nothing"
    );
    assert_eq!(drain(&mut lossless), [Got::Event(0), Got::Event(1)]);
    assert_eq!(lossless.dropped(), 0);
    router.try_emit(text(3)).unwrap();
    assert_eq!(drain(&mut lossless), [Got::Event(3)]);
}

#[tokio::test]
async fn backpressure_emit_waits_until_the_subscriber_reads() {
    let router = Router::new();
    let mut sub = router.subscribe_with(bounded(1, OverflowPolicy::Backpressure));
    router.emit(text(0)).await.unwrap();
    let emitter = {
        let router = router.clone();
        tokio::spawn(async move { router.emit(text(1)).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        !emitter.is_finished(),
        "emit waits while the subscriber is full"
    );
    assert_eq!(number(&sub.recv().await.unwrap()), 0);
    let report = tokio::time::timeout(Duration::from_secs(5), emitter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.unwrap().delivered, 1);
    assert_eq!(number(&sub.recv().await.unwrap()), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backpressure_loses_nothing_with_a_slow_subscriber() {
    const N: usize = 2_000;
    let router = Router::new();
    let mut sub = router.subscribe_with(bounded(3, OverflowPolicy::Backpressure));
    let emitter = {
        let router = router.clone();
        tokio::spawn(async move {
            for n in 0..N {
                router.emit(text(n)).await.unwrap();
            }
            router.close();
        })
    };
    let mut got = Vec::new();
    loop {
        match sub.recv().await {
            Ok(event) => got.push(number(&event)),
            Err(RecvError::Closed) => break,
            Err(RecvError::Lagged(n)) => panic!("backpressure subscriber lagged by {n}"),
        }
        if got.len() % 97 == 0 {
            tokio::task::yield_now().await;
        }
    }
    emitter.await.unwrap();
    assert_eq!(got, (0..N).collect::<Vec<_>>());
    assert_eq!(sub.dropped(), 0);
}

#[tokio::test]
async fn emit_after_close_is_a_reported_no_op() {
    let router = Router::new();
    let mut sub = router.subscribe();
    router.emit(text(1)).await.unwrap();
    router.close();
    assert!(router.is_closed());
    let err = router.emit(text(2)).await.unwrap_err();
    assert_eq!(number(&err.0), 2, "the event is handed back");
    assert!(matches!(
        router.try_emit(text(3)),
        Err(TryEmitError::Closed(_))
    ));
    let stats = router.stats();
    assert_eq!((stats.emitted, stats.emitted_after_close), (1, 2));
    // Buffered events are still delivered, then the end.
    assert_eq!(number(&sub.recv().await.unwrap()), 1);
    assert_eq!(sub.recv().await.unwrap_err(), RecvError::Closed);
    assert_eq!(
        sub.recv().await.unwrap_err(),
        RecvError::Closed,
        "and it stays closed"
    );
}

#[tokio::test]
async fn close_wakes_a_waiting_receiver() {
    let router = Router::new();
    let mut sub = router.subscribe();
    let receiver = tokio::spawn(async move { sub.recv().await.map(|e| number(&e)) });
    tokio::time::sleep(Duration::from_millis(20)).await;
    router.close();
    let got = tokio::time::timeout(Duration::from_secs(5), receiver)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, Err(RecvError::Closed));
}

#[tokio::test]
async fn close_releases_an_emitter_blocked_by_backpressure() {
    let router = Router::new();
    let _sub = router.subscribe_with(bounded(1, OverflowPolicy::Backpressure));
    router.emit(text(0)).await.unwrap();
    let emitter = {
        let router = router.clone();
        tokio::spawn(async move { router.emit(text(1)).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    router.close();
    let result = tokio::time::timeout(Duration::from_secs(5), emitter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(number(&result.unwrap_err().0), 1);
}

#[test]
fn close_is_idempotent_and_subscribe_after_close_is_closed() {
    let router = Router::new();
    router.close();
    router.close();
    let mut late = router.subscribe();
    assert_eq!(late.try_recv().unwrap_err(), TryRecvError::Closed);
}

#[test]
fn unsubscribe_closes_only_that_subscription() {
    let router = Router::new();
    let mut gone = router.subscribe();
    let mut stays = router.subscribe();
    emit_all(&router, 0..1);
    assert!(router.unsubscribe(gone.id()));
    assert!(!router.unsubscribe(gone.id()), "already unsubscribed");
    let report = router.try_emit(text(1)).unwrap();
    assert_eq!(report.delivered, 1);
    assert_eq!(
        drain(&mut gone),
        [Got::Event(0)],
        "buffered events are kept"
    );
    assert_eq!(gone.try_recv().unwrap_err(), TryRecvError::Closed);
    assert_eq!(drain(&mut stays), [Got::Event(0), Got::Event(1)]);
}

#[test]
fn subscription_close_stops_deliveries() {
    let router = Router::new();
    let mut sub = router.subscribe();
    sub.close();
    assert_eq!(router.try_emit(text(0)).unwrap().delivered, 0);
    assert_eq!(sub.try_recv().unwrap_err(), TryRecvError::Closed);
}

#[test]
fn dropping_a_subscription_unsubscribes_it() {
    let router = Router::new();
    let sub = router.subscribe();
    let id = sub.id();
    assert_eq!(router.stats().subscribers.len(), 1);
    drop(sub);
    assert!(router.stats().subscribers.is_empty());
    assert!(!router.unsubscribe(id));
    assert_eq!(router.try_emit(text(0)).unwrap().delivered, 0);
    // A new subscription reuses the slot but not the id.
    let again = router.subscribe();
    assert_ne!(again.id(), id);
    assert!(
        !router.unsubscribe(id),
        "a stale id never closes a newer subscription"
    );
}

#[tokio::test]
async fn dropping_a_full_backpressure_subscription_releases_emitters() {
    let router = Router::new();
    let sub = router.subscribe_with(bounded(1, OverflowPolicy::Backpressure));
    router.emit(text(0)).await.unwrap();
    let emitter = {
        let router = router.clone();
        tokio::spawn(async move { router.emit(text(1)).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(sub);
    let report = tokio::time::timeout(Duration::from_secs(5), emitter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.unwrap().delivered, 0);
}

#[test]
fn blocking_receive_works_from_a_plain_thread() {
    let router = Router::new();
    let mut sub = router.subscribe();
    let receiver = thread::spawn(move || {
        let mut got = Vec::new();
        loop {
            match sub.recv_blocking() {
                Ok(event) => got.push(number(&event)),
                Err(RecvError::Closed) => return got,
                Err(RecvError::Lagged(n)) => panic!("lagged {n}"),
            }
        }
    });
    for n in 0..100 {
        router.emit_blocking(text(n)).unwrap();
    }
    router.close();
    assert_eq!(receiver.join().unwrap(), (0..100).collect::<Vec<_>>());
}

#[test]
fn recv_timeout_gives_up_after_the_timeout_and_returns_early_on_an_event() {
    let router = Router::new();
    let mut sub = router.subscribe();
    let started = Instant::now();
    assert_eq!(
        sub.recv_timeout(Duration::from_millis(30)).unwrap_err(),
        RecvTimeoutError::Timeout
    );
    assert!(started.elapsed() >= Duration::from_millis(30));

    let emitter = {
        let router = router.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            router.emit_blocking(text(5)).unwrap();
        })
    };
    let event = sub.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(number(&event), 5);
    emitter.join().unwrap();
    router.close();
    assert_eq!(
        sub.recv_timeout(Duration::from_secs(30)).unwrap_err(),
        RecvTimeoutError::Closed
    );
}

#[test]
fn emit_blocking_waits_for_a_blocking_reader_under_backpressure() {
    let router = Router::new();
    let mut sub = router.subscribe_with(bounded(2, OverflowPolicy::Backpressure));
    let emitter = {
        let router = router.clone();
        thread::spawn(move || {
            for n in 0..500 {
                router.emit_blocking(text(n)).unwrap();
            }
            router.close();
        })
    };
    let mut got = Vec::new();
    while let Ok(event) = sub.recv_blocking() {
        got.push(number(&event));
    }
    emitter.join().unwrap();
    assert_eq!(got, (0..500).collect::<Vec<_>>());
}

/// Event `emitter * PER_EMITTER + n`.
const PER_EMITTER: usize = 5_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_emitters_and_subscribers_lose_nothing_under_backpressure_and_agree_on_order() {
    const EMITTERS: usize = 4;
    const SUBSCRIBERS: usize = 6;
    let router = Router::with_capacity(16);
    let subs: Vec<_> = (0..SUBSCRIBERS)
        .map(|_| router.subscribe_with(bounded(16, OverflowPolicy::Backpressure)))
        .collect();
    let readers: Vec<_> = subs
        .into_iter()
        .map(|mut sub| {
            tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    match sub.recv().await {
                        Ok(event) => got.push(number(&event)),
                        Err(RecvError::Closed) => return got,
                        Err(RecvError::Lagged(n)) => panic!("lagged {n}"),
                    }
                }
            })
        })
        .collect();
    let emitters: Vec<_> = (0..EMITTERS)
        .map(|e| {
            let router = router.clone();
            tokio::spawn(async move {
                for n in 0..PER_EMITTER {
                    router.emit(text(e * PER_EMITTER + n)).await.unwrap();
                }
            })
        })
        .collect();
    for emitter in emitters {
        emitter.await.unwrap();
    }
    router.close();
    let mut sequences = Vec::new();
    for reader in readers {
        sequences.push(reader.await.unwrap());
    }
    for seq in &sequences {
        assert_eq!(seq.len(), EMITTERS * PER_EMITTER);
        for e in 0..EMITTERS {
            let own: Vec<usize> = seq
                .iter()
                .copied()
                .filter(|n| n / PER_EMITTER == e)
                .collect();
            let expected: Vec<usize> = (e * PER_EMITTER..(e + 1) * PER_EMITTER).collect();
            assert_eq!(own, expected, "one emitter's events keep their order");
        }
        assert_eq!(
            seq, &sequences[0],
            "every subscriber sees the same total order"
        );
    }
    assert_eq!(router.stats().emitted, (EMITTERS * PER_EMITTER) as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_accounting_is_exact_under_concurrency() {
    const EMITTERS: usize = 4;
    let router = Router::new();
    let subs: Vec<_> = (0..4)
        .map(|_| router.subscribe_with(bounded(8, OverflowPolicy::DropNewest)))
        .collect();
    let readers: Vec<_> = subs
        .into_iter()
        .map(|mut sub| {
            tokio::spawn(async move {
                let (mut received, mut lagged) = (0u64, 0u64);
                let mut last_per_emitter = [None::<usize>; EMITTERS];
                loop {
                    match sub.recv().await {
                        Ok(event) => {
                            let n = number(&event);
                            let slot = &mut last_per_emitter[n / PER_EMITTER];
                            assert!(slot.is_none_or(|last| last < n), "order kept despite drops");
                            *slot = Some(n);
                            received += 1;
                        }
                        Err(RecvError::Lagged(n)) => lagged += n,
                        Err(RecvError::Closed) => return (received, lagged, sub.dropped()),
                    }
                }
            })
        })
        .collect();
    let emitters: Vec<_> = (0..EMITTERS)
        .map(|e| {
            let router = router.clone();
            tokio::spawn(async move {
                let mut dropped = 0;
                for n in 0..PER_EMITTER {
                    dropped += router
                        .emit(text(e * PER_EMITTER + n))
                        .await
                        .unwrap()
                        .dropped;
                }
                dropped
            })
        })
        .collect();
    let mut dropped_reported = 0;
    for emitter in emitters {
        dropped_reported += emitter.await.unwrap();
    }
    router.close();
    let mut lagged_total = 0;
    for reader in readers {
        let (received, lagged, dropped) = reader.await.unwrap();
        assert_eq!(
            received + lagged,
            (EMITTERS * PER_EMITTER) as u64,
            "every event is either received or reported missed"
        );
        assert_eq!(
            lagged, dropped,
            "the subscriber is told of every drop counted for it"
        );
        lagged_total += lagged;
    }
    assert_eq!(
        lagged_total, dropped_reported as u64,
        "emit reports agree with subscribers"
    );
}

/// Counts the wake-ups of the task it stands for.
struct CountingWaker(std::sync::atomic::AtomicUsize);

impl std::task::Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn a_blocked_emitter_is_woken_once_its_event_has_room_everywhere_it_goes() {
    use std::future::Future;
    use std::sync::atomic::Ordering;
    use std::task::{Context, Poll, Waker};

    let router = Router::new();
    let mut all = router.subscribe_with(bounded(1, OverflowPolicy::Backpressure));
    let mut tools = router.subscribe_with(
        SubscribeOptions::new(Filter::all().event_type("claude.tool_use"))
            .capacity(1)
            .policy(OverflowPolicy::Backpressure),
    );
    let tool = || Event::claude(ToolUse::new("t", "Bash", serde_json::json!({})));
    let counter = Arc::new(CountingWaker(0.into()));
    let waker = Waker::from(Arc::clone(&counter));
    let mut cx = Context::from_waker(&waker);
    let woken = || counter.0.load(Ordering::SeqCst);

    // A text goes only to `all`: room in `tools` does not help it.
    router.try_emit(tool()).expect("room in both");
    let mut text_emit = std::pin::pin!(router.emit(text(1)));
    assert!(text_emit.as_mut().poll(&mut cx).is_pending());
    assert!(tools.try_recv().is_ok());
    assert_eq!(woken(), 0, "woken although `all` is still full");
    assert!(all.try_recv().is_ok());
    assert_eq!(woken(), 1);
    match text_emit.as_mut().poll(&mut cx) {
        Poll::Ready(Ok(report)) => assert_eq!(report.delivered, 1),
        other => panic!("the text was not delivered: {other:?}"),
    }
    assert_eq!(number(&all.try_recv().expect("the text")), 1);

    // A tool call goes to both: it waits for the second of the two to make room.
    router.try_emit(tool()).expect("room in both");
    let mut tool_emit = std::pin::pin!(router.emit(tool()));
    assert!(tool_emit.as_mut().poll(&mut cx).is_pending());
    assert!(all.try_recv().is_ok());
    assert_eq!(woken(), 1, "woken although `tools` is still full");
    assert!(tools.try_recv().is_ok());
    assert_eq!(woken(), 2);
    match tool_emit.as_mut().poll(&mut cx) {
        Poll::Ready(Ok(report)) => assert_eq!(report.delivered, 2),
        other => panic!("the tool call was not delivered: {other:?}"),
    }
}
