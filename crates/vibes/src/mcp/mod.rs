//! `vibes mcp`: the event history and the plugins' findings for AI agents, over the
//! Model Context Protocol (the official Rust SDK, `rmcp`), on stdio or streamable HTTP.
//!
//! One job per module: [`engine`] (the storage and the plugin states the tools read,
//! kept between requests while the log has not grown), [`tools`] (what each tool
//! answers), [`page`] (bounding a result: cut strings, pages and their next offset),
//! [`server`] (the MCP handler: tools, resources, instructions), [`http`] (the HTTP
//! transport and its token).

pub mod engine;
pub mod http;
pub mod page;
pub mod server;
pub mod tools;

pub use engine::Engine;
pub use server::{INSTRUCTIONS, VibesServer};
