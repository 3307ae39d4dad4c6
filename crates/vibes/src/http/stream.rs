//! `GET /api/stream`: live events as Server-Sent Events.
//!
//! One task (the [`Hub`]) follows the event topic with plain reads from offsets and
//! hands every new record, decoded and rendered once, to a bounded broadcast ring.
//! Each client keeps its own position per partition: it first reads what it asked for
//! from the log itself (from its `Last-Event-ID`, `cursor` or `from`), then follows the
//! ring, dropping what it already has and reading any gap from the log, so it sees
//! every event once. A client that falls more than the ring behind (it reads too
//! slowly) is not waited for: it gets an SSE event `lagged` with the number of records
//! it missed and goes on with the newest, so one slow client neither slows the server
//! nor makes it hold more.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::{Notify, broadcast, watch};
use vibes_events::Event;
use vibes_log::{EventLog, RecordAddress};

use super::AppState;
use super::cursor::Cursor;
use super::error::{ApiError, ApiResult};
use super::events::{self, item_json};
use super::params::{self, FILTER_PARAMS, Params};
use crate::commands::tail::From;
use crate::search::Selection;

/// Records the ring holds: how far a client may fall behind before it is told it
/// lagged.
pub(super) const RING: usize = 4096;
/// How often the hub looks for records other processes appended (an append through
/// the API wakes it at once).
const POLL: Duration = Duration::from_millis(100);
/// Records read per partition per backend call.
const CHUNK: usize = 1024;

/// A new record as the hub hands it out.
#[derive(Debug)]
pub(super) struct Live {
    pub(super) address: RecordAddress,
    pub(super) event: Event,
    /// [`item_json`] of it, rendered once for every client.
    pub(super) item: Arc<str>,
}

/// The follower of the event topic that every stream client shares.
#[derive(Debug, Clone)]
pub(super) struct Hub {
    tx: broadcast::Sender<Arc<Live>>,
    wake: Arc<Notify>,
}

impl Hub {
    /// Starts following `log` from its end as it is now, until `shutdown` turns true.
    pub(super) async fn start(
        log: EventLog<Event>,
        mut shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<Hub> {
        let (tx, _) = broadcast::channel(RING);
        let wake = Arc::new(Notify::new());
        let mut positions = Vec::new();
        for p in 0..log.partitions() {
            positions.push(log.watermarks(p).await?.high);
        }
        let hub = Hub {
            tx: tx.clone(),
            wake: Arc::clone(&wake),
        };
        tokio::spawn(async move {
            let topic = log.topic().clone();
            loop {
                let mut got = 0usize;
                for (p, position) in positions.iter_mut().enumerate() {
                    let records = match log.backend().read(&topic, p as u32, *position, CHUNK).await
                    {
                        Ok(records) => records,
                        Err(e) => {
                            tracing::warn!(%topic, partition = p, "the live stream cannot read: {e}");
                            continue;
                        }
                    };
                    got += records.len();
                    for record in records {
                        *position = record.address.offset + 1;
                        // Nobody listening: nothing to decode.
                        if tx.receiver_count() == 0 {
                            continue;
                        }
                        let event = match Event::from_json_slice(&record.payload) {
                            Ok(event) => event,
                            Err(e) => {
                                tracing::warn!(%topic, address = %record.address, "the live stream skipped a record that does not decode: {e}");
                                continue;
                            }
                        };
                        let Ok(item) = item_json(record.address, &event) else {
                            continue;
                        };
                        let _ = tx.send(Arc::new(Live {
                            address: record.address,
                            event,
                            item: item.into(),
                        }));
                    }
                }
                if got == 0 {
                    tokio::select! {
                        () = wake.notified() => {}
                        () = tokio::time::sleep(POLL) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                if *shutdown.borrow() {
                    break;
                }
            }
        });
        Ok(hub)
    }

    /// Looks for new records now (after an append through the API).
    pub(super) fn wake(&self) {
        self.wake.notify_one();
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Live>> {
        self.tx.subscribe()
    }
}

/// `GET /api/stream`: matching events as SSE, each with its cursor as id, from the
/// `Last-Event-ID` header, else `cursor`, else `from` (default: the end, so only new
/// events).
pub(super) async fn stream(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let params = Params::from_query(query)?;
    params.only(&FILTER_PARAMS)?;
    let filters = params::filters(&params)?;
    let resume = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::bad_request("invalid Last-Event-ID: not text"))
                .and_then(|text| Cursor::parse(text, state.log.partitions(), "Last-Event-ID"))
        })
        .transpose()?;
    let positions = match resume {
        Some(cursor) => cursor,
        None => events::start(&state, &filters, From::End).await?,
    };
    let client = Client {
        shutdown: state.shutdown.clone(),
        jump: vec![false; positions.0.len()],
        positions,
        selection: filters.selection,
        rx: None,
        live: false,
        fresh: false,
        pending: VecDeque::new(),
        state,
    };
    let stream = futures_util::stream::unfold(client, |mut client| async move {
        client.next().await.map(|event| (Ok(event), client))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// One stream client.
struct Client {
    state: AppState,
    selection: Selection,
    /// Per partition, the next offset it needs.
    positions: Cursor,
    rx: Option<broadcast::Receiver<Arc<Live>>>,
    /// Following the ring (else reading the log).
    live: bool,
    /// Just switched to the ring: what it holds may be older than what was read, so a
    /// lag there is caught up from the log, not reported.
    fresh: bool,
    /// Per partition: after a reported lag, the next record may be past the position.
    jump: Vec<bool>,
    pending: VecDeque<SseEvent>,
    shutdown: watch::Receiver<bool>,
}

impl Client {
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if *self.shutdown.borrow() {
                return None;
            }
            if self.live {
                self.follow().await?;
            } else {
                self.catch_up().await?;
            }
        }
    }

    /// Reads from the log at the positions; once every partition is read to its end,
    /// joins the ring (subscribed before that last read, so nothing falls between).
    async fn catch_up(&mut self) -> Option<()> {
        let log = self.state.log.clone();
        let topic = log.topic().clone();
        let mut got = 0;
        for p in 0..self.positions.0.len() {
            let records = match log
                .backend()
                .read(&topic, p as u32, self.positions.0[p], CHUNK)
                .await
            {
                Ok(records) => records,
                Err(e) => {
                    tracing::warn!(%topic, partition = p, "a stream client cannot read: {e}");
                    return None;
                }
            };
            got += records.len();
            for record in records {
                self.positions.0[p] = record.address.offset + 1;
                match Event::from_json_slice(&record.payload) {
                    Ok(event) if self.selection.matches(&event) => {
                        if let Ok(item) = item_json(record.address, &event) {
                            self.push(&item);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(%topic, address = %record.address, "a stream client skipped a record that does not decode: {e}");
                    }
                }
            }
        }
        if got == 0 {
            if self.rx.is_none() {
                self.rx = Some(self.state.hub.subscribe());
            } else {
                self.live = true;
                self.fresh = true;
            }
        }
        Some(())
    }

    /// Takes the next record from the ring.
    async fn follow(&mut self) -> Option<()> {
        let rx = self.rx.as_mut()?;
        let received = match rx.try_recv() {
            Ok(live) => Ok(live),
            Err(broadcast::error::TryRecvError::Empty) => {
                self.fresh = false;
                tokio::select! {
                    received = rx.recv() => received,
                    _ = self.shutdown.changed() => return None,
                }
            }
            Err(broadcast::error::TryRecvError::Lagged(n)) => {
                Err(broadcast::error::RecvError::Lagged(n))
            }
            Err(broadcast::error::TryRecvError::Closed) => return None,
        };
        match received {
            Ok(live) => {
                let p = live.address.partition as usize;
                let offset = live.address.offset;
                let at = self.positions.0.get(p).copied()?;
                if offset < at {
                    return Some(()); // read from the log already
                }
                if offset > at && !self.jump[p] {
                    // A gap: read it from the log (the ring is consulted again after).
                    self.live = false;
                    return Some(());
                }
                self.jump[p] = false;
                self.positions.0[p] = offset + 1;
                if self.selection.matches(&live.event) {
                    self.push(&live.item);
                }
            }
            Err(broadcast::error::RecvError::Lagged(skipped)) => {
                if self.fresh {
                    // Older than what the log gave: read on from the log instead.
                    self.live = false;
                } else {
                    self.jump.iter_mut().for_each(|j| *j = true);
                    self.pending.push_back(
                        SseEvent::default()
                            .event("lagged")
                            .data(format!("{{\"skipped\":{skipped}}}")),
                    );
                }
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        }
        Some(())
    }

    fn push(&mut self, item: &str) {
        self.pending.push_back(
            SseEvent::default()
                .id(self.positions.to_string())
                .data(item),
        );
    }
}
