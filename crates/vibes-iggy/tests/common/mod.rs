//! A real iggy-server for tests: started from `IGGY_SERVER_BIN` (or `iggy-server` on
//! PATH) in a temp dir on free ports, stopped with SIGTERM.

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use vibes_iggy::Connection;

pub struct TestServer {
    child: Option<Child>,
    pub dir: TempDir,
    pub connection: Connection,
}

fn server_bin() -> PathBuf {
    std::env::var_os("IGGY_SERVER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("iggy-server"))
}

/// The bound address of `[section]` in the server's runtime config.
fn bound_address(config: &str, section: &str) -> Option<String> {
    let start = config.find(&format!("\n[{section}]\n"))?;
    let body = &config[start + section.len() + 3..];
    let body = &body[..body.find("\n[").unwrap_or(body.len())];
    let line = body.lines().find(|l| l.starts_with("address = "))?;
    Some(
        line.trim_start_matches("address = ")
            .trim_matches('"')
            .to_owned(),
    )
}

impl TestServer {
    pub fn start() -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let password = format!("test-{}", std::process::id());
        let child = Command::new(server_bin())
            .current_dir(dir.path())
            .env("IGGY_TCP_ADDRESS", "127.0.0.1:0")
            .env("IGGY_HTTP_ADDRESS", "127.0.0.1:0")
            .env("IGGY_QUIC_ENABLED", "false")
            .env("IGGY_WEBSOCKET_ENABLED", "false")
            .env("IGGY_SYSTEM_PATH", dir.path().join("data"))
            .env("IGGY_ROOT_USERNAME", "iggy")
            .env("IGGY_ROOT_PASSWORD", &password)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start iggy-server (set IGGY_SERVER_BIN)");
        let runtime = dir.path().join("data/runtime/current_config.toml");
        let deadline = Instant::now() + Duration::from_secs(30);
        let address = loop {
            if let Ok(text) = std::fs::read_to_string(&runtime)
                && let Some(address) = bound_address(&format!("\n{text}"), "tcp")
                && !address.ends_with(":0")
            {
                break address;
            }
            assert!(
                Instant::now() < deadline,
                "iggy-server did not become ready"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        TestServer {
            child: Some(child),
            dir,
            connection: Connection::new(address, "iggy", password),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGTERM, then waits for the exit.
    pub fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
