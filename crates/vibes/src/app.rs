//! Runs a parsed command line: logging, config, then the command.

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command, ConfigCommand, GlobalArgs, IngestCommand};
use crate::commands;
use crate::config::{Config, ConfigError, FlagValues};
use crate::output::{self, EXIT_ERROR, Outcome};
use crate::storage::{ManagedServer, Storage};

/// Runs `cli` and returns the process's exit code: 0 when all went well, 1 when some
/// input was rejected (and reported) but the rest was stored, 2 on usage, config or
/// I/O errors.
pub fn run(cli: Cli) -> ExitCode {
    // `serve` shows each plugin's state changes (one line each, never per event).
    let serving = std::matches!(cli.command, Command::Serve(_));
    init_tracing(&cli.global, serving);
    match dispatch(cli) {
        Ok(outcome) => outcome.exit_code(),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<Outcome> {
    let Cli { global, command } = cli;
    let config = load_config(&global);
    match command {
        Command::Doctor(args) => commands::doctor::run(config, &args),
        Command::Config(ConfigCommand::Show) => commands::config::show(&config?),
        Command::Config(ConfigCommand::Path) => commands::config::path(&config?),
        Command::Iggy(command) => commands::iggy::run(&config?, &command),
        // Owns its storage: the server's threads hold it until the client goes.
        Command::Mcp(args) => commands::mcp::run(config?, &args),
        command => {
            // `serve` runs the managed iggy-server itself when none runs.
            let managed = match command {
                Command::Serve(_) => ManagedServer::StartIfNone,
                _ => ManagedServer::Connect,
            };
            let storage = Storage::open_with(config?, managed)?;
            let outcome = match command {
                Command::Ingest(IngestCommand::Claude(args)) => {
                    commands::ingest_claude::run(&storage, &args, &global)
                }
                Command::Ingest(IngestCommand::ClaudeProjects(args)) => {
                    commands::ingest_projects::run(&storage, &args, &global)
                }
                Command::Ingest(IngestCommand::Bd(args)) => {
                    commands::ingest_bd::run(&storage, &args)
                }
                Command::Emit(args) => commands::emit::run(&storage, &args),
                Command::Tail(args) => commands::tail::run(&storage, &args, &global),
                Command::Stats(args) => commands::stats::run(&storage, &args, &global),
                Command::Serve(args) => commands::serve::run(&storage, &args),
                Command::Plugins(args) => commands::plugin_list::run(&storage, &args),
                Command::Plugin(args) => commands::plugin_query::run(&storage, &args, &global),
                Command::Topics => commands::topics::run(&storage),
                Command::Usage(args) => commands::usage::run(&storage, &args, &global),
                Command::Groove(command) => commands::groove::run(&storage, &command, &global),
                Command::Run(args) => commands::run::run(&storage, &args, &global),
                Command::Coders(args) => commands::coders::run(&storage, &args, &global),
                Command::Doctor(_) | Command::Config(_) | Command::Iggy(_) | Command::Mcp(_) => {
                    unreachable!("handled above")
                }
            };
            storage.close();
            outcome
        }
    }
}

/// Loads the config with the global flags on top.
pub fn load_config(global: &GlobalArgs) -> Result<Config, ConfigError> {
    let mut flags = FlagValues::default();
    if let Some(dir) = &global.data_dir {
        flags.set("data_dir", "--data-dir", dir.display().to_string());
    }
    if let Some(backend) = &global.backend {
        flags.set("backend", "--backend", backend.clone());
    }
    Config::load(global.config.as_deref(), std::env::var_os, &flags)
}

fn init_tracing(global: &GlobalArgs, serving: bool) {
    let level = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) if serving => "warn,vibes_plugin=info",
        (false, 0) => "warn",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    // The Iggy SDK logs a reconnect attempt or a missing consumer offset as an ERROR;
    // vibes reports what matters of those itself (the outbox says when the server is
    // unreachable and when it is back), so the SDK speaks only from -vv on, or when
    // RUST_LOG names it.
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|s| !s.trim().is_empty());
    let sdk_named = from_env.as_deref().is_some_and(|s| s.contains("iggy"));
    let sdk = if global.verbose >= 2 || sdk_named {
        ""
    } else {
        ",iggy=off,iggy_common=off,iggy_binary_protocol=off"
    };
    let directives = format!("{}{sdk}", from_env.as_deref().unwrap_or(level));
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|e| {
        eprintln!("warning: RUST_LOG={directives:?} is not a log filter ({e}); using {level}");
        EnvFilter::new(format!("{level}{sdk}"))
    });
    let ansi = output::use_color(global.color, output::stderr_is_terminal());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(global.verbose > 0)
        .init();
}
