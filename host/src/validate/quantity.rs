//! Kubernetes resource quantities (`100m`, `64Mi`, `1.5`, `1e3`).
//!
//! Parsed here (k8s-openapi keeps them as strings) so that a bad quantity or
//! a request above its limit is reported against the policy that wrote it,
//! instead of failing the DaemonSet apply.

/// The value of `quantity` (in base units), or `None` if it is malformed.
pub fn parse_quantity(quantity: &str) -> Option<f64> {
    let split = quantity
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(quantity.len());
    let (number, suffix) = quantity.split_at(split);
    let unsigned = number.strip_prefix(['+', '-']).unwrap_or(number);
    let digits_ok = !unsigned.is_empty()
        && unsigned != "."
        && unsigned.matches('.').count() <= 1
        && unsigned.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if !digits_ok {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let scale = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exponent => {
            let digits = exponent.strip_prefix(['e', 'E'])?;
            let unsigned = digits.strip_prefix(['+', '-']).unwrap_or(digits);
            if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            10f64.powi(digits.parse().ok()?)
        }
    };
    Some(value * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_quantities_have_their_value() {
        assert_eq!(parse_quantity("100m"), Some(0.1));
        assert_eq!(parse_quantity("64Mi"), Some(64.0 * 1024.0 * 1024.0));
        assert_eq!(parse_quantity("1.5"), Some(1.5));
        assert_eq!(parse_quantity("2k"), Some(2000.0));
        assert_eq!(parse_quantity("1e3"), Some(1000.0));
        assert_eq!(parse_quantity("+1"), Some(1.0));
    }

    #[test]
    fn malformed_quantities_are_refused() {
        for bad in ["", "lots", "1.2.3", "Mi", "10mb", "1e", "1ex", ".", "--1"] {
            assert_eq!(parse_quantity(bad), None, "{bad}");
        }
    }
}
