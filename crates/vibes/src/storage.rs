//! Opens the log backend the config names and the host's event topic on it.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::runtime::Runtime;
use vibes_events::Event;
use vibes_filelog::{FileLog, FileLogOptions, Outbox, OutboxOptions, Retention};
use vibes_iggy::{IggyLog, IggyLogOptions, IggyManager, ManagerError, Mode};
use vibes_log::backend::LogBackend;
use vibes_log::{AppendOptions, EventLog, InMemoryLog, JsonCodec, LogError, Missing, TopicConfig};

use crate::config::{BackendKind, Config};

/// The open backend, the runtime its async calls run on, and the config.
#[derive(Debug)]
pub struct Storage {
    pub config: Config,
    pub backend: Arc<dyn LogBackend>,
    /// The file log, when that is the backend (for bytes on disk and checks).
    pub file: Option<FileLog>,
    /// On Iggy, the outbox in front of it: `backend` is this outbox, so every write
    /// (plugins' included) survives an unreachable server.
    outbox: Option<Outbox>,
    /// The Iggy log behind the outbox, to close its connection.
    iggy: Option<IggyLog>,
    /// The managed iggy-server this process started (`serve` does, when none runs).
    manager: std::sync::Mutex<Option<IggyManager>>,
    runtime: Runtime,
}

/// Whether opening may start the managed iggy-server when none runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagedServer {
    /// Connect to the running one; none running is an error (one-off commands).
    Connect,
    /// Start one under this process when none runs, and stop it on [`Storage::close`]
    /// (`vibes serve`).
    StartIfNone,
}

impl Storage {
    /// Opens the backend named by `config` (creating the data directory for `file`).
    /// A managed iggy-server must already run.
    pub fn open(config: Config) -> Result<Storage> {
        Storage::open_with(config, ManagedServer::Connect)
    }

    /// Opens the backend named by `config`; `managed` says whether a managed
    /// iggy-server may be started here.
    pub fn open_with(config: Config, managed: ManagedServer) -> Result<Storage> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let (mut outbox, mut iggy, mut manager) = (None, None, None);
        let (backend, file): (Arc<dyn LogBackend>, Option<FileLog>) = match config.backend {
            BackendKind::Memory => (Arc::new(InMemoryLog::new()), None),
            BackendKind::Iggy => {
                let (log, started) = runtime.block_on(connect_iggy(&config, managed))?;
                manager = started;
                let dir = config.data_dir.join("outbox");
                let opened = runtime
                    .block_on(Outbox::open(
                        Arc::new(log.clone()),
                        &dir,
                        OutboxOptions::default(),
                    ))
                    .with_context(|| format!("opening the outbox in {}", dir.display()))?;
                iggy = Some(log);
                outbox = Some(opened.clone());
                (Arc::new(opened), None)
            }
            BackendKind::File => {
                let file = FileLog::open(&config.data_dir, file_options(&config)).with_context(
                    || {
                        format!(
                            "cannot open the event log in {} (set another with --data-dir or VIBES_DATA_DIR)",
                            config.data_dir.display()
                        )
                    },
                )?;
                (Arc::new(file.clone()), Some(file))
            }
        };
        tracing::debug!(backend = backend.kind(), data_dir = %config.data_dir.display(), "log opened");
        Ok(Storage {
            config,
            backend,
            file,
            outbox,
            iggy,
            manager: std::sync::Mutex::new(manager),
            runtime,
        })
    }

    /// The outbox in front of Iggy, if that is the backend (`backend` is the same
    /// outbox).
    pub fn outbox(&self) -> Option<&Outbox> {
        self.outbox.as_ref()
    }

    /// Stops the outbox's forwarder and closes the Iggy connection, if any. Records
    /// still in the outbox stay there for the next command.
    pub fn close(&self) {
        if let Some(outbox) = &self.outbox {
            self.block_on(outbox.shutdown());
        }
        if let Some(iggy) = &self.iggy {
            self.block_on(iggy.shutdown());
        }
        let manager = self.manager.lock().map(|mut m| m.take()).unwrap_or(None);
        if let Some(manager) = manager {
            if let Ok(pid_file) = crate::commands::iggy::manager_pid_file(&self.config.iggy) {
                let _ = std::fs::remove_file(pid_file);
            }
            match self.block_on(manager.stop()) {
                Ok(outcome) => tracing::info!(?outcome, "the managed iggy-server stopped"),
                Err(e) => tracing::warn!("stopping the managed iggy-server: {e}"),
            }
        }
    }

    /// Runs a future of the log to completion.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// The options of a command's appends: durability `flag` (a `--durability` value)
    /// if given, else `log.durability`. Every command appends with these, on every
    /// backend; the backends are opened with `log.durability` as their default too, so
    /// writes that pass no options (plugins') follow the same rule.
    ///
    /// Errors: `flag` is not a durability level.
    pub fn append_options(&self, flag: Option<&str>) -> Result<AppendOptions> {
        let durability = match flag {
            Some(level) => self.config.parse_durability_flag(level)?,
            None => self.config.log_durability(),
        };
        Ok(AppendOptions::durability(durability))
    }

    /// The event topic, created with the configured partition count if it is new.
    pub fn events(&self) -> Result<EventLog<Event>> {
        let config = &self.config;
        self.block_on(EventLog::open_with(
            self.backend.clone(),
            config.topic.as_str(),
            TopicConfig::partitions(config.partitions),
            JsonCodec,
        ))
        .map_err(|e| match e {
            LogError::PartitionCountMismatch { .. } => anyhow::Error::new(e).context(format!(
                "log.partitions is {} ({}), but the stored topic differs; set log.partitions to the stored count",
                config.partitions,
                config.origin("log.partitions")
            )),
            e => anyhow::Error::new(e).context(format!("opening topic {}", config.topic)),
        })
    }

    /// The event topic if it exists; `None` when nothing was ever stored.
    pub fn existing_events(&self) -> Result<Option<EventLog<Event>>> {
        match self.block_on(self.backend.topic_info(&self.config.topic)) {
            Ok(_) => self.events().map(Some),
            Err(LogError::NotFound {
                kind: Missing::Topic,
                ..
            }) => Ok(None),
            Err(e) => {
                Err(anyhow::Error::new(e).context(format!("reading topic {}", self.config.topic)))
            }
        }
    }

    /// Topic `name` (`stream/topic`, e.g. a plugin's `groove.openworld/gaps`) with the
    /// partitions it has, if it exists.
    pub fn existing_topic(&self, name: &str) -> Result<Option<EventLog<Event>>> {
        let topic =
            vibes_log::TopicName::new(name).with_context(|| format!("invalid topic {name:?}"))?;
        match self.block_on(self.backend.topic_info(&topic)) {
            Ok(info) => {
                let partitions = TopicConfig::partitions(info.partitions.len() as u32);
                let log = self
                    .block_on(EventLog::open_with(
                        self.backend.clone(),
                        name,
                        partitions,
                        JsonCodec,
                    ))
                    .with_context(|| format!("opening topic {name}"))?;
                Ok(Some(log))
            }
            Err(LogError::NotFound {
                kind: Missing::Topic,
                ..
            }) => Ok(None),
            Err(e) => Err(anyhow::Error::new(e).context(format!("reading topic {name}"))),
        }
    }

    /// Where the host keeps its own state beside the log (`<data_dir>/state`), for the
    /// file backend only.
    pub fn state_dir(&self) -> Option<PathBuf> {
        self.file
            .as_ref()
            .map(|_| self.config.data_dir.join("state"))
    }

    /// Deletes what retention allows, after appends.
    pub fn enforce_retention(&self) -> Result<()> {
        if let Some(file) = &self.file {
            let deleted = file
                .enforce_retention(&self.config.topic)
                .with_context(|| format!("applying retention to {}", self.config.topic))?;
            if deleted > 0 {
                tracing::info!(deleted, topic = %self.config.topic, "retention deleted segments");
            }
        }
        Ok(())
    }

    /// A description of where events are stored, for summaries.
    pub fn describe(&self) -> String {
        match self.config.backend {
            BackendKind::Memory => format!("{} (in memory, gone at exit)", self.config.topic),
            BackendKind::File => format!(
                "{} in {}",
                self.config.topic,
                self.config.data_dir.display()
            ),
            BackendKind::Iggy => format!(
                "{} on iggy-server {}",
                self.config.topic,
                self.iggy
                    .as_ref()
                    .map_or("?", |i| i.connection().tcp_address.as_str())
            ),
        }
    }
}

/// Connects to the configured iggy-server: the managed one this data dir's
/// `vibes iggy start` runs, or the external one.
async fn connect_iggy(
    config: &Config,
    managed: ManagedServer,
) -> Result<(IggyLog, Option<IggyManager>)> {
    let iggy = &config.iggy;
    let mut started = None;
    let connection = match iggy.mode {
        Mode::External => iggy
            .external_connection()
            .context("backend iggy (external)")?,
        Mode::Managed => match IggyManager::connect_running(iggy).await {
            Ok(connection) => connection,
            Err(ManagerError::NotRunning { .. }) if managed == ManagedServer::StartIfNone => {
                let manager = IggyManager::start(iggy)
                    .await
                    .context("starting the managed iggy-server")?;
                // `vibes iggy stop` and `status` find the server's manager here.
                let pid_file = crate::commands::iggy::manager_pid_file(iggy)?;
                std::fs::write(&pid_file, format!("{}\n", std::process::id()))
                    .with_context(|| format!("writing {}", pid_file.display()))?;
                eprintln!(
                    "started the managed iggy-server: pid {}, tcp {}, data in {}",
                    manager
                        .pid()
                        .map_or_else(|| "?".to_owned(), |p| p.to_string()),
                    manager.tcp_address(),
                    manager.data_dir().display()
                );
                let connection = manager.connection();
                started = Some(manager);
                connection
            }
            Err(e) => return Err(anyhow::Error::new(e).context("backend iggy (managed)")),
        },
    };
    let address = connection.tcp_address.clone();
    // Acknowledged as `log.durability` asks, like every backend.
    let options = IggyLogOptions::default().durability(config.log_durability());
    let log = IggyLog::connect(connection, options)
        .await
        .with_context(|| format!("connecting to iggy-server at {address}"))?;
    Ok((log, started))
}

fn file_options(config: &Config) -> FileLogOptions {
    let mut retention = Retention::keep_all();
    if let Some(age) = config.retention_max_age {
        retention = retention.max_age(age);
    }
    if let Some(bytes) = config.retention_max_bytes {
        retention = retention.max_bytes(bytes);
    }
    FileLogOptions::default()
        .durability(config.log_durability())
        .segment_bytes(config.segment_bytes)
        .retention(retention)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use vibes_log::Durability;

    use super::*;
    use crate::config::FlagValues;

    /// Storage on the memory backend with an empty config file and `env`.
    fn storage(env: &[(&'static str, &str)]) -> Storage {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("config.toml");
        std::fs::write(&file, "").expect("write config");
        let mut env: BTreeMap<&str, String> =
            env.iter().map(|(k, v)| (*k, v.to_string())).collect();
        env.insert("VIBES_BACKEND", "memory".into());
        env.insert("VIBES_DATA_DIR", dir.path().display().to_string());
        let config = Config::load(
            Some(&file),
            |var| env.get(var).map(Into::into),
            &FlagValues::default(),
        )
        .expect("config");
        Storage::open(config).expect("storage")
    }

    #[test]
    fn every_command_appends_with_log_durability_unless_its_flag_says_otherwise() {
        let never = storage(&[("VIBES_LOG_DURABILITY", "never")]);
        assert_eq!(
            never.append_options(None).unwrap(),
            AppendOptions::durability(Durability::Never)
        );
        assert_eq!(
            never.append_options(Some("always")).unwrap(),
            AppendOptions::durability(Durability::Always)
        );
        let interval = storage(&[
            ("VIBES_LOG_DURABILITY", "interval"),
            ("VIBES_LOG_SYNC_INTERVAL", "250ms"),
        ]);
        assert_eq!(
            interval.append_options(None).unwrap(),
            AppendOptions::durability(Durability::Interval(Duration::from_millis(250)))
        );
        let err = never
            .append_options(Some("sometimes"))
            .expect_err("not a level")
            .to_string();
        assert!(err.contains("--durability"), "{err}");
    }
}
