//! Fingerprints of failing tool calls: the tool, the command head, the error kind and
//! the error's telling line, normalised so that the same failure seen twice gives the
//! same fingerprint.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids;

/// How much of a result is looked at. A bigger result is summarised: only its first
/// `SCAN_BYTES` (cut at a character boundary) are classified and searched for the
/// telling line.
pub const SCAN_BYTES: usize = 16 * 1024;
/// The longest telling line kept, in characters.
pub const LINE_CHARS: usize = 160;
/// The longest command head kept, in characters.
pub const HEAD_CHARS: usize = 64;

/// What kind of failure a tool result reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The person has not allowed the call (Claude Code's permission prompt).
    PermissionDenied,
    /// An edit whose old and new strings are the same.
    NoOpEdit,
    /// An edit whose old string is not in the file (or the file changed since read).
    EditMismatch,
    /// A file or directory that does not exist.
    FileNotFound,
    /// A program that is not installed.
    CommandNotFound,
    /// A build that does not compile.
    CompileError,
    /// Tests that fail.
    TestFailure,
    /// A linter that complains.
    LintError,
    /// A call that ran out of time.
    Timeout,
    /// A call the person or Claude Code interrupted: never a gap.
    Interrupted,
    /// Connection, DNS, HTTP or rate-limit trouble.
    Network,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// Its name, as events and queries spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::NoOpEdit => "no_op_edit",
            ErrorKind::EditMismatch => "edit_mismatch",
            ErrorKind::FileNotFound => "file_not_found",
            ErrorKind::CommandNotFound => "command_not_found",
            ErrorKind::CompileError => "compile_error",
            ErrorKind::TestFailure => "test_failure",
            ErrorKind::LintError => "lint_error",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Interrupted => "interrupted",
            ErrorKind::Network => "network",
            ErrorKind::Other => "other",
        }
    }

    /// Whether a cluster of this kind may open a capability gap (interruptions are the
    /// person's doing, not a missing capability).
    pub fn opens_gaps(self) -> bool {
        self != ErrorKind::Interrupted
    }
}

/// What identifies one failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// `f-` and 16 hex digits: a stable hash of the fields below.
    pub id: String,
    /// The tool (`Bash`, `Edit`, ...).
    pub tool: String,
    /// The command head for shell tools (`make lint-fix`, `cargo test`), else empty.
    pub head: String,
    /// The error kind.
    pub kind: ErrorKind,
    /// The telling line, normalised.
    pub line: String,
}

/// Whether `tool` runs shell commands.
pub fn is_shell(tool: &str) -> bool {
    tool == "Bash" || tool.to_ascii_lowercase().contains("shell")
}

/// Whether `tool` changes files.
pub fn is_edit(tool: &str) -> bool {
    matches!(tool, "Edit" | "MultiEdit" | "Write" | "NotebookEdit")
}

/// The command head of a call of `tool` with `input`: for shell tools the program and,
/// for programs that take a subcommand, the subcommand (`make lint-fix`, `cargo test`,
/// `mkdir`), after leading `cd X &&`, environment assignments, `sudo`, `env` and `time`;
/// empty for other tools or when there is no command.
pub fn command_head(tool: &str, input: &Value) -> String {
    if !is_shell(tool) {
        return String::new();
    }
    input
        .get("command")
        .and_then(Value::as_str)
        .map(head_of)
        .unwrap_or_default()
}

/// Programs whose first bare argument names what they do.
const SUBCOMMANDS: [&str; 22] = [
    "make",
    "cargo",
    "git",
    "go",
    "npm",
    "pnpm",
    "yarn",
    "bun",
    "npx",
    "just",
    "docker",
    "kubectl",
    "gh",
    "uv",
    "pip",
    "pip3",
    "poetry",
    "mix",
    "dotnet",
    "bundle",
    "rake",
    "terraform",
];

/// [`command_head`] of one shell command line.
pub fn head_of(command: &str) -> String {
    let first_line = command.lines().next().unwrap_or("");
    // Skip leading `cd X &&` (or `cd X;`) segments.
    let mut rest = first_line.trim();
    while let Some(after) = rest.strip_prefix("cd ") {
        match after.find("&&").or_else(|| after.find(';')) {
            Some(at) => {
                let sep = if after[at..].starts_with("&&") { 2 } else { 1 };
                rest = after[at + sep..].trim_start();
            }
            None => return "cd".to_owned(),
        }
    }
    // The body of a shell loop or condition: `for x in a b; do cargo test; done`.
    if ["for ", "while ", "until ", "if "]
        .iter()
        .any(|k| rest.starts_with(k))
        && let Some(at) = rest.find(" do ").or_else(|| rest.find(" then "))
    {
        let body = &rest[at..];
        let skip = if body.starts_with(" do ") { 4 } else { 6 };
        rest = body[skip..].trim_start();
    }
    let mut words = rest
        .split(|c: char| c.is_whitespace())
        .filter(|w| !w.is_empty())
        .take_while(|w| !matches!(*w, "&&" | "||" | "|" | ";"))
        .peekable();
    // Environment assignments and wrappers.
    while let Some(word) = words.peek() {
        let assignment = word
            .split_once('=')
            .is_some_and(|(name, _)| !name.is_empty() && name.bytes().all(is_name_byte));
        let wrapper = matches!(*word, "sudo" | "env" | "time" | "nohup" | "command");
        let wrapper_flag = word.starts_with('-') && word.len() <= 3;
        if assignment || wrapper || wrapper_flag {
            words.next();
        } else {
            break;
        }
    }
    let Some(program) = words.next() else {
        return String::new();
    };
    let program = program.trim_end_matches(';');
    let program = program.rsplit('/').next().unwrap_or(program);
    let mut head = program.to_owned();
    if SUBCOMMANDS.contains(&program)
        && let Some(sub) = words.find(|w| !w.starts_with('-'))
    {
        head.push(' ');
        head.push_str(sub.trim_end_matches(';'));
    }
    cut_chars(&head, HEAD_CHARS).to_owned()
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The first `max` characters of `s` (never splitting one).
pub fn cut_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

/// The first `max` bytes of `s`, shortened to a character boundary.
pub fn cut_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut at = max;
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    &s[..at]
}

/// The fingerprint of a failing call of `tool` (with command head `head`) whose result
/// text is `content`.
pub fn fingerprint(tool: &str, head: &str, content: &str) -> Fingerprint {
    let (kind, line) = if content.starts_with("[image ") {
        (ErrorKind::Other, "[image]".to_owned())
    } else {
        let scanned = cut_bytes(content, SCAN_BYTES);
        // Most results have no escape sequence to strip.
        let text = if scanned.contains('\u{1b}') {
            Cow::Owned(strip_ansi(scanned))
        } else {
            Cow::Borrowed(scanned)
        };
        (classify(head, &text), telling_line(&text))
    };
    let id = ids::fingerprint_id(tool, head, kind, &line);
    Fingerprint {
        id,
        tool: tool.to_owned(),
        head: head.to_owned(),
        kind,
        line,
    }
}

/// The error kind of a result text (ANSI already stripped) of a call with `head`.
pub fn classify(head: &str, text: &str) -> ErrorKind {
    let lower = lowercase(text);
    let has = |needles: &[&str]| needles.iter().any(|n| lower.contains(n));
    if has(&[
        "requested permissions to use",
        "haven't granted",
        "permission denied",
        "operation not permitted",
        "eacces",
    ]) {
        return ErrorKind::PermissionDenied;
    }
    if has(&["no changes to make"]) {
        return ErrorKind::NoOpEdit;
    }
    if has(&[
        "string to replace not found",
        "old_string not found",
        "matches of the string to replace",
        "file has not been read yet",
        "file has been modified since read",
    ]) {
        return ErrorKind::EditMismatch;
    }
    if has(&[
        "command not found",
        "executable file not found",
        "is not recognized as",
    ]) {
        return ErrorKind::CommandNotFound;
    }
    if has(&[
        "interrupted by user",
        "request interrupted",
        "was interrupted",
    ]) {
        return ErrorKind::Interrupted;
    }
    if has(&["timed out", "timeout", "deadline exceeded"]) {
        return ErrorKind::Timeout;
    }
    if has(&[
        "connection refused",
        "connection reset",
        "could not resolve host",
        "network is unreachable",
        "rate limit",
        "econnrefused",
        "enotfound",
    ]) {
        return ErrorKind::Network;
    }
    if has(&[
        "no such file or directory",
        "file does not exist",
        "does not exist",
        "enoent",
    ]) {
        return ErrorKind::FileNotFound;
    }
    let head = lowercase(head);
    if [
        "lint", "clippy", "eslint", "ruff", "flake8", "golangci", "fmt",
    ]
    .iter()
    .any(|h| head.contains(h))
    {
        return ErrorKind::LintError;
    }
    if head.contains("test") || head == "pytest" || head == "jest" || head == "vitest" {
        return ErrorKind::TestFailure;
    }
    if ["build", "check", "compile", "tsc", "javac", "rustc", "gcc"]
        .iter()
        .any(|h| head.contains(h))
    {
        return ErrorKind::CompileError;
    }
    if has(&[
        "error[e",
        "undefined:",
        "cannot find",
        "syntax error",
        "syntaxerror",
        "does not compile",
        "compilation failed",
    ]) {
        return ErrorKind::CompileError;
    }
    if has(&[
        "--- fail",
        "test failed",
        "tests failed",
        "panicked at",
        "assertionerror",
    ]) {
        return ErrorKind::TestFailure;
    }
    if has(&["lint", "warning:"]) {
        return ErrorKind::LintError;
    }
    ErrorKind::Other
}

/// Words that make a line tell what went wrong.
const TELLING: [&str; 16] = [
    "error",
    "denied",
    "not found",
    "no such",
    "undefined",
    "cannot",
    "can't",
    "failed",
    "fail",
    "panic",
    "too many",
    "import cycle",
    "exception",
    "refused",
    "timed out",
    "no changes",
];

/// The line that says what went wrong, normalised: the first line holding a telling
/// word that is not a wrapper's (`make: *** [x] Error 1`) when there is one, else the
/// first non-empty line.
pub fn telling_line(text: &str) -> String {
    normalise(&telling_line_as_is(text))
}

/// The line [`telling_line`] picks, as it is in `text` (not normalised), cut to
/// `LINE_CHARS * 4` characters: what a person reads.
pub fn telling_line_as_is(text: &str) -> String {
    let stripped = strip_tags(text);
    let lines: Vec<&str> = stripped
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let telling = |l: &&&str| {
        let lower = lowercase(l);
        TELLING.iter().any(|w| lower.contains(w))
    };
    let wrapper = |l: &&&str| l.starts_with("make: ***") || l.starts_with("make[");
    // Summaries of what went well mention `failed` too.
    let benign = |l: &&&str| {
        let lower = lowercase(l);
        ["result: ok", " 0 failed", " 0 errors"]
            .iter()
            .any(|w| lower.contains(w))
    };
    let chosen = lines
        .iter()
        .find(|l| telling(l) && !wrapper(l) && !benign(l))
        .or_else(|| lines.iter().find(telling))
        .or_else(|| lines.first());
    chosen.map_or_else(String::new, |line| {
        cut_chars(line, LINE_CHARS * 4).to_owned()
    })
}

/// `text` in lower case, as [`str::to_lowercase`] gives it; ASCII text (most tool
/// output) the cheap way, with the same result.
fn lowercase(text: &str) -> String {
    if text.is_ascii() {
        text.to_ascii_lowercase()
    } else {
        text.to_lowercase()
    }
}

/// `text` without ANSI escape sequences.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // Parameters and intermediates up to the final byte (@ to ~).
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// `text` without wrapper tags such as `<tool_use_error>` and `</system-reminder>`.
fn strip_tags(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('<') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let name = after.strip_prefix('/').unwrap_or(after);
        let len = name
            .bytes()
            .take_while(|b| b.is_ascii_lowercase() || *b == b'_' || *b == b'-')
            .count();
        if len > 0 && name[len..].starts_with('>') {
            let skip = (after.len() - name.len()) + len + 1;
            rest = &after[skip..];
        } else {
            out.push('<');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// A line with what varies between occurrences replaced by placeholders: quoted
/// strings `<str>`, paths `<path>`, UUIDs `<uuid>`, hex `<hex>`, numbers `<n>`; runs of
/// whitespace become one space; cut to [`LINE_CHARS`] characters.
pub fn normalise(line: &str) -> String {
    let mut out = String::with_capacity(line.len().min(LINE_CHARS * 2));
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    let mut space = false;
    while i < chars.len() && out.chars().count() < LINE_CHARS {
        let c = chars[i];
        if c.is_whitespace() {
            space = true;
            i += 1;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        if matches!(c, '\'' | '"' | '`')
            && let Some(len) = chars[i + 1..].iter().take(200).position(|d| *d == c)
        {
            out.push_str("<str>");
            i += len + 2;
            continue;
        }
        if is_token_char(c) {
            let start = i;
            while i < chars.len() && is_token_char(chars[i]) {
                i += 1;
            }
            let token: String = chars[start..i].iter().collect();
            out.push_str(&placeholder(&token));
            continue;
        }
        out.push(c);
        i += 1;
    }
    cut_chars(&out, LINE_CHARS).trim_end().to_owned()
}

fn is_token_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '/' | '~' | '-')
}

fn placeholder(token: &str) -> String {
    let trimmed = token.trim_end_matches('.');
    let tail = &token[trimmed.len()..];
    let word = if trimmed.contains('/') && trimmed.len() > 1 {
        "<path>"
    } else if is_uuid(trimmed) {
        "<uuid>"
    } else if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        "<n>"
    } else if is_hex(trimmed) {
        "<hex>"
    } else {
        return token.to_owned();
    };
    format!("{word}{tail}")
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

fn is_hex(s: &str) -> bool {
    if let Some(digits) = s.strip_prefix("0x") {
        return !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_hexdigit());
    }
    s.len() >= 8
        && s.bytes().all(|b| b.is_ascii_hexdigit())
        && s.bytes().any(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lowercase_is_to_lowercase_for_ascii_and_other_text() {
        for text in [
            "Error: EACCES",
            "ÉCHEC: Permission Denied",
            "\u{212a}elvin",
            "İstanbul",
            "",
        ] {
            assert_eq!(lowercase(text), text.to_lowercase(), "{text:?}");
        }
    }

    #[test]
    fn results_with_and_without_escape_sequences_fingerprint_alike() {
        let plain = fingerprint("Bash", "cargo test", "error: permission denied at /tmp/x");
        let coloured = fingerprint(
            "Bash",
            "cargo test",
            "\u{1b}[31merror\u{1b}[0m: permission denied at /tmp/x",
        );
        assert_eq!(plain, coloured);
        assert_eq!(plain.kind, ErrorKind::PermissionDenied);
    }

    #[test]
    fn heads_strip_cd_env_and_sudo_and_keep_subcommands() {
        let head = |c: &str| command_head("Bash", &json!({ "command": c }));
        assert_eq!(head("cd /a/b && mkdir -p services/jobs"), "mkdir");
        assert_eq!(head("make lint-fix"), "make lint-fix");
        assert_eq!(head("RUST_LOG=debug cargo test -p x"), "cargo test");
        assert_eq!(head("sudo -E apt-get install jq"), "apt-get");
        assert_eq!(head("cd x; cd y && /usr/bin/git --no-pager log"), "git log");
        assert_eq!(head("cd somewhere"), "cd");
        assert_eq!(
            head("for i in $(seq 1 8); do cargo test -q settle; done"),
            "cargo test"
        );
        assert_eq!(head("if [ -f x ]; then make build; fi"), "make build");
        assert_eq!(command_head("Edit", &json!({ "command": "make" })), "");
        assert_eq!(command_head("Bash", &json!({})), "");
    }

    #[test]
    fn kinds_come_from_the_text_then_the_head() {
        assert_eq!(
            classify(
                "mkdir",
                "Claude requested permissions to use Bash, but you haven't granted it yet."
            ),
            ErrorKind::PermissionDenied
        );
        assert_eq!(
            classify(
                "",
                "<tool_use_error>No changes to make: old_string and new_string are exactly the same.</tool_use_error>"
            ),
            ErrorKind::NoOpEdit
        );
        assert_eq!(
            classify("make lint-fix", "make: *** [lint-fix] Error 1"),
            ErrorKind::LintError
        );
        assert_eq!(
            classify("make test", "--- FAIL: TestX"),
            ErrorKind::TestFailure
        );
        assert_eq!(
            classify("jq", "bash: jq: command not found"),
            ErrorKind::CommandNotFound
        );
        assert_eq!(
            classify("", "error[E0425]: cannot find value"),
            ErrorKind::CompileError
        );
        assert_eq!(classify("", "something odd"), ErrorKind::Other);
    }

    #[test]
    fn telling_lines_are_normalised() {
        let text = "make: *** [lint-fix] Error 1\n\ngolines --max-len=120 --write-output .\nservices/agents_test.go:41:17: undefined: NewJobsService\n";
        assert_eq!(
            telling_line(text),
            "services/agents_test.go:<n>:<n>: undefined: NewJobsService"
                .replace("services/agents_test.go", "<path>")
        );
        assert_eq!(
            normalise(
                "open '/tmp/x y' failed at 0xdeadbeef id 123e4567-e89b-12d3-a456-426614174000 after 12.5s"
            ),
            "open <str> failed at <hex> id <uuid> after 12.5s"
        );
        assert_eq!(
            normalise("read /etc/passwd: 3 times"),
            "read <path>: <n> times"
        );
        assert_eq!(strip_ansi("\u{1b}[31merror\u{1b}[0m: x"), "error: x");
        let runs = "test result: ok. 1 passed; 0 failed\nthread 'x' panicked at src/a.rs:142:9:\ntest result: FAILED. 0 passed; 1 failed";
        assert_eq!(
            telling_line(runs),
            "thread <str> panicked at <path>:<n>:<n>:"
        );
    }

    #[test]
    fn images_and_huge_results_are_summarised() {
        let image = fingerprint("Read", "", "[image image/png, 123456 bytes]");
        assert_eq!(image.line, "[image]");
        let huge = format!("error: first\n{}", "é".repeat(1_000_000));
        let fp = fingerprint("Bash", "cargo build", &huge);
        assert_eq!(fp.line, "error: first");
        assert_eq!(fp.kind, ErrorKind::CompileError);
    }
}
