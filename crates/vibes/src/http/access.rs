//! Who may call the API.
//!
//! On a loopback address (the default) the API answers local clients without a token,
//! but only for a loopback `Host` (so a web page whose name was pointed at 127.0.0.1
//! cannot read it), and a `POST` only from the page's own origin (or with no
//! `Origin`, as curl sends). Bound to any other address, every API call needs the
//! token kept in `<data_dir>/http.token` (mode 0600, made on first use and printed
//! once): `Authorization: Bearer TOKEN`, or `?token=TOKEN` for an EventSource, which
//! cannot set headers. No CORS header is ever sent, so other origins cannot read
//! answers, and a JSON body cannot be posted cross-origin without a preflight this
//! server refuses.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use super::params::TOKEN_PARAM;
use crate::mcp::http as mcp_http;

/// The token file in the data directory.
pub const TOKEN_FILE: &str = "http.token";

/// What the API requires of a caller.
#[derive(Debug, Clone)]
pub(super) struct Access {
    /// The token every call must carry (bound to a non-loopback address).
    pub token: Option<String>,
}

/// The token of `data_dir`, made (32 random bytes, hex) if there is none yet; `true`
/// when it was made now. A token file others may read is refused. The file is read
/// and made by the same rules as `vibes mcp`'s token (its own file, though).
pub(super) fn token(data_dir: &Path) -> Result<(String, bool, PathBuf)> {
    let path = data_dir.join(TOKEN_FILE);
    if let Some(token) = mcp_http::read_token(&path)? {
        return Ok((token, false, path));
    }
    mcp_http::new_token(&path)?;
    let token = mcp_http::read_token(&path)?
        .with_context(|| format!("{} was made but cannot be read back", path.display()))?;
    Ok((token, true, path))
}

/// The check in front of every `/api` route.
pub(super) async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match check(
        &state.access,
        request.method(),
        request.headers(),
        request.uri().query(),
    ) {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

fn check(
    access: &Access,
    method: &Method,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<(), ApiError> {
    if let Some(token) = &access.token {
        let given = bearer(headers).or_else(|| query_token(query));
        return match given {
            Some(given) if same(given.as_bytes(), token.as_bytes()) => Ok(()),
            Some(_) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong token")),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                format!(
                    "this server needs its token (in {TOKEN_FILE} of its data dir): send Authorization: Bearer TOKEN, or ?{TOKEN_PARAM}=TOKEN"
                ),
            )),
        };
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !loopback_host(host) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "host {host:?} is not a loopback name: this server answers only localhost, 127.0.0.1 or [::1] without a token"
            ),
        ));
    }
    if method != Method::GET
        && method != Method::HEAD
        && let Some(origin) = headers.get(header::ORIGIN)
    {
        let origin = origin.to_str().unwrap_or("");
        if origin != format!("http://{host}") {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "origin {origin:?} is not this server's: a {method} needs the same origin or the token"
                ),
            ));
        }
    }
    Ok(())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn query_token(query: Option<&str>) -> Option<&str> {
    query?.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        (name == TOKEN_PARAM).then_some(value)
    })
}

/// Equal, in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `localhost`, `127.x.x.x` or `[::1]`, with or without a port.
fn loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names() {
        for host in [
            "localhost",
            "localhost:7700",
            "127.0.0.1:7700",
            "127.1.2.3",
            "[::1]:7700",
        ] {
            assert!(loopback_host(host), "{host}");
        }
        for host in [
            "evil.example:7700",
            "10.0.0.1:7700",
            "",
            "[::2]:1",
            "localhost.evil",
        ] {
            assert!(!loopback_host(host), "{host}");
        }
    }

    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn a_made_token_is_private_and_read_back() {
        let dir = tempfile::tempdir().expect("dir");
        let (made, created, path) = token(dir.path()).expect("made");
        assert!(created);
        assert_eq!(made.len(), 64);
        let mode = std::fs::metadata(&path).expect("file").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (again, created, _) = token(dir.path()).expect("read");
        assert_eq!((again.as_str(), created), (made.as_str(), false));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = token(dir.path())
            .expect_err("readable by others")
            .to_string();
        assert!(err.contains("is readable by others (mode 644)"), "{err}");
    }
}
