//! How the controller and the runtime write their logs: text, coloured only
//! when the output is a terminal (`kubectl logs` shows escape codes
//! verbatim), or one JSON object per line for log pipelines
//! (`--log-format json`, or `SVCLB_LOG_FORMAT=json`).

use std::format;
use std::io::IsTerminal;
use std::str::FromStr;
use std::string::String;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The environment variable both binaries read their log format from.
pub const LOG_FORMAT_ENV: &str = crate::env::LOG_FORMAT;

/// A log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!("log format {other:?}: expected text or json")),
        }
    }
}

/// The logger writing to `writer`; `filter` applies unless `RUST_LOG` is
/// set; colour only when `terminal`.
fn dispatch<W>(format: LogFormat, writer: W, terminal: bool, filter: &str) -> tracing::Dispatch
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| filter.into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Text => tracing::Dispatch::new(builder.with_ansi(terminal).finish()),
        LogFormat::Json => tracing::Dispatch::new(builder.json().finish()),
    }
}

/// Installs the process's logger on standard error (once; later calls do
/// nothing).
pub fn init(format: LogFormat, filter: &str) {
    let terminal = std::io::stderr().is_terminal();
    let _ = tracing::dispatcher::set_global_default(dispatch(
        format,
        std::io::stderr,
        terminal,
        filter,
    ));
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::vec::Vec;

    use super::*;

    /// A writer collecting what the subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Captured {
        type Writer = Captured;
        fn make_writer(&'w self) -> Self::Writer {
            self.clone()
        }
    }

    fn logged(format: LogFormat, terminal: bool) -> String {
        let out = Captured::default();
        let dispatch = dispatch(format, out.clone(), terminal, "info");
        tracing::dispatcher::with_default(&dispatch, || {
            tracing::info!(service = "default/web", "proxy created");
        });
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn text_has_no_escape_codes_unless_on_a_terminal() {
        let plain = logged(LogFormat::Text, false);
        assert!(
            plain.contains("proxy created service=\"default/web\""),
            "{plain}"
        );
        assert!(!plain.contains('\u{1b}'), "{plain:?}");
        assert!(logged(LogFormat::Text, true).contains('\u{1b}'));
    }

    #[test]
    fn json_is_one_object_per_line_with_the_fields() {
        let out = logged(LogFormat::Json, true);
        let line: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["fields"]["message"], "proxy created");
        assert_eq!(line["fields"]["service"], "default/web");
        assert!(!out.contains('\u{1b}'));
    }

    #[test]
    fn formats_parse_by_name() {
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert!(
            "yaml"
                .parse::<LogFormat>()
                .unwrap_err()
                .contains("text or json")
        );
    }
}
