//! `GET /api/events` (a page of stored events, with the filters of `vibes tail`) and
//! `POST /api/events` (appends, with the validation of `vibes emit`).

use std::collections::VecDeque;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use vibes_events::Event;
use vibes_events::display::DisplayOptions;
use vibes_log::backend::StoredRecord;
use vibes_log::{LogError, RecordAddress};

use super::AppState;
use super::cursor::Cursor;
use super::error::{ApiError, ApiResult};
use super::params::{self, FILTER_PARAMS, Filters, Params};
use crate::commands::emit;
use crate::commands::tail::{self, From};
use crate::producer::Ack;

/// Events a page holds when `limit` is not given, and at most.
const DEFAULT_LIMIT: u64 = 100;
const MAX_LIMIT: u64 = 1000;
/// Records one page request reads at most: a filter that matches little answers a
/// short page with `more` instead of scanning the whole log in one request.
const SCAN_MAX: u64 = 100_000;
/// Records read per partition per backend call.
const CHUNK: usize = 512;

/// One event as the API hands it out: where it is stored, its one-line display (the
/// `vibes tail` line, with ANSI colour codes the page turns into styles) and the
/// canonical event JSON.
pub(super) fn item_json(address: RecordAddress, event: &Event) -> Result<String, ApiError> {
    let line = event.line(DisplayOptions::colored()).to_string();
    let canonical = event
        .to_json()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let line = serde_json::to_string(&line)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(format!(
        "{{\"partition\":{},\"offset\":{},\"line\":{line},\"event\":{canonical}}}",
        address.partition, address.offset
    ))
}

/// Where a reader with `filters` starts: its `cursor`, else its `from` (else
/// `default`), resolved by the rule of `tail --from`.
pub(super) async fn start(state: &AppState, filters: &Filters, default: From) -> ApiResult<Cursor> {
    let partitions = state.log.partitions();
    if let Some(text) = &filters.cursor {
        return Cursor::parse(text, partitions, "cursor");
    }
    let from = filters.from.unwrap_or(default);
    let starts = tail::start_offsets(&state.log, from, "from")
        .await
        .map_err(params::start_error)?;
    Ok(Cursor(
        (0..partitions)
            .map(|p| starts.get(&p).copied().unwrap_or(0))
            .collect(),
    ))
}

/// `GET /api/events`: up to `limit` matching events from the start (see [`start`];
/// default: the beginning), in time order across partitions, with `next` to ask for
/// the page after and `more` when the log went on past it.
pub(super) async fn list(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> ApiResult<Response> {
    let params = Params::from_query(query)?;
    let mut known = FILTER_PARAMS.to_vec();
    known.push("limit");
    params.only(&known)?;
    let filters = params::filters(&params)?;
    let limit = params.number("limit", MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT);
    let mut cursor = start(&state, &filters, From::Beginning).await?;
    let partitions = state.log.partitions();
    let topic = state.log.topic().clone();
    let mut heads: Vec<VecDeque<(RecordAddress, Option<Event>)>> =
        (0..partitions).map(|_| VecDeque::new()).collect();
    let mut exhausted = vec![false; partitions as usize];
    let mut items = Vec::new();
    let mut scanned = 0u64;
    let mut undecodable = 0u64;
    while (items.len() as u64) < limit && scanned < SCAN_MAX {
        // Refill the partitions whose buffer ran dry.
        for p in 0..partitions as usize {
            if heads[p].is_empty() && !exhausted[p] {
                let records = read(&state, &topic, p as u32, cursor.0[p]).await?;
                if records.is_empty() {
                    exhausted[p] = true;
                }
                for record in records {
                    let event = Event::from_json_slice(&record.payload).ok();
                    heads[p].push_back((record.address, event));
                }
            }
        }
        // The earliest head next; records that do not decode go first (they have no
        // time) and are counted.
        let next = (0..partitions as usize)
            .filter_map(|p| {
                heads[p]
                    .front()
                    .map(|(_, e)| (e.as_ref().map(|e| e.timestamp), p))
            })
            .min();
        let Some((_, p)) = next else {
            break;
        };
        let Some((address, event)) = heads[p].pop_front() else {
            break;
        };
        scanned += 1;
        cursor.0[p] = address.offset + 1;
        match event {
            Some(event) if filters.selection.matches(&event) => {
                items.push(item_json(address, &event)?);
            }
            Some(_) => {}
            None => {
                undecodable += 1;
                tracing::warn!(%topic, %address, "skipped a record that does not decode");
            }
        }
    }
    let mut more = false;
    for p in 0..partitions {
        let marks = state
            .log
            .watermarks(p)
            .await
            .map_err(|e| ApiError::log(e.into()))?;
        more |= cursor.0[p as usize] < marks.high;
    }
    // The items are JSON already: joined, not parsed and encoded again.
    Ok(json_response(format!(
        "{{\"events\":[{}],\"next\":\"{cursor}\",\"more\":{more},\"scanned\":{scanned},\"undecodable\":{undecodable}}}",
        items.join(",")
    )))
}

/// A JSON body built as text.
pub(super) fn json_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn read(
    state: &AppState,
    topic: &vibes_log::TopicName,
    partition: u32,
    from: u64,
) -> ApiResult<Vec<StoredRecord>> {
    state
        .log
        .backend()
        .read(topic, partition, from, CHUNK)
        .await
        .map_err(|e: LogError| {
            ApiError::log(
                anyhow::Error::new(e).context(format!("reading partition {partition} of {topic}")),
            )
        })
}

/// `POST /api/events`: stores the events of the body, one JSON object per line (so a
/// single object is a body too), each checked by the rule of `vibes emit`. All or
/// nothing: one rejected line and nothing is stored, the answer listing every
/// rejected line with the reason. `durability=always|interval|never` chooses when an
/// event counts as stored (default: `log.durability`).
pub(super) async fn append(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let params = Params::from_query(query)?;
    params.only(&["durability"])?;
    let options = match params.one("durability")? {
        Some(level) => vibes_log::AppendOptions::durability(
            state
                .config
                .parse_durability_flag(level)
                .map_err(|e| ApiError::bad_request(format!("invalid durability: {e}")))?,
        ),
        None => vibes_log::AppendOptions::durability(state.config.log_durability()),
    };
    json_body(&headers)?;
    let mut events = Vec::new();
    let mut rejected = Vec::new();
    for (index, line) in body.split(|b| *b == b'\n').enumerate() {
        match emit::parse_line(line) {
            Ok(Some(event)) => events.push(event),
            Ok(None) => {}
            Err(e) => rejected.push(json!({ "line": index + 1, "error": e.to_string() })),
        }
    }
    if !rejected.is_empty() {
        return Err(RejectedBody(rejected).into());
    }
    if events.is_empty() {
        return Err(ApiError::bad_request(
            "the body holds no event: send one JSON event per line",
        ));
    }
    let receipts = state
        .log
        .append_batch_receipts(&events, options)
        .await
        .map_err(|e| ApiError::log(anyhow::Error::new(e).context("storing events")))?;
    state.hub.wake();
    let topic = state.log.topic().to_string();
    let mut acks = Vec::with_capacity(receipts.len());
    for receipt in receipts {
        acks.push(match Ack::try_from(receipt).map_err(ApiError::log)? {
            Ack::Stored(a) => {
                json!({ "topic": topic, "partition": a.partition, "offset": a.offset })
            }
            Ack::Queued { partition } => {
                json!({ "topic": topic, "partition": partition, "queued": true })
            }
        });
    }
    Ok(Json(json!({ "stored": acks.len(), "acks": acks })))
}

/// Lines of a body that `vibes emit` would reject: a 400 listing each.
struct RejectedBody(Vec<Value>);

impl std::convert::From<RejectedBody> for ApiError {
    fn from(RejectedBody(lines): RejectedBody) -> Self {
        let first = lines
            .first()
            .map(|l| format!("line {}: {}", l["line"], l["error"].as_str().unwrap_or("")))
            .unwrap_or_default();
        let mut error = ApiError::bad_request(format!(
            "{} line{} rejected, nothing stored (first: {first})",
            lines.len(),
            if lines.len() == 1 { "" } else { "s" }
        ));
        error.details = Some(json!({ "rejected": lines }));
        error
    }
}

/// A body must say it is JSON (`application/json` or `application/x-ndjson`): a type
/// no HTML form can send, so a browser asks before sending it from another origin, and
/// this server answers no such question.
fn json_body(headers: &HeaderMap) -> ApiResult<()> {
    let kind = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = kind
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" || essence == "application/x-ndjson" {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "content type {kind:?}: send application/json or application/x-ndjson (one event per line)"
            ),
        ))
    }
}
