//! Name syntax of Kubernetes and Tailscale, as the API server and the
//! Tailscale control plane check it. The controller validates every plan
//! with these functions; policies can use them to check their own output
//! and settings.

/// DNS-1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// DNS-1123 subdomain: dot-separated labels, at most 253 characters.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// The name part of a qualified name: `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, ≤ 63.
fn is_qualified_name_part(s: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_alphanumeric();
    !s.is_empty()
        && s.len() <= 63
        && alnum(s.as_bytes()[0])
        && alnum(s.as_bytes()[s.len() - 1])
        && s.bytes()
            .all(|b| alnum(b) || matches!(b, b'-' | b'_' | b'.'))
}

/// A label or annotation key: `[prefix/]name`, the prefix a DNS subdomain.
pub fn is_qualified_name(s: &str) -> bool {
    match s.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_qualified_name_part(name),
        None => is_qualified_name_part(s),
    }
}

/// A label value: empty, or a qualified name part.
pub fn is_label_value(s: &str) -> bool {
    s.is_empty() || is_qualified_name_part(s)
}

/// An environment variable name: `[-._a-zA-Z][-._a-zA-Z0-9]*`.
pub fn is_env_name(s: &str) -> bool {
    let first_ok = |b: u8| b.is_ascii_alphabetic() || matches!(b, b'-' | b'.' | b'_');
    !s.is_empty()
        && first_ok(s.as_bytes()[0])
        && s.bytes().all(|b| first_ok(b) || b.is_ascii_digit())
}

/// A Tailscale ACL tag: `tag:` followed by `[a-z0-9-]+`.
pub fn is_tailscale_tag(s: &str) -> bool {
    s.strip_prefix("tag:").is_some_and(|name| {
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names_follow_the_api_server() {
        for ok in ["app", "example.com/app", "a.b/c_d-e.f", "A1"] {
            assert!(is_qualified_name(ok), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "Example.com/a",
            "a/b/c",
            "/a",
            &"x".repeat(64),
        ] {
            assert!(!is_qualified_name(bad), "{bad}");
        }
    }

    #[test]
    fn label_values_may_be_empty_but_not_malformed() {
        assert!(is_label_value(""));
        assert!(is_label_value("v1.2_x"));
        assert!(!is_label_value("a b"));
        assert!(!is_label_value(&"v".repeat(64)));
    }

    #[test]
    fn env_names_and_tags() {
        assert!(is_env_name("HTTP_PROXY"));
        assert!(is_env_name("a.b-c"));
        assert!(!is_env_name("1ABC"));
        assert!(!is_env_name("A=B"));
        assert!(is_tailscale_tag("tag:k8s-prod"));
        assert!(!is_tailscale_tag("tag:"));
        assert!(!is_tailscale_tag("tag:Prod"));
        assert!(!is_tailscale_tag("k8s"));
    }
}
