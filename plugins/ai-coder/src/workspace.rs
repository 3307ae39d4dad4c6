//! What a tool call does to the workspace: the file tools (Write, Edit, MultiEdit,
//! NotebookEdit) create or modify a file; a shell command may delete files (`rm`,
//! `unlink`, `git rm`) or sync the workspace (`git commit`, `push`, `pull`, ...).
//! Decided from the call's input when it is made, reported once its result says it
//! succeeded.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a successful call did to the workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    /// A file tool wrote `path`; `size` in bytes where the input tells it (Write).
    /// Whether it was created is known only from the result.
    Write {
        /// The tool.
        tool: String,
        /// The file.
        path: String,
        /// The file's size after the write, when known.
        size: Option<u64>,
        /// An edit (never creates a file); false for Write.
        edit: bool,
    },
    /// A shell command: the paths it deletes and the git syncs it runs.
    Shell {
        /// Paths named by `rm`/`unlink`/`git rm` (as written, globs included).
        deleted: Vec<String>,
        /// Git sync operations (`git commit`, `git push`, ...), with their command.
        syncs: Vec<(String, String)>,
    },
}

/// The most paths or syncs one command is taken to report.
const MAX_PER_COMMAND: usize = 64;
/// Commands are cut to this many characters in events.
const COMMAND_CHARS: usize = 200;

/// The git subcommands that sync the workspace with a repository.
const SYNCS: [&str; 13] = [
    "commit",
    "push",
    "pull",
    "fetch",
    "merge",
    "rebase",
    "checkout",
    "switch",
    "reset",
    "stash",
    "clone",
    "cherry-pick",
    "restore",
];

/// The effect of calling `tool` with `input`, if it has one.
pub fn effect_of(tool: &str, input: &Value) -> Option<Effect> {
    let text = |key: &str| input.get(key).and_then(Value::as_str);
    match tool {
        "Write" | "Edit" | "MultiEdit" | "NotebookEdit" => {
            let path = text("file_path").or_else(|| text("notebook_path"))?;
            let size = (tool == "Write")
                .then(|| text("content").map(|c| c.len() as u64))
                .flatten();
            Some(Effect::Write {
                tool: tool.to_owned(),
                path: path.to_owned(),
                size,
                edit: tool != "Write",
            })
        }
        "Bash" => {
            let command = text("command")?;
            let (deleted, syncs) = shell_effects(command);
            (!deleted.is_empty() || !syncs.is_empty()).then_some(Effect::Shell { deleted, syncs })
        }
        _ => None,
    }
}

/// Whether a Write's result says it created the file ("File created successfully at:
/// ..."); otherwise it overwrote one ("The file ... has been updated").
pub fn write_created(result: &str) -> bool {
    result.trim_start().starts_with("File created successfully")
}

/// The paths a shell command deletes and the git syncs it runs.
pub fn shell_effects(command: &str) -> (Vec<String>, Vec<(String, String)>) {
    let mut deleted = Vec::new();
    let mut syncs = Vec::new();
    for segment in segments(command) {
        let words = words(segment);
        let words = skip_prefixes(&words);
        let Some(program) = words.first() else {
            continue;
        };
        let program = program.rsplit('/').next().unwrap_or(program);
        match program {
            "rm" | "unlink" => deleted.extend(operands(&words[1..])),
            "git" => {
                let mut rest = &words[1..];
                while let Some(w) = rest.first() {
                    if w == "-C" || w == "-c" {
                        rest = &rest[rest.len().min(2)..];
                    } else if w.starts_with('-') {
                        rest = &rest[1..];
                    } else {
                        break;
                    }
                }
                match rest.first().map(String::as_str) {
                    Some("rm") => deleted.extend(operands(&rest[1..])),
                    Some(s) if SYNCS.contains(&s) => {
                        syncs.push((format!("git {s}"), cut(segment.trim(), COMMAND_CHARS)));
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    deleted.truncate(MAX_PER_COMMAND);
    syncs.truncate(MAX_PER_COMMAND);
    (deleted, syncs)
}

/// `s` cut to at most `n` characters.
pub fn cut(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((at, _)) => s[..at].to_owned(),
        None => s.to_owned(),
    }
}

/// The simple commands of a command line: split at `&&`, `||`, `;`, `|` and newlines
/// outside quotes.
fn segments(command: &str) -> Vec<&str> {
    let bytes = command.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(b'"') if b == b'\\' => i += 1,
            Some(_) => {}
            None => match b {
                b'\'' | b'"' => quote = Some(b),
                b'\\' => i += 1,
                b';' | b'\n' | b'|' | b'&' => {
                    out.push(&command[start..i]);
                    // `&&` and `||` are one separator.
                    if i + 1 < bytes.len() && bytes[i + 1] == b && b != b';' && b != b'\n' {
                        i += 1;
                    }
                    start = i + 1;
                }
                _ => {}
            },
        }
        i += 1;
    }
    if start < command.len() {
        out.push(&command[start..]);
    }
    out
}

/// The words of a simple command, quotes removed.
fn words(segment: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = segment.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some('"') if c == '\\' => {
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            Some(_) => word.push(c),
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    in_word = true;
                }
                '\\' => {
                    if let Some(n) = chars.next() {
                        word.push(n);
                    }
                    in_word = true;
                }
                c if c.is_whitespace() => {
                    if in_word {
                        out.push(std::mem::take(&mut word));
                        in_word = false;
                    }
                }
                c => {
                    word.push(c);
                    in_word = true;
                }
            },
        }
    }
    if in_word {
        out.push(word);
    }
    out
}

/// The words after `VAR=value` assignments and `sudo`, `env`, `time`, `nohup`,
/// `command`, and a leading `cd DIR` is a command of its own (already split).
fn skip_prefixes(words: &[String]) -> &[String] {
    let mut at = 0;
    while let Some(w) = words.get(at) {
        let assignment = w.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        });
        if assignment || ["sudo", "env", "time", "nohup", "command", "xargs"].contains(&w.as_str())
        {
            at += 1;
        } else {
            break;
        }
    }
    &words[at..]
}

/// The operands of `rm`-like arguments: every word that is not an option, and every
/// word after `--`. Redirections end the list.
fn operands(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut options_done = false;
    for a in args {
        if a.starts_with('>') || a.starts_with('<') || a.starts_with("2>") {
            break;
        }
        if !options_done && a == "--" {
            options_done = true;
        } else if options_done || !a.starts_with('-') {
            out.push(a.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn file_tools_name_their_path_and_writes_their_size() {
        assert_eq!(
            effect_of(
                "Write",
                &json!({"file_path": "/a/b.rs", "content": "héllo"})
            ),
            Some(Effect::Write {
                tool: "Write".into(),
                path: "/a/b.rs".into(),
                size: Some(6),
                edit: false
            })
        );
        assert_eq!(
            effect_of(
                "NotebookEdit",
                &json!({"notebook_path": "/n.ipynb", "new_source": "x"})
            ),
            Some(Effect::Write {
                tool: "NotebookEdit".into(),
                path: "/n.ipynb".into(),
                size: None,
                edit: true
            })
        );
        assert_eq!(effect_of("Edit", &json!({"old_string": "a"})), None);
        assert_eq!(effect_of("Read", &json!({"file_path": "/a"})), None);
        assert!(write_created("File created successfully at: /a/b.rs"));
        assert!(!write_created(
            "The file /a/b.rs has been updated. Here's ..."
        ));
    }

    #[test]
    fn deletions_are_the_operands_of_rm_in_any_part_of_a_command() {
        let (deleted, syncs) = shell_effects(
            "cd /tmp && rm -rf build 'old file.txt' -- -odd; echo 'rm not-me' | sudo rm x.log 2>/dev/null",
        );
        assert_eq!(deleted, ["build", "old file.txt", "-odd", "x.log"]);
        assert!(syncs.is_empty());
        assert_eq!(shell_effects("git rm --cached a.rs").0, ["a.rs"]);
        assert_eq!(shell_effects("/bin/rm a").0, ["a"]);
        assert!(shell_effects("ls -la && grep -r rm .").0.is_empty());
        assert!(shell_effects("rmdir_helper x").0.is_empty());
    }

    #[test]
    fn git_syncs_are_found_with_their_command() {
        let (deleted, syncs) =
            shell_effects("git add -A && git commit -m \"fix: a && b\" && git push origin main");
        assert!(deleted.is_empty());
        assert_eq!(
            syncs,
            [
                ("git commit".into(), "git commit -m \"fix: a && b\"".into()),
                ("git push".into(), "git push origin main".into())
            ]
        );
        assert!(shell_effects("git status && git diff").1.is_empty());
        assert_eq!(shell_effects("git -C repo pull").1[0].0, "git pull");
    }
}
