//! The command line, as clap parses it. Nothing here does any work.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// vibes: one event log for AI coding agents.
///
/// Ingests Claude Code sessions and bd issues into a durable, replayable log on this
/// machine, and reads it back: tail, stats, topics.
#[derive(Debug, Parser)]
#[command(
    name = "vibes",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Config file [default: <config dir>/vibes/config.toml]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Where the log lives (overrides `data_dir`)
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Log backend (overrides `backend`): memory, file or iggy
    #[arg(long, global = true, value_name = "BACKEND")]
    pub backend: Option<String>,

    /// More log output on stderr (-v debug, -vv trace); RUST_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors on stderr
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// When to colour output
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

/// When to write ANSI colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set
    Auto,
    /// Always
    Always,
    /// Never
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Store events from a source
    #[command(subcommand)]
    Ingest(IngestCommand),
    /// Append taxonomy events given as JSON lines
    Emit(EmitArgs),
    /// Print stored events
    Tail(TailArgs),
    /// Per-session statistics: model, turns, tools, errors, cost, outcome
    Stats(StatsArgs),
    /// Claude API calls, tokens and cost per day, week, month, session or 5-hour block
    Usage(UsageArgs),
    /// Failures new to your agents, failures that keep coming back (capability gaps),
    /// and what fixed them elsewhere
    #[command(subcommand)]
    Groove(GrooveCommand),
    /// AI coders (agent sessions, their subagents, supervised runs): status, model,
    /// elapsed, turns, tool calls, errors, cost and burn rate
    Coders(CodersArgs),
    /// A live terminal dashboard: coders, the event stream, failures with their
    /// fingerprints, alerts and capability gaps (`?` in it lists the keys)
    Top(TopArgs),
    /// Topics, partitions, record counts, bytes on disk, consumer groups and their lag
    Topics,
    /// Check the data directory, the config and the stored log
    Doctor(DoctorArgs),
    /// Run the plugins until interrupted (Ctrl-C or SIGTERM), following new events live
    Serve(ServeArgs),
    /// Every plugin with its state, lag, outputs and dead letters
    Plugins(PluginsArgs),
    /// Answer a plugin's query from the stored log (`vibes plugin sessions stats`)
    Plugin(PluginArgs),
    /// Inspect the configuration
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run and inspect the managed iggy-server (for `backend = "iggy"`)
    #[command(subcommand)]
    Iggy(IggyCommand),
    /// Serve the event history and the plugins' findings to AI agents over the Model
    /// Context Protocol (stdio, or streamable HTTP with --http)
    Mcp(McpArgs),
    /// Run an agent (`claude -p --output-format stream-json ...`) under supervision,
    /// recording its stream-json, its process tree's resources and how it ended
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A name for the run, stored on its run.start
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Stop the agent when its process tree's resident memory passes this size (512MiB,
    /// 2GiB, bytes)
    #[arg(long, value_name = "SIZE")]
    pub max_rss: Option<String>,

    /// Stop the agent when its API calls, priced as they arrive, cost more than this
    /// many USD
    #[arg(long, value_name = "USD")]
    pub max_cost: Option<f64>,

    /// Stop the agent when it has run this long (90s, 10m, 1h30m)
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<humantime::Duration>,

    /// Time between SIGTERM and SIGKILL when vibes stops the agent
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub stop_grace: humantime::Duration,

    /// Price file to use over the built-in prices (overrides `usage.prices`)
    #[arg(long, value_name = "FILE")]
    pub prices: Option<PathBuf>,

    /// The agent's program and its arguments, after `--`
    #[arg(
        value_name = "COMMAND",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct McpArgs {
    /// Serve streamable HTTP at this address (path /mcp) instead of stdio; only a
    /// loopback address unless a token is configured (<data dir>/mcp-token)
    #[arg(long, value_name = "ADDR")]
    pub http: Option<std::net::SocketAddr>,

    /// Write a new random token to <data dir>/mcp-token (mode 0600) first; HTTP
    /// clients must then send `Authorization: Bearer <token>`
    #[arg(long)]
    pub new_token: bool,
}

#[derive(Debug, Subcommand)]
pub enum IggyCommand {
    /// Run the managed iggy-server in the foreground until interrupted (Ctrl-C or
    /// SIGTERM), restarting it if it crashes or hangs
    Start,
    /// Stop the managed iggy-server that `vibes iggy start` runs
    Stop,
    /// Whether the managed server runs, where, and whether it answers
    Status,
}

#[derive(Debug, Subcommand)]
pub enum IngestCommand {
    /// A Claude Code stream-json recording (`claude -p --output-format stream-json`)
    Claude(IngestClaudeArgs),
    /// A bd issue file (`.beads/issues.jsonl`), once or following changes
    Bd(IngestBdArgs),
    /// Claude Code's session transcripts (`~/.claude/projects`), once or following
    /// changes; each run reads only what was written since the last
    ClaudeProjects(IngestProjectsArgs),
}

#[derive(Debug, Args)]
pub struct IngestProjectsArgs {
    /// Projects folders, or single projects' folders [default: ~/.claude/projects and
    /// <each path in CLAUDE_CONFIG_DIR>/projects]
    #[arg(value_name = "DIR")]
    pub dirs: Vec<PathBuf>,

    /// Keep watching every project folder (new ones and new subagent folders too) and
    /// store new lines until interrupted (Ctrl-C or SIGTERM)
    #[arg(short, long)]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub struct IngestClaudeArgs {
    /// The recording; `-` or nothing reads stdin
    #[arg(value_name = "FILE|-")]
    pub input: Option<PathBuf>,

    /// A name stored on every event of the session (`session_name`)
    #[arg(long, value_name = "NAME")]
    pub session_name: Option<String>,

    /// Read the file from its first byte again, ignoring where the last run stopped
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct IngestBdArgs {
    /// The issue file, its `.beads` directory, or the project directory holding `.beads`
    #[arg(value_name = "PATH")]
    pub path: PathBuf,

    /// Keep watching and store every change until interrupted
    #[arg(short, long)]
    pub follow: bool,

    /// Store a bead.created event for every issue already in the file
    #[arg(long)]
    pub replay: bool,
}

#[derive(Debug, Args)]
pub struct EmitArgs {
    /// JSON lines, one event each; `-` or nothing reads stdin
    #[arg(value_name = "FILE|-")]
    pub input: Option<PathBuf>,

    /// When an event counts as stored (overrides `log.durability`): always, interval, never
    #[arg(long, value_name = "LEVEL")]
    pub durability: Option<String>,

    /// Print `<topic> <partition> <offset>` on stdout for each event once stored
    #[arg(long)]
    pub print_acks: bool,
}

#[derive(Debug, Args)]
pub struct TailArgs {
    /// Keep printing events as they are appended, also by other processes
    #[arg(short, long)]
    pub follow: bool,

    /// Where to start: beginning, end, an offset, or an RFC 3339 time
    /// [default: beginning, or the group's last commit with --group]
    #[arg(long, value_name = "WHERE")]
    pub from: Option<String>,

    /// Read this topic (`stream/topic`, e.g. a plugin's `groove.openworld/gaps`)
    /// instead of the event topic
    #[arg(long, value_name = "STREAM/TOPIC")]
    pub topic: Option<String>,

    /// Only event types matching this glob (`claude.*`, `bead.status`); repeatable
    #[arg(long = "type", value_name = "GLOB")]
    pub types: Vec<String>,

    /// Only events from this source (claude, bd, vibes, ...); repeatable
    #[arg(long = "source", value_name = "SOURCE")]
    pub sources: Vec<String>,

    /// Only events of this session (or bead) id
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,

    /// Stop after printing this many events
    #[arg(short = 'n', long, value_name = "N")]
    pub limit: Option<u64>,

    /// One canonical JSON event per line
    #[arg(long)]
    pub json: bool,

    /// Read as this consumer group and commit as it goes, so the next run resumes
    #[arg(long, value_name = "NAME")]
    pub group: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Only this session
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,

    /// JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UsageArgs {
    /// The report
    #[arg(value_enum)]
    pub report: UsageReport,

    /// First day counted, YYYY-MM-DD or YYYYMMDD (in --timezone)
    #[arg(long, value_name = "DAY")]
    pub since: Option<String>,

    /// Last day counted, YYYY-MM-DD or YYYYMMDD (in --timezone)
    #[arg(long, value_name = "DAY")]
    pub until: Option<String>,

    /// Time zone of days, weeks, months and times shown: an IANA name
    /// (Europe/Berlin), UTC or an offset (+05:30) [default: this machine's]
    #[arg(long, value_name = "TZ", allow_hyphen_values = true)]
    pub timezone: Option<String>,

    /// Only this project: its path, its last path component, or its folder under
    /// ~/.claude/projects (-home-dev-app)
    #[arg(long, value_name = "PROJECT", allow_hyphen_values = true)]
    pub project: Option<String>,

    /// Each row per model as well
    #[arg(long)]
    pub breakdown: bool,

    /// JSON instead of a table
    #[arg(long)]
    pub json: bool,

    /// Price file to use over the built-in prices (overrides `usage.prices`)
    #[arg(long, value_name = "FILE")]
    pub prices: Option<PathBuf>,

    /// Judge which block is active at this RFC 3339 time instead of now
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,
}

/// The reports of `vibes usage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UsageReport {
    /// Per day
    Daily,
    /// Per week, from Monday
    Weekly,
    /// Per month
    Monthly,
    /// Per session
    Session,
    /// Per 5-hour billing block, with the active block's burn rate and projection
    Blocks,
}

#[derive(Debug, Args)]
pub struct CodersArgs {
    #[command(subcommand)]
    pub command: Option<CodersCommand>,
    /// Ended coders too
    #[arg(long)]
    pub all: bool,
    /// JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    /// Frames drawn per second (1 to 30)
    #[arg(long, default_value_t = 4)]
    pub fps: u32,
}

#[derive(Debug, Subcommand)]
pub enum CodersCommand {
    /// The status table, refreshed live until interrupted: redrawn every interval on
    /// a terminal, printed again whenever it changes otherwise
    Watch(CodersWatchArgs),
}

#[derive(Debug, Args)]
pub struct CodersWatchArgs {
    /// Ended coders too
    #[arg(long)]
    pub all: bool,
    /// Seconds between refreshes
    #[arg(long, default_value_t = 1.0)]
    pub interval: f64,
    /// Stop after this many refreshes (default: until interrupted)
    #[arg(long)]
    pub count: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum GrooveCommand {
    /// Open capability gaps, worst first
    Gaps(GrooveGapsArgs),
    /// One gap: its cluster, examples and ranked solutions
    Gap(GrooveGapArgs),
    /// Failures first seen (since a time)
    Novelty(GrooveNoveltyArgs),
    /// The settings.json rules and CLAUDE.md notes of the open gaps, ready to paste
    Suggest(GrooveJsonArgs),
    /// Record that you applied a solution of a gap (it is in progress; feedback follows)
    Apply(GrooveDecisionArgs),
    /// Record that a gap is not worth fixing (it stays quiet until reopened)
    Dismiss(GrooveDecisionArgs),
    /// Record that a gap is fixed
    Resolve(GrooveDecisionArgs),
    /// Record that a gap is not fixed after all
    Reopen(GrooveDecisionArgs),
}

#[derive(Debug, Args)]
pub struct GrooveJsonArgs {
    /// JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GrooveGapsArgs {
    /// Resolved and dismissed gaps too
    #[arg(long)]
    pub all: bool,

    /// JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GrooveGapArgs {
    /// The gap id (`g-...`, see `vibes groove gaps`)
    #[arg(value_name = "ID")]
    pub id: String,

    /// JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GrooveNoveltyArgs {
    /// Only failures first seen at or after this RFC 3339 time, or this long ago (`2h`)
    #[arg(long, value_name = "TIME|DURATION")]
    pub since: Option<String>,

    /// JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GrooveDecisionArgs {
    /// The gap id (`g-...`)
    #[arg(value_name = "ID")]
    pub id: String,

    /// The solution applied (`s-...`; apply only) [default: the first ranked]
    #[arg(long, value_name = "SID")]
    pub solution: Option<String>,

    /// The time of the decision, RFC 3339 [default: now]
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Move damaged batches to quarantine files beside their segments (every intact
    /// record stays readable at its offset) and reset damaged consumer commits to 0
    #[arg(long)]
    pub repair: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Only these plugins, comma-separated [default: all compiled in]
    #[arg(long, value_name = "NAMES")]
    pub plugins: Option<String>,

    /// Serve the HTTP API and web page on this address (port 0: any free one), or
    /// `off`. An address other than loopback needs the token in <data dir>/http.token
    #[arg(long, value_name = "ADDR|off", default_value = "127.0.0.1:7700")]
    pub http: String,
}

#[derive(Debug, Args)]
pub struct PluginsArgs {
    /// JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PluginArgs {
    /// The plugin (see `vibes plugins`)
    #[arg(value_name = "NAME")]
    pub name: String,

    /// The query (an unknown one lists those it answers)
    #[arg(value_name = "QUERY")]
    pub query: String,

    /// Arguments: values in the query's order, or name=value
    #[arg(value_name = "ARGS")]
    pub args: Vec<String>,

    /// One line of JSON instead of indented JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the merged config and where each value came from
    Show,
    /// Print the path of the config file in use
    Path,
}
