//! The read-only views: sessions (from the running sessions plugin), topics, plugins
//! and their queries, and health.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use vibes_plugin::{PluginHandle, PluginState, QueryArgs};
use vibes_plugin_sessions::Run;

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::events::{item_json, json_response};
use super::params::Params;
use crate::commands::session::{self, Page};
use axum::response::Response;

/// Sessions per page when `limit` is not given, and at most.
const SESSIONS_PAGE: u64 = 100;
const SESSIONS_MAX: u64 = 1000;
/// Timeline events per page when `limit` is not given, and at most.
const TIMELINE_PAGE: u64 = 500;
const TIMELINE_MAX: u64 = 5000;

fn plugin<'a>(state: &'a AppState, name: &str) -> ApiResult<&'a PluginHandle> {
    state
        .plugins
        .iter()
        .find(|p| p.manifest().name == name)
        .ok_or_else(|| {
            if crate::plugins::factory(name).is_ok() {
                ApiError::unavailable(format!(
                    "this serve does not run the {name} plugin (see --plugins)"
                ))
            } else {
                ApiError::not_found(format!(
                    "no plugin {name:?}; this vibes has: {}",
                    crate::plugins::known()
                ))
            }
        })
}

/// `GET /api/sessions`: the `vibes stats` view, newest first, `limit` at `offset`,
/// with the totals over all.
pub(super) async fn sessions(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let params = Params::from_query(query)?;
    params.only(&["limit", "offset"])?;
    let limit = params
        .number("limit", SESSIONS_MAX)?
        .unwrap_or(SESSIONS_PAGE);
    let offset = params.number("offset", u64::MAX)?.unwrap_or(0);
    let handle = plugin(&state, vibes_plugin_sessions::NAME)?;
    let mut report = handle.query("stats", &QueryArgs::new())?;
    let mut all = match report.get_mut("sessions").map(Value::take) {
        Some(Value::Array(all)) => all,
        _ => Vec::new(),
    };
    let count = all.len();
    all.reverse();
    let page: Vec<Value> = all
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(limit as usize)
        .collect();
    Ok(Json(json!({
        "sessions": page,
        "count": count,
        "offset": offset,
        "limit": limit,
        "totals": report.get("totals").cloned().unwrap_or(Value::Null),
    })))
}

/// `GET /api/sessions/{id}`: one session's statistics and its timeline (its events in
/// stored order, read where the sessions plugin's index says they are), `limit`
/// events after the first `skip`.
pub(super) async fn session(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> ApiResult<Response> {
    let params = Params::from_query(query)?;
    params.only(&["skip", "limit"])?;
    let skip = params.number("skip", u64::MAX)?.unwrap_or(0);
    let limit = params
        .number("limit", TIMELINE_MAX)?
        .unwrap_or(TIMELINE_PAGE);
    let handle = plugin(&state, vibes_plugin_sessions::NAME)?;
    let stats = handle.query("session", &QueryArgs::new().with("id", id.clone()))?;
    let index = handle.query("addresses", &QueryArgs::new().with("id", id.clone()))?;
    let records = index.get("records").and_then(Value::as_u64).unwrap_or(0);
    let runs: Vec<Run> = serde_json::from_value(index.get("runs").cloned().unwrap_or_default())
        .map_err(|e| ApiError::unavailable(format!("the sessions plugin's index of {id}: {e}")))?;
    let mut timeline = Vec::new();
    let mut failed = None;
    let done = session::read_runs(
        &**state.log.backend(),
        state.log.topic(),
        &id,
        &runs,
        Page {
            skip,
            limit: Some(limit + 1),
        },
        &mut |address, event| {
            if timeline.len() as u64 == limit {
                return Ok(false); // one more exists
            }
            match item_json(address, event) {
                Ok(item) => timeline.push(item),
                Err(e) => failed = Some(e),
            }
            Ok(failed.is_none())
        },
    )
    .await
    .map_err(ApiError::log)?;
    if let Some(e) = failed {
        return Err(e);
    }
    let stats = serde_json::to_string(&stats)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    // The timeline's items are JSON already: joined, not parsed and encoded again.
    Ok(json_response(format!(
        "{{\"session\":{stats},\"records\":{records},\"skip\":{skip},\"timeline\":[{}],\"more\":{},\"undecodable\":{}}}",
        timeline.join(","),
        done.stopped && done.printed >= limit,
        done.undecodable
    )))
}

/// `GET /api/topics`: every topic with its partitions' offsets and record counts.
pub(super) async fn topics(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let backend = state.log.backend();
    let names = backend
        .list_topics()
        .await
        .map_err(|e| ApiError::log(anyhow::Error::new(e).context("listing topics")))?;
    let mut topics = Vec::new();
    for name in names {
        let info = backend.topic_info(&name).await.map_err(|e| {
            ApiError::log(anyhow::Error::new(e).context(format!("reading topic {name}")))
        })?;
        let partitions: Vec<Value> = info
            .partitions
            .iter()
            .enumerate()
            .map(|(p, m)| json!({ "partition": p, "low": m.low, "high": m.high }))
            .collect();
        let records: u64 = info.partitions.iter().map(|m| m.len()).sum();
        topics.push(
            json!({ "topic": name.to_string(), "records": records, "partitions": partitions }),
        );
    }
    Ok(Json(json!({ "topics": topics })))
}

/// `GET /api/plugins`: each running plugin's status, what it is and the queries it
/// answers.
pub(super) async fn plugins(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let plugins: Vec<Value> = state
        .plugins
        .iter()
        .map(|p| {
            let manifest = p.manifest();
            let queries: Vec<Value> = manifest
                .queries
                .iter()
                .map(|q| json!({ "name": q.name, "about": q.about, "params": q.params }))
                .collect();
            let mut status = serde_json::to_value(p.status()).unwrap_or(Value::Null);
            if let Some(fields) = status.as_object_mut() {
                fields.insert("about".into(), json!(manifest.about));
                fields.insert("queries".into(), Value::Array(queries));
                fields.insert("total_lag".into(), json!(p.status().total_lag()));
            }
            status
        })
        .collect();
    Ok(Json(json!({ "plugins": plugins })))
}

/// `GET /api/plugins/{name}/{query}?param=value`: a plugin's query, answered from the
/// running plugin's state.
pub(super) async fn plugin_query(
    State(state): State<AppState>,
    Path((name, query_name)): Path<(String, String)>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let params = Params::from_query(query)?;
    let handle = plugin(&state, &name)?;
    let manifest = handle.manifest();
    let Some(spec) = manifest.find_query(&query_name) else {
        return Err(ApiError::not_found(format!(
            "plugin {name} has no query {query_name:?}; it answers: {}",
            manifest
                .queries
                .iter()
                .map(|q| q.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let args = QueryArgs::parse(spec, &params.words_except(&[]))?;
    Ok(Json(handle.query(&query_name, &args)?))
}

/// `GET /api/health`: 200 when the log answers and every plugin is live, else 503;
/// the body says which part is not.
pub(super) async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let backend = match state.log.watermarks(0).await {
        Ok(_) => json!({ "kind": state.log.backend().kind(), "reachable": true }),
        Err(e) => {
            json!({ "kind": state.log.backend().kind(), "reachable": false, "error": e.to_string() })
        }
    };
    let reachable = backend["reachable"] == true;
    let plugins: Vec<Value> = state
        .plugins
        .iter()
        .map(|p| {
            let status = p.status();
            json!({
                "name": status.name,
                "state": status.state,
                "lag": status.total_lag(),
                "last_error": status.last_error,
            })
        })
        .collect();
    let live = state
        .plugins
        .iter()
        .all(|p| p.status().state == PluginState::Live);
    let ok = reachable && live;
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(json!({
            "ok": ok,
            "backend": backend,
            "topic": state.log.topic().to_string(),
            "plugins": plugins,
        })),
    )
}
