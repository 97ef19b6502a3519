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

/// Splits `text` into parts of at most `limit` bytes at line ends (a line longer than a
/// part is cut at a char boundary). A code fence open at the end of a part is closed there
/// and reopened at the start of the next, so each part renders on its own.
pub fn split_message(text: &str, limit: usize) -> Vec<String> {
    if text.len() <= limit {
        return vec![text.to_string()];
    }
    let reserve = 8; // "\n```" to close a fence, "```\n" to reopen one
    let budget = limit.saturating_sub(reserve).max(16);
    let mut parts = Vec::new();
    let mut cur = String::new();
    let push_line = |cur: &mut String, parts: &mut Vec<String>, line: &str| {
        if !cur.is_empty() && cur.len() + 1 + line.len() > budget {
            let open = open_fence(cur);
            let mut done = std::mem::take(cur);
            if open {
                done.push_str("\n```");
                cur.push_str("```\n");
            }
            parts.push(done);
        }
        if !cur.is_empty() && !cur.ends_with('\n') {
            cur.push('\n');
        }
        cur.push_str(line);
    };
    for line in text.split('\n') {
        let mut rest = line;
        while rest.len() > budget {
            let cut = rest.floor_char_boundary(budget);
            push_line(&mut cur, &mut parts, &rest[..cut]);
            rest = &rest[cut..];
        }
        push_line(&mut cur, &mut parts, rest);
    }
    if !cur.trim().is_empty() {
        parts.push(cur);
    }
    parts
}

/// `text` with a code fence it leaves open closed at its end.
pub fn close_open_fence(text: &str) -> String {
    if open_fence(text) {
        format!("{text}\n```")
    } else {
        text.to_string()
    }
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
        /// Every part fits, no part leaves a fence open, and the parts hold all the text.
        #[test]
        fn split_parts_fit_close_fences_and_keep_everything(
            parts in proptest::collection::vec(prop_oneof!["[a-zé日😀 ]{0,80}", Just("\n```\n".to_string()), Just("\n".to_string())], 0..600),
            limit in 200usize..3000,
        ) {
            let text: String = parts.concat();
            let out = split_message(&text, limit);
            for p in &out {
                prop_assert!(p.len() <= limit, "{} > {}", p.len(), limit);
                if out.len() > 1 {
                    prop_assert!(!open_fence(p) || text.matches("```").count() % 2 == 1);
                }
            }
            let strip = |s: &str| s.chars().filter(|c| !c.is_whitespace() && *c != '`').collect::<String>();
            prop_assert_eq!(strip(&out.concat()), strip(&text));
        }

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
