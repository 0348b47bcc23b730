//! Error messages quote at most a short prefix of what the client sent.
//!
//! Messages from the JSON parser quote the offending value (`invalid type: string "…",
//! expected f64`, ``unknown variant `…` ``); a 900 KB string must not come back as a 900 KB
//! answer (nor fill the logs). Each quoted part longer than [`MAX_QUOTED_CHARS`] keeps its first
//! characters and says how long it was; the whole message is capped at [`MAX_MESSAGE_CHARS`].

/// Characters kept of a quoted value.
pub const MAX_QUOTED_CHARS: usize = 40;

/// Characters kept of a whole message (or a field path).
pub const MAX_MESSAGE_CHARS: usize = 300;

/// `message` with every `"…"` or `` `…` `` part longer than [`MAX_QUOTED_CHARS`] cut to its
/// first characters, then cut to [`MAX_MESSAGE_CHARS`] as a whole.
pub fn shorten(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MAX_MESSAGE_CHARS + 64));
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '"' && c != '`' {
            continue;
        }
        // A quoted part: keep up to the closing quote (a backslash escapes the next character
        // inside double quotes, as in Rust's and JSON's string notation).
        let mut kept = 0usize;
        let mut dropped = 0usize;
        let mut escaped = false;
        let mut closed = false;
        for inner in chars.by_ref() {
            if !escaped && inner == c {
                closed = true;
                break;
            }
            escaped = c == '"' && !escaped && inner == '\\';
            if kept < MAX_QUOTED_CHARS {
                out.push(inner);
                kept += 1;
            } else {
                dropped += 1;
            }
        }
        if dropped > 0 {
            out.push_str(&format!("… ({} characters)", kept + dropped));
        }
        if closed {
            out.push(c);
        }
        if out.chars().count() > MAX_MESSAGE_CHARS {
            break;
        }
    }
    cap(out)
}

/// `text` cut to [`MAX_MESSAGE_CHARS`] characters (for field paths, which may contain a key).
pub fn cap(text: String) -> String {
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_messages_are_unchanged() {
        for message in [
            "invalid type: string \"NaN\", expected f64",
            "unknown variant `gpt`, expected `ml` or `baseline`",
            "must be in [0, 1]",
            "",
        ] {
            assert_eq!(shorten(message), message);
        }
    }

    #[test]
    fn a_long_quoted_value_keeps_a_prefix_and_its_length() {
        let value = "x".repeat(900_000);
        let message = format!("invalid type: string \"{value}\", expected f64");
        let short = shorten(&message);
        assert_eq!(short, format!("invalid type: string \"{}… (900000 characters)\", expected f64", "x".repeat(40)));
        let message = format!("unknown variant `{value}`, expected `ml` or `baseline`");
        assert!(
            shorten(&message).ends_with("… (900000 characters)`, expected `ml` or `baseline`"),
            "{}",
            shorten(&message)
        );
    }

    #[test]
    fn escapes_and_multibyte_characters_are_handled() {
        let value = format!("\\\"{}", "é\\u{1b}".repeat(100));
        let short = shorten(&format!("string \"{value}\", expected f64"));
        assert!(short.ends_with("\", expected f64"), "{short}");
        assert!(short.chars().count() < 120, "{short}");
    }

    #[test]
    fn the_whole_message_is_capped_too() {
        let many = (0..10_000).map(|i| format!("`k{i}`")).collect::<Vec<_>>().join(", ");
        let short = shorten(&format!("expected one of {many}"));
        assert!(short.chars().count() <= MAX_MESSAGE_CHARS + 1, "{}", short.len());
        assert!(cap("y".repeat(10_000)).chars().count() <= MAX_MESSAGE_CHARS + 1);
    }
}
