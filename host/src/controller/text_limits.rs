//! The API server's length limits on the text the controller writes: an
//! events.k8s.io Event's note (1 KiB) and a condition's message (32 KiB).
//! Every note and message passes through [`within`], so a policy's long
//! error, or a long name, can never make the write itself fail.

/// Longest note of an events.k8s.io/v1 Event (`NoteLengthLimit`).
pub const EVENT_NOTE_LIMIT: usize = 1024;
/// Longest message of a metav1.Condition.
pub const CONDITION_MESSAGE_LIMIT: usize = 32 * 1024;

/// What marks a cut text.
const CUT_MARK: &str = "…";

/// `text` cut to at most `limit` bytes (on a character boundary, ending
/// with `…` when cut).
pub fn within(text: String, limit: usize) -> String {
    if text.len() <= limit {
        return text;
    }
    let mut cut = limit.saturating_sub(CUT_MARK.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{CUT_MARK}", &text[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_to_the_limit_on_a_character_boundary() {
        assert_eq!(within("short".into(), EVENT_NOTE_LIMIT), "short");
        let exact = "x".repeat(EVENT_NOTE_LIMIT);
        assert_eq!(within(exact.clone(), EVENT_NOTE_LIMIT), exact);
        for text in [
            "é".repeat(2000),
            "x".repeat(5000),
            format!("x{}", "€".repeat(900)),
        ] {
            let cut = within(text, EVENT_NOTE_LIMIT);
            assert!(cut.len() <= EVENT_NOTE_LIMIT, "{}", cut.len());
            assert!(cut.len() > EVENT_NOTE_LIMIT - 8, "{}", cut.len());
            assert!(cut.ends_with(CUT_MARK));
        }
    }
}
