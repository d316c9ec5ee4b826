//! What a failed `tailscale up` means for the Service's owner: its output
//! (the control server's words after `backend error:`) sorted into a
//! [`svc_lb_contract::state::problem`] code. The texts are the real ones,
//! e.g. `backend error: invalid key: API key does not exist` (an expired or
//! deleted key), `invalid key: API key k… not valid` (a one-off key used
//! twice), `requested tags [tag:x] are invalid or not permitted`.

use svc_lb_contract::state::problem;

/// Longest message kept from the output.
const MAX_MESSAGE: usize = 512;

/// The problem code of a failed `tailscale up`, and its message: the
/// output's last non-empty line, cut to [`MAX_MESSAGE`] bytes. The output
/// must have had the auth key redacted already.
pub fn classify_up_failure(output: &str) -> (&'static str, String) {
    let lower = output.to_ascii_lowercase();
    let code = if lower.contains("tags") && lower.contains("not permitted") {
        problem::TAGS_NOT_PERMITTED
    } else if lower.contains("invalid key") || lower.contains("key expired") {
        problem::AUTH_KEY_REJECTED
    } else {
        problem::LOGIN_FAILED
    };
    let line = output
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("tailscale up failed without output");
    let mut cut = line.len().min(MAX_MESSAGE);
    while !line.is_char_boundary(cut) {
        cut -= 1;
    }
    (code, line[..cut].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_server_refusals_are_told_apart() {
        for (output, code) in [
            (
                "backend error: requested tags [tag:prod] are invalid or not permitted\n",
                problem::TAGS_NOT_PERMITTED,
            ),
            (
                "backend error: invalid key: API key does not exist\n",
                problem::AUTH_KEY_REJECTED,
            ),
            (
                "backend error: invalid key: API key kAbc123CNTRL not valid",
                problem::AUTH_KEY_REJECTED,
            ),
            (
                "backend error: invalid key: unable to validate API key",
                problem::AUTH_KEY_REJECTED,
            ),
            (
                "timeout waiting for Tailscale service to enter a Running state",
                problem::LOGIN_FAILED,
            ),
        ] {
            let (got, message) = classify_up_failure(output);
            assert_eq!(got, code, "{output}");
            assert_eq!(message, output.trim());
        }
        assert_eq!(
            classify_up_failure("").1,
            "tailscale up failed without output"
        );
        assert!(classify_up_failure(&"x".repeat(2000)).1.len() <= MAX_MESSAGE);
    }
}
