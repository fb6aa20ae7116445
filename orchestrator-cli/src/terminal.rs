//! Engine text (errors, results, native states) made safe for a terminal, for human output:
//! an engine, a job's stderr or a payload may hold escape sequences (a terminal title, a
//! cleared screen), newlines that fake further output lines, or bidirectional overrides
//! that reorder what is shown. JSON output escapes control characters already.

use std::borrow::Cow;
use std::fmt::Write;

/// Unicode's bidirectional embedding, override and isolate controls.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

/// `text` on one line with every control character (C0, DEL, C1) and bidirectional control
/// written as its Rust escape (`\n`, `\u{1b}`); unchanged when it holds none.
pub(crate) fn one_line(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() || is_bidi_control(c);
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_char(c) {
            // Writing to a String cannot fail.
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(one_line("plain é ✓"), "plain é ✓");
        assert_eq!(
            one_line("a\nFAKE LINE\r\u{1b}]0;title\u{7}\u{1b}[2J\u{9b}\u{7f}"),
            "a\\nFAKE LINE\\r\\u{1b}]0;title\\u{7}\\u{1b}[2J\\u{9b}\\u{7f}"
        );
        assert_eq!(one_line("x\u{202E}y"), "x\\u{202e}y");
    }
}
