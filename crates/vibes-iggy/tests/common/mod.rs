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
    password: String,
    http_address: String,
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

/// Starts the server on `tcp` and `http` and waits until it has written the addresses
/// it bound. The child goes to a `TestServer`, which waits for it on stop and drop.
#[allow(clippy::zombie_processes)]
fn launch(dir: &TempDir, password: &str, tcp: &str, http: &str) -> (Child, String, String) {
    let runtime = dir.path().join("data/runtime/current_config.toml");
    let _ = std::fs::remove_file(&runtime);
    let mut child = Command::new(server_bin())
        .current_dir(dir.path())
        .env("IGGY_TCP_ADDRESS", tcp)
        .env("IGGY_HTTP_ADDRESS", http)
        .env("IGGY_QUIC_ENABLED", "false")
        .env("IGGY_WEBSOCKET_ENABLED", "false")
        .env("IGGY_SYSTEM_PATH", dir.path().join("data"))
        .env("IGGY_ROOT_USERNAME", "iggy")
        .env("IGGY_ROOT_PASSWORD", password)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start iggy-server (set IGGY_SERVER_BIN)");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(&runtime) {
            let text = format!("\n{text}");
            if let (Some(tcp), Some(http)) =
                (bound_address(&text, "tcp"), bound_address(&text, "http"))
                && !tcp.ends_with(":0")
                && !http.ends_with(":0")
            {
                return (child, tcp, http);
            }
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("iggy-server did not become ready");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl TestServer {
    pub fn start() -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let password = format!("test-{}", std::process::id());
        let (child, tcp, http) = launch(&dir, &password, "127.0.0.1:0", "127.0.0.1:0");
        TestServer {
            child: Some(child),
            dir,
            connection: Connection::new(tcp, "iggy", password.clone()),
            password,
            http_address: http,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same data and ports.
    pub fn restart(&mut self) {
        self.kill();
        let (child, _, _) = launch(
            &self.dir,
            &self.password,
            &self.connection.tcp_address,
            &self.http_address,
        );
        self.child = Some(child);
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
        self.kill();
    }
}
