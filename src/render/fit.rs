//! Keeping message text under Roam's size cap without breaking it.

/// Roam refuses `chat.post` text above 8,000 bytes (413).
pub const ROAM_MAX_TEXT_BYTES: usize = 8000;

/// Room kept for the closing fence and the "more bytes" note.
const TAIL_RESERVE: usize = 80;

/// Returns `text` unchanged when it fits in `limit` bytes; otherwise cuts it at a char
/// boundary (at a line end when one is near), closes a code fence left open by the cut,
/// and says how much was left out. The result never exceeds `limit`.
pub fn fit_message(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let budget = limit.saturating_sub(TAIL_RESERVE);
    let mut cut = text.floor_char_boundary(budget);
    if let Some(nl) = text[..cut].rfind('\n')
        && nl >= cut - cut / 5
    {
        cut = nl;
    }
    let mut out = String::with_capacity(limit);
    out.push_str(text[..cut].trim_end_matches([' ', '\t']));
    if open_fence(&out) {
        out.push_str("\n```");
    }
    let omitted = text.len() - cut;
    out.push_str(&format!("\n… ({omitted} more bytes not shown)"));
    if out.len() > limit {
        // Only possible for absurdly small limits; never split a char.
        let end = out.floor_char_boundary(limit);
        out.truncate(end);
    }
    out
}

/// True when `text` ends inside a fenced code block (an odd number of fence lines).
fn open_fence(text: &str) -> bool {
    text.lines()
        .filter(|l| {
            let t = l.trim_start();
            t.starts_with("```") || t.starts_with("~~~")
        })
        .count()
        % 2
        == 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_text_is_untouched() {
        assert_eq!(fit_message("hello", 8000), "hello");
    }

    #[test]
    fn closes_an_open_fence() {
        let text = format!("intro\n```\n{}\n```\n", "x".repeat(10_000));
        let out = fit_message(&text, 8000);
        assert!(out.len() <= 8000);
        assert!(!open_fence(&out), "{out}");
        assert!(out.ends_with("more bytes not shown)"));
    }

    proptest! {
        #[test]
        fn never_exceeds_limit_or_leaves_a_fence_open(
            parts in proptest::collection::vec(prop_oneof!["[a-zé日😀 ]{0,60}", Just("\n```\n".to_string()), Just("\n".to_string())], 0..400),
            limit in 200usize..9000,
        ) {
            let text: String = parts.concat();
            let out = fit_message(&text, limit);
            prop_assert!(out.len() <= limit);
            if text.len() > limit {
                prop_assert!(!open_fence(&out));
            } else {
                prop_assert_eq!(&out, &text);
            }
        }
    }
}
