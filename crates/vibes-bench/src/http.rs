//! The HTTP API of `vibes serve`, against what a user would do without it.
//!
//! - Fan-out: 100 clients follow `GET /api/stream` while events are appended at a steady
//!   rate through `POST /api/events`; per client, the events delivered per second and
//!   the delivery latency (client 0 reads each event's stamp), and the server's CPU
//!   time and resident memory over the run. The baseline is 100 `vibes tail -f --json`
//!   processes following the same log, their CPU and memory summed.
//! - Paging: every stored event read through `GET /api/events` (pages of 1000),
//!   against `vibes tail --json` printing the same events.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Options;
use crate::Result;
use crate::report::{Column, Measurement, Report};
use crate::usage::child::{self, Program};

const CLIENTS: usize = 100;

pub(crate) fn run(options: Options, report: &mut Report) -> Result<()> {
    let (stored, rate, seconds) = if options.quick {
        (20_000u64, 500u64, 3u64)
    } else {
        (200_000, 1000, 10)
    };
    let bin = child::vibes_binary()?;
    let scratch = crate::log::scratch_dir()?;
    let dir = scratch.path().join("data");
    crate::plugins::store_host_events(&dir, crate::plugins::session_events(stored))?;
    let mut serve = Serve::start(&bin, &dir)?;
    let result = measure(&bin, &dir, &serve, stored, rate, seconds, report);
    serve.stop();
    result
}

fn measure(
    bin: &std::path::Path,
    dir: &std::path::Path,
    serve: &Serve,
    stored: u64,
    rate: u64,
    seconds: u64,
    report: &mut Report,
) -> Result<()> {
    // Paging through everything, against tail printing it.
    report.section(
        &format!("Reading {stored} stored events: GET /api/events in pages of 1000, against `vibes tail --json`"),
        "reader",
        &[Column::EventsPerS, Column::Seconds],
        "ratio",
    );
    let tail = Program {
        path: bin.to_owned(),
        env: vec![("HOME".into(), dir.as_os_str().to_owned())],
        env_remove: vec!["VIBES_DATA_DIR".into()],
    };
    let dir_arg = dir.to_string_lossy().into_owned();
    let baseline = tail.median_of(3, &["--data-dir", &dir_arg, "tail", "--json"])?;
    let lines = baseline.stdout.iter().filter(|b| **b == b'\n').count() as u64;
    if lines != stored {
        return Err(format!("tail printed {lines} of {stored} events").into());
    }
    let tail_rate = stored as f64 / baseline.seconds;
    report.row(
        &Measurement {
            events_per_s: Some(tail_rate),
            seconds: Some(baseline.seconds),
            cpu_s: baseline.cpu_s,
            ..Measurement::new("read_all", "vibes tail --json")
        },
        None,
    );
    let mut best = f64::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let mut cursor: Option<String> = None;
        let mut got = 0u64;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/events?limit=1000&cursor={c}"),
                None => "/api/events?limit=1000".to_owned(),
            };
            let page = get_json(&serve.addr, &path)?;
            got += page["events"].as_array().map_or(0, Vec::len) as u64;
            if page["more"] != true {
                break;
            }
            cursor = page["next"].as_str().map(str::to_owned);
        }
        if got != stored {
            return Err(format!("GET /api/events gave {got} of {stored} events").into());
        }
        best = best.min(started.elapsed().as_secs_f64());
    }
    report.row(
        &Measurement {
            events_per_s: Some(stored as f64 / best),
            seconds: Some(best),
            ..Measurement::new("read_all", "GET /api/events")
        },
        Some((stored as f64 / best) / tail_rate),
    );

    // Fan-out to 100 followers at a steady rate.
    report.section(
        &format!(
            "Fan-out: {CLIENTS} followers, {rate} events/s appended for {seconds} s (events/s is per follower; CPU and peak RSS of the serving processes over the run)"
        ),
        "followers",
        &[Column::EventsPerS, Column::P50Us, Column::P99Us, Column::CpuS, Column::PeakMib, Column::Lost],
        "CPU ratio",
    );
    let total = rate * seconds;
    // Baseline: one `vibes tail -f` process per follower.
    let tails: Vec<Child> = (0..CLIENTS)
        .map(|_| {
            Command::new(bin)
                .env("HOME", dir)
                .env_remove("VIBES_DATA_DIR")
                .args([
                    "--data-dir",
                    &dir_arg,
                    "tail",
                    "-f",
                    "--json",
                    "--from",
                    "end",
                    "--type",
                    "error",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
        })
        .collect::<std::io::Result<_>>()?;
    let base = follow_run(
        tails.iter().map(Child::id).collect(),
        tails
            .into_iter()
            .map(|mut c| {
                let out = c.stdout.take().expect("piped");
                Follower::Tail(c, BufReader::new(out))
            })
            .collect(),
        &serve.addr,
        rate,
        seconds,
    )?;
    report.row(&base.row("fan_out", "100 × vibes tail -f", total), None);
    let clients = (0..CLIENTS)
        .map(|_| open_stream(&serve.addr).map(Follower::Sse))
        .collect::<Result<Vec<_>>>()?;
    let sse = follow_run(vec![serve.pid], clients, &serve.addr, rate, seconds)?;
    report.row(
        &sse.row("fan_out", "100 × GET /api/stream", total),
        Some(sse.cpu_s / base.cpu_s.max(1e-9)),
    );
    Ok(())
}

/// What a fan-out run measured.
struct FanOut {
    per_client: Vec<u64>,
    lagged: u64,
    latencies_us: Vec<f64>,
    seconds: f64,
    cpu_s: f64,
    peak_mib: f64,
}

impl FanOut {
    fn row(&self, workload: &str, name: &str, total: u64) -> Measurement {
        let mut lat = self.latencies_us.clone();
        lat.sort_by(f64::total_cmp);
        let pct = |p: f64| lat.get(((lat.len() as f64 - 1.0) * p) as usize).copied();
        let min = self.per_client.iter().copied().min().unwrap_or(0);
        Measurement {
            events_per_s: Some(min as f64 / self.seconds),
            p50_us: pct(0.5),
            p99_us: pct(0.99),
            cpu_s: Some(self.cpu_s),
            peak_mib: Some(self.peak_mib),
            lost: Some(total.saturating_sub(min).max(self.lagged)),
            ..Measurement::new(workload, name)
        }
    }
}

/// A follower: an SSE client, or a `tail -f` child's output.
enum Follower {
    Sse(BufReader<TcpStream>),
    Tail(Child, BufReader<std::process::ChildStdout>),
}

fn open_stream(addr: &str) -> Result<BufReader<TcpStream>> {
    let mut stream = TcpStream::connect(addr)?;
    write!(
        stream,
        "GET /api/stream?type=error HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if !line.contains(" 200 ") {
        return Err(format!("GET /api/stream answered {line:?}").into());
    }
    Ok(reader)
}

/// Appends `rate` events a second for `seconds` while `followers` read; returns when
/// every follower has them all (or a second after the last append).
fn follow_run(
    pids: Vec<u32>,
    followers: Vec<Follower>,
    addr: &str,
    rate: u64,
    seconds: u64,
) -> Result<FanOut> {
    let total = rate * seconds;
    let counts: Vec<Arc<AtomicU64>> = (0..followers.len())
        .map(|_| Arc::new(AtomicU64::new(0)))
        .collect();
    let lagged = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut sockets = Vec::new();
    let mut children = Vec::new();
    let mut readers = Vec::new();
    for (i, follower) in followers.into_iter().enumerate() {
        let count = Arc::clone(&counts[i]);
        let lagged = Arc::clone(&lagged);
        let latencies = Arc::clone(&latencies);
        let reader: Box<dyn BufRead + Send> = match follower {
            Follower::Sse(r) => {
                sockets.push(r.get_ref().try_clone()?);
                Box::new(r)
            }
            Follower::Tail(c, r) => {
                children.push(c);
                Box::new(r)
            }
        };
        readers.push(thread::spawn(move || {
            read_follower(reader, i == 0, &count, &lagged, &latencies)
        }));
    }
    // Let the followers settle (a tail process starts and seeks to the end).
    thread::sleep(Duration::from_millis(1500));
    let cpu_before: u64 = pids.iter().filter_map(|p| child::cpu_ticks_of(*p)).sum();
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (pids, stop, peak) = (pids.clone(), Arc::clone(&stop), Arc::clone(&peak));
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let rss: u64 = pids
                    .iter()
                    .filter_map(|p| child::status_kib(*p, "VmRSS:"))
                    .sum();
                peak.fetch_max(rss, Ordering::Relaxed);
                thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let started = Instant::now();
    let tick = Duration::from_millis(50);
    let per_tick = (rate / 20).max(1);
    let mut sent = 0u64;
    let mut next = started;
    while sent < total {
        let body: String = (0..per_tick.min(total - sent))
            .map(|i| {
                format!(
                    "{{\"type\":\"error\",\"message\":\"bench {}\",\"severity\":\"error\"}}\n",
                    sent + i
                )
            })
            .collect();
        post(addr, &body)?;
        sent += per_tick.min(total - sent);
        next += tick;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while counts
        .iter()
        .any(|c| c.load(Ordering::Relaxed) + lagged.load(Ordering::Relaxed) < total)
        && Instant::now() < deadline
    {
        thread::sleep(Duration::from_millis(10));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after: u64 = pids.iter().filter_map(|p| child::cpu_ticks_of(*p)).sum();
    stop.store(true, Ordering::Relaxed);
    sampler.join().map_err(|_| "the sampler panicked")?;
    for socket in &sockets {
        let _ = socket.shutdown(Shutdown::Both);
    }
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
    for reader in readers {
        let _ = reader.join();
    }
    let ticks = rustix::param::clock_ticks_per_second().max(1) as f64;
    let latencies_us = std::mem::take(&mut *latencies.lock());
    Ok(FanOut {
        per_client: counts.iter().map(|c| c.load(Ordering::Relaxed)).collect(),
        lagged: lagged.load(Ordering::Relaxed),
        latencies_us,
        seconds: elapsed,
        cpu_s: cpu_after.saturating_sub(cpu_before) as f64 / ticks,
        peak_mib: peak.load(Ordering::Relaxed) as f64 / 1024.0,
    })
}

/// Counts the events a follower gets (SSE `data:` lines or tail's JSON lines); the
/// first follower also measures each event's latency from its stamp.
fn read_follower(
    mut reader: Box<dyn BufRead + Send>,
    timed: bool,
    count: &AtomicU64,
    lagged: &AtomicU64,
    latencies: &parking_lot::Mutex<Vec<f64>>,
) {
    let mut line = String::new();
    let mut lag_next = false;
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = line.as_str();
        let json = if let Some(data) = text.strip_prefix("data: ") {
            if lag_next {
                lag_next = false;
                if let Ok(v) = serde_json::from_str::<Value>(data) {
                    lagged.fetch_add(v["skipped"].as_u64().unwrap_or(0), Ordering::Relaxed);
                }
                continue;
            }
            data
        } else if text.starts_with("event: lagged") {
            lag_next = true;
            continue;
        } else if text.starts_with('{') {
            text
        } else {
            continue;
        };
        count.fetch_add(1, Ordering::Relaxed);
        if timed && let Ok(v) = serde_json::from_str::<Value>(json) {
            let event = if v.get("event").is_some() {
                &v["event"]
            } else {
                &v
            };
            if let Some(stamp) = event["timestamp"]
                .as_str()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            {
                let us = jiff::Timestamp::now().duration_since(stamp).as_secs_f64() * 1e6;
                latencies.lock().push(us);
            }
        }
    }
}

fn post(addr: &str, body: &str) -> Result<()> {
    let mut stream = TcpStream::connect(addr)?;
    write!(
        stream,
        "POST /api/events HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    if !answer.starts_with("HTTP/1.1 200") {
        return Err(format!("POST /api/events: {}", answer.lines().next().unwrap_or("")).into());
    }
    Ok(())
}

fn get_json(addr: &str, path: &str) -> Result<Value> {
    let mut stream = TcpStream::connect(addr)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("an HTTP answer")?;
    let head = String::from_utf8_lossy(&answer[..split]);
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("GET {path}: {}", head.lines().next().unwrap_or("")).into());
    }
    Ok(serde_json::from_slice(&answer[split + 4..])?)
}

/// `vibes serve` with only the sessions plugin, on a free port.
struct Serve {
    child: Child,
    pid: u32,
    addr: String,
}

impl Serve {
    fn start(bin: &std::path::Path, dir: &std::path::Path) -> Result<Serve> {
        let mut child = Command::new(bin)
            .env("HOME", dir)
            .env_remove("VIBES_DATA_DIR")
            .arg("--data-dir")
            .arg(dir)
            .args(["serve", "--http", "127.0.0.1:0", "--plugins", "sessions"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut reader = BufReader::new(child.stderr.take().ok_or("stderr")?);
        let mut addr = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Err("vibes serve exited before serving".into());
            }
            if let Some(rest) = line
                .trim()
                .strip_prefix("http: the web page and API at http://")
            {
                addr = Some(rest.trim_end_matches('/').to_owned());
            }
            if line.starts_with("serving ") {
                break;
            }
        }
        thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink);
        });
        let pid = child.id();
        let serve = Serve {
            child,
            pid,
            addr: addr.ok_or("serve did not say where it listens")?,
        };
        // Measure once the plugin has caught up with what is stored.
        let deadline = Instant::now() + Duration::from_secs(600);
        while get_json(&serve.addr, "/api/health")
            .map(|h| h["ok"] != true)
            .unwrap_or(true)
        {
            if Instant::now() > deadline {
                return Err("the sessions plugin did not catch up in 10 minutes".into());
            }
            thread::sleep(Duration::from_millis(200));
        }
        Ok(serve)
    }

    fn stop(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
        }
        let _ = self.child.wait();
    }
}
