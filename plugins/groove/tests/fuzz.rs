//! Fingerprinting never panics: arbitrary, multibyte, ANSI-laden, tag-laden and huge
//! result texts and commands from a deterministic generator (no proptest: a fixed
//! xorshift seed, so a failure reproduces).

use serde_json::json;
use vibes_plugin_groove::fingerprint::{HEAD_CHARS, LINE_CHARS, command_head, fingerprint};

struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }

    fn text(&mut self, max_pieces: u64) -> String {
        const PIECES: [&str; 24] = [
            "é",
            "日本",
            "🦀",
            "\u{1b}[31m",
            "\u{1b}[",
            "\u{1b}",
            "<tool_use_error>",
            "</system-reminder>",
            "<",
            ">",
            "'",
            "\"",
            "`",
            "/",
            "0x",
            "deadbeef12",
            "123e4567-e89b-12d3-a456-426614174000",
            "\n",
            "\r\n",
            " ",
            "error: ",
            "permission denied",
            "cd x && ",
            "A=1 ",
        ];
        let n = self.next() % max_pieces;
        let mut s = String::new();
        for _ in 0..n {
            if self.next().is_multiple_of(5) {
                // A raw char from anywhere in the Unicode range.
                let c = char::from_u32((self.next() % 0x10_FFFF) as u32).unwrap_or('?');
                s.push(c);
            } else {
                s.push_str(self.pick(&PIECES));
            }
        }
        s
    }
}

#[test]
fn fingerprinting_arbitrary_text_never_panics_and_stays_bounded() {
    let mut g = Gen(0x9E37_79B9_7F4A_7C15);
    for round in 0..5_000_u32 {
        let command = g.text(30);
        let tool = g.pick(&["Bash", "Edit", "mcp__x__shell", "Read", ""]);
        let head = command_head(tool, &json!({ "command": command }));
        assert!(
            head.chars().count() <= HEAD_CHARS,
            "round {round}: {head:?}"
        );
        let content = g.text(if round.is_multiple_of(100) {
            200_000
        } else {
            300
        });
        let fp = fingerprint(tool, &head, &content);
        assert!(fp.line.chars().count() <= LINE_CHARS, "round {round}");
        assert!(
            !fp.line.contains('\u{1b}'),
            "round {round}: ANSI left in {:?}",
            fp.line
        );
        assert!(fp.id.starts_with("f-") && fp.id.len() == 18);
        // The same input, the same fingerprint.
        assert_eq!(fingerprint(tool, &head, &content), fp);
    }
}

#[test]
fn a_huge_multibyte_result_is_cut_at_a_character_boundary() {
    for pad in 0..4 {
        let text = format!("{}{}", "x".repeat(pad), "日".repeat(20_000));
        let fp = fingerprint("Bash", "make", &text);
        assert!(fp.line.chars().count() <= LINE_CHARS);
    }
    let fp = fingerprint("Bash", "", "");
    assert_eq!(fp.line, "");
    assert_eq!(fp.kind.as_str(), "other");
}
