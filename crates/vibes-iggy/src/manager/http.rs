//! The hand-written HTTP/1.1 client of the manager: `GET /ping` and its status code,
//! and whether a TCP address accepts connections. One request, no body: not worth an
//! HTTP client dependency.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::REQUEST_TIMEOUT;
use super::addresses::connectable;

/// Sends `GET /ping` over HTTP/1.1 to `address` and returns the status code.
pub(super) async fn http_ping(address: SocketAddr, limit: Duration) -> io::Result<u16> {
    let exchange = async {
        let mut stream = TcpStream::connect(address).await?;
        let request = format!(
            "GET /ping HTTP/1.1\r\nHost: {address}\r\nUser-Agent: vibes\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut head = Vec::with_capacity(128);
        loop {
            if head.contains(&b'\n') || head.len() > 1024 {
                break;
            }
            if stream.read_buf(&mut head).await? == 0 {
                break;
            }
        }
        status_code(&head).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not an HTTP response from {address}"),
            )
        })
    };
    tokio::time::timeout(limit, exchange)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("{address} did not answer")))?
}

/// The status code of an HTTP/1.x response that starts with `head`.
fn status_code(head: &[u8]) -> Option<u16> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_whitespace();
    if !words.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let code = words.next()?;
    (code.len() == 3).then(|| code.parse().ok()).flatten()
}

/// Whether something accepts TCP connections at `address` (a wildcard address is
/// tried on loopback).
pub(super) async fn answers(address: SocketAddr, limit: Duration) -> bool {
    let connected = tokio::time::timeout(limit, TcpStream::connect(connectable(address))).await;
    connected.is_ok_and(|stream| stream.is_ok())
}

/// Whether `GET /ping` at `address` answers 200.
pub(super) async fn pings(address: SocketAddr) -> bool {
    let answer = http_ping(address, REQUEST_TIMEOUT).await;
    answer.is_ok_and(|code| code == 200)
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener as AsyncListener;
    use tokio::task::JoinHandle;

    use super::*;

    /// A one-connection HTTP server that answers `response` and returns the request.
    async fn serve_once(response: &'static [u8]) -> (SocketAddr, JoinHandle<String>) {
        let listener = AsyncListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            while !request.ends_with(b"\r\n\r\n") {
                let mut byte = [0u8; 1];
                if stream.read(&mut byte).await.unwrap() == 0 {
                    break;
                }
                request.push(byte[0]);
            }
            stream.write_all(response).await.unwrap();
            String::from_utf8(request).unwrap()
        });
        (address, task)
    }

    #[tokio::test]
    async fn ping_sends_a_get_and_reads_the_status() {
        let (address, server) =
            serve_once(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\npong").await;
        let status = http_ping(address, Duration::from_secs(5)).await.unwrap();
        assert_eq!(status, 200);
        let request = server.await.unwrap();
        assert!(request.starts_with("GET /ping HTTP/1.1\r\n"), "{request}");
        assert!(
            request.contains(&format!("Host: {address}\r\n")),
            "{request}"
        );
    }

    #[tokio::test]
    async fn ping_reports_other_statuses_and_garbage() {
        let (address, _server) = serve_once(b"HTTP/1.1 503 Service Unavailable\r\n\r\n").await;
        assert_eq!(
            http_ping(address, Duration::from_secs(5)).await.unwrap(),
            503
        );
        let (address, _server) = serve_once(b"SSH-2.0-OpenSSH\r\n").await;
        let err = http_ping(address, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(!pings(address).await);
    }

    #[tokio::test]
    async fn ping_gives_up_on_a_silent_server_and_a_closed_port() {
        let listener = AsyncListener::bind("127.0.0.1:0").await.unwrap();
        let silent = listener.local_addr().unwrap();
        let err = http_ping(silent, Duration::from_millis(200))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        drop(listener);
        assert!(http_ping(silent, Duration::from_secs(5)).await.is_err());
    }

    #[test]
    fn status_codes_parse_from_http_1_only() {
        assert_eq!(status_code(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(status_code(b"HTTP/1.0 404 Not Found\r\n"), Some(404));
        assert_eq!(status_code(b"HTTP/1.1 20"), None);
        assert_eq!(status_code(b"HTTP/2 200\r\n"), None);
        assert_eq!(status_code(b""), None);
    }
}
