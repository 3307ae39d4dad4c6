//! `vibes iggy start|stop|status`: the managed iggy-server of this data directory.
//!
//! `start` runs the server under vibes-supervisor in the foreground until Ctrl-C or
//! SIGTERM, and records its own pid in `<iggy data dir>/vibes-iggy.pid` so that `stop`
//! can ask it to stop the server gracefully (stopping the server directly would make
//! the supervisor start it again). Other commands find the running server through the
//! data directory (`IggyManager::connect_running`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rustix::process::{Pid, Signal};
use tokio::signal::unix::{SignalKind, signal};
use vibes_iggy::{IggyConfig, IggyLog, IggyManager, Mode};
use vibes_supervisor::State;

use crate::cli::IggyCommand;
use crate::config::Config;
use crate::output::{DataOut, Outcome};

pub fn run(config: &Config, command: &IggyCommand) -> Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        match command {
            IggyCommand::Start => start(&config.iggy).await,
            IggyCommand::Stop => stop(&config.iggy).await,
            IggyCommand::Status => status(&config.iggy).await,
        }
    })
}

/// Where the process managing the server records its pid (`vibes iggy start`, or a
/// `vibes serve` that started the server).
pub(crate) fn manager_pid_file(config: &IggyConfig) -> Result<PathBuf> {
    Ok(config
        .data_dir()
        .context("the iggy data directory")?
        .join("vibes-iggy.pid"))
}

/// Whether process `pid` exists and has not exited (a zombie waiting for its parent
/// has exited).
fn alive(pid: u32) -> bool {
    let exists = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .is_some_and(|pid| rustix::process::test_kill_process(pid).is_ok());
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // `pid (comm) state ...`; comm may hold spaces and parentheses.
            let after = stat.rsplit_once(')')?.1;
            after.split_whitespace().next().map(|state| state == "Z")
        })
        .unwrap_or(false);
    exists && !zombie
}

async fn start(config: &IggyConfig) -> Result<Outcome> {
    if config.mode == Mode::External {
        bail!(
            "iggy.mode is external: vibes does not run that server (set iggy.mode = \"managed\")"
        );
    }
    let manager = IggyManager::start(config)
        .await
        .context("starting the managed iggy-server")?;
    let pid_file = manager_pid_file(config)?;
    std::fs::write(&pid_file, format!("{}\n", std::process::id()))
        .with_context(|| format!("writing {}", pid_file.display()))?;
    eprintln!(
        "iggy-server running: pid {}, tcp {}, http {}, data in {}",
        manager
            .pid()
            .map_or_else(|| "?".to_owned(), |p| p.to_string()),
        manager.tcp_address(),
        manager.http_address(),
        manager.data_dir().display()
    );
    eprintln!("stop it with Ctrl-C or `vibes iggy stop`");
    let mut terminate = signal(SignalKind::terminate()).context("handling SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("handling SIGINT")?;
    let mut states = manager.subscribe();
    let mut running = manager.pid();
    let failure = loop {
        tokio::select! {
            _ = terminate.recv() => break None,
            _ = interrupt.recv() => break None,
            changed = states.changed() => {
                if changed.is_err() {
                    break Some("its supervisor ended".to_owned());
                }
                let state = states.borrow().clone();
                match state {
                    State::Failed { error } => break Some(error.to_string()),
                    State::Backoff { attempt, delay } => eprintln!(
                        "iggy-server stopped unexpectedly; restart {attempt} in {delay:?}"
                    ),
                    State::Running { pid } if running != Some(pid) => {
                        running = Some(pid);
                        eprintln!("iggy-server running again: pid {pid}");
                    }
                    _ => {}
                }
            }
        }
    };
    let _ = std::fs::remove_file(&pid_file);
    let stopped = manager.stop().await;
    if let Some(why) = failure {
        bail!("the managed iggy-server failed: {why}");
    }
    let outcome = stopped.context("stopping the managed iggy-server")?;
    eprintln!("iggy-server stopped ({outcome:?})");
    Ok(Outcome::Clean)
}

async fn stop(config: &IggyConfig) -> Result<Outcome> {
    if config.mode == Mode::External {
        bail!("iggy.mode is external: vibes does not run that server");
    }
    let pid_file = manager_pid_file(config)?;
    let manager_pid = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .filter(|pid| alive(*pid));
    let Some(manager_pid) = manager_pid else {
        let status = IggyManager::status(config).await?;
        if let Some(pid) = status.pid {
            bail!(
                "iggy-server pid {pid} runs from {} but no `vibes iggy start` manages it; stop it with `kill -TERM {pid}`",
                status.data_dir.display()
            );
        }
        eprintln!(
            "no managed iggy-server runs from {}",
            status.data_dir.display()
        );
        return Ok(Outcome::Clean);
    };
    let pid = i32::try_from(manager_pid)
        .ok()
        .and_then(Pid::from_raw)
        .context("a valid pid")?;
    rustix::process::kill_process(pid, Signal::TERM)
        .with_context(|| format!("signalling `vibes iggy start` (pid {manager_pid})"))?;
    let deadline = tokio::time::Instant::now() + config.stop_grace + Duration::from_secs(10);
    while alive(manager_pid) {
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "`vibes iggy start` (pid {manager_pid}) did not stop within {:?}",
                config.stop_grace + Duration::from_secs(10)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("iggy-server stopped");
    Ok(Outcome::Clean)
}

/// Connects to `connection`, pings once and disconnects: whether the server answered.
/// Errors: the connection could not be made.
pub async fn answers(connection: vibes_iggy::Connection) -> Result<bool, vibes_log::LogError> {
    let log = IggyLog::connect(connection, vibes_iggy::IggyLogOptions::default()).await?;
    let answered = log.ping().await;
    log.shutdown().await;
    Ok(answered)
}

async fn status(config: &IggyConfig) -> Result<Outcome> {
    let mut out = DataOut::new(false);
    let healthy = match config.mode {
        Mode::Managed => {
            let status = IggyManager::status(config).await?;
            let _ = out.line(&format!(
                "mode      managed, data in {}",
                status.data_dir.display()
            ))?;
            match (status.pid, status.addresses) {
                (Some(pid), Some(addresses)) => {
                    let _ = out.line(&format!("server    running, pid {pid}"))?;
                    let _ = out.line(&format!("tcp       {}", addresses.tcp))?;
                    let _ = out.line(&format!("http      {}", addresses.http))?;
                    let _ = out.line(&format!(
                        "ping      {}",
                        if status.ping { "ok" } else { "no answer" }
                    ))?;
                    status.ping
                }
                (Some(pid), None) => {
                    let _ =
                        out.line(&format!("server    starting, pid {pid} (no addresses yet)"))?;
                    false
                }
                (None, _) => {
                    let _ = out.line("server    not running (start it with `vibes iggy start`)")?;
                    false
                }
            }
        }
        Mode::External => {
            let connection = config.external_connection()?;
            let _ = out.line(&format!(
                "mode      external, server {}",
                connection.tcp_address
            ))?;
            let answered = match answers(connection).await {
                Ok(answered) => answered,
                Err(e) => {
                    let _ = out.line(&format!("connect   failed: {e}"))?;
                    false
                }
            };
            let _ = out.line(&format!(
                "ping      {}",
                if answered { "ok" } else { "no answer" }
            ))?;
            answered
        }
    };
    let _ = out.flush()?;
    Ok(Outcome::partial_if(!healthy))
}
