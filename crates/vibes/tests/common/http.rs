//! A small HTTP/1.1 client over a TCP socket for the API and WebDriver tests: every
//! byte of the request is the test's to choose (bad hosts, huge bodies), and a
//! Server-Sent Events stream is read as it arrives.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// An answer: status, headers (lower-case names) and body.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Response {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("a JSON body ({e}): {}", self.text()))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `method path` to `addr` with `headers` and `body`; reads the whole answer.
pub(crate) fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut stream = open(addr, method, path, headers, body);
    let (status, headers) = head(&mut stream);
    let mut body = Vec::new();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    if chunked {
        loop {
            let mut size = String::new();
            stream.read_line(&mut size).expect("chunk size");
            let size = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
            let mut chunk = vec![0; size + 2];
            stream.read_exact(&mut chunk).expect("chunk");
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(len) = headers.iter().find(|(n, _)| n == "content-length") {
        let len: usize = len.1.parse().expect("length");
        body.resize(len, 0);
        stream.read_exact(&mut body).expect("body");
    } else {
        stream.read_to_end(&mut body).expect("body");
    }
    Response {
        status,
        headers,
        body,
    }
}

/// `GET path`, with the loopback host.
pub(crate) fn get(addr: &str, path: &str) -> Response {
    request(addr, "GET", path, &[], b"")
}

/// `POST path` of JSON lines.
pub(crate) fn post_json(addr: &str, path: &str, body: &str) -> Response {
    request(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

fn open(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> BufReader<TcpStream> {
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(head.as_bytes()).expect("sends");
    // The server may answer (413) before it has read all of a large body.
    let _ = stream.write_all(body);
    BufReader::new(stream)
}

fn head(stream: &mut BufReader<TcpStream>) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    stream.read_line(&mut line).expect("status line");
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a status line: {line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).expect("header");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    (status, headers)
}

/// One Server-Sent Event.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sse {
    pub(crate) id: Option<String>,
    pub(crate) event: Option<String>,
    pub(crate) data: String,
}

/// An open `text/event-stream` answer, read event by event.
pub(crate) struct SseStream {
    pub(crate) status: u16,
    stream: BufReader<TcpStream>,
    /// Bytes of the current chunk still to read (the body is chunked).
    left: usize,
}

/// Opens `GET path` as an event stream.
pub(crate) fn sse(addr: &str, path: &str, headers: &[(&str, &str)]) -> SseStream {
    let mut stream = open(addr, "GET", path, headers, b"");
    let (status, _) = head(&mut stream);
    SseStream {
        status,
        stream,
        left: 0,
    }
}

impl SseStream {
    /// The underlying socket (to make the client slow or drop it).
    pub(crate) fn socket(&self) -> &TcpStream {
        self.stream.get_ref()
    }

    fn line(&mut self) -> Option<String> {
        let mut out = Vec::new();
        loop {
            if self.left == 0 {
                let mut size = String::new();
                if self.stream.read_line(&mut size).ok()? == 0 {
                    return None;
                }
                if size.trim().is_empty() {
                    continue; // the CRLF after a chunk
                }
                self.left = usize::from_str_radix(size.trim(), 16).ok()?;
                if self.left == 0 {
                    return None;
                }
            }
            let mut byte = [0u8];
            self.stream.read_exact(&mut byte).ok()?;
            self.left -= 1;
            if byte[0] == b'\n' {
                return Some(String::from_utf8_lossy(&out).into_owned());
            }
            out.push(byte[0]);
        }
    }

    /// The next event (comments skipped); `None` when the stream ends.
    pub(crate) fn next(&mut self) -> Option<Sse> {
        let mut event = Sse::default();
        let mut any = false;
        loop {
            let line = self.line()?;
            if line.is_empty() {
                if any {
                    return Some(event);
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            any = true;
            let (field, value) = line.split_once(':').unwrap_or((&line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => event.id = Some(value.to_owned()),
                "event" => event.event = Some(value.to_owned()),
                "data" => event.data.push_str(value),
                _ => {}
            }
        }
    }
}

/// A `vibes serve` with its HTTP API on a free loopback port, stopped (SIGINT) on drop.
pub(crate) struct Serve {
    pub(crate) child: std::process::Child,
    pub(crate) addr: String,
    /// Its stderr up to the line saying it serves.
    pub(crate) stderr: Vec<String>,
}

impl Serve {
    /// Starts `vibes --data-dir data serve --http <http> <extra>` with home `home`, and
    /// waits until it serves.
    pub(crate) fn start(
        home: &std::path::Path,
        data: &std::path::Path,
        http: &str,
        extra: &[&str],
    ) -> Serve {
        Self::try_start(home, data, http, extra)
            .unwrap_or_else(|lines| panic!("serve starts: {lines:?}"))
    }

    /// As [`Serve::start`]; `Err` with its stderr when it exits instead.
    pub(crate) fn try_start(
        home: &std::path::Path,
        data: &std::path::Path,
        http: &str,
        extra: &[&str],
    ) -> Result<Serve, Vec<String>> {
        use std::process::Stdio;
        let mut child = super::vibes(home)
            .arg("--data-dir")
            .arg(data)
            .args(["serve", "--http", http])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve spawns");
        let stderr = child.stderr.take().expect("piped");
        let mut lines = Vec::new();
        let mut addr = None;
        let mut reader = BufReader::new(stderr);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                let _ = child.wait();
                return Err(lines);
            }
            let line = line.trim_end().to_owned();
            if let Some(rest) = line.strip_prefix("http: the web page and API at http://") {
                addr = Some(rest.trim_end_matches('/').to_owned());
            }
            let serving = line.starts_with("serving ");
            lines.push(line);
            if serving {
                break;
            }
        }
        // Keep draining stderr so the server never blocks on it.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink);
        });
        Ok(Serve {
            child,
            addr: addr.expect("serve says where it listens"),
            stderr: lines,
        })
    }

    /// Stops it with SIGINT and waits.
    pub(crate) fn stop(&mut self) -> std::process::ExitStatus {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("a pid");
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
        self.child.wait().expect("serve exits")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}
