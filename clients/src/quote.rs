//! Quoting and escaping for the three syntaxes values land in: POSIX shell words, TOML, and
//! URL query components.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Whether `c` may stand unquoted in a shell word. Conservative: nothing a POSIX shell, bash
/// or zsh treats specially anywhere in a word (no globs, braces, `~`, `#`, `!`, `^`, quotes,
/// `$`, backslash, whitespace or operators).
fn is_bare_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ':' | '@' | '%' | '+' | ',' | '=')
}

/// Whether `s` may stand as a shell word as it is. `=` may not come first (zsh expands
/// `=cmd` to a path); the empty string needs quotes to be a word at all.
pub(crate) fn is_bare(s: &str) -> bool {
    !s.is_empty() && !s.starts_with('=') && s.chars().all(is_bare_char)
}

/// Quotes `s` as one POSIX shell word.
///
/// A string made only of ASCII letters, digits and `_-./:@%+,=` (not starting with `=`) is
/// returned as it is; anything else, including the empty string, is wrapped in single quotes,
/// with each embedded `'` written as `'\''`. Inside single quotes nothing is special to a
/// POSIX shell, bash (history expansion included) or zsh, so the shell passes exactly `s` as
/// one argument.
///
/// ```
/// use rapport_clients::shell_quote;
/// assert_eq!(shell_quote("https://crm.example.com/api/v1/mcp"), "https://crm.example.com/api/v1/mcp");
/// assert_eq!(shell_quote("it's $HOME"), r"'it'\''s $HOME'");
/// assert_eq!(shell_quote(""), "''");
/// ```
pub fn shell_quote(s: &str) -> String {
    if is_bare(s) {
        return s.to_owned();
    }
    let mut quoted = String::with_capacity(s.len() + 2);
    quoted.push('\'');
    for c in s.chars() {
        if c == '\'' {
            quoted.push_str(r"'\''");
        } else {
            quoted.push(c);
        }
    }
    quoted.push('\'');
    quoted
}

/// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Percent-encodes `s` (as UTF-8) for use as a URL query name or value: safe inside any
/// query, HTML attribute or shell word. Decodes the same with `decodeURIComponent`,
/// `URLSearchParams` (no `+` is left to be read as a space) or `form_urlencoded`.
pub(crate) fn percent_encode(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// `s` as a TOML key: bare when it is one (`A-Za-z0-9_-`, not empty), else a quoted key.
pub(crate) fn toml_key(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        s.to_owned()
    } else {
        toml_string(s)
    }
}

/// `s` as a TOML basic string (double-quoted, escaped per TOML 1.0).
pub(crate) fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() && u32::from(c) < 0x80 => {
                out.push_str(&format!("\\u{:04X}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_words_stay_bare() {
        for s in ["rapport", "rpk_0aZ", "https://h:8080/api/v1/mcp", "a=b", "x@y,z+%20", "-v"] {
            assert_eq!(shell_quote(s), s);
        }
    }

    #[test]
    fn everything_else_is_single_quoted() {
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("=cmd"), "'=cmd'");
        assert_eq!(shell_quote("~"), "'~'");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("'"), r"''\'''");
        assert_eq!(shell_quote("a'b"), r"'a'\''b'");
        assert_eq!(shell_quote("$x `y` !z \\ \"q\""), "'$x `y` !z \\ \"q\"'");
        assert_eq!(shell_quote("é"), "'é'");
    }

    #[test]
    fn toml_escapes() {
        assert_eq!(toml_key("rapport-2_x"), "rapport-2_x");
        assert_eq!(toml_key(""), "\"\"");
        assert_eq!(toml_key("a.b"), "\"a.b\"");
        assert_eq!(toml_string("q\"b\\\t\n\u{1}\u{7f}é"), "\"q\\\"b\\\\\\t\\n\\u0001\\u007Fé\"");
    }

    #[test]
    fn percent_encoding_keeps_only_unreserved() {
        assert_eq!(percent_encode("aZ0-._~"), "aZ0-._~");
        assert_eq!(percent_encode("a+b/c= d'é"), "a%2Bb%2Fc%3D%20d%27%C3%A9");
    }
}
