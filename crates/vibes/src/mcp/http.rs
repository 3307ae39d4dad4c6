//! The streamable HTTP transport of `vibes mcp --http ADDR`, at path `/mcp`.
//!
//! Without a token it binds loopback addresses only. A token is configured by the file
//! `<data dir>/mcp-token` (mode 0600, made by `--new-token`); then every request must
//! carry `Authorization: Bearer <token>`, and any address may be bound. The token is
//! never logged or printed.

use std::convert::Infallible;
use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;

use super::server::VibesServer;

/// The token file's name in the data directory.
pub const TOKEN_FILE: &str = "mcp-token";

/// Where the token file of `data_dir` is.
pub fn token_path(data_dir: &Path) -> PathBuf {
    data_dir.join(TOKEN_FILE)
}

/// Writes a new random token to `path` (mode 0600), replacing any.
pub fn new_token(path: &Path) -> Result<()> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom for a token")?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    std::io::Write::write_all(&mut file, format!("{token}\n").as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// The token in `path`, if the file exists: it must be readable by its owner only.
pub fn read_token(path: &Path) -> Result<Option<String>> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(anyhow::Error::new(e).context(format!("reading {}", path.display()))),
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "{} is readable by others (mode {mode:o}): run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let token = text.trim();
    if token.len() < 16 {
        bail!(
            "{} holds no token of at least 16 characters (make one with `vibes mcp --http ADDR --new-token`)",
            path.display()
        );
    }
    Ok(Some(token.to_owned()))
}

/// Whether `addr` may be bound with `token` (configured or not).
pub fn check_bind(addr: SocketAddr, token: Option<&str>, token_file: &Path) -> Result<()> {
    if token.is_none() && !addr.ip().is_loopback() {
        bail!(
            "--http {addr} is not a loopback address: without a token only 127.0.0.1 or [::1] may be bound; make a token with --new-token (stored in {}, mode 0600) and give clients `Authorization: Bearer <token>`",
            token_file.display()
        );
    }
    Ok(())
}

/// Serves `server` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    server: VibesServer,
    token: Option<String>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let local = listener.local_addr().context("the bound address")?;
    let mut config = StreamableHttpServerConfig::default();
    if !local.ip().is_loopback() {
        // Behind a token: any Host may reach it (the token guards it, not the name).
        config = config.disable_allowed_hosts();
    }
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let token = token.map(Arc::<str>::from);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!("accepting a connection: {e}");
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let service = service.clone();
        let token = token.clone();
        tokio::spawn(async move {
            let handler = hyper::service::service_fn(move |request: Request<Incoming>| {
                let service = service.clone();
                let token = token.clone();
                async move {
                    if let Some(token) = &token
                        && !authorized(&request, token)
                    {
                        return Ok::<_, Infallible>(unauthorized());
                    }
                    Ok(service.handle(request).await)
                }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), handler)
                .await
            {
                tracing::debug!(%peer, "http connection: {e}");
            }
        });
    }
}

/// Whether `request` carries `Authorization: Bearer <token>`.
fn authorized(request: &Request<Incoming>, token: &str) -> bool {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| constant_time_eq(given.trim().as_bytes(), token.as_bytes()))
}

/// Compares without stopping at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn unauthorized() -> Response<http_body_util::combinators::BoxBody<Bytes, Infallible>> {
    let mut response = Response::new(
        Full::new(Bytes::from_static(
            b"missing or wrong bearer token (Authorization: Bearer <token>)\n",
        ))
        .boxed(),
    );
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}
