//! `vibes mcp [--http ADDR] [--new-token]`: serves the event history and the plugins'
//! findings to MCP clients (Claude Code starts it as a subprocess on stdio) until the
//! client closes stdin, or, with `--http`, until SIGINT or SIGTERM.

use anyhow::{Context, Result};
use rmcp::ServiceExt;
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::McpArgs;
use crate::config::Config;
use crate::mcp::{Engine, VibesServer, http};
use crate::output::Outcome;
use crate::storage::Storage;

pub fn run(config: Config, args: &McpArgs) -> Result<Outcome> {
    let token_file = http::token_path(&config.data_dir);
    if args.new_token {
        http::new_token(&token_file)?;
        eprintln!(
            "wrote a new token to {} (mode 0600); HTTP clients send it as `Authorization: Bearer <token>`",
            token_file.display()
        );
    }
    // Checked before anything is opened: a refused address leaves nothing behind.
    let token = match &args.http {
        Some(addr) => {
            let token = http::read_token(&token_file)?;
            http::check_bind(*addr, token.as_deref(), &token_file)?;
            token
        }
        None => None,
    };
    let storage = Storage::open(config)?;
    let where_ = storage.describe();
    let server = VibesServer::new(Engine::new(storage));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let served = runtime.block_on(async {
        match args.http {
            None => {
                eprintln!("vibes mcp: serving {where_} on stdio");
                let running = server
                    .clone()
                    .serve(rmcp::transport::stdio())
                    .await
                    .context("starting the MCP session on stdio")?;
                running.waiting().await.context("serving MCP on stdio")?;
                Ok(())
            }
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding {addr}"))?;
                let local = listener.local_addr().context("the bound address")?;
                eprintln!(
                    "vibes mcp: serving {where_} at http://{local}/mcp{}",
                    if token.is_some() {
                        " (bearer token required)"
                    } else {
                        ""
                    }
                );
                http::serve(listener, server.clone(), token, stop_signal()).await
            }
        }
    });
    drop(runtime);
    // Every task holding the engine is gone with the runtime.
    let engine = server.engine();
    if let Ok(mutex) = std::sync::Arc::try_unwrap(engine)
        && let Ok(engine) = mutex.into_inner()
    {
        engine.close();
    }
    served.map(|()| Outcome::Clean)
}

/// Completes on SIGINT or SIGTERM.
async fn stop_signal() {
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}
