//! The HTTP API and web page of `vibes serve` (axum on the serve's tokio runtime): the
//! events (paged and live), sessions, topics, plugins and health, read from the log
//! and from the running plugins' state. See docs/API.md.

mod access;
mod assets;
mod cursor;
mod error;
mod events;
mod params;
mod stream;
mod views;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use tokio::sync::watch;
use vibes_events::Event;
use vibes_log::EventLog;
use vibes_plugin::PluginHandle;

pub use access::TOKEN_FILE;

use crate::config::Config;

/// Where `vibes serve` listens unless told otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7700";
/// The largest request body taken (a `POST /api/events`); larger ones get 413.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// `--http`: an address, or `off`.
pub fn parse_listen(text: &str) -> Result<Option<SocketAddr>> {
    if text == "off" {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        anyhow::anyhow!(
            "invalid --http {text:?}: expected an address such as {DEFAULT_ADDR} or [::1]:7700, or off"
        )
    })
}

/// A socket bound for the API, and what callers must show.
#[derive(Debug)]
pub struct Bound {
    listener: std::net::TcpListener,
    access: access::Access,
    /// Where it listens (the port chosen when 0 was asked for).
    pub addr: SocketAddr,
}

/// Binds `addr`. Any address but a loopback one needs the token of `data_dir` (made
/// and printed once on stderr if there is none); if it cannot be had, nothing is bound.
pub fn bind(addr: SocketAddr, data_dir: &std::path::Path) -> Result<Bound> {
    let token = if addr.ip().is_loopback() {
        None
    } else {
        let (token, created, path) = access::token(data_dir).with_context(|| {
            format!("--http {addr} is not a loopback address, so the API needs a token, and")
        })?;
        if created {
            eprintln!(
                "http: {addr} is reachable from other machines: every API call needs this token (kept in {}):\n{token}",
                path.display()
            );
        } else {
            eprintln!(
                "http: {addr} is reachable from other machines: every API call needs the token in {}",
                path.display()
            );
        }
        Some(token)
    };
    let listener = std::net::TcpListener::bind(addr).with_context(|| {
        format!("cannot listen on {addr} (--http ADDR to choose another, --http off for none)")
    })?;
    listener
        .set_nonblocking(true)
        .context("setting the listener non-blocking")?;
    let addr = listener.local_addr().context("reading the bound address")?;
    Ok(Bound {
        listener,
        access: access::Access { token },
        addr,
    })
}

/// What the handlers share.
#[derive(Clone, Debug)]
pub(crate) struct AppState(Arc<Inner>);

#[derive(Debug)]
pub(crate) struct Inner {
    log: EventLog<Event>,
    config: Config,
    plugins: Vec<PluginHandle>,
    hub: stream::Hub,
    access: access::Access,
    shutdown: watch::Receiver<bool>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// Serves the API and page on `bound` until `shutdown` turns true (call on the serve's
/// runtime); returns the server's task.
pub async fn start(
    bound: Bound,
    log: EventLog<Event>,
    config: Config,
    plugins: Vec<PluginHandle>,
    shutdown: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>> {
    let hub = stream::Hub::start(log.clone(), shutdown.clone())
        .await
        .context("following the event topic for the live stream")?;
    let state = AppState(Arc::new(Inner {
        log,
        config,
        plugins,
        hub,
        access: bound.access,
        shutdown: shutdown.clone(),
    }));
    let app = router(state);
    let listener = tokio::net::TcpListener::from_std(bound.listener)
        .context("handing the listener to the runtime")?;
    let mut stop = shutdown;
    Ok(tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        });
        if let Err(e) = server.await {
            tracing::error!("the HTTP server stopped: {e}");
        }
    }))
}

fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/events", get(events::list).post(events::append))
        .route("/stream", get(stream::stream))
        .route("/sessions", get(views::sessions))
        .route("/sessions/{id}", get(views::session))
        .route("/topics", get(views::topics))
        .route("/plugins", get(views::plugins))
        .route("/plugins/{name}/{query}", get(views::plugin_query))
        .route("/health", get(views::health))
        .fallback(|| async { error::ApiError::not_found("no such API endpoint; see docs/API.md") })
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::guard,
        ));
    Router::new()
        .nest("/api", api)
        .fallback(assets::asset)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}
