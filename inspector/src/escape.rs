//! Strings from the traced system, made safe to print.
//!
//! Any process can name itself, its arguments, its files and its cgroups
//! anything, including escape sequences that clear or rewrite the screen of
//! whoever reads inspector's output, newlines that forge whole lines, and
//! Unicode controls that reorder or hide text. Every text output (trace text,
//! timelines, goldens and their diffs, the TUI, messages) passes such strings
//! through here, as strace does:
//!
//! - printable ASCII and printable non-ASCII UTF-8 (`é`) as they are;
//! - `\n`, `\t`, `\r`, and in quoted strings `\\` and `\"`;
//! - other control bytes (C0, DEL) and bytes that are not UTF-8 as `\xNN`;
//! - C1 controls and the characters that reorder or hide text (bidi
//!   overrides and isolates, zero-width marks, line separators) as `\u{NNNN}`.
//!
//! JSON outputs keep strings exact, but what JSON allows raw (C1 controls,
//! the characters that reorder or hide text) is written as `\uXXXX` too, by
//! [`to_json_writer`]: JSON Lines are read in terminals as often as by programs.

use std::borrow::Cow;
use std::fmt::Write as _;

/// A string in double quotes, as strace prints one: `"a\"b\\c\x1b[2J\n"`.
/// Unambiguous: each output reads back to exactly one input.
pub fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    push_escaped(&mut out, s, true);
    out.push('"');
    out
}

/// [`quoted`] for raw bytes, where bytes that are not UTF-8 become `\xNN`.
pub fn quoted_bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() + 2);
    out.push('"');
    push_escaped_bytes(&mut out, b, true);
    out.push('"');
    out
}

/// A field shown without quotes (a comm, a path in brackets, a container id,
/// a command line): controls escaped as in [`quoted`], but `\` and `"` kept,
/// so that text already escaped (a step's detail, a golden's line) passes
/// through unchanged. Borrows when there is nothing to escape.
pub fn bare(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    push_escaped(&mut out, s, false);
    Cow::Owned(out)
}

/// [`bare`] for raw bytes, where bytes that are not UTF-8 become `\xNN`.
pub fn bare_bytes(b: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => bare(s),
        Err(_) => {
            let mut out = String::with_capacity(b.len() + 8);
            push_escaped_bytes(&mut out, b, false);
            Cow::Owned(out)
        }
    }
}

/// A character that must not reach a terminal as it is.
pub fn needs_escape(c: char) -> bool {
    // C0, DEL and C1 are `is_control`.
    c.is_control()
        || matches!(
            c,
            // Arabic letter mark, Mongolian vowel separator.
            '\u{061c}' | '\u{180e}'
            // Zero-width space, (non-)joiner, left-to-right and right-to-left marks.
            | '\u{200b}'..='\u{200f}'
            // Line and paragraph separators; bidi embeddings and overrides.
            | '\u{2028}'..='\u{202e}'
            // Word joiner and invisible operators; bidi isolates; deprecated
            // format characters.
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            // Zero-width no-break space (BOM); interlinear annotation.
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
        )
}

/// serde_json's compact output, with every non-ASCII character that
/// [`needs_escape`] names written as `\uXXXX` (all of them are in the Basic
/// Multilingual Plane): the same strings for a JSON reader, nothing hidden
/// or reordered for a terminal. serde_json already escapes C0 controls.
struct JsonFormatter;

impl serde_json::ser::Formatter for JsonFormatter {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        if fragment.is_ascii() {
            return writer.write_all(fragment.as_bytes());
        }
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if !c.is_ascii() && needs_escape(c) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                write!(writer, "\\u{:04x}", c as u32)?;
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// `serde_json::to_writer` for what inspector prints or saves: compact JSON,
/// with [`JsonFormatter`]'s escapes.
pub fn to_json_writer<W: std::io::Write, T: ?Sized + serde::Serialize>(
    writer: W,
    value: &T,
) -> serde_json::Result<()> {
    let mut serializer = serde_json::Serializer::with_formatter(writer, JsonFormatter);
    value.serialize(&mut serializer)
}

fn push_escaped(out: &mut String, s: &str, quoted: bool) {
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\\' if quoted => out.push_str("\\\\"),
            '"' if quoted => out.push_str("\\\""),
            c if (c as u32) < 0x80 && needs_escape(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
}

fn push_escaped_bytes(out: &mut String, mut b: &[u8], quoted: bool) {
    loop {
        match std::str::from_utf8(b) {
            Ok(s) => return push_escaped(out, s, quoted),
            Err(e) => {
                let (valid, rest) = b.split_at(e.valid_up_to());
                // The first `valid_up_to` bytes are UTF-8 by definition.
                push_escaped(out, std::str::from_utf8(valid).unwrap_or_default(), quoted);
                let bad = e.error_len().unwrap_or(rest.len());
                for byte in &rest[..bad] {
                    let _ = write!(out, "\\x{byte:02x}");
                }
                b = &rest[bad..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_text_is_left_alone() {
        assert_eq!(quoted("/usr/bin/runc"), "\"/usr/bin/runc\"");
        assert_eq!(quoted("café ☕"), "\"café ☕\"");
        assert!(matches!(bare("runc:[1:CHILD]"), Cow::Borrowed(_)));
        assert_eq!(bare("é/x y"), "é/x y");
    }

    #[test]
    fn newlines_tabs_and_returns_read_as_in_c() {
        assert_eq!(quoted("a\nb\tc\rd"), r#""a\nb\tc\rd""#);
        assert_eq!(bare("a\nFAKE"), r"a\nFAKE");
    }

    #[test]
    fn quotes_and_backslashes_are_escaped_only_inside_quotes() {
        assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(bare(r#"a"b\c"#), r#"a"b\c"#);
    }

    #[test]
    fn escape_and_other_control_bytes_are_hex() {
        assert_eq!(quoted("\x1b[2J\nFAKE"), r#""\x1b[2J\nFAKE""#);
        assert_eq!(bare("\x1b[2J"), r"\x1b[2J");
        assert_eq!(bare("\0\x07\x08\x7f"), r"\x00\x07\x08\x7f");
    }

    #[test]
    fn c1_controls_and_bidi_overrides_are_code_points() {
        assert_eq!(bare("a\u{9b}2J"), r"a\u{9b}2J");
        assert_eq!(bare("\u{85}"), r"\u{85}");
        assert_eq!(bare("txt.\u{202e}exe"), r"txt.\u{202e}exe");
        assert_eq!(quoted("\u{2066}x\u{2069}"), r#""\u{2066}x\u{2069}""#);
        assert_eq!(bare("a\u{200b}b\u{feff}"), r"a\u{200b}b\u{feff}");
        assert_eq!(bare("\u{2028}"), r"\u{2028}");
    }

    #[test]
    fn bytes_that_are_not_utf8_are_hex() {
        assert_eq!(quoted_bytes(b"a\xffb\xc3"), r#""a\xffb\xc3""#);
        assert_eq!(bare_bytes(b"\xe2\x80"), r"\xe2\x80");
        assert_eq!(bare_bytes("é\x1b".as_bytes()), r"é\x1b");
        assert_eq!(quoted_bytes(b"ok"), "\"ok\"");
    }

    #[test]
    fn escaped_text_passes_through_bare_unchanged() {
        for s in ["\x1b[2J\nFAKE", "a\"b\\c", "\u{202e}", "x\u{9b}"] {
            let once = quoted(s);
            assert_eq!(bare(&once), once);
            let once = bare(s).into_owned();
            assert_eq!(bare(&once), once);
        }
    }

    /// A fixed-seed xorshift: the same "random" strings every run.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn safe(out: &str) -> Result<(), String> {
        if let Some(b) = out.bytes().find(|&b| b < 0x20 || b == 0x7f) {
            return Err(format!("byte {b:#x} in {out:?}"));
        }
        if let Some(c) = out.chars().find(|&c| needs_escape(c)) {
            return Err(format!("{:?} in {out:?}", c));
        }
        Ok(())
    }

    #[test]
    fn no_string_of_random_bytes_escapes_to_anything_a_terminal_obeys() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        // Bytes from everywhere, and the bytes of the characters that matter.
        let pieces: Vec<Vec<u8>> = [
            "\u{85}", "\u{9b}", "\u{202e}", "\u{2066}", "\u{2069}", "\u{200f}", "\u{feff}", "é",
            "\\", "\"",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        for _ in 0..20_000 {
            let len = (rng.next() % 24) as usize;
            let mut bytes = Vec::new();
            for _ in 0..len {
                let r = rng.next();
                if r.is_multiple_of(4) {
                    bytes.extend(&pieces[(r >> 8) as usize % pieces.len()]);
                } else {
                    bytes.push((r >> 16) as u8);
                }
            }
            safe(&quoted_bytes(&bytes)).unwrap();
            safe(&bare_bytes(&bytes)).unwrap();
            let lossy = String::from_utf8_lossy(&bytes);
            safe(&quoted(&lossy)).unwrap();
            safe(&bare(&lossy)).unwrap();
        }
    }

    #[test]
    fn json_hides_nothing_from_a_terminal_and_reads_back_the_same() {
        let hostile = "a\u{1b}[2J\nb\u{9b}c\u{202e}d\u{feff}e é 😀";
        let mut out = Vec::new();
        to_json_writer(&mut out, &serde_json::json!({ "comm": hostile })).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.chars().any(needs_escape), "{text:?}");
        assert!(text.contains("\\u009b") && text.contains("\\u202e") && text.contains("\\ufeff"));
        assert!(
            text.contains("é 😀"),
            "printable text stays as it is: {text}"
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["comm"], hostile);
    }
}
