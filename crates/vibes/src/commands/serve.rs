//! `vibes serve`: runs the compiled-in plugins until SIGINT or SIGTERM.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use vibes_plugin::{RunningPlugin, Shutdown};

use crate::cli::ServeArgs;
use crate::config::BackendKind;
use crate::members::Member;
use crate::output::Outcome;
use crate::plugins;
use crate::storage::Storage;

/// How often the published status is rewritten.
const PUBLISH_EVERY: Duration = Duration::from_secs(1);

pub fn run(storage: &Storage, args: &ServeArgs) -> Result<Outcome> {
    let names: Vec<String> = match &args.plugins {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect(),
        None => plugins::registry()
            .iter()
            .map(|(n, _)| (*n).to_owned())
            .collect(),
    };
    if names.is_empty() {
        bail!(
            "--plugins names no plugin; this vibes has: {}",
            plugins::known()
        );
    }
    let factories = names
        .iter()
        .map(|n| plugins::factory(n))
        .collect::<Result<Vec<_>>>()?;
    let _lock = match storage.config.backend {
        BackendKind::File => Some(lock_serve(&storage.config.data_dir)?),
        // On Iggy a second serve joins each plugin's group as another member.
        BackendKind::Iggy | BackendKind::Memory => None,
    };
    let http = crate::http::parse_listen(&args.http)?
        .map(|addr| crate::http::bind(addr, &storage.config.data_dir))
        .transpose()?;
    let events = match &http {
        Some(_) => Some(storage.events()?),
        None => None,
    };
    let runtime = plugins::runtime(storage);
    let member = Member::register(&storage.config.data_dir)?;
    storage.block_on(async {
        let shutdown = Shutdown::new();
        let mut running = Vec::new();
        for factory in factories {
            running.push(runtime.spawn(factory, &shutdown)?);
        }
        let (stop_http, http_stopped) = tokio::sync::watch::channel(false);
        let server = match (http, events) {
            (Some(bound), Some(log)) => {
                let addr = bound.addr;
                let handles = running.iter().map(RunningPlugin::handle).collect();
                let task = crate::http::start(
                    bound,
                    log,
                    storage.config.clone(),
                    handles,
                    http_stopped,
                )
                .await?;
                eprintln!("http: the web page and API at http://{addr}/");
                Some(task)
            }
            _ => None,
        };
        let mut interrupt =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                .context("listening for SIGINT")?;
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("listening for SIGTERM")?;
        eprintln!(
            "serving {} on {} (Ctrl-C to stop)",
            names.join(", "),
            storage.describe()
        );
        let mut publish = tokio::time::interval(PUBLISH_EVERY);
        loop {
            tokio::select! {
                _ = interrupt.recv() => break,
                _ = terminate.recv() => break,
                _ = publish.tick() => member.publish(running.iter().map(RunningPlugin::status).collect()),
            }
        }
        tracing::info!("stopping: finishing the batches in hand");
        stop_http.send_replace(true);
        if let Some(server) = server {
            // Open streams end on the signal; a client that keeps its connection
            // open is not waited for long.
            let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
        }
        shutdown.trigger();
        for plugin in running {
            plugin.join().await;
        }
        anyhow::Ok(())
    })?;
    eprintln!("stopped");
    Ok(Outcome::Clean)
}

/// Takes `<data_dir>/serve.lock`, so a second `serve` on the same data dir is refused.
fn lock_serve(data_dir: &Path) -> Result<File> {
    match try_lock_serve(data_dir)? {
        Some(file) => Ok(file),
        None => {
            let pid = std::fs::read_to_string(data_dir.join("serve.lock")).unwrap_or_default();
            bail!(
                "another `vibes serve` (pid {}) already serves {}; stop it first, or give this one another --data-dir",
                pid.trim(),
                data_dir.display()
            );
        }
    }
}

/// Takes `<data_dir>/serve.lock` if nobody holds it (`None` if a `serve`, or a command
/// running the plugins' groups in-process, does), writing this process's id into it.
/// Held until the file is dropped.
pub fn try_lock_serve(data_dir: &Path) -> Result<Option<File>> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let path = data_dir.join("serve.lock");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", path.display()));
        }
    }
    file.set_len(0)
        .and_then(|()| write!(file, "{}", std::process::id()))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(Some(file))
}
