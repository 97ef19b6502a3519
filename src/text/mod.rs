//! Text helpers every module may use; this module uses nothing of the crate.

mod fit;

pub use fit::{ROAM_MAX_TEXT_BYTES, close_open_fence, fit_message, split_message};

/// Escapes text for Roam markdown: markdown punctuation is backslash-escaped so it shows
/// literally, and `<` / `>` are escaped so `<@all>` or `<@U-…>` cannot ping anybody.
pub fn escape_markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '~' | '[' | ']' | '<' | '>' | '#' | '|'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_values_cannot_inject_markdown_or_mentions() {
        assert_eq!(
            escape_markdown("*bold* <@all> [x](y)"),
            "\\*bold\\* \\<@all\\> \\[x\\](y)"
        );
    }
}
