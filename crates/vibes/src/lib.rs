//! The vibes host as a library: configuration ([`config::Config`]), the open backend
//! ([`storage::Storage`]), the producer every command appends through, and one module
//! per command. The `vibes` binary is [`app::run`] over a parsed [`cli::Cli`]; tests and
//! embedding programs call the same functions without spawning a process.
//!
//! This crate is the one place that knows every backend and every compiled-in plugin;
//! nothing in the workspace depends on it.

pub mod app;
pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod config;
pub mod failures;
pub mod fold;
pub mod http;
pub mod mcp;
pub mod members;
pub mod output;
pub mod plugins;
pub mod producer;
pub mod run;
pub mod search;
pub mod storage;
pub mod transcripts;
pub mod usage;
