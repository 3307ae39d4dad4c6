//! A realistic `~/.claude/projects` tree made from the real fixture transcripts.
//!
//! Each fixture session (`shared/fixtures/claude-projects`, its subagent files with it)
//! is cut into templates once: literal bytes, and the ids and timestamps in them. A
//! generated session is one fixture's lines repeated (each repetition a *pass*) until
//! the session's drawn size is reached; every pass gets ids of its own (message,
//! request, tool and line ids: the pass's key) and its own timestamps (shifted so the
//! sessions spread over [`SPREAD_DAYS`] days, passes one after another), and every line
//! of a session names the session's own id, so de-duplication collapses nothing that a
//! user's real tree would keep apart. A session of the 2.1 fixture gets its subagent
//! and compaction files in `<session>/subagents/`, a set per pass with that pass's ids,
//! once its main file reaches the line that first names the agent (the main file's
//! `agent_progress` lines echo those files' calls, as Claude Code's do).
//!
//! Deliberate duplicates: every [`DUPLICATE_EVERY`]th session is also written, byte for
//! byte, into a second project folder (a project folder that was renamed, leaving the
//! old one behind); each call in it is a copy of a call already counted.
//!
//! Sizes: drawn from a log-normal distribution (median [`MEDIAN_BYTES`]), with a few
//! sessions of over 50 MB. Everything comes from a seeded generator: the same options
//! give the same bytes. Files are written line by line through a buffer; no file is
//! held in memory.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use jiff::{SignedDuration, Timestamp};

use crate::Result;

/// Median size of a main session file.
const MEDIAN_BYTES: f64 = 120.0 * 1024.0;
/// Spread (sigma) of the log of the file size.
const SIGMA: f64 = 1.2;
/// Smallest and largest drawn size of an ordinary session file.
const MIN_BYTES: f64 = 8.0 * 1024.0;
const MAX_BYTES: f64 = 24.0 * 1024.0 * 1024.0;
/// Sessions start within this many days of [`START`].
const SPREAD_DAYS: i64 = 56;
/// The first day of the corpus.
const START: &str = "2026-01-05T00:00:00Z";
/// A pass of a fixture starts this long after the previous pass's last line.
const PASS_GAP: SignedDuration = SignedDuration::from_mins(20);
/// Every this many sessions, one is also copied into a second project folder.
const DUPLICATE_EVERY: usize = 100;
/// Every this many sessions, one grows in [`Corpus::append`].
const GROW_EVERY: usize = 10;
/// The growing sessions gain this fraction of all lines.
const GROW_FRACTION: f64 = 0.01;

/// How big a corpus to make.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    /// Sessions (main files), before subagent files and duplicates.
    pub(crate) sessions: usize,
    /// Projects the sessions are spread over.
    pub(crate) projects: usize,
    /// Sessions of over 50 MB, with their sizes drawn from 55 to 70 MB.
    pub(crate) big: usize,
    /// Size of a big session, bytes (before the draw's variation).
    pub(crate) big_bytes: u64,
    pub(crate) seed: u64,
}

/// One id or timestamp inside a template line.
#[derive(Debug, Clone)]
enum Piece {
    Literal(Vec<u8>),
    /// The fixture session's own id: becomes the generated session's id.
    Session,
    /// A UUID other than the session's (a line's `uuid`, `parentUuid`, ...).
    Uuid(String),
    /// `msg_...`, `req_...`, `toolu_...`: the prefix is kept, the rest rewritten.
    Token(String),
    /// An agent id of the fixture (index into [`Fixture::agents`]).
    Agent(usize),
    /// An RFC 3339 timestamp with milliseconds, as Unix milliseconds; `true` for the
    /// line's own `timestamp` (the others are quoted in text and tool output).
    Time(i64, bool),
}

/// A fixture line cut into pieces.
#[derive(Debug, Clone)]
struct Template {
    pieces: Vec<Piece>,
    bytes: usize,
}

#[derive(Debug)]
struct AgentFixture {
    id: String,
    lines: Vec<Template>,
    /// The main file's first line (0-based) that names this agent.
    named_at: usize,
}

/// One fixture session, ready to be replicated.
#[derive(Debug)]
struct Fixture {
    lines: Vec<Template>,
    agents: Vec<AgentFixture>,
    /// The earliest and latest timestamp of its main file, Unix ms.
    first_ms: i64,
    span_ms: i64,
}

/// Where a generated session lives and what it is made of; everything the generator
/// and [`Corpus::append`] need to write it again, or write more of it.
#[derive(Debug, Clone)]
struct Plan {
    index: usize,
    fixture: usize,
    project: usize,
    session: String,
    /// Lines of the main file.
    lines: usize,
    /// Unix ms added to the fixture's timestamps in pass 0.
    shift_ms: i64,
}

/// What was written.
#[derive(Debug, Clone, Default)]
pub(crate) struct Stats {
    pub(crate) files: usize,
    pub(crate) subagent_files: usize,
    pub(crate) duplicate_files: usize,
    pub(crate) bytes: u64,
    pub(crate) lines: u64,
    pub(crate) median_file_bytes: u64,
    pub(crate) largest_file_bytes: u64,
    pub(crate) files_over_50mb: usize,
}

/// A generated tree: `<home>/.claude/projects/...`.
#[derive(Debug)]
pub(crate) struct Corpus {
    pub(crate) home: PathBuf,
    fixtures: Vec<Fixture>,
    plans: Vec<Plan>,
    pub(crate) stats: Stats,
}

impl Corpus {
    /// The projects folder (`<home>/.claude/projects`).
    pub(crate) fn projects(&self) -> PathBuf {
        projects_dir(&self.home)
    }

    /// Writes a corpus of `shape` from the fixtures in `fixtures` under `home`.
    pub(crate) fn generate(fixtures: &Path, home: &Path, shape: Shape) -> Result<Corpus> {
        let fixtures = load_fixtures(fixtures)?;
        let mut rng = Rng(shape.seed);
        let start_ms = START.parse::<Timestamp>()?.as_millisecond();
        let mut plans = Vec::with_capacity(shape.sessions);
        let mut sizes = Vec::new();
        let mut stats = Stats::default();
        let projects = projects_dir(home);
        for index in 0..shape.sessions {
            // 2.1 sessions (with subagent files) are 30%, the two 1.x ones 35% each.
            let fixture = match rng.below(100) {
                0..30 => 0,
                30..65 => 1,
                _ => 2,
            }
            .min(fixtures.len() - 1);
            let target = if index < shape.big {
                shape.big_bytes + rng.below(shape.big_bytes / 4)
            } else {
                (MEDIAN_BYTES * (SIGMA * rng.normal()).exp()).clamp(MIN_BYTES, MAX_BYTES) as u64
            };
            let start = start_ms + rng.below((SPREAD_DAYS * 86_400_000) as u64) as i64;
            let mut plan = Plan {
                index,
                fixture,
                project: rng.below(shape.projects as u64) as usize,
                session: uuid_like(shape.seed, index),
                lines: 0,
                shift_ms: start - fixtures[fixture].first_ms,
            };
            let fx = &fixtures[fixture];
            let mut bytes = 0u64;
            while bytes < target {
                bytes += (fx.lines[plan.lines % fx.lines.len()].bytes + 1) as u64;
                plan.lines += 1;
            }
            let main = session_path(&projects, &plan);
            write_lines(&main, fx, &plan, 0, plan.lines, false)?;
            sizes.push(bytes);
            stats.files += 1;
            stats.lines += plan.lines as u64;
            let (agent_sizes, agent_lines) = write_agents(&projects, fx, &plan, 0, plan.lines)?;
            stats.files += agent_sizes.len();
            stats.subagent_files += agent_sizes.len();
            stats.lines += agent_lines;
            sizes.extend(agent_sizes);
            if index % DUPLICATE_EVERY == DUPLICATE_EVERY / 2 {
                let copy = duplicate_path(&projects, &plan);
                fs::create_dir_all(copy.parent().expect("a session file has a folder"))?;
                fs::copy(&main, &copy)?;
                sizes.push(bytes);
                stats.files += 1;
                stats.duplicate_files += 1;
                stats.lines += plan.lines as u64;
            }
            plans.push(plan);
        }
        stats.bytes = sizes.iter().sum();
        sizes.sort_unstable();
        stats.median_file_bytes = sizes.get(sizes.len() / 2).copied().unwrap_or(0);
        stats.largest_file_bytes = sizes.last().copied().unwrap_or(0);
        stats.files_over_50mb = sizes.iter().filter(|&&s| s > 50_000_000).count();
        Ok(Corpus {
            home: home.to_path_buf(),
            fixtures,
            plans,
            stats,
        })
    }

    /// Appends about 1% of all lines ([`GROW_FRACTION`]) as the next lines of every
    /// [`GROW_EVERY`]th session's main file, each getting a share in proportion to its
    /// length (its duplicate copy stays as it was). Returns (lines, bytes) appended.
    pub(crate) fn append(&mut self) -> Result<(u64, u64)> {
        let projects = self.projects();
        let growing = |plan: &Plan| plan.index % GROW_EVERY == GROW_EVERY / 2;
        let want = (self.stats.lines as f64 * GROW_FRACTION).ceil();
        let of: usize = self
            .plans
            .iter()
            .filter(|p| growing(p))
            .map(|p| p.lines)
            .sum();
        let mut lines = 0u64;
        let mut bytes = 0u64;
        for plan in &mut self.plans {
            if !growing(plan) {
                continue;
            }
            let more = ((want * plan.lines as f64 / of.max(1) as f64).round() as usize).max(1);
            let fx = &self.fixtures[plan.fixture];
            let path = session_path(&projects, plan);
            bytes += write_lines(&path, fx, plan, plan.lines, plan.lines + more, true)?;
            let (agent_sizes, agent_lines) =
                write_agents(&projects, fx, plan, plan.lines, plan.lines + more)?;
            self.stats.files += agent_sizes.len();
            self.stats.subagent_files += agent_sizes.len();
            bytes += agent_sizes.iter().sum::<u64>();
            lines += agent_lines;
            plan.lines += more;
            lines += more as u64;
        }
        self.stats.lines += lines;
        self.stats.bytes += bytes;
        Ok((lines, bytes))
    }
}

fn projects_dir(home: &Path) -> PathBuf {
    home.join(".claude").join("projects")
}

fn project_slug(project: usize) -> String {
    format!("-home-dev-work-project-{project:03}")
}

fn session_path(projects: &Path, plan: &Plan) -> PathBuf {
    projects
        .join(project_slug(plan.project))
        .join(format!("{}.jsonl", plan.session))
}

fn duplicate_path(projects: &Path, plan: &Plan) -> PathBuf {
    projects
        .join(format!("{}-renamed", project_slug(plan.project)))
        .join(format!("{}.jsonl", plan.session))
}

fn agent_path(projects: &Path, plan: &Plan, agent: usize, pass: usize, fx: &Fixture) -> PathBuf {
    let id = agent_id(&fx.agents[agent].id, plan, pass);
    projects
        .join(project_slug(plan.project))
        .join(&plan.session)
        .join("subagents")
        .join(format!("agent-{id}.jsonl"))
}

/// Writes lines `from..to` of `plan`'s line sequence to `path` (appending when
/// `append`); returns the bytes written.
fn write_lines(
    path: &Path,
    fx: &Fixture,
    plan: &Plan,
    from: usize,
    to: usize,
    append: bool,
) -> Result<u64> {
    fs::create_dir_all(path.parent().expect("a session file has a folder"))?;
    let file = OpenOptions::new()
        .create(true)
        .append(append)
        .write(true)
        .truncate(!append)
        .open(path)?;
    let mut out = BufWriter::with_capacity(256 * 1024, file);
    let mut written = 0u64;
    let n = fx.lines.len();
    let mut line = Vec::new();
    for i in from..to {
        let pass = i / n;
        render(
            &fx.lines[i % n],
            fx,
            plan,
            pass,
            pass_shift(fx, plan, pass),
            &mut line,
        );
        line.push(b'\n');
        out.write_all(&line)?;
        written += line.len() as u64;
    }
    out.flush()?;
    Ok(written)
}

fn write_agent(path: &Path, fx: &Fixture, plan: &Plan, agent: usize, pass: usize) -> Result<u64> {
    fs::create_dir_all(path.parent().expect("an agent file has a folder"))?;
    let mut out = BufWriter::with_capacity(256 * 1024, File::create(path)?);
    let mut written = 0u64;
    let mut line = Vec::new();
    for template in &fx.agents[agent].lines {
        // The ids and times of the pass that names the agent.
        render(
            template,
            fx,
            plan,
            pass,
            pass_shift(fx, plan, pass),
            &mut line,
        );
        line.push(b'\n');
        out.write_all(&line)?;
        written += line.len() as u64;
    }
    out.flush()?;
    Ok(written)
}

/// Unix ms added to the fixture's timestamps in pass `pass` of `plan`.
fn pass_shift(fx: &Fixture, plan: &Plan, pass: usize) -> i64 {
    plan.shift_ms + pass as i64 * (fx.span_ms + PASS_GAP.as_millis() as i64)
}

/// Writes the subagent files of `plan` whose naming line is in lines `from..to` of its
/// main file (one set per pass); returns (each file's bytes, lines).
fn write_agents(
    projects: &Path,
    fx: &Fixture,
    plan: &Plan,
    from: usize,
    to: usize,
) -> Result<(Vec<u64>, u64)> {
    let n = fx.lines.len();
    let mut done = (Vec::new(), 0);
    for pass in from / n..=to / n {
        for (index, agent) in fx.agents.iter().enumerate() {
            let at = pass * n + agent.named_at;
            if agent.named_at < n && (from..to).contains(&at) {
                let path = agent_path(projects, plan, index, pass, fx);
                done.0.push(write_agent(&path, fx, plan, index, pass)?);
                done.1 += agent.lines.len() as u64;
            }
        }
    }
    Ok(done)
}

/// One line of `plan`, pass `pass`, into `out` (cleared first).
fn render(
    template: &Template,
    fx: &Fixture,
    plan: &Plan,
    pass: usize,
    shift_ms: i64,
    out: &mut Vec<u8>,
) {
    out.clear();
    let key = pass_key(plan, pass);
    for piece in &template.pieces {
        match piece {
            Piece::Literal(bytes) => out.extend_from_slice(bytes),
            Piece::Session => out.extend_from_slice(plan.session.as_bytes()),
            Piece::Uuid(original) => {
                // Keep the first 24 characters, rewrite the last 12 hex digits.
                let h = xxhash_rust::xxh3::xxh3_64_with_seed(original.as_bytes(), key);
                out.extend_from_slice(&original.as_bytes()[..24]);
                out.extend_from_slice(format!("{:012x}", h & 0xffff_ffff_ffff).as_bytes());
            }
            Piece::Token(original) => {
                let (prefix, rest) = original.split_at(original.find('_').map_or(0, |i| i + 1));
                let keep = rest.len().saturating_sub(10);
                out.extend_from_slice(prefix.as_bytes());
                out.extend_from_slice(&rest.as_bytes()[..keep]);
                let mut h = xxhash_rust::xxh3::xxh3_64_with_seed(original.as_bytes(), key);
                for _ in keep..rest.len() {
                    out.push(BASE62[(h % 62) as usize]);
                    h /= 62;
                    if h == 0 {
                        h = xxhash_rust::xxh3::xxh3_64_with_seed(original.as_bytes(), !key);
                    }
                }
            }
            Piece::Agent(index) => {
                out.extend_from_slice(agent_id(&fx.agents[*index].id, plan, pass).as_bytes());
            }
            Piece::Time(ms, _) => {
                let at =
                    Timestamp::from_millisecond(ms + shift_ms).unwrap_or(Timestamp::UNIX_EPOCH);
                out.extend_from_slice(at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string().as_bytes());
            }
        }
    }
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The key of one pass of one session: every id in it is rewritten with it.
fn pass_key(plan: &Plan, pass: usize) -> u64 {
    xxhash_rust::xxh3::xxh3_64(format!("{}/{pass}", plan.session).as_bytes())
}

/// A fixture agent id rewritten for one pass of `plan`'s session: the same length and shape (the
/// hex digits after the last `-`, or the whole id, replaced).
fn agent_id(original: &str, plan: &Plan, pass: usize) -> String {
    let cut = original.rfind('-').map_or(0, |i| i + 1);
    let h = xxhash_rust::xxh3::xxh3_64_with_seed(original.as_bytes(), pass_key(plan, pass));
    let hex = format!("{h:016x}");
    let tail = original.len() - cut;
    format!("{}{}", &original[..cut], &hex[..tail.min(16)])
}

/// A UUID-shaped session id for session `index`.
fn uuid_like(seed: u64, index: usize) -> String {
    let a = xxhash_rust::xxh3::xxh3_64_with_seed(&index.to_le_bytes(), seed);
    let b = xxhash_rust::xxh3::xxh3_64_with_seed(&index.to_le_bytes(), !seed);
    let hex = format!("{a:016x}{b:016x}");
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// The three fixture sessions: the 2.1 one (with its subagent files) first, then the
/// two 1.x ones. Each main file must have a session-id file name.
fn load_fixtures(dir: &Path) -> Result<Vec<Fixture>> {
    let mains = [
        "-home-dev-spotter/ae4a77f8-aedd-4bc1-888f-c94edc91af04.jsonl",
        "-home-ubuntu-Documents-livecd-gen/155c3456-9cd0-4d8f-8db3-d0560ca1851c.jsonl",
        "sample-project/fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl",
    ];
    let mut out = Vec::new();
    for main in mains {
        let path = dir.join(main);
        let session = path
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or("fixture name")?
            .to_string();
        let agents_dir = path.with_extension("").join("subagents");
        let mut agent_files: Vec<PathBuf> = match fs::read_dir(&agents_dir) {
            Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(_) => Vec::new(),
        };
        agent_files.sort();
        let agent_ids: Vec<String> = agent_files
            .iter()
            .filter_map(|p| {
                p.file_stem()?
                    .to_str()?
                    .strip_prefix("agent-")
                    .map(str::to_string)
            })
            .collect();
        let text = fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let lines = cut_lines(&text, &session, &agent_ids);
        let times: Vec<i64> = lines
            .iter()
            .flat_map(|t| t.pieces.iter())
            .filter_map(|p| match p {
                Piece::Time(ms, true) => Some(*ms),
                _ => None,
            })
            .collect();
        let first_ms = *times.iter().min().ok_or("a fixture without timestamps")?;
        let last_ms = *times.iter().max().ok_or("a fixture without timestamps")?;
        let mut agents = Vec::new();
        for (file, id) in agent_files.iter().zip(&agent_ids) {
            let text = fs::read(file)?;
            let index = agents.len();
            let named_at = lines
                .iter()
                .position(|t| {
                    t.pieces
                        .iter()
                        .any(|p| matches!(p, Piece::Agent(i) if *i == index))
                })
                .unwrap_or(lines.len());
            agents.push(AgentFixture {
                id: id.clone(),
                lines: cut_lines(&text, &session, &agent_ids),
                named_at,
            });
        }
        out.push(Fixture {
            lines,
            agents,
            first_ms,
            span_ms: last_ms - first_ms,
        });
    }
    Ok(out)
}

fn cut_lines(text: &[u8], session: &str, agents: &[String]) -> Vec<Template> {
    text.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| cut(l, session, agents))
        .collect()
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Cuts one line into literal bytes and the ids and times to rewrite.
fn cut(line: &[u8], session: &str, agents: &[String]) -> Template {
    let mut pieces = Vec::new();
    let mut literal = Vec::new();
    let mut i = 0;
    while i < line.len() {
        let boundary = i == 0 || !is_word(line[i - 1]);
        let found = if boundary {
            match_piece(&line[i..], session, agents)
        } else {
            None
        };
        match found {
            Some((mut piece, len)) => {
                if let Piece::Time(_, own) = &mut piece {
                    *own = literal.ends_with(br#""timestamp":""#);
                }
                if !literal.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                }
                pieces.push(piece);
                i += len;
            }
            None => {
                literal.push(line[i]);
                i += 1;
            }
        }
    }
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    Template {
        pieces,
        bytes: line.len(),
    }
}

fn match_piece(rest: &[u8], session: &str, agents: &[String]) -> Option<(Piece, usize)> {
    let ends_word = |len: usize| rest.get(len).is_none_or(|&b| !is_word(b));
    if rest.len() >= 36 && is_uuid(&rest[..36]) && ends_word(36) {
        let text = std::str::from_utf8(&rest[..36]).ok()?;
        let piece = if text == session {
            Piece::Session
        } else {
            Piece::Uuid(text.to_string())
        };
        return Some((piece, 36));
    }
    for prefix in ["msg_", "req_", "toolu_", "srvtoolu_"] {
        if rest.starts_with(prefix.as_bytes()) {
            let len = prefix.len()
                + rest[prefix.len()..]
                    .iter()
                    .take_while(|b| b.is_ascii_alphanumeric())
                    .count();
            if len >= prefix.len() + 12 && ends_word(len) {
                let text = std::str::from_utf8(&rest[..len]).ok()?;
                return Some((Piece::Token(text.to_string()), len));
            }
        }
    }
    for (index, agent) in agents.iter().enumerate() {
        if rest.starts_with(agent.as_bytes()) && ends_word(agent.len()) {
            return Some((Piece::Agent(index), agent.len()));
        }
    }
    if let Some(ms) = timestamp_ms(rest) {
        return Some((Piece::Time(ms, false), 24));
    }
    None
}

fn is_uuid(s: &[u8]) -> bool {
    s.iter().enumerate().all(|(i, &b)| match i {
        8 | 13 | 18 | 23 => b == b'-',
        _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
    })
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` at the start of `s`, as Unix milliseconds.
fn timestamp_ms(s: &[u8]) -> Option<i64> {
    const SHAPE: &[u8; 24] = b"dddd-dd-ddTdd:dd:dd.dddZ";
    if s.len() < 24 {
        return None;
    }
    let fits = SHAPE.iter().zip(s).all(|(&want, &b)| {
        if want == b'd' {
            b.is_ascii_digit()
        } else {
            want == b
        }
    });
    if !fits {
        return None;
    }
    let text = std::str::from_utf8(&s[..24]).ok()?;
    Some(text.parse::<Timestamp>().ok()?.as_millisecond())
}

/// SplitMix64: small, seeded, and the same everywhere.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    /// A uniform draw in (0, 1).
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// A standard normal draw (Box-Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit(), self.unit());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_times_are_cut_out_and_rewritten_per_pass() {
        let session = "ae4a77f8-aedd-4bc1-888f-c94edc91af04";
        let line = br#"{"sessionId":"ae4a77f8-aedd-4bc1-888f-c94edc91af04","uuid":"f1eb9ac5-1928-4a73-b605-aaf2f3a24db9","agentId":"aac57f5","message":{"id":"msg_01XnP8V9m3LNbxPnXbuinNKs"},"requestId":"req_011CSUkazv75sy5355j5ko7H","timestamp":"2026-02-12T14:12:32.522Z"}"#;
        let agents = vec!["aac57f5".to_string()];
        let template = cut(line, session, &agents);
        let fx = Fixture {
            lines: vec![template.clone()],
            agents: vec![AgentFixture {
                id: "aac57f5".into(),
                lines: Vec::new(),
                named_at: 0,
            }],
            first_ms: 0,
            span_ms: 0,
        };
        let plan = Plan {
            index: 0,
            fixture: 0,
            project: 0,
            session: uuid_like(7, 0),
            lines: 1,
            shift_ms: 86_400_000,
        };
        let mut a = Vec::new();
        let mut b = Vec::new();
        render(&template, &fx, &plan, 0, plan.shift_ms, &mut a);
        render(&template, &fx, &plan, 1, plan.shift_ms, &mut b);
        let a: serde_json::Value = serde_json::from_slice(&a).expect("a rendered line is JSON");
        let b: serde_json::Value = serde_json::from_slice(&b).expect("a rendered line is JSON");
        assert_eq!(a["sessionId"], plan.session.as_str());
        assert_eq!(a["sessionId"], b["sessionId"], "one session id per file");
        assert_eq!(a["timestamp"], "2026-02-13T14:12:32.522Z");
        let msg = a["message"]["id"].as_str().expect("message id");
        assert!(msg.starts_with("msg_") && msg.len() == 28, "{msg}");
        assert_ne!(msg, "msg_01XnP8V9m3LNbxPnXbuinNKs");
        assert_ne!(a["message"]["id"], b["message"]["id"], "passes differ");
        assert_ne!(a["uuid"], b["uuid"]);
        assert_ne!(
            a["agentId"], b["agentId"],
            "each pass has its own subagents"
        );
        assert_eq!(a["agentId"], agent_id("aac57f5", &plan, 0).as_str());
        assert_eq!(a["agentId"].as_str().map(str::len), Some(7));
        // The same pass renders the same bytes.
        let mut again = Vec::new();
        render(&template, &fx, &plan, 0, plan.shift_ms, &mut again);
        let again: serde_json::Value = serde_json::from_slice(&again).expect("JSON");
        assert_eq!(a, again);
    }
}
