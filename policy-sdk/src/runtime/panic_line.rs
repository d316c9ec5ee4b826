//! The line a `#![no_std]` component's panic is reported as, `panicked at
//! FILE:LINE:COL: MESSAGE`: the standard library's panic hook writes the
//! same words to stderr. Written into a fixed buffer (the panic may be the
//! allocator failing) and cut at a character boundary, marked with `…`,
//! when longer.

use core::fmt::{self, Display, Write};
use core::panic::Location;

use crate::PANIC_LINE_PREFIX;

/// Longest line, in bytes: as much of one log line as the controller keeps.
pub(crate) const MAX_PANIC_LINE: usize = 1024;
/// Ends a line that was cut.
const CUT_MARK: &str = "…";

/// A panic's report, built without allocating.
pub(crate) struct PanicLine {
    bytes: [u8; MAX_PANIC_LINE],
    len: usize,
    cut: bool,
}

impl PanicLine {
    /// `panicked at LOCATION: MESSAGE`, cut to [`MAX_PANIC_LINE`] bytes.
    pub(crate) fn new(location: Option<&Location<'_>>, message: impl Display) -> Self {
        let mut line = PanicLine {
            bytes: [0; MAX_PANIC_LINE],
            len: 0,
            cut: false,
        };
        // An error only means the line was cut, which `write_str` marked.
        let _ = match location {
            Some(at) => write!(line, "{PANIC_LINE_PREFIX}{at}: {message}"),
            None => write!(line, "{PANIC_LINE_PREFIX}<unknown>: {message}"),
        };
        line
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only whole `&str`s, their prefixes cut at a char boundary, and
        // the mark are ever copied in: always UTF-8.
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or(PANIC_LINE_PREFIX)
    }

    fn push(&mut self, s: &str) {
        self.bytes[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
        self.len += s.len();
    }
}

impl Write for PanicLine {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.cut {
            return Err(fmt::Error);
        }
        // Room is kept for the mark.
        let room = MAX_PANIC_LINE - CUT_MARK.len() - self.len;
        if s.len() <= room {
            self.push(s);
            return Ok(());
        }
        let mut take = room;
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.push(&s[..take]);
        self.push(CUT_MARK);
        self.cut = true;
        Err(fmt::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;

    #[test]
    fn a_short_panic_reads_like_the_standard_librarys() {
        let at = Location::caller();
        let line = PanicLine::new(Some(at), format_args!("bad {}", 42));
        assert_eq!(
            line.as_str(),
            format!(
                "panicked at {}:{}:{}: bad 42",
                at.file(),
                at.line(),
                at.column()
            )
        );
        let line = PanicLine::new(None, "no location");
        assert_eq!(line.as_str(), "panicked at <unknown>: no location");
    }

    #[test]
    fn a_long_panic_is_cut_at_a_character_boundary_and_marked() {
        for pad in 0..4 {
            // Multi-byte characters at every offset against the cut.
            let message = format!("{}{}", "x".repeat(pad), "é€😀".repeat(200));
            let line = PanicLine::new(None, &message);
            let text = line.as_str();
            assert!(text.len() <= MAX_PANIC_LINE, "{}", text.len());
            assert!(text.len() > MAX_PANIC_LINE - CUT_MARK.len() - 4);
            assert!(text.ends_with(CUT_MARK));
            let kept = &text[..text.len() - CUT_MARK.len()];
            let expected = format!("panicked at <unknown>: {message}");
            assert!(expected.starts_with(kept));
        }
    }

    #[test]
    fn a_line_that_just_fits_is_not_marked() {
        let prefix = "panicked at <unknown>: ";
        let message = "y".repeat(MAX_PANIC_LINE - CUT_MARK.len() - prefix.len());
        let line = PanicLine::new(None, &message);
        assert_eq!(line.as_str(), format!("{prefix}{message}"));
    }
}
